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
//! paged vector (`paged`: grown a page at a time, never copied) and refer to each other by
//! their slot (29 bits, the edge's kind in the other 3); values and event ids are
//! length-prefixed texts of one paged arena; an edge's times and event id
//! are kept once, on its entity's side; times to the second as 32-bit counts (until 2106).
//! A node is 24 bytes. Most entities (an IP, a device, an address) are used by one account,
//! which they have seen exactly when they were seen: that edge is kept in the node, its times
//! the node's own (two words: the account's slot and kind, the event). An account's first two
//! links (4 bytes each) are kept in the node too; longer lists, an entity's edges (16 bytes
//! each) once it has two or its one edge's times differ from the node's, live in blocks of one
//! slab (`slab`), not in an allocation each. The index is a slot (4 bytes) and a control byte
//! per bucket, about 7 bytes per node (docs/benchmarks.md has the measured figures).
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
use crate::slab::{self, Slab};
use hashbrown::HashTable;
use serde::{Deserialize, Serialize};
use smallvec::SmallVec;

#[path = "graph_types.rs"]
mod types;
pub(crate) use types::{DAY_MS, Edge, secs};
use types::{EDGE_WORDS, SLOT_MASK, kind_of, millis, to_kind};
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
/// Nodes a page of the node vector holds (1.5 MiB; pages of 64 KiB to 128 KiB, tried first,
/// cost more resident memory than they saved: see `paged`).
const NODE_PAGE: usize = 65_536;
/// Bytes a page of the arena holds (1 MiB): a text (at most 256 bytes with its length) never
/// straddles two, the rest of a page it does not fit in is left unused.
const TEXT_PAGE: usize = 1 << 20;

type Nodes = Paged<Node, NODE_PAGE>;
type Arena = Paged<u8, TEXT_PAGE>;

const SHARED: u8 = 1;
const FREE: u8 = 2;

/// Where a node's list is (`Node::layout`).
const EMPTY: u8 = 0;
/// An entity's one edge, its times the node's own: `pair` is its slot-and-kind and its event.
/// An account's one link: `pair[0]`.
const ONE: u8 = 1;
/// An account's two links: `pair`.
const TWO: u8 = 2;
/// In the slab: `pair` is the block's place and the list's length in words.
const BLOCK: u8 = 3;

/// An account's or an entity's edges, as words (`EDGE_WORDS` per entity edge, one per link).
type Words = SmallVec<[u32; 8]>;

/// An account or an entity; a free slot waiting to be reused. An account's links are one word
/// each (the entity's slot and the kind); an entity's edges four words each (`EDGE_WORDS`).
/// An edge's times and event id are kept once, on its entity's side, which has at most
/// `SHARED_AT` accounts to look through. Most entities have one account and have seen it
/// exactly when they were seen: that edge is two words in the node (the node's times are its
/// times); most accounts' links and other entities' edges are a list in the graph's slab.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Node {
    /// The canonical value's place in the arena.
    value: u32,
    first: u32,
    last: u32,
    kind: EntityKind,
    flags: u8,
    /// `EMPTY`, `ONE`, `TWO` or `BLOCK`.
    layout: u8,
    /// The slab class of the block (`BLOCK`).
    class: u8,
    pair: [u32; 2],
}

impl Node {
    fn new(value: u32, kind: EntityKind, at: u32) -> Self {
        Self {
            value,
            first: at,
            last: at,
            kind,
            flags: 0,
            layout: EMPTY,
            class: 0,
            pair: [0; 2],
        }
    }
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
    fn is_account(&self) -> bool {
        self.kind == EntityKind::Account
    }
    pub fn first_ms(&self) -> i64 {
        millis(self.first)
    }
    pub fn last_ms(&self) -> i64 {
        millis(self.last)
    }
    /// How many edges it has.
    #[cfg(test)]
    pub fn degree(&self) -> usize {
        match self.layout {
            ONE => 1,
            TWO => 2,
            BLOCK if self.is_account() => self.pair[1] as usize,
            BLOCK => self.pair[1] as usize / EDGE_WORDS,
            _ => 0,
        }
    }
}

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

