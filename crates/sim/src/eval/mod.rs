//! `eval`: replays a labelled feed through the engine and measures the policy: scam USD
//! stopped, legitimate withdrawals held, how fast each attack was stopped, per tactic and per
//! rule (what each rule adds, measured by replaying without it).
//!
//! The labels may come from `simulate` or from anyone else's feed; every label must name an
//! event that asks for a decision, and every such event must have a label.

mod charts;
mod report;
mod summary;

pub use charts::{Chart, ChartError, charts, png};
pub use report::report_html;
pub use summary::{RuleShare, Summary, TacticFigures};

use crate::feed::LabelLine;
use portcullis_core::contract::parse_line;
use portcullis_engine::{Engine, Outcome, Policy, PolicyError, Verdict};
use std::collections::HashMap;

/// Why an evaluation cannot run.
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    #[error("labels line {line}: {reason}")]
    BadLabel { line: usize, reason: String },
    #[error("{count} labels name no decided event of the feed (first: {first})")]
    LabelsWithoutEvent { count: usize, first: String },
    #[error("{count} decided events have no label (first: {first})")]
    EventsWithoutLabel { count: usize, first: String },
    #[error("policy: {0}")]
    Policy(#[from] PolicyError),
    #[error("policy file: {0}")]
    PolicyFile(String),
}

/// One decided event, with its truth.
#[derive(Debug, Clone)]
pub struct Judged {
    pub ts: i64,
    pub kind: &'static str,
    pub account: String,
    pub verdict: Verdict,
    pub reasons: Vec<String>,
    pub label: LabelLine,
}

/// Parses the label lines.
pub fn parse_labels(text: &str) -> Result<Vec<LabelLine>, EvalError> {
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(n, line)| {
            serde_json::from_str(line).map_err(|e| EvalError::BadLabel {
                line: n + 1,
                reason: e.to_string(),
            })
        })
        .collect()
}

/// Replays `events` under `policy` and joins each decision with its label. Lines the contract
/// refuses are skipped, as `replay` does; the count is returned beside the outcomes.
pub fn decide(
    events: &[&str],
    labels: &[LabelLine],
    policy: Policy,
) -> Result<(Vec<Judged>, u64), EvalError> {
    let mut by_id: HashMap<&str, &LabelLine> =
        labels.iter().map(|l| (l.event_id.as_str(), l)).collect();
    let mut engine = Engine::new(policy);
    let mut outcomes = Vec::new();
    let mut unlabelled = Vec::new();
    let mut refused = 0;
    for line in events {
        let Ok(event) = parse_line(line) else {
            refused += 1;
            continue;
        };
        if let Outcome::Decided(decision, _) = engine.process(&event) {
            match by_id.remove(decision.event_id.as_str()) {
                Some(label) => outcomes.push(Judged {
                    ts: event.ts.as_millis(),
                    kind: event.body.type_name(),
                    account: event.account.clone().unwrap_or_default(),
                    verdict: decision.decision,
                    reasons: decision.reasons,
                    label: label.clone(),
                }),
                None => unlabelled.push(decision.event_id),
            }
        }
    }
    if let Some(first) = unlabelled.first() {
        return Err(EvalError::EventsWithoutLabel {
            count: unlabelled.len(),
            first: first.clone(),
        });
    }
    if !by_id.is_empty() {
        let mut left: Vec<&str> = by_id.into_keys().collect();
        left.sort_unstable();
        return Err(EvalError::LabelsWithoutEvent {
            count: left.len(),
            first: left.iter().take(10).copied().collect::<Vec<_>>().join(", "),
        });
    }
    Ok((outcomes, refused))
}

/// The policy's text without the rule `id` (to measure what the rule adds).
pub fn policy_without(text: &str, id: &str) -> Result<String, EvalError> {
    let mut table: toml::Table =
        toml::from_str(text).map_err(|e| EvalError::PolicyFile(e.to_string()))?;
    if let Some(toml::Value::Array(rules)) = table.get_mut("rule") {
        rules.retain(|rule| rule.get("id").and_then(toml::Value::as_str) != Some(id));
    }
    toml::to_string(&table).map_err(|e| EvalError::PolicyFile(e.to_string()))
}

/// The whole evaluation: the decisions under `policy_text`, then once more without each acting
/// rule.
pub fn evaluate(
    events: &[&str],
    labels: &[LabelLine],
    policy_text: &str,
) -> Result<Summary, EvalError> {
    let policy = Policy::parse(policy_text)?;
    let rules: Vec<String> = policy
        .rules
        .iter()
        .filter(|r| !r.shadow)
        .map(|r| r.id.clone())
        .collect();
    let (outcomes, refused) = decide(events, labels, policy)?;
    let mut summary = Summary::of(&outcomes, events.len() as u64, refused);
    for rule in rules {
        let without = Policy::parse(&policy_without(policy_text, &rule)?)?;
        let (others, _) = decide(events, labels, without)?;
        summary.add_rule_share(&rule, &outcomes, &others);
    }
    Ok(summary)
}

#[cfg(test)]
mod tests;
