//! The published test vectors in `../shared/data/test-vectors/signing-and-otp.md` (Binance's
//! HMAC examples, RFC 8032 Ed25519), read from that file at test time and checked through the
//! same code the server runs: `VerifiableKey::verify`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair as _};
use base64::Engine as _;
use portcullis_core::allowlist::IpAllowList;
use portcullis_core::key::{ApiKey, IdlePolicy, KeyAlgorithm};
use portcullis_core::scope::{Scope, ScopeSet};
use portcullis_core::secret::Secret;
use portcullis_core::signing::{Ed25519PublicKey, Freshness, HmacSha256Key};
use portcullis_core::time::UnixMillis;
use portcullis_core::verify::{
    HmacGeneration, Rejection, SignedRequest, SigningMaterial, VerifiableKey,
};

const VECTORS: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/data/test-vectors/signing-and-otp.md"
));

/// The value after `name =` on the first line at or after byte `from` that has it, and the
/// position just after that line (so the next field is looked for after it).
fn field(from: usize, name: &str) -> (String, usize) {
    let mut offset = from;
    for line in VECTORS[from..].split_inclusive('\n') {
        offset += line.len();
        if let Some(rest) = line.trim().strip_prefix(name)
            && let Some(value) = rest.trim_start().strip_prefix('=')
        {
            return (value.trim().to_owned(), offset);
        }
    }
    panic!("vector field `{name}` not found in signing-and-otp.md");
}

fn section(heading: &str) -> usize {
    VECTORS
        .find(heading)
        .unwrap_or_else(|| panic!("section `{heading}` not found"))
}

fn hmac_key(secret: &str, generation_valid_until: Option<UnixMillis>) -> VerifiableKey {
    let key = ApiKey {
        key_id: "k_binance".into(),
        api_key: "vector".into(),
        account: "acc_vector".into(),
        label: String::new(),
        algorithm: KeyAlgorithm::HmacSha256,
        public_key: None,
        scopes: ScopeSet::parse(["read", "trade"]).unwrap(),
        ip_allowlist: IpAllowList::unrestricted(),
        created_at: UnixMillis(1_499_827_000_000),
        updated_at: UnixMillis(1_499_827_000_000),
        expires_at: None,
        last_used_at: None,
        last_used_ip: None,
        revoked_at: None,
        idle_warned_at: None,
        version: 1,
    };
    let generation = HmacGeneration {
        key: HmacSha256Key::new(&Secret::new(secret.as_bytes().to_vec())),
        valid_until: generation_valid_until,
    };
    VerifiableKey::new(key, SigningMaterial::Hmac(vec![generation]))
}

fn verify(key: &VerifiableKey, payload: &str, signature: &str) -> Result<(), Rejection> {
    let freshness = Freshness::from_payload(payload).unwrap();
    let now = UnixMillis(freshness.timestamp_ms);
    let request = SignedRequest {
        signature,
        payload,
        ip: "192.0.2.1".parse().unwrap(),
        scope: Scope::Trade,
    };
    key.verify(
        &request,
        freshness,
        now,
        IdlePolicy::default_policy(),
        |_, _| true,
    )
}

#[test]
fn binance_hmac_examples_verify_through_the_server_path() {
    let start = section("## Binance REST");
    let (secret, at) = field(start, "secretKey");
    let (payload_a, at) = field(at, "(a) payload");
    let (signature_a, at) = field(at, "signature");
    let (payload_b, at) = field(at, "(b) payload");
    let (signature_b, _) = field(at, "signature");
    assert_eq!(signature_a.len(), 64);
    assert!(
        payload_b.contains("%EF%BC%91"),
        "example (b) is the percent-encoded one"
    );

    let signing = HmacSha256Key::new(&Secret::new(secret.as_bytes().to_vec()));
    for (payload, signature) in [(&payload_a, &signature_a), (&payload_b, &signature_b)] {
        assert_eq!(
            &signing.sign_hex(payload.as_bytes()),
            signature,
            "{payload}"
        );
        let key = hmac_key(&secret, None);
        assert_eq!(verify(&key, payload, signature), Ok(()));
        let key = hmac_key(&secret, None);
        assert_eq!(
            verify(&key, payload, &signature.to_uppercase()),
            Ok(()),
            "hex is compared case-insensitively"
        );
        let key = hmac_key("another secret entirely", None);
        assert_eq!(
            verify(&key, payload, signature),
            Err(Rejection::BadSignature)
        );
    }
}

