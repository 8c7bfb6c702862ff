//! Why a value cannot be verified: each reason has a stable code that the API, the CLI's
//! `--file` error lines and the pages show unchanged.

/// The longest value accepted, in bytes: longer is not a phone number, address, link or handle
/// a person was sent, and refusing it early bounds the work per value.
pub const MAX_VALUE_BYTES: usize = 2048;

/// A value that cannot be verified.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ContactError {
    #[error("the value is empty")]
    Empty,
    #[error("the value is longer than {MAX_VALUE_BYTES} bytes")]
    TooLong,
    #[error("the value contains control characters")]
    ControlCharacters,
    #[error("the domain has a label that is not valid punycode (xn--)")]
    InvalidPunycode,
    #[error("not a valid domain name: {0}")]
    InvalidDomain(String),
    #[error("not a valid link: {0}")]
    InvalidUrl(String),
    #[error("not a valid e-mail address")]
    InvalidEmail,
    #[error("not a phone number that can be read: {0}")]
    InvalidPhone(String),
    #[error("not a valid handle: 1 to 64 letters, digits, `_` or `.`, optionally after `@`")]
    InvalidHandle,
    #[error("unknown kind `{0}` (expected phone, email, domain or handle)")]
    UnknownKind(String),
}

impl ContactError {
    /// The stable code.
    pub fn code(&self) -> &'static str {
        match self {
            ContactError::Empty => "empty_value",
            ContactError::TooLong => "value_too_long",
            ContactError::ControlCharacters => "control_characters",
            ContactError::InvalidPunycode => "invalid_punycode",
            ContactError::InvalidDomain(_) => "invalid_domain",
            ContactError::InvalidUrl(_) => "invalid_url",
            ContactError::InvalidEmail => "invalid_email",
            ContactError::InvalidPhone(_) => "invalid_phone",
            ContactError::InvalidHandle => "invalid_handle",
            ContactError::UnknownKind(_) => "invalid_contact_kind",
        }
    }

    /// Every code, for documentation checks.
    pub const CODES: [&'static str; 10] = [
        "empty_value",
        "value_too_long",
        "control_characters",
        "invalid_punycode",
        "invalid_domain",
        "invalid_url",
        "invalid_email",
        "invalid_phone",
        "invalid_handle",
        "invalid_contact_kind",
    ];
}

/// The checks every raw value passes first: not empty once trimmed, at most
/// [`MAX_VALUE_BYTES`], no control characters (a newline inside a value, a NUL, a bidi
/// override are never part of a real contact and can hide what is shown to a person).
pub fn check_raw(raw: &str) -> Result<&str, ContactError> {
    if raw.len() > MAX_VALUE_BYTES {
        return Err(ContactError::TooLong);
    }
    let trimmed = raw.trim();
    if trimmed.is_empty() {
        return Err(ContactError::Empty);
    }
    if trimmed.chars().any(is_forbidden) {
        return Err(ContactError::ControlCharacters);
    }
    Ok(trimmed)
}

/// Control characters, and the invisible formatting characters that reorder or hide text
/// (bidirectional overrides and isolates, zero-width joiners and spaces).
fn is_forbidden(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{FEFF}')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_values_are_checked_before_anything_else() {
        assert_eq!(check_raw("   "), Err(ContactError::Empty));
        assert_eq!(check_raw(&"a".repeat(2049)), Err(ContactError::TooLong));
        assert_eq!(check_raw(&"a".repeat(2048)), Ok("a".repeat(2048).as_str()));
        assert_eq!(check_raw("a\u{0}b"), Err(ContactError::ControlCharacters));
        assert_eq!(check_raw("a\nb"), Err(ContactError::ControlCharacters));
        assert_eq!(
            check_raw("paypal\u{202E}moc.com"),
            Err(ContactError::ControlCharacters)
        );
        assert_eq!(check_raw("  binance.com \n"), Ok("binance.com"));
    }
}
