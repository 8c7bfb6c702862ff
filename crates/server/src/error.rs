//! One error shape for every failure the API can return, and the one table that maps each to an
//! HTTP status and a stable code:
//!
//! ```json
//! {"error": {"code": "invalid_cidr", "message": "invalid CIDR `10.0.0/8` ..."}}
//! ```
//!
//! Internal details are logged with a reference and never sent to the client.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use portcullis_app::AppError;
use serde::Serialize;
use utoipa::ToSchema;

/// The body of every error response.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

/// What went wrong: a stable machine-readable code and a human explanation.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable code, e.g. `invalid_json`, `unknown_scope`, `not_found`.
    pub code: String,
    pub message: String,
}

/// An API failure.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// Seconds to wait before trying again (`Retry-After`), on a 429.
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    /// 429 `rate_limited`: too many requests from one address or for one account; try again
    /// after `seconds`.
    pub fn rate_limited(seconds: u64) -> Self {
        Self {
            retry_after: Some(seconds),
            ..Self::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                format!("too many requests; try again in {seconds} s"),
            )
        }
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub fn not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", "no such endpoint")
    }
}

/// Refusals that are not malformed input: the caller lacks a fresh confirmation (403), or the
/// account's protections forbid the change right now (423), or the target is past changing
/// (409). Every other `Invalid` is a 400.
fn status_of_refusal(code: &str) -> StatusCode {
    match code {
        "step_up_required"
        | "step_up_insufficient"
        | "step_up_not_enrolled"
        | "invalid_grant"
        | "grant_spent"
        | "grant_expired"
        | "totp_wrong"
        | "totp_reused"
        | "passkey_rejected"
        | "passkey_not_enrolled"
        | "invalid_challenge"
        | "challenge_used"
        | "challenge_expired"
        | "invalid_sign_in_link"
        | "sign_in_link_used"
        | "sign_in_link_expired" => StatusCode::FORBIDDEN,
        "account_protected" | "step_up_locked" => StatusCode::LOCKED,
        "change_closed"
        | "change_not_held"
        | "change_held"
        | "change_not_due"
        | "cancel_link_used"
        | "lock_cannot_shorten" => StatusCode::CONFLICT,
        _ => StatusCode::BAD_REQUEST,
    }
}

impl From<AppError> for ApiError {
    fn from(error: AppError) -> Self {
        let status = match &error {
            AppError::Invalid { code, .. } => status_of_refusal(code),
            AppError::NotFound(_) => StatusCode::NOT_FOUND,
            AppError::Conflict(_) => StatusCode::CONFLICT,
            AppError::Unauthenticated => StatusCode::UNAUTHORIZED,
            AppError::Forbidden => StatusCode::FORBIDDEN,
            AppError::Internal(detail) => {
                let detail = portcullis_core::redact::redact_urls_in(detail);
                tracing::error!(detail = %detail, "internal error");
                StatusCode::INTERNAL_SERVER_ERROR
            }
        };
        Self::new(status, error.code(), error.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code.to_owned(),
                message: self.message,
            },
        };
        let mut response = (self.status, Json(body)).into_response();
        if let Some(seconds) = self.retry_after {
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, seconds.into());
        }
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer"),
            );
        }
        response
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
