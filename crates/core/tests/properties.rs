//! Property tests: any change to the payload, the signature or the key makes verification
//! fail; an accepted signature is refused the second time; the window rule and the allow-list
//! agree with direct restatements of their definitions.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair as _};
use base64::Engine as _;
use portcullis_core::allowlist::IpAllowList;
use portcullis_core::key::{ApiKey, IdlePolicy, KeyAlgorithm};
use portcullis_core::replay::{FingerprintSeed, ReplayGuard};
use portcullis_core::scope::{Scope, ScopeSet};
use portcullis_core::secret::Secret;
use portcullis_core::signing::{Ed25519PublicKey, Freshness, HmacSha256Key};
use portcullis_core::time::UnixMillis;
use portcullis_core::verify::{
    HmacGeneration, Rejection, SignedRequest, SigningMaterial, VerifiableKey,
};
use proptest::prelude::*;
use std::net::{IpAddr, Ipv4Addr};

const NOW: i64 = 1_767_225_600_000;

fn config(algorithm: KeyAlgorithm) -> ApiKey {
    ApiKey {
        key_id: "k_prop".into(),
        api_key: "prop".into(),
        account: "acc".into(),
        label: String::new(),
        algorithm,
        public_key: None,
        scopes: ScopeSet::parse(["read"]).unwrap(),
        ip_allowlist: IpAllowList::unrestricted(),
        created_at: UnixMillis(NOW - 1),
        updated_at: UnixMillis(NOW - 1),
        expires_at: None,
        last_used_at: None,
        last_used_ip: None,
        revoked_at: None,
        idle_warned_at: None,
        version: 1,
    }
}

fn hmac_key(secret: &[u8]) -> VerifiableKey {
    let generation = HmacGeneration {
        key: HmacSha256Key::new(&Secret::new(secret.to_vec())),
        valid_until: None,
    };
    VerifiableKey::new(
        config(KeyAlgorithm::HmacSha256),
        SigningMaterial::Hmac(vec![generation]),
    )
}

fn ed25519_key(seed: &[u8; 32]) -> (Ed25519KeyPair, VerifiableKey) {
    let pair = Ed25519KeyPair::from_seed_unchecked(seed).unwrap();
    let public = Ed25519PublicKey::from_bytes(pair.public_key().as_ref()).unwrap();
    (
        pair,
        VerifiableKey::new(
            config(KeyAlgorithm::Ed25519),
            SigningMaterial::Ed25519(public),
        ),
    )
}

fn check(key: &VerifiableKey, payload: &str, signature: &str) -> Result<(), Rejection> {
    let Ok(freshness) = Freshness::from_payload(payload) else {
        return Err(Rejection::BadSignature);
    };
    let request = SignedRequest {
        signature,
        payload,
        ip: IpAddr::from([192, 0, 2, 1]),
        scope: Scope::Read,
    };
    key.verify(
        &request,
        freshness,
        UnixMillis(NOW),
        IdlePolicy::default_policy(),
        |_, _| true,
    )
}

fn payload_strategy() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9=.%]{0,120}".prop_map(|body| format!("q={body}&timestamp={NOW}"))
}

/// A different printable ASCII character at position `at` (payloads stay valid UTF-8).
fn change_char(text: &str, at: usize, delta: u8) -> String {
    let mut bytes = text.as_bytes().to_vec();
    let i = at % bytes.len();
    bytes[i] = b' ' + (bytes[i] - b' ' + 1 + delta % 94) % 95;
    String::from_utf8(bytes).unwrap()
}

