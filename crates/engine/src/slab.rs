//! Lists of 32-bit words kept in one vector: the entity graph's edge lists that do not fit in
//! their node (see `graph`).
//!
//! Each list lives in a block of a size class (4, 6, 8, 12, 16, 24, 32 ... words: each class
//! 1.33 or 1.5 times the one before); a freed block waits, per class, for the next list of its
//! size. One vector rather than one heap allocation per list: no allocator rounding or
//! bookkeeping per list, and no allocator pages left partly filled as hundreds of thousands
//! of lists grow through the same sizes at the same pace. Blocks are handed out and reused in
//! the order of the calls, so the same calls give the same bytes (checkpoints of one feed are
//! the same on every replay). The vector is paged (`paged`): it never moves, and a block never
//! straddles two pages (the rest of a page a block does not fit in is left unused).

use crate::paged::Paged;
use serde::{Deserialize, Serialize};

/// No free block of a class.
const NONE: u32 = u32::MAX;
/// Classes past this are never asked for (a graph list holds at most a few thousand words).
const MAX_CLASS: u8 = 40;
/// Words a page holds (1 MiB): far more than the longest graph list (an entity's edges, at
/// most `SHARED_AT` accounts with a few kinds each, four words an edge).
const PAGE: usize = 1 << 18;

/// Words a block of `class` holds.
pub(crate) fn capacity(class: u8) -> usize {
    let class = usize::from(class.min(MAX_CLASS));
    (4 + 2 * (class & 1)) << (class / 2)
}

/// The smallest class that holds `len` words.
pub(crate) fn class_of(len: usize) -> u8 {
    (0..MAX_CLASS)
        .find(|&class| capacity(class) >= len)
        .unwrap_or(MAX_CLASS)
}

/// See the module documentation.
#[derive(Debug, Default, Serialize, Deserialize)]
pub(crate) struct Slab {
    words: Paged<u32, PAGE>,
    /// Per class, the first free block (its first word is the next one's place), or `NONE`.
    free: Vec<u32>,
}

impl Slab {
    /// The `len` words of the block at `at`.
    pub fn get(&self, at: u32, len: u32) -> &[u32] {
        self.words.slice(at as usize, len as usize).unwrap_or(&[])
    }

    /// Writes `list` into the block at `at` of `class` (which holds it), and `unused` into
    /// the rest of the block.
    pub fn write_list(&mut self, at: u32, class: u8, list: &[u32], unused: u32) {
        if let Some(block) = self.words.slice_mut(at as usize, capacity(class)) {
            let (head, rest) = block.split_at_mut(list.len().min(block.len()));
            head.copy_from_slice(&list[..head.len()]);
            rest.fill(unused);
        }
    }

    /// A block of `class`: a freed one if there is one, else a new one at the end; `None`
    /// when the places (32 bits) run out or the class is longer than a page.
    pub fn alloc(&mut self, class: u8) -> Option<u32> {
        let head = self.free.get(usize::from(class)).copied().unwrap_or(NONE);
        if head != NONE {
            let next = self.words.get(head as usize).copied().unwrap_or(NONE);
            self.free[usize::from(class)] = next;
            if let Some(word) = self.words.get_mut(head as usize) {
                *word = 0;
            }
            return Some(head);
        }
        // The end after padding, at most, must be a 32-bit place.
        u32::try_from(self.words.len() + PAGE + capacity(class)).ok()?;
        let at = self.words.alloc(capacity(class))?;
        u32::try_from(at).ok()
    }

    /// Gives the block at `at` of `class` back: zeroed, first in its class's free list.
    pub fn free(&mut self, at: u32, class: u8) {
        let (start, class_at) = (at as usize, usize::from(class));
        if let Some(block) = self.words.slice_mut(start, capacity(class)) {
            block.fill(0);
            block[0] = self.free.get(class_at).copied().unwrap_or(NONE);
        }
        if self.free.len() <= class_at {
            self.free.resize(class_at + 1, NONE);
        }
        self.free[class_at] = at;
    }

    /// Bytes of the vector so far (pages being filled: only up to their end).
    pub fn used_bytes(&self) -> usize {
        self.words.len() * 4
    }

    /// Bytes held.
    pub fn size_bytes(&self) -> usize {
        self.words.size_bytes() + self.free.capacity() * 4
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_grow_by_a_third_or_a_half_and_hold_what_they_are_asked_for() {
        let sizes: Vec<usize> = (0..8).map(capacity).collect();
        assert_eq!(sizes, vec![4, 6, 8, 12, 16, 24, 32, 48]);
        for len in 0..5000 {
            let class = class_of(len);
            assert!(capacity(class) >= len);
            assert!(class == 0 || capacity(class - 1) < len, "{len}");
        }
    }

    #[test]
    fn freed_blocks_are_reused_by_class_last_freed_first() {
        let mut slab = Slab::default();
        let a = slab.alloc(0).unwrap_or(NONE);
        let b = slab.alloc(1).unwrap_or(NONE);
        let c = slab.alloc(0).unwrap_or(NONE);
        assert_eq!((a, b, c), (0, 4, 10));
        slab.write_list(a, 0, &[1, 2, 3], 9);
        assert_eq!(
            slab.get(a, 4),
            &[1, 2, 3, 9],
            "the rest of the block is filled"
        );
        slab.free(a, 0);
        slab.free(c, 0);
        assert_eq!(
            slab.alloc(1),
            Some(14),
            "another class's free block is not taken"
        );
        assert_eq!(slab.alloc(0), Some(c));
        assert_eq!(slab.alloc(0), Some(a));
        assert_eq!(
            slab.get(a, 4),
            &[0, 0, 0, 0],
            "a freed block comes back zeroed"
        );
        assert_eq!(slab.alloc(0), Some(20));
    }

    #[test]
    fn a_block_that_does_not_fit_in_the_rest_of_a_page_starts_the_next() {
        let mut slab = Slab::default();
        let mut last = 0;
        for _ in 0..PAGE / 6 {
            last = slab.alloc(1).unwrap_or(NONE);
        }
        assert_eq!(last as usize, PAGE - 4 - 6, "four words of the page left");
        let page = u32::try_from(PAGE).unwrap_or(0);
        assert_eq!(slab.alloc(1), Some(page), "six do not fit");
        assert_eq!(slab.alloc(0), Some(page + 6));
        slab.write_list(page, 1, &[1, 2, 3, 4, 5, 6], 9);
        assert_eq!(slab.get(page, 6), &[1, 2, 3, 4, 5, 6]);
        assert_eq!(slab.alloc(class_of(PAGE + 1)), None, "longer than a page");
    }
}
