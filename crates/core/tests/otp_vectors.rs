//! RFC 4226 (HOTP) and RFC 6238 (TOTP) vectors from `../shared/data/test-vectors/
//! signing-and-otp.md`, read at test time, through `totp-rs` and through the step-up check the
//! server runs (`guard::totp`). A missing or damaged section fails the test.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use portcullis_core::guard::totp::{self, TotpError, TotpState};
use portcullis_core::time::UnixMillis;
use totp_rs::{Algorithm, Builder};

const VECTOR_FILE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/data/test-vectors/signing-and-otp.md"
);

fn section(heading: &str) -> String {
    let text = std::fs::read_to_string(VECTOR_FILE)
        .unwrap_or_else(|e| panic!("cannot read the published vectors at {VECTOR_FILE}: {e}"));
    let start = text
        .find(&format!("\n## {heading}"))
        .unwrap_or_else(|| panic!("section `{heading}` not found"));
    let body = &text[start + 1..];
    let body = &body[body.find('\n').unwrap() + 1..];
    body[..body.find("\n## ").unwrap_or(body.len())].to_owned()
}

/// RFC 4226 Appendix D: HOTP(counter) is TOTP with a one-second step at time `counter`.
#[test]
fn rfc4226_hotp_values() {
    let body = section("HOTP (RFC 4226");
    let line = body
        .lines()
        .find(|l| l.trim_start().starts_with("count 0..9"))
        .expect("the HOTP count line");
    let codes: Vec<&str> = line
        .split("->")
        .nth(1)
        .unwrap()
        .split_whitespace()
        .collect();
    assert_eq!(codes.len(), 10, "ten HOTP values");
    let hotp = Builder::new()
        .with_algorithm(Algorithm::SHA1)
        .with_digits(6)
        .with_step_duration(1)
        .with_skew(0)
        .with_secret(b"12345678901234567890".to_vec())
        .build()
        .unwrap();
    for (counter, expected) in codes.iter().enumerate() {
        let counter = u64::try_from(counter).unwrap();
        assert_eq!(
            hotp.generate(counter).to_string(),
            *expected,
            "count {counter}"
        );
    }
}

struct TotpVector {
    time: u64,
    sha1: String,
    sha256: String,
    sha512: String,
}

fn totp_vectors() -> Vec<TotpVector> {
    let body = section("TOTP (RFC 6238");
    let vectors: Vec<TotpVector> = body
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("t="))
        .map(|l| {
            let mut fields = l.split_whitespace();
            let time = fields.next().unwrap()[2..].parse().unwrap();
            let mut get = |name: &str| {
                let field = fields.next().unwrap();
                field.strip_prefix(name).unwrap().to_owned()
            };
            TotpVector {
                time,
                sha1: get("SHA1="),
                sha256: get("SHA256="),
                sha512: get("SHA512="),
            }
        })
        .collect();
    assert_eq!(vectors.len(), 6, "six RFC 6238 rows");
    vectors
}

#[test]
fn rfc6238_totp_values_for_every_algorithm() {
    let seeds: [(Algorithm, &[u8]); 3] = [
        (Algorithm::SHA1, b"12345678901234567890"),
        (Algorithm::SHA256, b"12345678901234567890123456789012"),
        (
            Algorithm::SHA512,
            b"1234567890123456789012345678901234567890123456789012345678901234",
        ),
    ];
    for vector in totp_vectors() {
        for (algorithm, seed) in seeds {
            let totp = Builder::new()
                .with_algorithm(algorithm)
                .with_digits(8)
                .with_step_duration(30)
                .with_secret(seed.to_vec())
                .build()
                .unwrap();
            let expected = match algorithm {
                Algorithm::SHA1 => &vector.sha1,
                Algorithm::SHA256 => &vector.sha256,
                _ => &vector.sha512,
            };
            assert_eq!(
                &totp.generate(vector.time).to_string(),
                expected,
                "{algorithm:?} at t={}",
                vector.time
            );
        }
    }
}

/// The server's six-digit SHA-1 generator accepts the last six digits of each published
/// eight-digit SHA-1 value (both are the same truncated value modulo 10^digits), once.
#[test]
fn the_step_up_check_accepts_the_published_sha1_codes_once() {
    let app = totp::generator(b"12345678901234567890", "Portcullis", "acc_81").unwrap();
    for vector in totp_vectors() {
        let now = UnixMillis::from_secs(i64::try_from(vector.time).unwrap());
        let code = &vector.sha1[2..];
        let (state, result) = totp::check(&app, &TotpState::default(), code, now);
        assert_eq!(result, Ok(vector.time / 30), "t={}", vector.time);
        let (_, again) = totp::check(&app, &state, code, now);
        assert_eq!(again, Err(TotpError::Reused), "t={}", vector.time);
    }
}

/// The known pitfall the vector file names: a 20-byte seed with SHA-256 gives another value.
#[test]
fn a_short_sha256_seed_gives_the_documented_wrong_value() {
    let totp = Builder::new()
        .with_algorithm(Algorithm::SHA256)
        .with_digits(8)
        .with_step_duration(30)
        .with_secret(b"12345678901234567890".to_vec())
        .build()
        .unwrap();
    assert_eq!(totp.generate(59).to_string(), "32247374");
}
