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
//! Compact, because every tracked account has a node and a handful of edges: nodes live in one
//! vector and refer to each other by their slot (29 bits, the edge's kind in the other 3);
//! values and event ids are length-prefixed texts of one arena (an edge's event id is written
//! once, for both of its copies); times are kept to the second as 32-bit counts (until 2106).
//! A node is 40 bytes with its first edge inline, an edge 16, the index (slots hashed by kind
//! and value) about 8 per node (docs/benchmarks.md has the measured figures).
//!
//! Bounded: an account keeps at most `MAX_ACCOUNT_EDGES` edges (the one seen longest ago makes
//! room), an entity at most `SHARED_AT` accounts; an entity used by more is shared
//! infrastructure (an exchange's hot wallet, a carrier NAT, a VPN exit, a bot host): it is
//! labelled `shared`, keeps no more edges, raises no alerts and is never propagated through.
//! Nodes and edges expire per entity type (`EntityKind::ttl_ms`) and are swept once the graph
//! has doubled since the last sweep; the arena is rewritten then if half of it is texts no
//! longer referred to. Slots are handed out and reused in event order, so its bytes and its
//! views are the same on every replay of one feed.

use hashbrown::HashTable;
use serde::{Deserialize, Serialize};
use siphasher::sip::SipHasher13;
use smallvec::SmallVec;
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
/// Slots are 29 bits: past this many nodes, new ones are not kept.
const MAX_SLOTS: usize = 1 << 29;
/// The longest text the arena keeps (a one-byte length).
pub(crate) const MAX_TEXT: usize = 255;

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
        if value.is_empty() || value.len() > MAX_TEXT {
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
    const ALL: [EdgeKind; 7] = [
        EdgeKind::AddedAddress,
        EdgeKind::WithdrewTo,
        EdgeKind::AllowListed,
        EdgeKind::ActedFrom,
        EdgeKind::UsedDevice,
        EdgeKind::CalledBy,
        EdgeKind::Reported,
    ];

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

/// An event time to the second, as the graph keeps it.
pub(crate) fn secs(ms: i64) -> u32 {
    u32::try_from(ms.div_euclid(1000).max(0)).unwrap_or(u32::MAX)
}

fn millis(secs: u32) -> i64 {
    i64::from(secs) * 1000
}

/// One link, kept on both of its nodes (the same event id text for both).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Edge {
    /// The slot of the node at the other end (low 29 bits) and the edge's kind (high 3).
    to_kind: u32,
    first: u32,
    last: u32,
    /// The event id's place in the arena.
    event: u32,
}

impl Edge {
    fn new(to: u32, kind: EdgeKind, at: u32, event: u32) -> Self {
        Self {
            to_kind: to | (kind as u32) << 29,
            first: at,
            last: at,
            event,
        }
    }
    /// The slot of the node at the other end.
    pub fn to(&self) -> u32 {
        self.to_kind & (MAX_SLOTS as u32 - 1)
    }
    pub fn kind(&self) -> EdgeKind {
        EdgeKind::ALL[(self.to_kind >> 29) as usize % EdgeKind::ALL.len()]
    }
    pub fn first_ms(&self) -> i64 {
        millis(self.first)
    }
    pub fn last_ms(&self) -> i64 {
        millis(self.last)
    }
}

const SHARED: u8 = 1;
const FREE: u8 = 2;

/// An account or an entity; a free slot waiting to be reused.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Node {
    /// The canonical value's place in the arena.
    value: u32,
    kind: EntityKind,
    flags: u8,
    first: u32,
    last: u32,
    edges: SmallVec<[Edge; 1]>,
}

impl Node {
    pub fn kind(&self) -> EntityKind {
        self.kind
    }
    /// Shared infrastructure: more than `SHARED_AT` accounts; keeps no more edges.
    pub fn shared(&self) -> bool {
        self.flags & SHARED != 0
    }
    fn is_free(&self) -> bool {
        self.flags & FREE != 0
    }
    pub fn first_ms(&self) -> i64 {
        millis(self.first)
    }
    pub fn last_ms(&self) -> i64 {
        millis(self.last)
    }
    pub fn edges(&self) -> &[Edge] {
        &self.edges
    }
}

