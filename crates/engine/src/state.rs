//! What the engine remembers across accounts (`Global`), and the parts of what it remembers per
//! account (`account::AccountState`), in bounded memory.
//!
//! Every collection has a fixed capacity; when full, the entry seen longest ago makes room.
//! Times are the events' own, and first/last-seen times are kept as minimum/maximum, so an event
//! arriving late (the contract allows ten minutes) updates them as if it had come in order.
//!
//! Per-account collections are keyed by a [`Tag`] (a keyed 64-bit hash of the IP, device, key
//! id, address or number) instead of the text: the state only ever asks "is this the same one",
//! and a tag is 8 bytes where a `String` is 24 plus its allocation. Two different texts of one
//! account share a tag with probability about n^2 / 2^65 for the n <= 64 entries of a
//! collection (below 10^-16); a chosen text matching a given one needs a second preimage of
//! SipHash (about 2^64 tries), and would only make the new text look known.

pub(crate) use crate::account::AccountState;
use crate::network::CampaignLinks;
use portcullis_core::allowlist::IpAllowList;
use portcullis_core::scope::ScopeSet;
use serde::{Deserialize, Serialize};
use siphasher::sip::SipHasher13;
use std::collections::HashMap;
use std::hash::Hasher as _;

pub(crate) const MAX_IPS: usize = 32;
pub(crate) const MAX_DEVICES: usize = 16;
pub(crate) const MAX_ADDRESSES: usize = 32;
pub(crate) const MAX_KEYS: usize = 16;
pub(crate) const MAX_AMOUNTS: usize = 64;
pub(crate) const MAX_CALLERS: usize = 16;
/// Changes decided but not yet in force, per account (a customer has a handful at most; the
/// one requested longest ago makes room, and its `change.applied` then changes nothing).
pub(crate) const MAX_WAITING: usize = 8;
/// Money movements older than this are forgotten (the longest window a feature looks at).
pub(crate) const AMOUNT_HORIZON_MS: i64 = 30 * 86_400_000;

/// The fixed SipHash key of tags. Tags are stored in checkpoints, so it never changes.
const TAG_KEY: (u64, u64) = (0x706f_7274_6375_6c6c, 0x6973_2d74_6167_7331);

/// A keyed 64-bit hash of a text, stable across versions and machines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub(crate) struct Tag(pub u64);

impl Tag {
    pub fn of(text: &str) -> Self {
        let mut hasher = SipHasher13::new_with_keys(TAG_KEY.0, TAG_KEY.1);
        hasher.write(text.as_bytes());
        Self(hasher.finish())
    }

    /// The tag of a withdrawal address in its canonical form, so that case variants of an EVM
    /// or bech32 address are one address (`portcullis_core::address`).
    pub fn of_address(address: &str) -> Self {
        Self::of(&portcullis_core::address::canonical(address))
    }
}

/// When something was first and last seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Seen {
    pub first: i64,
    pub last: i64,
}

/// A small map with a capacity; the entry with the oldest `last` is evicted to make room.
/// A boxed slice of exactly its entries (16 bytes in the state, nothing allocated while
/// empty): accounts that roam keep several IPs and devices, so an entry kept inline (as
/// until 2026-12-06) was the state's largest waste, and a vector's spare capacity the next.
/// It grows and shrinks an entry at a time.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct Recent<V> {
    entries: Box<[(Tag, Seen, V)]>,
}

impl<V: Default> Recent<V> {
    pub fn get(&self, key: Tag) -> Option<(&Seen, &V)> {
        self.entries
            .iter()
            .find(|(k, _, _)| *k == key)
            .map(|(_, s, v)| (s, v))
    }

    pub fn iter(&self) -> impl Iterator<Item = (Tag, &Seen, &V)> {
        self.entries.iter().map(|(k, s, v)| (*k, s, v))
    }

    /// Bytes on the heap.
    pub fn heap_bytes(&self) -> usize {
        std::mem::size_of_val(&*self.entries)
    }

    /// Records a sighting at `ts` and returns the value to update.
    pub fn touch(&mut self, key: Tag, ts: i64, capacity: usize) -> &mut V {
        self.touch_after(key, ts, capacity).1
    }

    /// Like `touch`, and says when the entry was last seen before (`None`: it is new).
    pub fn touch_after(&mut self, key: Tag, ts: i64, capacity: usize) -> (Option<i64>, &mut V) {
        self.touch_in(key, ts, capacity, |_| true)
    }

