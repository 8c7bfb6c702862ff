//! `portcullis simulate` and `portcullis eval` as a person runs them: files written, the same
//! seed giving the same bytes, and bad input refused with a clear message.

#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::{Command, Output};

fn portcullis(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .args(args)
        .output()
        .unwrap()
}

fn simulate(dir: &Path, seed: &str) -> Output {
    let out = dir.to_str().unwrap();
    portcullis(&[
        "simulate",
        "--accounts",
        "150",
        "--days",
        "7",
        "--seed",
        seed,
        "--out",
        out,
    ])
}

#[test]
fn simulate_is_deterministic_per_seed_and_eval_reports_on_it() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    assert!(simulate(&a, "5").status.success());
    assert!(simulate(&b, "5").status.success());
    for file in ["events.jsonl", "labels.jsonl"] {
        assert_eq!(
            std::fs::read(a.join(file)).unwrap(),
            std::fs::read(b.join(file)).unwrap()
        );
    }
    let report = dir.path().join("report");
    let output = portcullis(&[
        "eval",
        "--events",
        a.join("events.jsonl").to_str().unwrap(),
        "--labels",
        a.join("labels.jsonl").to_str().unwrap(),
        "--out",
        report.to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(stderr.contains("scam USD stopped"), "{stderr}");
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(report.join("summary.json")).unwrap()).unwrap();
    let labels = std::fs::read_to_string(a.join("labels.jsonl")).unwrap();
    assert_eq!(
        summary["decided"].as_u64().unwrap(),
        labels.lines().count() as u64
    );
    let page = std::fs::read_to_string(report.join("report.html")).unwrap();
    assert!(page.contains("<svg") && !page.contains("<script"));
    assert!(report.join("scam_usd_by_tactic.png").exists());
}

#[test]
fn bad_arguments_and_mismatched_labels_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let output = portcullis(&[
        "simulate",
        "--accounts",
        "0",
        "--out",
        dir.path().to_str().unwrap(),
    ]);
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("--accounts must be between 1"));

    let feed = dir.path().join("feed");
    assert!(simulate(&feed, "9").status.success());
    let labels = std::fs::read_to_string(feed.join("labels.jsonl")).unwrap();
    let stray =
        labels
            .lines()
            .next()
            .unwrap()
            .replacen("\"event_id\":\"ev", "\"event_id\":\"zz", 1);
    std::fs::write(feed.join("bad.jsonl"), format!("{labels}{stray}\n")).unwrap();
    let output = portcullis(&[
        "eval",
        "--events",
        feed.join("events.jsonl").to_str().unwrap(),
        "--labels",
        feed.join("bad.jsonl").to_str().unwrap(),
        "--out",
        dir.path().join("r").to_str().unwrap(),
    ]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("1 labels name no decided event of the feed (first: zz"),
        "{stderr}"
    );
}
