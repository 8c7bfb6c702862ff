//! The network as the engine keeps it: the entity graph (`graph`), campaign alerts
//! (`campaign`), confirmed-fraud marks with their provenance, and operators' overrides; what
//! each event adds to them, and what a rule reads from them.
//!
//! Marks: a `fraud.confirmed` (an exchange's, or an operator's confirmation of an alert, which
//! the service logs as one naming `alert:<id>` in its note) marks the addresses and numbers it
//! names and the alert's entity (hop 0), then their neighbours: the accounts linked to them
//! (hop 1) and those accounts' other entities (hop 2). The single IPs the defrauded account
//! allow-listed in the month before are likely the crew's servers but not named: they are
//! marked one hop from the account, and the accounts that allow-listed or used them two. A
//! number is marked but not crossed: the people a crew called are its targets, not its
//! accomplices. Each mark keeps which confirmation made it and the path, and lasts per entity
//! type (`EntityKind::mark_ttl_ms`). Shared infrastructure is marked when named but never
//! propagated through; a suppressed entity is neither marked nor crossed.
//!
//! Overrides come from the service (they are the operators' configuration, like the policy,
//! and not part of checkpoints): `suppress` (a known-good link: no mark, no alert counts on it)
//! and `force` (treated as confirmed: the entity at hop 0 while the override is in force, and
//! its neighbours marked as a confirmation marks them, in event time, by `force`). Force wins
//! over suppress.

use crate::campaign::Alerts;
use crate::fact::Confirmation;
use crate::graph::{DAY_MS, EdgeKind, EntityKind, Graph, NodeId};
use crate::links::{Link, Links};
use portcullis_core::contract::{ContractEvent, EventBody};
use serde::{Deserialize, Serialize};
use smallvec::SmallVec;
use std::collections::{BTreeMap, BTreeSet, VecDeque};

/// Marks stamped this much after an event still count for it (late events, as in `network`).
const LATE_MS: i64 = 10 * 60_000;
/// Hops a confirmation reaches.
const MARK_HOPS: u8 = 2;
/// IPs an account allow-listed this long before its confirmed fraud are the crew's.
const SEED_IP_WINDOW_MS: i64 = 30 * DAY_MS;
/// "No mark", as a hop count rules read.
pub const NO_MARK_HOPS: i64 = 99;

/// One entity waiting to be marked: its id, kind, value, the path to it and its hops.
pub(crate) type Step = (NodeId, EntityKind, String, Vec<String>, u8);

/// A confirmed-fraud mark on one node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mark {
    /// The confirming event's id.
    pub confirmation: String,
    /// From the confirmed entity to this one, as `kind:value`.
    pub path: Vec<String>,
    pub hops: u8,
    pub at: i64,
    pub expires_at: i64,
}

impl Mark {
    fn live_at(&self, ts: i64) -> bool {
        self.at - ts <= LATE_MS && ts < self.expires_at
    }

    pub fn path_text(&self) -> String {
        self.path.join(" > ")
    }
}

/// What an override does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OverrideMode {
    Suppress,
    Force,
}

/// An operator's override on one entity value, for the events of a time range: from when it
/// was set until it expires or is lifted. Events before it do not see it, so replaying the
/// log decides as the service did when it was in force, whenever the replay runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Override {
    pub kind: EntityKind,
    /// Canonical (`EntityKind::canonical`).
    pub value: String,
    pub mode: OverrideMode,
    /// Milliseconds since the epoch: when it was set.
    pub from: i64,
    /// Milliseconds since the epoch: when it expires or was lifted; none: until lifted.
    pub expires_at: Option<i64>,
}

impl Override {
    /// In force for an event at `ts`.
    pub fn live_at(&self, ts: i64) -> bool {
        self.from <= ts && self.expires_at.is_none_or(|at| ts < at)
    }
}

/// One entity a confirmation marked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Marked {
    pub kind: EntityKind,
    pub value: String,
    pub mark: Mark,
}

/// What one confirmation marked, for the service to act on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Propagation {
    pub confirmation: String,
    pub ts: i64,
    pub marked: Vec<Marked>,
}

