//! The replay guard: remembers every accepted signature until its freshness window closes, so
//! a captured request cannot be sent a second time.
//!
//! Entries are 64-bit fingerprints rather than signatures, which keeps each entry small; an
//! entry is dropped once its signature could no longer pass the freshness check anyway. Memory
//! is therefore about (accepted signatures per second) x (window) x 24 bytes.
//!
//! A fingerprint is the verified signature itself folded to 64 bits, XORed with a salt per key
//! (a keyed hash of the key id, computed once per key). No hash runs per request: only valid
//! signatures are fingerprinted, and a valid HMAC tag (or Ed25519 signature) is already
//! unpredictable to anyone without the key's secret, so its bits are as good as a hash's. The
//! salt keeps keys apart (one signature under two keys sharing a secret is two uses) and, being
//! secret, keeps anyone from aiming one key's fingerprints at another's. A collision would
//! refuse a fresh request as a replay: with a million signatures inside the window, one request
//! in 2^44 (about 1 in 18 trillion); the client retries with a new timestamp. Only the key's
//! own holder can compute its signatures, so grinding for collisions harms nobody else. The
//! guard is single-threaded; callers shard it.

use std::collections::{HashSet, VecDeque};
use std::hash::{BuildHasher, BuildHasherDefault, Hasher};

/// How long after its window closes an entry is kept, to cover callers whose `now` readings
/// arrive slightly out of order.
const EVICTION_MARGIN_MS: i64 = 2_000;

/// A fingerprint of (key, signature).
pub type Fingerprint = u64;

/// Seeds for fingerprints, chosen randomly per process so an attacker cannot aim collisions.
#[derive(Debug, Clone)]
pub struct FingerprintSeed {
    state: foldhash::quality::FixedState,
}

impl FingerprintSeed {
    pub fn new(seed: u64) -> Self {
        Self {
            state: foldhash::quality::FixedState::with_seed(seed),
        }
    }

    /// The salt of one key's fingerprints; compute it once per key, not per request.
    pub fn key_salt(&self, key_id: &str) -> KeySalt {
        KeySalt(self.state.hash_one(key_id))
    }

    /// Fingerprint of a decoded signature, so that two spellings of one signature (hex in
    /// upper or lower case) count as the same use.
    pub fn fingerprint(&self, key_id: &str, signature: &[u8]) -> Fingerprint {
        self.key_salt(key_id).fingerprint(signature)
    }
}

/// What separates one key's fingerprints from every other key's (see the module header).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeySalt(u64);

impl KeySalt {
    /// The decoded, verified signature folded into 64 bits (every byte counts), with the salt.
    pub fn fingerprint(self, signature: &[u8]) -> Fingerprint {
        let mut words = signature.chunks_exact(8);
        let mut folded = self.0;
        for word in &mut words {
            folded ^= u64::from_le_bytes(<[u8; 8]>::try_from(word).unwrap_or_default());
        }
        for (at, &byte) in words.remainder().iter().enumerate() {
            folded ^= u64::from(byte) << (8 * at);
        }
        folded
    }
}

/// Fingerprints are already uniformly random: hashing them again would only cost time.
#[derive(Debug, Default)]
pub struct FingerprintHasher(u64);

impl Hasher for FingerprintHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(byte);
        }
    }

    fn write_u64(&mut self, value: u64) {
        self.0 = value;
    }
}

/// Signatures seen and not yet expired.
#[derive(Debug, Default)]
pub struct ReplayGuard {
    seen: HashSet<Fingerprint, BuildHasherDefault<FingerprintHasher>>,
    /// Fingerprints grouped by the second their window closes, oldest first.
    by_expiry_second: VecDeque<(i64, Vec<Fingerprint>)>,
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
        // Present means used and not yet evicted, i.e. inside its window (plus the margin);
        // a signature whose window has closed never gets here, the freshness check refuses it.
        if !self.seen.insert(fingerprint) {
            return false;
        }
        self.remember_expiry(expires_at_ms.div_euclid(1000), fingerprint);
        true
    }

    /// Files the fingerprint under its expiry second. Windows close in nearly increasing
    /// order, so the newest group almost always takes it.
    fn remember_expiry(&mut self, second: i64, fingerprint: Fingerprint) {
        if let Some((last, group)) = self.by_expiry_second.back_mut()
            && *last == second
        {
            group.push(fingerprint);
            return;
        }
        let at = self.by_expiry_second.partition_point(|(s, _)| *s < second);
        match self.by_expiry_second.get_mut(at) {
            Some((s, group)) if *s == second => group.push(fingerprint),
            _ => self
                .by_expiry_second
                .insert(at, (second, vec![fingerprint])),
        }
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
        while self
            .by_expiry_second
            .front()
            .is_some_and(|(second, _)| *second < horizon_second)
        {
            if let Some((_, group)) = self.by_expiry_second.pop_front() {
                for fingerprint in group {
                    self.seen.remove(&fingerprint);
                }
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
    fn out_of_order_windows_are_evicted_in_time() {
        let mut guard = ReplayGuard::new();
        assert!(guard.first_use(1, 65_000, 5_000));
        assert!(guard.first_use(2, 10_000, 5_000));
        assert!(guard.first_use(3, 30_000, 5_000));
        assert!(guard.first_use(4, 30_500, 5_000));
        assert!(guard.first_use(5, 90_000, 40_000));
        assert_eq!(
            guard.len(),
            2,
            "only the entries whose windows are still open remain"
        );
        assert!(!guard.first_use(1, 65_000, 40_000));
    }

    #[test]
    fn fingerprints_separate_keys_and_signatures() {
        let seed = FingerprintSeed::new(12);
        assert_eq!(seed.fingerprint("k", b"ab"), seed.fingerprint("k", b"ab"));
        assert_ne!(seed.fingerprint("k", b"ab"), seed.fingerprint("j", b"ab"));
        assert_ne!(seed.fingerprint("k", b"ab"), seed.fingerprint("k", b"aB"));
        assert_ne!(
            FingerprintSeed::new(13).fingerprint("k", b"ab"),
            seed.fingerprint("k", b"ab"),
            "the seed keys the salt"
        );
    }

    #[test]
    fn every_byte_of_a_signature_counts() {
        let salt = FingerprintSeed::new(5).key_salt("k_1");
        let tag = [0x5au8; 32];
        let ed25519 = [0xa5u8; 64];
        for signature in [&tag[..], &ed25519[..], &tag[..31]] {
            for at in 0..signature.len() {
                let mut changed = signature.to_vec();
                changed[at] ^= 0x01;
                assert_ne!(
                    salt.fingerprint(&changed),
                    salt.fingerprint(signature),
                    "byte {at} of {}",
                    signature.len()
                );
            }
        }
    }
}