#[test]
fn binance_window_rule_on_the_published_timestamp() {
    let (secret, at) = field(section("## Binance REST"), "secretKey");
    let (payload, at) = field(at, "(a) payload");
    let (signature, _) = field(at, "signature");
    let freshness = Freshness::from_payload(&payload).unwrap();
    assert_eq!(
        (freshness.timestamp_ms, freshness.recv_window_ms),
        (1_499_827_319_559, 5_000)
    );
    let request = SignedRequest {
        signature: &signature,
        payload: &payload,
        ip: "192.0.2.1".parse().unwrap(),
        scope: Scope::Trade,
    };
    let at = |now: i64| {
        hmac_key(&secret, None).verify(
            &request,
            freshness,
            UnixMillis(now),
            IdlePolicy::default_policy(),
            |_, _| true,
        )
    };
    assert_eq!(at(1_499_827_319_559 + 5_000), Ok(()));
    assert_eq!(
        at(1_499_827_319_559 + 5_001),
        Err(Rejection::TimestampOutsideWindow)
    );
    assert_eq!(at(1_499_827_319_559 - 999), Ok(()));
    assert_eq!(
        at(1_499_827_319_559 - 1_000),
        Err(Rejection::TimestampOutsideWindow)
    );
}

fn rfc8032(test: &str) -> (Vec<u8>, Vec<u8>, Vec<u8>, Vec<u8>) {
    let start = section("## Ed25519 (RFC 8032");
    let at = start
        + VECTORS[start..]
            .find(test)
            .unwrap_or_else(|| panic!("{test} not found"));
    let (secret, at) = field(at, &format!("{test} secret"));
    let (public, at) = field(at, "public");
    let (message, at) = field(at, "msg");
    let (signature, _) = field(at, "sig");
    let message = if message == "(empty)" {
        Vec::new()
    } else {
        hex::decode(message).unwrap()
    };
    (
        hex::decode(secret).unwrap(),
        hex::decode(public).unwrap(),
        message,
        hex::decode(signature).unwrap(),
    )
}

#[test]
fn rfc8032_signatures_verify_and_keys_derive() {
    for test in ["TEST 1", "TEST 3"] {
        let (secret, public, message, signature) = rfc8032(test);
        assert_eq!(signature.len(), 64, "{test}");
        let pair = Ed25519KeyPair::from_seed_unchecked(&secret).unwrap();
        assert_eq!(
            pair.public_key().as_ref(),
            public.as_slice(),
            "{test}: public key derives from the secret"
        );
        assert_eq!(
            pair.sign(&message).as_ref(),
            signature.as_slice(),
            "{test}: signing is deterministic"
        );
        let key = Ed25519PublicKey::parse(&hex::encode(&public)).unwrap();
        assert!(key.verify_raw(&message, &signature), "{test}");
        let mut altered = signature.clone();
        altered[0] ^= 1;
        assert!(!key.verify_raw(&message, &altered), "{test}");
        assert!(!key.verify_raw(b"other message", &signature), "{test}");
    }
}

#[test]
fn rfc8032_key_verifies_requests_through_the_server_path() {
    let (secret, public, _, _) = rfc8032("TEST 1");
    let pair = Ed25519KeyPair::from_seed_unchecked(&secret).unwrap();
    let public_key =
        Ed25519PublicKey::parse(&base64::engine::general_purpose::STANDARD.encode(&public))
            .unwrap();
    let mut config = hmac_key("unused", None).key;
    config.algorithm = KeyAlgorithm::Ed25519;
    config.public_key = Some(public_key.clone());
    let key = VerifiableKey::new(config, SigningMaterial::Ed25519(public_key));
    let payload = "symbol=BTCUSDT&side=SELL&type=MARKET&quantity=0.5&timestamp=1499827319559";
    let signature =
        base64::engine::general_purpose::STANDARD.encode(pair.sign(payload.as_bytes()).as_ref());
    assert_eq!(verify(&key, payload, &signature), Ok(()));
    assert_eq!(
        verify(&key, &payload.replace("0.5", "5.0"), &signature),
        Err(Rejection::BadSignature)
    );
    assert_eq!(
        verify(
            &key,
            payload,
            &hex::encode(pair.sign(payload.as_bytes()).as_ref())
        ),
        Err(Rejection::BadSignature),
        "Ed25519 signatures are base64"
    );
}
