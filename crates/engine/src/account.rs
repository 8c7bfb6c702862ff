//! One account's state (`AccountState`): where and when it was seen, its keys and addresses,
//! its money movements, and, boxed apart because few accounts ever have them (`Seldom`), its
//! calls, reports, remote-access sessions, waiting changes and IPv6 addresses.
//!
//! Laid out for memory: the state is what every tracked account costs, on a roaming feed
//! (accounts with 2-5 IPs and devices, several keys and addresses) about half of it before
//! 2026-12-06, seventh session (docs/benchmarks.md). Lists are boxed slices of exactly their
//! entries; an IPv4 address is its own key in the IP list, so the list needs no room for the
//! address an allow-list check reads; optional times are one word (`When`). The IPs and the
//! devices are one list, the withdrawals and deposits another (`amounts`): 96 bytes, one of
//! the allocator's size classes, where two lists each made it 128 (2026-12-07, branch `mem3`).

use crate::amounts::Amounts;
use crate::state::{
    AddressState, KeyState, MAX_DEVICES, MAX_IPS, MAX_WAITING, Recent, Seen, Tag, Waiting, When,
};
use serde::{Deserialize, Serialize};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Everything remembered about one account.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct AccountState {
    pub first_seen: When,
    /// The IPs (keyed by `ip_key`: an IPv4 address is its own key; see `ip_addresses`) and
    /// the devices (keyed by `device_key`) it was seen with, in one list: one allocation and
    /// 16 bytes of the state fewer than two lists. The two kinds of key never meet.
    seen: Recent<()>,
    pub addresses: Recent<AddressState>,
    pub keys: Recent<KeyState>,
    /// (ts, usd) of withdrawals that went ahead and of deposits, each oldest first.
    pub amounts: Amounts,
    /// The largest withdrawal that went ahead, ever.
    pub max_withdrawal_usd: f64,
    pub last_escalation_at: When,
    seldom: Option<Box<Seldom>>,
}

/// What few accounts ever have: a call, a report, a remote-access session, a change waiting
/// for `change.applied`, an IPv6 address. Made at the first of them.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct Seldom {
    pub last_call_at: When,
    pub last_unverified_call_at: When,
    pub last_remote_access_at: When,
    pub last_contact_reported_at: When,
    /// Numbers (digits only) that called the customer or that the customer reported.
    pub callers: Recent<()>,
    /// Changes decided but not in force yet.
    pub waiting: Vec<Waiting>,
    /// The addresses of the IPv6 texts among the account's IPs.
    ipv6: Vec<(Tag, Ipv6Addr)>,
}

impl AccountState {
    /// Bytes this state holds: itself and what it points to on the heap (the allocator's own
    /// bookkeeping, about 16 bytes per allocation, is not counted).
    pub fn size_bytes(&self) -> usize {
        let allowlists: usize = self
            .keys
            .iter()
            .map(|(_, _, key)| std::mem::size_of_val(key.allowlist.networks()))
            .sum();
        let seldom = self.seldom().map_or(0, |s| {
            std::mem::size_of::<Seldom>()
                + s.callers.heap_bytes()
                + s.waiting.capacity() * std::mem::size_of::<Waiting>()
                + s.ipv6.capacity() * std::mem::size_of::<(Tag, Ipv6Addr)>()
        });
        std::mem::size_of::<Self>()
            + self.seen.heap_bytes()
            + self.addresses.heap_bytes()
            + self.keys.heap_bytes()
            + self.amounts.heap_bytes()
            + allowlists
            + seldom
    }

