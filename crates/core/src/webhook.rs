//! Webhook signatures: `Portcullis-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256>` over
//! `"<t>.<raw body>"` (the scheme Stripe made familiar), and the check a receiver runs.
//!
//! The timestamp is inside the signed bytes, so a captured delivery cannot be replayed once it
//! is older than the receiver's tolerance; comparison is constant-time (`hmac::verify`).

use crate::secret::Secret;
use crate::time::UnixMillis;
use aws_lc_rs::hmac;

/// The signature header's name.
pub const SIGNATURE_HEADER: &str = "Portcullis-Signature";
/// The header carrying the outbox message id, the same on every retry of one message.
pub const DELIVERY_ID_HEADER: &str = "Portcullis-Delivery-Id";

/// Why a signature was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookSignatureError {
    #[error("the signature header is malformed (expected t=<seconds>,v1=<hex>)")]
    Malformed,
    #[error("the signature timestamp is outside the tolerance")]
    Stale,
    #[error("no signature matches the body")]
    Mismatch,
}

fn signed_payload(t_secs: i64, body: &[u8]) -> Vec<u8> {
    let mut payload = format!("{t_secs}.").into_bytes();
    payload.extend_from_slice(body);
    payload
}

/// The header value for `body` sent at `now` (whole seconds).
pub fn sign_webhook(secret: &Secret, now: UnixMillis, body: &[u8]) -> String {
    let t_secs = now.as_millis().div_euclid(1000);
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret.expose());
    let tag = hmac::sign(&key, &signed_payload(t_secs, body));
    format!("t={t_secs},v1={}", hex::encode(tag.as_ref()))
}

/// Checks `header` against `body`: the timestamp must lie within `tolerance_secs` of `now`
/// (either side) and at least one `v1` entry must match. Several `v1` entries are allowed so a
/// sender can sign with an old and a new secret while they are being rotated.
pub fn verify_webhook_signature(
    secret: &[u8],
    header: &str,
    body: &[u8],
    now: UnixMillis,
    tolerance_secs: i64,
) -> Result<(), WebhookSignatureError> {
    let mut timestamp = None;
    let mut tags = Vec::new();
    for part in header.split(',') {
        let (name, value) = part
            .trim()
            .split_once('=')
            .ok_or(WebhookSignatureError::Malformed)?;
        match name {
            "t" => {
                let t = value
                    .parse::<i64>()
                    .map_err(|_| WebhookSignatureError::Malformed)?;
                if timestamp.replace(t).is_some() {
                    return Err(WebhookSignatureError::Malformed);
                }
            }
            "v1" => tags.push(hex::decode(value).map_err(|_| WebhookSignatureError::Malformed)?),
            // Later schemes (v2, ...) are ignored, as receivers of such headers usually do.
            _ => {}
        }
    }
    let t_secs = timestamp.ok_or(WebhookSignatureError::Malformed)?;
    if tags.is_empty() {
        return Err(WebhookSignatureError::Malformed);
    }
    let now_secs = now.as_millis().div_euclid(1000);
    if now_secs.saturating_sub(t_secs).saturating_abs() > tolerance_secs {
        return Err(WebhookSignatureError::Stale);
    }
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
    let payload = signed_payload(t_secs, body);
    if tags
        .iter()
        .any(|tag| hmac::verify(&key, &payload, tag).is_ok())
    {
        Ok(())
    } else {
        Err(WebhookSignatureError::Mismatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: UnixMillis = UnixMillis(1_767_225_600_123);

    fn secret() -> Secret {
        Secret::new(b"whsec_test".to_vec())
    }

    #[test]
    fn a_signed_body_verifies() {
        let header = sign_webhook(&secret(), NOW, b"{\"id\":\"ntf_1\"}");
        assert!(header.starts_with("t=1767225600,v1="));
        assert_eq!(
            verify_webhook_signature(b"whsec_test", &header, b"{\"id\":\"ntf_1\"}", NOW, 300),
            Ok(())
        );
    }

    #[test]
    fn matches_an_independent_hmac() {
        // HMAC-SHA256("whsec_test", "1767225600.{}"), computed with `openssl dgst -sha256 -hmac`.
        let header = sign_webhook(&secret(), NOW, b"{}");
        assert_eq!(
            header,
            "t=1767225600,v1=4a942ef9477fb7b15b98664cf7ff2c2543984c1fa6bdf3520b48dcb25bcd1fe4"
        );
    }

    #[test]
    fn the_worked_example_in_the_docs_holds() {
        // docs/notifications.md: the same numbers as its openssl and Python examples.
        let body = br#"{"id":"ntf_1","type":"widening.pending"}"#;
        let secret = Secret::new(b"whsec_0123456789abcdef".to_vec());
        let header = sign_webhook(&secret, UnixMillis::from_secs(1_767_225_600), body);
        let documented =
            "t=1767225600,v1=fe897582a0d41bd0a735607217d9b80ae18ec53eba971003503aec19f4f61af1";
        assert_eq!(header, documented);
        let docs = include_str!("../../../docs/notifications.md");
        assert!(docs.contains(documented));
        assert_eq!(
            verify_webhook_signature(
                secret.expose(),
                documented,
                body,
                UnixMillis::from_secs(1_767_225_700),
                300
            ),
            Ok(())
        );
    }

    #[test]
    fn tampering_the_wrong_secret_and_old_timestamps_are_refused() {
        let body = b"{\"id\":\"ntf_1\"}";
        let header = sign_webhook(&secret(), NOW, body);
        assert_eq!(
            verify_webhook_signature(b"whsec_test", &header, b"{\"id\":\"ntf_2\"}", NOW, 300),
            Err(WebhookSignatureError::Mismatch)
        );
        assert_eq!(
            verify_webhook_signature(b"other", &header, body, NOW, 300),
            Err(WebhookSignatureError::Mismatch)
        );
        let later = NOW.plus_millis(301_000);
        assert_eq!(
            verify_webhook_signature(b"whsec_test", &header, body, later, 300),
            Err(WebhookSignatureError::Stale)
        );
        let earlier = NOW.plus_millis(-301_000);
        assert_eq!(
            verify_webhook_signature(b"whsec_test", &header, body, earlier, 300),
            Err(WebhookSignatureError::Stale)
        );
        // The timestamp is signed: moving it forward breaks the signature.
        let moved = header.replacen("t=1767225600", "t=1767225601", 1);
        assert_eq!(
            verify_webhook_signature(b"whsec_test", &moved, body, NOW, 300),
            Err(WebhookSignatureError::Mismatch)
        );
    }

    #[test]
    fn any_matching_v1_is_enough_and_junk_is_malformed() {
        let body = b"x";
        let good = sign_webhook(&secret(), NOW, body);
        let good_tag = good.split("v1=").nth(1).unwrap();
        let two = format!("t=1767225600,v1={},v1={good_tag}", "00".repeat(32));
        assert_eq!(
            verify_webhook_signature(b"whsec_test", &two, body, NOW, 300),
            Ok(())
        );
        for junk in [
            "",
            "t=1",
            "v1=00",
            "t=x,v1=00",
            "t=1,v1=zz",
            "t=1,t=2,v1=00",
            "garbage",
        ] {
            assert_eq!(
                verify_webhook_signature(b"whsec_test", junk, body, NOW, 300),
                Err(WebhookSignatureError::Malformed),
                "{junk}"
            );
        }
    }
}
