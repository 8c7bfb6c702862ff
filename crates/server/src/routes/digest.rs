//! The daily security digest: read, switch on or move, switch off.

use crate::error::{ApiResult, ErrorBody};
use crate::extract::{ApiJson, Operator};
use crate::state::AppState;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use portcullis_app::ports::DigestSubscription;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// `PUT /v1/accounts/{account}/digest`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DigestBody {
    /// The hour of the day (UTC, 0 to 23) the digest is sent at.
    #[schema(minimum = 0, maximum = 23)]
    #[serde(deserialize_with = "crate::dto::whole::number")]
    pub hour_utc: u8,
}

/// An account's daily digest.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct DigestDto {
    pub account: String,
    pub hour_utc: u8,
    /// RFC 3339: when the next one is sent.
    pub next_at: String,
    pub since: String,
}

impl From<DigestSubscription> for DigestDto {
    fn from(s: DigestSubscription) -> Self {
        Self {
            account: s.account,
            hour_utc: s.hour_utc,
            next_at: s.next_at.to_rfc3339(),
            since: s.created_at.to_rfc3339(),
        }
    }
}

/// The account's daily digest; 404 `not_found` when it has none.
#[utoipa::path(
    get, path = "/v1/accounts/{account}/digest", tag = "protection",
    params(("account" = String, Path, description = "Account id")),
    responses((status = 200, body = DigestDto), (status = 404, body = ErrorBody)),
    security(("operator_token" = []))
)]
pub async fn show(
    State(state): State<AppState>,
    Operator(actor): Operator,
    Path(account): Path<String>,
) -> ApiResult<Json<DigestDto>> {
    let digest = state.app.guard.digest(&actor, &account).await?;
    let digest = digest.ok_or_else(|| {
        portcullis_app::AppError::NotFound(format!("daily digest of account {account}"))
    })?;
    Ok(Json(digest.into()))
}

/// Switch the daily digest on (or move it): one message a day on the official channels, with
/// keys used and from where, changes, holds, new devices and IPs, and the check-up score; sent
/// on quiet days too. Announced.
#[utoipa::path(
    put, path = "/v1/accounts/{account}/digest", tag = "protection",
    params(("account" = String, Path, description = "Account id")),
    request_body = DigestBody,
    responses((status = 200, body = DigestDto), (status = 400, description = "`invalid_digest_hour`", body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("operator_token" = []))
)]
pub async fn subscribe(
    State(state): State<AppState>,
    Operator(actor): Operator,
    Path(account): Path<String>,
    ApiJson(body): ApiJson<DigestBody>,
) -> ApiResult<Json<DigestDto>> {
    let digest = state
        .app
        .guard
        .subscribe_digest(&actor, &account, body.hour_utc)
        .await?;
    Ok(Json(digest.into()))
}

/// Switch the daily digest off (announced).
#[utoipa::path(
    delete, path = "/v1/accounts/{account}/digest", tag = "protection",
    params(("account" = String, Path, description = "Account id")),
    responses((status = 204), (status = 404, body = ErrorBody)),
    security(("operator_token" = []))
)]
pub async fn unsubscribe(
    State(state): State<AppState>,
    Operator(actor): Operator,
    Path(account): Path<String>,
) -> ApiResult<StatusCode> {
    state.app.guard.unsubscribe_digest(&actor, &account).await?;
    Ok(StatusCode::NO_CONTENT)
}
