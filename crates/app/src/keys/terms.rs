//! What a key's terms are validated into: the account, label, scopes, IP allow-list and expiry
//! a caller asks for, checked once here for every way a key comes to be (issued, imported,
//! changed), each failure with its stable error code.

use crate::ErrorCode;
use crate::error::{AppError, AppResult};
use crate::random;
use portcullis_core::allowlist::IpAllowList;
use portcullis_core::key::{ApiKey, KeyAlgorithm};
use portcullis_core::scope::ScopeSet;
use portcullis_core::signing::PayloadError;
use portcullis_core::time::UnixMillis;

const MAX_LABEL_CHARS: usize = 100;

/// What every new key, issued or imported, is validated from.
pub(super) struct KeyTerms {
    pub(super) account: String,
    pub(super) label: String,
    pub(super) scopes: Vec<String>,
    pub(super) ip_allowlist: Vec<String>,
    pub(super) expires_at: Option<UnixMillis>,
}

impl KeyTerms {
    pub(super) fn into_key(
        self,
        api_key: String,
        algorithm: KeyAlgorithm,
        now: UnixMillis,
    ) -> AppResult<ApiKey> {
        Ok(ApiKey {
            key_id: random::identifier("k")?,
            api_key,
            account: self.account,
            label: validate_label(self.label)?,
            algorithm,
            public_key: None,
            scopes: parse_scopes(&self.scopes)?,
            ip_allowlist: parse_allowlist(&self.ip_allowlist)?,
            created_at: now,
            updated_at: now,
            expires_at: validate_expiry(self.expires_at, now)?,
            last_used_at: None,
            last_used_ip: None,
            revoked_at: None,
            idle_warned_at: None,
            fund_window: None,
            version: 1,
        })
    }
}

/// The stable code of each way a signed payload can be malformed.
pub fn payload_error_code(error: &PayloadError) -> ErrorCode {
    match error {
        PayloadError::MissingTimestamp => ErrorCode::MissingTimestamp,
        PayloadError::MalformedTimestamp => ErrorCode::InvalidTimestamp,
        PayloadError::RecvWindowOutOfRange => ErrorCode::RecvWindowOutOfRange,
        PayloadError::DuplicateParameter(_) => ErrorCode::DuplicateParameter,
    }
}

pub(super) fn parse_scopes(names: &[String]) -> AppResult<ScopeSet> {
    let scopes = ScopeSet::parse(names)
        .map_err(|e| AppError::invalid(ErrorCode::UnknownScope, e.to_string()))?;
    if scopes.is_empty() {
        return Err(AppError::invalid(
            ErrorCode::UnknownScope,
            "a key needs at least one scope",
        ));
    }
    Ok(scopes)
}

pub(super) fn parse_allowlist(entries: &[String]) -> AppResult<IpAllowList> {
    IpAllowList::parse(entries)
        .map_err(|e| AppError::invalid(ErrorCode::InvalidCidr, e.to_string()))
}

pub(super) fn validate_label(label: String) -> AppResult<String> {
    let label = label.trim().to_owned();
    if label.chars().count() > MAX_LABEL_CHARS || label.chars().any(char::is_control) {
        return Err(AppError::invalid(
            ErrorCode::InvalidLabel,
            format!("a label is at most {MAX_LABEL_CHARS} printable characters"),
        ));
    }
    Ok(label)
}

pub(super) fn validate_expiry(
    expires_at: Option<UnixMillis>,
    now: UnixMillis,
) -> AppResult<Option<UnixMillis>> {
    match expires_at {
        Some(at) if at <= now => Err(AppError::invalid(
            ErrorCode::InvalidExpiry,
            "the expiry must be in the future",
        )),
        other => Ok(other),
    }
}
