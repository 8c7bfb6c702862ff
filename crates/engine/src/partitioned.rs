//! The engine partitioned by account, deciding exactly what one engine decides.
//!
//! Partition `p` of `N` owns the accounts with `FNV-1a-32(account) mod N = p`
//! (`portcullis_core::partition`). It is given, in feed order (the position: the stream
//! sequence, or the line number), its own accounts' events and the global ones (no account,
//! `market.activity`, `fraud.confirmed`), which every partition applies. What an account event
//! does to the state every account sees is worked out by its owner as a [`Fact`] and applied by
//! every other partition at the event's position. The rule that makes it exact: before a
//! partition applies anything at position `s` (its own event, a global one, or another
//! partition's fact), every other partition is complete through `s - 1` (has applied all its
//! events up to there and published their facts), and the partition has applied every fact
//! before `s`, in position order. Each partition then changes the shared state in the order one
//! engine does, so it sees at each of its events exactly what one engine sees there; an account's
//! own state is only ever touched by its events. docs/design/partitioning.md has the argument
//! and how the service will run it.
//!
//! Reports (alerts that changed, what confirmations marked) are made by the partition that owns
//! the position: the fact's owner, the owner of a global event's account, or partition 0 for a
//! global event without one; the others forget theirs, so each is reported once.

mod replay;

pub use crate::fact::{CampaignMark, Confirmation, Fact, FactError};
pub use replay::{Replay, Schedule};

use crate::checkpoint::CheckpointError;
use crate::engine::{Engine, Outcome};
use crate::policy::Policy;
use portcullis_core::contract::ContractEvent;
use portcullis_core::partition::{event_partition, partition_of};

const MAGIC: &[u8; 4] = b"PCP\x01";

/// One partition's engine, and where it stands in the feed.
#[derive(Debug)]
pub struct Partition {
    engine: Engine,
    index: u32,
    count: u32,
    /// The position of the last event (its own or global) it applied; 0 before any.
    events_through: u64,
    /// The position of the last other partition's fact it applied; 0 before any.
    facts_through: u64,
}

impl Partition {
    /// Partition `index` of `count` (at least 1), with no state.
    pub fn new(policy: Policy, index: u32, count: u32) -> Self {
        Self {
            engine: Engine::new(policy),
            index,
            count: count.max(1),
            events_through: 0,
            facts_through: 0,
        }
    }

    pub fn index(&self) -> u32 {
        self.index
    }

    pub fn count(&self) -> u32 {
        self.count
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// For what the engine offers beyond events (overrides, reports, the graph view).
    pub fn engine_mut(&mut self) -> &mut Engine {
        &mut self.engine
    }

    /// The positions of the last event and the last other partition's fact applied (what a
    /// restart resumes after).
    pub fn through(&self) -> (u64, u64) {
        (self.events_through, self.facts_through)
    }

    /// Whether `event` is this partition's to apply: its account's, or global.
    pub fn takes(&self, event: &ContractEvent) -> bool {
        event_partition(event, self.count).is_none_or(|p| p == self.index)
    }

    /// Applies an event of its own or a global one at `position` (the caller has applied
    /// every fact before it; see the module documentation). Returns the outcome and the fact
    /// the other partitions must apply at this position, if any.
    pub fn process<'e>(
        &mut self,
        position: u64,
        event: &'e ContractEvent,
    ) -> (Outcome, Option<Fact<'e>>) {
        debug_assert!(self.takes(event), "an event of another partition");
        let owner = event
            .account
            .as_deref()
            .map(|a| partition_of(a, self.count));
        let mark = self.engine.global.network.reports_mark();
        let (outcome, fact) = self.engine.step(event, owner == Some(self.index));
        if owner.unwrap_or(0) != self.index {
            // A global event: its reports are made once, by its owner or partition 0.
            self.engine.global.network.forget_reports_since(mark);
        }
        self.events_through = position;
        let fact = fact.filter(|_| self.count > 1).map(|mut fact| {
            fact.position = position;
            fact
        });
        (outcome, fact)
    }

    /// Applies another partition's fact (the caller keeps the order; see the module
    /// documentation). Its reports are the owner's to make.
    pub fn apply_fact(&mut self, fact: &Fact<'_>) {
        let mark = self.engine.global.network.reports_mark();
        self.engine.apply_fact(fact);
        self.engine.global.network.forget_reports_since(mark);
        self.facts_through = fact.position;
    }

    /// The partition's state as bytes: which partition, where it stands, and its engine's
    /// checkpoint (`Engine::checkpoint`).
    pub fn checkpoint(&self) -> Result<Vec<u8>, CheckpointError> {
        let mut bytes = MAGIC.to_vec();
        bytes.extend_from_slice(&self.index.to_le_bytes());
        bytes.extend_from_slice(&self.count.to_le_bytes());
        bytes.extend_from_slice(&self.events_through.to_le_bytes());
        bytes.extend_from_slice(&self.facts_through.to_le_bytes());
        bytes.extend_from_slice(&self.engine.checkpoint()?);
        Ok(bytes)
    }

    /// A partition from [`Partition::checkpoint`]'s bytes. The overrides are the caller's to
    /// set again, as after `Engine::from_checkpoint`.
    pub fn from_checkpoint(policy: Policy, bytes: &[u8]) -> Result<Self, CheckpointError> {
        let refused = |why: &str| CheckpointError(why.to_owned());
        let body = bytes
            .strip_prefix(MAGIC.as_slice())
            .ok_or_else(|| refused("not a partition checkpoint"))?;
        let (index, body) = body.split_first_chunk::<4>().ok_or(refused("truncated"))?;
        let (count, body) = body.split_first_chunk::<4>().ok_or(refused("truncated"))?;
        let (events, body) = body.split_first_chunk::<8>().ok_or(refused("truncated"))?;
        let (facts, body) = body.split_first_chunk::<8>().ok_or(refused("truncated"))?;
        Ok(Self {
            engine: Engine::from_checkpoint(policy, body)?,
            index: u32::from_le_bytes(*index),
            count: u32::from_le_bytes(*count).max(1),
            events_through: u64::from_le_bytes(*events),
            facts_through: u64::from_le_bytes(*facts),
        })
    }
}