/// See the module documentation.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(from = "Stored")]
pub(crate) struct Graph {
    nodes: Vec<Node>,
    free: Vec<u32>,
    /// Texts, each after its length in one byte.
    text: Vec<u8>,
    /// Bytes of the arena no longer referred to: it is compacted when they are half of it.
    garbage: usize,
    swept_len: usize,
    /// Live slots, hashed by their node's id. Rebuilt from the nodes when a checkpoint is read.
    #[serde(skip)]
    index: HashTable<u32>,
}

/// The graph as a checkpoint holds it: without its index (the fields in `Graph`'s order).
#[derive(Deserialize)]
struct Stored {
    nodes: Vec<Node>,
    free: Vec<u32>,
    text: Vec<u8>,
    garbage: usize,
    swept_len: usize,
}

impl From<Stored> for Graph {
    fn from(stored: Stored) -> Self {
        let mut graph = Graph {
            nodes: stored.nodes,
            free: stored.free,
            text: stored.text,
            garbage: stored.garbage,
            swept_len: stored.swept_len,
            index: HashTable::new(),
        };
        let Graph {
            nodes, text, index, ..
        } = &mut graph;
        for (slot, node) in nodes.iter().enumerate().filter(|(_, n)| !n.is_free()) {
            let hash = id_in(text, node).0;
            index.insert_unique(hash, slot_u32(slot), |&s| slot_hash(nodes, text, s));
        }
        graph
    }
}

fn slot_u32(slot: usize) -> u32 {
    u32::try_from(slot).unwrap_or(u32::MAX)
}

/// The text at `at` in the arena.
fn text_at(text: &[u8], at: u32) -> &str {
    let at = at as usize;
    let Some(&len) = text.get(at) else {
        return "";
    };
    text.get(at + 1..at + 1 + usize::from(len))
        .and_then(|bytes| std::str::from_utf8(bytes).ok())
        .unwrap_or("")
}

fn id_in(text: &[u8], node: &Node) -> NodeId {
    NodeId::of(node.kind, text_at(text, node.value))
}

fn slot_hash(nodes: &[Node], text: &[u8], slot: u32) -> u64 {
    nodes
        .get(slot as usize)
        .map_or(0, |node| id_in(text, node).0)
}

impl Graph {
    /// The slot of the node `kind:value` (canonical), while the graph holds it.
    pub fn find(&self, kind: EntityKind, value: &str) -> Option<u32> {
        self.find_hashed(NodeId::of(kind, value), kind, value)
    }

    fn find_hashed(&self, id: NodeId, kind: EntityKind, value: &str) -> Option<u32> {
        let hash = id.0;
        self.index
            .find(hash, |&slot| {
                let node = &self.nodes[slot as usize];
                node.kind == kind && text_at(&self.text, node.value) == value
            })
            .copied()
    }

    /// The node in a slot (`None` for a free one).
    pub fn at(&self, slot: u32) -> Option<&Node> {
        self.nodes.get(slot as usize).filter(|node| !node.is_free())
    }

    pub fn node(&self, kind: EntityKind, value: &str) -> Option<&Node> {
        self.find(kind, value).and_then(|slot| self.at(slot))
    }

    /// The node's canonical value.
    pub fn value(&self, node: &Node) -> &str {
        text_at(&self.text, node.value)
    }

    /// The id of the event that made the edge first.
    pub fn event(&self, edge: &Edge) -> &str {
        text_at(&self.text, edge.event)
    }

    /// The id of the node in a slot.
    pub fn id_of(&self, slot: u32) -> Option<NodeId> {
        self.at(slot).map(|node| id_in(&self.text, node))
    }

    /// Live nodes.
    pub fn len(&self) -> usize {
        self.nodes.len() - self.free.len()
    }

    /// Bytes held: slots, spilled edges, the arena, the index (a slot and a control byte each).
    pub fn size_bytes(&self) -> usize {
        let edges: usize = self
            .nodes
            .iter()
            .filter(|n| n.edges.spilled())
            .map(|n| n.edges.capacity() * std::mem::size_of::<Edge>())
            .sum();
        self.nodes.capacity() * std::mem::size_of::<Node>()
            + edges
            + self.text.capacity()
            + self.free.capacity() * 4
            + self.index.capacity() * 5
    }

