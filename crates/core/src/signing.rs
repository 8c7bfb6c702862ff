//! Request signatures as gateways receive them: Binance's REST scheme for HMAC keys (lowercase
//! hex HMAC-SHA256 over the query string followed by the body, compared case-insensitively) and
//! a base64 Ed25519 signature over the same payload for asymmetric keys.
//!
//! Also the parameters that bound a signature's life: `timestamp` and `recvWindow`, read from
//! the signed payload itself so that nobody can change them without breaking the signature.

use crate::secret::Secret;
use aws_lc_rs::{hmac, signature};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use std::fmt;

/// `recvWindow` when the payload does not say.
pub const DEFAULT_RECV_WINDOW_MS: i64 = 5_000;
/// The largest `recvWindow` accepted, as on Binance.
pub const MAX_RECV_WINDOW_MS: i64 = 60_000;
/// How far ahead of our clock a timestamp may be (Binance: `timestamp < serverTime + 1000`).
pub const MAX_CLOCK_AHEAD_MS: i64 = 1_000;

/// The freshness parameters of one signed payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Freshness {
    pub timestamp_ms: i64,
    pub recv_window_ms: i64,
}

/// Why a payload's freshness parameters cannot be read. These are malformed requests (the
/// gateway or client is broken), as opposed to verification failures.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PayloadError {
    #[error("the signed payload has no `timestamp` parameter")]
    MissingTimestamp,
    #[error("`timestamp` must be milliseconds since the epoch, as digits")]
    MalformedTimestamp,
    #[error("`recvWindow` must be whole milliseconds between 1 and {MAX_RECV_WINDOW_MS}")]
    RecvWindowOutOfRange,
    #[error("the parameter `{0}` appears more than once in the signed payload")]
    DuplicateParameter(&'static str),
}

impl Freshness {
    /// Reads `timestamp` (required) and `recvWindow` (optional) from a `k=v&k=v` payload.
    pub fn from_payload(payload: &str) -> Result<Self, PayloadError> {
        let mut timestamp = None;
        let mut recv_window = None;
        let bytes = payload.as_bytes();
        let mut start = 0;
        loop {
            let end = memchr::memchr(b'&', &bytes[start..]).map_or(bytes.len(), |at| start + at);
            let parameter = &bytes[start..end];
            // Look at the first byte before comparing names: most parameters are neither.
            match parameter.first() {
                Some(b't') if parameter.starts_with(b"timestamp=") => {
                    set_once(&mut timestamp, &parameter[10..], "timestamp")?;
                }
                Some(b'r') if parameter.starts_with(b"recvWindow=") => {
                    set_once(&mut recv_window, &parameter[11..], "recvWindow")?;
                }
                _ => {}
            }
            if end == bytes.len() {
                break;
            }
            start = end + 1;
        }
        let timestamp_ms = timestamp
            .ok_or(PayloadError::MissingTimestamp)
            .and_then(|v| parse_digits(v).ok_or(PayloadError::MalformedTimestamp))?;
        let recv_window_ms = match recv_window {
            None => DEFAULT_RECV_WINDOW_MS,
            Some(v) => parse_digits(v)
                .filter(|w| (1..=MAX_RECV_WINDOW_MS).contains(w))
                .ok_or(PayloadError::RecvWindowOutOfRange)?,
        };
        Ok(Self {
            timestamp_ms,
            recv_window_ms,
        })
    }

    /// Binance's rule: `timestamp < now + 1000` and `now - timestamp <= recvWindow`.
    pub fn is_fresh_at(&self, now_ms: i64) -> bool {
        self.timestamp_ms < now_ms.saturating_add(MAX_CLOCK_AHEAD_MS)
            && now_ms.saturating_sub(self.timestamp_ms) <= self.recv_window_ms
    }

    /// The last instant at which a signature with these parameters can still be accepted; a
    /// replay guard must remember the signature until then.
    pub fn expires_at_ms(&self) -> i64 {
        self.timestamp_ms.saturating_add(self.recv_window_ms)
    }
}

fn set_once<'a>(
    slot: &mut Option<&'a [u8]>,
    value: &'a [u8],
    name: &'static str,
) -> Result<(), PayloadError> {
    if slot.replace(value).is_some() {
        return Err(PayloadError::DuplicateParameter(name));
    }
    Ok(())
}

fn parse_digits(value: &[u8]) -> Option<i64> {
    if value.is_empty() || value.len() > 18 {
        return None;
    }
    value.iter().try_fold(0i64, |acc, &b| {
        b.is_ascii_digit().then(|| acc * 10 + i64::from(b - b'0'))
    })
}

/// Length of a decoded HMAC-SHA256 signature.
pub const HMAC_SHA256_LEN: usize = 32;

/// A ready-to-use HMAC-SHA256 key (the key schedule is computed once, not per request).
pub struct HmacSha256Key(hmac::Key);

impl HmacSha256Key {
    pub fn new(secret: &Secret) -> Self {
        Self(hmac::Key::new(hmac::HMAC_SHA256, secret.expose()))
    }

