//! What a browser sends the security center, read without HTTP: a cookie's value from the
//! request's `Cookie` header values, the shape of a device id, and the center's url-encoded
//! form bodies into their field sets. The server's extractors call these; so do the fuzz
//! targets (`fuzz/fuzz_targets/center_input.rs`).

use serde::Deserialize;
use serde::de::DeserializeOwned;

/// The value of the cookie `name` in a request's `Cookie` header values: the first
/// `name=value` pair, pairs separated by `;` and trimmed.
pub fn cookie<'a>(header_values: impl IntoIterator<Item = &'a str>, name: &str) -> Option<&'a str> {
    header_values
        .into_iter()
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(found, _)| *found == name)
        .map(|(_, value)| value)
}

/// Whether a device cookie's value looks like one of the ids this server hands out
/// (`dev_` and letters, digits or `_`, at most 64 bytes): anything else is ignored.
pub fn is_device_id(value: &str) -> bool {
    value.starts_with("dev_")
        && value.len() <= 64
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// A url-encoded form body read into `T` (unknown fields ignored, a known field given twice
/// refused); `None` when it does not fit.
pub fn read_form<T: DeserializeOwned>(body: &[u8]) -> Option<T> {
    serde_urlencoded::from_bytes(body).ok()
}

/// A form that carries only the page's anti-CSRF token (freeze, cancel, sign out, ...).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct CsrfForm {
    pub csrf: String,
}

/// The form that starts adding an authenticator app: on an account with a passkey the page's
/// script fills in the grant of the passkey step-up it ran first.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct TotpStartForm {
    pub csrf: String,
    #[serde(default)]
    pub step_up_grant: Option<String>,
}

/// The TOTP confirmation form.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct CodeForm {
    pub csrf: String,
    pub code: String,
}

/// The settings-lock form.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct LockForm {
    pub csrf: String,
    /// `YYYY-MM-DD`: the lock ends at the start of that day (UTC).
    pub until: String,
    /// `yes` once the customer has seen the date spelled out.
    #[serde(default)]
    pub confirmed: Option<String>,
}

/// The daily digest's form: the hour (UTC) to send it at.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct DigestForm {
    pub csrf: String,
    pub hour_utc: u8,
}

/// The contact check form (is this number or address really the exchange's?).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct CheckForm {
    pub csrf: String,
    pub value: String,
}

/// The contact report form.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ReportForm {
    pub csrf: String,
    pub value: String,
    pub channel: Option<String>,
    pub claimed: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_pair_of_that_name_is_read_across_headers() {
        let headers = ["a=1; pc_session=tok", "pc_session=later"];
        assert_eq!(cookie(headers, "pc_session"), Some("tok"));
        assert_eq!(cookie(["x=1;pc_device = dev_1"], "pc_device"), None);
        assert_eq!(cookie([" pc_device=dev_1 ;"], "pc_device"), Some("dev_1"));
        assert_eq!(cookie(["pc_session"], "pc_session"), None);
        assert_eq!(cookie(["pc_session=a=b"], "pc_session"), Some("a=b"));
    }

    #[test]
    fn only_our_device_ids_pass() {
        assert!(is_device_id("dev_abc_123"));
        for bad in [
            "<script>",
            "dev_a-b",
            "abc",
            &format!("dev_{}", "a".repeat(61)),
        ] {
            assert!(!is_device_id(bad), "{bad}");
        }
    }

    #[test]
    fn forms_take_their_fields_once_and_ignore_the_rest() {
        let lock: LockForm = read_form(b"csrf=t&until=2027-01-02&extra=1").unwrap();
        assert_eq!((lock.until.as_str(), lock.confirmed), ("2027-01-02", None));
        assert_eq!(read_form::<CsrfForm>(b"csrf=a&csrf=b"), None);
        assert_eq!(read_form::<DigestForm>(b"csrf=a&hour_utc=24x"), None);
        let digest: DigestForm = read_form(b"hour_utc=%2B7&csrf=a%20b").unwrap();
        assert_eq!((digest.csrf.as_str(), digest.hour_utc), ("a b", 7));
        assert_eq!(read_form::<CheckForm>(b"csrf=a"), None);
    }
}
