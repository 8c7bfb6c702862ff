//! Links between accounts through an attacker's infrastructure, before anyone confirms a fraud.
//!
//! A campaign works on dozens of customers and funnels their funds into a few addresses, often
//! through keys allow-listed for the same servers. When the policy holds or blocks one victim's
//! withdrawal, new address or key change, the address and the IPs it involved are marked here
//! for a week; the next account that tries to send funds to that address, or to allow-list or
//! act from that IP, carries the link as a feature. Only refusals mark: addresses and IPs that
//! many customers share for good reasons (another exchange's deposit address, a trading bot
//! provider's servers) are never marked by ordinary traffic. Confirmed frauds
//! (`fraud.confirmed`) are stronger still and handled apart, in `Global`.

use crate::state::Tag;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::net::IpAddr;

/// How long a refusal marks an address or IP.
pub(crate) const LINK_HORIZON_MS: i64 = 7 * 86_400_000;
/// Marks stamped up to this much after an event still count for it: events may arrive up to
/// ten minutes late (the contract), and a victim's late event should see the campaign's marks.
const LATE_MS: i64 = 10 * 60_000;
/// Marks are swept once the maps have doubled since the last sweep, and never below this.
const MIN_SWEEP_LEN: usize = 4096;

/// Who marked an entity last, and when.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Mark {
    pub at: i64,
    pub account: Tag,
    /// Marked by more than one account (then it is "elsewhere" for everyone).
    pub by_several: bool,
}

/// See the module documentation.
#[derive(Debug, Default, Serialize, Deserialize)]
pub(crate) struct CampaignLinks {
    addresses: HashMap<Tag, Mark>,
    ips: HashMap<Tag, Mark>,
    /// Entries left by the last sweep.
    swept_len: usize,
}

impl CampaignLinks {
    pub fn mark_address(&mut self, address: &str, account: Tag, ts: i64) {
        mark(&mut self.addresses, Tag::of_address(address), account, ts);
        self.sweep_if_grown(ts);
    }

    pub fn mark_ip(&mut self, ip: IpAddr, account: Tag, ts: i64) {
        mark(&mut self.ips, ip_tag(ip), account, ts);
        self.sweep_if_grown(ts);
    }

    /// Whether another account's refused action marked `address` in the week before `ts`.
    pub fn address_marked_elsewhere(&self, address: &str, account: Tag, ts: i64) -> bool {
        marked_elsewhere(&self.addresses, Tag::of_address(address), account, ts)
    }

    /// Whether any account's refused action marked `address` in the week before `ts`.
    pub fn address_marked(&self, address: &str, ts: i64) -> bool {
        (self.addresses.get(&Tag::of_address(address)))
            .is_some_and(|mark| mark.at - ts <= LATE_MS && ts - mark.at <= LINK_HORIZON_MS)
    }

    /// Whether another account's refused action marked `ip` in the week before `ts`.
    pub fn ip_marked_elsewhere(&self, ip: IpAddr, account: Tag, ts: i64) -> bool {
        marked_elsewhere(&self.ips, ip_tag(ip), account, ts)
    }

    pub fn len(&self) -> usize {
        self.addresses.len() + self.ips.len()
    }

    /// Drops marks older than the horizon once the maps have doubled: memory stays bounded by
    /// twice the marks of one week, and the sweep costs a constant per mark.
    fn sweep_if_grown(&mut self, ts: i64) {
        if self.len() <= (2 * self.swept_len).max(MIN_SWEEP_LEN) {
            return;
        }
        let fresh = |mark: &mut Mark| ts - mark.at <= LINK_HORIZON_MS;
        self.addresses.retain(|_, mark| fresh(mark));
        self.ips.retain(|_, mark| fresh(mark));
        self.swept_len = self.len();
    }
}

fn mark(marks: &mut HashMap<Tag, Mark>, entity: Tag, account: Tag, ts: i64) {
    marks
        .entry(entity)
        .and_modify(|mark| {
            mark.by_several |= mark.account != account;
            if ts >= mark.at {
                mark.at = ts;
                mark.account = account;
            }
        })
        .or_insert(Mark {
            at: ts,
            account,
            by_several: false,
        });
}

fn marked_elsewhere(marks: &HashMap<Tag, Mark>, entity: Tag, account: Tag, ts: i64) -> bool {
    marks.get(&entity).is_some_and(|mark| {
        (mark.by_several || mark.account != account)
            && mark.at - ts <= LATE_MS
            && ts - mark.at <= LINK_HORIZON_MS
    })
}

/// IPv4 addresses written as IPv6 (`::ffff:a.b.c.d`) are the same host.
fn ip_tag(ip: IpAddr) -> Tag {
    Tag::of(&ip.to_canonical().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400_000;

    #[test]
    fn a_mark_counts_for_other_accounts_within_the_week() {
        let (victim, next) = (Tag::of("a1"), Tag::of("a2"));
        let mut links = CampaignLinks::default();
        links.mark_address("TQattacker", victim, DAY);
        assert!(links.address_marked_elsewhere("TQattacker", next, 2 * DAY));
        assert!(
            !links.address_marked_elsewhere("TQattacker", victim, 2 * DAY),
            "an account's own refusals are its own state's business"
        );
        assert!(!links.address_marked_elsewhere("TQother", next, 2 * DAY));
        assert!(!links.address_marked_elsewhere("TQattacker", next, 9 * DAY));
        assert!(
            links.address_marked_elsewhere("TQattacker", next, DAY - 5 * 60_000),
            "a late event sees marks from minutes after it"
        );
        assert!(!links.address_marked_elsewhere("TQattacker", next, DAY - 2 * 3_600_000));
    }

    #[test]
    fn marked_by_two_accounts_counts_for_both() {
        let (a1, a2) = (Tag::of("a1"), Tag::of("a2"));
        let mut links = CampaignLinks::default();
        let ip: IpAddr = "203.0.113.7".parse().unwrap_or(IpAddr::from([0, 0, 0, 0]));
        links.mark_ip(ip, a1, DAY);
        links.mark_ip(ip, a2, DAY + 1);
        assert!(links.ip_marked_elsewhere(ip, a1, DAY + 2));
        assert!(links.ip_marked_elsewhere(ip, a2, DAY + 2));
        let mapped: IpAddr = "::ffff:203.0.113.7"
            .parse()
            .unwrap_or(IpAddr::from([0, 0, 0, 0]));
        assert!(links.ip_marked_elsewhere(mapped, Tag::of("a3"), DAY + 2));
    }

    #[test]
    fn old_marks_are_swept_as_new_ones_come() {
        let mut links = CampaignLinks::default();
        for n in 0..100_000_i64 {
            links.mark_address(&format!("T{n}"), Tag::of("a1"), n * 60_000);
        }
        // A week is 10,080 minutes: at most about twice that many marks are kept.
        assert!(links.len() <= 2 * 10_081 + 1, "{} marks kept", links.len());
        assert!(links.address_marked_elsewhere("T99999", Tag::of("a2"), 99_999 * 60_000));
    }
}