    /// Lowercase hex signature of `payload`, as a client would send it.
    pub fn sign_hex(&self, payload: &[u8]) -> String {
        hex::encode(hmac::sign(&self.0, payload).as_ref())
    }

    /// Constant-time check of a decoded tag over `payload`.
    pub fn verify_tag(&self, payload: &[u8], tag: &[u8; HMAC_SHA256_LEN]) -> bool {
        hmac::verify(&self.0, payload, tag).is_ok()
    }

    /// Check of a hex signature (either case) over `payload`.
    pub fn verify_hex(&self, payload: &[u8], signature_hex: &str) -> bool {
        decode_hex_tag(signature_hex).is_some_and(|tag| self.verify_tag(payload, &tag))
    }
}

/// Decodes a hex HMAC-SHA256 signature in either case; `None` when it is not 64 hex digits.
///
/// A table lookup per digit: this runs on every verification, and the general-purpose decoder
/// costs as much as a fifth of the HMAC itself. Timing reveals nothing here: the input is the
/// client's own signature, and the comparison against the expected tag is constant-time.
pub fn decode_hex_tag(signature_hex: &str) -> Option<[u8; HMAC_SHA256_LEN]> {
    let digits: &[u8; 2 * HMAC_SHA256_LEN] = signature_hex.as_bytes().try_into().ok()?;
    let mut tag = [0u8; HMAC_SHA256_LEN];
    let mut invalid = 0u8;
    for i in 0..HMAC_SHA256_LEN {
        let high = HEX_VALUES[usize::from(digits[2 * i])];
        let low = HEX_VALUES[usize::from(digits[2 * i + 1])];
        invalid |= high | low;
        tag[i] = (high << 4) | (low & 0x0f);
    }
    (invalid & 0x10 == 0).then_some(tag)
}

/// Value of each ASCII hex digit; 0x10 marks anything else.
const HEX_VALUES: [u8; 256] = {
    let mut table = [0x10u8; 256];
    let mut digit = 0u8;
    while digit < 10 {
        table[(b'0' + digit) as usize] = digit;
        digit += 1;
    }
    let mut letter = 0u8;
    while letter < 6 {
        table[(b'a' + letter) as usize] = 10 + letter;
        table[(b'A' + letter) as usize] = 10 + letter;
        letter += 1;
    }
    table
};

/// Length of an Ed25519 signature.
pub const ED25519_SIGNATURE_LEN: usize = 64;

/// Decodes a standard-base64 Ed25519 signature; `None` when it is not 64 bytes.
pub fn decode_base64_signature(signature_b64: &str) -> Option<[u8; ED25519_SIGNATURE_LEN]> {
    let mut raw = [0u8; ED25519_SIGNATURE_LEN];
    match BASE64.decode_slice(signature_b64, &mut raw) {
        Ok(ED25519_SIGNATURE_LEN) => Some(raw),
        _ => None,
    }
}

impl fmt::Debug for HmacSha256Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("HmacSha256Key([redacted])")
    }
}

/// Length of an Ed25519 public key.
pub const ED25519_PUBLIC_KEY_LEN: usize = 32;

/// A customer's Ed25519 public key. Portcullis never holds the private half.
#[derive(Clone, PartialEq, Eq)]
pub struct Ed25519PublicKey([u8; ED25519_PUBLIC_KEY_LEN]);

/// Public key material that is not a 32-byte Ed25519 key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not an Ed25519 public key: {0}")]
pub struct PublicKeyError(pub &'static str);

impl Ed25519PublicKey {
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, PublicKeyError> {
        let raw: [u8; ED25519_PUBLIC_KEY_LEN] = bytes
            .try_into()
            .map_err(|_| PublicKeyError("expected 32 bytes"))?;
        Ok(Self(raw))
    }

    /// Accepts the raw key as 64 hex digits or as base64, or a PEM `PUBLIC KEY` (SPKI), which is
    /// how Binance asks customers to paste their Ed25519 keys.
    pub fn parse(text: &str) -> Result<Self, PublicKeyError> {
        let text = text.trim();
        if text.len() == 2 * ED25519_PUBLIC_KEY_LEN
            && let Ok(bytes) = hex::decode(text)
        {
            return Self::from_bytes(&bytes);
        }
        let body: String = text
            .lines()
            .filter(|line| !line.starts_with("-----"))
            .collect::<String>()
            .split_whitespace()
            .collect();
        let bytes = BASE64
            .decode(body)
            .map_err(|_| PublicKeyError("neither hex, base64 nor PEM"))?;
        match bytes.len() {
            ED25519_PUBLIC_KEY_LEN => Self::from_bytes(&bytes),
            44 if bytes.starts_with(&SPKI_ED25519_PREFIX) => Self::from_bytes(&bytes[12..]),
            _ => Err(PublicKeyError("expected a 32-byte key or an Ed25519 SPKI")),
        }
    }

    pub fn as_bytes(&self) -> &[u8; ED25519_PUBLIC_KEY_LEN] {
        &self.0
    }

    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Checks a raw 64-byte signature.
    pub fn verify_raw(&self, payload: &[u8], signature: &[u8]) -> bool {
        signature::UnparsedPublicKey::new(&signature::ED25519, &self.0)
            .verify(payload, signature)
            .is_ok()
    }

    /// Checks a base64 signature, as clients send it.
    pub fn verify_base64(&self, payload: &[u8], signature_b64: &str) -> bool {
        decode_base64_signature(signature_b64).is_some_and(|raw| self.verify_raw(payload, &raw))
    }
}

/// DER prefix of a SubjectPublicKeyInfo holding an Ed25519 key (RFC 8410).
const SPKI_ED25519_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];

