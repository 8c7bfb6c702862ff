//! The figures of an evaluation: what was stopped, whom it bothered, how fast, per tactic or
//! habit, and per rule.

use super::Judged;
use crate::feed::Label;
use portcullis_engine::Verdict;
use serde::Serialize;
use std::collections::BTreeMap;

/// Scam side: money, and how fast each attack was stopped.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ScamFigures {
    pub withdrawals: u64,
    pub usd: f64,
    /// Held or blocked.
    pub usd_stopped: f64,
    pub stopped_share: f64,
    /// Attacked accounts (labels' `incident`, else the account).
    pub incidents: u64,
    /// Incidents with at least one scam step held or blocked.
    pub incidents_stopped: u64,
    /// Minutes from an incident's first decided scam step to its first hold or block.
    pub minutes_to_stop_median: Option<f64>,
    pub minutes_to_stop_p90: Option<f64>,
}

/// Legitimate side: friction.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct LegitFigures {
    pub withdrawals: u64,
    pub withdrawals_held: u64,
    pub withdrawals_blocked: u64,
    pub withdrawals_challenged: u64,
    /// Held or blocked, over all legitimate withdrawals.
    pub friction: f64,
    /// Key changes and new addresses.
    pub changes: u64,
    pub changes_held_or_blocked: u64,
    pub changes_challenged: u64,
}

/// One tactic (scam) or habit (legitimate).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct TacticFigures {
    pub label: &'static str,
    pub tactic: String,
    pub decided: u64,
    pub withdrawals: u64,
    pub usd: f64,
    /// Scam: USD held or blocked. Legitimate: USD of withdrawals held or blocked.
    pub usd_stopped: f64,
    /// Withdrawals held or blocked.
    pub withdrawals_stopped: u64,
    /// Other decided events (changes) held or blocked.
    pub changes_stopped: u64,
}

/// What one rule does, and what it adds (the figures with it minus those without it).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct RuleShare {
    pub rule: String,
    pub fired_scam: u64,
    pub fired_legit: u64,
    pub adds_scam_usd_stopped: f64,
    pub adds_legit_withdrawals_stopped: i64,
}

/// Everything `eval` reports.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Summary {
    pub events: u64,
    pub refused_lines: u64,
    pub decided: u64,
    pub scam: ScamFigures,
    pub legit: LegitFigures,
    pub tactics: Vec<TacticFigures>,
    pub rules: Vec<RuleShare>,
}

fn stops(verdict: Verdict) -> bool {
    verdict >= Verdict::Hold
}

fn is_withdrawal(judged: &Judged) -> bool {
    judged.kind == "withdrawal.requested"
}

fn label_name(label: Label) -> &'static str {
    match label {
        Label::Scam => "scam",
        Label::Legit => "legit",
    }
}

impl Summary {
    pub fn of(outcomes: &[Judged], events: u64, refused: u64) -> Self {
        Self {
            events,
            refused_lines: refused,
            decided: outcomes.len() as u64,
            scam: scam_figures(outcomes),
            legit: legit_figures(outcomes),
            tactics: tactic_figures(outcomes),
            rules: Vec::new(),
        }
    }

    /// Records what `rule` adds: `with` are the outcomes this summary was made of, `without`
    /// those of the same feed replayed without the rule.
    pub fn add_rule_share(&mut self, rule: &str, with: &[Judged], without: &[Judged]) {
        let fired = |label: Label| {
            with.iter()
                .filter(|j| j.label.label == label && j.reasons.iter().any(|r| r == rule))
                .count() as u64
        };
        let legit_stopped = |legit: &LegitFigures| {
            i64::try_from(legit.withdrawals_held + legit.withdrawals_blocked).unwrap_or(i64::MAX)
        };
        let (scam_without, legit_without) = (scam_figures(without), legit_figures(without));
        self.rules.push(RuleShare {
            rule: rule.to_owned(),
            fired_scam: fired(Label::Scam),
            fired_legit: fired(Label::Legit),
            adds_scam_usd_stopped: self.scam.usd_stopped - scam_without.usd_stopped,
            adds_legit_withdrawals_stopped: legit_stopped(&self.legit)
                - legit_stopped(&legit_without),
        });
    }
}