    /// Like `touch_after`, for a list that holds two kinds of entries (their keys tell them
    /// apart: `in_kind` says which are of `key`'s): `capacity` counts the entries of its kind,
    /// and the one of them seen longest ago makes room. The entries of each kind keep the order
    /// they would have in a list of their own (its last one takes the evicted one's place), so
    /// that ties are broken as they were when the kinds were kept apart.
    pub fn touch_in(
        &mut self,
        key: Tag,
        ts: i64,
        capacity: usize,
        in_kind: impl Fn(Tag) -> bool,
    ) -> (Option<i64>, &mut V) {
        let (at, before) = match self.entries.iter().position(|(k, _, _)| *k == key) {
            Some(at) => {
                let seen = &mut self.entries[at].1;
                let before = seen.last;
                seen.first = seen.first.min(ts);
                seen.last = seen.last.max(ts);
                (at, Some(before))
            }
            None => {
                let mut entries = std::mem::take(&mut self.entries).into_vec();
                // Of `key`'s kind: how many, the first seen longest ago, the last.
                let (mut count, mut oldest, mut last) = (0, 0, 0);
                for (i, (_, seen, _)) in entries.iter().enumerate().filter(|(_, e)| in_kind(e.0)) {
                    if count == 0 || seen.last < entries[oldest].1.last {
                        oldest = i;
                    }
                    (count, last) = (count + 1, i);
                }
                if count > 0 && count >= capacity {
                    entries.swap(oldest, last);
                    entries.remove(last);
                }
                entries.reserve_exact(1);
                entries.push((
                    key,
                    Seen {
                        first: ts,
                        last: ts,
                    },
                    V::default(),
                ));
                self.entries = entries.into_boxed_slice();
                (self.entries.len() - 1, None)
            }
        };
        (before, &mut self.entries[at].2)
    }
}

/// An optional event time in one word: `i64::MIN` stands for none. The contract's times are
/// four-digit years (`portcullis_core::time`), far from it; an `Option<i64>` is twice the size,
/// and the account state holds eight of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct When(i64);

impl Default for When {
    fn default() -> Self {
        Self::NEVER
    }
}

impl When {
    pub const NEVER: When = When(i64::MIN);

    pub fn get(self) -> Option<i64> {
        (self != Self::NEVER).then_some(self.0)
    }

    /// Keeps the later of the time held and `ts`.
    pub fn latest(&mut self, ts: i64) {
        self.0 = self.0.max(ts);
    }

    /// Keeps the earlier of the time held (if any) and `ts`.
    pub fn earliest(&mut self, ts: i64) {
        self.0 = self.get().map_or(ts, |t| t.min(ts));
    }
}

/// Whether an address may receive withdrawals, as the decisions so far left it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub(crate) enum AddressStatus {
    /// Added and allowed (or never added: the exchange let a withdrawal name it).
    #[default]
    Usable,
    /// Its `address.added` was held: not usable while the hold lasts.
    Held,
    /// Its `address.added` or a withdrawal to it was blocked: never usable.
    Blocked,
    /// A withdrawal to it was held: usable, but under review with that withdrawal (see
    /// `features::REVIEW_MS`) until a withdrawal to it goes ahead. Last, so that a checkpoint
    /// of format 9, which never holds it, reads as it was written.
    UnderReview,
}

/// An address of the account.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub(crate) struct AddressState {
    pub added_at: When,
    pub status: AddressStatus,
}

/// A key of the account as the decisions left it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct KeyState {
    pub scopes: ScopeSet,
    pub allowlist: IpAllowList,
    pub known: bool,
    pub widened_at: When,
}

/// What a waiting change will put in force when a `change.applied` names its event.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) enum WaitingChange {
    Key {
        key: Tag,
        scopes: ScopeSet,
        allowlist: IpAllowList,
    },
    Address {
        address: Tag,
    },
}

/// A change that was decided (allowed with `effective: pending`, or held) and is not in force:
/// the contract's revision 2.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Waiting {
    /// The tag of the id of the event that asked for it.
    pub event: Tag,
    pub requested_at: i64,
    pub change: WaitingChange,
}

/// A phone number or contact reduced to a comparable form: for numbers, the digits without a
/// leading international `00`; anything else (e-mail, handle, URL) in lowercase.
pub(crate) fn normalise_contact(contact: &str) -> String {
    let digits: String = contact.chars().filter(char::is_ascii_digit).collect();
    let looks_like_number = contact
        .chars()
        .all(|c| c.is_ascii_digit() || " +-().".contains(c))
        && digits.len() >= 6;
    if looks_like_number {
        digits
            .strip_prefix("00")
            .map_or(digits.clone(), str::to_owned)
    } else {
        contact.trim().to_lowercase()
    }
}

