//! The engine: events in, decisions out, state updated as an exchange that follows the
//! decisions would leave it (the contract's closed loop).

use crate::decision::{Decision, Verdict};
use crate::features::Features;
use crate::policy::Policy;
use crate::state::{
    AccountState, AddressStatus, Global, MAX_ADDRESSES, MAX_CALLERS, MAX_DEVICES, MAX_IPS,
    MAX_KEYS, Market, latest, normalise_contact, remember_amount,
};
use portcullis_core::contract::{Attestation, ContractEvent, EventBody};
use portcullis_core::scope::{Scope, ScopeSet};
use std::collections::{HashMap, HashSet};

/// What happened to one event.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Its id was processed before; nothing changed.
    Duplicate,
    /// Applied; the type asks for no decision.
    Applied,
    /// Applied with this decision, and the features the rules saw.
    Decided(Decision, Box<Features>),
}

/// Counters for the summary and metrics.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EngineStats {
    pub events: u64,
    pub duplicates: u64,
    pub decisions: HashMap<&'static str, u64>,
    /// Per rule id: how often it fired (shadow rules included).
    pub rule_hits: HashMap<String, u64>,
}

/// See the module documentation.
#[derive(Debug)]
pub struct Engine {
    policy: Policy,
    accounts: HashMap<String, AccountState>,
    global: Global,
    seen_ids: HashSet<String>,
    stats: EngineStats,
}

impl Engine {
    pub fn new(policy: Policy) -> Self {
        Self {
            policy,
            accounts: HashMap::new(),
            global: Global::default(),
            seen_ids: HashSet::new(),
            stats: EngineStats::default(),
        }
    }

    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// Replaces the policy; the state built so far is kept.
    pub fn set_policy(&mut self, policy: Policy) {
        self.policy = policy;
    }

    pub fn stats(&self) -> &EngineStats {
        &self.stats
    }

    pub fn tracked_accounts(&self) -> usize {
        self.accounts.len()
    }

    /// Applies one validated event; decides it when its type asks for a decision.
    pub fn process(&mut self, event: &ContractEvent) -> Outcome {
        if !self.seen_ids.insert(event.id.clone()) {
            self.stats.duplicates += 1;
            return Outcome::Duplicate;
        }
        self.stats.events += 1;
        self.apply_global(event);
        let Some(account) = event.account.as_deref() else {
            return Outcome::Applied;
        };
        let state = self.accounts.entry(account.to_owned()).or_default();
        if !event.body.asks_for_decision() {
            observe(state, event);
            apply(state, event, Verdict::Allow);
            return Outcome::Applied;
        }
        let features = Features::compute(state, &self.global, event);
        let evaluation = self.policy.evaluate(&features);
        for index in &evaluation.fired {
            *self
                .stats
                .rule_hits
                .entry(self.policy.rules[*index].id.clone())
                .or_default() += 1;
        }
        *self
            .stats
            .decisions
            .entry(evaluation.verdict.as_str())
            .or_default() += 1;
        if evaluation.verdict <= Verdict::Challenge {
            observe(state, event);
        }
        apply(state, event, evaluation.verdict);
        let decision = Decision {
            event_id: event.id.clone(),
            decision: evaluation.verdict,
            score: evaluation.score,
            reasons: evaluation.reasons,
        };
        Outcome::Decided(decision, Box::new(features))
    }

    fn apply_global(&mut self, event: &ContractEvent) {
        let ts = event.ts.as_millis();
        match &event.body {
            EventBody::MarketActivity {
                market,
                volume_ratio,
                volatility,
            } => {
                let entry = self.global.markets.entry(market.clone()).or_default();
                if ts >= entry.ts {
                    *entry = Market {
                        ts,
                        volume_ratio: *volume_ratio,
                        volatility: *volatility,
                    };
                }
            }
            EventBody::FraudConfirmed {
                addresses, from, ..
            } => {
                self.global
                    .fraud_addresses
                    .extend(addresses.iter().cloned());
                self.global
                    .fraud_contacts
                    .extend(from.iter().map(|c| normalise_contact(c)));
            }
            _ => {}
        }
    }
}

