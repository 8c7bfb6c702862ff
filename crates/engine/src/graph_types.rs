//! The entity graph's vocabulary (`graph`): what a node stands for (`EntityKind`), how an
//! account is linked to an entity (`EdgeKind`), a node's id, and an edge as the graph hands it
//! out, with its times to the second.

use serde::{Deserialize, Serialize};
use siphasher::sip::SipHasher13;
use std::hash::Hasher as _;

pub(crate) const DAY_MS: i64 = 86_400_000;
/// The SipHash key of node ids (stored in checkpoints: never changes).
const NODE_KEY: (u64, u64) = (0x706f_7274_6375_6c6c, 0x6973_2d6e_6f64_6531);

/// What a node stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EntityKind {
    Account,
    Address,
    Ip,
    Device,
    Number,
}

impl EntityKind {
    pub const ALL: [EntityKind; 5] = [
        EntityKind::Account,
        EntityKind::Address,
        EntityKind::Ip,
        EntityKind::Device,
        EntityKind::Number,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EntityKind::Account => "account",
            EntityKind::Address => "address",
            EntityKind::Ip => "ip",
            EntityKind::Device => "device",
            EntityKind::Number => "number",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == text)
    }

    /// How long a node of this kind and its edges last without being seen again: an IP
    /// changes hands within weeks, a device within months, an attacker's address or number
    /// stays theirs. An account lasts as long as its longest-lived edge can.
    pub fn ttl_ms(self) -> i64 {
        match self {
            EntityKind::Ip => 30 * DAY_MS,
            EntityKind::Device => 90 * DAY_MS,
            EntityKind::Account | EntityKind::Address | EntityKind::Number => 365 * DAY_MS,
        }
    }

    /// How long a confirmed-fraud mark on a node of this kind lasts: as long as the node
    /// would, except an account, which is reviewed within a month.
    pub fn mark_ttl_ms(self) -> i64 {
        match self {
            EntityKind::Account => 30 * DAY_MS,
            other => other.ttl_ms(),
        }
    }

    /// The canonical form of a value of this kind, or `None` if it is not one.
    pub fn canonical(self, value: &str) -> Option<String> {
        crate::links::canonical(self, value).map(std::borrow::Cow::into_owned)
    }
}

/// How an account is linked to an entity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EdgeKind {
    /// Allow-listed the address (`address.added`).
    AddedAddress,
    /// Asked for a withdrawal to the address.
    WithdrewTo,
    /// Allow-listed the IP on a key (a single host).
    AllowListed,
    /// Acted from the IP (logins, key use, any event's `ctx.ip`).
    ActedFrom,
    /// Used the device.
    UsedDevice,
    /// Was called by the number.
    CalledBy,
    /// Reported the contact.
    Reported,
}

impl EdgeKind {
    const ALL: [EdgeKind; 7] = [
        EdgeKind::AddedAddress,
        EdgeKind::WithdrewTo,
        EdgeKind::AllowListed,
        EdgeKind::ActedFrom,
        EdgeKind::UsedDevice,
        EdgeKind::CalledBy,
        EdgeKind::Reported,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EdgeKind::AddedAddress => "added_address",
            EdgeKind::WithdrewTo => "withdrew_to",
            EdgeKind::AllowListed => "allow_listed",
            EdgeKind::ActedFrom => "acted_from",
            EdgeKind::UsedDevice => "used_device",
            EdgeKind::CalledBy => "called_by",
            EdgeKind::Reported => "reported",
        }
    }
}

/// A node's id: a keyed hash of its kind and canonical value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct NodeId(pub u64);

impl NodeId {
    pub fn of(kind: EntityKind, canonical: &str) -> Self {
        let mut hasher = SipHasher13::new_with_keys(NODE_KEY.0, NODE_KEY.1);
        hasher.write_u8(kind as u8);
        hasher.write(canonical.as_bytes());
        Self(hasher.finish())
    }
}

/// An event time to the second, as the graph keeps it.
pub(crate) fn secs(ms: i64) -> u32 {
    u32::try_from(ms.div_euclid(1000).max(0)).unwrap_or(u32::MAX)
}

pub(super) fn millis(secs: u32) -> i64 {
    i64::from(secs) * 1000
}

/// One link between an account and an entity, as the graph hands it out: from either side,
/// with the times and the event kept on the entity's side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Edge {
    /// The slot of the node at the other end (low 29 bits) and the edge's kind (high 3).
    pub(super) to_kind: u32,
    pub(super) first: u32,
    pub(super) last: u32,
    /// The event id's place in the arena.
    pub(super) event: u32,
}

/// Words an entity's list keeps per edge: the account's slot and the kind, first, last, event.
pub(super) const EDGE_WORDS: usize = 4;
pub(super) const SLOT_MASK: u32 = (1 << 29) - 1;

pub(super) fn to_kind(slot: u32, kind: EdgeKind) -> u32 {
    slot | (kind as u32) << 29
}

pub(super) fn kind_of(to_kind: u32) -> EdgeKind {
    EdgeKind::ALL[(to_kind >> 29) as usize % EdgeKind::ALL.len()]
}

impl Edge {
    /// The slot of the node at the other end.
    pub fn to(&self) -> u32 {
        self.to_kind & SLOT_MASK
    }
    pub fn kind(&self) -> EdgeKind {
        kind_of(self.to_kind)
    }
    pub fn first_ms(&self) -> i64 {
        millis(self.first)
    }
    pub fn last_ms(&self) -> i64 {
        millis(self.last)
    }
    pub(super) fn of_words(words: &[u32]) -> Self {
        Self {
            to_kind: words[0],
            first: words[1],
            last: words[2],
            event: words[3],
        }
    }
    pub(super) fn words(&self) -> [u32; EDGE_WORDS] {
        [self.to_kind, self.first, self.last, self.event]
    }
}