/// Market conditions, shared by all accounts.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub(crate) struct Market {
    pub ts: i64,
    pub volume_ratio: f64,
    pub volatility: f64,
}

/// How long a confirmed fraud's address or number is remembered (a year of event time).
pub(crate) const FRAUD_HORIZON_MS: i64 = 365 * 86_400_000;
/// At most this many confirmed-fraud addresses, and as many numbers (the oldest go first).
pub(crate) const MAX_FRAUD_ENTRIES: usize = 1 << 20;
/// Market reports older than this are forgotten (features read the last hour).
pub(crate) const MARKET_HORIZON_MS: i64 = 86_400_000;
/// At most this many markets (a feed naming ever new markets cannot grow the state).
pub(crate) const MAX_MARKETS: usize = 4096;

/// A set of tags, each with the time it was last named, bounded in age and in number: the
/// cross-account counterpart of `Recent`. Expired entries are swept once the set has doubled
/// since the last sweep; past `cap`, the oldest quarter goes. Either way a sweep comes after a
/// number of inserts in proportion to its cost.
#[derive(Debug, Default, Serialize, Deserialize)]
pub(crate) struct Expiring<V> {
    entries: HashMap<Tag, (i64, V)>,
    swept_len: usize,
}

impl<V> Expiring<V> {
    #[cfg(test)]
    pub fn get(&self, tag: &Tag) -> Option<&(i64, V)> {
        self.entries.get(tag)
    }

    pub fn contains(&self, tag: &Tag) -> bool {
        self.entries.contains_key(tag)
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn values(&self) -> impl Iterator<Item = &(i64, V)> {
        self.entries.values()
    }

    /// Records `value` for `tag` at `ts` (a later time wins), then sweeps what is older than
    /// `horizon` before `ts`, or beyond `cap`.
    pub fn insert(&mut self, tag: Tag, ts: i64, value: V, horizon: i64, cap: usize) {
        match self.entries.get_mut(&tag) {
            Some(entry) if entry.0 > ts => {}
            Some(entry) => *entry = (ts, value),
            None => {
                self.entries.insert(tag, (ts, value));
            }
        }
        if self.entries.len() <= (2 * self.swept_len).max(64).min(cap) {
            return;
        }
        self.entries.retain(|_, (at, _)| ts - *at <= horizon);
        if self.entries.len() > cap {
            let mut times: Vec<i64> = self.entries.values().map(|(at, _)| *at).collect();
            let cut = times.len() - cap * 3 / 4;
            let (_, oldest_kept, _) = times.select_nth_unstable(cut);
            let oldest_kept = *oldest_kept;
            self.entries.retain(|_, (at, _)| *at >= oldest_kept);
        }
        self.swept_len = self.entries.len();
    }
}

/// What is known across accounts.
#[derive(Debug, Default, Serialize, Deserialize)]
pub(crate) struct Global {
    /// The latest report per market, keyed by the tag of its name.
    pub markets: Expiring<Market>,
    /// Canonical addresses named in `fraud.confirmed` events.
    pub fraud_addresses: Expiring<()>,
    /// Tags of the normalised contacts named in `fraud.confirmed` events (compared with the
    /// tags of the numbers that called a customer; a tag collision could only add friction).
    pub fraud_contacts: Expiring<()>,
    /// Addresses and IPs that other accounts' refused actions involved this past week.
    pub campaign: CampaignLinks,
    /// The entity graph, campaign alerts and confirmed-fraud marks.
    pub network: crate::entities::Network,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recent_keeps_first_and_last_and_evicts_the_stalest() {
        let mut ips: Recent<()> = Recent::default();
        let (a, b, c) = (Tag::of("a"), Tag::of("b"), Tag::of("c"));
        ips.touch(a, 100, 2);
        ips.touch(a, 50, 2);
        ips.touch(b, 200, 2);
        assert_eq!(
            ips.get(a).map(|(s, _)| *s),
            Some(Seen {
                first: 50,
                last: 100
            })
        );
        ips.touch(c, 300, 2);
        assert!(ips.get(a).is_none(), "the stalest entry makes room");
        assert!(ips.get(b).is_some() && ips.get(c).is_some());
        assert_eq!(
            ips.heap_bytes(),
            2 * std::mem::size_of::<(Tag, Seen, ())>(),
            "no spare room"
        );
        assert_eq!(std::mem::size_of::<Recent<()>>(), 16);
    }

