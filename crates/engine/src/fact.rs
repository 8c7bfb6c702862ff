//! An account event's effect on what every account sees, as a value: the `Fact`.
//!
//! Per-account state (`closed_loop`) belongs to the partition that owns the account; the
//! shared state (`Global`: the entity graph with its alerts and marks, the campaign links, the
//! markets and confirmed frauds) is what every partition must hold alike. An account event
//! changes the shared state in ways that depend on its account's state (whether its IP is new
//! to the account, whether the policy held it, which allow-listed IPs the account never used),
//! so only the owner can work them out. It does, and writes them down here: what
//! `Network::observe` is given after the freshness filter, the campaign marks of a refusal,
//! and the time at which force overrides due are spread. Applying a fact
//! ([`apply`]) is the only way an account event changes the shared state, in the owner (at
//! once) and in every other partition (in feed order): one engine is the partition that owns
//! everything and applies its own facts as it makes them.
//!
//! Facts travel between partitions, so they have a stable binary form ([`Fact::encode`]): a
//! format byte, then postcard (varints, no field names). Enum variants and fields are only
//! ever added at the end, with a new format byte when the shape changes.

use crate::links::Link;
use crate::state::{Global, Tag};
use serde::{Deserialize, Serialize};
use smallvec::SmallVec;
use std::borrow::Cow;
use std::net::IpAddr;

/// The format byte of [`Fact::encode`].
const FORMAT: u8 = 1;

/// What a held or blocked event marks for other accounts (`network::CampaignLinks`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum CampaignMark<'a> {
    /// An address, as the event wrote it (`Tag::of_address` canonicalises).
    Address(Cow<'a, str>),
    Ip(IpAddr),
}

/// A confirmation's names (a `fraud.confirmed` with an account), for `Network::confirm`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Confirmation<'a> {
    pub addresses: Vec<Cow<'a, str>>,
    pub from: Vec<Cow<'a, str>>,
    pub note: Cow<'a, str>,
}

/// One event's effect on the shared state. Borrowed from its event while it is applied in the
/// engine that made it; [`Fact::into_owned`] to send it away.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fact<'a> {
    /// The event's position in the feed (stream sequence or line), set by the partition.
    pub position: u64,
    /// The event's time, milliseconds since the epoch.
    pub ts: i64,
    pub event_id: Cow<'a, str>,
    pub account: Cow<'a, str>,
    /// The graph links `Network::observe` is given (what is fresh to the account); none: it
    /// is not called for this event.
    pub links: Option<SmallVec<[Link<'a>; 4]>>,
    pub marks: SmallVec<[CampaignMark<'a>; 2]>,
    pub confirmation: Option<Confirmation<'a>>,
}

/// A fact that cannot be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("fact refused: {0}")]
pub struct FactError(pub String);

impl<'a> Fact<'a> {
    /// A fact of `account`'s event that changes nothing yet.
    pub(crate) fn new(event_id: &'a str, account: &'a str, ts: i64) -> Self {
        Self {
            position: 0,
            ts,
            event_id: Cow::Borrowed(event_id),
            account: Cow::Borrowed(account),
            links: None,
            marks: SmallVec::new(),
            confirmation: None,
        }
    }

    /// Whether applying it would change nothing but the spreading of force overrides due.
    pub fn is_empty(&self) -> bool {
        self.links.is_none() && self.marks.is_empty() && self.confirmation.is_none()
    }

    /// The same fact, owning its texts.
    pub fn into_owned(self) -> Fact<'static> {
        let owned = |text: Cow<'a, str>| Cow::Owned(text.into_owned());
        Fact {
            position: self.position,
            ts: self.ts,
            event_id: owned(self.event_id),
            account: owned(self.account),
            links: self.links.map(|links| {
                (links.into_iter())
                    .map(|(kind, value, edge)| (kind, owned(value), edge))
                    .collect()
            }),
            marks: (self.marks.into_iter())
                .map(|mark| match mark {
                    CampaignMark::Address(address) => CampaignMark::Address(owned(address)),
                    CampaignMark::Ip(ip) => CampaignMark::Ip(ip),
                })
                .collect(),
            confirmation: self.confirmation.map(|c| Confirmation {
                addresses: c.addresses.into_iter().map(owned).collect(),
                from: c.from.into_iter().map(owned).collect(),
                note: owned(c.note),
            }),
        }
    }

    /// The stable binary form: the format byte, then postcard.
    pub fn encode(&self) -> Vec<u8> {
        // Postcard cannot fail on these types (no maps with non-string keys, no `skip`).
        postcard::to_extend(self, vec![FORMAT]).unwrap_or_default()
    }

    /// A fact from [`Fact::encode`]'s bytes.
    pub fn decode(bytes: &[u8]) -> Result<Fact<'static>, FactError> {
        let (format, body) = bytes
            .split_first()
            .ok_or_else(|| FactError("empty".into()))?;
        if *format != FORMAT {
            return Err(FactError(format!(
                "format {format} (this engine reads {FORMAT})"
            )));
        }
        let (fact, rest) = postcard::take_from_bytes::<Fact<'static>>(body)
            .map_err(|e| FactError(e.to_string()))?;
        if !rest.is_empty() {
            return Err(FactError(format!("{} bytes after the fact", rest.len())));
        }
        Ok(fact)
    }
}

