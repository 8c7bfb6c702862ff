//! In-process verification speed, against a bare HMAC-SHA256 over the same payloads measured
//! in the same run (machines are noisy; the ratio is what is compared).
//!
//! `cargo bench -p portcullis-app --bench verify`
//!
//! The verified path is the one `POST /v1/verify` runs: freshness parsing, key lookup among
//! 10,000 keys, liveness, window, hex decoding, HMAC, replay guard, IP allow-list, scope, and
//! reading the key's names for the answer.
//! Every request is distinct (no replays), on one thread. Each round signs a fresh batch, then
//! times the bare HMAC and the full verification over it, alternating which goes first. One
//! verifier serves every round, with the clock a window and a bit further on each time, so its
//! replay guard works as a running gateway's does: forgetting one window's signatures while it
//! takes the next one's. `PORTCULLIS_BENCH_REQUESTS` changes the batch size (20,000 requests of
//! about 300 bytes each spill out of a core's own cache; 2,000 fit).

#![allow(
    clippy::print_stdout,
    clippy::unwrap_used,
    clippy::cast_possible_truncation
)] // A benchmark reports on stdout.

use aws_lc_rs::hmac;
use portcullis_app::verifier::{Verifier, VerifyRequest};
use portcullis_core::allowlist::IpAllowList;
use portcullis_core::key::{ApiKey, IdlePolicy, KeyAlgorithm};
use portcullis_core::scope::{Scope, ScopeSet};
use portcullis_core::secret::Secret;
use portcullis_core::signing::HmacSha256Key;
use portcullis_core::time::UnixMillis;
use portcullis_core::verify::{HmacGeneration, SigningMaterial};
use std::hint::black_box;
use std::net::IpAddr;
use std::time::Instant;

const KEYS: usize = 10_000;
const ACTIVE_KEYS: usize = 100;
/// Requests per round.
const REQUESTS: usize = 20_000;
/// Rounds timed; `PORTCULLIS_BENCH_ROUNDS` lowers it for profiling runs (callgrind).
const ROUNDS: usize = 40;
const NOW: i64 = 1_767_225_600_000;

struct Signed {
    api_key: String,
    payload: String,
    signature: String,
}

fn secret_for(i: usize) -> Secret {
    Secret::new(format!("{i:0>64}").into_bytes())
}

fn key(i: usize) -> ApiKey {
    ApiKey {
        key_id: format!("k_{i:020}"),
        api_key: format!("{i:0>64}").replace('0', "A"),
        account: format!("acc_{i}"),
        label: String::new(),
        algorithm: KeyAlgorithm::HmacSha256,
        public_key: None,
        scopes: ScopeSet::parse(["read", "trade"]).unwrap_or_default(),
        ip_allowlist: IpAllowList::parse(["203.0.113.0/24", "2001:db8::/32"]).unwrap_or_default(),
        created_at: UnixMillis(NOW - 1000),
        updated_at: UnixMillis(NOW - 1000),
        expires_at: None,
        last_used_at: None,
        last_used_ip: None,
        revoked_at: None,
        idle_warned_at: None,
        fund_window: None,
        version: 1,
    }
}

fn verifier() -> Verifier {
    let verifier = Verifier::new(IdlePolicy::default_policy(), 11);
    for i in 0..KEYS {
        let material = SigningMaterial::Hmac(vec![HmacGeneration {
            key: HmacSha256Key::new(&secret_for(i)),
            valid_until: None,
        }]);
        verifier.upsert(key(i), material);
    }
    verifier
}

/// The clock of a round: rounds are a window and a bit apart, so the replay guard forgets
/// each round's signatures as a running gateway's does, and holds about one round's worth.
fn round_now(round: usize) -> i64 {
    NOW + 6_000 * round as i64
}

/// Realistic order payloads (about 150 bytes), each unique.
fn requests(round: usize, count: usize) -> Vec<Signed> {
    (0..count)
        .map(|n| {
            let i = n % ACTIVE_KEYS;
            let payload = format!(
                "symbol=BTCUSDT&side=BUY&type=LIMIT&timeInForce=GTC&quantity=0.0125&price=97123.45&newClientOrderId=r{round}n{n}&recvWindow=5000&timestamp={}",
                round_now(round) - 10
            );
            let signing = HmacSha256Key::new(&secret_for(i));
            Signed { api_key: key(i).api_key, signature: signing.sign_hex(payload.as_bytes()), payload }
        })
        .collect()
}

/// Rates of one timed loop: per second of wall-clock time, and per second this thread spent
/// on a CPU. On a shared machine the wall clock also counts the time other processes held the
/// core; the thread's CPU time does not, so it shows the cost per core more steadily.
#[derive(Clone, Copy)]
struct Rates {
    wall: f64,
    cpu: f64,
}

