//! Phone numbers in any common notation, to E.164.
//!
//! The `phonenumber` crate (libphonenumber's metadata) reads national notations and checks
//! that a country code exists. For a number already written internationally (`+`, `00`) the
//! E.164 form is the digits themselves, and the crate is known to get some of those wrong: it
//! takes a national prefix out of numbers such as `+7 800 …`, `+375 801 …` and `+370 80x …`
//! (the test over libphonenumber's 1,144 examples shows where). The guard: for an
//! international number the crate only confirms the country code, and the answer is `+` and
//! the digits as written, so a mis-read can never turn one real number into another.

use crate::error::ContactError;
use phonenumber::country::Id;

/// E.164 allows at most 15 digits; the shortest real ones (short codes of small countries,
/// with the country code) have 5.
const MIN_DIGITS: usize = 5;
/// Without a `+`, fewer digits than this are a code or a count, not a number someone gave.
const MIN_NATIONAL_DIGITS: usize = 7;
const MAX_DIGITS: usize = 15;

/// Whether a value is written like a phone number: digits with the usual separators, an
/// optional leading `+` or `tel:`, and enough digits to be one.
pub fn looks_like_phone(value: &str) -> bool {
    let body = value.strip_prefix("tel:").unwrap_or(value);
    let body = body.trim_start_matches(['(', ' ']);
    let (body, least) = match body.strip_prefix('+') {
        Some(rest) => (rest, MIN_DIGITS),
        None => (body, MIN_NATIONAL_DIGITS),
    };
    let mut digits = 0;
    for c in body.chars() {
        match c {
            '0'..='9' => digits += 1,
            ' ' | '-' | '.' | '(' | ')' | '/' | '\u{A0}' => {}
            _ => return false,
        }
    }
    digits >= least && !is_dotted_quad(body)
}

/// `127.0.0.1` is an address, not a number.
fn is_dotted_quad(body: &str) -> bool {
    body.parse::<std::net::Ipv4Addr>().is_ok()
}

/// Whether `region` is an ISO 3166 alpha-2 code the phone metadata knows (`GB`, `SG`).
pub fn is_known_region(region: &str) -> bool {
    region.len() == 2 && region.parse::<Id>().is_ok()
}

/// `value` in E.164. A national notation needs `region` (ISO 3166 alpha-2, e.g. `GB`).
pub fn normalise_phone(value: &str, region: Option<&str>) -> Result<String, ContactError> {
    let body = value.strip_prefix("tel:").unwrap_or(value).trim();
    // "(+1) 415 …": a bracket before the country code.
    let body = body.trim_start_matches(['(', ' ']);
    // "+44 (0)20 …": the bracketed trunk prefix is not dialled from abroad.
    let body = body.replacen("(0)", "", 1);
    let international = body.starts_with('+') || body.starts_with("00");
    if !international {
        return national(&body, region);
    }
    let digits: String = body.chars().filter(char::is_ascii_digit).collect();
    let digits = match body.starts_with("00") {
        true => digits.get(2..).unwrap_or_default().to_owned(),
        false => digits,
    };
    if !(MIN_DIGITS..=MAX_DIGITS).contains(&digits.len()) {
        return Err(ContactError::InvalidPhone(format!(
            "an international number has {MIN_DIGITS} to {MAX_DIGITS} digits"
        )));
    }
    let written = format!("+{digits}");
    let parsed = phonenumber::parse(None, &written)
        .map_err(|e| ContactError::InvalidPhone(e.to_string()))?;
    // The guard (see the module header): the crate must agree on the country code; the rest
    // is the digits as written.
    let code = parsed.code().value().to_string();
    let Some(national) = digits.strip_prefix(code.as_str()).filter(|n| !n.is_empty()) else {
        return Err(ContactError::InvalidPhone("unknown country code".into()));
    };
    // "+44 (0)20 …" written without the brackets: the national prefix kept after the country
    // code. Only when the digits as written are no number of the country and the crate's
    // reading is one does the crate's reading win.
    let reading = parsed.format().mode(phonenumber::Mode::E164).to_string();
    if reading != written && parsed.is_valid() && !is_number_of(parsed.code().value(), national) {
        return Ok(reading);
    }
    Ok(written)
}