/// See the module documentation.
#[derive(Debug, Default, Serialize, Deserialize)]
pub(crate) struct Network {
    pub graph: Graph,
    pub alerts: Alerts,
    pub marks: BTreeMap<NodeId, Mark>,
    /// The marks force overrides spread (`force`), apart from confirmations' so that lifting
    /// an override ends its marks and no one else's.
    pub forced_marks: BTreeMap<NodeId, Mark>,
    /// The force overrides already spread, by entity and start: each once.
    pub forced: BTreeSet<(NodeId, i64)>,
    /// The earliest start of a force override not yet spread.
    #[serde(skip)]
    pub next_force_at: Option<i64>,
    /// Every override of each entity, past and present (`Override::live_at` picks).
    #[serde(skip)]
    pub overrides: BTreeMap<NodeId, Vec<Override>>,
    #[serde(skip)]
    pub propagations: Vec<Propagation>,
    swept_at: i64,
}

/// What rules read from the network for one event.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct NetworkFeatures {
    pub campaign_accounts: i64,
    pub caller_campaign_accounts: i64,
    pub network_hops: i64,
    pub account_network_hops: i64,
    pub network_path: String,
}

impl Network {
    /// Adds an event's links (`links::links_of`, or what is fresh of them) and checks
    /// campaigns. Then a confirmation (`confirm`), then `sweep_daily`: see `fact::apply`.
    pub fn observe(&mut self, event_id: &str, account: &str, ts: i64, links: &[Link<'_>]) {
        for (kind, value, edge) in links {
            if let Some((slot, entity)) =
                self.graph.link(account, *kind, value, *edge, event_id, ts)
                && !self.suppressed(entity, ts)
            {
                self.alerts.check(&self.graph, slot, entity, *edge, ts);
            }
        }
        self.graph.sweep_if_grown(ts);
    }

    /// Where the reports (changed alerts, propagations) waiting to be taken stand now.
    pub fn reports_mark(&self) -> (usize, usize) {
        (self.alerts.changed_len(), self.propagations.len())
    }

    /// Forgets the reports made since `mark` (`reports_mark`): another partition makes them.
    pub fn forget_reports_since(&mut self, mark: (usize, usize)) {
        self.alerts.forget_changed_since(mark.0);
        self.propagations.truncate(mark.1);
    }

    /// Forgets expired marks and old alerts, once a day of event time.
    pub fn sweep_daily(&mut self, ts: i64) {
        if ts - self.swept_at >= DAY_MS {
            self.swept_at = ts;
            self.marks.retain(|_, mark| ts < mark.expires_at);
            self.forced_marks.retain(|_, mark| ts < mark.expires_at);
            self.alerts.sweep(ts);
        }
    }

    /// The override in force on `node` for an event at `ts`: force wins over suppress.
    pub fn override_on(&self, node: NodeId, ts: i64) -> Option<&Override> {
        let live = self.overrides.get(&node)?.iter().filter(|o| o.live_at(ts));
        live.min_by_key(|o| match o.mode {
            OverrideMode::Force => 0,
            OverrideMode::Suppress => 1,
        })
    }

    fn suppressed(&self, node: NodeId, ts: i64) -> bool {
        self.override_on(node, ts)
            .is_some_and(|o| o.mode == OverrideMode::Suppress)
    }

    /// The mark that counts on `node` at `ts`: a force override, else a live mark unless
    /// suppressed.
    pub fn mark_on(&self, node: NodeId, ts: i64) -> Option<Mark> {
        match self.override_on(node, ts) {
            Some(o) if o.mode == OverrideMode::Force => Some(Mark {
                confirmation: "override:force".into(),
                path: vec![format!("{}:{}", o.kind.as_str(), o.value)],
                hops: 0,
                at: o.from,
                expires_at: o.expires_at.unwrap_or(i64::MAX),
            }),
            Some(_) => None,
            None => {
                let confirmed = self.marks.get(&node).filter(|m| m.live_at(ts));
                // A force override's marks count from its start, as the override itself does.
                let forced =
                    (self.forced_marks.get(&node)).filter(|m| m.at <= ts && ts < m.expires_at);
                match (confirmed, forced) {
                    (Some(c), Some(f)) if f.hops < c.hops => Some(f.clone()),
                    (Some(c), _) => Some(c.clone()),
                    (None, f) => f.cloned(),
                }
            }
        }
    }

    /// Marks what a confirmation names and its neighbours (see the module documentation).
    pub fn confirm(
        &mut self,
        confirmation: &str,
        account: &str,
        names: &Confirmation<'_>,
        ts: i64,
    ) {
        let mut seeds: BTreeSet<(EntityKind, String)> = BTreeSet::new();
        for address in &names.addresses {
            seed(&mut seeds, EntityKind::Address, address);
        }
        for contact in &names.from {
            seed(&mut seeds, EntityKind::Number, contact);
        }
        if let Some((_, alert)) = (names.note)
            .strip_prefix("alert:")
            .and_then(|id| self.alerts.by_id(id.trim()))
        {
            seeds.insert((alert.entity_kind, alert.value.clone()));
        }
        let mut queue: VecDeque<Step> = seeds
            .into_iter()
            .map(|(kind, value)| {
                let label = format!("{}:{value}", kind.as_str());
                (NodeId::of(kind, &value), kind, value, vec![label], 0)
            })
            .collect();
        // The IPs the defrauded account allow-listed in the month before are likely the crew's
        // servers, but the confirmation does not name them: one hop from the account.
        if let Some(slot) = self.graph.find(EntityKind::Account, account) {
            let mut ips: Vec<String> = self
                .graph
                .edges(slot)
                .iter()
                .filter(|e| {
                    e.kind() == EdgeKind::AllowListed && ts - e.first_ms() <= SEED_IP_WINDOW_MS
                })
                .filter_map(|e| {
                    self.graph
                        .at(e.to())
                        .map(|ip| self.graph.value(ip).into_owned())
                })
                .collect();
            ips.sort();
            ips.dedup();
            for ip in ips {
                let path = vec![format!("account:{account}"), format!("ip:{ip}")];
                queue.push_back((NodeId::of(EntityKind::Ip, &ip), EntityKind::Ip, ip, path, 1));
            }
        }
        let marked = self.spread(confirmation, queue, ts, i64::MAX, false);
        self.propagations.push(Propagation {
            confirmation: confirmation.to_owned(),
            ts,
            marked,
        });
    }

    /// Marks the queued entities and, breadth first, their neighbours up to [`MARK_HOPS`]; a
    /// mark lasts its kind's time but not past `until`. Into `forced_marks` for a force
    /// override, else into `marks`. Returns what it marked, for the service to hold.
    pub(crate) fn spread(
        &mut self,
        confirmation: &str,
        mut queue: VecDeque<Step>,
        ts: i64,
        until: i64,
        forced: bool,
    ) -> Vec<Marked> {
        let mut marked = Vec::new();
        let mut visited: BTreeSet<NodeId> = BTreeSet::new();
        while let Some((id, kind, value, path, hops)) = queue.pop_front() {
            if !visited.insert(id) || self.suppressed(id, ts) {
                continue;
            }
            let mark = Mark {
                confirmation: confirmation.to_owned(),
                path: path.clone(),
                hops,
                at: ts,
                expires_at: ts.saturating_add(kind.mark_ttl_ms()).min(until),
            };
            let marks = if forced {
                &mut self.forced_marks
            } else {
                &mut self.marks
            };
            let better = marks.get(&id).is_none_or(|old| {
                !old.live_at(ts)
                    || old.hops > hops
                    || (old.hops == hops && old.expires_at <= mark.expires_at)
            });
            if better {
                marks.insert(id, mark.clone());
            }
            let slot = self.graph.find(kind, &value);
            marked.push(Marked { kind, value, mark });
            // A number's callees are its targets, not its accomplices: most hang up
            // (`fraud_caller_contact` is their rule).
            let Some(slot) = slot.filter(|&slot| {
                self.graph
                    .at(slot)
                    .is_some_and(|n| !n.shared() && n.kind() != EntityKind::Number)
            }) else {
                continue;
            };
            if hops >= MARK_HOPS {
                continue;
            }
            let mut next: Vec<(NodeId, EntityKind, String)> = self
                .graph
                .edges(slot)
                .iter()
                .filter(|e| ts - e.last_ms() <= e_ttl(kind, &self.graph, e.to()))
                .filter_map(|e| {
                    let other = self.graph.at(e.to())?;
                    let value = self.graph.value(other);
                    Some((
                        NodeId::of(other.kind(), &value),
                        other.kind(),
                        value.into_owned(),
                    ))
                })
                .collect();
            next.sort();
            next.dedup();
            for (to, other_kind, other_value) in next {
                let mut path = path.clone();
                path.push(format!("{}:{other_value}", other_kind.as_str()));
                queue.push_back((to, other_kind, other_value, path, hops + 1));
            }
        }
        marked
    }

    /// What rules read for an event of `account` naming `entities`.
    /// Marks and campaigns count on the event's own entities and account; campaigns of the
    /// numbers that called the account apart (a confirmed number's rule is
    /// `fraud_caller_contact`).
    pub fn features(&self, account: &str, entities: &[NodeId], ts: i64) -> NetworkFeatures {
        let mut f = NetworkFeatures::quiet();
        for number in self.callers_of(account) {
            if let Some(alert) = self.alerts.open_on(number, ts)
                && !self.suppressed(number, ts)
            {
                f.caller_campaign_accounts = f
                    .caller_campaign_accounts
                    .max(i64::from(alert.unrelated_accounts));
            }
        }
        let mut best: Option<Mark> = None;
        for entity in entities {
            if let Some(alert) = self.alerts.open_on(*entity, ts)
                && !self.suppressed(*entity, ts)
            {
                f.campaign_accounts = f.campaign_accounts.max(i64::from(alert.unrelated_accounts));
            }
            if let Some(mark) = self.mark_on(*entity, ts)
                && best.as_ref().is_none_or(|b| mark.hops < b.hops)
            {
                best = Some(mark);
            }
        }
        if let Some(mark) = self.mark_on(NodeId::of(EntityKind::Account, account), ts) {
            f.account_network_hops = i64::from(mark.hops);
            if best.is_none() {
                f.network_path = mark.path_text();
            }
        }
        if let Some(mark) = best {
            f.network_hops = i64::from(mark.hops);
            f.network_path = mark.path_text();
        }
        f
    }

    /// The entities an account is linked to through numbers (callers and reported contacts).
    pub fn callers_of(&self, account: &str) -> Vec<NodeId> {
        let Some(slot) = self.graph.find(EntityKind::Account, account) else {
            return Vec::new();
        };
        self.graph
            .account_links(slot)
            .filter(|(_, kind)| matches!(kind, EdgeKind::CalledBy | EdgeKind::Reported))
            .filter_map(|(entity, _)| self.graph.id_of(entity))
            .collect()
    }
}

/// The lifetime of an edge from a node of `kind` to `to`: its entity end's.
fn e_ttl(kind: EntityKind, graph: &Graph, to: u32) -> i64 {
    if kind == EntityKind::Account {
        graph.at(to).map_or(0, |n| n.kind().ttl_ms())
    } else {
        kind.ttl_ms()
    }
}

fn seed(seeds: &mut BTreeSet<(EntityKind, String)>, kind: EntityKind, value: &str) {
    if let Some(value) = kind.canonical(value) {
        seeds.insert((kind, value));
    }
}

impl Network {
    /// Whether a non-deciding event adds to the network whatever the account's state: a
    /// contact or a confirmation. Otherwise only an IP or device the account has not been seen
    /// with in the last day does (the engine's `observe` says): an edge's time only matters to
    /// the day for expiry, and most events of a replay are a key's use from its usual server.
    pub fn always_wants(event: &ContractEvent) -> bool {
        matches!(
            event.body,
            EventBody::ContactInboundCall { .. }
                | EventBody::ContactReported { .. }
                | EventBody::FraudConfirmed { .. }
        )
    }

    /// What rules read for a deciding event making `links`: nothing to look up while no
    /// mark, alert or override exists.
    pub fn features_for(&self, links: &Links<'_>, account: &str, ts: i64) -> NetworkFeatures {
        if self.marks.is_empty() && self.alerts.by_entity.is_empty() && self.overrides.is_empty() {
            return NetworkFeatures::quiet();
        }
        let entities: SmallVec<[NodeId; 4]> = links
            .iter()
            .map(|(kind, value, _)| NodeId::of(*kind, value))
            .collect();
        self.features(account, &entities, ts)
    }
}

impl NetworkFeatures {
    /// No campaign, no mark.
    pub fn quiet() -> Self {
        Self {
            network_hops: NO_MARK_HOPS,
            account_network_hops: NO_MARK_HOPS,
            ..Self::default()
        }
    }
}
