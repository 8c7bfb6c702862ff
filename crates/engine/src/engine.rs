//! The engine: events in, decisions out, state updated as an exchange that follows the
//! decisions would leave it (the contract's closed loop).

use crate::decision::{Decision, Verdict};
use crate::dedup::{Check, Hash128, HashTable, SeenIds};
use crate::features::{Features, unseen_hosts};
use crate::policy::Policy;
use crate::state::{
    AccountState, AddressStatus, FRAUD_HORIZON_MS, Global, MARKET_HORIZON_MS, MAX_ADDRESSES,
    MAX_CALLERS, MAX_DEVICES, MAX_FRAUD_ENTRIES, MAX_IPS, MAX_KEYS, MAX_MARKETS, Market, Tag,
    Waiting, WaitingChange, latest, normalise_contact, remember_amount,
};
use portcullis_core::allowlist::IpAllowList;
use portcullis_core::contract::{Attestation, ContractEvent, EventBody};
use portcullis_core::events::Effective;
use portcullis_core::scope::{Scope, ScopeSet};
use std::collections::HashMap;
use std::net::IpAddr;

/// What happened to one event.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Its id was processed before; nothing changed.
    Duplicate,
    /// More than the dedup horizon older than the newest event: outside the contract's
    /// lateness (a re-sent old event, or a broken clock); ignored.
    Late,
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
    /// Events ignored as older than the dedup horizon.
    pub late: u64,
    pub decisions: HashMap<&'static str, u64>,
    /// Per rule id: how often it fired (shadow rules included).
    pub rule_hits: HashMap<String, u64>,
    /// Per rule id: how often it could not be evaluated (it then acted as if it fired).
    pub rule_errors: HashMap<String, u64>,
    /// `change.applied` and `change.cancelled` that found their change waiting.
    pub changes_applied: u64,
    pub changes_cancelled: u64,
    /// Those whose change was unknown, blocked, already closed or forgotten: accepted, and
    /// nothing changed.
    pub changes_unmatched: u64,
}

/// How long an account must have used an address before a refusal by its key's own limits
/// no longer blocks the address.
const ESTABLISHED_ADDRESS_MS: i64 = 86_400_000;
/// The SipHash key of account ids (fixed: checkpoints hold the hashes).
const ACCOUNT_KEY: (u64, u64) = (0x706f_7274_6375_6c6c, 0x6973_2d61_6363_7431);

/// See the module documentation.
#[derive(Debug)]
pub struct Engine {
    pub(crate) policy: Policy,
    /// Keyed by a 128-bit keyed hash of the account id (two ids share one with probability
    /// about n^2 / 2^129: below 10^-24 for ten million accounts), so a lookup reads no text.
    /// Boxed: a slot is then the hash and a pointer, and the table's spare slots cost 24 bytes
    /// each instead of a whole state.
    pub(crate) accounts: HashTable<Box<AccountState>>,
    pub(crate) global: Global,
    pub(crate) seen_ids: SeenIds,
    pub(crate) stats: EngineStats,
    /// The rules that fired (shadow rules included) on the last decided event, by index.
    last_fired: Vec<usize>,
}

/// Sizes of what the engine holds, computed from its structures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MemoryUse {
    pub accounts: usize,
    /// Account states with their heap parts, the account ids and the table's slots.
    pub account_bytes: usize,
    pub seen_ids: usize,
    pub seen_id_bytes: usize,
    /// Nodes of the entity graph and the bytes they hold (`graph::Graph::size_bytes`).
    pub graph_nodes: usize,
    pub graph_bytes: usize,
    /// Campaign alerts the engine remembers.
    pub alerts: usize,
}

impl Engine {
    pub fn new(policy: Policy) -> Self {
        Self {
            policy,
            accounts: HashTable::default(),
            global: Global::default(),
            seen_ids: SeenIds::default(),
            stats: EngineStats::default(),
            last_fired: Vec::new(),
        }
    }

