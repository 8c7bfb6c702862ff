//! Stories for the engine's integration tests: lines of `minutes after a fixed start | fields`
//! (the n-th line's id `e{first + n}`), replayed on an engine.

use portcullis_core::contract::parse_lines;
use portcullis_engine::{Decision, Engine, Outcome};

/// Runs a story on `engine`, numbering its ids from `first`, and returns the decisions.
pub fn run_on(engine: &mut Engine, lines: &[impl AsRef<str>], first: usize) -> Vec<Decision> {
    let start = 1_753_700_000_000i64; // 2025-07-28
    let text: Vec<String> = lines
        .iter()
        .enumerate()
        .map(|(n, line)| {
            let (minutes, rest) = line.as_ref().split_once('|').unwrap();
            let ts = portcullis_core::time::UnixMillis(
                start + minutes.trim().parse::<i64>().unwrap() * 60_000,
            );
            format!(
                r#"{{"id":"e{}","ts":"{}",{}}}"#,
                first + n,
                ts.to_rfc3339(),
                rest.trim()
            )
        })
        .collect();
    let batch = parse_lines(&text.join("\n"));
    assert!(batch.errors.is_empty(), "{:?}", batch.errors);
    batch
        .events
        .iter()
        .filter_map(|(_, event)| match engine.process(event) {
            Outcome::Decided(decision, _) => Some(decision),
            _ => None,
        })
        .collect()
}
