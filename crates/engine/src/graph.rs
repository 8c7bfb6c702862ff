//! The entity graph: which accounts used which withdrawal addresses, IPs, devices and phone
//! numbers, built from the feed in event time.
//!
//! A campaign is one crew working on many customers from a few numbers, servers and devices,
//! collecting into a few addresses: each victim alone looks like one odd account, the graph
//! shows them together. Nodes are accounts and entities (kind + canonical value: addresses per
//! `portcullis_core::address::canonical`, IPs in their canonical form, numbers as digits);
//! edges always join an account to an entity and say how (`EdgeKind`), with the first and last
//! time and the event that made them.
//!
//! Bounded: an account keeps at most `MAX_ACCOUNT_EDGES` edges (the one seen longest ago makes
//! room), an entity at most `SHARED_AT` accounts; an entity used by more is shared
//! infrastructure (an exchange's hot wallet, a carrier NAT, a VPN exit, a bot host): it is
//! labelled `shared`, keeps no more edges, raises no alerts and is never propagated through.
//! Nodes and edges expire per entity type (`EntityKind::ttl_ms`) and are swept once the graph
//! has doubled since the last sweep. Ordered maps, so its bytes and its views are the same on
//! every replay of one feed.

use serde::{Deserialize, Serialize};
use siphasher::sip::SipHasher13;
use std::collections::BTreeMap;
use std::hash::Hasher as _;

pub(crate) const DAY_MS: i64 = 86_400_000;
/// Edges an account keeps.
const MAX_ACCOUNT_EDGES: usize = 48;
/// Accounts an entity links before it is labelled shared infrastructure.
pub(crate) const SHARED_AT: usize = 40;
/// The graph is swept once it holds twice the nodes of the last sweep, never below this.
const MIN_SWEEP_NODES: usize = 4096;
/// The SipHash key of node ids (stored in checkpoints: never changes).
const NODE_KEY: (u64, u64) = (0x706f_7274_6375_6c6c, 0x6973_2d6e_6f64_6531);

/// What a node stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EntityKind {
    Account,
    Address,
    Ip,
    Device,
    Number,
}

impl EntityKind {
    pub const ALL: [EntityKind; 5] = [
        EntityKind::Account,
        EntityKind::Address,
        EntityKind::Ip,
        EntityKind::Device,
        EntityKind::Number,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EntityKind::Account => "account",
            EntityKind::Address => "address",
            EntityKind::Ip => "ip",
            EntityKind::Device => "device",
            EntityKind::Number => "number",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == text)
    }

    /// How long a node of this kind and its edges last without being seen again: an IP
    /// changes hands within weeks, a device within months, an attacker's address or number
    /// stays theirs. An account lasts as long as its longest-lived edge can.
    pub fn ttl_ms(self) -> i64 {
        match self {
            EntityKind::Ip => 30 * DAY_MS,
            EntityKind::Device => 90 * DAY_MS,
            EntityKind::Account | EntityKind::Address | EntityKind::Number => 365 * DAY_MS,
        }
    }

    /// How long a confirmed-fraud mark on a node of this kind lasts: as long as the node
    /// would, except an account, which is reviewed within a month.
    pub fn mark_ttl_ms(self) -> i64 {
        match self {
            EntityKind::Account => 30 * DAY_MS,
            other => other.ttl_ms(),
        }
    }

    /// The canonical form of a value of this kind, or `None` if it is not one.
    pub fn canonical(self, value: &str) -> Option<String> {
        let value = value.trim();
        if value.is_empty() || value.len() > 256 {
            return None;
        }
        match self {
            EntityKind::Address => Some(portcullis_core::address::canonical(value).into_owned()),
            EntityKind::Ip => value
                .parse::<std::net::IpAddr>()
                .ok()
                .map(|ip| ip.to_canonical().to_string()),
            EntityKind::Number => Some(crate::state::normalise_contact(value)),
            EntityKind::Account | EntityKind::Device => Some(value.to_owned()),
        }
    }
}

/// How an account is linked to an entity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EdgeKind {
    /// Allow-listed the address (`address.added`).
    AddedAddress,
    /// Asked for a withdrawal to the address.
    WithdrewTo,
    /// Allow-listed the IP on a key (a single host).
    AllowListed,
    /// Acted from the IP (logins, key use, any event's `ctx.ip`).
    ActedFrom,
    /// Used the device.
    UsedDevice,
    /// Was called by the number.
    CalledBy,
    /// Reported the contact.
    Reported,
}