    /// The ids of the rules that fired on the last decided event, shadow rules included (a
    /// decision's reasons name only the acting ones).
    pub fn last_fired(&self) -> impl Iterator<Item = &str> {
        self.last_fired
            .iter()
            .filter_map(|index| self.policy.rules.get(*index).map(|rule| rule.id.as_str()))
    }

    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// Forgets every event applied (state and counters); the policy and the overrides stay.
    pub fn reset(&mut self) {
        self.accounts = HashTable::default();
        let overrides = std::mem::take(&mut self.global.network.overrides);
        self.global = Global::default();
        self.global.network.overrides = overrides;
        self.seen_ids = SeenIds::default();
        self.stats = EngineStats::default();
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

    /// Computed sizes of the account states and of the seen-id set.
    pub fn memory_use(&self) -> MemoryUse {
        let slot = std::mem::size_of::<(Hash128, Box<AccountState>)>() + 1;
        let account_bytes = self.accounts.capacity() * slot
            + self
                .accounts
                .values()
                .map(|state| state.size_bytes())
                .sum::<usize>();
        MemoryUse {
            accounts: self.accounts.len(),
            account_bytes,
            seen_ids: self.seen_ids.len(),
            seen_id_bytes: self.seen_ids.size_bytes(),
            graph_nodes: self.global.network.graph.len(),
            graph_bytes: self.global.network.graph.size_bytes(),
            alerts: self.global.network.alerts.by_entity.len(),
        }
    }

    /// Applies one validated event; decides it when its type asks for a decision. Duplicates
    /// (by id) and events older than the dedup horizon are ignored.
    pub fn process(&mut self, event: &ContractEvent) -> Outcome {
        match self.seen_ids.check(&event.id, event.ts.as_millis()) {
            Check::New => self.process_unique(event),
            Check::Duplicate => {
                self.stats.duplicates += 1;
                Outcome::Duplicate
            }
            Check::Late => {
                self.stats.late += 1;
                Outcome::Late
            }
        }
    }

    /// Applies an event whose id the caller knows to be new (the service's event log has
    /// unique ids), without the seen-id set and its horizon: however late it comes, it counts.
    pub fn process_unique(&mut self, event: &ContractEvent) -> Outcome {
        self.stats.events += 1;
        self.apply_global(event);
        let Some(account) = event.account.as_deref() else {
            return Outcome::Applied;
        };
        let state: &mut AccountState = self
            .accounts
            .entry(Hash128::of(account, ACCOUNT_KEY))
            .or_default();
        if !event.body.asks_for_decision() {
            let fresh = observe(state, event);
            if crate::entities::Network::always_wants(event) {
                let links = crate::links::links_of(event);
                self.global.network.observe(event, account, &links);
            } else if fresh != Fresh::default() {
                // Only what is new to the account (or was not seen for a day): the rest was
                // linked when it was.
                let mut links = crate::links::links_of(event);
                links.retain(|(_, _, edge)| match edge {
                    crate::graph::EdgeKind::ActedFrom => fresh.ip,
                    crate::graph::EdgeKind::UsedDevice => fresh.device,
                    _ => true,
                });
                self.global.network.observe(event, account, &links);
            }
            match close_waiting(state, event) {
                Closed::NotAClosure => apply(state, event, Verdict::Allow, false),
                Closed::Applied => self.stats.changes_applied += 1,
                Closed::Cancelled => self.stats.changes_cancelled += 1,
                Closed::Unmatched => self.stats.changes_unmatched += 1,
            }
            return Outcome::Applied;
        }
        let account_tag = Tag::of(account);
        let links = crate::links::links_of(event);
        let network = (self.global.network).features_for(&links, account, event.ts.as_millis());
        let features = Features::compute(state, &self.global, event, account_tag, &network);
        let evaluation = self.policy.evaluate(&features);
        for index in &evaluation.fired {
            count(&mut self.stats.rule_hits, &self.policy.rules[*index].id);
        }
        for index in &evaluation.errors {
            count(&mut self.stats.rule_errors, &self.policy.rules[*index].id);
        }
        self.last_fired.clone_from(&evaluation.fired);
        self.last_fired.extend(&evaluation.errors);
        *self
            .stats
            .decisions
            .entry(evaluation.verdict.as_str())
            .or_default() += 1;
        if evaluation.verdict <= Verdict::Challenge {
            observe(state, event);
        } else {
            mark_campaign(&mut self.global, state, event, account_tag, &features);
        }
        self.global.network.observe(event, account, &links);
        // The key's own limits (the closed loop), not a judgement on where the money goes.
        let key_refused = features.key_lacks_withdraw || features.ip_outside_key_allowlist;
        apply(state, event, evaluation.verdict, key_refused);
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
        self.global.network.spread_forces_due(ts);
        match &event.body {
            EventBody::MarketActivity {
                market,
                volume_ratio,
                volatility,
            } => {
                let report = Market {
                    ts,
                    volume_ratio: *volume_ratio,
                    volatility: *volatility,
                };
                self.global.markets.insert(
                    Tag::of(market),
                    ts,
                    report,
                    MARKET_HORIZON_MS,
                    MAX_MARKETS,
                );
            }
            EventBody::FraudConfirmed {
                addresses, from, ..
            } => {
                for address in addresses {
                    let tag = Tag::of_address(address);
                    let fraud = &mut self.global.fraud_addresses;
                    fraud.insert(tag, ts, (), FRAUD_HORIZON_MS, MAX_FRAUD_ENTRIES);
                }
                for contact in from {
                    let tag = Tag::of(&normalise_contact(contact));
                    let fraud = &mut self.global.fraud_contacts;
                    fraud.insert(tag, ts, (), FRAUD_HORIZON_MS, MAX_FRAUD_ENTRIES);
                }
            }
            _ => {}
        }
    }
}

/// Adds one to a rule's counter (without allocating its id again once it is there).
fn count(counters: &mut HashMap<String, u64>, id: &str) {
    match counters.get_mut(id) {
        Some(n) => *n += 1,
        None => {
            counters.insert(id.to_owned(), 1);
        }
    }
}

/// Marks what a held or blocked event involved for other accounts to see (`network`): the
/// address funds were to go to or be allow-listed, the IPs a key change allow-lists that the
/// account was never seen using, and the unseen IP an API withdrawal came from.
fn mark_campaign(
    global: &mut Global,
    state: &AccountState,
    event: &ContractEvent,
    account: Tag,
    features: &Features,
) {
    let ts = event.ts.as_millis();
    let links = &mut global.campaign;
    match &event.body {
        EventBody::AddressAdded { address, .. } => links.mark_address(address, account, ts),
        EventBody::WithdrawalRequested {
            address, key_id, ..
        } => {
            links.mark_address(address, account, ts);
            let ip = event.ctx.ip.as_deref().and_then(|ip| ip.parse().ok());
            if let Some(ip) = ip.filter(|_| key_id.is_some() && features.ip_new) {
                links.mark_ip(ip, account, ts);
            }
        }
        EventBody::ApiKeyCreated { ip_allowlist, .. }
        | EventBody::ApiKeyUpdated { ip_allowlist, .. } => {
            for ip in unseen_hosts(state, ip_allowlist, ts) {
                links.mark_ip(ip, account, ts);
            }
        }
        _ => {}
    }
}

/// Whether an event's IP and device are new to the account, or were last seen a day or more
/// before it (or after: a late event): only then does the entity graph want them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Fresh {
    ip: bool,
    device: bool,
}

