//! Property tests of the verification pipeline (`VerifiableKey::verify`) and the rules it is
//! built from: a correct signature verifies; any change to the payload, the signature or the
//! key makes it fail with `BadSignature`; an accepted request is refused the second time by a
//! real replay guard; the freshness window, the IP allow-list and scope sets agree with direct
//! restatements of their definitions.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use aws_lc_rs::digest;
use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair as _};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use portcullis_core::allowlist::IpAllowList;
use portcullis_core::key::{ApiKey, IdlePolicy, KeyAlgorithm};
use portcullis_core::replay::{FingerprintSeed, ReplayGuard};
use portcullis_core::scope::{Scope, ScopeSet};
use portcullis_core::secret::Secret;
use portcullis_core::signing::{Ed25519PublicKey, Freshness, HmacSha256Key, PayloadError};
use portcullis_core::time::UnixMillis;
use portcullis_core::verify::{
    HmacGeneration, Rejection, SignedRequest, SigningMaterial, VerifiableKey,
};
use proptest::prelude::*;
use std::net::{IpAddr, Ipv4Addr};

const KEY_ID: &str = "k_prop";
/// `recvWindow` when the payload has none, and its largest value (Binance's, as published in
/// `shared/data/test-vectors/signing-and-otp.md`); deliberately not core's own constants.
const DEFAULT_WINDOW_MS: i64 = 5_000;
const MAX_WINDOW_MS: i64 = 60_000;
const CLIENT_IP: [u8; 4] = [192, 0, 2, 1];

