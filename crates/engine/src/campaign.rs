//! Campaign alerts: one entity linked to several unrelated accounts in a short window.
//!
//! A number that calls or is reported by several accounts in a week, an address several
//! accounts send to or allow-list in a week, an IP newly allow-listed on several accounts in a
//! week, a device newly used on several accounts in a month. "Unrelated": accounts that share a
//! device or an IP both have used for more than a week (a household, an office) count as one,
//! so a family's shared wallet is not a campaign; a crew's infrastructure is new on every
//! victim. Shared infrastructure (see `graph`) raises nothing.
//!
//! An alert is deterministic (its id is made of its kind, its entity and the time it opened)
//! and keeps its evidence: the entity, each account with the event that linked it and when. It
//! stays open while new accounts keep coming within the window; after that a new one opens.

use crate::graph::{DAY_MS, Edge, EdgeKind, EntityKind, Graph, NodeId};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// Unrelated accounts that make a campaign.
pub(crate) const CAMPAIGN_MIN: usize = 3;
/// Accounts an alert lists (the count goes on past it).
const MAX_EVIDENCE: usize = 100;
/// Two accounts that both used a device or IP for this long before are related.
const RELATED_AFTER_MS: i64 = 7 * DAY_MS;
/// Alerts not updated for this long are forgotten by the engine (the service keeps them).
const ALERT_MEMORY_MS: i64 = 60 * DAY_MS;

/// What kind of campaign.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertKind {
    NumberCampaign,
    AddressCampaign,
    AllowlistedIpCampaign,
    DeviceCampaign,
}

impl AlertKind {
    pub fn as_str(self) -> &'static str {
        match self {
            AlertKind::NumberCampaign => "number_campaign",
            AlertKind::AddressCampaign => "address_campaign",
            AlertKind::AllowlistedIpCampaign => "allowlisted_ip_campaign",
            AlertKind::DeviceCampaign => "device_campaign",
        }
    }

    /// The alert an edge of `kind` may raise, with its window.
    fn of_edge(kind: EdgeKind) -> Option<(Self, i64)> {
        match kind {
            EdgeKind::CalledBy | EdgeKind::Reported => Some((Self::NumberCampaign, 7 * DAY_MS)),
            EdgeKind::WithdrewTo | EdgeKind::AddedAddress => {
                Some((Self::AddressCampaign, 7 * DAY_MS))
            }
            EdgeKind::AllowListed => Some((Self::AllowlistedIpCampaign, 7 * DAY_MS)),
            EdgeKind::UsedDevice => Some((Self::DeviceCampaign, 30 * DAY_MS)),
            EdgeKind::ActedFrom => None,
        }
    }

    /// Edges that count for it, and whether they count from their first time (new links).
    fn counts(self, kind: EdgeKind) -> bool {
        Self::of_edge(kind).is_some_and(|(alert, _)| alert == self)
    }

    fn counts_from_first(self) -> bool {
        matches!(self, Self::AllowlistedIpCampaign | Self::DeviceCampaign)
    }

    pub fn window_ms(self) -> i64 {
        match self {
            Self::DeviceCampaign => 30 * DAY_MS,
            _ => 7 * DAY_MS,
        }
    }
}

/// One account's part in a campaign.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Evidence {
    pub account: String,
    pub event_id: String,
    pub link: String,
    /// Event time, milliseconds since the epoch.
    pub ts: i64,
}

/// A campaign alert with its evidence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Alert {
    pub id: String,
    pub kind: AlertKind,
    pub entity_kind: EntityKind,
    pub value: String,
    pub opened_at: i64,
    pub updated_at: i64,
    /// Unrelated accounts (households counted once) at the last update.
    pub unrelated_accounts: u32,
    pub evidence: Vec<Evidence>,
}

impl Alert {
    /// Open at `ts`: updated within its window.
    pub fn open_at(&self, ts: i64) -> bool {
        ts - self.updated_at <= self.kind.window_ms() && self.opened_at <= ts + 10 * 60_000
    }
}

/// The latest alert per entity.
#[derive(Debug, Default, Serialize, Deserialize)]
pub(crate) struct Alerts {
    pub by_entity: BTreeMap<NodeId, Alert>,
    /// The alerts that opened or grew since the caller last took them, in the order they first
    /// did, each once (not in checkpoints: the service stores them with the decisions of the
    /// same events). Ids, not copies: a caller that never takes them (a replay) keeps no more
    /// than one entry per alert.
    #[serde(skip)]
    changed: Vec<NodeId>,
    #[serde(skip)]
    changed_set: BTreeSet<NodeId>,
}

