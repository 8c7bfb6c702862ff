//! Domain verifications per second on one thread, against a registry of 50 official domains
//! with lookalike detection on (the target: at least 200,000 a second).
//!
//! `cargo bench -p portcullis-contacts`
//!
//! The queries are MetaMask's blocklist as plain domains (real phishing names, most of them
//! `not_official` against this registry, some lookalikes), verified without the blocklist as
//! known scams so that every one runs the whole lookalike path. `PORTCULLIS_BENCH_VALUES`
//! changes how many are verified per round (default 100,000); `PORTCULLIS_BENCH_ROUNDS` the
//! rounds (default 5); the best round is reported.

#![allow(
    clippy::print_stdout,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::cast_precision_loss
)] // A benchmark reports on stdout.

use portcullis_contacts::{
    Direction, EntryKind, OfficialEntry, Registry, Verdict, normalise_entry,
};
use std::time::Instant;

const DATA: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/data/eth-phishing-detect-1.2.0/config.json"
);

fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let text = std::fs::read_to_string(DATA).expect("the shared MetaMask data");
    let config: serde_json::Value = serde_json::from_str(&text).unwrap();
    let list = |key: &str| -> Vec<String> {
        config[key]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_owned())
            .collect()
    };
    // 50 official domains: the fuzzy list's 15 and 35 allowlisted names.
    let officials: Vec<OfficialEntry> = (list("fuzzylist").into_iter())
        .chain(list("whitelist"))
        .filter_map(|d| normalise_entry(EntryKind::Domain, &d, None).ok())
        .take(50)
        .enumerate()
        .map(|(i, value)| OfficialEntry {
            id: format!("c{i}"),
            kind: EntryKind::Domain,
            value,
            channel: "web".into(),
            direction: Direction::Both,
            note: String::new(),
        })
        .collect();
    let started = Instant::now();
    let registry = Registry::compile(officials, &[]);
    println!(
        "compiled 50 official domains into {} variants in {:.1} ms",
        registry.variant_count(),
        started.elapsed().as_secs_f64() * 1e3
    );
    let blocklist = list("blacklist");
    let count = env_number("PORTCULLIS_BENCH_VALUES", 100_000);
    let queries: Vec<&str> = blocklist
        .iter()
        .cycle()
        .take(count)
        .map(String::as_str)
        .collect();
    let mut best = 0.0_f64;
    for round in 0..env_number("PORTCULLIS_BENCH_ROUNDS", 5) {
        let mut lookalikes = 0_usize;
        let started = Instant::now();
        for query in &queries {
            if let Ok(answer) = registry.verify(query, None)
                && answer.verdict == Verdict::Lookalike
            {
                lookalikes += 1;
            }
        }
        let per_second = queries.len() as f64 / started.elapsed().as_secs_f64();
        best = best.max(per_second);
        println!(
            "round {round}: {per_second:>10.0} verifications/s ({lookalikes} lookalikes of {})",
            queries.len()
        );
    }
    println!("best: {best:.0} domain verifications/s on one thread (target 200,000)");
}
