//! Backtests: one feed replayed through two fresh engines, the policy in force ("before") and a
//! candidate ("after"), and what each decided, counted side by side: scam USD stopped,
//! legitimate withdrawals held or blocked, per rule (shadow rules included, with their own
//! hits), and the decisions whose verdict changes.
//!
//! "Scam" is what the feed itself says was fraud: a withdrawal of an account that a
//! `fraud.confirmed` event names as its account (whether the confirmation came before or after
//! the withdrawal), or whose `withdrawal_id` a `fraud.confirmed` lists. Every other withdrawal is
//! legitimate. The caller gathers the confirmations ([`Confirmed`]) from the whole history first,
//! so a confirmation made after the backtest's range still counts.

use crate::decision::Verdict;
use crate::engine::{Engine, Outcome};
use crate::entities::Override;
use crate::policy::Policy;
use portcullis_core::contract::{ContractEvent, EventBody};
use serde::Serialize;
use std::collections::HashSet;

/// The most changed decisions a report lists (all are counted).
pub const MAX_EXAMPLES: usize = 50;

/// The accounts and withdrawals that fraud confirmations name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Confirmed {
    accounts: HashSet<String>,
    withdrawals: HashSet<String>,
}

impl Confirmed {
    /// Takes note of a `fraud.confirmed` (any other event is ignored).
    pub fn observe(&mut self, event: &ContractEvent) {
        if let EventBody::FraudConfirmed { withdrawal_ids, .. } = &event.body {
            if let Some(account) = &event.account {
                self.accounts.insert(account.clone());
            }
            self.withdrawals.extend(withdrawal_ids.iter().cloned());
        }
    }

    /// Whether a confirmation names the account.
    pub fn account(&self, account: &str) -> bool {
        self.accounts.contains(account)
    }

    /// How many accounts confirmations name.
    pub fn accounts(&self) -> usize {
        self.accounts.len()
    }

    /// Whether the event is a scam withdrawal: a withdrawal of a confirmed account, or one a
    /// confirmation lists. `None` when it is no withdrawal.
    fn scam_withdrawal(&self, event: &ContractEvent) -> Option<(bool, f64)> {
        let EventBody::WithdrawalRequested {
            withdrawal_id,
            amount_usd,
            ..
        } = &event.body
        else {
            return None;
        };
        let by_account = event.account.as_deref().is_some_and(|a| self.account(a));
        Some((
            by_account || self.withdrawals.contains(withdrawal_id),
            *amount_usd,
        ))
    }
}

/// A decided event, whatever the policy that decides it.
#[derive(Debug, Clone, PartialEq)]
pub struct Subject {
    pub event_id: String,
    pub account: String,
    pub event_type: &'static str,
    pub ts: i64,
    /// The amount, for a withdrawal.
    pub withdrawal_usd: Option<f64>,
    /// A withdrawal counted as scam (see the module documentation).
    pub scam: bool,
    /// The account is named by a fraud confirmation.
    pub confirmed: bool,
}

/// What one policy decided on a subject.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Judgement {
    pub verdict: Verdict,
    /// The acting rules that fired (the decision's reasons).
    pub reasons: Vec<String>,
    /// Every rule that fired, shadow rules included.
    pub fired: Vec<String>,
}

/// What one rule did under one policy.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct RuleFigures {
    pub rule: String,
    /// Counted, never acting.
    pub shadow: bool,
    /// Decisions it fired on.
    pub hits: u64,
    /// Of those, decisions that held or blocked (by this rule or others).
    pub held_or_blocked: u64,
    /// Of the hits, those on accounts a fraud confirmation names.
    pub confirmed: u64,
    /// USD of scam withdrawals held or blocked that it fired on.
    pub scam_usd_stopped: f64,
    /// Legitimate withdrawals held or blocked that it fired on.
    pub legit_withdrawals_stopped: u64,
}

/// What one policy did over the whole feed.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct SideFigures {
    pub decided: u64,
    pub held: u64,
    pub blocked: u64,
    pub scam_withdrawals: u64,
    pub scam_usd: f64,
    /// USD of scam withdrawals held or blocked.
    pub scam_usd_stopped: f64,
    pub legit_withdrawals: u64,
    pub legit_withdrawals_held: u64,
    pub legit_withdrawals_blocked: u64,
    /// Every rule of the policy, in policy order.
    pub rules: Vec<RuleFigures>,
}

fn stops(verdict: Verdict) -> bool {
    verdict >= Verdict::Hold
}

impl SideFigures {
    /// Zero figures for each rule of `policy`.
    pub fn for_policy(policy: &Policy) -> Self {
        Self {
            rules: policy
                .rules
                .iter()
                .map(|rule| RuleFigures {
                    rule: rule.id.clone(),
                    shadow: rule.shadow,
                    ..RuleFigures::default()
                })
                .collect(),
            ..Self::default()
        }
    }