impl Alerts {
    /// Checks the entity after `account`'s new link of `edge` at `ts`; opens or grows its alert.
    pub fn check(&mut self, graph: &Graph, slot: u32, entity: NodeId, edge: EdgeKind, ts: i64) {
        let Some((kind, window)) = AlertKind::of_edge(edge) else {
            return;
        };
        let Some(node) = graph.at(slot).filter(|n| !n.shared()) else {
            return;
        };
        let edges = graph.edges(slot);
        let links = recent_links(&edges, kind, window, ts);
        if links.len() < CAMPAIGN_MIN {
            return;
        }
        let accounts: Vec<u32> = links.iter().map(|e| e.to()).collect();
        let unrelated = unrelated_count(graph, slot, &accounts, ts);
        if unrelated < CAMPAIGN_MIN {
            return;
        }
        let alert = match self.by_entity.get_mut(&entity) {
            Some(alert) if alert.kind == kind && alert.open_at(ts) => alert,
            _ => {
                let alert = Alert {
                    id: format!("al-{}-{:016x}-{ts}", kind.as_str(), entity.0),
                    kind,
                    entity_kind: node.kind(),
                    value: graph.value(node).into_owned(),
                    opened_at: ts,
                    updated_at: ts,
                    unrelated_accounts: 0,
                    evidence: Vec::new(),
                };
                self.by_entity.insert(entity, alert);
                let Some(alert) = self.by_entity.get_mut(&entity) else {
                    return;
                };
                alert
            }
        };
        let before = (alert.unrelated_accounts, alert.evidence.len());
        for link in links {
            let Some(account) = graph.at(link.to()).map(|n| graph.value(n)) else {
                continue;
            };
            if alert.evidence.len() < MAX_EVIDENCE
                && !alert.evidence.iter().any(|e| e.account == account)
            {
                alert.evidence.push(Evidence {
                    account: account.into_owned(),
                    event_id: graph.event(link).into_owned(),
                    link: link.kind().as_str().to_owned(),
                    ts: link.first_ms(),
                });
            }
        }
        alert
            .evidence
            .sort_by(|a, b| (a.ts, &a.account).cmp(&(b.ts, &b.account)));
        alert.unrelated_accounts = u32::try_from(unrelated).unwrap_or(u32::MAX);
        alert.updated_at = alert.updated_at.max(ts);
        if before != (alert.unrelated_accounts, alert.evidence.len())
            && self.changed_set.insert(entity)
        {
            self.changed.push(entity);
        }
    }

    /// The open alert on `entity` at `ts`, if any.
    pub fn open_on(&self, entity: NodeId, ts: i64) -> Option<&Alert> {
        self.by_entity.get(&entity).filter(|a| a.open_at(ts))
    }

    pub fn by_id(&self, id: &str) -> Option<(NodeId, &Alert)> {
        self.by_entity
            .iter()
            .find(|(_, alert)| alert.id == id)
            .map(|(node, alert)| (*node, alert))
    }

    /// The alerts that opened or grew since the last call, as they are now.
    pub fn take_changed(&mut self) -> Vec<Alert> {
        self.changed_set.clear();
        std::mem::take(&mut self.changed)
            .into_iter()
            .filter_map(|id| self.by_entity.get(&id).cloned())
            .collect()
    }

    /// How many alerts wait to be taken (for `forget_changed_since`).
    pub fn changed_len(&self) -> usize {
        self.changed.len()
    }

    /// Forgets the alerts that first changed after there were `len` waiting: another
    /// partition reports them (see `partitioned`).
    pub fn forget_changed_since(&mut self, len: usize) {
        for id in self.changed.drain(len.min(self.changed.len())..) {
            self.changed_set.remove(&id);
        }
    }

    pub fn sweep(&mut self, ts: i64) {
        self.by_entity
            .retain(|_, alert| ts - alert.updated_at <= ALERT_MEMORY_MS);
    }
}

/// The entity's links of `kind`'s edges within the window before `ts`, one per account.
fn recent_links(edges: &[Edge], kind: AlertKind, window: i64, ts: i64) -> Vec<&Edge> {
    let mut links: Vec<&Edge> = Vec::new();
    for edge in edges.iter().filter(|e| kind.counts(e.kind())) {
        let at = if kind.counts_from_first() {
            edge.first_ms()
        } else {
            edge.last_ms()
        };
        if ts - at > window || links.iter().any(|l| l.to() == edge.to()) {
            continue;
        }
        links.push(edge);
    }
    links
}

