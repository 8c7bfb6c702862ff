//! Replay speed on a realistic mix, beside a parse-only pass over the same lines in the same
//! run; in-process decision latency; memory per tracked account.
//!
//! `cargo bench -p portcullis-engine --bench replay`
//!
//! The mix: 20,000 accounts; about 60% `api_key.used`, 35% `login`, 5% sensitive events
//! (key changes, new addresses, withdrawals, deposits, calls, market reports), in time order.
//! Accounts roam (`BENCH_MIX=roaming`, the default): each has 2 to 5 IPs of its own and 2 to 5
//! devices, 2 to 4 keys and 2 to 4 usual addresses, and one event in ten comes through one of
//! 500 VPN exits that many accounts share. `BENCH_MIX=single` is the mix before 2026-12-06:
//! one IP, one device and one key per account, every address new.
//! `BENCH_FEED=FILE` only writes the lines to FILE (for timing `portcullis replay` on them).

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

/// The allocator the `portcullis` binary ships with, so that the figures are those of
/// `portcullis replay`.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const DEFAULT_ACCOUNTS: u64 = 20_000;
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

/// Which population the lines describe.
#[derive(Clone, Copy, PartialEq)]
enum Mix {
    /// One IP, one device, one key per account; withdrawals and new addresses to random ones.
    Single,
    /// See the module documentation.
    Roaming,
}

/// What an account of the roaming mix uses for one event: an IP, a device, a key, an address.
struct Habits {
    ip: String,
    device: String,
    key: String,
    address: String,
}

fn habits(account: u64, mix: Mix, rng: &mut Rng) -> Habits {
    if mix == Mix::Single {
        return Habits {
            ip: format!("198.51.{}.{}", account % 250, account / 250 % 250),
            device: format!("d{account}"),
            key: format!("k{account}"),
            address: format!("T{}", rng.next() % 100_000),
        };
    }
    let pick = |rng: &mut Rng, spread: u64| rng.next() % (2 + (account / spread) % 4);
    let ip = if rng.next().is_multiple_of(10) {
        let exit = rng.next() % 500;
        format!("203.0.{}.{}", exit / 250, exit % 250)
    } else {
        let own = pick(rng, 1);
        format!("10.{own}.{}.{}", account % 250, account / 250 % 250)
    };
    let address = if rng.next().is_multiple_of(4) {
        format!("T{}", rng.next() % 100_000)
    } else {
        format!("Ta{account}x{}", pick(rng, 7) % 3)
    };
    Habits {
        ip,
        device: format!("d{account}x{}", pick(rng, 3)),
        key: format!("k{account}x{}", pick(rng, 5) % 3),
        address,
    }
}