fn ratio(part: f64, whole: f64) -> f64 {
    if whole > 0.0 { part / whole } else { 0.0 }
}

fn scam_figures(outcomes: &[Judged]) -> ScamFigures {
    let mut figures = ScamFigures::default();
    // Per incident: the first decided scam step, and the first stop.
    let mut incidents: BTreeMap<&str, (i64, Option<i64>)> = BTreeMap::new();
    for judged in outcomes.iter().filter(|j| j.label.label == Label::Scam) {
        let incident = judged.label.incident.as_deref().unwrap_or(&judged.account);
        let entry = incidents.entry(incident).or_insert((judged.ts, None));
        entry.0 = entry.0.min(judged.ts);
        if stops(judged.verdict) {
            entry.1 = Some(entry.1.map_or(judged.ts, |t| t.min(judged.ts)));
        }
        if is_withdrawal(judged) {
            figures.withdrawals += 1;
            figures.usd += judged.label.amount_usd;
            if stops(judged.verdict) {
                figures.usd_stopped += judged.label.amount_usd;
            }
        }
    }
    figures.stopped_share = ratio(figures.usd_stopped, figures.usd);
    figures.incidents = incidents.len() as u64;
    let mut minutes: Vec<f64> = incidents
        .values()
        .filter_map(|(first, stop)| stop.map(|s| (s - first) as f64 / 60_000.0))
        .collect();
    figures.incidents_stopped = minutes.len() as u64;
    minutes.sort_by(f64::total_cmp);
    figures.minutes_to_stop_median = percentile(&minutes, 0.5);
    figures.minutes_to_stop_p90 = percentile(&minutes, 0.9);
    figures
}

/// Nearest-rank percentile of sorted values.
fn percentile(sorted: &[f64], q: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    // The rank of a share of a slice's length fits in usize.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    Some(sorted[rank - 1])
}

fn legit_figures(outcomes: &[Judged]) -> LegitFigures {
    let mut figures = LegitFigures::default();
    for judged in outcomes.iter().filter(|j| j.label.label == Label::Legit) {
        if is_withdrawal(judged) {
            figures.withdrawals += 1;
            match judged.verdict {
                Verdict::Hold => figures.withdrawals_held += 1,
                Verdict::Block => figures.withdrawals_blocked += 1,
                Verdict::Challenge => figures.withdrawals_challenged += 1,
                Verdict::Allow => {}
            }
        } else {
            figures.changes += 1;
            match judged.verdict {
                Verdict::Hold | Verdict::Block => figures.changes_held_or_blocked += 1,
                Verdict::Challenge => figures.changes_challenged += 1,
                Verdict::Allow => {}
            }
        }
    }
    figures.friction = ratio(
        (figures.withdrawals_held + figures.withdrawals_blocked) as f64,
        figures.withdrawals as f64,
    );
    figures
}

fn tactic_figures(outcomes: &[Judged]) -> Vec<TacticFigures> {
    let mut by_tactic: BTreeMap<(&'static str, &str), TacticFigures> = BTreeMap::new();
    for judged in outcomes {
        let label = label_name(judged.label.label);
        let figures = by_tactic
            .entry((label, judged.label.tactic.as_str()))
            .or_insert_with(|| TacticFigures {
                label,
                tactic: judged.label.tactic.clone(),
                ..TacticFigures::default()
            });
        figures.decided += 1;
        let stopped = stops(judged.verdict);
        if is_withdrawal(judged) {
            figures.withdrawals += 1;
            figures.usd += judged.label.amount_usd;
            if stopped {
                figures.withdrawals_stopped += 1;
                figures.usd_stopped += judged.label.amount_usd;
            }
        } else if stopped {
            figures.changes_stopped += 1;
        }
    }
    by_tactic.into_values().collect()
}
