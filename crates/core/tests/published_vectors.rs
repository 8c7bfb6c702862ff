//! The published test vectors in `../shared/data/test-vectors/signing-and-otp.md` (Binance's
//! HMAC-SHA256 examples, RFC 8032 Ed25519 TEST 1 and TEST 3), read from that file when the tests
//! run and checked through the same code the server runs: `HmacSha256Key`, `Ed25519PublicKey`
//! and the whole `VerifiableKey::verify` pipeline with a real replay guard.
//!
//! Every vector the tests need must be found in the file: a missing block or field fails the
//! test, it never makes it pass vacuously. (Kraken's HMAC-SHA512 scheme is not one the server
//! supports, so its vector is not used.)

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair as _};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use portcullis_core::allowlist::IpAllowList;
use portcullis_core::key::{ApiKey, IdlePolicy, KeyAlgorithm};
use portcullis_core::replay::{FingerprintSeed, ReplayGuard};
use portcullis_core::scope::{Scope, ScopeSet};
use portcullis_core::secret::Secret;
use portcullis_core::signing::{
    DEFAULT_RECV_WINDOW_MS, Ed25519PublicKey, Freshness, HmacSha256Key, MAX_RECV_WINDOW_MS,
    PayloadError,
};
use portcullis_core::time::UnixMillis;
use portcullis_core::verify::{
    HmacGeneration, Rejection, SignedRequest, SigningMaterial, VerifiableKey,
};
use std::cell::RefCell;
use std::sync::OnceLock;

/// The shared vector file; the checkout has `../shared` beside it.
const VECTOR_FILE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/data/test-vectors/signing-and-otp.md"
);

/// The vector file's text, read once per test binary, at test time.
fn vector_text() -> &'static str {
    static TEXT: OnceLock<String> = OnceLock::new();
    TEXT.get_or_init(|| {
        std::fs::read_to_string(VECTOR_FILE)
            .unwrap_or_else(|e| panic!("cannot read the published vectors at {VECTOR_FILE}: {e}"))
    })
}

// ---------------------------------------------------------------------------------------------
// Parsing the vector file
// ---------------------------------------------------------------------------------------------

/// The body of the `## ...` section whose heading starts with `heading`, up to the next one.
fn section<'a>(text: &'a str, heading: &str) -> Result<&'a str, String> {
    let start = text
        .match_indices("## ")
        .map(|(at, _)| at)
        .find(|&at| (at == 0 || text[..at].ends_with('\n')) && text[at..].starts_with(heading))
        .ok_or_else(|| format!("section `{heading}` not found"))?;
    let body = &text[start..];
    let body = &body[body.find('\n').map_or(body.len(), |at| at + 1)..];
    let end = body.find("\n## ").map_or(body.len(), |at| at + 1);
    Ok(&body[..end])
}

/// The `label = value` lines of a section's indented (code) blocks, in order. The label is
/// everything before the first `=`, so values may themselves contain `=`.
fn assignments(section: &str) -> Vec<(&str, &str)> {
    section
        .lines()
        .filter(|line| line.starts_with("    "))
        .filter_map(|line| line.split_once('='))
        .map(|(label, value)| (label.trim(), value.trim()))
        .collect()
}

#[derive(Debug)]
struct BinanceExample {
    name: String,
    payload: String,
    signature: String,
}

#[derive(Debug)]
struct BinanceVectors {
    api_key: String,
    secret: String,
    examples: Vec<BinanceExample>,
    /// The `recvWindow` rule's bounds as the section states them ("default 5000 ms, maximum
    /// 60000").
    default_window_ms: i64,
    max_window_ms: i64,
}