    /// Writes a text into the arena after its length; `None` when it cannot hold it.
    fn put(&mut self, text: &str) -> Option<u32> {
        let len = u8::try_from(text.len()).ok()?;
        let at = u32::try_from(self.text.len()).ok()?;
        u32::try_from(self.text.len() + 1 + text.len()).ok()?;
        self.text.push(len);
        self.text.extend_from_slice(text.as_bytes());
        Some(at)
    }

    /// Links `account` to the entity `(kind, value)` (canonical) at `ts`, by `event`.
    /// Returns the entity's slot and id, or `None` when the link was not kept (the entity is
    /// shared, or the graph is full).
    pub fn link(
        &mut self,
        account: &str,
        kind: EntityKind,
        value: &str,
        edge: EdgeKind,
        event: &str,
        ts: i64,
    ) -> Option<(u32, NodeId)> {
        let at = secs(ts);
        let entity_id = NodeId::of(kind, value);
        let entity = self.touch(entity_id, kind, value, at)?;
        if self.nodes[entity as usize].shared() {
            return None;
        }
        let account_id = NodeId::of(EntityKind::Account, account);
        let account_slot = self.touch(account_id, EntityKind::Account, account, at)?;
        let (fresh, text) = self.upsert_edge(entity, account_slot, edge, event, at, None)?;
        if fresh && distinct_accounts(&self.nodes[entity as usize]) > SHARED_AT {
            // Shared infrastructure: it says nothing about who is linked to whom.
            let node = &mut self.nodes[entity as usize];
            node.flags |= SHARED;
            let dropped = std::mem::take(&mut node.edges);
            for old in dropped {
                self.garbage += self.text_len(old.event);
                if let Some(other) = self.nodes.get_mut(old.to() as usize) {
                    other.edges.retain(|e| e.to() != entity);
                }
            }
            return None;
        }
        self.upsert_edge(account_slot, entity, edge, event, at, Some(text));
        if self.nodes[account_slot as usize].edges.len() > MAX_ACCOUNT_EDGES {
            self.evict_oldest_edge(account_slot);
        }
        self.sweep_if_grown(ts);
        Some((entity, entity_id))
    }

    /// The node's slot, made if new, its times widened to `at`; `None` when the graph is full.
    fn touch(&mut self, id: NodeId, kind: EntityKind, value: &str, at: u32) -> Option<u32> {
        let slot = match self.find_hashed(id, kind, value) {
            Some(slot) => slot,
            None => {
                if self.free.is_empty() && self.nodes.len() >= MAX_SLOTS {
                    return None;
                }
                let node = Node {
                    value: self.put(value)?,
                    kind,
                    flags: 0,
                    first: at,
                    last: at,
                    edges: SmallVec::new(),
                };
                let slot = match self.free.pop() {
                    Some(slot) => {
                        self.nodes[slot as usize] = node;
                        slot
                    }
                    None => {
                        self.nodes.push(node);
                        slot_u32(self.nodes.len() - 1)
                    }
                };
                let Graph {
                    nodes, text, index, ..
                } = self;
                index.insert_unique(id.0, slot, |&s| slot_hash(nodes, text, s));
                slot
            }
        };
        let node = &mut self.nodes[slot as usize];
        node.first = node.first.min(at);
        node.last = node.last.max(at);
        Some(slot)
    }

    /// Records the edge on `from`; whether it is new, with its event id's place (the one
    /// given, or the event written into the arena when the edge is new or seen earlier).
    fn upsert_edge(
        &mut self,
        from: u32,
        to: u32,
        kind: EdgeKind,
        event: &str,
        at: u32,
        text: Option<u32>,
    ) -> Option<(bool, u32)> {
        let found = self.nodes[from as usize]
            .edges
            .iter()
            .position(|e| e.to() == to && e.kind() == kind);
        if let Some(index) = found {
            let earlier = at < self.nodes[from as usize].edges[index].first;
            let old = self.nodes[from as usize].edges[index].event;
            let text = match text {
                Some(text) => text,
                None if earlier => {
                    self.garbage += self.text_len(old);
                    self.put(event)?
                }
                None => old,
            };
            let edge = &mut self.nodes[from as usize].edges[index];
            if earlier {
                edge.first = at;
                edge.event = text;
            }
            edge.last = edge.last.max(at);
            return Some((false, text));
        }
        let text = match text {
            Some(text) => text,
            None => self.put(event)?,
        };
        let edges = &mut self.nodes[from as usize].edges;
        // One more at a time: most nodes keep one or two edges for life.
        edges.reserve_exact(1);
        edges.push(Edge::new(to, kind, at, text));
        Some((true, text))
    }