proptest! {
    #[test]
    fn hmac_accepts_only_the_exact_payload_signature_and_key(
        secret in proptest::collection::vec(any::<u8>(), 16..80),
        other_secret in proptest::collection::vec(any::<u8>(), 16..80),
        payload in payload_strategy(),
        at in any::<usize>(),
        delta in any::<u8>(),
    ) {
        let signature = HmacSha256Key::new(&Secret::new(secret.clone())).sign_hex(payload.as_bytes());
        prop_assert_eq!(check(&hmac_key(&secret), &payload, &signature), Ok(()));

        let changed_payload = change_char(&payload, at, delta);
        prop_assume!(Freshness::from_payload(&changed_payload).is_ok_and(|f| f.is_fresh_at(NOW)));
        prop_assert_eq!(check(&hmac_key(&secret), &changed_payload, &signature), Err(Rejection::BadSignature));

        let mut digits = signature.into_bytes();
        let i = at % digits.len();
        let alphabet = b"0123456789abcdef";
        let position = alphabet.iter().position(|d| *d == digits[i]).unwrap();
        digits[i] = alphabet[(position + 1 + usize::from(delta) % 15) % 16];
        let changed_signature = String::from_utf8(digits).unwrap();
        prop_assert_eq!(check(&hmac_key(&secret), &payload, &changed_signature), Err(Rejection::BadSignature));

        prop_assume!(other_secret != secret);
        let original = HmacSha256Key::new(&Secret::new(secret)).sign_hex(payload.as_bytes());
        prop_assert_eq!(check(&hmac_key(&other_secret), &payload, &original), Err(Rejection::BadSignature));
    }

    #[test]
    fn ed25519_accepts_only_the_exact_payload_signature_and_key(
        seed in any::<[u8; 32]>(),
        other_seed in any::<[u8; 32]>(),
        payload in payload_strategy(),
        at in any::<usize>(),
        flip in 1u8..=255,
    ) {
        let (pair, key) = ed25519_key(&seed);
        let raw = pair.sign(payload.as_bytes());
        let signature = base64::engine::general_purpose::STANDARD.encode(raw.as_ref());
        prop_assert_eq!(check(&key, &payload, &signature), Ok(()));

        let changed_payload = change_char(&payload, at, flip);
        prop_assume!(Freshness::from_payload(&changed_payload).is_ok_and(|f| f.is_fresh_at(NOW)));
        prop_assert_eq!(check(&key, &changed_payload, &signature), Err(Rejection::BadSignature));

        let mut bytes = raw.as_ref().to_vec();
        let i = at % bytes.len();
        bytes[i] ^= flip;
        let changed = base64::engine::general_purpose::STANDARD.encode(&bytes);
        prop_assert_eq!(check(&key, &payload, &changed), Err(Rejection::BadSignature));

        prop_assume!(other_seed != seed);
        let (_, other_key) = ed25519_key(&other_seed);
        prop_assert_eq!(check(&other_key, &payload, &signature), Err(Rejection::BadSignature));
    }

    #[test]
    fn an_accepted_signature_is_refused_the_second_time(
        secret in proptest::collection::vec(any::<u8>(), 16..64),
        payload in payload_strategy(),
        seed in any::<u64>(),
    ) {
        let key = hmac_key(&secret);
        let signature = HmacSha256Key::new(&Secret::new(secret)).sign_hex(payload.as_bytes());
        let fingerprints = FingerprintSeed::new(seed);
        let mut guard = ReplayGuard::new();
        let freshness = Freshness::from_payload(&payload).unwrap();
        let request = SignedRequest { signature: &signature, payload: &payload, ip: IpAddr::from([192, 0, 2, 1]), scope: Scope::Read };
        let mut attempt = |signature: &str| {
            let request = SignedRequest { signature, ..request };
            key.verify(&request, freshness, UnixMillis(NOW), IdlePolicy::default_policy(), |sig, expires| {
                guard.first_use(fingerprints.fingerprint("k_prop", sig), expires, NOW)
            })
        };
        prop_assert_eq!(attempt(&signature), Ok(()));
        prop_assert_eq!(attempt(&signature), Err(Rejection::Replayed));
        prop_assert_eq!(attempt(&signature.to_uppercase()), Err(Rejection::Replayed));
    }

    #[test]
    fn the_window_rule_is_binances(timestamp in 0i64..4_000_000, now in 0i64..4_000_000, window in 1i64..=60_000) {
        let freshness = Freshness::from_payload(&format!("recvWindow={window}&timestamp={timestamp}")).unwrap();
        let expected = timestamp < now + 1000 && now - timestamp <= window;
        prop_assert_eq!(freshness.is_fresh_at(now), expected);
    }

    #[test]
    fn allow_lists_match_a_naive_prefix_check(network in any::<u32>(), prefix in 0u8..=32, address in any::<u32>()) {
        let list = IpAllowList::parse([format!("{}/{prefix}", Ipv4Addr::from(network))]).unwrap();
        let mask = if prefix == 0 { 0 } else { u32::MAX << (32 - u32::from(prefix)) };
        let expected = (address & mask) == (network & mask);
        prop_assert_eq!(list.allows(IpAddr::V4(Ipv4Addr::from(address))), expected);
    }

    #[test]
    fn scope_sets_round_trip(names in proptest::sample::subsequence(vec!["read", "trade", "withdraw", "transfer"], 0..=4)) {
        let set = ScopeSet::parse(&names).unwrap();
        prop_assert_eq!(set.names(), names);
    }
}