impl EdgeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EdgeKind::AddedAddress => "added_address",
            EdgeKind::WithdrewTo => "withdrew_to",
            EdgeKind::AllowListed => "allow_listed",
            EdgeKind::ActedFrom => "acted_from",
            EdgeKind::UsedDevice => "used_device",
            EdgeKind::CalledBy => "called_by",
            EdgeKind::Reported => "reported",
        }
    }
}

/// A node's id: a keyed hash of its kind and canonical value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct NodeId(pub u64);

impl NodeId {
    pub fn of(kind: EntityKind, canonical: &str) -> Self {
        let mut hasher = SipHasher13::new_with_keys(NODE_KEY.0, NODE_KEY.1);
        hasher.write_u8(kind as u8);
        hasher.write(canonical.as_bytes());
        Self(hasher.finish())
    }
}

/// One link, kept on both of its nodes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Edge {
    pub to: NodeId,
    pub kind: EdgeKind,
    pub first: i64,
    pub last: i64,
    /// The event that made the link first.
    pub event: Box<str>,
}

/// An account or an entity.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Node {
    pub kind: EntityKind,
    pub value: Box<str>,
    pub first: i64,
    pub last: i64,
    /// Shared infrastructure: more than `SHARED_AT` accounts; keeps no more edges.
    pub shared: bool,
    pub edges: Vec<Edge>,
}

/// See the module documentation.
#[derive(Debug, Default, Serialize, Deserialize)]
pub(crate) struct Graph {
    pub nodes: BTreeMap<NodeId, Node>,
    swept_len: usize,
}

impl Graph {
    pub fn node(&self, id: NodeId) -> Option<&Node> {
        self.nodes.get(&id)
    }

    /// Links `account` to the entity `(kind, value)` (canonical) at `ts`, by `event`.
    /// Returns the entity's id, or `None` when the link was not kept (the entity is shared).
    pub fn link(
        &mut self,
        account: &str,
        kind: EntityKind,
        value: &str,
        edge: EdgeKind,
        event: &str,
        ts: i64,
    ) -> Option<NodeId> {
        let account_id = NodeId::of(EntityKind::Account, account);
        let entity_id = NodeId::of(kind, value);
        let entity = touch(&mut self.nodes, entity_id, kind, value, ts);
        if entity.shared {
            return None;
        }
        let fresh = upsert_edge(&mut entity.edges, account_id, edge, event, ts);
        if fresh && distinct_accounts(entity) > SHARED_AT {
            // Shared infrastructure: it says nothing about who is linked to whom.
            entity.shared = true;
            let dropped = std::mem::take(&mut entity.edges);
            for old in dropped {
                if let Some(other) = self.nodes.get_mut(&old.to) {
                    other.edges.retain(|e| e.to != entity_id);
                }
            }
            return None;
        }
        let node = touch(
            &mut self.nodes,
            account_id,
            EntityKind::Account,
            account,
            ts,
        );
        upsert_edge(&mut node.edges, entity_id, edge, event, ts);
        if node.edges.len() > MAX_ACCOUNT_EDGES {
            self.evict_oldest_edge(account_id);
        }
        self.sweep_if_grown(ts);
        Some(entity_id)
    }

    /// Drops the account's edge seen longest ago, on both sides.
    fn evict_oldest_edge(&mut self, account: NodeId) {
        let Some(node) = self.nodes.get_mut(&account) else {
            return;
        };
        let Some(at) =
            (0..node.edges.len()).min_by_key(|&i| (node.edges[i].last, node.edges[i].to))
        else {
            return;
        };
        let edge = node.edges.swap_remove(at);
        if let Some(other) = self.nodes.get_mut(&edge.to) {
            other
                .edges
                .retain(|e| !(e.to == account && e.kind == edge.kind));
        }
    }

    /// Forgets nodes and edges not seen within their kind's lifetime, once the graph has doubled.
    fn sweep_if_grown(&mut self, ts: i64) {
        if self.nodes.len() <= (2 * self.swept_len).max(MIN_SWEEP_NODES) {
            return;
        }
        self.sweep(ts);
    }