    /// Counts one decision.
    pub fn record(&mut self, subject: &Subject, judgement: &Judgement) {
        let stopped = stops(judgement.verdict);
        self.decided += 1;
        match judgement.verdict {
            Verdict::Hold => self.held += 1,
            Verdict::Block => self.blocked += 1,
            Verdict::Allow | Verdict::Challenge => {}
        }
        if let Some(usd) = subject.withdrawal_usd {
            if subject.scam {
                self.scam_withdrawals += 1;
                self.scam_usd += usd;
                if stopped {
                    self.scam_usd_stopped += usd;
                }
            } else {
                self.legit_withdrawals += 1;
                match judgement.verdict {
                    Verdict::Hold => self.legit_withdrawals_held += 1,
                    Verdict::Block => self.legit_withdrawals_blocked += 1,
                    Verdict::Allow | Verdict::Challenge => {}
                }
            }
        }
        for id in &judgement.fired {
            let Some(rule) = self.rules.iter_mut().find(|r| &r.rule == id) else {
                continue;
            };
            rule.hits += 1;
            rule.confirmed += u64::from(subject.confirmed);
            if !stopped {
                continue;
            }
            rule.held_or_blocked += 1;
            match (subject.withdrawal_usd, subject.scam) {
                (Some(usd), true) => rule.scam_usd_stopped += usd,
                (Some(_), false) => rule.legit_withdrawals_stopped += 1,
                (None, _) => {}
            }
        }
    }
}

/// A decision the candidate changes.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChangedDecision {
    pub event_id: String,
    pub account: String,
    pub event_type: &'static str,
    /// Event time, Unix milliseconds.
    pub ts: i64,
    pub amount_usd: Option<f64>,
    pub scam: bool,
    pub before: Verdict,
    pub before_reasons: Vec<String>,
    pub after: Verdict,
    pub after_reasons: Vec<String>,
}

/// Both sides' figures and the decisions that change.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct BacktestReport {
    /// Events replayed.
    pub events: u64,
    pub decided: u64,
    /// Accounts fraud confirmations name (over the whole history).
    pub confirmed_accounts: u64,
    pub before: SideFigures,
    pub after: SideFigures,
    /// Decisions whose verdict differs.
    pub changed: u64,
    /// The first [`MAX_EXAMPLES`] of them, in feed order.
    pub examples: Vec<ChangedDecision>,
}

impl BacktestReport {
    pub fn new(current: &Policy, candidate: &Policy, confirmed_accounts: usize) -> Self {
        Self {
            confirmed_accounts: confirmed_accounts as u64,
            before: SideFigures::for_policy(current),
            after: SideFigures::for_policy(candidate),
            ..Self::default()
        }
    }

    /// Counts one decided event under both policies.
    pub fn record(&mut self, subject: &Subject, before: &Judgement, after: &Judgement) {
        self.decided += 1;
        self.before.record(subject, before);
        self.after.record(subject, after);
        if before.verdict == after.verdict {
            return;
        }
        self.changed += 1;
        if self.examples.len() < MAX_EXAMPLES {
            self.examples.push(ChangedDecision {
                event_id: subject.event_id.clone(),
                account: subject.account.clone(),
                event_type: subject.event_type,
                ts: subject.ts,
                amount_usd: subject.withdrawal_usd,
                scam: subject.scam,
                before: before.verdict,
                before_reasons: before.reasons.clone(),
                after: after.verdict,
                after_reasons: after.reasons.clone(),
            });
        }
    }
}

/// Two fresh engines fed the same events in the same order.
#[derive(Debug)]
pub struct Backtest {
    before: Engine,
    after: Engine,
    confirmed: Confirmed,
    report: BacktestReport,
}

impl Backtest {
    /// `overrides` are the operators' overrides, in force for the events of their time range
    /// in both engines, as in the service.
    pub fn new(
        current: Policy,
        candidate: Policy,
        overrides: Vec<Override>,
        confirmed: Confirmed,
    ) -> Self {
        let report = BacktestReport::new(&current, &candidate, confirmed.accounts());
        let mut before = Engine::new(current);
        let mut after = Engine::new(candidate);
        before.set_overrides(overrides.clone());
        after.set_overrides(overrides);
        Self {
            before,
            after,
            confirmed,
            report,
        }
    }

    /// Applies one event (of a log: ids are unique) to both engines and counts the decisions.
    pub fn apply(&mut self, event: &ContractEvent) {
        self.report.events += 1;
        let before = self.before.process_unique(event);
        let after = self.after.process_unique(event);
        let (Outcome::Decided(before, _), Outcome::Decided(after, _)) = (before, after) else {
            return;
        };
        let account = event.account.clone().unwrap_or_default();
        let withdrawal = self.confirmed.scam_withdrawal(event);
        let subject = Subject {
            event_id: event.id.clone(),
            confirmed: self.confirmed.account(&account),
            account,
            event_type: event.body.type_name(),
            ts: event.ts.as_millis(),
            withdrawal_usd: withdrawal.map(|(_, usd)| usd),
            scam: withdrawal.is_some_and(|(scam, _)| scam),
        };
        let judged = |engine: &Engine, decision: crate::Decision| Judgement {
            verdict: decision.decision,
            reasons: decision.reasons,
            fired: engine.last_fired().map(str::to_owned).collect(),
        };
        let before = judged(&self.before, before);
        let after = judged(&self.after, after);
        self.report.record(&subject, &before, &after);
    }

    pub fn finish(self) -> BacktestReport {
        self.report
    }
}

#[cfg(test)]
mod tests;