    #[test]
    fn two_kinds_in_one_list_keep_the_entries_and_order_of_two_lists() {
        // The same sightings into one list of two kinds and into a vector per kind kept as a
        // list of its own was until 2026-12-07 (the stalest makes room by `swap_remove`), with
        // capacities that evict and times that tie: each kind's entries are the same, in the
        // same order.
        let mut one = Recent::<()>::default();
        let mut apart: [Vec<(Tag, Seen)>; 2] = [Vec::new(), Vec::new()];
        let high = |key: Tag| key.0 >> 63 == 1;
        let mut n: u64 = 7;
        for step in 0..2000_i64 {
            n = n
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            let kind = usize::from(n >> 60 & 1 == 1);
            let key = Tag((n >> 40 & 63) | u64::from(kind == 1) << 63);
            let (ts, capacity) = (step / 3, [5, 3][kind]);
            let merged = one
                .touch_in(key, ts, capacity, |k| high(k) == (kind == 1))
                .0;
            let list = &mut apart[kind];
            let before = match list.iter().position(|(k, _)| *k == key) {
                Some(at) => {
                    let seen = &mut list[at].1;
                    let before = seen.last;
                    (seen.first, seen.last) = (seen.first.min(ts), seen.last.max(ts));
                    Some(before)
                }
                None => {
                    if list.len() >= capacity
                        && let Some(oldest) = (0..list.len()).min_by_key(|&i| list[i].1.last)
                    {
                        list.swap_remove(oldest);
                    }
                    list.push((
                        key,
                        Seen {
                            first: ts,
                            last: ts,
                        },
                    ));
                    None
                }
            };
            assert_eq!(merged, before);
        }
        for (kind, list) in apart.iter().enumerate() {
            let of_kind: Vec<(Tag, Seen)> = (one.iter())
                .filter(|(k, _, _)| high(*k) == (kind == 1))
                .map(|(k, s, _)| (k, *s))
                .collect();
            assert_eq!(&of_kind, list);
        }
    }

    #[test]
    fn times_without_a_value_read_as_none() {
        let mut when = When::default();
        assert_eq!(when.get(), None);
        when.latest(5);
        when.latest(3);
        assert_eq!(when.get(), Some(5));
        let mut first = When::NEVER;
        first.earliest(9);
        first.earliest(12);
        assert_eq!(first.get(), Some(9));
    }

    #[test]
    fn tags_are_stable_and_tell_texts_apart() {
        // Checkpoints hold tags: the function must never change.
        assert_eq!(Tag::of("198.51.100.23"), Tag::of("198.51.100.23"));
        assert_ne!(Tag::of("198.51.100.23"), Tag::of("198.51.100.24"));
        assert_eq!(Tag::of("k_3").0, 12_401_245_218_203_780_663);
    }

    #[test]
    fn contacts_compare_across_notations() {
        assert_eq!(
            normalise_contact("+44 20 7946 0018"),
            normalise_contact("00442079460018")
        );
        assert_eq!(normalise_contact("+44 (20) 7946-0018"), "442079460018");
        assert_eq!(
            normalise_contact(" Support@Example.COM "),
            "support@example.com"
        );
    }

    #[test]
    fn cross_account_sets_are_bounded_in_age_and_number() {
        let mut set: Expiring<()> = Expiring::default();
        for n in 0..10_000i64 {
            set.insert(Tag::of(&n.to_string()), n, (), 1_000, 500);
            assert!(set.len() <= 500, "never past its cap");
        }
        assert!(set.contains(&Tag::of("9999")), "the newest stay");
        assert!(!set.contains(&Tag::of("100")), "the oldest go");
        let mut aged: Expiring<()> = Expiring::default();
        for n in 0..200i64 {
            aged.insert(Tag::of(&n.to_string()), n * 100, (), 1_000, 1 << 20);
        }
        assert!(aged.len() < 200, "swept as it grew");
        assert!(aged.contains(&Tag::of("199")) && !aged.contains(&Tag::of("0")));
        let mut later: Expiring<u8> = Expiring::default();
        later.insert(Tag::of("m"), 50, 2, 1_000, 8);
        later.insert(Tag::of("m"), 40, 1, 1_000, 8);
        assert_eq!(
            later.get(&Tag::of("m")),
            Some(&(50, 2)),
            "a late report does not win"
        );
    }
}