/// Applies a fact to the shared state, exactly as one engine changes it at the fact's event:
/// the force overrides due by its time spread first, then its campaign marks, then its links.
pub(crate) fn apply(global: &mut Global, fact: &Fact<'_>) {
    let ts = fact.ts;
    global.network.spread_forces_due(ts);
    let account = if fact.marks.is_empty() {
        Tag(0)
    } else {
        Tag::of(&fact.account)
    };
    for mark in &fact.marks {
        match mark {
            CampaignMark::Address(address) => {
                if !established_destination(global, address, ts) {
                    global.campaign.mark_address(address, account, ts);
                }
            }
            CampaignMark::Ip(ip) => global.campaign.mark_ip(*ip, account, ts),
        }
    }
    if let Some(links) = &fact.links {
        let network = &mut global.network;
        network.observe(&fact.event_id, &fact.account, ts, links);
        if let Some(c) = &fact.confirmation {
            network.confirm(&fact.event_id, &fact.account, c, ts);
        }
        network.sweep_daily(ts);
    }
}

/// An address that at least this many accounts had sent to or added...
const ESTABLISHED_ACCOUNTS: usize = 3;
/// ...for at least this long before its first refusal is a shared destination.
const ESTABLISHED_MS: i64 = 7 * crate::graph::DAY_MS;

/// Whether a refusal naming `address` at `ts` must leave it unmarked: the entity graph has known
/// it for a week, several accounts used it, and no refusal marked it yet (or the graph labels
/// it shared infrastructure). Another exchange's deposit wallet that a dozen customers have paid
/// for weeks is not a crew's collection address because one of them was held during an
/// ordinary call; a crew's "safe wallet" is new to the exchange when its first victim is
/// refused, and once marked, later refusals keep its mark fresh whatever its age.
fn established_destination(global: &Global, address: &str, ts: i64) -> bool {
    if global.campaign.address_marked(address, ts) {
        return false;
    }
    let graph = &global.network.graph;
    let canonical = portcullis_core::address::canonical(address);
    let Some(slot) = graph.find(crate::graph::EntityKind::Address, &canonical) else {
        return false;
    };
    graph.at(slot).is_some_and(|node| {
        node.shared()
            || (node.first_ms() <= ts - ESTABLISHED_MS
                && graph.distinct_accounts(slot) >= ESTABLISHED_ACCOUNTS)
    })
}

/// A fact with a little of everything, for the encoding's tests.
#[cfg(test)]
pub(crate) fn sample() -> Fact<'static> {
    use crate::graph::{EdgeKind, EntityKind};
    let mut fact = Fact::new("ev-1", "acct-1", 1_772_409_600_000).into_owned();
    fact.position = 42;
    fact.links = Some(SmallVec::from_vec(vec![
        (
            EntityKind::Ip,
            Cow::Owned("203.0.113.7".into()),
            EdgeKind::ActedFrom,
        ),
        (
            EntityKind::Address,
            Cow::Owned("TQcrew".into()),
            EdgeKind::WithdrewTo,
        ),
    ]));
    fact.marks
        .push(CampaignMark::Address(Cow::Owned("TQcrew".into())));
    fact.marks
        .push(CampaignMark::Ip(IpAddr::from([203, 0, 113, 7])));
    fact
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fact_survives_its_encoding_and_is_small() {
        let fact = sample();
        let bytes = fact.encode();
        assert_eq!(Fact::decode(&bytes), Ok(fact.clone()));
        assert!(bytes.len() < 80, "{} bytes", bytes.len());
        let mut confirmed = fact;
        confirmed.confirmation = Some(Confirmation {
            addresses: vec![Cow::Owned("TQcrew".into())],
            from: vec![Cow::Owned("+15550100".into())],
            note: Cow::Owned("alert:al-1".into()),
        });
        assert_eq!(Fact::decode(&confirmed.encode()), Ok(confirmed));
    }

    #[test]
    fn a_fact_of_another_format_or_with_bytes_left_is_refused() {
        let mut bytes = sample().encode();
        bytes.push(0);
        assert!(Fact::decode(&bytes).is_err());
        bytes[0] = FORMAT + 1;
        assert!(Fact::decode(&bytes).is_err());
        assert!(Fact::decode(&[]).is_err());
    }

    /// `sample()` encoded.
    const PINNED: &str = "012a80e0c1bd95670465762d3106616363742d310102020b3230332e302e3131332e37030106545163726577010200065451637265770100cb00710700";

    #[test]
    fn the_encoding_is_pinned() {
        // A change here is a change of the wire format: bump FORMAT.
        let bytes = sample().encode();
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, PINNED);
    }
}