fn config(algorithm: KeyAlgorithm) -> ApiKey {
    ApiKey {
        key_id: KEY_ID.into(),
        api_key: "prop".into(),
        account: "acc".into(),
        label: String::new(),
        algorithm,
        public_key: None,
        // `read` only and created at the epoch: never idle-expired, whatever `now` is.
        scopes: ScopeSet::parse(["read"]).unwrap(),
        ip_allowlist: IpAllowList::unrestricted(),
        created_at: UnixMillis(0),
        updated_at: UnixMillis(0),
        expires_at: None,
        last_used_at: None,
        last_used_ip: None,
        revoked_at: None,
        idle_warned_at: None,
        fund_window: None,
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

fn hmac_sign(secret: &[u8], payload: &str) -> String {
    HmacSha256Key::new(&Secret::new(secret.to_vec())).sign_hex(payload.as_bytes())
}

fn ed25519_pair(seed: &[u8; 32]) -> Ed25519KeyPair {
    Ed25519KeyPair::from_seed_unchecked(seed).unwrap()
}

fn ed25519_key(public: &[u8]) -> VerifiableKey {
    let public = Ed25519PublicKey::from_bytes(public).unwrap();
    let mut key = config(KeyAlgorithm::Ed25519);
    key.public_key = Some(public.clone());
    VerifiableKey::new(key, SigningMaterial::Ed25519(public))
}

/// One request through the pipeline at `now`, with the given freshness and a replay guard
/// that never refuses.
fn check_with(
    key: &VerifiableKey,
    payload: &str,
    signature: &str,
    freshness: Freshness,
    now: i64,
) -> Result<(), Rejection> {
    let request = SignedRequest {
        signature,
        payload,
        ip: CLIENT_IP.into(),
        scope: Scope::Read,
    };
    key.verify(
        &request,
        freshness,
        UnixMillis(now),
        IdlePolicy::default_policy(),
        |_, _, _| true,
    )
}

/// One request through the pipeline, freshness read from the payload as the server does.
fn check(key: &VerifiableKey, payload: &str, signature: &str, now: i64) -> Result<(), Rejection> {
    check_with(
        key,
        payload,
        signature,
        Freshness::from_payload(payload).unwrap(),
        now,
    )
}

/// The pipeline on a payload that was tampered with. The server reads freshness from the
/// payload it receives, so this does too, with a clock reading at which that freshness is
/// valid; when the change broke the `timestamp`/`recvWindow` parameters (the server would
/// refuse such a payload before verifying it) the original freshness is used, so that the
/// signature check is exercised for a change at every position.
fn check_tampered(
    key: &VerifiableKey,
    original: &SignedPayload,
    payload: &str,
    signature: &str,
) -> Result<(), Rejection> {
    let freshness = Freshness::from_payload(payload).unwrap_or(original.freshness);
    let now = if freshness.is_fresh_at(original.now) {
        original.now
    } else {
        freshness.timestamp_ms
    };
    assert!(freshness.is_fresh_at(now), "{freshness:?} at {now}");
    check_with(key, payload, signature, freshness, now)
}

/// A Binance-style `k=v&k=v` payload with `timestamp` (and perhaps `recvWindow`) somewhere in
/// it, and a clock reading at which it is fresh.
#[derive(Debug, Clone)]
struct SignedPayload {
    payload: String,
    freshness: Freshness,
    now: i64,
}

fn parameter() -> impl Strategy<Value = String> {
    let name = "[a-zA-Z][a-zA-Z0-9_]{0,11}".prop_filter("not a freshness parameter", |n| {
        n != "timestamp" && n != "recvWindow"
    });
    let value = prop_oneof![
        "[a-zA-Z0-9._~-]{0,24}",
        // Percent-encoded UTF-8, as Binance wants non-ASCII values signed.
        "\\PC{1,6}".prop_map(|text| {
            text.bytes()
                .map(|b| format!("%{b:02X}"))
                .collect::<String>()
        }),
    ];
    (name, value).prop_map(|(name, value)| format!("{name}={value}"))
}

fn signed_payload() -> impl Strategy<Value = SignedPayload> {
    (
        proptest::collection::vec(parameter(), 0..8),
        1_000_000_000_000i64..4_000_000_000_000,
        proptest::option::of(1..=MAX_WINDOW_MS),
        any::<prop::sample::Index>(),
        any::<prop::sample::Index>(),
        any::<prop::sample::Index>(),
    )
        .prop_map(
            |(mut parameters, timestamp, window, at_ts, at_window, offset)| {
                parameters.insert(
                    at_ts.index(parameters.len() + 1),
                    format!("timestamp={timestamp}"),
                );
                if let Some(window) = window {
                    parameters.insert(
                        at_window.index(parameters.len() + 1),
                        format!("recvWindow={window}"),
                    );
                }
                let window = window.unwrap_or(DEFAULT_WINDOW_MS);
                // Anywhere in the window: from 999 ms before the timestamp to `recvWindow` after.
                let span = usize::try_from(window + 1_000).unwrap();
                let now = timestamp - 999 + i64::try_from(offset.index(span)).unwrap();
                SignedPayload {
                    payload: parameters.join("&"),
                    freshness: Freshness {
                        timestamp_ms: timestamp,
                        recv_window_ms: window,
                    },
                    now,
                }
            },
        )
}

/// `text` with the byte at `at` replaced by a different ASCII byte (so it stays UTF-8).
fn replace_byte(text: &str, at: prop::sample::Index, by: u8) -> String {
    let mut bytes = text.as_bytes().to_vec();
    let i = at.index(bytes.len());
    let old = bytes[i];
    assert!(old.is_ascii(), "payloads are ASCII");
    bytes[i] = (old + 1 + by % 127) % 128;
    assert_ne!(bytes[i], old);
    String::from_utf8(bytes).unwrap()
}

/// Whether two HMAC keys are the same key: HMAC hashes a key longer than the block (64 bytes)
/// and pads a shorter one with zeros, so `k` and `k || 0x00` sign alike.
fn hmac_equivalent(a: &[u8], b: &[u8]) -> bool {
    fn block_key(key: &[u8]) -> Vec<u8> {
        let mut key = if key.len() > 64 {
            digest::digest(&digest::SHA256, key).as_ref().to_vec()
        } else {
            key.to_vec()
        };
        while key.last() == Some(&0) {
            key.pop();
        }
        key
    }
    block_key(a) == block_key(b)
}

const HEX_LOWER: &[u8; 16] = b"0123456789abcdef";
const HEX_UPPER: &[u8; 16] = b"0123456789ABCDEF";
const BASE64_CHARS: &[u8; 65] =
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=";

fn hex_value(digit: u8) -> usize {
    HEX_LOWER
        .iter()
        .position(|d| *d == digit.to_ascii_lowercase())
        .unwrap()
}

/// Where the clock is, relative to a request's timestamp and window: often right at one of
/// the window's two edges (where an off-by-one would show), otherwise near it or anywhere.
#[derive(Debug, Clone, Copy)]
enum Clock {
    /// `now = timestamp - 1000 + d`: the first instant accepted is `d = 1`.
    AheadEdge(i64),
    /// `now = timestamp + recvWindow + d`: the last instant accepted is `d = 0`.
    BehindEdge(i64),
    Near(i64),
    Anywhere(i64),
}

fn clock() -> impl Strategy<Value = Clock> {
    prop_oneof![
        (-3i64..=3).prop_map(Clock::AheadEdge),
        (-3i64..=3).prop_map(Clock::BehindEdge),
        (-70_000i64..70_000).prop_map(Clock::Near),
        any::<i64>().prop_map(Clock::Anywhere),
    ]
}

impl Clock {
    fn now(self, freshness: Freshness) -> i64 {
        let (t, w) = (freshness.timestamp_ms, freshness.recv_window_ms);
        match self {
            Clock::AheadEdge(d) => t - 1000 + d,
            Clock::BehindEdge(d) => t + w + d,
            Clock::Near(d) => t + d,
            Clock::Anywhere(now) => now,
        }
    }
}

/// Binance's rule, `timestamp < now + 1000 && now - timestamp <= recvWindow`, restated in
/// arithmetic that cannot overflow.
fn binance_fresh(timestamp: i64, recv_window: i64, now: i64) -> bool {
    let (t, w, n) = (
        i128::from(timestamp),
        i128::from(recv_window),
        i128::from(now),
    );
    t < n + 1000 && n - t <= w
}

proptest! {
    #[test]
    fn hmac_correct_signatures_verify(
        secret in proptest::collection::vec(any::<u8>(), 1..100),
        request in signed_payload(),
        upper in any::<bool>(),
    ) {
        let mut signature = hmac_sign(&secret, &request.payload);
        prop_assert_eq!(signature.len(), 64);
        prop_assert!(signature.bytes().all(|b| HEX_LOWER.contains(&b)), "lower-case hex");
        if upper {
            signature = signature.to_uppercase();
        }
        prop_assert_eq!(check(&hmac_key(&secret), &request.payload, &signature, request.now), Ok(()));
    }

    #[test]
    fn hmac_any_payload_byte_changed_is_a_bad_signature(
        secret in proptest::collection::vec(any::<u8>(), 1..100),
        request in signed_payload(),
        at in any::<prop::sample::Index>(),
        by in any::<u8>(),
    ) {
        let signature = hmac_sign(&secret, &request.payload);
        let changed = replace_byte(&request.payload, at, by);
        prop_assert_eq!(
            check_tampered(&hmac_key(&secret), &request, &changed, &signature),
            Err(Rejection::BadSignature)
        );
    }

    #[test]
    fn hmac_any_signature_digit_changed_is_a_bad_signature(
        secret in proptest::collection::vec(any::<u8>(), 1..100),
        request in signed_payload(),
        at in any::<prop::sample::Index>(),
        by in 1usize..16,
        upper in any::<bool>(),
    ) {
        let mut digits = hmac_sign(&secret, &request.payload).into_bytes();
        let i = at.index(digits.len());
        let value = (hex_value(digits[i]) + by) % 16;
        digits[i] = if upper { HEX_UPPER[value] } else { HEX_LOWER[value] };
        let changed = String::from_utf8(digits).unwrap();
        prop_assert_eq!(
            check(&hmac_key(&secret), &request.payload, &changed, request.now),
            Err(Rejection::BadSignature)
        );
    }

    #[test]
    fn hmac_another_secret_is_a_bad_signature(
        secret in proptest::collection::vec(any::<u8>(), 1..100),
        other in proptest::collection::vec(any::<u8>(), 1..100),
        request in signed_payload(),
        at in any::<prop::sample::Index>(),
        by in 1u8..=255,
    ) {
        let signature = hmac_sign(&secret, &request.payload);
        if !hmac_equivalent(&secret, &other) {
            prop_assert_eq!(
                check(&hmac_key(&other), &request.payload, &signature, request.now),
                Err(Rejection::BadSignature)
            );
        }
        // One byte of the secret changed: never an equivalent key.
        let mut nearly = secret.clone();
        let i = at.index(nearly.len());
        nearly[i] ^= by;
        prop_assert_eq!(
            check(&hmac_key(&nearly), &request.payload, &signature, request.now),
            Err(Rejection::BadSignature)
        );
    }

    #[test]
    fn ed25519_correct_signatures_verify(seed in any::<[u8; 32]>(), request in signed_payload()) {
        let pair = ed25519_pair(&seed);
        let signature = BASE64.encode(pair.sign(request.payload.as_bytes()).as_ref());
        let key = ed25519_key(pair.public_key().as_ref());
        prop_assert_eq!(check(&key, &request.payload, &signature, request.now), Ok(()));
    }

    #[test]
    fn ed25519_any_payload_byte_changed_is_a_bad_signature(
        seed in any::<[u8; 32]>(),
        request in signed_payload(),
        at in any::<prop::sample::Index>(),
        by in any::<u8>(),
    ) {
        let pair = ed25519_pair(&seed);
        let signature = BASE64.encode(pair.sign(request.payload.as_bytes()).as_ref());
        let key = ed25519_key(pair.public_key().as_ref());
        let changed = replace_byte(&request.payload, at, by);
        prop_assert_eq!(
            check_tampered(&key, &request, &changed, &signature),
            Err(Rejection::BadSignature)
        );
    }

    #[test]
    fn ed25519_any_signature_change_is_a_bad_signature(
        seed in any::<[u8; 32]>(),
        request in signed_payload(),
        at in any::<prop::sample::Index>(),
        flip in 1u8..=255,
        by in 1usize..65,
    ) {
        let pair = ed25519_pair(&seed);
        let raw = pair.sign(request.payload.as_bytes()).as_ref().to_vec();
        let key = ed25519_key(pair.public_key().as_ref());

        // Any byte of the decoded signature.
        let mut bytes = raw.clone();
        let i = at.index(bytes.len());
        bytes[i] ^= flip;
        prop_assert_eq!(
            check(&key, &request.payload, &BASE64.encode(&bytes), request.now),
            Err(Rejection::BadSignature)
        );

        // Any character of its base64 text, including the padding and the last data
        // character, whose low bits are unused (non-canonical encodings must not pass).
        let mut text = BASE64.encode(&raw).into_bytes();
        let i = at.index(text.len());
        let old = BASE64_CHARS.iter().position(|c| *c == text[i]).unwrap();
        text[i] = BASE64_CHARS[(old + by) % BASE64_CHARS.len()];
        let changed = String::from_utf8(text).unwrap();
        prop_assert_eq!(
            check(&key, &request.payload, &changed, request.now),
            Err(Rejection::BadSignature),
            "{}", changed
        );
    }

    #[test]
    fn ed25519_another_key_is_a_bad_signature(
        seed in any::<[u8; 32]>(),
        other_seed in any::<[u8; 32]>(),
        request in signed_payload(),
        at in any::<prop::sample::Index>(),
        flip in 1u8..=255,
    ) {
        let pair = ed25519_pair(&seed);
        let signature = BASE64.encode(pair.sign(request.payload.as_bytes()).as_ref());
        if other_seed != seed {
            let other = ed25519_pair(&other_seed);
            prop_assert_eq!(
                check(&ed25519_key(other.public_key().as_ref()), &request.payload, &signature, request.now),
                Err(Rejection::BadSignature)
            );
        }
        // The signer's public key with one byte changed (often not even a curve point).
        let mut public = pair.public_key().as_ref().to_vec();
        let i = at.index(public.len());
        public[i] ^= flip;
        prop_assert_eq!(
            check(&ed25519_key(&public), &request.payload, &signature, request.now),
            Err(Rejection::BadSignature)
        );
    }

    #[test]
    fn an_accepted_request_is_replayed_the_second_time(
        secret in proptest::collection::vec(any::<u8>(), 1..100),
        ed_seed in any::<[u8; 32]>(),
        request in signed_payload(),
        later in any::<prop::sample::Index>(),
        fingerprint_seed in any::<u64>(),
    ) {
        let hmac = hmac_key(&secret);
        let pair = ed25519_pair(&ed_seed);
        let ed25519 = ed25519_key(pair.public_key().as_ref());
        let hmac_signature = hmac_sign(&secret, &request.payload);
        let ed_signature = BASE64.encode(pair.sign(request.payload.as_bytes()).as_ref());

        let fingerprints = FingerprintSeed::new(fingerprint_seed);
        let mut guard = ReplayGuard::new();
        let mut attempt = |key: &VerifiableKey, payload: &str, signature: &str, now: i64| {
            let freshness = Freshness::from_payload(payload).unwrap();
            let request = SignedRequest { signature, payload, ip: CLIENT_IP.into(), scope: Scope::Read };
            key.verify(&request, freshness, UnixMillis(now), IdlePolicy::default_policy(), |sig, expires, _| {
                assert_eq!(expires, freshness.expires_at_ms());
                guard.first_use(fingerprints.fingerprint(&key.key.key_id, sig), expires, now)
            })
        };
        let now = request.now;
        // A later reading of the clock, still inside the window.
        let span = usize::try_from(request.freshness.expires_at_ms() - now + 1).unwrap();
        let then = now + i64::try_from(later.index(span)).unwrap();

        prop_assert_eq!(attempt(&hmac, &request.payload, &hmac_signature, now), Ok(()));
        prop_assert_eq!(attempt(&hmac, &request.payload, &hmac_signature, now), Err(Rejection::Replayed));
        prop_assert_eq!(
            attempt(&hmac, &request.payload, &hmac_signature.to_uppercase(), then),
            Err(Rejection::Replayed),
            "the same tag in upper case is the same use"
        );
        prop_assert_eq!(attempt(&ed25519, &request.payload, &ed_signature, now), Ok(()));
        prop_assert_eq!(attempt(&ed25519, &request.payload, &ed_signature, then), Err(Rejection::Replayed));

        // The same signature under another key (same secret) is that key's first use.
        let mut twin = hmac_key(&secret);
        twin.key.key_id = format!("{KEY_ID}_twin");
        prop_assert_eq!(attempt(&twin, &request.payload, &hmac_signature, then), Ok(()));
        prop_assert_eq!(attempt(&twin, &request.payload, &hmac_signature, then), Err(Rejection::Replayed));

        // A different request is a different use.
        let other_payload = format!("nonce=1&{}", request.payload);
        let other_signature = hmac_sign(&secret, &other_payload);
        prop_assert_eq!(attempt(&hmac, &other_payload, &other_signature, then), Ok(()));
    }

    #[test]
    fn the_guard_is_asked_once_per_valid_signature_and_told_whether_the_rest_passes(
        secret in proptest::collection::vec(any::<u8>(), 1..100),
        request in signed_payload(),
        from_allowed_ip in any::<bool>(),
        scope_held in any::<bool>(),
        tampered in any::<bool>(),
    ) {
        let mut key = hmac_key(&secret);
        if !from_allowed_ip {
            key.key.ip_allowlist = IpAllowList::parse(["198.51.100.0/24"]).unwrap();
        }
        let scope = if scope_held { Scope::Read } else { Scope::Trade };
        let mut signature = hmac_sign(&secret, &request.payload);
        if tampered {
            signature = hmac_sign(b"another secret", &request.payload);
        }
        let signed = SignedRequest {
            signature: &signature,
            payload: &request.payload,
            ip: CLIENT_IP.into(),
            scope,
        };
        let mut asked = Vec::new();
        let verdict = key.verify(
            &signed,
            request.freshness,
            UnixMillis(request.now),
            IdlePolicy::default_policy(),
            |_, _, passes| {
                asked.push(passes);
                true
            },
        );
        let expected = if tampered {
            Err(Rejection::BadSignature)
        } else if !from_allowed_ip {
            Err(Rejection::IpNotAllowed)
        } else if !scope_held {
            Err(Rejection::ScopeMissing)
        } else {
            Ok(())
        };
        prop_assert_eq!(verdict, expected);
        let expected_asks = if tampered { vec![] } else { vec![expected.is_ok()] };
        prop_assert_eq!(asked, expected_asks, "only valid signatures reach the guard");
    }

    #[test]
    fn the_window_rule_is_binances(
        timestamp in 0i64..=999_999_999_999_999_999,
        // Any window, in range or not, often right at the bounds.
        window in proptest::option::of(prop_oneof![
            0..=70_000i64,
            (MAX_WINDOW_MS - 2)..=(MAX_WINDOW_MS + 2),
            -2..=2i64,
        ]),
        clock in clock(),
        window_first in any::<bool>(),
    ) {
        let payload = match (window, window_first) {
            (None, _) => format!("a=1&timestamp={timestamp}"),
            (Some(w), true) => format!("recvWindow={w}&timestamp={timestamp}"),
            (Some(w), false) => format!("timestamp={timestamp}&recvWindow={w}"),
        };
        let parsed = Freshness::from_payload(&payload);
        let window = window.unwrap_or(DEFAULT_WINDOW_MS);
        if !(1..=MAX_WINDOW_MS).contains(&window) {
            prop_assert_eq!(parsed, Err(PayloadError::RecvWindowOutOfRange));
            return Ok(());
        }
        let freshness = parsed.unwrap();
        prop_assert_eq!(
            freshness,
            Freshness { timestamp_ms: timestamp, recv_window_ms: window }
        );
        let now = clock.now(freshness);
        prop_assert_eq!(freshness.is_fresh_at(now), binance_fresh(timestamp, window, now));
        prop_assert_eq!(freshness.expires_at_ms(), timestamp + window);
    }

    #[test]
    fn the_pipeline_applies_the_window_rule(
        secret in proptest::collection::vec(any::<u8>(), 1..100),
        request in signed_payload(),
        clock in clock(),
    ) {
        let signature = hmac_sign(&secret, &request.payload);
        let Freshness { timestamp_ms, recv_window_ms } = request.freshness;
        let now = clock.now(request.freshness);
        let expected = if binance_fresh(timestamp_ms, recv_window_ms, now) {
            Ok(())
        } else {
            Err(Rejection::TimestampOutsideWindow)
        };
        prop_assert_eq!(check(&hmac_key(&secret), &request.payload, &signature, now), expected);
    }

    #[test]
    fn v4_allow_lists_match_a_naive_prefix_check(
        networks in proptest::collection::vec((any::<u32>(), 0u8..=32), 1..5),
        near in any::<prop::sample::Index>(),
        flipped_bits in any::<u32>(),
        keep_high in 0u32..=32,
        random in any::<u32>(),
        use_random in proptest::bool::weighted(0.25),
    ) {
        let entries: Vec<String> = networks
            .iter()
            .map(|&(network, prefix)| {
                let address = Ipv4Addr::from(network);
                if prefix == 32 && network % 2 == 0 {
                    address.to_string() // a bare address means /32
                } else {
                    format!("{address}/{prefix}")
                }
            })
            .collect();
        let list = IpAllowList::parse(&entries).unwrap();

        // Addresses near one of the networks (only low bits changed) match often; random
        // ones rarely do.
        let address = if use_random {
            random
        } else {
            let (network, _) = networks[near.index(networks.len())];
            let low_mask = u32::MAX.checked_shr(keep_high).unwrap_or(0);
            network ^ (flipped_bits & low_mask)
        };
        let mask = |prefix: u8| u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
        let expected = networks
            .iter()
            .any(|&(network, prefix)| address & mask(prefix) == network & mask(prefix));

        let v4 = Ipv4Addr::from(address);
        prop_assert_eq!(list.allows(IpAddr::V4(v4)), expected, "{} in {:?}", v4, entries);
        prop_assert_eq!(
            list.allows(IpAddr::V6(v4.to_ipv6_mapped())),
            expected,
            "IPv4-mapped {} in {:?}", v4, entries
        );
        prop_assert!(IpAllowList::unrestricted().allows(IpAddr::V4(v4)));
    }

    #[test]
    fn scope_sets_round_trip_through_their_names(
        picks in proptest::collection::vec(proptest::sample::select(Scope::ALL.to_vec()), 0..10),
    ) {
        let names: Vec<&str> = picks.iter().map(|s| s.as_str()).collect();
        let set = ScopeSet::parse(&names).unwrap();
        let canonical: Vec<&str> = Scope::ALL
            .into_iter()
            .filter(|s| picks.contains(s))
            .map(Scope::as_str)
            .collect();
        prop_assert_eq!(set.names(), canonical, "canonical order, no duplicates");
        prop_assert_eq!(ScopeSet::parse(set.names()).unwrap(), set);
        for scope in Scope::ALL {
            prop_assert_eq!(set.contains(scope), picks.contains(&scope));
        }
        let mut with_unknown = names.clone();
        with_unknown.push("admin");
        prop_assert!(ScopeSet::parse(&with_unknown).is_err());
    }
}

// Every single-character change of a signature's text, for a few random keys and payloads: a
// few thousand verifications per case, so fewer cases.
proptest! {
    #![proptest_config(ProptestConfig::with_cases(4))]

    #[test]
    fn hmac_every_other_hex_digit_anywhere_is_a_bad_signature(
        secret in proptest::collection::vec(any::<u8>(), 1..100),
        request in signed_payload(),
    ) {
        let key = hmac_key(&secret);
        let signature = hmac_sign(&secret, &request.payload);
        for i in 0..signature.len() {
            for digit in HEX_LOWER.iter().chain(HEX_UPPER) {
                let mut text = signature.clone().into_bytes();
                if hex_value(text[i]) == hex_value(*digit) {
                    continue;
                }
                text[i] = *digit;
                let changed = String::from_utf8(text).unwrap();
                prop_assert_eq!(
                    check(&key, &request.payload, &changed, request.now),
                    Err(Rejection::BadSignature),
                    "{}", changed
                );
            }
        }
    }

    #[test]
    fn ed25519_every_other_base64_character_anywhere_is_a_bad_signature(
        seed in any::<[u8; 32]>(),
        request in signed_payload(),
    ) {
        let pair = ed25519_pair(&seed);
        let key = ed25519_key(pair.public_key().as_ref());
        let signature = BASE64.encode(pair.sign(request.payload.as_bytes()).as_ref());
        for i in 0..signature.len() {
            for character in BASE64_CHARS {
                let mut text = signature.clone().into_bytes();
                if text[i] == *character {
                    continue;
                }
                text[i] = *character;
                let changed = String::from_utf8(text).unwrap();
                prop_assert_eq!(
                    check(&key, &request.payload, &changed, request.now),
                    Err(Rejection::BadSignature),
                    "{}", changed
                );
            }
        }
    }
}
