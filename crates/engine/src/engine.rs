//! The engine: events in, decisions out, state updated as an exchange that follows the
//! decisions would leave it (the contract's closed loop).

use crate::closed_loop::{Closed, Fresh, RefusalGrounds, apply, close_waiting, observe};
use crate::decision::{Decision, Verdict};
use crate::dedup::{Check, Hash128, HashTable, SeenIds};
use crate::fact::{CampaignMark, Confirmation, Fact};
use crate::features::{Features, unseen_hosts};
use crate::policy::Policy;
use crate::state::{
    AccountState, FRAUD_HORIZON_MS, Global, MARKET_HORIZON_MS, MAX_FRAUD_ENTRIES, MAX_MARKETS,
    Market, Tag, normalise_contact,
};
use portcullis_core::contract::{ContractEvent, EventBody};
use smallvec::SmallVec;
use std::borrow::Cow;
use std::collections::HashMap;

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

impl EngineStats {
    /// Adds what another partition's engine decided: its own events, decisions, rule hits and
    /// errors, changes. The id check's counters (`duplicates`, `late`) are left alone: every
    /// partition checks every id, so theirs are one engine's, not a share of them.
    pub fn add_partition(&mut self, other: &Self) {
        self.events += other.events;
        for (verdict, n) in &other.decisions {
            *self.decisions.entry(*verdict).or_default() += n;
        }
        for (rule, n) in &other.rule_hits {
            *self.rule_hits.entry(rule.clone()).or_default() += n;
        }
        for (rule, n) in &other.rule_errors {
            *self.rule_errors.entry(rule.clone()).or_default() += n;
        }
        self.changes_applied += other.changes_applied;
        self.changes_cancelled += other.changes_cancelled;
        self.changes_unmatched += other.changes_unmatched;
    }
}

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

    /// `memory_use` by part (computed bytes, for the replay benchmark's breakdown): the
    /// account states' parts and the table, then the graph's.
    pub fn memory_parts(&self) -> Vec<(&'static str, usize)> {
        let names = [
            "states",
            "state IPs",
            "state devices",
            "state addresses",
            "state keys",
            "state amounts",
            "state seldom",
        ];
        let mut sums = [0; 7];
        for state in self.accounts.values() {
            for (sum, part) in sums.iter_mut().zip(state.size_parts()) {
                *sum += part;
            }
        }
        let slot = std::mem::size_of::<(Hash128, Box<AccountState>)>() + 1;
        let mut parts: Vec<(&'static str, usize)> = names.into_iter().zip(sums).collect();
        parts.push(("account table", self.accounts.capacity() * slot));
        parts.extend(self.global.network.graph.size_parts());
        parts
    }

    /// Applies one validated event; decides it when its type asks for a decision. Duplicates
    /// (by id) and events older than the dedup horizon are ignored.
    pub fn process(&mut self, event: &ContractEvent) -> Outcome {
        match self.check_id(&event.id, event.ts.as_millis()) {
            None => self.process_unique(event),
            Some(refused) => refused,
        }
    }

    /// The id check of [`Engine::process`]: `None` for a new id (now remembered), else the
    /// outcome of a duplicate or of an event older than the dedup horizon (counted). A
    /// partition checks every id of the feed with it (`Partition::check_id`).
    pub(crate) fn check_id(&mut self, id: &str, ts: i64) -> Option<Outcome> {
        match self.seen_ids.check(id, ts) {
            Check::New => None,
            Check::Duplicate => {
                self.stats.duplicates += 1;
                Some(Outcome::Duplicate)
            }
            Check::Late => {
                self.stats.late += 1;
                Some(Outcome::Late)
            }
        }
    }

    /// Applies an event whose id the caller knows to be new (the service's event log has
    /// unique ids), without the seen-id set and its horizon: however late it comes, it counts.
    pub fn process_unique(&mut self, event: &ContractEvent) -> Outcome {
        self.step(event)
    }

    /// Applies an event: its part of the shared state every engine applies (`apply_global`),
    /// then its account's part (`account_part`), then that part's effect on the shared state
    /// (the [`Fact`]). One engine: the partition that owns every account and applies its facts
    /// as it makes them.
    fn step(&mut self, event: &ContractEvent) -> Outcome {
        self.stats.events += 1;
        self.apply_global(event);
        let (outcome, fact) = self.account_part(event);
        if let Some(fact) = fact {
            crate::fact::apply(&mut self.global, &fact);
        }
        outcome
    }

    /// The account's part of an event, and its effect on the shared state, not applied yet
    /// (none for an event without an account). A deciding event reads the shared state, which
    /// must then be as one engine has it just before the event; the rest read only the
    /// account's state.
    pub(crate) fn account_part<'e>(
        &mut self,
        event: &'e ContractEvent,
    ) -> (Outcome, Option<Fact<'e>>) {
        let Some(account) = event.account.as_deref() else {
            return (Outcome::Applied, None);
        };
        let mut fact = Fact::new(&event.id, account, event.ts.as_millis());
        let outcome = if event.body.asks_for_decision() {
            let (decision, features) = self.decide(event, account, &mut fact);
            Outcome::Decided(decision, features)
        } else {
            self.follow(event, account, &mut fact);
            Outcome::Applied
        };
        (outcome, Some(fact))
    }

    /// Applies a fact (see `fact`).
    pub(crate) fn apply_fact(&mut self, fact: &Fact<'_>) {
        crate::fact::apply(&mut self.global, fact);
    }

    /// A non-deciding event of an owned account: its state, and what is fresh of its links.
    fn follow<'e>(&mut self, event: &'e ContractEvent, account: &str, fact: &mut Fact<'e>) {
        let state: &mut AccountState = self
            .accounts
            .entry(Hash128::of(account, ACCOUNT_KEY))
            .or_default();
        let fresh = observe(state, event);
        if crate::entities::Network::always_wants(event) {
            fact.links = Some(crate::links::links_of(event));
        } else if fresh != Fresh::default() {
            // Only what is new to the account (or was not seen for a day): the rest was
            // linked when it was.
            let mut links = crate::links::links_of(event);
            links.retain(|(_, _, edge)| match edge {
                crate::graph::EdgeKind::ActedFrom => fresh.ip,
                crate::graph::EdgeKind::UsedDevice => fresh.device,
                _ => true,
            });
            fact.links = Some(links);
        }
        if let EventBody::FraudConfirmed {
            addresses,
            from,
            note,
            ..
        } = &event.body
        {
            let borrow = |texts: &'e [String]| texts.iter().map(|t| Cow::Borrowed(t.as_str()));
            fact.confirmation = Some(Confirmation {
                addresses: borrow(addresses).collect(),
                from: borrow(from).collect(),
                note: Cow::Borrowed(note),
            });
        }
        match close_waiting(state, event) {
            Closed::NotAClosure => apply(state, event, Verdict::Allow, RefusalGrounds::default()),
            Closed::Applied => self.stats.changes_applied += 1,
            Closed::Cancelled => self.stats.changes_cancelled += 1,
            Closed::Unmatched => self.stats.changes_unmatched += 1,
        }
    }

    /// A deciding event of an owned account: features, rules, the account's state as the
    /// decision leaves it; its links and a refusal's campaign marks into `fact`.
    fn decide<'e>(
        &mut self,
        event: &'e ContractEvent,
        account: &str,
        fact: &mut Fact<'e>,
    ) -> (Decision, Box<Features>) {
        let state: &mut AccountState = self
            .accounts
            .entry(Hash128::of(account, ACCOUNT_KEY))
            .or_default();
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
            fact.marks = campaign_marks(state, event, &features);
        }
        fact.links = Some(links);
        let grounds = RefusalGrounds {
            key_limits: features.key_lacks_withdraw || features.ip_outside_key_allowlist,
            address: features.address_fraud
                || features.address_flagged_elsewhere
                || features.network_marked,
        };
        apply(state, event, evaluation.verdict, grounds);
        let decision = Decision {
            event_id: event.id.clone(),
            decision: evaluation.verdict,
            score: evaluation.score,
            reasons: evaluation.reasons,
        };
        (decision, Box::new(features))
    }

    /// An event's part of the shared state, the same in every partition: force overrides due
    /// by its time, and a market report's or a confirmed fraud's lists.
    pub(crate) fn apply_global(&mut self, event: &ContractEvent) {
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

/// What a held or blocked event marks for other accounts to see (`network`): the address
/// funds were to go to or be allow-listed, the IPs a key change allow-lists that the account
/// was never seen using, and the unseen IP an API withdrawal came from.
fn campaign_marks<'e>(
    state: &AccountState,
    event: &'e ContractEvent,
    features: &Features,
) -> SmallVec<[CampaignMark<'e>; 2]> {
    let ts = event.ts.as_millis();
    let mut marks = SmallVec::new();
    match &event.body {
        EventBody::AddressAdded { address, .. } => {
            marks.push(CampaignMark::Address(Cow::Borrowed(address)))
        }
        EventBody::WithdrawalRequested {
            address, key_id, ..
        } => {
            marks.push(CampaignMark::Address(Cow::Borrowed(address)));
            let ip = event.ctx.ip.as_deref().and_then(|ip| ip.parse().ok());
            if let Some(ip) = ip.filter(|_| key_id.is_some() && features.ip_new) {
                marks.push(CampaignMark::Ip(ip));
            }
        }
        EventBody::ApiKeyCreated { ip_allowlist, .. }
        | EventBody::ApiKeyUpdated { ip_allowlist, .. } => {
            marks.extend(unseen_hosts(state, ip_allowlist, ts).map(CampaignMark::Ip));
        }
        _ => {}
    }
    marks
}
