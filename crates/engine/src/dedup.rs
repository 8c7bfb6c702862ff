//! The ids already processed, kept only as long as a duplicate can still be told from a late
//! event: a keyed 128-bit hash of each id with the event's time, forgotten once the id is older
//! than [`DEDUP_HORIZON_MS`] behind the newest event time seen.
//!
//! Why this is exact for the contract: events arrive at most ten minutes after events stamped
//! later, so every in-contract event has `ts >= newest - 10 min`; an id is only forgotten when its
//! time is more than the horizon (twenty minutes, twice the allowed lateness) behind the newest,
//! so the id of any event that can still legitimately arrive is remembered. An event older than
//! the horizon is outside the contract: either a re-sent event (a whole file sent again) or a
//! broken clock. It is reported as late and ignored, which keeps "re-sending a file changes
//! nothing" true without remembering every id ever seen.
//!
//! Memory: about 25 bytes per id of one horizon (a 16-byte hash, the time, a control byte, and
//! the table's spare room): at 1,000 events per second, 1.2 million ids, about 40 MB. The single
//! engine of the service does not use this set: its event log refuses a known id, so it calls
//! `Engine::process_unique`. Each partition of a partitioned service keeps one over the whole
//! stream (`Partition::check_id`): one such set per partition.
//!
//! Collisions: two different ids share a hash with probability about n^2 / 2^129 for n ids kept
//! (at 100,000 events per second, n = 1.2 * 10^8, giving about 2 * 10^-23); the key is fixed (hashes are in checkpoints) and public, so the ids' author could
//! search for a collision, but that author is the exchange itself, and finding one takes about
//! 2^64 tries.

use serde::{Deserialize, Serialize};
use siphasher::sip128::{Hasher128 as _, SipHasher13};
use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::hash::{BuildHasherDefault, Hasher};

/// How far behind the newest event time an id is still remembered.
pub const DEDUP_HORIZON_MS: i64 = 20 * 60_000;
/// Forgetting runs when the newest time has moved on by this much since the last pass: its
/// cost is spread over the events of an eighth of the horizon, and the table holds at most
/// nine eighths of a horizon.
const SWEEP_EVERY_MS: i64 = DEDUP_HORIZON_MS / 8;
const ID_KEY: (u64, u64) = (0x706f_7274_6375_6c6c, 0x6973_2d69_6473_3031);

/// A keyed 128-bit hash of a text, as two words (a `u128` would align table slots to 16 bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Hash128(u64, u64);

impl Hash128 {
    pub fn of(text: &str, key: (u64, u64)) -> Self {
        let mut hasher = SipHasher13::new_with_keys(key.0, key.1);
        hasher.write(text.as_bytes());
        let hash = hasher.finish128();
        Self(hash.h1, hash.h2)
    }
}

impl std::hash::Hash for Hash128 {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.0);
    }
}

/// The keys are already uniform hashes: a table uses their first word as it is.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct PreHashed(u64);

impl Hasher for PreHashed {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.0 = self.0.rotate_left(5) ^ u64::from_le_bytes(word);
        }
    }
    fn write_u64(&mut self, value: u64) {
        self.0 ^= value;
    }
}

/// A table keyed by [`Hash128`].
pub(crate) type HashTable<V> = HashMap<Hash128, V, BuildHasherDefault<PreHashed>>;

/// What the set said about an id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Check {
    New,
    Duplicate,
    /// Older than the horizon: outside the contract, ignored.
    Late,
}

/// See the module documentation.
#[derive(Debug, Default, Serialize, Deserialize)]
pub(crate) struct SeenIds {
    ids: HashTable<i64>,
    /// The newest event time seen.
    newest: i64,
    swept_at: i64,
}

impl SeenIds {
    /// Records `id` at `ts` unless it was seen before or is too late to tell.
    pub fn check(&mut self, id: &str, ts: i64) -> Check {
        if ts < self.newest.saturating_sub(DEDUP_HORIZON_MS) {
            return Check::Late;
        }
        match self.ids.entry(Hash128::of(id, ID_KEY)) {
            Entry::Occupied(_) => return Check::Duplicate,
            Entry::Vacant(slot) => {
                slot.insert(ts);
            }
        }
        if ts > self.newest {
            self.newest = ts;
            if ts - self.swept_at >= SWEEP_EVERY_MS {
                let keep_from = ts.saturating_sub(DEDUP_HORIZON_MS);
                self.ids.retain(|_, at| *at >= keep_from);
                self.swept_at = ts;
            }
        }
        Check::New
    }

    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Bytes of the table (buckets of key, time and control byte).
    pub fn size_bytes(&self) -> usize {
        self.ids.capacity() * (std::mem::size_of::<(Hash128, i64)>() + 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicates_inside_the_horizon_are_caught_and_old_ids_are_forgotten() {
        let mut seen = SeenIds::default();
        let hour = DEDUP_HORIZON_MS; // "an hour" below: one horizon
        assert_eq!(seen.check("a", 1_000), Check::New);
        assert_eq!(seen.check("a", 1_000), Check::Duplicate);
        // Ten minutes late is within the contract: new ids pass, repeats are caught.
        assert_eq!(seen.check("b", 1_000 + 600_000), Check::New);
        assert_eq!(seen.check("c", 1_000), Check::New);
        assert_eq!(seen.check("c", 1_000), Check::Duplicate);
        for step in 1..=8 {
            assert_eq!(
                seen.check(&format!("t{step}"), 1_000 + step * hour / 2),
                Check::New
            );
        }
        assert!(
            seen.len() < 6,
            "ids older than the horizon are forgotten: {}",
            seen.len()
        );
        assert_eq!(
            seen.check("a", 1_000),
            Check::Late,
            "a re-sent old event is ignored"
        );
        assert_eq!(seen.check("t8", 1_000 + 4 * hour), Check::Duplicate);
        assert_eq!(
            seen.check("t7", 1_000 + 4 * hour - hour / 2),
            Check::Duplicate
        );
    }
}
