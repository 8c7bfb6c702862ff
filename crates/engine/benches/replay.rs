//! Replay speed on a realistic mix, beside a parse-only pass over the same lines in the same
//! run; in-process decision latency; memory per tracked account.
//!
//! `cargo bench -p portcullis-engine --bench replay`
//!
//! The mix: 20,000 accounts; about 60% `api_key.used`, 35% `login`, 5% sensitive events
//! (key changes, new addresses, withdrawals, deposits, calls, market reports), in time order.

#![allow(
    clippy::print_stdout,
    clippy::unwrap_used,
    clippy::cast_possible_truncation
)] // A benchmark reports on stdout.

use portcullis_core::contract::parse_line;
use portcullis_core::time::UnixMillis;
use portcullis_engine::{Engine, Outcome, Policy};
use std::hint::black_box;
use std::time::Instant;

const ACCOUNTS: u64 = 20_000;
const EVENTS: u64 = 1_000_000;

/// A small deterministic generator (xorshift), so every run replays the same file.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn line(n: u64, rng: &mut Rng) -> String {
    let ts = UnixMillis(1_753_700_000_000 + n as i64 * 40).to_rfc3339();
    let account = rng.next() % ACCOUNTS;
    let ip = format!("198.51.{}.{}", account % 250, account / 250 % 250);
    let head = format!(r#"{{"id":"e{n}","ts":"{ts}","account":"a{account}""#);
    match rng.next() % 100 {
        0..60 => format!(
            r#"{head},"type":"api_key.used","key_id":"k{account}","endpoint":"POST /api/v3/order","count":{},"window_s":60,"ctx":{{"ip":"{ip}","channel":"api"}}}}"#,
            1 + rng.next() % 50
        ),
        60..95 => format!(
            r#"{head},"type":"login","method":"password","success":true,"ctx":{{"ip":"{ip}","device_id":"d{account}","channel":"web"}}}}"#
        ),
        95..96 => format!(
            r#"{head},"type":"api_key.updated","key_id":"k{account}","scopes":["read","trade","withdraw"],"ip_allowlist":["{ip}/32"],"step_up":"totp","ctx":{{"ip":"{ip}","device_id":"d{account}","channel":"app"}}}}"#
        ),
        96..97 => format!(
            r#"{head},"type":"address.added","address":"T{}","asset":"USDT","network":"TRX","step_up":"passkey","ctx":{{"ip":"{ip}"}}}}"#,
            rng.next() % 100_000
        ),
        97..98 => format!(
            r#"{head},"type":"withdrawal.requested","withdrawal_id":"w{n}","asset":"USDT","network":"TRX","address":"T{}","amount":"250","amount_usd":250.0,"ctx":{{"ip":"{ip}"}}}}"#,
            rng.next() % 100_000
        ),
        98 => format!(
            r#"{head},"type":"deposit","asset":"USDT","amount":"1000","amount_usd":1000.0}}"#
        ),
        _ => format!(
            r#"{{"id":"e{n}","ts":"{ts}","type":"market.activity","market":"*","volume_ratio":{}.5,"volatility":0.8}}"#,
            rng.next() % 4
        ),
    }
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

fn main() {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let lines: Vec<String> = (0..EVENTS).map(|n| line(n, &mut rng)).collect();

    let started = Instant::now();
    for text in &lines {
        black_box(parse_line(black_box(text)).is_ok());
    }
    let parse_rate = EVENTS as f64 / started.elapsed().as_secs_f64();

    let rss_before = rss_kib();
    let mut engine = Engine::new(Policy::default_policy().unwrap());
    let mut latencies = Vec::new();
    let started = Instant::now();
    for text in &lines {
        let event = parse_line(text).unwrap();
        let asks = event.body.asks_for_decision();
        let at = asks.then(Instant::now);
        let outcome = engine.process(&event);
        if let Some(at) = at {
            latencies.push(at.elapsed().as_nanos() as u64);
        }
        black_box(matches!(outcome, Outcome::Decided(..)));
    }
    let replay_rate = EVENTS as f64 / started.elapsed().as_secs_f64();
    let rss_after = rss_kib();
    latencies.sort_unstable();
    let pct = |p: f64| latencies[((latencies.len() as f64 - 1.0) * p) as usize] as f64 / 1000.0;

    println!(
        "replay benchmark: {EVENTS} events, {ACCOUNTS} accounts, {} decisions, one thread",
        latencies.len()
    );
    println!("  parse only          {parse_rate:>12.0} events/s");
    println!(
        "  parse + engine      {replay_rate:>12.0} events/s   ({:.2} of parse-only)",
        replay_rate / parse_rate
    );
    println!(
        "  decision latency    p50 {:.1} us, p99 {:.1} us, max {:.1} us",
        pct(0.5),
        pct(0.99),
        pct(1.0)
    );
    println!(
        "  memory              {:.0} bytes per tracked account ({} accounts; RSS growth incl. the 1M seen event ids)",
        (rss_after.saturating_sub(rss_before) * 1024) as f64
            / engine.tracked_accounts().max(1) as f64,
        engine.tracked_accounts()
    );
    println!("  targets: >= 1,000,000 events/s; decision p99 <= 50 us; <= 1 KiB per account");
}
