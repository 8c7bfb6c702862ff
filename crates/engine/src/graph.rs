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
//! Compact, because every tracked account has a node and a handful of edges: nodes live in
//! paged vectors (`paged`: grown a page at a time, never copied) and refer to each other by
//! their slot (29 bits, the edge's kind in the other 3); values and event ids are
//! length-prefixed texts of one paged arena; an edge's times and event id
//! are kept once, on its entity's side; times to the second as 32-bit counts (until 2106).
//! A node is 18 bytes (`graph_node`). Most entities (an IP, a device, an address) are used by
//! one account, which they have seen exactly when they were seen: that edge is kept in the
//! node, its times the node's own (one word: the account's slot and kind; the event's text
//! right after the value's). An account's one link is kept in the node too; longer lists, an
//! entity's edges (16 bytes each) once it has two or its one edge's times differ from the
//! node's, live in blocks of one slab (`slab`), not in an allocation each. The index is a
//! slot (4 bytes) and a control byte per bucket, about 7 bytes per node (docs/benchmarks.md
//! has the measured figures).
//!
//! Bounded: an account keeps at most `MAX_ACCOUNT_EDGES` edges (the one seen longest ago makes
//! room), an entity at most `SHARED_AT` accounts; an entity used by more is shared
//! infrastructure (an exchange's hot wallet, a carrier NAT, a VPN exit, a bot host): it is
//! labelled `shared`, keeps no more edges, raises no alerts and is never propagated through.
//! Nodes and edges expire per entity type (`EntityKind::ttl_ms`) and are swept once the graph
//! has doubled since the last sweep; the arena is rewritten then if half of it is texts no
//! longer referred to. Slots are handed out and reused in event order, so its bytes and its
//! views are the same on every replay of one feed.

use crate::paged::Paged;
use crate::slab::Slab;
use hashbrown::HashTable;
use serde::{Deserialize, Serialize};
use smallvec::SmallVec;
use std::borrow::Cow;

#[path = "graph_types.rs"]
mod types;
pub(crate) use types::{DAY_MS, Edge, secs};
use types::{EDGE_WORDS, SLOT_MASK, kind_of, millis, to_kind};

#[path = "graph_node.rs"]
mod node;
pub(crate) use node::Node;
use node::{Nodes, SHARED, value_end};

#[path = "graph_text.rs"]
mod text;
use text::{put_text, put_texts, stored_len, text_at, text_is};
pub use types::{EdgeKind, EntityKind, NodeId};

/// Edges an account keeps.
const MAX_ACCOUNT_EDGES: usize = 48;
/// Accounts an entity links before it is labelled shared infrastructure.
pub(crate) const SHARED_AT: usize = 40;
/// The graph is swept once it holds twice the nodes of the last sweep, never below this.
const MIN_SWEEP_NODES: usize = 4096;
/// Slots are 29 bits: past this many nodes, new ones are not kept.
const MAX_SLOTS: usize = 1 << 29;
/// The longest text the arena keeps (a one-byte length).
pub(crate) const MAX_TEXT: usize = 255;
/// Nodes a page of the nodes' cells holds: as many as fit in 1 MiB (pages of 64 KiB to 128 KiB,
/// tried first, cost more resident memory than they saved: see `paged`; a page of 1.1 MiB,
/// 65,536 nodes, more than one of 1 MiB).
const NODE_PAGE: usize = (1 << 20) / node::NODE_BYTES;
/// Bytes a page of the arena holds (1 MiB): a text (at most 256 bytes with its length) never
/// straddles two, the rest of a page it does not fit in is left unused.
const TEXT_PAGE: usize = 1 << 20;

type Arena = Paged<u8, TEXT_PAGE>;

/// An account's or an entity's edges, as words (`EDGE_WORDS` per entity edge, one per link).
type Words = SmallVec<[u32; 8]>;

/// See the module documentation.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(from = "Stored")]
pub(crate) struct Graph {
    nodes: Nodes,
    free: Vec<u32>,
    /// Texts, each after its length in one byte.
    text: Arena,
    /// Bytes of the arena no longer referred to: it is compacted when they are half of it.
    garbage: usize,
    swept_len: usize,
    /// The lists that do not fit in their node.
    lists: Slab,
    /// Live slots, hashed by their node's id: 4 bytes each. Growing the table hashes each
    /// node's value again (rare: the table doubles); a probe compares a node's value only
    /// when the control byte's 7 bits of the hash match. Rebuilt from the nodes when a
    /// checkpoint is read.
    #[serde(skip)]
    index: HashTable<u32>,
    /// The account linked last and its slot: an event's links are all of one account, so the
    /// second and third find it here (checked against the node: a slot may have been reused).
    #[serde(skip)]
    recent_account: Option<(NodeId, u32)>,
}

