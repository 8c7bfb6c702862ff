//! `portcullis replay --partitions N` writes the same bytes as one engine: on a simulated
//! exchange with scam campaigns, with a duplicate, a late event and a refused line added, and
//! batches smaller than the feed (the partitions' batch is 65,536 events; the feed is larger).

#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::Command;

/// Whether the command succeeded, and what it wrote to stderr.
fn portcullis(args: &[&str]) -> (bool, String) {
    let binary = env!("CARGO_BIN_EXE_portcullis");
    let output = Command::new(binary).args(args).output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    (output.status.success(), stderr)
}

fn replay(events: &Path, out: &Path, partitions: &str) -> String {
    let (succeeded, stderr) = portcullis(&[
        "replay",
        events.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--partitions",
        partitions,
    ]);
    assert!(succeeded, "{stderr}");
    stderr
}

/// The summary without its timing (`in 1.23 s, 456 events/s;`).
fn without_timing(summary: &str) -> String {
    let start = summary.find(" in ").unwrap();
    let end = summary.find("events/s;").unwrap() + "events/s;".len();
    format!("{}{}", &summary[..start], &summary[end..])
}

#[test]
fn partitioned_replay_writes_the_same_bytes_as_one_engine() {
    let dir = tempfile::tempdir().unwrap();
    let sim = dir.path().join("sim");
    let (made, stderr) = portcullis(&[
        "simulate",
        "--accounts",
        "1500",
        "--days",
        "14",
        "--seed",
        "7",
        "--out",
        sim.to_str().unwrap(),
    ]);
    assert!(made, "{stderr}");
    let mut lines: Vec<String> = std::fs::read_to_string(sim.join("events.jsonl"))
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    assert!(
        lines.len() > 65_536,
        "{} events: more than one batch",
        lines.len()
    );
    // A duplicate, a line that is not an event, and an event from long before.
    let again = lines[lines.len() / 2].clone();
    lines.insert(lines.len() / 2 + 10, again);
    lines.insert(100, "not json".to_owned());
    let stale = lines[200].replace("\"id\":\"", "\"id\":\"stale-");
    lines.insert(lines.len() - 5, stale);
    let events = dir.path().join("events.jsonl");
    std::fs::write(&events, lines.join("\n")).unwrap();

    let one = dir.path().join("one.jsonl");
    let summary = replay(&events, &one, "1");
    let expected = std::fs::read(&one).unwrap();
    assert!(
        summary.contains("1 duplicates ignored, 1 late events ignored, 1 lines refused"),
        "{summary}"
    );
    let held = String::from_utf8_lossy(&expected)
        .matches("\"hold\"")
        .count();
    assert!(held > 0, "the feed has holds");
    for partitions in ["2", "4", "7"] {
        let out = dir.path().join(format!("p{partitions}.jsonl"));
        let partitioned = replay(&events, &out, partitions);
        assert!(
            std::fs::read(&out).unwrap() == expected,
            "{partitions} partitions: other bytes"
        );
        // One line more: the partitions and the facts they handed out.
        let (same, more) = partitioned.trim_end().rsplit_once('\n').unwrap();
        assert_eq!(without_timing(same), without_timing(summary.trim_end()));
        assert!(
            more.starts_with(&format!("{partitions} partitions; ")),
            "{more}"
        );
    }
    let (refused, _) = portcullis(&["replay", "x", "--out", "y", "--partitions", "0"]);
    assert!(!refused);
}
