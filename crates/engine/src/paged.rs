//! A growable sequence kept in pages of a fixed length (`Paged`): the entity graph's nodes, its
//! slab of lists and its arena of texts, which grow with every tracked account.
//!
//! A vector grows by doubling: it copies itself into an allocation twice its size and frees
//! the old one. With hundreds of thousands of nodes that is a spare half on average, and, with
//! the allocator the binary ships with (mimalloc), the freed buffers of earlier doublings stay
//! resident for a while (measured on 2026-12-07: a vector of 707,724 nodes of 24 bytes grown by
//! pushes left 43 MB resident for 17 MB of nodes, 28 MB when mimalloc purges at once;
//! docs/benchmarks.md). Pages are never moved or freed while the sequence lives: what is
//! resident is what is held, plus at most the page being filled (an allocation is resident
//! only where written). The graph's pages are of 1 MiB or more: pages of 64 KiB to 128 KiB,
//! which mimalloc keeps several to a page of its own, measured more resident memory per
//! account on the replay bench's single mix than the vectors they replaced.
//!
//! A position is the same as in a vector (page number times the page length, plus the place in
//! the page). A run of values that must be read as one slice (a text, a list) never straddles
//! two pages: `alloc` pads the rest of the page when the run does not fit, so the padding is
//! part of the sequence and of its serialized form. That form is a plain sequence of the
//! values, as a vector's, and reading it back cuts it into the same pages: positions are kept.

use serde::de::{SeqAccess, Visitor};
use serde::ser::SerializeSeq;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::marker::PhantomData;

/// See the module documentation. `PAGE` values a page.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Paged<T, const PAGE: usize> {
    /// Every page but the last is full; each is allocated at `PAGE` values and never grown.
    pages: Vec<Vec<T>>,
    len: usize,
}

impl<T, const PAGE: usize> Default for Paged<T, PAGE> {
    fn default() -> Self {
        Self {
            pages: Vec::new(),
            len: 0,
        }
    }
}

impl<T, const PAGE: usize> Paged<T, PAGE> {
    pub fn len(&self) -> usize {
        self.len
    }

    /// Appends a value; returns its position.
    pub fn push(&mut self, value: T) -> usize {
        let at = self.len;
        match self.pages.last_mut() {
            Some(page) if page.len() < PAGE => page.push(value),
            _ => {
                let mut page = Vec::with_capacity(PAGE);
                page.push(value);
                self.pages.push(page);
            }
        }
        self.len += 1;
        at
    }

    pub fn get(&self, at: usize) -> Option<&T> {
        self.pages.get(at / PAGE)?.get(at % PAGE)
    }

    pub fn get_mut(&mut self, at: usize) -> Option<&mut T> {
        self.pages.get_mut(at / PAGE)?.get_mut(at % PAGE)
    }

    /// The `len` values from `at`, if they are held and in one page (as `alloc` places them).
    pub fn slice(&self, at: usize, len: usize) -> Option<&[T]> {
        let (page, from) = (at / PAGE, at % PAGE);
        self.pages.get(page)?.get(from..from.checked_add(len)?)
    }

    pub fn slice_mut(&mut self, at: usize, len: usize) -> Option<&mut [T]> {
        let (page, from) = (at / PAGE, at % PAGE);
        self.pages
            .get_mut(page)?
            .get_mut(from..from.checked_add(len)?)
    }

    pub fn iter(&self) -> impl Iterator<Item = &T> {
        self.pages.iter().flatten()
    }

    /// Bytes held: whole pages, and the list of them.
    pub fn size_bytes(&self) -> usize {
        self.pages.len() * PAGE * std::mem::size_of::<T>()
            + self.pages.capacity() * std::mem::size_of::<Vec<T>>()
    }
}

impl<T: Clone + Default, const PAGE: usize> Paged<T, PAGE> {
    /// Appends `len` default values in one page, after padding the rest of the last page with
    /// default values when they would not fit in it; returns the first one's position (`None`
    /// for more than a page).
    pub fn alloc(&mut self, len: usize) -> Option<usize> {
        if len > PAGE {
            return None;
        }
        if let Some(page) = self.pages.last_mut()
            && page.len() + len > PAGE
        {
            self.len += PAGE - page.len();
            page.resize(PAGE, T::default());
        }
        let at = self.len;
        match self.pages.last_mut() {
            Some(page) if page.len() + len <= PAGE => page.resize(page.len() + len, T::default()),
            _ => {
                let mut page = Vec::with_capacity(PAGE);
                page.resize(len, T::default());
                self.pages.push(page);
            }
        }
        self.len += len;
        Some(at)
    }
}

impl<T, const PAGE: usize> std::ops::Index<usize> for Paged<T, PAGE> {
    type Output = T;
    fn index(&self, at: usize) -> &T {
        &self.pages[at / PAGE][at % PAGE]
    }
}

impl<T, const PAGE: usize> std::ops::IndexMut<usize> for Paged<T, PAGE> {
    fn index_mut(&mut self, at: usize) -> &mut T {
        &mut self.pages[at / PAGE][at % PAGE]
    }
}

impl<T: Serialize, const PAGE: usize> Serialize for Paged<T, PAGE> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut seq = serializer.serialize_seq(Some(self.len))?;
        for value in self.iter() {
            seq.serialize_element(value)?;
        }
        seq.end()
    }
}

impl<'de, T: Deserialize<'de>, const PAGE: usize> Deserialize<'de> for Paged<T, PAGE> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Pages<T, const PAGE: usize>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>, const PAGE: usize> Visitor<'de> for Pages<T, PAGE> {
            type Value = Paged<T, PAGE>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a sequence")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut paged = Paged::default();
                while let Some(value) = seq.next_element()? {
                    paged.push(value);
                }
                Ok(paged)
            }
        }
        deserializer.deserialize_seq(Pages(PhantomData))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_are_a_vectors_and_runs_never_straddle_pages() {
        let mut paged: Paged<u32, 4> = Paged::default();
        assert_eq!(
            (0..6).map(|n| paged.push(n)).collect::<Vec<_>>(),
            vec![0, 1, 2, 3, 4, 5]
        );
        assert_eq!((paged.get(5), paged[4]), (Some(&5), 4));
        assert_eq!(paged.alloc(3), Some(8), "the page's last two are padding");
        assert_eq!(paged.len(), 11);
        assert_eq!(paged.slice(4, 4), Some(&[4, 5, 0, 0][..]));
        assert_eq!(paged.slice(6, 3), None, "a run is read within its page");
        if let Some(run) = paged.slice_mut(8, 3) {
            run.copy_from_slice(&[7, 8, 9]);
        }
        assert_eq!(paged.alloc(1), Some(11), "fits: no padding");
        assert_eq!(paged.alloc(5), None, "longer than a page");
        assert_eq!(paged.size_bytes(), 3 * 4 * 4 + paged.pages.capacity() * 24);
        let bytes = postcard::to_allocvec(&paged).unwrap_or_default();
        let flat: Vec<u32> = paged.iter().copied().collect();
        assert_eq!(
            bytes,
            postcard::to_allocvec(&flat).unwrap_or_default(),
            "a vector's form"
        );
        let back: Paged<u32, 4> = postcard::from_bytes(&bytes).unwrap_or_default();
        assert_eq!(back, paged);
        assert_eq!(back.slice(8, 3), Some(&[7, 8, 9][..]));
    }
}
