//! One error shape for every failure the API can return. The code and its status come from the
//! one table, [`ErrorCode`] (crates/app/src/error_code.rs):
//!
//! ```json
//! {"error": {"code": "invalid_cidr", "message": "invalid CIDR `10.0.0/8` ..."}}
//! ```
//!
//! Internal details are logged with a reference and never sent to the client.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use portcullis_app::{AppError, ErrorCode};
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
    /// Stable code, e.g. `invalid_json`, `unknown_scope`, `not_found`: one of the table in
    /// docs/api.md ("Errors").
    #[schema(schema_with = error_code_schema)]
    pub code: String,
    pub message: String,
}

/// Every code of the table as the schema's `enum`, so the OpenAPI document names them all.
fn error_code_schema() -> utoipa::openapi::schema::Object {
    utoipa::openapi::schema::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .description(Some("A stable error code (docs/api.md, \"Errors\")."))
        .enum_values(Some(ErrorCode::ALL.iter().map(|code| code.as_str())))
        .build()
}

/// An API failure: a code of the one table ([`ErrorCode`]) and its explanation. The status is
/// the code's own, so a code always answers with the same status.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: ErrorCode,
    pub message: String,
    /// Seconds to wait before trying again (`Retry-After`), on a 429.
    pub retry_after: Option<u64>,
}

/// The HTTP status of a code, from the table.
pub fn status_of(code: ErrorCode) -> StatusCode {
    StatusCode::from_u16(code.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            status: status_of(code),
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
                ErrorCode::RateLimited,
                format!("too many requests; try again in {seconds} s"),
            )
        }
    }

    pub fn not_found() -> Self {
        Self::new(ErrorCode::NotFound, "no such endpoint")
    }
}

impl From<AppError> for ApiError {
    fn from(error: AppError) -> Self {
        if let AppError::Internal(detail) = &error {
            let detail = portcullis_core::redact::redact_urls_in(detail);
            tracing::error!(detail = %detail, "internal error");
        }
        Self::new(error.code(), error.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code.as_str().to_owned(),
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
