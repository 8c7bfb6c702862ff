//! The API's routes, one module per resource. Handlers parse, call one use case, render.

use portcullis_app::ErrorCode;
pub mod accounts;
pub mod audit;
pub mod cancel;
pub mod contacts;
pub mod digest;
pub mod freeze;
pub mod guard;
pub mod keys;
pub mod network;
pub mod operators;
pub mod outbox;
pub mod overrides;
pub mod passkeys;
pub mod policy;
pub mod risk;
pub mod system;
pub mod verify;
pub mod withdrawals;

use crate::error::ApiError;
use portcullis_core::time::UnixMillis;

/// Parses an optional RFC 3339 field of a request.
pub(crate) fn parse_time(
    field: &'static str,
    text: Option<&str>,
) -> Result<Option<UnixMillis>, ApiError> {
    text.map(|t| {
        UnixMillis::parse_rfc3339(t).map_err(|_| {
            ApiError::new(
                ErrorCode::InvalidTimestamp,
                format!("`{field}` must be an RFC 3339 timestamp like 2026-01-31T12:00:00Z"),
            )
        })
    })
    .transpose()
}

/// The page size asked for, bounded.
pub(crate) fn page_limit(limit: Option<u32>) -> u32 {
    limit.unwrap_or(100).clamp(1, 1000)
}
