//! The replay guard: remembers every accepted signature until its freshness window closes, so
//! a captured request cannot be sent a second time.
//!
//! Entries are 64-bit fingerprints rather than signatures, which keeps each entry small; an
//! entry is forgotten once its signature could no longer pass the freshness check anyway.
//! Memory is therefore about (accepted signatures per second) x (window + 2 s) x 16 to 32
//! bytes (tables run between a quarter and three quarters full).
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

use std::hash::BuildHasher;

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

/// How many seconds the horizon may advance before a table is rebuilt whatever its load.
/// Slots keep only the low 8 bits of their expiry second, read as the nearest second to the
/// horizon: every entry must stay within two minutes of it, which this and
/// [`MAX_EXPIRY_AHEAD_S`] ensure (an entry expires at most 64 s after the horizon it was written
/// at, and is either dropped or judged again within 60 s).
const MAX_TABLE_AGE_S: i64 = 60;
/// Expiry seconds further ahead of the horizon than this are brought back to it. Callers'
/// windows end at most 61 s after `now` (a 60 s `recvWindow` and 1 s of clock skew), which is
/// 63 s after the horizon.
const MAX_EXPIRY_AHEAD_S: i64 = 64;
/// The low byte of a slot holds its expiry second; the fingerprint's other 56 bits tell entries
/// apart. The fingerprint's own low byte is not kept: the verifier picks a guard shard with it,
/// so within a shard it is the same for every entry anyway.
const EXPIRY_BITS: u64 = 0xff;
/// The smallest table worth having.
const MIN_SLOTS: usize = 16;

/// Signatures seen and not yet expired: an open-addressing table of 64-bit slots, each the
/// fingerprint's high 56 bits and its expiry second's low 8, probed linearly from a home slot
/// given by the stored bits.
///
/// Nothing is removed when it expires: an expired slot is simply free for the next insertion
/// that passes it, and a rebuild (when three quarters of the slots have been used since the
/// last one, or after a minute) copies only what is live into a table at most half full. So an
/// acceptance costs one probe of a cache line or two and no bookkeeping, and forgetting costs
/// nothing until a rebuild.
///
/// A fresh signature is refused as a replay only if a live entry of its shard carries the same
/// 56 bits (the shard already fixed the other 8): with a million signatures inside the window,
/// one request in 2^44.
#[derive(Debug, Default)]
pub struct ReplayGuard {
    /// Zero is a slot unused since the last rebuild; the length is a power of two, or zero.
    slots: Box<[u64]>,
    /// Slots written since the last rebuild, live or expired.
    used: usize,
    /// Entries expiring before this second are dead. Never moves back.
    horizon_second: i64,
    rebuilt_at_second: i64,
}

impl ReplayGuard {
    pub fn new() -> Self {
        Self::default()
    }

    /// Records `fingerprint` as used until `expires_at_ms` (at most about a minute after
    /// `now_ms`; later expiries are brought back to [`MAX_EXPIRY_AHEAD_S`]). Returns `false`
    /// when it was already recorded and has not expired: the request is a replay.
    pub fn first_use(&mut self, fingerprint: Fingerprint, expires_at_ms: i64, now_ms: i64) -> bool {
        // An entry is kept until the margin after its window has passed, to cover callers whose
        // `now` readings arrive slightly out of order.
        let horizon = now_ms.saturating_sub(EVICTION_MARGIN_MS).div_euclid(1000);
        self.horizon_second = self.horizon_second.max(horizon);
        if self.slots.is_empty()
            || 4 * (self.used + 1) > 3 * self.slots.len()
            || self.horizon_second - self.rebuilt_at_second > MAX_TABLE_AGE_S
        {
            self.rebuild();
        }
        let expiry = expires_at_ms.div_euclid(1000).clamp(
            self.horizon_second - 1,
            self.horizon_second + MAX_EXPIRY_AHEAD_S,
        );
        let tag = tag_of(fingerprint);
        let mask = self.slots.len() - 1;
        let mut at = home_of(tag) & mask;
        let mut free = None;
        loop {
            let slot = self.slots[at];
            if slot == 0 {
                break;
            }
            let live = self.is_live(slot);
            if live && slot & !EXPIRY_BITS == tag {
                return false;
            }
            if !live && free.is_none() {
                free = Some(at);
            }
            at = (at + 1) & mask;
        }
        // A probe run ends at an unused slot, so reusing an expired slot earlier in the run
        // leaves every later entry reachable.
        let at = free.unwrap_or_else(|| {
            self.used += 1;
            at
        });
        self.slots[at] = tag | expiry_bits(expiry);
        true
    }

    /// Where the current table lies in memory, so that a caller can ask the processor to
    /// start loading a fingerprint's first slot before it takes the lock this guard is behind
    /// (see [`TableLayout::probe_address`]).
    pub fn layout(&self) -> TableLayout {
        TableLayout::new(self.slots.as_ptr().addr(), self.slots.len())
    }

