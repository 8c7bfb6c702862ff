//! The entity graph's expiry (`graph`): nodes and edges not seen within their kind's lifetime
//! are forgotten once the graph has doubled since the last sweep, their slots freed for reuse
//! in slot order, and the arena rewritten when half of it is texts no longer referred to.

use super::node::{EMPTY, FREE, ONE, UNUSED, value_end};
use super::{
    Arena, EDGE_WORDS, Graph, MIN_SWEEP_NODES, SLOT_MASK, Words, kind_of, put_text, put_texts,
    slot_u32, stored_len, table_hash, text_at, to_kind,
};

impl Graph {
    /// Forgets nodes and edges not seen within their kind's lifetime, once the graph has doubled.
    pub fn sweep_if_grown(&mut self, ts: i64) {
        if self.len() <= (2 * self.swept_len).max(MIN_SWEEP_NODES) {
            return;
        }
        self.sweep(ts);
    }

    pub fn sweep(&mut self, ts: i64) {
        // Whether each node lives on: not free, seen within its kind's lifetime.
        let alive: Vec<bool> = self
            .nodes
            .iter()
            .map(|n| !n.is_free() && ts - n.last_ms() <= n.kind.ttl_ms())
            .collect();
        // Entities first: an edge lives while its account does and it is recent enough.
        for slot in 0..self.nodes.len() {
            let Some(node) = self
                .nodes
                .get(slot)
                .filter(|n| alive[slot] && !n.is_account())
            else {
                continue;
            };
            let ttl = node.kind.ttl_ms();
            let (mut kept, mut dropped) = (Words::new(), 0);
            for edge in self.entity_edges(node) {
                if alive.get(edge.to() as usize).copied().unwrap_or(false)
                    && ts - edge.last_ms() <= ttl
                {
                    kept.extend_from_slice(&edge.words());
                } else {
                    dropped += stored_len(&self.text, edge.event);
                }
            }
            if dropped > 0 {
                self.garbage += dropped;
                self.store(slot_u32(slot), &kept);
            }
        }
        // Then accounts: a link lives while its entity keeps the edge.
        for slot in 0..self.nodes.len() {
            let Some(node) = self
                .nodes
                .get(slot)
                .filter(|n| alive[slot] && n.is_account())
            else {
                continue;
            };
            let links = self.links(node);
            let kept: Words = links
                .iter()
                .copied()
                .filter(|link| {
                    let entity = (*link & SLOT_MASK) as usize;
                    let key = to_kind(slot_u32(slot), kind_of(*link));
                    alive.get(entity).copied().unwrap_or(false)
                        && (self.nodes.get(entity))
                            .is_some_and(|n| self.entity_edges(n).any(|e| e.to_kind == key))
                })
                .collect();
            if kept.len() != links.len() {
                self.store(slot_u32(slot), &kept);
            }
        }
        for (slot, alive) in alive.into_iter().enumerate() {
            let Some(node) = self.nodes.get(slot) else {
                continue;
            };
            let live = alive && (node.shared() || node.layout != EMPTY);
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
            && let Ok(entry) = self.index.find_entry(table_hash(id), |&s| s == slot)
        {
            entry.remove();
        }
        let Some(node) = self.nodes.get(slot as usize) else {
            return;
        };
        let mut garbage = self.text_len(node.value);
        if !node.is_account() {
            // An expired entity's edges were not swept one by one: their event ids go with it.
            garbage += self
                .entity_edges(node)
                .map(|e| self.text_len(e.event))
                .sum::<usize>();
        }
        self.garbage += garbage;
        self.store(slot, &[]);
        self.nodes.update(slot, |node| {
            node.flags = FREE;
            node.value = 0;
        });
        self.free.push(slot);
    }

    /// Rewrites the arena with only the texts still referred to, in slot order: each value and
    /// each edge's event id (kept on the entity's side only). The index hashes values, not
    /// places: it stays.
    fn compact_text(&mut self) {
        let old = std::mem::take(&mut self.text);
        let mut text = Arena::default();
        // Every text fitted in the old arena: it fits in one no larger.
        let copy =
            |at: u32, text: &mut Arena| -> u32 { put_text(text, &text_at(&old, at)).unwrap_or(0) };
        for slot in 0..self.nodes.len() {
            let Some(mut node) = self.nodes.get(slot).filter(|n| !n.is_free()) else {
                continue;
            };
            let one = node.layout == ONE && !node.is_account();
            node.value = if one {
                // Its one edge's event stays right after its value.
                let texts = [
                    text_at(&old, node.value),
                    text_at(&old, value_end(&old, node)),
                ];
                put_texts(&mut text, &[&texts[0], &texts[1]]).unwrap_or(0)
            } else {
                copy(node.value, &mut text)
            };
            self.nodes.set(slot, node);
            let mut words = self.block_words(node);
            if node.is_account() || words.is_empty() {
                continue;
            }
            for edge in words.chunks_exact_mut(EDGE_WORDS) {
                edge[3] = copy(edge[3], &mut text);
            }
            // The same length: in the same block.
            (self.lists).write_list(node.word, node.class, &words, UNUSED);
        }
        self.text = text;
        self.garbage = 0;
    }
}
