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
    ///
    /// This runs on every verification, so it looks only where parameters start: the `&`s are
    /// found 64 bytes at a time (one comparison the compiler vectorises) and each parameter is
    /// judged by its first byte. Errors come in payload order, as a reading parameter by
    /// parameter gives them (a property test compares the two).
    pub fn from_payload(payload: &str) -> Result<Self, PayloadError> {
        let bytes = payload.as_bytes();
        let mut scan = Scan::default();
        scan.parameter_at(bytes, 0);
        let mut words = bytes.chunks_exact(8);
        // Where a parameter would start after an `&` in byte 0 of the current word.
        let mut after = 1;
        for word in &mut words {
            let word = <[u8; 8]>::try_from(word).unwrap_or_default();
            scan.ampersands(bytes, u64::from_le_bytes(word), after);
            after += 8;
        }
        // The last, partial word, padded with zeros (which are not `&`).
        let last =
            (words.remainder().iter().rev()).fold(0u64, |word, &b| (word << 8) | u64::from(b));
        scan.ampersands(bytes, last, after);
        let Scan {
            timestamp,
            recv_window,
            duplicate,
        } = scan;
        if let Some(name) = duplicate {
            return Err(PayloadError::DuplicateParameter(name));
        }
        let timestamp_ms = timestamp
            .ok_or(PayloadError::MissingTimestamp)
            .and_then(|at| parse_value(bytes, at).ok_or(PayloadError::MalformedTimestamp))?;
        let recv_window_ms = match recv_window {
            None => DEFAULT_RECV_WINDOW_MS,
            Some(at) => parse_value(bytes, at)
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

/// What a scan of a payload found: where each value starts, and the first repeated name.
/// Nothing returns early, so the loop over the words stays a few instructions per word.
#[derive(Debug, Default)]
struct Scan {
    timestamp: Option<usize>,
    recv_window: Option<usize>,
    duplicate: Option<&'static str>,
}

impl Scan {
    /// Looks at the parameter starting at `start`, by its first byte before its name.
    #[inline(always)]
    fn parameter_at(&mut self, payload: &[u8], start: usize) {
        let parameter = payload.get(start..).unwrap_or_default();
        let (slot, name, length) = match parameter.first() {
            Some(b't') if parameter.starts_with(b"timestamp=") => {
                (&mut self.timestamp, "timestamp", 10)
            }
            Some(b'r') if parameter.starts_with(b"recvWindow=") => {
                (&mut self.recv_window, "recvWindow", 11)
            }
            _ => return,
        };
        if slot.is_some() {
            // Payload order: the first repeated name is the one reported.
            self.duplicate.get_or_insert(name);
        } else {
            *slot = Some(start + length);
        }
    }

    /// Looks after each `&` among the eight bytes `word` holds (little-endian); `after` is
    /// where a parameter would start after an `&` in its byte 0. Inlined: most words hold no
    /// `&`, and a call per word would cost more than the test.
    #[inline(always)]
    fn ampersands(&mut self, payload: &[u8], word: u64, after: usize) {
        let mut found = ampersand_bytes(word);
        while found != 0 {
            let byte = found.trailing_zeros() / 8;
            found &= found - 1;
            self.parameter_at(payload, after + byte as usize);
        }
    }
}

/// Bit 7 of each byte of `word` that is `&`, and no other bit. The classic exact zero-byte
/// test on `word ^ "&&&&&&&&"`: adding 0x7f to the low seven bits sets bit 7 exactly when they
/// are not all zero, and no byte carries into the next.
fn ampersand_bytes(word: u64) -> u64 {
    const LOW_SEVEN: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    let x = word ^ 0x2626_2626_2626_2626;
    !(((x & LOW_SEVEN) + LOW_SEVEN) | x | LOW_SEVEN)
}

/// The value starting at `at` as a non-negative integer of at most 18 digits (so it cannot
/// overflow), up to the next `&` or the end.
fn parse_value(payload: &[u8], at: usize) -> Option<i64> {
    let mut value = 0i64;
    let mut digits = 0usize;
    for &byte in payload.get(at..)? {
        if byte == b'&' {
            break;
        }
        let digit = byte.wrapping_sub(b'0');
        if digit > 9 || digits == 18 {
            return None;
        }
        value = value * 10 + i64::from(digit);
        digits += 1;
    }
    (digits > 0).then_some(value)
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
/// Arithmetic without branches or table lookups, so the compiler decodes many digits per
/// instruction: this runs on every verification, and the general-purpose decoder costs as much
/// as a fifth of the HMAC itself. Timing reveals nothing here: the input is the client's own
/// signature, and the comparison against the expected tag is constant-time.
pub fn decode_hex_tag(signature_hex: &str) -> Option<[u8; HMAC_SHA256_LEN]> {
    let digits: &[u8; 2 * HMAC_SHA256_LEN] = signature_hex.as_bytes().try_into().ok()?;
    let mut values = [0u8; 2 * HMAC_SHA256_LEN];
    let mut invalid = 0u8;
    for (value, &digit) in values.iter_mut().zip(digits) {
        let decimal = digit.wrapping_sub(b'0');
        // Setting bit 5 folds `A`-`F` onto `a`-`f` (and no other byte lands there).
        let letter = (digit | 0x20).wrapping_sub(b'a');
        let is_decimal = decimal < 10;
        invalid |= u8::from(!is_decimal & (letter >= 6));
        *value = if is_decimal {
            decimal
        } else {
            letter.wrapping_add(10)
        };
    }
    let mut tag = [0u8; HMAC_SHA256_LEN];
    for (byte, pair) in tag.iter_mut().zip(values.chunks_exact(2)) {
        *byte = (pair[0] << 4) | (pair[1] & 0x0f);
    }
    (invalid == 0).then_some(tag)
}

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

    /// The parameter-by-parameter reading `from_payload` must agree with, errors included.
    fn reference_freshness(payload: &str) -> Result<Freshness, PayloadError> {
        let (mut timestamp, mut recv_window) = (None, None);
        for parameter in payload.split('&') {
            let (slot, name) = if let Some(v) = parameter.strip_prefix("timestamp=") {
                ((&mut timestamp, v), "timestamp")
            } else if let Some(v) = parameter.strip_prefix("recvWindow=") {
                ((&mut recv_window, v), "recvWindow")
            } else {
                continue;
            };
            if slot.0.replace(slot.1).is_some() {
                return Err(PayloadError::DuplicateParameter(name));
            }
        }
        let digits = |v: &str| {
            (!v.is_empty() && v.len() <= 18 && v.bytes().all(|b| b.is_ascii_digit()))
                .then(|| v.parse::<i64>().unwrap())
        };
        let timestamp_ms = digits(timestamp.ok_or(PayloadError::MissingTimestamp)?)
            .ok_or(PayloadError::MalformedTimestamp)?;
        let recv_window_ms = match recv_window {
            None => DEFAULT_RECV_WINDOW_MS,
            Some(v) => digits(v)
                .filter(|w| (1..=MAX_RECV_WINDOW_MS).contains(w))
                .ok_or(PayloadError::RecvWindowOutOfRange)?,
        };
        Ok(Freshness {
            timestamp_ms,
            recv_window_ms,
        })
    }

    proptest::proptest! {
        /// Payloads glued from the pieces that matter (names, separators, digits, look-alikes),
        /// so duplicates, names inside values, empty and long values, and parameters across
        /// the 64-byte blocks of the scanner all come up often.
        #[test]
        fn the_freshness_scanner_reads_like_the_reference(pieces in proptest::collection::vec(
            proptest::sample::select(vec![
                "timestamp=", "recvWindow=", "&", "=", "t", "r", "x", "1", "0", "9", "5000",
                "1499827319559", "999999999999999999", "1000000000000000000", "imestamp=",
                "recvWindow", "timestamp", "-", "\u{e9}",
                "newClientOrderId=r17n13999&symbol=BTCUSDT&quantity=1.5&",
            ]),
            0..40,
        )) {
            let payload: String = pieces.concat();
            proptest::prop_assert_eq!(
                Freshness::from_payload(&payload),
                reference_freshness(&payload),
                "{}", payload
            );
        }
    }

    #[test]
    fn duplicates_are_reported_in_payload_order() {
        let cases = [
            (
                "timestamp=1&recvWindow=1&recvWindow=2&timestamp=2",
                "recvWindow",
            ),
            (
                "timestamp=1&recvWindow=1&timestamp=2&recvWindow=2",
                "timestamp",
            ),
            (
                "recvWindow=1&timestamp=1&recvWindow=x&timestamp=2&timestamp=3",
                "recvWindow",
            ),
        ];
        for (payload, name) in cases {
            assert_eq!(
                Freshness::from_payload(payload),
                Err(PayloadError::DuplicateParameter(name)),
                "{payload}"
            );
            assert_eq!(
                reference_freshness(payload),
                Freshness::from_payload(payload)
            );
        }
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
    fn every_byte_in_every_position_decodes_as_hex_does() {
        let base = "00112233445566778899aabbccddeeffAABBCCDDEEFF0123456789abcdef0123";
        for at in [0, 1, 17, 62, 63] {
            for byte in 0..=255u8 {
                let mut digits = base.as_bytes().to_vec();
                digits[at] = byte;
                let Ok(text) = String::from_utf8(digits) else {
                    continue;
                };
                let expected = hex::decode(&text)
                    .ok()
                    .map(|raw| <[u8; 32]>::try_from(raw).unwrap());
                assert_eq!(decode_hex_tag(&text), expected, "{byte:#x} at {at}");
            }
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