/// The graph as a checkpoint holds it: without its index (the fields in `Graph`'s order).
#[derive(Deserialize)]
struct Stored {
    nodes: Nodes,
    free: Vec<u32>,
    text: Arena,
    garbage: usize,
    swept_len: usize,
    lists: Slab,
}

impl From<Stored> for Graph {
    fn from(stored: Stored) -> Self {
        let mut graph = Graph {
            nodes: stored.nodes,
            free: stored.free,
            text: stored.text,
            garbage: stored.garbage,
            swept_len: stored.swept_len,
            lists: stored.lists,
            index: HashTable::new(),
            recent_account: None,
        };
        for (slot, node) in graph.nodes.iter().enumerate().filter(|(_, n)| !n.is_free()) {
            let hash = table_hash(id_in(&graph.text, node));
            let (nodes, text) = (&graph.nodes, &graph.text);
            graph
                .index
                .insert_unique(hash, slot_u32(slot), |&s| slot_hash(nodes, text, s));
        }
        graph
    }
}

fn slot_u32(slot: usize) -> u32 {
    u32::try_from(slot).unwrap_or(u32::MAX)
}

fn id_in(text: &Arena, node: Node) -> NodeId {
    NodeId::of(node.kind, &text_at(text, node.value))
}

/// The index's hash of a node id (a multiplication by an odd constant spreads the keyed hash's
/// bits over both ends of the word, which the table reads).
fn table_hash(id: NodeId) -> u64 {
    id.0.wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

/// The index's hash of the node in a live slot.
fn slot_hash(nodes: &Nodes, text: &Arena, slot: u32) -> u64 {
    nodes
        .get(slot as usize)
        .map_or(0, |node| table_hash(id_in(text, node)))
}

impl Graph {
    /// The slot of the node `kind:value` (canonical), while the graph holds it.
    pub fn find(&self, kind: EntityKind, value: &str) -> Option<u32> {
        self.find_hashed(NodeId::of(kind, value), kind, value)
    }

    fn find_hashed(&self, id: NodeId, kind: EntityKind, value: &str) -> Option<u32> {
        self.index
            .find(table_hash(id), |&slot| {
                self.nodes
                    .get(slot as usize)
                    .is_some_and(|node| node.kind == kind && text_is(&self.text, node.value, value))
            })
            .copied()
    }

    /// The node in a slot (`None` for a free one).
    pub fn at(&self, slot: u32) -> Option<Node> {
        self.nodes.get(slot as usize).filter(|node| !node.is_free())
    }

    pub fn node(&self, kind: EntityKind, value: &str) -> Option<Node> {
        self.find(kind, value).and_then(|slot| self.at(slot))
    }

    /// The edges of the node in a slot, with their times: an entity's to its accounts, an
    /// account's to its entities (the times and event read from the entity's side).
    pub fn edges(&self, slot: u32) -> SmallVec<[Edge; 8]> {
        let Some(node) = self.at(slot) else {
            return SmallVec::new();
        };
        if !node.is_account() {
            return self.entity_edges(node).collect();
        }
        self.links(node)
            .iter()
            .filter_map(|&link| {
                let entity = self.nodes.get((link & SLOT_MASK) as usize)?;
                let key = to_kind(slot, kind_of(link));
                let mut edge = self.entity_edges(entity).find(|e| e.to_kind == key)?;
                edge.to_kind = link;
                Some(edge)
            })
            .collect()
    }

    /// An account's links: each entity's slot and the kind, without their times.
    pub fn account_links(&self, slot: u32) -> impl Iterator<Item = (u32, EdgeKind)> + '_ {
        let links = self
            .at(slot)
            .map_or_else(Words::new, |node| self.links(node));
        links
            .into_iter()
            .map(|link| (link & SLOT_MASK, kind_of(link)))
    }

    /// The node's canonical value.
    pub fn value(&self, node: Node) -> Cow<'_, str> {
        text_at(&self.text, node.value)
    }

    /// The id of the event that made the edge first.
    pub fn event(&self, edge: &Edge) -> Cow<'_, str> {
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

    /// Bytes held: slots, the slab, the arena, the index (an entry and a control byte each).
    pub fn size_bytes(&self) -> usize {
        self.nodes.size_bytes()
            + self.lists.size_bytes()
            + self.text.size_bytes()
            + self.free.capacity() * 4
            + self.index.capacity() * (std::mem::size_of::<u32>() + 1)
    }

    /// `size_bytes` by part, for the replay benchmark's breakdown: nodes, index, slab, arena
    /// (each as held, pages being filled included), then the nodes, slab words and arena bytes
    /// in use.
    pub fn size_parts(&self) -> [(&'static str, usize); 7] {
        [
            (
                "graph nodes",
                self.nodes.size_bytes() + self.free.capacity() * 4,
            ),
            (
                "graph index",
                self.index.capacity() * (std::mem::size_of::<u32>() + 1),
            ),
            ("graph lists", self.lists.size_bytes()),
            ("graph texts", self.text.size_bytes()),
            ("  nodes in use", self.len() * node::NODE_BYTES),
            ("  list words in use", self.lists.used_bytes()),
            ("  text bytes in use", self.text.len() - self.garbage),
        ]
    }

    /// Writes a text into the arena after its length; `None` when it cannot hold it.
    fn put(&mut self, text: &str) -> Option<u32> {
        put_text(&mut self.text, text)
    }

    /// Bytes a text takes in the arena, with its length.
    fn text_len(&self, at: u32) -> usize {
        stored_len(&self.text, at)
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
        // A new entity's value is written with the event, whose edge it keeps in its node.
        let (entity, mut event_at) = self.slot_of(entity_id, kind, value, at, Some(event))?;
        // Its edges as they were: widening the node's times must not widen an edge kept in it.
        let mut words = self.entity_words(entity);
        self.widen(entity, at);
        let account_id = NodeId::of(EntityKind::Account, account);
        let account_slot = match self.at(entity).filter(|n| !n.shared()) {
            Some(_) => self.slot_of(account_id, EntityKind::Account, account, at, None),
            None => None,
        };
        let Some((account_slot, _)) = account_slot else {
            self.unused_text(event_at);
            self.store(entity, &words);
            return None;
        };
        self.widen(account_slot, at);
        let added = self.upsert_edge(&mut words, account_slot, edge, event, at, &mut event_at);
        self.unused_text(event_at);
        self.store(entity, &words)?;
        if !added? {
            return Some((entity, entity_id));
        }
        if self.distinct_accounts(entity) > SHARED_AT {
            self.make_shared(entity);
            return None;
        }
        let mut links = self
            .nodes
            .get(account_slot as usize)
            .map(|n| self.links(n))?;
        links.push(to_kind(entity, edge));
        self.store(account_slot, &links)?;
        if links.len() > MAX_ACCOUNT_EDGES {
            self.evict_oldest_edge(account_slot);
        }
        Some((entity, entity_id))
    }

    /// Shared infrastructure says nothing about who is linked to whom: the entity keeps no
    /// edges, and its accounts no links to it.
    fn make_shared(&mut self, entity: u32) {
        let dropped = self.entity_words(entity);
        self.store(entity, &[]);
        self.nodes.update(entity, |node| node.flags |= SHARED);
        for edge in dropped.chunks_exact(EDGE_WORDS).map(Edge::of_words) {
            self.garbage += self.text_len(edge.event);
            let account = edge.to();
            if let Some(node) = self.nodes.get(account as usize) {
                let mut links = self.links(node);
                links.retain(|w| *w & SLOT_MASK != entity);
                self.store(account, &links);
            }
        }
    }

    /// The slot of the node, made if new (its times `at`; its value written with `event`
    /// after it, whose place is returned); `None` when the graph is full.
    fn slot_of(
        &mut self,
        id: NodeId,
        kind: EntityKind,
        value: &str,
        at: u32,
        event: Option<&str>,
    ) -> Option<(u32, Option<u32>)> {
        let recent = self.recent_account.filter(|&(recent, slot)| {
            recent == id
                && self
                    .at(slot)
                    .is_some_and(|n| n.kind == kind && text_is(&self.text, n.value, value))
        });
        let (slot, event_at) = match recent
            .map(|(_, slot)| slot)
            .or_else(|| self.find_hashed(id, kind, value))
        {
            Some(slot) => (slot, None),
            None => {
                if self.free.is_empty() && self.nodes.len() >= MAX_SLOTS {
                    return None;
                }
                let place = match event {
                    Some(event) => put_texts(&mut self.text, &[value, event])?,
                    None => self.put(value)?,
                };
                let node = Node::new(place, kind, at);
                let event_at = event.map(|_| value_end(&self.text, node));
                let slot = match self.free.pop() {
                    Some(slot) => {
                        self.nodes.set(slot as usize, node);
                        slot
                    }
                    None => {
                        self.nodes.push(node);
                        slot_u32(self.nodes.len() - 1)
                    }
                };
                let (nodes, text) = (&self.nodes, &self.text);
                self.index
                    .insert_unique(table_hash(id), slot, |&s| slot_hash(nodes, text, s));
                (slot, event_at)
            }
        };
        if kind == EntityKind::Account {
            self.recent_account = Some((id, slot));
        }
        Some((slot, event_at))
    }

    /// Counts a text written for an edge that was not made as garbage.
    fn unused_text(&mut self, at: Option<u32>) {
        if let Some(at) = at {
            self.garbage += self.text_len(at);
        }
    }

    /// Widens the node's times to `at`.
    fn widen(&mut self, slot: u32, at: u32) {
        self.nodes.update(slot, |node| {
            node.first = node.first.min(at);
            node.last = node.last.max(at);
        });
    }

    /// Records the edge in an entity's `words`: `Some(true)` when it is new. Its event is the
    /// one that made it first: a new edge takes the text at `event_at` if one was written.
    fn upsert_edge(
        &mut self,
        words: &mut Words,
        account: u32,
        kind: EdgeKind,
        event: &str,
        at: u32,
        event_at: &mut Option<u32>,
    ) -> Option<bool> {
        let key = to_kind(account, kind);
        if let Some(i) = (0..words.len() / EDGE_WORDS)
            .map(|i| i * EDGE_WORDS)
            .find(|&i| words[i] == key)
        {
            let (first, old) = (words[i + 1], words[i + 3]);
            if at < first {
                self.garbage += self.text_len(old);
                let text = self.put(event)?;
                (words[i + 1], words[i + 3]) = (at, text);
            }
            words[i + 2] = words[i + 2].max(at);
            return Some(false);
        }
        let text = match event_at.take() {
            Some(text) => text,
            None => self.put(event)?,
        };
        words.extend_from_slice(&[key, at, at, text]);
        Some(true)
    }

    /// Removes the entity's edge to `account` of `kind`; counts its event as garbage.
    fn remove_entity_edge(&mut self, entity: u32, account: u32, kind: EdgeKind) {
        if self.nodes.get(entity as usize).is_none() {
            return;
        }
        let mut words = self.entity_words(entity);
        let key = to_kind(account, kind);
        if let Some(i) = (0..words.len() / EDGE_WORDS)
            .map(|i| i * EDGE_WORDS)
            .find(|&i| words[i] == key)
        {
            let event = words[i + 3];
            words.drain(i..i + EDGE_WORDS);
            self.garbage += self.text_len(event);
            self.store(entity, &words);
        }
    }

    /// Drops the account's edge seen longest ago, on both sides.
    fn evict_oldest_edge(&mut self, account: u32) {
        let Some(oldest) = self
            .edges(account)
            .into_iter()
            .min_by_key(|e| (e.last, e.to()))
        else {
            return;
        };
        let Some(mut links) = self.nodes.get(account as usize).map(|n| self.links(n)) else {
            return;
        };
        links.retain(|w| *w != oldest.to_kind);
        self.store(account, &links);
        self.remove_entity_edge(oldest.to(), account, oldest.kind());
    }

    /// How many different accounts an entity links.
    pub(crate) fn distinct_accounts(&self, entity: u32) -> usize {
        let Some(node) = self.nodes.get(entity as usize) else {
            return 0;
        };
        let mut accounts: SmallVec<[u32; 8]> = self.entity_edges(node).map(|e| e.to()).collect();
        accounts.sort_unstable();
        accounts.dedup();
        accounts.len()
    }
}

#[path = "graph_sweep.rs"]
mod sweep;

#[cfg(test)]
#[path = "graph_tests.rs"]
mod tests;
