//! The JSON shapes of a time-boxed fund window: what a customer asks for when widening a key,
//! and what a key shows of the window in force.

use portcullis_core::guard::fund_window::{FundWindow, UsdCents, WindowRequest};
use portcullis_core::time::UnixMillis;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::ApiError;
use portcullis_app::ErrorCode;

/// Grant `withdraw`/`transfer` for a while only: from when the change takes effect, for
/// `hours` (1 to 744), and optionally (`withdraw` alone) up to `cap_usd` in total.
#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FundWindowBody {
    /// One hour to 31 days.
    #[schema(minimum = 1, maximum = 744)]
    #[serde(deserialize_with = "crate::dto::whole::number")]
    pub hours: u32,
    /// More than zero, at most a trillion; rounded up to the cent. Counted by the withdrawal
    /// check, which transfers never pass through: refused (`invalid_fund_window`) on a window
    /// that boxes `transfer`.
    #[schema(exclusive_minimum = 0, maximum = 1_000_000_000_000_f64)]
    pub cap_usd: Option<f64>,
}

impl FundWindowBody {
    /// A request's `fund_window` field (absent, `null` or a window) as the key change takes it.
    pub fn field(
        field: Option<Option<FundWindowBody>>,
    ) -> Result<Option<Option<WindowRequest>>, ApiError> {
        field
            .map(|window| window.map(FundWindowBody::into_request).transpose())
            .transpose()
    }

    pub fn into_request(self) -> Result<WindowRequest, ApiError> {
        let cap = match self.cap_usd {
            None => None,
            Some(usd) => Some(UsdCents::from_usd(usd).ok_or_else(|| {
                ApiError::new(
                    ErrorCode::InvalidFundWindow,
                    "`cap_usd` must be a positive amount of at most a trillion",
                )
            })?),
        };
        let request = WindowRequest {
            duration_ms: i64::from(self.hours) * 3_600_000,
            cap,
        };
        request
            .validate()
            .map_err(|e| ApiError::new(ErrorCode::InvalidFundWindow, e.to_string()))?;
        Ok(request)
    }
}

/// The window a key's fund-moving scopes are granted in.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct FundWindowDto {
    /// The scopes that lapse.
    pub scopes: Vec<String>,
    /// RFC 3339: when they lapse.
    pub until: String,
    /// `false` once `until` has passed (the scopes no longer count, even before the key is
    /// tidied).
    pub open: bool,
    pub cap_usd: Option<f64>,
    pub spent_usd: f64,
    pub remaining_usd: Option<f64>,
}

impl FundWindowDto {
    pub fn of(window: &FundWindow, now: UnixMillis) -> Self {
        Self {
            scopes: window
                .scopes
                .names()
                .into_iter()
                .map(str::to_owned)
                .collect(),
            until: window.until.to_rfc3339(),
            open: window.is_open(now),
            cap_usd: window.cap.map(UsdCents::as_usd),
            spent_usd: window.spent.as_usd(),
            remaining_usd: window.remaining().map(UsdCents::as_usd),
        }
    }
}