    /// Drops the account's edge seen longest ago, on both sides.
    fn evict_oldest_edge(&mut self, account: u32) {
        let node = &mut self.nodes[account as usize];
        let Some(at) =
            (0..node.edges.len()).min_by_key(|&i| (node.edges[i].last, node.edges[i].to()))
        else {
            return;
        };
        let edge = node.edges.swap_remove(at);
        self.garbage += self.text_len(edge.event);
        if let Some(other) = self.nodes.get_mut(edge.to() as usize) {
            other
                .edges
                .retain(|e| !(e.to() == account && e.kind() == edge.kind()));
        }
    }

    /// Forgets nodes and edges not seen within their kind's lifetime, once the graph has doubled.
    fn sweep_if_grown(&mut self, ts: i64) {
        if self.len() <= (2 * self.swept_len).max(MIN_SWEEP_NODES) {
            return;
        }
        self.sweep(ts);
    }

    pub fn sweep(&mut self, ts: i64) {
        // The kind of each node that lives on; `None` for one expired or free.
        let kinds: Vec<Option<EntityKind>> = self
            .nodes
            .iter()
            .map(|n| (!n.is_free() && ts - n.last_ms() <= n.kind.ttl_ms()).then_some(n.kind))
            .collect();
        for (slot, node) in self.nodes.iter_mut().enumerate() {
            let Some(own) = kinds[slot] else {
                continue;
            };
            node.edges.retain(|edge| {
                kinds
                    .get(edge.to() as usize)
                    .copied()
                    .flatten()
                    .is_some_and(|other| {
                        let entity = if own == EntityKind::Account {
                            other
                        } else {
                            own
                        };
                        ts - edge.last_ms() <= entity.ttl_ms()
                    })
            });
            node.edges.shrink_to_fit();
        }
        for slot in 0..self.nodes.len() {
            let node = &self.nodes[slot];
            let live = kinds[slot].is_some() && (node.shared() || !node.edges.is_empty());
            if !node.is_free() && !live {
                self.release(slot_u32(slot));
            }
        }
        if 2 * self.garbage > self.text.len() {
            self.compact_text();
        }
        self.swept_len = self.len();
    }

    fn release(&mut self, slot: u32) {
        if let Some(id) = self.id_of(slot)
            && let Ok(entry) = self.index.find_entry(id.0, |&s| s == slot)
        {
            entry.remove();
        }
        let node = &self.nodes[slot as usize];
        let mut garbage = self.text_len(node.value);
        if node.kind != EntityKind::Account {
            // An expired entity's edges were not swept one by one: their event ids go with it.
            garbage += node
                .edges
                .iter()
                .map(|e| self.text_len(e.event))
                .sum::<usize>();
        }
        self.garbage += garbage;
        let node = &mut self.nodes[slot as usize];
        node.flags = FREE;
        node.edges = SmallVec::new();
        node.value = 0;
        self.free.push(slot);
    }

    /// Bytes a text takes in the arena, with its length.
    fn text_len(&self, at: u32) -> usize {
        1 + text_at(&self.text, at).len()
    }

