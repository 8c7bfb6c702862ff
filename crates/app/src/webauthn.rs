//! What the customers' passkeys (`guard::passkeys`) and the operators' (`console::sign_in`)
//! share around webauthn-rs: the user handle, the stored state of a ceremony and a credential,
//! the browser's answers read from JSON, a ceremony's single use before it expires, and the
//! credential's counter moved on after a use. Single-use links are checked the same way
//! ([`single_use`]).

use crate::ErrorCode;
use crate::error::{AppError, AppResult};
use aws_lc_rs::digest;
use portcullis_core::time::UnixMillis;
use serde_json::Value;
use webauthn_rs::prelude::{
    AuthenticationResult, Passkey, PublicKeyCredential, RegisterPublicKeyCredential, Uuid,
};

/// How long a challenge may be answered (the browser's own timeout is the same).
pub(crate) const CEREMONY_TTL_MS: i64 = 5 * 60_000;

/// A stable WebAuthn user handle per account (`namespace` `portcullis-user`) or operator
/// (`portcullis-operator`) that reveals nothing about the id.
pub(crate) fn user_handle(namespace: &str, id: &str) -> Uuid {
    let hash = digest::digest(&digest::SHA256, format!("{namespace}:{id}").as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&hash.as_ref()[..16]);
    Uuid::from_bytes(bytes)
}

pub(crate) fn to_json<T: serde::Serialize>(value: &T) -> AppResult<String> {
    serde_json::to_string(value)
        .map_err(|e| AppError::Internal(format!("encoding WebAuthn state: {e}")))
}

pub(crate) fn stored<T: serde::de::DeserializeOwned>(text: &str) -> AppResult<T> {
    serde_json::from_str(text)
        .map_err(|e| AppError::Internal(format!("decoding WebAuthn state: {e}")))
}

/// A challenge's options as the browser's script receives them.
pub(crate) fn options_json<T: serde::Serialize>(options: &T) -> AppResult<Value> {
    serde_json::to_value(options).map_err(|e| AppError::Internal(e.to_string()))
}

/// The browser's answer to `navigator.credentials.create`.
pub(crate) fn registration_answer(credential: &Value) -> AppResult<RegisterPublicKeyCredential> {
    serde_json::from_value(credential.clone()).map_err(|e| {
        AppError::invalid(
            ErrorCode::InvalidCredential,
            format!("not a WebAuthn registration: {e}"),
        )
    })
}

/// The browser's answer to `navigator.credentials.get`.
pub(crate) fn assertion_answer(credential: &Value) -> AppResult<PublicKeyCredential> {
    serde_json::from_value(credential.clone()).map_err(|e| {
        AppError::invalid(
            ErrorCode::InvalidCredential,
            format!("not a WebAuthn assertion: {e}"),
        )
    })
}

/// Stored rows with their decoded credentials (`text` is the row's serialised passkey).
pub(crate) fn decoded<R>(rows: Vec<R>, text: impl Fn(&R) -> &str) -> AppResult<Vec<(R, Passkey)>> {
    rows.into_iter()
        .map(|row| stored::<Passkey>(text(&row)).map(|key| (row, key)))
        .collect()
}

/// Whether `key` is the one `result` authenticated and its state (signature counter) moved on,
/// so it must be stored again.
pub(crate) fn counted(key: &mut Passkey, result: &AuthenticationResult) -> bool {
    key.cred_id() == result.cred_id() && key.update_credential(result).is_some()
}

/// Refuses what was used already or is past its life, each with its own code and words.
pub(crate) fn single_use(
    (used_at, expires_at): (Option<UnixMillis>, UnixMillis),
    now: UnixMillis,
    used: (ErrorCode, &str),
    expired: (ErrorCode, &str),
) -> AppResult<()> {
    if used_at.is_some() {
        return Err(AppError::invalid(used.0, used.1));
    }
    if now >= expires_at {
        return Err(AppError::invalid(expired.0, expired.1));
    }
    Ok(())
}

/// The ceremony `found` (already narrowed to the caller's account or operator and kind), if it
/// may still be answered: unanswered and fresh.
pub(crate) fn answerable<C>(
    found: Option<C>,
    times: impl Fn(&C) -> (Option<UnixMillis>, UnixMillis),
    now: UnixMillis,
) -> AppResult<C> {
    let ceremony = found.ok_or_else(|| {
        AppError::invalid(ErrorCode::InvalidChallenge, "unknown WebAuthn challenge")
    })?;
    single_use(
        times(&ceremony),
        now,
        (
            ErrorCode::ChallengeUsed,
            "this WebAuthn challenge was already answered",
        ),
        (
            ErrorCode::ChallengeExpired,
            "this WebAuthn challenge has expired; start again",
        ),
    )?;
    Ok(ceremony)
}

/// Why passkeys cannot be used here.
pub(crate) fn unavailable() -> AppError {
    AppError::invalid(
        ErrorCode::PasskeysUnavailable,
        "passkeys need public_url to name a host, such as https://security.example.com",
    )
}
