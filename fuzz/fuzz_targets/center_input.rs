//! What a browser sends the security center, as the server reads it
//! (`portcullis_core::browser`): the cookie reader against a plain reading of the `Cookie`
//! header values pair by pair (the first pair of that name wins), the device-id check never
//! letting through anything but `dev_` and letters, digits or `_`; and every center form read
//! by serde's derived reader against a plain reading of the url-encoded pairs (each known field
//! at most once, the required ones present, unknown fields ignored, the digest's hour a `u8`).
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use portcullis_core::browser::{
    CheckForm, CodeForm, CsrfForm, DigestForm, LockForm, ReportForm, TotpStartForm, cookie,
    is_device_id, read_form,
};
use std::collections::HashMap;

const NAMES: [&str; 3] = ["pc_session", "pc_device", "pc_verify"];

#[derive(Debug, Arbitrary)]
struct Input {
    headers: Vec<String>,
    name: u8,
    body: Vec<u8>,
}

/// The cookie read pair by pair, by position, without `split`.
fn reference_cookie<'a>(headers: &[&'a str], name: &str) -> Option<&'a str> {
    for header in headers {
        let mut start = 0;
        while start <= header.len() {
            let end = header[start..].find(';').map_or(header.len(), |at| start + at);
            let pair = header[start..end].trim();
            if let Some(eq) = pair.find('=')
                && &pair[..eq] == name
            {
                return Some(&pair[eq + 1..]);
            }
            start = end + 1;
        }
    }
    None
}

/// The form's fields as a plain reading finds them, `fields` listing the struct's fields; `None`
/// when one of them is given twice (serde's derived reader refuses a repeated field).
fn pairs(body: &[u8], fields: &[&str]) -> Option<HashMap<String, String>> {
    let mut found = HashMap::new();
    for (key, value) in form_urlencoded::parse(body) {
        if fields.contains(&key.as_ref()) && found.insert(key.into_owned(), value.into_owned()).is_some() {
            return None;
        }
    }
    Some(found)
}

fn check_forms(body: &[u8]) {
    let got = |fields: &[&str]| pairs(body, fields);
    let csrf = got(&["csrf"]).and_then(|f| Some(CsrfForm { csrf: f.get("csrf")?.clone() }));
    assert_eq!(read_form::<CsrfForm>(body), csrf, "{body:?}");
    let code = got(&["csrf", "code"]).and_then(|mut f| {
        Some(CodeForm { csrf: f.remove("csrf")?, code: f.remove("code")? })
    });
    assert_eq!(read_form::<CodeForm>(body), code, "{body:?}");
    let totp = got(&["csrf", "step_up_grant"]).and_then(|mut f| {
        Some(TotpStartForm { csrf: f.remove("csrf")?, step_up_grant: f.remove("step_up_grant") })
    });
    assert_eq!(read_form::<TotpStartForm>(body), totp, "{body:?}");
    let lock = got(&["csrf", "until", "confirmed"]).and_then(|mut f| {
        let (csrf, until) = (f.remove("csrf")?, f.remove("until")?);
        Some(LockForm { csrf, until, confirmed: f.remove("confirmed") })
    });
    assert_eq!(read_form::<LockForm>(body), lock, "{body:?}");
    let digest = got(&["csrf", "hour_utc"]).and_then(|mut f| {
        let hour_utc = f.remove("hour_utc")?.parse().ok()?;
        Some(DigestForm { csrf: f.remove("csrf")?, hour_utc })
    });
    assert_eq!(read_form::<DigestForm>(body), digest, "{body:?}");
    let check = got(&["csrf", "value"]).and_then(|mut f| {
        Some(CheckForm { csrf: f.remove("csrf")?, value: f.remove("value")? })
    });
    assert_eq!(read_form::<CheckForm>(body), check, "{body:?}");
    let report = got(&["csrf", "value", "channel", "claimed"]).and_then(|mut f| {
        let (csrf, value) = (f.remove("csrf")?, f.remove("value")?);
        let (channel, claimed) = (f.remove("channel"), f.remove("claimed"));
        Some(ReportForm { csrf, value, channel, claimed })
    });
    assert_eq!(read_form::<ReportForm>(body), report, "{body:?}");
}

fuzz_target!(|input: Input| {
    let headers: Vec<&str> = input.headers.iter().map(String::as_str).collect();
    let name = NAMES[usize::from(input.name) % NAMES.len()];
    let found = cookie(headers.iter().copied(), name);
    assert_eq!(found, reference_cookie(&headers, name), "{headers:?}");
    if let Some(value) = found
        && is_device_id(value)
    {
        assert!(value.starts_with("dev_") && value.len() <= 64, "{value:?}");
        assert!(value.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'), "{value:?}");
    }
    check_forms(&input.body);
});