/// Whether `national` is a number of a region of country code `code`, by its metadata.
fn is_number_of(code: u16, national: &str) -> bool {
    (phonenumber::metadata::DATABASE.by_code(&code))
        .unwrap_or_default()
        .iter()
        .any(|metadata| matches_general(metadata, national))
}

/// The region's general pattern matches all of `digits`, at one of its lengths.
fn matches_general(metadata: &phonenumber::Metadata, digits: &str) -> bool {
    let general = metadata.descriptors().general();
    let lengths = general.possible_length();
    let length_fits = lengths.is_empty() || lengths.iter().any(|&l| usize::from(l) == digits.len());
    length_fits
        && general
            .national_number()
            .find(digits)
            .is_some_and(|m| m.start() == 0 && m.end() == digits.len())
}

fn national(body: &str, region: Option<&str>) -> Result<String, ContactError> {
    let Some(region) = region else {
        return Err(ContactError::InvalidPhone(
            "write the number with its country code, e.g. +44 20 7946 0000".into(),
        ));
    };
    let id: Id = region
        .to_ascii_uppercase()
        .parse()
        .map_err(|_| ContactError::InvalidPhone(format!("unknown region `{region}`")))?;
    let parsed = phonenumber::parse(Some(id), body)
        .map_err(|e| ContactError::InvalidPhone(e.to_string()))?;
    let mut e164 = parsed.format().mode(phonenumber::Mode::E164).to_string();
    // The crate also mis-reads some national numbers: those that begin with the country's own
    // code (`590 27 12 34` in Saint-Barthélemy) or with digits it takes for a trunk prefix
    // (`800 123 45 67` in Russia). When its reading is not a valid number and the digits as
    // written, after the country code, are, the digits win.
    if !parsed.is_valid()
        && let Some(written) = as_national_significant(body, id)
    {
        e164 = written;
    }
    let digits = e164.len() - 1;
    if (MIN_DIGITS..=MAX_DIGITS).contains(&digits) {
        Ok(e164)
    } else {
        Err(ContactError::InvalidPhone(format!(
            "an international number has {MIN_DIGITS} to {MAX_DIGITS} digits"
        )))
    }
}

/// `+`, the region's country code and the digits of `body`, if those digits are a number of
/// the region by its metadata (the crate's own validity check reads the number the same wrong
/// way, so the pattern is matched here, whole).
fn as_national_significant(body: &str, id: Id) -> Option<String> {
    let metadata = phonenumber::metadata::DATABASE.by_id(id.as_ref())?;
    let digits: String = body.chars().filter(char::is_ascii_digit).collect();
    matches_general(metadata, &digits).then(|| format!("+{}{digits}", metadata.country_code()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_notations_reach_the_same_number() {
        for written in [
            "+44 20 7946 0958",
            "+44 (0)20 7946 0958",
            "(+44) 020 7946 0958",
            "0044 20 7946 0958",
            "+44-20-7946-0958",
            "tel:+442079460958",
        ] {
            assert_eq!(
                normalise_phone(written, None).unwrap(),
                "+442079460958",
                "{written}"
            );
        }
        assert_eq!(
            normalise_phone("020 7946 0958", Some("gb")).unwrap(),
            "+442079460958"
        );
    }

    #[test]
    fn what_cannot_be_read_is_refused_with_a_reason() {
        assert!(matches!(
            normalise_phone("020 7946 0958", None),
            Err(ContactError::InvalidPhone(_))
        ));
        assert!(matches!(
            normalise_phone("+12", None),
            Err(ContactError::InvalidPhone(_))
        ));
        assert!(matches!(
            normalise_phone("+1234567890123456", None),
            Err(ContactError::InvalidPhone(_))
        ));
        assert!(matches!(
            normalise_phone("+999 1234 5678", None),
            Err(ContactError::InvalidPhone(_))
        ));
        assert!(matches!(
            normalise_phone("020 7946", Some("ZZ")),
            Err(ContactError::InvalidPhone(_))
        ));
    }

    #[test]
    fn what_looks_like_a_number() {
        assert!(looks_like_phone("+1 (415) 555-0100"));
        assert!(looks_like_phone("tel:+14155550100"));
        assert!(looks_like_phone("(+1) 415-555-0100"));
        assert!(!looks_like_phone("127.0.0.1"));
        assert!(!looks_like_phone("12345"));
        assert!(!looks_like_phone("binance.com"));
    }
}