/// Records where and when the account was seen (for "new IP", "new device", account age).
fn observe(state: &mut AccountState, event: &ContractEvent) {
    let ts = event.ts.as_millis();
    state.first_seen = Some(state.first_seen.map_or(ts, |t| t.min(ts)));
    let succeeded = !matches!(event.body, EventBody::Login { success: false, .. });
    if succeeded {
        if let Some(ip) = &event.ctx.ip {
            state.ips.touch(ip, ts, MAX_IPS);
        }
        if let Some(device) = &event.ctx.device_id {
            state.devices.touch(device, ts, MAX_DEVICES);
        }
    }
}

/// Applies the event as an exchange following `verdict` would.
fn apply(state: &mut AccountState, event: &ContractEvent, verdict: Verdict) {
    let ts = event.ts.as_millis();
    let proceeds = verdict <= Verdict::Challenge;
    if event.ctx.call_active == Some(true) {
        latest(&mut state.last_call_at, ts);
    }
    if event.ctx.remote_access == Some(true) {
        latest(&mut state.last_remote_access_at, ts);
    }
    match &event.body {
        EventBody::ApiKeyCreated {
            key_id,
            scopes,
            ip_allowlist,
            ..
        }
        | EventBody::ApiKeyUpdated {
            key_id,
            scopes,
            ip_allowlist,
            ..
        } => {
            let widening = widens(state, key_id, *scopes, ip_allowlist);
            let key = state.keys.touch(key_id, ts, MAX_KEYS);
            if proceeds {
                key.scopes = *scopes;
                key.allowlist = ip_allowlist.clone();
            } else if !key.known {
                // A held or blocked new key exists without the money-moving scopes.
                key.scopes = scopes
                    .iter()
                    .filter(|s| !matches!(s, Scope::Withdraw | Scope::Transfer))
                    .collect();
                key.allowlist = ip_allowlist.clone();
            }
            key.known = true;
            if proceeds && widening {
                latest(&mut key.widened_at, ts);
                latest(&mut state.last_escalation_at, ts);
            }
        }
        EventBody::ApiKeyDeleted { key_id } => {
            let key = state.keys.touch(key_id, ts, MAX_KEYS);
            key.known = true;
            key.scopes = ScopeSet::EMPTY;
        }
        EventBody::AddressAdded { address, .. } => {
            let entry = state.addresses.touch(address, ts, MAX_ADDRESSES);
            entry.added_at = Some(entry.added_at.map_or(ts, |t| t.max(ts)));
            entry.status = match verdict {
                Verdict::Allow | Verdict::Challenge => AddressStatus::Usable,
                Verdict::Hold => AddressStatus::Held,
                Verdict::Block => AddressStatus::Blocked,
            };
            if proceeds {
                latest(&mut state.last_escalation_at, ts);
            }
        }
        EventBody::WithdrawalRequested {
            address,
            amount_usd,
            ..
        } => {
            let entry = state.addresses.touch(address, ts, MAX_ADDRESSES);
            if verdict == Verdict::Block {
                entry.status = AddressStatus::Blocked;
            }
            if proceeds {
                remember_amount(&mut state.withdrawals, ts, *amount_usd);
                state.max_withdrawal_usd = state.max_withdrawal_usd.max(*amount_usd);
            }
        }
        EventBody::Deposit { amount_usd, .. } => {
            remember_amount(&mut state.deposits, ts, *amount_usd)
        }
        EventBody::ContactReported { from, .. } => {
            latest(&mut state.last_contact_reported_at, ts);
            state
                .callers
                .touch(&normalise_contact(from), ts, MAX_CALLERS);
        }
        EventBody::ContactInboundCall {
            from, attestation, ..
        } => {
            latest(&mut state.last_call_at, ts);
            state
                .callers
                .touch(&normalise_contact(from), ts, MAX_CALLERS);
            if matches!(attestation, Attestation::C | Attestation::None) {
                latest(&mut state.last_unverified_call_at, ts);
            }
        }
        _ => {}
    }
}

/// Whether a key change widens it: adds a money-moving scope, or loosens the allow-list of a
/// key that can move money.
fn widens(
    state: &AccountState,
    key_id: &str,
    scopes: ScopeSet,
    allowlist: &portcullis_core::allowlist::IpAllowList,
) -> bool {
    let before = state
        .keys
        .get(key_id)
        .map(|(_, k)| k.clone())
        .unwrap_or_default();
    let added = scopes.added_since(before.scopes);
    let moves_money = scopes.contains(Scope::Withdraw) || scopes.contains(Scope::Transfer);
    added.contains(Scope::Withdraw)
        || added.contains(Scope::Transfer)
        || (moves_money && before.known && !before.allowlist.is_within(allowlist))
}