/// How many groups `accounts` (slots) fall into when accounts that share a device or IP they
/// have both used for more than a week (other than `entity`, and not shared infrastructure)
/// are one group.
pub(crate) fn unrelated_count(graph: &Graph, entity: u32, accounts: &[u32], ts: i64) -> usize {
    let mut parent: Vec<usize> = (0..accounts.len()).collect();
    let mut owner: BTreeMap<u32, usize> = BTreeMap::new();
    for (index, account) in accounts.iter().enumerate() {
        for edge in graph.edges(*account) {
            let household = matches!(edge.kind(), EdgeKind::UsedDevice | EdgeKind::ActedFrom);
            if !household || edge.to() == entity || ts - edge.first_ms() < RELATED_AFTER_MS {
                continue;
            }
            match owner.get(&edge.to()) {
                Some(&other) => union(&mut parent, index, other),
                None => {
                    owner.insert(edge.to(), index);
                }
            }
        }
    }
    (0..accounts.len())
        .filter(|&i| find(&mut parent, i) == i)
        .count()
}

fn find(parent: &mut [usize], i: usize) -> usize {
    let mut root = i;
    while parent[root] != root {
        root = parent[root];
    }
    parent[i] = root;
    root
}

fn union(parent: &mut [usize], a: usize, b: usize) {
    let (ra, rb) = (find(parent, a), find(parent, b));
    if ra != rb {
        parent[ra.max(rb)] = ra.min(rb);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link(
        graph: &mut Graph,
        alerts: &mut Alerts,
        account: &str,
        kind: EntityKind,
        value: &str,
        edge: EdgeKind,
        ts: i64,
    ) {
        if let Some((slot, id)) =
            graph.link(account, kind, value, edge, &format!("{account}-{ts}"), ts)
        {
            alerts.check(graph, slot, id, edge, ts);
        }
    }

    #[test]
    fn three_unrelated_accounts_sending_to_one_address_open_one_alert() {
        let (mut graph, mut alerts) = (Graph::default(), Alerts::default());
        for (n, account) in ["a1", "a2", "a3", "a4"].iter().enumerate() {
            let ts = DAY_MS + n as i64 * 60_000;
            link(
                &mut graph,
                &mut alerts,
                account,
                EntityKind::Address,
                "TQcrew",
                EdgeKind::WithdrewTo,
                ts,
            );
        }
        let alert = alerts.by_entity.values().next().cloned();
        assert_eq!(alerts.by_entity.len(), 1);
        assert_eq!(alert.as_ref().map(|a| a.unrelated_accounts), Some(4));
        assert_eq!(alert.as_ref().map(|a| a.evidence.len()), Some(4));
        let changed = alerts.take_changed();
        assert_eq!(
            changed.len(),
            1,
            "opened at the third, grown at the fourth: one entry"
        );
        assert_eq!(changed[0].evidence.len(), 4, "as it is now");
        assert!(alerts.take_changed().is_empty());
        assert_eq!(alert.map(|a| a.kind), Some(AlertKind::AddressCampaign));
    }

    #[test]
    fn a_household_counts_once() {
        let (mut graph, mut alerts) = (Graph::default(), Alerts::default());
        for account in ["a1", "a2", "a3"] {
            graph.link(
                account,
                EntityKind::Device,
                "family-tablet",
                EdgeKind::UsedDevice,
                "e",
                0,
            );
        }
        for (n, account) in ["a1", "a2", "a3"].iter().enumerate() {
            let ts = 30 * DAY_MS + n as i64;
            link(
                &mut graph,
                &mut alerts,
                account,
                EntityKind::Address,
                "Tfamily",
                EdgeKind::WithdrewTo,
                ts,
            );
        }
        assert!(alerts.by_entity.is_empty());
    }

    #[test]
    fn links_spread_beyond_the_window_raise_nothing() {
        let (mut graph, mut alerts) = (Graph::default(), Alerts::default());
        for (n, account) in ["a1", "a2", "a3"].iter().enumerate() {
            let ts = n as i64 * 8 * DAY_MS;
            link(
                &mut graph,
                &mut alerts,
                account,
                EntityKind::Number,
                "4420",
                EdgeKind::CalledBy,
                ts,
            );
        }
        assert!(alerts.by_entity.is_empty());
    }
}