/// Records where and when the account was seen (for "new IP", "new device", account age).
fn observe(state: &mut AccountState, event: &ContractEvent) -> Fresh {
    let ts = event.ts.as_millis();
    state.first_seen = Some(state.first_seen.map_or(ts, |t| t.min(ts)));
    let succeeded = !matches!(event.body, EventBody::Login { success: false, .. });
    let stale = |before: Option<i64>| {
        before.is_none_or(|last| ts - last >= crate::graph::DAY_MS || ts < last)
    };
    let mut fresh = Fresh::default();
    if succeeded {
        if let Some(ip) = &event.ctx.ip {
            let (before, slot) = state.ips.touch_after(Tag::of(ip), ts, MAX_IPS);
            fresh.ip = stale(before);
            if slot.is_none() {
                *slot = ip.parse::<IpAddr>().ok();
            }
        }
        if let Some(device) = &event.ctx.device_id {
            let (before, _) = state.devices.touch_after(Tag::of(device), ts, MAX_DEVICES);
            fresh.device = stale(before);
        }
    }
    fresh
}

/// What a `change.applied` or `change.cancelled` did.
enum Closed {
    /// The event is of another type.
    NotAClosure,
    Applied,
    Cancelled,
    /// Its change was not waiting (unknown, blocked, closed already): nothing changed.
    Unmatched,
}

/// Puts a waiting change in force, or drops it, as a revision 2 event says.
fn close_waiting(state: &mut AccountState, event: &ContractEvent) -> Closed {
    let ts = event.ts.as_millis();
    let (event_ref, applied) = match &event.body {
        EventBody::ChangeApplied { event_ref, .. } => (event_ref, true),
        EventBody::ChangeCancelled { event_ref, .. } => (event_ref, false),
        _ => return Closed::NotAClosure,
    };
    let Some(waiting) = state.take_waiting(Tag::of(event_ref)) else {
        return Closed::Unmatched;
    };
    match (waiting.change, applied) {
        (
            WaitingChange::Key {
                key,
                scopes,
                allowlist,
            },
            true,
        ) => set_key(state, key, scopes, allowlist, ts),
        (WaitingChange::Address { address }, true) => {
            let entry = state.addresses.touch(address, ts, MAX_ADDRESSES);
            // "Since it was added" counts from when it could first be used.
            entry.added_at = Some(entry.added_at.map_or(ts, |t| t.max(ts)));
            entry.status = AddressStatus::Usable;
            latest(&mut state.last_escalation_at, ts);
        }
        (WaitingChange::Address { address }, false) => {
            let entry = state.addresses.touch(address, ts, MAX_ADDRESSES);
            if entry.status == AddressStatus::Held {
                entry.status = AddressStatus::Blocked;
            }
        }
        (WaitingChange::Key { .. }, false) => {}
    }
    if applied {
        Closed::Applied
    } else {
        Closed::Cancelled
    }
}

