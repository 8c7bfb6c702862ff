//! The entity graph's nodes as they are kept (`graph`), and where each node's list is.
//!
//! A node is 18 bytes, a `Cell` of nine 16-bit halves in one paged vector (two bytes' alignment,
//! no padding): its value's place in the arena, its times, one word, and its `meta` (kind,
//! flags, where its list is, the class of its block); read and written whole as a `Node`. Until 2026-12-07 (third
//! sitting) a node was 24 bytes: the one edge an entity keeps in its node (most IPs, devices
//! and addresses: one account, seen exactly when the entity was) named its event's place in a
//! word of its own, and a block's length had a word too. Now that event's text is written in
//! the arena right after the entity's value (`graph_text::put_texts`), so its place is the value's end; a
//! block's unused words hold `UNUSED`, so its length is where they start.
//!
//! An account's one link, or an entity's one edge with the node's own times and its event
//! after the value, is the node's word (`ONE`); any other list is a block of the slab
//! (`BLOCK`: the word is its place).

use super::{Arena, EDGE_WORDS, Graph, NODE_PAGE, Words};
use crate::graph::{Edge, EntityKind};
use crate::paged::Paged;
use crate::slab;
use serde::{Deserialize, Serialize};

pub(super) const SHARED: u8 = 1;
pub(super) const FREE: u8 = 2;

/// Where a node's list is (`Node::layout`): none.
pub(super) const EMPTY: u8 = 0;
/// In the node's word: an account's one link; an entity's one edge (the account's slot and
/// the kind), its times the node's own and its event's text right after the value's.
pub(super) const ONE: u8 = 1;
/// In the slab: the word is the block's place; the block's unused words are `UNUSED`.
pub(super) const BLOCK: u8 = 2;

/// A block's unused word. Never a list's word where a length is read: an account's link has
/// an edge kind below 7 in its top bits, as has an entity edge's first word.
pub(super) const UNUSED: u32 = u32::MAX;

/// Bytes a node takes.
pub(super) const NODE_BYTES: usize = std::mem::size_of::<Cell>();

/// A node as kept: value, first, last and word as two halves each (low half first), then the
/// meta.
type Cell = [u16; 9];

/// An account or an entity, or a free slot waiting to be reused, as read from its cell and
/// meta (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Node {
    /// The canonical value's place in the arena.
    pub(super) value: u32,
    pub(super) first: u32,
    pub(super) last: u32,
    pub(super) kind: EntityKind,
    pub(super) flags: u8,
    /// `EMPTY`, `ONE` or `BLOCK`.
    pub(super) layout: u8,
    /// The slab class of the block (`BLOCK`).
    pub(super) class: u8,
    /// `ONE`: the link, or the edge's account slot and kind; `BLOCK`: the block's place.
    pub(super) word: u32,
}

impl Node {
    pub(super) fn new(value: u32, kind: EntityKind, at: u32) -> Self {
        Self {
            value,
            first: at,
            last: at,
            kind,
            flags: 0,
            layout: EMPTY,
            class: 0,
            word: 0,
        }
    }
    pub fn kind(self) -> EntityKind {
        self.kind
    }
    /// Shared infrastructure: more than `SHARED_AT` accounts; keeps no more edges.
    pub fn shared(self) -> bool {
        self.flags & SHARED != 0
    }
    pub(super) fn is_free(self) -> bool {
        self.flags & FREE != 0
    }
    pub(super) fn is_account(self) -> bool {
        self.kind == EntityKind::Account
    }
    pub fn first_ms(self) -> i64 {
        super::millis(self.first)
    }
    pub fn last_ms(self) -> i64 {
        super::millis(self.last)
    }

    /// Kind (3 bits), flags (2), layout (2), class (6).
    fn meta(self) -> u16 {
        u16::from(self.kind as u8)
            | u16::from(self.flags & 3) << 3
            | u16::from(self.layout & 3) << 5
            | u16::from(self.class & 63) << 7
    }

    fn cell(self) -> Cell {
        let [v, f, l, w] = [self.value, self.first, self.last, self.word].map(halves);
        [v[0], v[1], f[0], f[1], l[0], l[1], w[0], w[1], self.meta()]
    }

    fn of(cell: Cell) -> Self {
        let meta = cell[8];
        let bits = |from: u16, width: u16| u8::try_from(meta >> from & ((1 << width) - 1));
        let kind = bits(0, 3).ok().map(usize::from);
        Self {
            value: whole(cell[0], cell[1]),
            first: whole(cell[2], cell[3]),
            last: whole(cell[4], cell[5]),
            kind: kind
                .and_then(|k| EntityKind::ALL.get(k).copied())
                .unwrap_or(EntityKind::Account),
            flags: bits(3, 2).unwrap_or(FREE),
            layout: bits(5, 2).unwrap_or(EMPTY),
            class: bits(7, 6).unwrap_or(0),
            word: whole(cell[6], cell[7]),
        }
    }
}

fn halves(word: u32) -> [u16; 2] {
    let half = |bits: u32| u16::try_from(bits & 0xFFFF).unwrap_or(0);
    [half(word), half(word >> 16)]
}

fn whole(low: u16, high: u16) -> u32 {
    u32::from(low) | u32::from(high) << 16
}

/// The nodes: a cell per slot.
#[derive(Debug, Default, Serialize, Deserialize)]
pub(super) struct Nodes {
    cells: Paged<Cell, NODE_PAGE>,
}

