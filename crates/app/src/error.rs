//! The errors every use case can return, each with a stable code that the HTTP edge and the CLI
//! show unchanged. Internal detail (storage messages) stays in logs.

pub use crate::error_code::ErrorCode;
use crate::ports::StoreError;

/// A use case's failure.
#[derive(Debug, Clone, thiserror::Error)]
pub enum AppError {
    /// The input is wrong, or the request is refused as it stands; `code` is stable (e.g.
    /// `invalid_cidr`), `message` explains it.
    #[error("{message}")]
    Invalid { code: ErrorCode, message: String },
    #[error("{0} not found")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("missing or invalid operator token")]
    Unauthenticated,
    #[error("the operator's role does not allow this")]
    Forbidden,
    /// Storage or cryptography failed; details are logged, not returned.
    #[error("internal error")]
    Internal(String),
}

impl AppError {
    pub fn invalid(code: ErrorCode, message: impl Into<String>) -> Self {
        AppError::Invalid {
            code,
            message: message.into(),
        }
    }

    /// The stable code shown to clients.
    pub fn code(&self) -> ErrorCode {
        match self {
            AppError::Invalid { code, .. } => *code,
            AppError::NotFound(_) => ErrorCode::NotFound,
            AppError::Conflict(_) => ErrorCode::Conflict,
            AppError::Unauthenticated => ErrorCode::Unauthenticated,
            AppError::Forbidden => ErrorCode::Forbidden,
            AppError::Internal(_) => ErrorCode::Internal,
        }
    }
}

impl From<StoreError> for AppError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::NotFound(what) => AppError::NotFound(what),
            StoreError::Conflict(what) => AppError::Conflict(what),
            StoreError::Immutable(what) => AppError::invalid(ErrorCode::ImmutableField, what),
            StoreError::Backend(detail) => AppError::Internal(detail),
        }
    }
}

pub type AppResult<T> = Result<T, AppError>;