    pub fn sweep(&mut self, ts: i64) {
        self.nodes
            .retain(|_, node| ts - node.last <= node.kind.ttl_ms());
        let kinds: BTreeMap<NodeId, EntityKind> =
            self.nodes.iter().map(|(id, n)| (*id, n.kind)).collect();
        for node in self.nodes.values_mut() {
            let own = node.kind;
            node.edges.retain(|edge| {
                kinds.get(&edge.to).is_some_and(|other| {
                    let entity = if own == EntityKind::Account {
                        *other
                    } else {
                        own
                    };
                    ts - edge.last <= entity.ttl_ms()
                })
            });
        }
        self.nodes
            .retain(|_, node| node.shared || !node.edges.is_empty());
        self.swept_len = self.nodes.len();
    }
}

fn touch<'a>(
    nodes: &'a mut BTreeMap<NodeId, Node>,
    id: NodeId,
    kind: EntityKind,
    value: &str,
    ts: i64,
) -> &'a mut Node {
    let node = nodes.entry(id).or_insert_with(|| Node {
        kind,
        value: value.into(),
        first: ts,
        last: ts,
        shared: false,
        edges: Vec::new(),
    });
    node.first = node.first.min(ts);
    node.last = node.last.max(ts);
    node
}

/// Records the edge; `true` when it is new.
fn upsert_edge(edges: &mut Vec<Edge>, to: NodeId, kind: EdgeKind, event: &str, ts: i64) -> bool {
    if let Some(edge) = edges.iter_mut().find(|e| e.to == to && e.kind == kind) {
        if ts < edge.first {
            edge.first = ts;
            edge.event = event.into();
        }
        edge.last = edge.last.max(ts);
        return false;
    }
    edges.push(Edge {
        to,
        kind,
        first: ts,
        last: ts,
        event: event.into(),
    });
    true
}

/// How many different accounts an entity links.
pub(crate) fn distinct_accounts(node: &Node) -> usize {
    let mut accounts: Vec<NodeId> = node.edges.iter().map(|e| e.to).collect();
    accounts.sort_unstable();
    accounts.dedup();
    accounts.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_join_accounts_through_entities_both_ways() {
        let mut graph = Graph::default();
        let ip = graph.link(
            "a1",
            EntityKind::Ip,
            "203.0.113.7",
            EdgeKind::AllowListed,
            "e1",
            10,
        );
        graph.link(
            "a2",
            EntityKind::Ip,
            "203.0.113.7",
            EdgeKind::ActedFrom,
            "e2",
            20,
        );
        let ip = ip.and_then(|id| graph.node(id)).cloned();
        assert_eq!(ip.as_ref().map(distinct_accounts), Some(2));
        let a1 = graph.node(NodeId::of(EntityKind::Account, "a1"));
        assert_eq!(a1.map(|n| n.edges.len()), Some(1));
    }

    #[test]
    fn a_widely_used_entity_is_labelled_shared_and_keeps_no_edges() {
        let mut graph = Graph::default();
        for n in 0..=SHARED_AT {
            graph.link(
                &format!("a{n}"),
                EntityKind::Address,
                "hot",
                EdgeKind::WithdrewTo,
                "e",
                1,
            );
        }
        let hot = graph.node(NodeId::of(EntityKind::Address, "hot"));
        assert!(hot.is_some_and(|n| n.shared && n.edges.is_empty()));
        let a0 = graph.node(NodeId::of(EntityKind::Account, "a0"));
        assert!(a0.is_some_and(|n| n.edges.is_empty()));
    }

    #[test]
    fn edges_and_nodes_expire_by_kind() {
        let mut graph = Graph::default();
        graph.link(
            "a1",
            EntityKind::Ip,
            "198.51.100.1",
            EdgeKind::ActedFrom,
            "e1",
            0,
        );
        graph.link(
            "a1",
            EntityKind::Address,
            "T1",
            EdgeKind::WithdrewTo,
            "e2",
            0,
        );
        graph.sweep(31 * DAY_MS);
        assert!(
            graph
                .node(NodeId::of(EntityKind::Ip, "198.51.100.1"))
                .is_none()
        );
        assert!(graph.node(NodeId::of(EntityKind::Address, "T1")).is_some());
    }

    #[test]
    fn an_account_keeps_a_bounded_number_of_edges() {
        let mut graph = Graph::default();
        for n in 0..200_i64 {
            graph.link(
                "a1",
                EntityKind::Device,
                &format!("d{n}"),
                EdgeKind::UsedDevice,
                "e",
                n,
            );
        }
        let a1 = graph.node(NodeId::of(EntityKind::Account, "a1"));
        assert_eq!(a1.map(|n| n.edges.len()), Some(MAX_ACCOUNT_EDGES));
    }
}
