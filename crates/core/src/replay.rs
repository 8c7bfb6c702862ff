//! The replay guard: remembers every accepted signature until its freshness window closes, so
//! a captured request cannot be sent a second time.
//!
//! Entries are fingerprints (128 bits of a keyed hash) rather than signatures, which keeps each
//! entry small; an entry is dropped once its signature could no longer pass the freshness
//! check anyway. Memory is therefore about (accepted signatures per second) x (window) x 40
//! bytes. The guard is single-threaded; callers shard it.

use std::collections::{BTreeMap, HashMap};
use std::hash::BuildHasher;

/// How long after its window closes an entry is kept, to cover callers whose `now` readings
/// arrive slightly out of order.
const EVICTION_MARGIN_MS: i64 = 2_000;

/// A fingerprint of (key, signature).
pub type Fingerprint = u128;

/// Seeds for fingerprints, chosen randomly per process so an attacker cannot aim collisions.
#[derive(Debug, Clone)]
pub struct FingerprintSeed {
    first: foldhash::quality::FixedState,
    second: foldhash::quality::FixedState,
}

impl FingerprintSeed {
    pub fn new(seed: [u64; 2]) -> Self {
        Self {
            first: foldhash::quality::FixedState::with_seed(seed[0]),
            second: foldhash::quality::FixedState::with_seed(seed[1]),
        }
    }

    /// Fingerprint of a decoded signature, so that two spellings of one signature (hex in
    /// upper or lower case) count as the same use.
    pub fn fingerprint(&self, key_id: &str, signature: &[u8]) -> Fingerprint {
        let high = self.first.hash_one((key_id, signature));
        let low = self.second.hash_one((key_id, signature));
        (u128::from(high) << 64) | u128::from(low)
    }
}

/// Signatures seen and not yet expired.
#[derive(Debug, Default)]
pub struct ReplayGuard {
    seen: HashMap<Fingerprint, i64, foldhash::fast::RandomState>,
    by_expiry_second: BTreeMap<i64, Vec<Fingerprint>>,
    latest_now_ms: i64,
}

impl ReplayGuard {
    pub fn new() -> Self {
        Self::default()
    }

    /// Records `fingerprint` as used until `expires_at_ms`. Returns `false` when it was already
    /// recorded and has not expired: the request is a replay.
    pub fn first_use(&mut self, fingerprint: Fingerprint, expires_at_ms: i64, now_ms: i64) -> bool {
        self.evict_expired(now_ms);
        if let Some(&existing) = self.seen.get(&fingerprint)
            && existing >= now_ms.saturating_sub(EVICTION_MARGIN_MS)
        {
            return false;
        }
        self.seen.insert(fingerprint, expires_at_ms);
        self.by_expiry_second
            .entry(expires_at_ms.div_euclid(1000))
            .or_default()
            .push(fingerprint);
        true
    }

    pub fn len(&self) -> usize {
        self.seen.len()
    }

    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }

    fn evict_expired(&mut self, now_ms: i64) {
        if now_ms <= self.latest_now_ms {
            return;
        }
        self.latest_now_ms = now_ms;
        let horizon_second = (now_ms - EVICTION_MARGIN_MS).div_euclid(1000);
        while let Some(entry) = self.by_expiry_second.first_entry() {
            if *entry.key() >= horizon_second {
                break;
            }
            for fingerprint in entry.remove() {
                self.seen.remove(&fingerprint);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_use_inside_window_is_refused() {
        let mut guard = ReplayGuard::new();
        assert!(guard.first_use(7, 10_000, 5_000));
        assert!(!guard.first_use(7, 10_000, 6_000));
        assert!(guard.first_use(8, 10_000, 6_000));
    }

    #[test]
    fn entries_expire_after_their_window() {
        let mut guard = ReplayGuard::new();
        assert!(guard.first_use(7, 10_000, 5_000));
        assert!(guard.first_use(9, 30_000, 20_000));
        assert_eq!(guard.len(), 1, "the first entry is evicted");
    }

    #[test]
    fn fingerprints_separate_keys_and_signatures() {
        let seed = FingerprintSeed::new([1, 2]);
        assert_eq!(seed.fingerprint("k", b"ab"), seed.fingerprint("k", b"ab"));
        assert_ne!(seed.fingerprint("k", b"ab"), seed.fingerprint("j", b"ab"));
        assert_ne!(seed.fingerprint("k", b"ab"), seed.fingerprint("k", b"aB"));
    }
}