/// Puts a key's scopes and allow-list in force at `ts`; a widening starts the windows that
/// count "since a widening".
fn set_key(state: &mut AccountState, tag: Tag, scopes: ScopeSet, allowlist: IpAllowList, ts: i64) {
    let widening = widens(state, tag, scopes, &allowlist);
    let key = state.keys.touch(tag, ts, MAX_KEYS);
    key.scopes = scopes;
    key.allowlist = allowlist;
    key.known = true;
    if widening {
        latest(&mut key.widened_at, ts);
        latest(&mut state.last_escalation_at, ts);
    }
}

/// Whether the change of a deciding event waits for a `change.applied` to be in force.
fn waits(event: &ContractEvent) -> bool {
    matches!(
        &event.body,
        EventBody::ApiKeyCreated {
            effective: Effective::Pending,
            ..
        } | EventBody::ApiKeyUpdated {
            effective: Effective::Pending,
            ..
        } | EventBody::AddressAdded {
            effective: Effective::Pending,
            ..
        }
    )
}

/// Applies the event as an exchange following `verdict` would. A held change, and an allowed
/// one marked `effective: pending`, wait for their `change.applied`; a blocked one never
/// applies. `key_refused`: the withdrawal's key could not make it (scope or allow-list).
fn apply(state: &mut AccountState, event: &ContractEvent, verdict: Verdict, key_refused: bool) {
    let ts = event.ts.as_millis();
    let waiting = verdict != Verdict::Block && (verdict == Verdict::Hold || waits(event));
    let proceeds = verdict <= Verdict::Challenge && !waiting;
    let event_tag = Tag::of(&event.id);
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
            let tag = Tag::of(key_id);
            if proceeds {
                set_key(state, tag, *scopes, ip_allowlist.clone(), ts);
                return;
            }
            let key = state.keys.touch(tag, ts, MAX_KEYS);
            if !key.known {
                // A held, blocked or waiting new key exists without the money-moving scopes.
                key.scopes = scopes
                    .iter()
                    .filter(|s| !matches!(s, Scope::Withdraw | Scope::Transfer))
                    .collect();
                key.allowlist = ip_allowlist.clone();
            }
            key.known = true;
            if waiting {
                state.wait_for(Waiting {
                    event: event_tag,
                    requested_at: ts,
                    change: WaitingChange::Key {
                        key: tag,
                        scopes: *scopes,
                        allowlist: ip_allowlist.clone(),
                    },
                });
            }
        }
        EventBody::ApiKeyDeleted { key_id } => {
            let tag = Tag::of(key_id);
            let key = state.keys.touch(tag, ts, MAX_KEYS);
            key.known = true;
            key.scopes = ScopeSet::EMPTY;
            // A deleted key's waiting changes can never apply.
            state
                .waiting
                .retain(|w| !matches!(w.change, WaitingChange::Key { key, .. } if key == tag));
        }
        EventBody::AddressAdded { address, .. } => {
            let tag = Tag::of_address(address);
            let entry = state.addresses.touch(tag, ts, MAX_ADDRESSES);
            entry.added_at = Some(entry.added_at.map_or(ts, |t| t.max(ts)));
            entry.status = match verdict {
                Verdict::Block => AddressStatus::Blocked,
                _ if waiting => AddressStatus::Held,
                _ => AddressStatus::Usable,
            };
            if proceeds {
                latest(&mut state.last_escalation_at, ts);
            } else if waiting {
                state.wait_for(Waiting {
                    event: event_tag,
                    requested_at: ts,
                    change: WaitingChange::Address { address: tag },
                });
            }
        }
        EventBody::WithdrawalRequested {
            address,
            amount_usd,
            ..
        } => {
            let tag = Tag::of_address(address);
            // An address the account has used for more than a day, refused only because the
            // key could not withdraw, stays usable: the customer's own cold wallet must not be
            // lost because a bot's key change was held. A new address is blocked as before.
            let established = state.addresses.get(tag).is_some_and(|(seen, entry)| {
                seen.first <= ts - ESTABLISHED_ADDRESS_MS && entry.status == AddressStatus::Usable
            });
            let entry = state.addresses.touch(tag, ts, MAX_ADDRESSES);
            if verdict == Verdict::Block && !(key_refused && established) {
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
                .touch(Tag::of(&normalise_contact(from)), ts, MAX_CALLERS);
        }
        EventBody::ContactInboundCall {
            from, attestation, ..
        } => {
            latest(&mut state.last_call_at, ts);
            state
                .callers
                .touch(Tag::of(&normalise_contact(from)), ts, MAX_CALLERS);
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
    key_id: Tag,
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