/// The text at `at` in the arena.
fn text_at(text: &Arena, at: u32) -> &str {
    let at = at as usize;
    let Some(&len) = text.get(at) else {
        return "";
    };
    text.slice(at + 1, usize::from(len))
        .and_then(|bytes| std::str::from_utf8(bytes).ok())
        .unwrap_or("")
}

/// Writes a text into the arena after its length, in one page; `None` when it cannot hold it.
fn put_text(arena: &mut Arena, text: &str) -> Option<u32> {
    let len = u8::try_from(text.len()).ok()?;
    // The end after padding, at most, must be a 32-bit place.
    u32::try_from(arena.len() + TEXT_PAGE + 1 + text.len()).ok()?;
    let at = arena.alloc(1 + text.len())?;
    let place = arena.slice_mut(at, 1 + text.len())?;
    place[0] = len;
    place[1..].copy_from_slice(text.as_bytes());
    u32::try_from(at).ok()
}

fn id_in(text: &Arena, node: &Node) -> NodeId {
    NodeId::of(node.kind, text_at(text, node.value))
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

    /// A node's list as it is stored: its inline words, or its block's.
    fn stored<'a>(&'a self, node: &'a Node) -> &'a [u32] {
        match node.layout {
            ONE => &node.pair[..1],
            TWO => &node.pair[..],
            BLOCK => self.lists.get(node.pair[0], node.pair[1]),
            _ => &[],
        }
    }

    /// An entity's edges (to accounts), with their times.
    fn entity_edges<'a>(&'a self, node: &'a Node) -> impl Iterator<Item = Edge> + 'a {
        let inline = (node.layout == ONE).then(|| Edge {
            to_kind: node.pair[0],
            first: node.first,
            last: node.last,
            event: node.pair[1],
        });
        let block = if node.layout == BLOCK {
            self.stored(node)
        } else {
            &[]
        };
        inline
            .into_iter()
            .chain(block.chunks_exact(EDGE_WORDS).map(Edge::of_words))
    }

    /// An entity's edges as words (`EDGE_WORDS` each), to change and `store`.
    fn entity_words(&self, slot: u32) -> Words {
        let Some(node) = self.nodes.get(slot as usize) else {
            return Words::new();
        };
        self.entity_edges(node).flat_map(|e| e.words()).collect()
    }

    /// An account's links, one word each (the entity's slot and the kind).
    fn links<'a>(&'a self, node: &'a Node) -> &'a [u32] {
        if node.is_account() {
            self.stored(node)
        } else {
            &[]
        }
    }

    /// Stores `words` as the list of the node in `slot` (an entity's edges or an account's
    /// links): in the node when they fit (an entity's one edge with the node's own times, an
    /// account's one or two links), else in its block, grown to the class that holds them
    /// (a shrinking list keeps its block). `None` when the slab cannot grow.
    fn store(&mut self, slot: u32, words: &[u32]) -> Option<()> {
        let node = &self.nodes[slot as usize];
        let inline = match words.len() {
            0 => Some((EMPTY, [0, 0])),
            1 if node.is_account() => Some((ONE, [words[0], 0])),
            2 if node.is_account() => Some((TWO, [words[0], words[1]])),
            EDGE_WORDS if !node.is_account() && words[1] == node.first && words[2] == node.last => {
                Some((ONE, [words[0], words[3]]))
            }
            _ => None,
        };
        let block = (node.layout == BLOCK).then_some((node.pair[0], node.class));
        let len = u32::try_from(words.len()).ok()?;
        let (layout, class, pair) = match (inline, block) {
            (Some((layout, pair)), block) => {
                if let Some((at, class)) = block {
                    self.lists.free(at, class);
                }
                (layout, 0, pair)
            }
            (None, Some((at, class))) if slab::capacity(class) >= words.len() => {
                self.lists.write(at, words);
                (BLOCK, class, [at, len])
            }
            (None, block) => {
                let class = slab::class_of(words.len());
                let at = self.lists.alloc(class)?;
                if let Some((old, old_class)) = block {
                    self.lists.free(old, old_class);
                }
                self.lists.write(at, words);
                (BLOCK, class, [at, len])
            }
        };
        let node = &mut self.nodes[slot as usize];
        (node.layout, node.class, node.pair) = (layout, class, pair);
        Some(())
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
        let links = self.at(slot).map_or(&[][..], |node| self.links(node));
        links.iter().map(|&link| (link & SLOT_MASK, kind_of(link)))
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

    /// Bytes held: slots, the slab, the arena, the index (an entry and a control byte each).
    pub fn size_bytes(&self) -> usize {
        self.nodes.size_bytes()
            + self.lists.size_bytes()
            + self.text.size_bytes()
            + self.free.capacity() * 4
            + self.index.capacity() * (std::mem::size_of::<u32>() + 1)
    }

    /// Writes a text into the arena after its length; `None` when it cannot hold it.
    fn put(&mut self, text: &str) -> Option<u32> {
        put_text(&mut self.text, text)
    }

    /// Bytes a text takes in the arena, with its length.
    fn text_len(&self, at: u32) -> usize {
        1 + text_at(&self.text, at).len()
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
        let entity = self.slot_of(entity_id, kind, value, at)?;
        // Its edges as they were: widening the node's times must not widen an edge kept in it.
        let mut words = self.entity_words(entity);
        self.widen(entity, at);
        if self.nodes[entity as usize].shared() {
            return None;
        }
        let account_id = NodeId::of(EntityKind::Account, account);
        let Some(account_slot) = self.slot_of(account_id, EntityKind::Account, account, at) else {
            self.store(entity, &words);
            return None;
        };
        self.widen(account_slot, at);
        let added = self.upsert_edge(&mut words, account_slot, edge, event, at);
        self.store(entity, &words)?;
        if !added? {
            return Some((entity, entity_id));
        }
        if self.distinct_accounts(entity) > SHARED_AT {
            self.make_shared(entity);
            return None;
        }
        let mut links: Words = self.links(&self.nodes[account_slot as usize]).into();
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
        self.nodes[entity as usize].flags |= SHARED;
        for edge in dropped.chunks_exact(EDGE_WORDS).map(Edge::of_words) {
            self.garbage += self.text_len(edge.event);
            let account = edge.to();
            if let Some(node) = self.nodes.get(account as usize) {
                let mut links: Words = self.links(node).into();
                links.retain(|w| *w & SLOT_MASK != entity);
                self.store(account, &links);
            }
        }
    }

    /// The slot of the node, made if new (its times `at`); `None` when the graph is full.
    fn slot_of(&mut self, id: NodeId, kind: EntityKind, value: &str, at: u32) -> Option<u32> {
        let recent = self.recent_account.filter(|&(recent, slot)| {
            recent == id
                && self
                    .at(slot)
                    .is_some_and(|n| n.kind == kind && text_at(&self.text, n.value) == value)
        });
        let slot = match recent
            .map(|(_, slot)| slot)
            .or_else(|| self.find_hashed(id, kind, value))
        {
            Some(slot) => slot,
            None => {
                if self.free.is_empty() && self.nodes.len() >= MAX_SLOTS {
                    return None;
                }
                let node = Node::new(self.put(value)?, kind, at);
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
                let (nodes, text) = (&self.nodes, &self.text);
                self.index
                    .insert_unique(table_hash(id), slot, |&s| slot_hash(nodes, text, s));
                slot
            }
        };
        if kind == EntityKind::Account {
            self.recent_account = Some((id, slot));
        }
        Some(slot)
    }

    /// Widens the node's times to `at`.
    fn widen(&mut self, slot: u32, at: u32) {
        let node = &mut self.nodes[slot as usize];
        node.first = node.first.min(at);
        node.last = node.last.max(at);
    }

    /// Records the edge in an entity's `words`: `Some(true)` when it is new. Its event is the
    /// one that made it first.
    fn upsert_edge(
        &mut self,
        words: &mut Words,
        account: u32,
        kind: EdgeKind,
        event: &str,
        at: u32,
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
        let text = self.put(event)?;
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
        let mut links: Words = self.links(&self.nodes[account as usize]).into();
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