impl fmt::Debug for Ed25519PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Ed25519PublicKey({})", self.to_hex())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_timestamp_and_window() {
        let f =
            Freshness::from_payload("symbol=X&recvWindow=7000&timestamp=1499827319559").unwrap();
        assert_eq!(f.timestamp_ms, 1_499_827_319_559);
        assert_eq!(f.recv_window_ms, 7000);
        let f = Freshness::from_payload("timestamp=10").unwrap();
        assert_eq!(f.recv_window_ms, DEFAULT_RECV_WINDOW_MS);
    }

    #[test]
    fn refuses_malformed_freshness() {
        use PayloadError::*;
        let cases = [
            ("symbol=X", MissingTimestamp),
            ("timestamp=", MalformedTimestamp),
            ("timestamp=12a", MalformedTimestamp),
            ("timestamp=-5", MalformedTimestamp),
            ("timestamp=1&recvWindow=60001", RecvWindowOutOfRange),
            ("timestamp=1&recvWindow=0", RecvWindowOutOfRange),
            ("timestamp=1&recvWindow=5000.5", RecvWindowOutOfRange),
            ("timestamp=1&timestamp=2", DuplicateParameter("timestamp")),
        ];
        for (payload, expected) in cases {
            assert_eq!(Freshness::from_payload(payload), Err(expected), "{payload}");
        }
    }

    #[test]
    fn finds_parameters_wherever_they_are() {
        for filler in 0..20 {
            let pad = "x".repeat(filler);
            let payload = format!("a{pad}=1&recvWindow=9000&b=2&timestamp=77&c={pad}");
            let f = Freshness::from_payload(&payload).unwrap();
            assert_eq!((f.timestamp_ms, f.recv_window_ms), (77, 9000), "{payload}");
            let first = Freshness::from_payload(&format!("timestamp=5&z={pad}")).unwrap();
            assert_eq!(first.timestamp_ms, 5);
        }
        assert_eq!(
            Freshness::from_payload("xtimestamp=5&recvWindow=100"),
            Err(PayloadError::MissingTimestamp),
            "a name must start a parameter"
        );
        assert_eq!(
            Freshness::from_payload("q=timestamp=5&timestamp=6")
                .unwrap()
                .timestamp_ms,
            6
        );
    }

    #[test]
    fn binance_window_rule_at_its_edges() {
        let f = Freshness {
            timestamp_ms: 10_000,
            recv_window_ms: 5_000,
        };
        assert!(f.is_fresh_at(15_000));
        assert!(!f.is_fresh_at(15_001));
        assert!(f.is_fresh_at(9_001));
        assert!(!f.is_fresh_at(9_000));
    }

    #[test]
    fn hex_tags_decode_in_either_case_and_refuse_anything_else() {
        let lower = "c8db56825ae71d6d79447849e617115f4a920fa2acdcab2b053c4b2838bd6b71";
        let expected = hex::decode(lower).unwrap();
        assert_eq!(decode_hex_tag(lower).unwrap().to_vec(), expected);
        assert_eq!(
            decode_hex_tag(&lower.to_uppercase()).unwrap().to_vec(),
            expected
        );
        assert!(decode_hex_tag(&lower[..62]).is_none());
        assert!(decode_hex_tag(&format!("{lower}00")).is_none());
        for bad in ['g', 'G', ' ', '/', ':', '@', '`', '\u{e9}'] {
            let mut text: String = lower.chars().take(63).collect();
            text.push(bad);
            assert!(decode_hex_tag(&text).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn parses_public_key_forms() {
        let hex_key = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";
        let from_hex = Ed25519PublicKey::parse(hex_key).unwrap();
        let raw = hex::decode(hex_key).unwrap();
        let from_b64 = Ed25519PublicKey::parse(&BASE64.encode(&raw)).unwrap();
        let mut spki = SPKI_ED25519_PREFIX.to_vec();
        spki.extend_from_slice(&raw);
        let pem = format!(
            "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
            BASE64.encode(&spki)
        );
        let from_pem = Ed25519PublicKey::parse(&pem).unwrap();
        assert_eq!(from_hex, from_b64);
        assert_eq!(from_hex, from_pem);
        assert!(Ed25519PublicKey::parse("abc").is_err());
    }
}