    /// Live entries (a scan of the table).
    pub fn len(&self) -> usize {
        self.slots
            .iter()
            .filter(|&&slot| self.holds_live(slot))
            .count()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether the entry's expiry second is at or after the horizon, reading its 8 stored bits
    /// as the second nearest the horizon (see [`MAX_TABLE_AGE_S`]).
    fn is_live(&self, slot: u64) -> bool {
        let ahead = (slot & EXPIRY_BITS).wrapping_sub(expiry_bits(self.horizon_second)) as u8;
        i8::from_ne_bytes([ahead]) >= 0
    }

    /// A new table at most half full, holding the live entries of the old one. When the horizon
    /// has moved past every expiry the old table could hold, nothing is live and nothing is
    /// read (its stored bits could no longer be placed in time).
    fn rebuild(&mut self) {
        let all_expired =
            self.horizon_second - self.rebuilt_at_second > MAX_TABLE_AGE_S + MAX_EXPIRY_AHEAD_S;
        let old = std::mem::take(&mut self.slots);
        let live = if all_expired {
            0
        } else {
            old.iter().filter(|&&slot| self.holds_live(slot)).count()
        };
        let size = (2 * (live + 1)).next_power_of_two().max(MIN_SLOTS);
        self.slots = vec![0; size].into_boxed_slice();
        self.used = live;
        self.rebuilt_at_second = self.horizon_second;
        let mask = size - 1;
        for slot in old {
            if live == 0 || !self.holds_live(slot) {
                continue;
            }
            let mut at = home_of(slot) & mask;
            while self.slots[at] != 0 {
                at = (at + 1) & mask;
            }
            self.slots[at] = slot;
        }
    }

    fn holds_live(&self, slot: u64) -> bool {
        slot != 0 && self.is_live(slot)
    }
}

/// Where a guard's table lay when it was last asked: an address and nothing more (the table
/// may since have been rebuilt elsewhere), good only as a prefetch hint. Packed into 64 bits
/// (the address in the low 56, the table's length as a power of two above it) so that a
/// caller can keep it in one atomic word beside the lock.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TableLayout(u64);

impl TableLayout {
    const ADDRESS_BITS: u64 = (1 << 56) - 1;

    /// A table of `len` slots (zero or a power of two) starting at `base`. Addresses above
    /// 2^56, which no current processor hands out, lose their high bits: the hint is then
    /// wrong, which costs a wasted load and nothing else.
    fn new(base: usize, len: usize) -> Self {
        let log2_len = u64::from(len.max(1).trailing_zeros());
        Self((base as u64 & Self::ADDRESS_BITS) | (log2_len << 56))
    }

    pub fn from_bits(bits: u64) -> Self {
        Self(bits)
    }

    pub fn to_bits(self) -> u64 {
        self.0
    }

    fn base(self) -> usize {
        usize::try_from(self.0 & Self::ADDRESS_BITS).unwrap_or_default()
    }

    fn mask(self) -> usize {
        (1usize << (self.0 >> 56)) - 1
    }