    /// `size_bytes` by part, for the replay benchmark's breakdown: the state itself, then the
    /// heap parts of its IPs, devices, addresses, keys (with allow-lists), amounts, seldom part.
    pub fn size_parts(&self) -> [usize; 7] {
        let allowlists: usize = self
            .keys
            .iter()
            .map(|(_, _, key)| std::mem::size_of_val(key.allowlist.networks()))
            .sum();
        let amounts = self.amounts.heap_bytes();
        let all = self.size_bytes();
        let devices = self
            .seen
            .iter()
            .filter(|(key, _, _)| is_device(*key))
            .count()
            * std::mem::size_of::<(Tag, Seen, ())>();
        let parts = [
            std::mem::size_of::<Self>(),
            self.seen.heap_bytes() - devices,
            devices,
            self.addresses.heap_bytes(),
            self.keys.heap_bytes() + allowlists,
            amounts,
        ];
        let seldom = all - parts.iter().sum::<usize>();
        [
            parts[0], parts[1], parts[2], parts[3], parts[4], parts[5], seldom,
        ]
    }

    /// The seldom part, if the account has one.
    pub fn seldom(&self) -> Option<&Seldom> {
        self.seldom.as_deref()
    }

    /// The seldom part, made if the account has none yet.
    pub fn seldom_mut(&mut self) -> &mut Seldom {
        self.seldom.get_or_insert_default()
    }

    /// A time of the seldom part (none when the account has no seldom part).
    pub fn seldom_time(&self, pick: impl Fn(&Seldom) -> When) -> Option<i64> {
        self.seldom().and_then(|s| pick(s).get())
    }

    /// When the IP `text` was first and last seen on this account.
    pub fn ip_seen(&self, text: &str) -> Option<&Seen> {
        self.seen.get(ip_key(text)).map(|(seen, _)| seen)
    }

    /// Records a sighting of the IP `text` at `ts`; says when it was last seen before
    /// (`None`: it is new).
    pub fn touch_ip(&mut self, text: &str, ts: i64) -> Option<i64> {
        let key = ip_key(text);
        let (before, _) = self.seen.touch_in(key, ts, MAX_IPS, |k| !is_device(k));
        if before.is_none()
            && crate::ipv4::parse_v4(text).is_none()
            && let Ok(IpAddr::V6(v6)) = text.parse::<IpAddr>()
        {
            self.seldom_mut().ipv6.push((key, v6));
        }
        if let Some(seldom) = self.seldom.as_mut().filter(|s| !s.ipv6.is_empty()) {
            // Those the list let go of go here too.
            seldom.ipv6.retain(|(k, _)| self.seen.get(*k).is_some());
        }
        before
    }

    /// The IPs seen on this account, with when, and their addresses when the texts are ones.
    pub fn ip_addresses(&self) -> impl Iterator<Item = (&Seen, Option<IpAddr>)> {
        let ipv6 = self.seldom().map_or(&[][..], |s| &s.ipv6[..]);
        let ips = self.seen.iter().filter(|(key, _, _)| !is_device(*key));
        ips.map(move |(key, seen, ())| {
            let ip = v4_of(key).map(IpAddr::V4).or_else(|| {
                (ipv6.iter())
                    .find(|(k, _)| *k == key)
                    .map(|(_, v6)| IpAddr::V6(*v6))
            });
            (seen, ip)
        })
    }

    /// When the device `id` was first and last seen on this account.
    pub fn device_seen(&self, id: &str) -> Option<&Seen> {
        self.seen.get(device_key(id)).map(|(seen, _)| seen)
    }

    /// Records a sighting of the device `id` at `ts`; says when it was last seen before
    /// (`None`: it is new).
    pub fn touch_device(&mut self, id: &str, ts: i64) -> Option<i64> {
        (self.seen)
            .touch_in(device_key(id), ts, MAX_DEVICES, is_device)
            .0
    }

    /// Records a waiting change; the oldest makes room when the account has too many.
    pub fn wait_for(&mut self, waiting: Waiting) {
        let list = &mut self.seldom_mut().waiting;
        list.retain(|w| w.event != waiting.event);
        if list.len() >= MAX_WAITING
            && let Some(oldest) = (0..list.len()).min_by_key(|&i| list[i].requested_at)
        {
            list.swap_remove(oldest);
        }
        list.push(waiting);
    }