fn line(n: u64, accounts: u64, mix: Mix, rng: &mut Rng) -> String {
    let ts = UnixMillis(1_753_700_000_000 + n as i64 * 40).to_rfc3339();
    let account = rng.next() % accounts;
    let Habits {
        ip,
        device,
        key,
        address,
    } = habits(account, mix, rng);
    let head = format!(r#"{{"id":"e{n}","ts":"{ts}","account":"a{account}""#);
    match rng.next() % 100 {
        0..60 => format!(
            r#"{head},"type":"api_key.used","key_id":"{key}","endpoint":"POST /api/v3/order","count":{},"window_s":60,"ctx":{{"ip":"{ip}","channel":"api"}}}}"#,
            1 + rng.next() % 50
        ),
        60..95 => format!(
            r#"{head},"type":"login","method":"password","success":true,"ctx":{{"ip":"{ip}","device_id":"{device}","channel":"web"}}}}"#
        ),
        95..96 => format!(
            r#"{head},"type":"api_key.updated","key_id":"{key}","scopes":["read","trade","withdraw"],"ip_allowlist":["{ip}/32"],"step_up":"totp","ctx":{{"ip":"{ip}","device_id":"{device}","channel":"app"}}}}"#
        ),
        96..97 => format!(
            r#"{head},"type":"address.added","address":"{address}","asset":"USDT","network":"TRX","step_up":"passkey","ctx":{{"ip":"{ip}"}}}}"#
        ),
        97..98 => format!(
            r#"{head},"type":"withdrawal.requested","withdrawal_id":"w{n}","asset":"USDT","network":"TRX","address":"{address}","amount":"250","amount_usd":250.0,"ctx":{{"ip":"{ip}"}}}}"#
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

/// Nanoseconds this thread has run on a CPU (the scheduler's own count), so that the rates
/// are per core even when other work shares the machine; wall-clock rates are printed beside.
fn thread_cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// Wall and CPU seconds of `run`.
fn timed(run: impl FnOnce()) -> (f64, f64) {
    let (wall, cpu) = (Instant::now(), thread_cpu_ns());
    run();
    (
        wall.elapsed().as_secs_f64(),
        thread_cpu_ns().saturating_sub(cpu) as f64 / 1e9,
    )
}

fn parse_pass(lines: &[String]) {
    for text in lines {
        black_box(parse_line(black_box(text)).is_ok());
    }
}

/// A full replay into a fresh engine; the latency of each deciding event is pushed.
fn replay_pass(lines: &[String], latencies: &mut Vec<u64>) -> Engine {
    let mut engine = Engine::new(Policy::default_policy().unwrap());
    for text in lines {
        let event = parse_line(text).unwrap();
        let asks = event.body.asks_for_decision();
        let at = asks.then(Instant::now);
        let outcome = engine.process(&event);
        if let Some(at) = at {
            latencies.push(at.elapsed().as_nanos() as u64);
        }
        black_box(matches!(outcome, Outcome::Decided(..)));
    }
    engine
}

/// How many times the mix is replayed again as new accounts, to measure what an account costs.
const MORE_POPULATIONS: u8 = 3;

/// Replays `lines` again into `engine` as another population: every account, id, device,
/// address and own IP renamed for `population`, every time moved on by `shift_ms`, so the engine
/// tracks more accounts with the same habits (the VPN exits of the roaming mix stay the same
/// 500, shared). What the resident memory grows by is what those accounts cost, without the
/// costs that do not grow with accounts (the seen-id set is bounded by the dedup horizon, the
/// allocator's partly filled pages are there once).
fn replay_as_new_accounts(engine: &mut Engine, lines: &[String], population: u8, shift_ms: i64) {
    let prefix = char::from(b'a' + population);
    let renames = [
        (r#""device_id":""#, format!(r#""device_id":"{prefix}"#)),
        (r#""address":""#, format!(r#""address":"{prefix}"#)),
        // Own IPs, at the start of a value (`"ip":"…"`, `"ip_allowlist":["…/32"]`).
        (r#""198.51."#, format!(r#""198.{}."#, 51 + population)),
        (r#""10."#, format!(r#""{}."#, 10 + 10 * population)),
    ];
    for text in lines {
        let mut text = text.clone();
        for (from, to) in &renames {
            text = text.replace(from, to);
        }
        let mut event = parse_line(&text).unwrap();
        event.id.insert(0, prefix);
        if let Some(account) = event.account.as_mut() {
            account.insert(0, prefix);
        }
        event.ts = UnixMillis(event.ts.as_millis() + shift_ms);
        black_box(engine.process(&event));
    }
}

fn mix_name(mix: Mix) -> &'static str {
    if mix == Mix::Single {
        "single (one IP, device, key each)"
    } else {
        "roaming"
    }
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn main() {
    let events: u64 = std::env::var("BENCH_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(EVENTS);
    let rounds: usize = std::env::var("BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let accounts: u64 = std::env::var("BENCH_ACCOUNTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_ACCOUNTS);
    let mix = match std::env::var("BENCH_MIX").as_deref() {
        Ok("single") => Mix::Single,
        _ => Mix::Roaming,
    };
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let lines: Vec<String> = (0..events)
        .map(|n| line(n, accounts, mix, &mut rng))
        .collect();
    // `BENCH_FEED=FILE`: only write the lines, for `portcullis replay` (the whole command).
    if let Ok(path) = std::env::var("BENCH_FEED") {
        std::fs::write(&path, lines.join("\n") + "\n").unwrap();
        println!("wrote {events} events ({} mix) to {path}", mix_name(mix));
        return;
    }
    let hot = lines
        .iter()
        .filter(|l| l.contains(r#""type":"api_key.used""#) || l.contains(r#""type":"login""#))
        .count();

    // Memory: the first replay, with its engine alive at the end.
    let mut latencies = Vec::with_capacity(events as usize / 10);
    let rss_before = rss_kib();
    let mut engine = replay_pass(&lines, &mut latencies);
    let rss_after = rss_kib();
    let memory = engine.memory_use();
    let (checkpoint_wall, _) = timed(|| {
        black_box(engine.checkpoint().unwrap());
    });
    let checkpoint = engine.checkpoint().unwrap();
    let (restore_wall, _) = timed(|| {
        black_box(Engine::from_checkpoint(Policy::default_policy().unwrap(), &checkpoint).unwrap());
    });
    // Not kept while the engine grows: its bytes are not what an account costs (until
    // 2026-12-07 it was, about 285 bytes of each account's figure in the roaming mix).
    let checkpoint_len = checkpoint.len();
    drop(checkpoint);
    let span_ms = parse_line(lines.last().unwrap()).unwrap().ts.as_millis()
        - parse_line(&lines[0]).unwrap().ts.as_millis()
        + 3_600_000;
    for population in 1..=MORE_POPULATIONS {
        replay_as_new_accounts(
            &mut engine,
            &lines,
            population,
            span_ms * i64::from(population),
        );
    }
    let (rss_more, more) = (rss_kib(), engine.memory_use());
    let parts = engine.memory_parts();
    let more_accounts = more.accounts;
    drop(engine);

    // Speed: rounds alternate which pass goes first; medians of each.
    let (mut parse_cpu, mut parse_wall, mut replay_cpu, mut replay_wall) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    latencies.clear();
    for round in 0..rounds {
        let mut parse = || {
            let (wall, cpu) = timed(|| parse_pass(&lines));
            parse_wall.push(events as f64 / wall);
            parse_cpu.push(events as f64 / cpu);
        };
        if round % 2 == 1 {
            parse();
        }
        let (wall, cpu) = timed(|| drop(replay_pass(&lines, &mut latencies)));
        replay_wall.push(events as f64 / wall);
        replay_cpu.push(events as f64 / cpu);
        if round % 2 == 0 {
            parse();
        }
    }
    let (parse_rate, replay_rate) = (median(&mut parse_cpu), median(&mut replay_cpu));
    latencies.sort_unstable();
    let pct = |p: f64| latencies[((latencies.len() as f64 - 1.0) * p) as usize] as f64 / 1000.0;

    println!(
        "replay benchmark: {} mix, {events} events ({:.1}% api_key.used or login), {accounts} accounts, {} decisions per pass, one thread, median of {rounds} rounds",
        mix_name(mix),
        hot as f64 * 100.0 / events as f64,
        latencies.len() / rounds.max(1)
    );
    println!(
        "  parse only          {parse_rate:>12.0} events per CPU-second   (wall clock: {:.0}/s)",
        median(&mut parse_wall)
    );
    println!(
        "  parse + engine      {replay_rate:>12.0} events per CPU-second   (wall clock: {:.0}/s)   {:.2} of parse-only",
        median(&mut replay_wall),
        replay_rate / parse_rate
    );
    println!(
        "  decision latency    p50 {:.1} us, p99 {:.1} us, max {:.1} us (wall clock, every deciding event of every round)",
        pct(0.5),
        pct(0.99),
        pct(1.0)
    );
    let accounts = memory.accounts.max(1) as f64;
    println!(
        "  memory              {:.0} bytes per tracked account: RSS growth from {} to {more_accounts} accounts, replaying the mix again as new accounts (what one more account costs)",
        (rss_more.saturating_sub(rss_after) * 1024) as f64
            / more_accounts.saturating_sub(memory.accounts).max(1) as f64,
        memory.accounts
    );
    println!(
        "                      {:.0} bytes per tracked account, RSS growth over the first replay ({} accounts; includes the costs that do not grow with accounts: the seen-id set, the allocator's partly filled pages, the latency samples)",
        (rss_after.saturating_sub(rss_before) * 1024) as f64 / accounts,
        memory.accounts
    );
    println!(
        "                      {:.0} bytes per account computed from the state (states, ids, table slots; allocator overhead not counted)",
        memory.account_bytes as f64 / accounts
    );
    println!(
        "                      entity graph: {} nodes, {} bytes computed = {:.0} per account (part of the RSS figures), {} campaign alerts",
        memory.graph_nodes,
        memory.graph_bytes,
        memory.graph_bytes as f64 / accounts,
        memory.alerts
    );
    println!(
        "                      after {more_accounts} accounts: states {:.0} per account, graph {} nodes {:.0} per account, {} campaign alerts",
        more.account_bytes as f64 / more_accounts.max(1) as f64,
        more.graph_nodes,
        more.graph_bytes as f64 / more_accounts.max(1) as f64,
        more.alerts
    );
    let breakdown: Vec<String> = parts
        .iter()
        .map(|(name, bytes)| format!("{name} {:.0}", *bytes as f64 / more_accounts.max(1) as f64))
        .collect();
    println!(
        "                      computed per account after {more_accounts}: {}",
        breakdown.join(", ")
    );
    println!(
        "                      seen-id set: {} ids kept (one dedup horizon), {} bytes computed = {:.0} per account",
        memory.seen_ids,
        memory.seen_id_bytes,
        memory.seen_id_bytes as f64 / accounts
    );
    println!(
        "  checkpoint          {} bytes = {:.0} per account; written in {:.1} ms, restored in {:.1} ms",
        checkpoint_len,
        checkpoint_len as f64 / accounts,
        checkpoint_wall * 1e3,
        restore_wall * 1e3
    );
    println!("  targets: >= 1,000,000 events/s; decision p99 <= 50 us; <= 1 KiB per account");
}
