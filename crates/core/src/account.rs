//! Customer accounts as the key authority knows them: an identifier from the exchange, the
//! official ways to reach the customer, and the anti-phishing code that proves a message is
//! really from the exchange.

use crate::time::UnixMillis;

/// An exchange customer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    /// The exchange's own account identifier (e.g. `acc_81`).
    pub id: String,
    pub display_name: String,
    /// Where official e-mail goes.
    pub email: Option<String>,
    /// The customer's phone number, E.164.
    pub phone: Option<String>,
    /// Shown in every official message; a message without it is not from the exchange.
    pub anti_phishing_code: Option<String>,
    pub created_at: UnixMillis,
    pub updated_at: UnixMillis,
    pub version: i64,
}

/// A field of an account that fails validation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AccountError {
    #[error("account id must be 1 to 64 characters of letters, digits, `_`, `-`, `.` or `:`")]
    InvalidId,
    #[error("e-mail address `{0}` is not valid")]
    InvalidEmail(String),
    #[error("phone number must be in E.164 form, like +14155550123")]
    InvalidPhone,
    #[error("anti-phishing code must be 4 to 20 letters or digits")]
    InvalidAntiPhishingCode,
    #[error("display name must be at most 200 characters")]
    InvalidDisplayName,
}

/// Whether `id` is usable as an identifier (accounts, labels in URLs).
pub fn is_valid_identifier(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b':'))
}

impl Account {
    /// Checks every field; the first problem found is returned.
    pub fn validate(&self) -> Result<(), AccountError> {
        if !is_valid_identifier(&self.id) {
            return Err(AccountError::InvalidId);
        }
        if self.display_name.chars().count() > 200 {
            return Err(AccountError::InvalidDisplayName);
        }
        if let Some(email) = &self.email
            && !is_plausible_email(email)
        {
            return Err(AccountError::InvalidEmail(email.clone()));
        }
        if let Some(phone) = &self.phone
            && !is_e164(phone)
        {
            return Err(AccountError::InvalidPhone);
        }
        if let Some(code) = &self.anti_phishing_code
            && !((4..=20).contains(&code.len()) && code.bytes().all(|b| b.is_ascii_alphanumeric()))
        {
            return Err(AccountError::InvalidAntiPhishingCode);
        }
        Ok(())
    }
}

fn is_plausible_email(email: &str) -> bool {
    let Some((local, domain)) = email.rsplit_once('@') else {
        return false;
    };
    email.chars().count() <= 254
        && !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !email.chars().any(|c| c.is_whitespace() || c.is_control())
}

fn is_e164(phone: &str) -> bool {
    phone.strip_prefix('+').is_some_and(|digits| {
        (8..=15).contains(&digits.len())
            && digits.bytes().all(|b| b.is_ascii_digit())
            && !digits.starts_with('0')
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn account() -> Account {
        Account {
            id: "acc_81".into(),
            display_name: "Ada".into(),
            email: Some("ada@example.com".into()),
            phone: Some("+14155550123".into()),
            anti_phishing_code: Some("Blue42".into()),
            created_at: UnixMillis(0),
            updated_at: UnixMillis(0),
            version: 1,
        }
    }

    #[test]
    fn accepts_a_good_account() {
        assert_eq!(account().validate(), Ok(()));
    }

    #[test]
    fn names_the_bad_field() {
        let bad_id = Account {
            id: "acc 81".into(),
            ..account()
        };
        assert_eq!(bad_id.validate(), Err(AccountError::InvalidId));
        let bad_mail = Account {
            email: Some("ada@".into()),
            ..account()
        };
        assert!(matches!(
            bad_mail.validate(),
            Err(AccountError::InvalidEmail(_))
        ));
        let bad_phone = Account {
            phone: Some("0044 20 7946".into()),
            ..account()
        };
        assert_eq!(bad_phone.validate(), Err(AccountError::InvalidPhone));
        let bad_code = Account {
            anti_phishing_code: Some("ab".into()),
            ..account()
        };
        assert_eq!(
            bad_code.validate(),
            Err(AccountError::InvalidAntiPhishingCode)
        );
    }
}
