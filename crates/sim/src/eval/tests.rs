//! Evaluation checked against figures computed here by other means: the decisions of a plain
//! `replay`-style pass joined with the labels by hand.

#![allow(clippy::cast_possible_truncation)]

use super::*;
use crate::{Config, simulate};
use portcullis_engine::DEFAULT_POLICY;

fn small_feed() -> (Vec<String>, Vec<LabelLine>) {
    let sim = simulate(&Config::new(400, 14, 11)).unwrap();
    let labels = sim
        .rendered
        .labels
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    (sim.rendered.events, labels)
}

#[test]
fn the_summary_matches_figures_computed_from_the_raw_decisions() {
    let (events, labels) = small_feed();
    let lines: Vec<&str> = events.iter().map(String::as_str).collect();
    // Independently: replay, keep each decision by event id.
    let mut engine = Engine::new(Policy::default_policy().unwrap());
    let mut verdicts = HashMap::new();
    for line in &lines {
        if let Outcome::Decided(d, _) = engine.process(&parse_line(line).unwrap()) {
            verdicts.insert(d.event_id.clone(), d.decision);
        }
    }
    let amount = |l: &LabelLine| l.amount_usd;
    let is_withdrawal = |l: &LabelLine| {
        let line = lines
            .iter()
            .find(|e| e.contains(&format!("\"id\":\"{}\"", l.event_id)))
            .unwrap();
        line.contains("\"type\":\"withdrawal.requested\"")
    };
    let stopped = |l: &LabelLine| verdicts[&l.event_id] >= Verdict::Hold;
    let scam_w: Vec<&LabelLine> = labels
        .iter()
        .filter(|l| l.label == crate::Label::Scam && is_withdrawal(l))
        .collect();
    let legit_w: Vec<&LabelLine> = labels
        .iter()
        .filter(|l| l.label == crate::Label::Legit && is_withdrawal(l))
        .collect();
    let scam_usd: f64 = scam_w.iter().map(|l| amount(l)).sum();
    let scam_stopped: f64 = scam_w
        .iter()
        .filter(|l| stopped(l))
        .map(|l| amount(l))
        .sum();
    let legit_stopped = legit_w.iter().filter(|l| stopped(l)).count();

    let summary = evaluate(&lines, &labels, DEFAULT_POLICY).unwrap();
    assert_eq!(summary.decided as usize, labels.len());
    assert_eq!(summary.scam.withdrawals as usize, scam_w.len());
    assert!((summary.scam.usd - scam_usd).abs() < 1e-6);
    assert!((summary.scam.usd_stopped - scam_stopped).abs() < 1e-6);
    assert_eq!(summary.legit.withdrawals as usize, legit_w.len());
    assert_eq!(
        (summary.legit.withdrawals_held + summary.legit.withdrawals_blocked) as usize,
        legit_stopped
    );
    assert!(scam_usd > 0.0 && !legit_w.is_empty());
    // Every acting rule of the policy has its share measured.
    let acting = Policy::default_policy()
        .unwrap()
        .rules
        .iter()
        .filter(|r| !r.shadow)
        .count();
    assert_eq!(summary.rules.len(), acting);
    let per_tactic: f64 = summary
        .tactics
        .iter()
        .filter(|t| t.label == "scam")
        .map(|t| t.usd)
        .sum();
    assert!((per_tactic - scam_usd).abs() < 1e-6);
}

#[test]
fn a_rule_that_alone_stops_money_shows_what_it_adds() {
    let (events, labels) = small_feed();
    let lines: Vec<&str> = events.iter().map(String::as_str).collect();
    // A policy whose only acting rule blocks every API withdrawal: all of its stops are its own.
    let policy = "[thresholds]\nchallenge = 30\nhold = 60\nblock = 85\n\n[[rule]]\nid = \"api_out\"\ndescription = \"x\"\nwhen = \"event_type == 'withdrawal.requested' && via_api\"\naction = \"block\"\nscore = 100\n";
    let summary = evaluate(&lines, &labels, policy).unwrap();
    assert_eq!(summary.rules.len(), 1);
    assert!(summary.scam.usd_stopped > 0.0);
    assert!((summary.rules[0].adds_scam_usd_stopped - summary.scam.usd_stopped).abs() < 1e-6);
}

#[test]
fn labels_that_do_not_match_the_events_are_refused_with_how_many_and_which() {
    let (events, mut labels) = small_feed();
    let lines: Vec<&str> = events.iter().map(String::as_str).collect();
    let mut stray = labels[0].clone();
    stray.event_id = "nope".into();
    labels.push(stray);
    let error = evaluate(&lines, &labels, DEFAULT_POLICY).unwrap_err();
    assert_eq!(
        error.to_string(),
        "1 labels name no decided event of the feed (first: nope)"
    );
    labels.pop();
    let first = labels.remove(0).event_id;
    let error = evaluate(&lines, &labels, DEFAULT_POLICY).unwrap_err();
    assert_eq!(
        error.to_string(),
        format!("1 decided events have no label (first: {first})")
    );
}

#[test]
fn a_bad_label_line_is_named() {
    let error = parse_labels(
        "{\"event_id\":\"a\",\"label\":\"scam\",\"tactic\":\"x\",\"amount_usd\":1}\n{oops\n",
    )
    .unwrap_err();
    assert!(error.to_string().starts_with("labels line 2:"), "{error}");
}

#[test]
fn the_report_is_one_page_with_its_charts_and_escapes_what_files_say() {
    let (events, mut labels) = small_feed();
    let lines: Vec<&str> = events.iter().map(String::as_str).collect();
    labels[0].tactic = "<script>alert(1)</script>".into();
    let summary = evaluate(&lines, &labels, DEFAULT_POLICY).unwrap();
    let charts = charts(&summary);
    let page = report_html("feed <x>", &summary, &charts).unwrap();
    assert!(page.contains("<svg"));
    assert!(!page.contains("<script"));
    assert!(page.contains("feed &#60;x&#62;") || page.contains("feed &lt;x&gt;"));
    let dir = std::env::temp_dir().join(format!("portcullis-eval-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for chart in &charts {
        png(chart, &dir).unwrap();
        let bytes = std::fs::read(dir.join(format!("{}.png", chart.name))).unwrap();
        assert_eq!(&bytes[..4], b"\x89PNG");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