/// The number right after the first `marker` in `text`.
fn number_after(text: &str, marker: &str) -> Result<i64, String> {
    let at = text
        .find(marker)
        .ok_or_else(|| format!("`{marker}` not found"))?;
    let digits: String = text[at + marker.len()..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits
        .parse()
        .map_err(|_| format!("no number after `{marker}`"))
}

fn parse_binance(text: &str) -> Result<BinanceVectors, String> {
    let body = section(text, "## Binance REST, HMAC-SHA256")?;
    let mut api_key = None;
    let mut secret = None;
    let mut examples: Vec<BinanceExample> = Vec::new();
    let mut pending: Option<(String, String)> = None;
    for (label, value) in assignments(body) {
        match label {
            "apiKey" => api_key = Some(value.to_owned()),
            "secretKey" => secret = Some(value.to_owned()),
            "signature" => {
                let (name, payload) = pending
                    .take()
                    .ok_or("a `signature` line without a payload before it")?;
                examples.push(BinanceExample {
                    name,
                    payload,
                    signature: value.to_owned(),
                });
            }
            _ => {
                if let Some(name) = label.strip_suffix("payload") {
                    if pending.is_some() {
                        return Err(format!(
                            "payload {label} follows a payload without signature"
                        ));
                    }
                    pending = Some((name.trim().to_owned(), value.to_owned()));
                }
            }
        }
    }
    if pending.is_some() {
        return Err("the last Binance payload has no signature".into());
    }
    let vectors = BinanceVectors {
        api_key: api_key.ok_or("Binance `apiKey` not found")?,
        secret: secret.ok_or("Binance `secretKey` not found")?,
        examples,
        default_window_ms: number_after(body, "(default ")?,
        max_window_ms: number_after(body, "maximum ")?,
    };
    let names: Vec<&str> = vectors.examples.iter().map(|e| e.name.as_str()).collect();
    if names != ["(a)", "(b)"] {
        return Err(format!(
            "expected Binance examples (a) and (b), found {names:?}"
        ));
    }
    for example in &vectors.examples {
        if example.signature.len() != 64 || hex::decode(&example.signature).is_err() {
            return Err(format!("{}: signature is not 64 hex digits", example.name));
        }
    }
    Ok(vectors)
}

#[derive(Debug)]
struct Rfc8032Vector {
    name: String,
    secret: Vec<u8>,
    /// The public key as the file spells it (64 hex digits).
    public_hex: String,
    public: Vec<u8>,
    message: Vec<u8>,
    signature: Vec<u8>,
}

fn parse_rfc8032(text: &str) -> Result<Vec<Rfc8032Vector>, String> {
    let body = section(text, "## Ed25519 (RFC 8032")?;
    type Fields = (
        String,
        Option<String>,
        Option<String>,
        Option<String>,
        Option<String>,
    );
    let mut blocks: Vec<Fields> = Vec::new();
    for (label, value) in assignments(body) {
        if let Some(name) = label.strip_suffix("secret").map(str::trim)
            && name.starts_with("TEST ")
        {
            blocks.push((name.to_owned(), Some(value.to_owned()), None, None, None));
            continue;
        }
        let (_, _, public, message, signature) = blocks
            .last_mut()
            .ok_or_else(|| format!("`{label}` before any TEST block"))?;
        let slot = match label {
            "public" => public,
            "msg" => message,
            "sig" => signature,
            other => {
                return Err(format!(
                    "unexpected field `{other}` in the RFC 8032 section"
                ));
            }
        };
        if slot.replace(value.to_owned()).is_some() {
            return Err(format!("`{label}` given twice in one TEST block"));
        }
    }
    let decode = |name: &str, field: &str, value: Option<String>, len: Option<usize>| {
        let value = value.ok_or_else(|| format!("{name}: `{field}` not found"))?;
        let bytes = if field == "msg" && value == "(empty)" {
            Vec::new()
        } else {
            hex::decode(&value).map_err(|e| format!("{name}: `{field}` is not hex: {e}"))?
        };
        match len {
            Some(len) if bytes.len() != len => Err(format!(
                "{name}: `{field}` has {} bytes, expected {len}",
                bytes.len()
            )),
            _ => Ok((value, bytes)),
        }
    };
    blocks
        .into_iter()
        .map(|(name, secret, public, message, signature)| {
            let (_, secret) = decode(&name, "secret", secret, Some(32))?;
            let (public_hex, public) = decode(&name, "public", public, Some(32))?;
            let (_, message) = decode(&name, "msg", message, None)?;
            let (_, signature) = decode(&name, "sig", signature, Some(64))?;
            Ok(Rfc8032Vector {
                name,
                secret,
                public_hex,
                public,
                message,
                signature,
            })
        })
        .collect()
}

fn binance() -> BinanceVectors {
    parse_binance(vector_text()).unwrap_or_else(|e| panic!("{VECTOR_FILE}: {e}"))
}

fn rfc8032(name: &str) -> Rfc8032Vector {
    parse_rfc8032(vector_text())
        .unwrap_or_else(|e| panic!("{VECTOR_FILE}: {e}"))
        .into_iter()
        .find(|v| v.name == name)
        .unwrap_or_else(|| panic!("{VECTOR_FILE}: RFC 8032 {name} not found"))
}

// ---------------------------------------------------------------------------------------------
// Keys and the verification pipeline
// ---------------------------------------------------------------------------------------------

const CLIENT_IP: [u8; 4] = [192, 0, 2, 1];

fn config(algorithm: KeyAlgorithm, api_key: &str) -> ApiKey {
    ApiKey {
        key_id: "k_vector".into(),
        api_key: api_key.into(),
        account: "acc_vector".into(),
        label: String::new(),
        algorithm,
        public_key: None,
        scopes: ScopeSet::parse(["read", "trade"]).unwrap(),
        ip_allowlist: IpAllowList::parse(["192.0.2.0/24"]).unwrap(),
        created_at: UnixMillis(1_499_827_000_000),
        updated_at: UnixMillis(1_499_827_000_000),
        expires_at: None,
        last_used_at: None,
        last_used_ip: None,
        revoked_at: None,
        idle_warned_at: None,
        fund_window: None,
        version: 1,
    }
}

fn hmac_generation(secret: &str, valid_until: Option<UnixMillis>) -> HmacGeneration {
    HmacGeneration {
        key: HmacSha256Key::new(&Secret::new(secret.as_bytes().to_vec())),
        valid_until,
    }
}

fn hmac_key(api_key: &str, generations: Vec<HmacGeneration>) -> VerifiableKey {
    VerifiableKey::new(
        config(KeyAlgorithm::HmacSha256, api_key),
        SigningMaterial::Hmac(generations),
    )
}

fn ed25519_key(public: Ed25519PublicKey) -> VerifiableKey {
    let mut key = config(KeyAlgorithm::Ed25519, "ed25519_vector");
    key.public_key = Some(public.clone());
    VerifiableKey::new(key, SigningMaterial::Ed25519(public))
}

/// What the replay guard was asked about, and the guard itself (as the server shards it: one
/// guard, fingerprints keyed by the key id).
struct Replay {
    seed: FingerprintSeed,
    guard: ReplayGuard,
    asked: Vec<(Vec<u8>, i64)>,
}

impl Replay {
    fn new() -> RefCell<Self> {
        RefCell::new(Self {
            seed: FingerprintSeed::new(0x5eed),
            guard: ReplayGuard::new(),
            asked: Vec::new(),
        })
    }
}

/// One request through `VerifiableKey::verify`, freshness read from the payload as the server
/// does, the replay question answered by a real `ReplayGuard`.
fn verify_at(
    key: &VerifiableKey,
    replay: &RefCell<Replay>,
    payload: &str,
    signature: &str,
    now: i64,
) -> Result<(), Rejection> {
    let freshness = Freshness::from_payload(payload).unwrap();
    verify_with(key, replay, payload, signature, freshness, now)
}

fn verify_with(
    key: &VerifiableKey,
    replay: &RefCell<Replay>,
    payload: &str,
    signature: &str,
    freshness: Freshness,
    now: i64,
) -> Result<(), Rejection> {
    let request = SignedRequest {
        signature,
        payload,
        ip: CLIENT_IP.into(),
        scope: Scope::Trade,
    };
    key.verify(
        &request,
        freshness,
        UnixMillis(now),
        IdlePolicy::default_policy(),
        |decoded, expires_at, _| {
            let mut replay = replay.borrow_mut();
            replay.asked.push((decoded.to_vec(), expires_at));
            let fingerprint = replay.seed.fingerprint(&key.key.key_id, decoded);
            replay.guard.first_use(fingerprint, expires_at, now)
        },
    )
}

/// `verify_at` with `now` = the payload's own timestamp.
fn verify(
    key: &VerifiableKey,
    replay: &RefCell<Replay>,
    payload: &str,
    signature: &str,
) -> Result<(), Rejection> {
    let now = Freshness::from_payload(payload).unwrap().timestamp_ms;
    verify_at(key, replay, payload, signature, now)
}

// ---------------------------------------------------------------------------------------------
// The parser itself: it finds what is there and refuses what is not
// ---------------------------------------------------------------------------------------------

#[test]
fn the_vector_file_is_found_and_parsed() {
    let vectors = binance();
    assert_eq!(
        vectors.api_key,
        "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A"
    );
    assert_eq!(vectors.secret.len(), 64);
    assert!(vectors.examples[0].payload.starts_with("symbol=LTCBTC&"));
    assert!(
        vectors.examples[1].payload.starts_with("symbol=%EF%BC%91"),
        "example (b) is the percent-encoded one"
    );
    let tests: Vec<String> = parse_rfc8032(vector_text())
        .unwrap()
        .into_iter()
        .map(|v| v.name)
        .collect();
    for wanted in ["TEST 1", "TEST 3"] {
        assert!(tests.iter().any(|t| t == wanted), "{wanted} in {tests:?}");
    }
    assert!(rfc8032("TEST 1").message.is_empty());
    assert_eq!(rfc8032("TEST 3").message, [0xaf, 0x82]);
}

#[test]
fn the_parser_fails_on_missing_or_damaged_vectors() {
    let text = vector_text();
    let drop_line = |needle: &str| -> String {
        assert!(text.contains(needle), "`{needle}` is in the file");
        text.lines()
            .filter(|line| !line.contains(needle))
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert!(parse_binance(&drop_line("secretKey")).is_err());
    assert!(parse_binance(&drop_line("(b) payload")).is_err());
    assert!(parse_binance(&drop_line("c8db56825ae71d6d")).is_err());
    assert!(parse_binance(&text.replace("## Binance REST", "## Elsewhere")).is_err());
    assert!(parse_binance(&text.replace("e1353ec6b14d888f", "e1353ec6b14d888")).is_err());
    assert!(parse_rfc8032(&drop_line("fc51cd8e6218a1a3")).is_err());
    assert!(parse_rfc8032(&drop_line("msg    = af82")).is_err());
    assert!(parse_rfc8032(&text.replace("## Ed25519 (RFC 8032", "## Other")).is_err());
    let without_test3 = parse_rfc8032(&text.replace("TEST 3 secret", "TEST 9 secret")).unwrap();
    assert!(!without_test3.iter().any(|v| v.name == "TEST 3"));
}

// ---------------------------------------------------------------------------------------------
// Binance HMAC-SHA256
// ---------------------------------------------------------------------------------------------

#[test]
fn binance_examples_sign_and_verify_with_the_server_hmac_key() {
    let vectors = binance();
    let key = HmacSha256Key::new(&Secret::new(vectors.secret.as_bytes().to_vec()));
    let wrong = HmacSha256Key::new(&Secret::new(b"another secret entirely".to_vec()));
    for example in &vectors.examples {
        let (name, payload, signature) = (
            &example.name,
            example.payload.as_bytes(),
            &example.signature,
        );
        assert_eq!(&key.sign_hex(payload), signature, "{name}: sign_hex");
        assert!(key.verify_hex(payload, signature), "{name}: lower-case hex");
        assert!(
            key.verify_hex(payload, &signature.to_uppercase()),
            "{name}: upper-case hex"
        );
        let mixed: String = signature
            .chars()
            .enumerate()
            .map(|(i, c)| {
                if i % 2 == 0 {
                    c.to_ascii_uppercase()
                } else {
                    c
                }
            })
            .collect();
        assert!(key.verify_hex(payload, &mixed), "{name}: mixed-case hex");
        assert!(
            !wrong.verify_hex(payload, signature),
            "{name}: wrong secret"
        );
        assert!(
            !key.verify_hex(&payload[1..], signature),
            "{name}: shortened payload"
        );
        assert!(
            !key.verify_hex(payload, &signature[..62]),
            "{name}: short signature"
        );
        assert!(
            !key.verify_hex(payload, &format!("{signature}00")),
            "{name}: long signature"
        );
    }
    let [a, b] = &vectors.examples[..] else {
        unreachable!("the parser insists on exactly (a) and (b)")
    };
    assert!(!key.verify_hex(a.payload.as_bytes(), &b.signature));
    assert!(!key.verify_hex(b.payload.as_bytes(), &a.signature));
}

#[test]
fn binance_examples_pass_the_full_verification_pipeline() {
    let vectors = binance();
    for example in &vectors.examples {
        let name = &example.name;
        let freshness = Freshness::from_payload(&example.payload).unwrap();
        assert_eq!(
            (freshness.timestamp_ms, freshness.recv_window_ms),
            (1_499_827_319_559, 5_000),
            "{name}"
        );
        let key = hmac_key(
            &vectors.api_key,
            vec![hmac_generation(&vectors.secret, None)],
        );
        let replay = Replay::new();
        assert_eq!(
            verify(&key, &replay, &example.payload, &example.signature),
            Ok(()),
            "{name}"
        );
        assert_eq!(
            replay.borrow().asked,
            [(
                hex::decode(&example.signature).unwrap(),
                1_499_827_319_559 + 5_000
            )],
            "{name}: the guard sees the decoded tag and the end of the window"
        );
        assert_eq!(
            key.last_used_at(),
            Some(UnixMillis(1_499_827_319_559)),
            "{name}: the use is recorded"
        );
        assert_eq!(
            verify(&key, &replay, &example.payload, &example.signature),
            Err(Rejection::Replayed),
            "{name}: the same request a second time"
        );
        assert_eq!(
            verify(
                &key,
                &replay,
                &example.payload,
                &example.signature.to_uppercase()
            ),
            Err(Rejection::Replayed),
            "{name}: the same signature in upper case is the same use"
        );

        // Upper-case hex is accepted on its own, through the pipeline.
        let key = hmac_key(
            &vectors.api_key,
            vec![hmac_generation(&vectors.secret, None)],
        );
        assert_eq!(
            verify(
                &key,
                &Replay::new(),
                &example.payload,
                &example.signature.to_uppercase()
            ),
            Ok(()),
            "{name}: upper-case hex"
        );

        let wrong = hmac_key(
            &vectors.api_key,
            vec![hmac_generation("another secret", None)],
        );
        let replay = Replay::new();
        assert_eq!(
            verify(&wrong, &replay, &example.payload, &example.signature),
            Err(Rejection::BadSignature),
            "{name}: wrong secret"
        );
        assert!(
            replay.borrow().asked.is_empty(),
            "{name}: bad signatures never reach the replay guard"
        );
        let key = hmac_key(
            &vectors.api_key,
            vec![hmac_generation(&vectors.secret, None)],
        );
        let altered = example.payload.replace("quantity=1", "quantity=9");
        assert_ne!(altered, example.payload);
        assert_eq!(
            verify(&key, &Replay::new(), &altered, &example.signature),
            Err(Rejection::BadSignature),
            "{name}: altered payload"
        );
    }
    let [a, b] = &vectors.examples[..] else {
        unreachable!("the parser insists on exactly (a) and (b)")
    };
    let key = hmac_key(
        &vectors.api_key,
        vec![hmac_generation(&vectors.secret, None)],
    );
    assert_eq!(
        verify(&key, &Replay::new(), &a.payload, &b.signature),
        Err(Rejection::BadSignature)
    );
}

#[test]
fn binance_example_verifies_with_a_rotated_out_secret_until_its_overlap_ends() {
    let vectors = binance();
    let example = &vectors.examples[0];
    let now = 1_499_827_319_559;
    let rotated = |valid_until: i64| {
        hmac_key(
            &vectors.api_key,
            vec![
                hmac_generation("the new current secret", None),
                hmac_generation(&vectors.secret, Some(UnixMillis(valid_until))),
            ],
        )
    };
    assert_eq!(
        verify(
            &rotated(now + 1),
            &Replay::new(),
            &example.payload,
            &example.signature
        ),
        Ok(())
    );
    assert_eq!(
        verify(
            &rotated(now),
            &Replay::new(),
            &example.payload,
            &example.signature
        ),
        Err(Rejection::BadSignature)
    );
}

#[test]
fn binance_window_rule_on_the_published_timestamp() {
    let vectors = binance();
    let example = &vectors.examples[0];
    assert_eq!(
        (vectors.default_window_ms, vectors.max_window_ms),
        (DEFAULT_RECV_WINDOW_MS, MAX_RECV_WINDOW_MS),
        "the recvWindow default and maximum are the published ones"
    );
    let timestamp = 1_499_827_319_559;
    let at = |now: i64| {
        let key = hmac_key(
            &vectors.api_key,
            vec![hmac_generation(&vectors.secret, None)],
        );
        verify_at(
            &key,
            &Replay::new(),
            &example.payload,
            &example.signature,
            now,
        )
    };
    assert_eq!(
        at(timestamp + 5_000),
        Ok(()),
        "now - timestamp == recvWindow"
    );
    assert_eq!(
        at(timestamp + 5_001),
        Err(Rejection::TimestampOutsideWindow)
    );
    assert_eq!(at(timestamp - 999), Ok(()), "timestamp < now + 1000");
    assert_eq!(
        at(timestamp - 1_000),
        Err(Rejection::TimestampOutsideWindow)
    );

    // Without `recvWindow` the default applies; the payload no longer matches the published
    // signature, so it is re-signed with the published secret.
    let payload = example.payload.replace("&recvWindow=5000", "");
    assert_ne!(payload, example.payload);
    let signature = HmacSha256Key::new(&Secret::new(vectors.secret.as_bytes().to_vec()))
        .sign_hex(payload.as_bytes());
    let key = || {
        hmac_key(
            &vectors.api_key,
            vec![hmac_generation(&vectors.secret, None)],
        )
    };
    assert_eq!(
        verify_at(
            &key(),
            &Replay::new(),
            &payload,
            &signature,
            timestamp + vectors.default_window_ms
        ),
        Ok(())
    );
    assert_eq!(
        verify_at(
            &key(),
            &Replay::new(),
            &payload,
            &signature,
            timestamp + vectors.default_window_ms + 1
        ),
        Err(Rejection::TimestampOutsideWindow)
    );

    // The largest window is accepted, one more is a malformed request.
    let widest = example.payload.replace(
        "recvWindow=5000",
        &format!("recvWindow={}", vectors.max_window_ms),
    );
    assert_eq!(
        Freshness::from_payload(&widest).map(|f| f.recv_window_ms),
        Ok(vectors.max_window_ms)
    );
    let too_wide = example.payload.replace(
        "recvWindow=5000",
        &format!("recvWindow={}", vectors.max_window_ms + 1),
    );
    assert_eq!(
        Freshness::from_payload(&too_wide),
        Err(PayloadError::RecvWindowOutOfRange)
    );
}

// ---------------------------------------------------------------------------------------------
// RFC 8032 Ed25519
// ---------------------------------------------------------------------------------------------

#[test]
fn rfc8032_signatures_verify_raw_with_the_published_public_keys() {
    for name in ["TEST 1", "TEST 3"] {
        let v = rfc8032(name);
        let key = Ed25519PublicKey::parse(&v.public_hex).unwrap();
        assert_eq!(key.as_bytes().as_slice(), v.public.as_slice(), "{name}");
        assert_eq!(
            Ed25519PublicKey::parse(&v.public_hex.to_uppercase()).unwrap(),
            key,
            "{name}: upper-case hex key"
        );
        assert!(
            key.verify_raw(&v.message, &v.signature),
            "{name}: verify_raw"
        );
        assert!(
            key.verify_base64(&v.message, &BASE64.encode(&v.signature)),
            "{name}: verify_base64"
        );
        for byte in [0, 31, 32, 63] {
            let mut altered = v.signature.clone();
            altered[byte] ^= 0x01;
            assert!(
                !key.verify_raw(&v.message, &altered),
                "{name}: sig byte {byte}"
            );
        }
        let mut longer = v.message.clone();
        longer.push(0);
        assert!(
            !key.verify_raw(&longer, &v.signature),
            "{name}: longer message"
        );
        if let Some(first) = v.message.first() {
            let mut altered = v.message.clone();
            altered[0] = first ^ 0x80;
            assert!(
                !key.verify_raw(&altered, &v.signature),
                "{name}: altered message"
            );
        }
        assert!(
            !key.verify_raw(&v.message, &v.signature[..63]),
            "{name}: short sig"
        );
    }
    let (one, three) = (rfc8032("TEST 1"), rfc8032("TEST 3"));
    let key_one = Ed25519PublicKey::parse(&one.public_hex).unwrap();
    let key_three = Ed25519PublicKey::parse(&three.public_hex).unwrap();
    assert!(!key_one.verify_raw(&three.message, &three.signature));
    assert!(!key_three.verify_raw(&one.message, &one.signature));
}

#[test]
fn rfc8032_secrets_derive_the_published_keys_and_signatures() {
    for name in ["TEST 1", "TEST 3"] {
        let v = rfc8032(name);
        let pair = Ed25519KeyPair::from_seed_unchecked(&v.secret).unwrap();
        assert_eq!(pair.public_key().as_ref(), v.public.as_slice(), "{name}");
        assert_eq!(
            pair.sign(&v.message).as_ref(),
            v.signature.as_slice(),
            "{name}: Ed25519 signing is deterministic"
        );
    }
}

#[test]
fn rfc8032_key_verifies_requests_through_the_pipeline() {
    let v = rfc8032("TEST 1");
    let pair = Ed25519KeyPair::from_seed_unchecked(&v.secret).unwrap();
    assert_eq!(
        pair.public_key().as_ref(),
        v.public.as_slice(),
        "the seed derives the published public key"
    );
    let key = || ed25519_key(Ed25519PublicKey::parse(&v.public_hex).unwrap());
    let payload =
        "symbol=BTCUSDT&side=SELL&type=MARKET&quantity=0.5&recvWindow=5000&timestamp=1499827319559";
    let raw = pair.sign(payload.as_bytes());
    let signature = BASE64.encode(raw.as_ref());

    let verifying = key();
    let replay = Replay::new();
    assert_eq!(verify(&verifying, &replay, payload, &signature), Ok(()));
    assert_eq!(
        replay.borrow().asked,
        [(raw.as_ref().to_vec(), 1_499_827_319_559 + 5_000)]
    );
    assert_eq!(
        verify(&verifying, &replay, payload, &signature),
        Err(Rejection::Replayed)
    );

    assert_eq!(
        verify(
            &key(),
            &Replay::new(),
            &payload.replace("0.5", "5.0"),
            &signature
        ),
        Err(Rejection::BadSignature),
        "altered payload"
    );
    assert_eq!(
        verify(&key(), &Replay::new(), payload, &hex::encode(raw.as_ref())),
        Err(Rejection::BadSignature),
        "Ed25519 signatures are base64, not hex"
    );
    assert_eq!(
        verify(
            &key(),
            &Replay::new(),
            payload,
            &BASE64.encode(&v.signature)
        ),
        Err(Rejection::BadSignature),
        "the RFC signature is over the empty message, not this payload"
    );
    let other = ed25519_key(Ed25519PublicKey::parse(&rfc8032("TEST 3").public_hex).unwrap());
    assert_eq!(
        verify(&other, &Replay::new(), payload, &signature),
        Err(Rejection::BadSignature),
        "another key"
    );
}

/// The server never passes an empty payload this far (it has no `timestamp`, so reading its
/// freshness fails first); here the freshness is supplied directly so that the published
/// signature itself, in base64, goes through the pipeline's Ed25519 branch.
#[test]
fn rfc8032_test1_signature_passes_the_ed25519_branch_of_the_pipeline() {
    let v = rfc8032("TEST 1");
    let message = std::str::from_utf8(&v.message).unwrap();
    assert_eq!(message, "");
    let freshness = Freshness {
        timestamp_ms: 1_499_827_319_559,
        recv_window_ms: 5_000,
    };
    let key = ed25519_key(Ed25519PublicKey::parse(&v.public_hex).unwrap());
    let replay = Replay::new();
    let signature = BASE64.encode(&v.signature);
    let now = freshness.timestamp_ms;
    assert_eq!(
        verify_with(&key, &replay, message, &signature, freshness, now),
        Ok(())
    );
    assert_eq!(
        verify_with(&key, &replay, message, &signature, freshness, now),
        Err(Rejection::Replayed)
    );
    let mut altered = v.signature.clone();
    altered[10] ^= 0x40;
    assert_eq!(
        verify_with(
            &key,
            &Replay::new(),
            message,
            &BASE64.encode(&altered),
            freshness,
            now
        ),
        Err(Rejection::BadSignature)
    );
}