    /// The address of the slot where `fingerprint`'s probe starts.
    pub fn probe_address(self, fingerprint: Fingerprint) -> usize {
        let slot = home_of(tag_of(fingerprint)) & self.mask();
        self.base()
            .wrapping_add(slot.wrapping_mul(std::mem::size_of::<u64>()))
    }
}

/// The bits of a fingerprint a slot keeps (never zero, which marks an unused slot).
fn tag_of(fingerprint: Fingerprint) -> u64 {
    match fingerprint & !EXPIRY_BITS {
        0 => EXPIRY_BITS + 1,
        tag => tag,
    }
}

/// Where a probe starts, from the bits a slot keeps, so a rebuild places a stored slot where an
/// insertion looks for its fingerprint.
fn home_of(tag_or_slot: u64) -> usize {
    // Truncation on narrower targets still leaves random bits.
    #[allow(clippy::cast_possible_truncation)]
    let home = (tag_or_slot >> 8) as usize;
    home
}

/// The low 8 bits of a second, as a slot keeps them (see `is_live`).
fn expiry_bits(second: i64) -> u64 {
    #[allow(clippy::cast_sign_loss)]
    let bits = second as u64 & EXPIRY_BITS;
    bits
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Fingerprints as the verifier makes them: every bit random-looking.
    fn fp(n: u64) -> Fingerprint {
        n.wrapping_add(1).wrapping_mul(0x9e37_79b9_7f4a_7c15)
    }

    #[test]
    fn second_use_inside_window_is_refused() {
        let mut guard = ReplayGuard::new();
        assert!(guard.first_use(fp(7), 10_000, 5_000));
        assert!(!guard.first_use(fp(7), 10_000, 6_000));
        assert!(guard.first_use(fp(8), 10_000, 6_000));
    }

    #[test]
    fn the_low_byte_is_left_to_sharding() {
        let mut guard = ReplayGuard::new();
        assert!(guard.first_use(fp(7), 10_000, 5_000));
        assert!(
            !guard.first_use(fp(7) ^ 0xff, 10_000, 5_000),
            "a shard's entries share their low byte, so it is not stored"
        );
        assert!(guard.first_use(fp(7) ^ 0x100, 10_000, 5_000));
    }

    #[test]
    fn the_layout_points_at_the_slot_where_a_probe_starts() {
        let mut guard = ReplayGuard::new();
        assert!(guard.first_use(fp(7), 10_000, 5_000));
        let layout = guard.layout();
        assert_eq!(layout.base(), guard.slots.as_ptr().addr());
        assert_eq!(layout.mask(), guard.slots.len() - 1);
        assert_eq!(TableLayout::from_bits(layout.to_bits()), layout);
        let stored = guard.slots.iter().position(|&slot| slot != 0);
        let home = (layout.probe_address(fp(7)) - layout.base()) / 8;
        assert_eq!(
            stored,
            Some(home),
            "alone in its table, an entry sits at its home"
        );
        assert_eq!(
            ReplayGuard::new().layout().mask(),
            0,
            "an empty guard has no table to point into"
        );
    }

    #[test]
    fn entries_expire_after_their_window() {
        let mut guard = ReplayGuard::new();
        assert!(guard.first_use(fp(7), 10_000, 5_000));
        assert!(guard.first_use(fp(9), 30_000, 20_000));
        assert_eq!(guard.len(), 1, "the first entry is forgotten");
        assert!(
            guard.first_use(fp(7), 30_000, 20_000),
            "and may be used again"
        );
    }

    #[test]
    fn out_of_order_windows_are_evicted_in_time() {
        let mut guard = ReplayGuard::new();
        assert!(guard.first_use(fp(1), 65_000, 5_000));
        assert!(guard.first_use(fp(2), 10_000, 5_000));
        assert!(guard.first_use(fp(3), 30_000, 5_000));
        assert!(guard.first_use(fp(4), 30_500, 5_000));
        assert!(guard.first_use(fp(5), 90_000, 40_000));
        assert_eq!(
            guard.len(),
            2,
            "only the entries whose windows are still open remain"
        );
        assert!(!guard.first_use(fp(1), 65_000, 40_000));
    }

    #[test]
    fn a_busy_table_grows_and_forgets_as_time_passes() {
        let mut guard = ReplayGuard::new();
        for second in 0..600_i64 {
            let now = 1_767_225_600_000 + second * 1000;
            for n in 0..200 {
                let id = u64::try_from(second * 200 + n).unwrap_or_default();
                assert!(guard.first_use(fp(id), now + 5_000, now));
                assert!(!guard.first_use(fp(id), now + 5_000, now));
            }
            assert!(
                guard.len() <= 200 * 8,
                "at second {second}: {}",
                guard.len()
            );
        }
        assert!(guard.slots.len() <= 4096, "{} slots", guard.slots.len());
    }

    #[test]
    fn a_long_silence_forgets_everything() {
        let mut guard = ReplayGuard::new();
        assert!(guard.first_use(fp(1), 65_000, 5_000));
        // 256 s later the stored expiry byte reads as live again; the table must know better.
        assert!(guard.first_use(fp(2), 321_000, 261_000));
        assert!(guard.first_use(fp(1), 321_000, 261_000));
        assert!(guard.first_use(fp(3), 10_000_065_000, 10_000_005_000));
        assert!(guard.first_use(fp(1), 10_000_065_000, 10_000_005_000));
        assert_eq!(guard.len(), 2);
    }

    /// What the guard must answer: a map from stored bits to expiry second, an entry live while
    /// its second is at or after the horizon.
    #[derive(Default)]
    struct Reference {
        expiries: std::collections::HashMap<u64, i64>,
        horizon: i64,
    }

    impl Reference {
        fn first_use(&mut self, fingerprint: Fingerprint, expires_at_ms: i64, now_ms: i64) -> bool {
            self.horizon = self
                .horizon
                .max((now_ms - EVICTION_MARGIN_MS).div_euclid(1000));
            let key = fingerprint & !EXPIRY_BITS;
            if self.expiries.get(&key).is_some_and(|&e| e >= self.horizon) {
                return false;
            }
            let expiry = expires_at_ms
                .div_euclid(1000)
                .clamp(self.horizon - 1, self.horizon + MAX_EXPIRY_AHEAD_S);
            self.expiries.insert(key, expiry);
            true
        }

        fn live(&self) -> usize {
            self.expiries
                .values()
                .filter(|&&e| e >= self.horizon)
                .count()
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::test_runner::Config::with_cases(200))]
        #[test]
        fn answers_as_the_reference_does(
            steps in proptest::collection::vec(
                (0u64..400, 0i64..61_000, proptest::prop_oneof![
                    8 => 0i64..300,
                    2 => -3_000i64..0,
                    1 => 0i64..400_000,
                ]),
                1..3000,
            ),
        ) {
            let mut guard = ReplayGuard::new();
            let mut reference = Reference::default();
            let mut now = 1_767_225_600_000i64;
            for (step, (id, window, advance)) in steps.into_iter().enumerate() {
                now += advance;
                let fingerprint = fp(id);
                proptest::prop_assert_eq!(
                    guard.first_use(fingerprint, now + window, now),
                    reference.first_use(fingerprint, now + window, now),
                    "step {}", step
                );
            }
            proptest::prop_assert_eq!(guard.len(), reference.live());
        }
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