struct Started {
    wall: Instant,
    cpu: f64,
}

fn thread_cpu_seconds() -> f64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    t.tv_sec as f64 + t.tv_nsec as f64 * 1e-9
}

fn start() -> Started {
    Started {
        wall: Instant::now(),
        cpu: thread_cpu_seconds(),
    }
}

fn rates(count: usize, started: &Started) -> Rates {
    Rates {
        wall: count as f64 / started.wall.elapsed().as_secs_f64(),
        cpu: count as f64 / (thread_cpu_seconds() - started.cpu),
    }
}

fn main() {
    let ip: IpAddr = "203.0.113.7".parse().unwrap_or(IpAddr::from([0, 0, 0, 0]));
    let mut bare_rates = Vec::new();
    let mut from_secret_rates = Vec::new();
    let mut verify_rates = Vec::new();
    let rounds = std::env::var("PORTCULLIS_BENCH_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(ROUNDS);
    let count = std::env::var("PORTCULLIS_BENCH_REQUESTS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(REQUESTS);
    let bare_keys: Vec<hmac::Key> = (0..ACTIVE_KEYS)
        .map(|i| hmac::Key::new(hmac::HMAC_SHA256, secret_for(i).expose()))
        .collect();
    let secrets: Vec<Secret> = (0..ACTIVE_KEYS).map(secret_for).collect();
    let verifier = verifier();
    for round in 0..rounds {
        let batch = requests(round, count);
        let bare = || {
            let started = start();
            for (n, request) in batch.iter().enumerate() {
                black_box(hmac::sign(
                    &bare_keys[n % ACTIVE_KEYS],
                    black_box(request.payload.as_bytes()),
                ));
            }
            rates(batch.len(), &started)
        };
        let from_secret = || {
            let started = start();
            for (n, request) in batch.iter().enumerate() {
                let key = hmac::Key::new(hmac::HMAC_SHA256, secrets[n % ACTIVE_KEYS].expose());
                black_box(hmac::sign(&key, black_box(request.payload.as_bytes())));
            }
            rates(batch.len(), &started)
        };
        let full = || {
            let mut accepted = 0usize;
            let started = start();
            for request in &batch {
                // As `POST /v1/verify` does: the answer reads the key's names while it is
                // borrowed from the index.
                let outcome = verifier.verify_with(
                    &VerifyRequest {
                        api_key: &request.api_key,
                        signature: &request.signature,
                        payload: &request.payload,
                        ip,
                        scope: Scope::Trade,
                    },
                    UnixMillis(round_now(round)),
                    |verdict| verdict.map(|key| key.key().account.len() + key.key().key_id.len()),
                );
                if let Ok(Ok(names)) = outcome {
                    black_box(names);
                    accepted += 1;
                }
            }
            let rate = rates(batch.len(), &started);
            assert_eq!(
                accepted,
                batch.len(),
                "every request must verify, or the benchmark measures a rejection path"
            );
            rate
        };
        if round % 2 == 0 {
            bare_rates.push(bare());
            from_secret_rates.push(from_secret());
            verify_rates.push(full());
        } else {
            verify_rates.push(full());
            from_secret_rates.push(from_secret());
            bare_rates.push(bare());
        }
    }
    let median = |rates: &[Rates], pick: fn(&Rates) -> f64| {
        let mut values: Vec<f64> = rates.iter().map(pick).collect();
        values.sort_by(f64::total_cmp);
        values[values.len() / 2]
    };
    println!(
        "verify benchmark: {REQUESTS} distinct signed requests x {rounds} rounds, one thread, {KEYS} keys loaded (median round)"
    );
    for (clock, pick) in [
        ("wall-clock time", (|r: &Rates| r.wall) as fn(&Rates) -> f64),
        ("this thread's CPU time", |r: &Rates| r.cpu),
    ] {
        let bare = median(&bare_rates, pick);
        let verify = median(&verify_rates, pick);
        let from_secret = median(&from_secret_rates, pick);
        println!(" per second of {clock}:");
        println!("  bare HMAC-SHA256 (precomputed key)   {:>12.0} /s", bare);
        println!(
            "  bare HMAC-SHA256 (key from secret)   {:>12.0} /s",
            from_secret
        );
        println!("  full verification                    {:>12.0} /s", verify);
        println!(
            "  ratio full / bare (precomputed key)  {:>12.2}",
            verify / bare
        );
        println!(
            "  ratio full / bare (key from secret)  {:>12.2}",
            verify / from_secret
        );
    }
    println!("  targets: full >= 1,000,000 /s and ratio >= 0.70");
}