    /// Takes the waiting change of the event `event_ref`, if it is still waiting.
    pub fn take_waiting(&mut self, event_ref: Tag) -> Option<Waiting> {
        let list = &mut self.seldom.as_mut()?.waiting;
        let at = list.iter().position(|w| w.event == event_ref)?;
        let waiting = list.swap_remove(at);
        if list.is_empty() {
            *list = Vec::new();
        }
        Some(waiting)
    }

    /// Drops the waiting changes `drop` picks.
    pub fn drop_waiting(&mut self, drop: impl Fn(&Waiting) -> bool) {
        if let Some(seldom) = self.seldom.as_mut() {
            seldom.waiting.retain(|w| !drop(w));
        }
    }
}

/// The key of an IP text in an account's list. A canonical IPv4 address, the only form the
/// standard reader accepts, is its own key (its 32 bits under `V4_KEY`); any other text has
/// its tag, moved out of that range when it falls in it, so the two kinds of key never meet.
/// An IP's key has the top bit clear, a device's (`device_key`) set.
pub(crate) fn ip_key(text: &str) -> Tag {
    match crate::ipv4::parse_v4(text) {
        Some(v4) => Tag(V4_KEY << 32 | u64::from(u32::from(v4))),
        None => {
            let tag = Tag::of(text).0 & !DEVICE;
            if tag >> 32 == V4_KEY {
                Tag(tag ^ 1 << 62)
            } else {
                Tag(tag)
            }
        }
    }
}

/// The key of a device id in an account's list: its tag with the top bit set.
fn device_key(id: &str) -> Tag {
    Tag(Tag::of(id).0 | DEVICE)
}

/// The top bit of a key: a device's (`device_key`), not an IP's (`ip_key`).
const DEVICE: u64 = 1 << 63;

fn is_device(key: Tag) -> bool {
    key.0 & DEVICE != 0
}

/// The high half of an IPv4 address's key (`ip_key`).
const V4_KEY: u64 = 0x7634_6970;

/// The IPv4 address a key stands for, if it is one.
fn v4_of(key: Tag) -> Option<Ipv4Addr> {
    (key.0 >> 32 == V4_KEY).then(|| Ipv4Addr::from(u32::try_from(key.0 & 0xFFFF_FFFF).unwrap_or(0)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ips_are_kept_by_address_or_tag_with_their_addresses() {
        let mut state = AccountState::default();
        assert_eq!(state.touch_ip("198.51.100.7", 10), None);
        assert_eq!(state.touch_ip("198.51.100.7", 20), Some(10));
        state.touch_ip("2001:db8::1", 30);
        state.touch_ip("not an ip", 40);
        let seen = state.ip_seen("198.51.100.7").map(|s| (s.first, s.last));
        assert_eq!(seen, Some((10, 20)));
        assert!(state.ip_seen("198.51.100.8").is_none());
        let mut ips: Vec<(i64, Option<IpAddr>)> =
            state.ip_addresses().map(|(s, ip)| (s.first, ip)).collect();
        ips.sort_by_key(|(first, _)| *first);
        let (v4, v6) = ("198.51.100.7".parse().ok(), "2001:db8::1".parse().ok());
        assert_eq!(ips, vec![(10, v4), (30, v6), (40, None)]);
        // An IPv6 address the list lets go of leaves its address behind too.
        for n in 0..MAX_IPS as i64 {
            state.touch_ip(&format!("10.0.0.{n}"), 100 + n);
        }
        assert!(state.ip_seen("2001:db8::1").is_none());
        assert!(state.seldom().is_some_and(|s| s.ipv6.is_empty()));
        // The two kinds of key never meet.
        assert_eq!(v4_of(ip_key("10.1.2.3")), "10.1.2.3".parse().ok());
        assert_eq!(v4_of(ip_key("::ffff:10.1.2.3")), None);
    }

    #[test]
    fn the_state_of_an_account_that_roams_is_96_bytes() {
        // One of the allocator's size classes (mimalloc's: 80, 96, 112, 128): its IPs and
        // devices in one list, and its withdrawals and deposits in one, took it from 128.
        assert_eq!(std::mem::size_of::<AccountState>(), 96);
    }
}