    /// Rewrites the arena with only the texts still referred to, in slot order: each value,
    /// and each edge's event id once, from its entity's side, the account's copy pointed at
    /// the same place. The index hashes values, not places: it stays.
    fn compact_text(&mut self) {
        let old = std::mem::take(&mut self.text);
        let mut text = Vec::with_capacity(old.len() - self.garbage.min(old.len()));
        let copy = |at: u32, text: &mut Vec<u8>| -> u32 {
            let to = slot_u32(text.len());
            let piece = text_at(&old, at);
            text.push(u8::try_from(piece.len()).unwrap_or(0));
            text.extend_from_slice(piece.as_bytes());
            to
        };
        let mut moved: Vec<(u32, u32, EdgeKind, u32)> = Vec::new();
        for (slot, node) in self.nodes.iter_mut().enumerate() {
            if node.is_free() {
                continue;
            }
            node.value = copy(node.value, &mut text);
            if node.kind == EntityKind::Account {
                continue;
            }
            for edge in node.edges.iter_mut() {
                edge.event = copy(edge.event, &mut text);
                moved.push((edge.to(), slot_u32(slot), edge.kind(), edge.event));
            }
        }
        for (account, entity, kind, event) in moved {
            let Some(node) = self.nodes.get_mut(account as usize) else {
                continue;
            };
            if let Some(edge) = node
                .edges
                .iter_mut()
                .find(|e| e.to() == entity && e.kind() == kind)
            {
                edge.event = event;
            }
        }
        self.text = text;
        self.garbage = 0;
    }
}

/// How many different accounts an entity links.
pub(crate) fn distinct_accounts(node: &Node) -> usize {
    let mut accounts: SmallVec<[u32; 8]> = node.edges.iter().map(Edge::to).collect();
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
        let ip = ip.and_then(|(slot, _)| graph.at(slot)).cloned();
        assert_eq!(ip.as_ref().map(distinct_accounts), Some(2));
        let a1 = graph.node(EntityKind::Account, "a1");
        assert_eq!(a1.map(|n| n.edges().len()), Some(1));
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
        let hot = graph.node(EntityKind::Address, "hot");
        assert!(hot.is_some_and(|n| n.shared() && n.edges().is_empty()));
        let a0 = graph.node(EntityKind::Account, "a0");
        assert!(a0.is_some_and(|n| n.edges().is_empty()));
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
        assert!(graph.node(EntityKind::Ip, "198.51.100.1").is_none());
        assert!(graph.node(EntityKind::Address, "T1").is_some());
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
        let a1 = graph.node(EntityKind::Account, "a1");
        assert_eq!(a1.map(|n| n.edges().len()), Some(MAX_ACCOUNT_EDGES));
    }

    #[test]
    fn a_sweep_reuses_slots_and_keeps_texts_and_a_checkpoint_rebuilds_the_index() {
        let mut graph = Graph::default();
        graph.link(
            "a1",
            EntityKind::Ip,
            "198.51.100.1",
            EdgeKind::ActedFrom,
            "old",
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
        assert_eq!(graph.free.len(), 1, "the expired IP's slot is free");
        graph.link(
            "a2",
            EntityKind::Device,
            "d2",
            EdgeKind::UsedDevice,
            "e3",
            31 * DAY_MS,
        );
        assert!(graph.free.is_empty(), "and reused");
        let bytes = postcard::to_allocvec(&graph).unwrap_or_default();
        let restored: Graph = postcard::from_bytes(&bytes).unwrap_or_default();
        let t1 = restored.node(EntityKind::Address, "T1");
        assert_eq!(t1.map(|n| restored.value(n)), Some("T1"));
        let edge = t1.and_then(|n| n.edges().first());
        assert_eq!(edge.map(|e| restored.event(e)), Some("e2"));
        let d2 = restored.node(EntityKind::Device, "d2");
        let owner = d2
            .and_then(|n| n.edges().first())
            .and_then(|e| restored.at(e.to()));
        assert_eq!(owner.map(|n| restored.value(n)), Some("a2"));
        assert!(
            !restored.text.windows(3).any(|w| w == b"old"),
            "the arena was compacted"
        );
    }

    #[test]
    fn a_node_with_its_first_edge_is_40_bytes_and_an_edge_16() {
        assert_eq!(std::mem::size_of::<Edge>(), 16);
        assert_eq!(std::mem::size_of::<Node>(), 40);
        let edge = Edge::new(MAX_SLOTS as u32 - 1, EdgeKind::Reported, 7, 9);
        assert_eq!(
            (edge.to(), edge.kind()),
            (MAX_SLOTS as u32 - 1, EdgeKind::Reported)
        );
    }
}