impl Nodes {
    pub fn len(&self) -> usize {
        self.cells.len()
    }

    pub fn get(&self, slot: usize) -> Option<Node> {
        self.cells.get(slot).map(|cell| Node::of(*cell))
    }

    pub fn set(&mut self, slot: usize, node: Node) {
        if let Some(cell) = self.cells.get_mut(slot) {
            *cell = node.cell();
        }
    }

    /// Changes the node in `slot` (if there is one) with `change`.
    pub fn update(&mut self, slot: u32, change: impl FnOnce(&mut Node)) {
        if let Some(mut node) = self.get(slot as usize) {
            change(&mut node);
            self.set(slot as usize, node);
        }
    }

    pub fn push(&mut self, node: Node) {
        self.cells.push(node.cell());
    }

    pub fn iter(&self) -> impl Iterator<Item = Node> + '_ {
        self.cells.iter().map(|cell| Node::of(*cell))
    }

    /// Bytes held: the pages.
    pub fn size_bytes(&self) -> usize {
        self.cells.size_bytes()
    }
}

/// The place right after the text of an entity's value: its one edge's event (`ONE`).
pub(super) fn value_end(text: &Arena, node: Node) -> u32 {
    let len = u32::try_from(super::stored_len(text, node.value)).unwrap_or(0);
    node.value + len
}

impl Graph {
    /// The words of a node's block, up to the first unused one.
    fn block(&self, node: Node) -> &[u32] {
        let capacity = u32::try_from(slab::capacity(node.class)).unwrap_or(0);
        let block = self.lists.get(node.word, capacity);
        let step = if node.is_account() { 1 } else { EDGE_WORDS };
        let len = (0..block.len())
            .step_by(step)
            .find(|&at| block[at] == UNUSED)
            .unwrap_or(block.len());
        &block[..len]
    }

    /// An entity's edges (to accounts), with their times.
    pub(super) fn entity_edges(&self, node: Node) -> impl Iterator<Item = Edge> + '_ {
        let inline = (node.layout == ONE && !node.is_account()).then(|| Edge {
            to_kind: node.word,
            first: node.first,
            last: node.last,
            event: value_end(&self.text, node),
        });
        let block = if node.layout == BLOCK && !node.is_account() {
            self.block(node)
        } else {
            &[]
        };
        inline
            .into_iter()
            .chain(block.chunks_exact(EDGE_WORDS).map(Edge::of_words))
    }

    /// An entity's edges as words (`EDGE_WORDS` each), to change and `store`.
    pub(super) fn entity_words(&self, slot: u32) -> Words {
        let Some(node) = self.nodes.get(slot as usize) else {
            return Words::new();
        };
        self.entity_edges(node).flat_map(|e| e.words()).collect()
    }

    /// An account's links, one word each (the entity's slot and the kind).
    pub(super) fn links(&self, node: Node) -> Words {
        match node.layout {
            _ if !node.is_account() => Words::new(),
            ONE => Words::from_slice(&[node.word]),
            BLOCK => Words::from_slice(self.block(node)),
            _ => Words::new(),
        }
    }

    /// The entity's edges as they are stored (for the arena's compaction): a block's words, or
    /// none for an edge in the node.
    pub(super) fn block_words(&self, node: Node) -> Words {
        if node.layout == BLOCK {
            Words::from_slice(self.block(node))
        } else {
            Words::new()
        }
    }

    /// How many edges it has.
    #[cfg(test)]
    pub fn degree(&self, node: Node) -> usize {
        match node.layout {
            ONE => 1,
            BLOCK if node.is_account() => self.block(node).len(),
            BLOCK => self.block(node).len() / EDGE_WORDS,
            _ => 0,
        }
    }

    /// Stores `words` as the list of the node in `slot` (an entity's edges or an account's
    /// links): in the node when they fit (an account's one link, an entity's one edge with
    /// the node's own times and its event after the value), else in its block, grown to the
    /// class that holds them (a shrinking list keeps its block). `None` when the slab cannot
    /// grow.
    pub(super) fn store(&mut self, slot: u32, words: &[u32]) -> Option<()> {
        let node = self.nodes.get(slot as usize)?;
        let inline = match words.len() {
            0 => Some((EMPTY, 0)),
            1 if node.is_account() => Some((ONE, words[0])),
            EDGE_WORDS
                if !node.is_account()
                    && words[1] == node.first
                    && words[2] == node.last
                    && words[3] == value_end(&self.text, node) =>
            {
                Some((ONE, words[0]))
            }
            _ => None,
        };
        let block = (node.layout == BLOCK).then_some((node.word, node.class));
        let (layout, class, word) = match (inline, block) {
            (Some((layout, word)), block) => {
                if let Some((at, class)) = block {
                    self.lists.free(at, class);
                }
                (layout, 0, word)
            }
            (None, Some((at, class))) if slab::capacity(class) >= words.len() => {
                self.lists.write_list(at, class, words, UNUSED);
                (BLOCK, class, at)
            }
            (None, block) => {
                let class = slab::class_of(words.len());
                let at = self.lists.alloc(class)?;
                if let Some((old, old_class)) = block {
                    self.lists.free(old, old_class);
                }
                self.lists.write_list(at, class, words, UNUSED);
                (BLOCK, class, at)
            }
        };
        self.nodes.update(slot, |node| {
            (node.layout, node.class, node.word) = (layout, class, word);
        });
        Some(())
    }
}
