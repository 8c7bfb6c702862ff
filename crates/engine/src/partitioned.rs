//! The engine partitioned by account, deciding exactly what one engine decides.
//!
//! Partition `p` of `N` owns the accounts with `FNV-1a-32(account) mod N = p`
//! (`portcullis_core::partition`). Every event has a position in the feed (the stream
//! sequence, or the line number). An event's work is split in two:
//!
//! - its **account part** (`Partition::process`), done by the account's owner for its own
//!   events and for the global events that name one of its accounts, in position order. It
//!   reads and writes the account's state and works out the event's effect on the state every
//!   account sees as a [`Fact`]; a deciding event also reads that shared state.
//! - its **shared changes**, applied by every partition to its copy of the shared state in
//!   position order: the global part of a global event (no account, `market.activity`,
//!   `fraud.confirmed`: `Partition::apply_global`), and the facts, its own and the others'
//!   (`Partition::apply_fact`); at one position the global part comes first.
//!
//! The rules that make it exact (docs/design/partitioning.md has the argument):
//!
//! 1. a shared change at position `r` is applied once every partition, this one included, is
//!    **complete through** `r - 1` (has done the account part of all its events up to there and
//!    published their facts);
//! 2. a deciding event at `s` is processed once every shared change before `s` is applied here
//!    (so every partition is complete through `s - 1`);
//! 3. other events (most of the feed: sign-ins, key uses, deposits, calls) wait for nothing but
//!    the partition's own earlier events: they read no shared state.
//!
//! Reports (alerts that changed, what confirmations and force overrides marked) are made by
//! the partition that owns the position: the fact's owner, the owner of a global event's
//! account, or partition 0 for a global event without one; the others forget theirs, so each
//! is reported once.

mod replay;

pub use crate::fact::{CampaignMark, Confirmation, Fact, FactError};
pub use replay::{Replay, Schedule};

use crate::checkpoint::CheckpointError;
use crate::engine::{Engine, Outcome};
use crate::policy::Policy;
use portcullis_core::contract::ContractEvent;
use portcullis_core::partition::partition_of;

const MAGIC: &[u8; 4] = b"PCP\x02";

/// One partition's engine, and where it stands in the feed.
#[derive(Debug)]
pub struct Partition {
    engine: Engine,
    index: u32,
    count: u32,
    /// The position of the last event whose account part it did; 0 before any.
    events_through: u64,
    /// The position of the last shared change it applied; 0 before any.
    shared_through: u64,
    /// The latest time of its events so far (for the force overrides' facts).
    latest_ts: i64,
}

impl Partition {
    /// Partition `index` of `count` (at least 1), with no state.
    pub fn new(policy: Policy, index: u32, count: u32) -> Self {
        Self {
            engine: Engine::new(policy),
            index,
            count: count.max(1),
            events_through: 0,
            shared_through: 0,
            latest_ts: i64::MIN,
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

    /// The positions of the last event whose account part it did and of the last shared
    /// change it applied: what a restart resumes after.
    pub fn through(&self) -> (u64, u64) {
        (self.events_through, self.shared_through)
    }

    /// The partition whose account part `event` is, if any (a global event without an
    /// account has none).
    pub fn owner(event: &ContractEvent, count: u32) -> Option<u32> {
        (event.account.as_deref()).map(|account| partition_of(account, count.max(1)))
    }

    /// The account part of an event this partition owns, at `position` (see the module
    /// documentation for when it may run). Returns the outcome and the fact that every
    /// partition, this one included, must apply at this position, if it changes anything.
    pub fn process<'e>(
        &mut self,
        position: u64,
        event: &'e ContractEvent,
    ) -> (Outcome, Option<Fact<'e>>) {
        debug_assert_eq!(Self::owner(event, self.count), Some(self.index));
        let ts = event.ts.as_millis();
        if event.body.asks_for_decision() {
            // One engine spreads the force overrides due before it reads the shared state.
            self.engine.apply_global(event);
        }
        self.engine.stats.events += 1;
        let (outcome, fact) = self.engine.account_part(event);
        // Whether one engine would spread a force override at this event cannot be told
        // without the shared state: the first event of each partition past an override's
        // start hands a fact out, and the first of them in the feed spreads it.
        let force = (self.engine.global.network).force_starts_within(self.latest_ts, ts);
        self.latest_ts = self.latest_ts.max(ts);
        self.events_through = position;
        let fact = fact.filter(|fact| force || !fact.is_empty());
        (outcome, fact.map(|fact| Fact { position, ..fact }))
    }

    /// The global part of a global event at `position` (every partition applies it).
    pub fn apply_global(&mut self, position: u64, event: &ContractEvent) {
        let reports = self.engine.global.network.reports_mark();
        self.engine.apply_global(event);
        if Self::owner(event, self.count).unwrap_or(0) != self.index {
            self.engine.global.network.forget_reports_since(reports);
        }
        self.shared_through = position;
    }

    /// Applies a fact, its own or another partition's. Reports are the owner's to make.
    pub fn apply_fact(&mut self, fact: &Fact<'_>) {
        let reports = self.engine.global.network.reports_mark();
        self.engine.apply_fact(fact);
        if partition_of(&fact.account, self.count) != self.index {
            self.engine.global.network.forget_reports_since(reports);
        }
        self.shared_through = fact.position;
    }

    /// The id check one engine makes (`Engine::process`): `None` for a new id, else the outcome
    /// of a duplicate or of an event older than the dedup horizon, which is then ignored. The
    /// service's partitions each check every event of the stream, their own and the others',
    /// in position order, so they all hold the same set (it is in the engine's checkpoint);
    /// `Replay` checks once for all, with partition 0's.
    pub fn check_id(&mut self, id: &str, ts: i64) -> Option<Outcome> {
        self.engine.check_id(id, ts)
    }

    /// A change from outside the feed put in force at `position` (an operator's overrides, a
    /// policy version), in every partition, as a shared change: `change` is what one engine
    /// does with it (`Engine::set_overrides` and `Engine::spread_forces`, `Engine::set_policy`).
    /// What it reports (the force overrides' propagations) is partition 0's to report.
    pub fn apply_control(&mut self, position: u64, change: impl FnOnce(&mut Engine)) {
        let reports = self.engine.global.network.reports_mark();
        change(&mut self.engine);
        if self.index != 0 {
            self.engine.global.network.forget_reports_since(reports);
        }
        self.shared_through = self.shared_through.max(position);
    }

    /// The partition's state as bytes: which partition, where it stands, and its engine's
    /// checkpoint (`Engine::checkpoint`).
    pub fn checkpoint(&self) -> Result<Vec<u8>, CheckpointError> {
        let mut bytes = MAGIC.to_vec();
        bytes.extend_from_slice(&self.index.to_le_bytes());
        bytes.extend_from_slice(&self.count.to_le_bytes());
        bytes.extend_from_slice(&self.events_through.to_le_bytes());
        bytes.extend_from_slice(&self.shared_through.to_le_bytes());
        bytes.extend_from_slice(&self.latest_ts.to_le_bytes());
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
        let (shared, body) = body.split_first_chunk::<8>().ok_or(refused("truncated"))?;
        let (latest, body) = body.split_first_chunk::<8>().ok_or(refused("truncated"))?;
        Ok(Self {
            engine: Engine::from_checkpoint(policy, body)?,
            index: u32::from_le_bytes(*index),
            count: u32::from_le_bytes(*count).max(1),
            events_through: u64::from_le_bytes(*events),
            shared_through: u64::from_le_bytes(*shared),
            latest_ts: i64::from_le_bytes(*latest),
        })
    }
}
