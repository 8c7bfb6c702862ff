//! One owned partition's queues across processes: the exactness rules of
//! `portcullis_engine::partitioned` (as `Replay` applies them in one process), fed by the event
//! stream and the fact bus instead of a batch in memory.
//!
//! Events arrive in position order (the partition reads the whole stream: one total order, so
//! "every event up to `x` was read" is simply the last position read). Its own events (its
//! subject, and global events that name one of its accounts) queue for their account part;
//! global events queue as shared changes; other partitions' events are skipped unread. Facts
//! arrive from the bus, every partition's in the order it published them, each followed by
//! its "complete through": a partition's facts up to `x` are all here once its progress says
//! `x`. Its own facts are queued as it makes them, and their echo from the bus is dropped.
//!
//! Every event's id is checked as one engine checks it (`ids`), and the control subject's
//! changes (`control`: overrides, policy versions) are shared changes at their position.
//!
//! A partition also knows more of the others' progress than they said: it read their events
//! (by subject, unparsed), so when another partition has no event between the progress it
//! reported and `x`, it is complete through `x` too, with nothing more to hand out
//! ([`Others`]). Waits are then only for a partition that has events of its own to do first,
//! not for every message between processes.

mod control;
mod ids;
#[cfg(test)]
mod schedules;
#[cfg(test)]
mod tests;

use super::seal::{ControlMessage, ControlSeal};
pub use control::{CONTROL_HORIZON_MS, Control, InForce};

use crate::ports::{
    FactBatch, IgnoredEvent, NewEvent, StoreError, StoreResult, StoredDecision, StreamEvent,
};
use portcullis_core::contract::{ContractEvent, parse_line};
use portcullis_core::partition::event_partition;
use portcullis_engine::partitioned::{Fact, Partition};
use portcullis_engine::{Outcome, Policy};
use std::collections::{BTreeMap, BTreeSet, VecDeque};

const MAGIC: &[u8; 4] = b"PRQ\x02";
/// Before the control subject and the id check: nothing recorded of either.
const MAGIC_1: &[u8; 4] = b"PRQ\x01";

/// A shared change waiting for rule 1. At one position the global part (kind 0) comes before
/// the fact (kind 1).
enum Change {
    Global(Box<ContractEvent>),
    /// The fact, and the bus sequence it was read at (`None`: made here, echo not read yet).
    Fact(Box<Fact<'static>>, Option<u64>),
    /// A message of the control subject, opened (kind 0, as a global part: nothing else is
    /// there).
    Control(Box<ControlMessage>),
}

/// What one round of steps did, for the caller to store, then publish.
#[derive(Debug, Default)]
pub struct Stepped {
    pub logged: Vec<NewEvent>,
    pub decisions: Vec<StoredDecision>,
    /// Encoded facts, in position order.
    pub facts: Vec<Vec<u8>>,
    /// Own events whose account part was done.
    pub events: u64,
    /// Own events ignored as one engine ignores them (a duplicate id, late), to record.
    pub ignored: Vec<IgnoredEvent>,
}

/// See the module documentation.
pub struct Queues {
    partition: Partition,
    /// Own events not yet processed: position, event, line as read.
    own: VecDeque<(u64, ContractEvent, String)>,
    shared: BTreeMap<(u64, u8), Change>,
    /// Per partition, complete through as it reported (this one's is worked out:
    /// [`Queues::complete_own`]).
    complete: Vec<u64>,
    /// What is known beyond the reports: see [`Others`].
    others: Others,
    /// The last position read from the event stream.
    read_through: u64,
    /// The last bus sequence read.
    bus_read_through: u64,
    /// What operators put in force, as applied through `shared_through`.
    in_force: InForce,
    /// The positions of the control messages not applied yet: own events after one wait.
    controls: BTreeSet<u64>,
    ids: ids::IdCheck,
    /// Whose event is read from the line, not from its subject: after a change of the
    /// partition count the stream holds events routed by another count.
    by_content: bool,
}

/// What the checkpoint records besides the positions and the partition.
#[derive(serde::Serialize, serde::Deserialize)]
struct Recorded {
    in_force: InForce,
    ids: ids::IdCheck,
}

impl std::fmt::Debug for Queues {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Queues")
            .field("partition", &self.partition.index())
            .field("through", &self.partition.through())
            .field("read_through", &self.read_through)
            .finish_non_exhaustive()
    }
}

impl Queues {
    /// Partition `index` of `count`, fresh, with `policy` and what `in_force` says (its
    /// overrides are put in force).
    pub fn new(policy: Policy, in_force: InForce, index: u32, count: u32) -> Self {
        let recorded = Recorded {
            in_force,
            ids: ids::IdCheck::default(),
        };
        Self::around(
            Partition::new(policy, index, count),
            vec![0; count as usize],
            0,
            recorded,
        )
    }

    fn around(
        mut partition: Partition,
        complete: Vec<u64>,
        bus_read_through: u64,
        recorded: Recorded,
    ) -> Self {
        let engine = partition.engine_mut();
        engine.set_overrides(recorded.in_force.overrides.clone());
        let (events, shared) = partition.through();
        // The stream is read again from the earlier of the two, and what each side has done
        // is skipped.
        let read_through = events.min(shared);
        Self {
            others: Others::new(complete.len(), read_through),
            partition,
            own: VecDeque::new(),
            shared: BTreeMap::new(),
            complete,
            read_through,
            bus_read_through,
            in_force: recorded.in_force,
            controls: BTreeSet::new(),
            ids: recorded.ids,
            by_content: false,
        }
    }

    /// Reads whose every event is from its line rather than its subject (see `by_content`).
    pub fn route_by_content(&mut self) {
        self.by_content = true;
    }

    /// The partition count a checkpoint of [`Queues::checkpoint`] was made with.
    pub fn count_in(bytes: &[u8]) -> Option<u32> {
        let body = (bytes.strip_prefix(MAGIC_1.as_slice()))
            .or_else(|| bytes.strip_prefix(MAGIC.as_slice()))?;
        let (_bus, body) = body.split_first_chunk::<8>()?;
        let (count, _) = body.split_first_chunk::<4>()?;
        Some(u32::from_le_bytes(*count))
    }

    /// From [`Queues::checkpoint`]'s bytes, with what it recorded in force; `current` (the
    /// policy and overrides in force now) only for a checkpoint written before it recorded them.
    pub fn from_checkpoint(bytes: &[u8], current: (Policy, InForce)) -> StoreResult<Self> {
        let refused = |why: &str| StoreError::Backend(format!("partition checkpoint: {why}"));
        let (body, recorded) = match bytes.strip_prefix(MAGIC_1.as_slice()) {
            Some(body) => (body, None),
            None => (
                (bytes.strip_prefix(MAGIC.as_slice())).ok_or(refused("magic"))?,
                Some(()),
            ),
        };
        let (bus, body) = body.split_first_chunk::<8>().ok_or(refused("truncated"))?;
        let (count, mut body) = body.split_first_chunk::<4>().ok_or(refused("truncated"))?;
        let mut complete = Vec::new();
        for _ in 0..u32::from_le_bytes(*count) {
            let (done, rest) = body.split_first_chunk::<8>().ok_or(refused("truncated"))?;
            complete.push(u64::from_le_bytes(*done));
            body = rest;
        }
        let (policy, recorded) = match recorded {
            None => {
                let (policy, in_force) = current;
                let ids = ids::IdCheck::default();
                (policy, Recorded { in_force, ids })
            }
            Some(()) => {
                let (len, rest) = body.split_first_chunk::<4>().ok_or(refused("truncated"))?;
                let len = u32::from_le_bytes(*len) as usize;
                let (json, rest) = rest.split_at_checked(len).ok_or(refused("truncated"))?;
                body = rest;
                let recorded: Recorded =
                    serde_json::from_slice(json).map_err(|e| refused(&e.to_string()))?;
                let policy = (recorded.in_force.parsed_policy()).map_err(|e| refused(&e))?;
                (policy, recorded)
            }
        };
        let partition =
            Partition::from_checkpoint(policy, body).map_err(|e| refused(&e.to_string()))?;
        if complete.len() != partition.count() as usize {
            return Err(refused("another partition count"));
        }
        Ok(Self::around(
            partition,
            complete,
            u64::from_le_bytes(*bus).saturating_sub(1),
            recorded,
        ))
    }

    /// The bus sequence to read from again after [`Queues::checkpoint`], the stream position
    /// to read from, and the partition's state (with what it knows of the others' progress).
    /// Written only when every fact it made is published.
    pub fn checkpoint(&self) -> StoreResult<Vec<u8>> {
        let mut bytes = MAGIC.to_vec();
        bytes.extend_from_slice(&self.bus_from().to_le_bytes());
        // As many as the partition count, a u32.
        bytes.extend_from_slice(&self.partition.count().to_le_bytes());
        for done in &self.complete {
            bytes.extend_from_slice(&done.to_le_bytes());
        }
        self.record(&mut bytes)?;
        let state =
            (self.partition.checkpoint()).map_err(|e| StoreError::Backend(e.to_string()))?;
        bytes.extend_from_slice(&state);
        Ok(bytes)
    }

    /// Where the bus must be read again from so that every fact not applied yet comes back.
    fn bus_from(&self) -> u64 {
        (self.shared.values())
            .filter_map(|change| match change {
                Change::Fact(_, seq) => *seq,
                Change::Global(_) | Change::Control(_) => None,
            })
            .min()
            .unwrap_or(self.bus_read_through + 1)
    }

    /// Where the event stream is to be read from.
    pub fn stream_from(&self) -> u64 {
        self.read_through + 1
    }

    pub fn bus_read_from(&self) -> u64 {
        self.bus_read_through + 1
    }

    pub fn partition(&self) -> &Partition {
        &self.partition
    }

    pub fn partition_mut(&mut self) -> &mut Partition {
        &mut self.partition
    }

    /// The last event position whose account part was done.
    pub fn events_through(&self) -> u64 {
        self.partition.through().0
    }

    /// Takes events read from the stream (in position order; anything at or below what was
    /// read already is a redelivery and skipped), control messages opened with `seal`.
    /// Returns the lines it could not read.
    pub fn take_events(
        &mut self,
        batch: Vec<StreamEvent>,
        seal: &ControlSeal,
    ) -> Vec<(u64, String)> {
        let (index, count) = (self.partition.index(), self.partition.count());
        let (events_through, shared_through) = self.partition.through();
        let mut refused = Vec::new();
        for mut event in batch {
            if event.position <= self.read_through {
                continue;
            }
            self.read_through = event.position;
            if event.control {
                self.take_control(event, shared_through, seal);
                continue;
            }
            if self.by_content {
                event.subject_partition = routed_by_content(&event.body, count);
            }
            let (position, subject) = (event.position, event.subject_partition);
            if let Some(other) = subject.filter(|&p| p != index) {
                if self
                    .ids
                    .admit(&mut self.partition, (position, false), &event.body, None)
                {
                    self.others.read(other, position, &self.complete);
                }
                continue;
            }
            // Its own subject or the global one: the line is parsed once, for the id check
            // and for the work.
            // A line that is not UTF-8, or does not parse, keeps its bytes for the id check.
            let decoded = match String::from_utf8(event.body) {
                Ok(line) => match parse_line(line.trim_end()) {
                    Ok(parsed) => Ok((line, parsed)),
                    Err(error) => Err((line.into_bytes(), error.to_string())),
                },
                Err(error) => Err((error.into_bytes(), "not UTF-8".to_owned())),
            };
            let (body, read) = match &decoded {
                Ok((line, parsed)) => (line.as_bytes(), Some((parsed.id.as_str(), parsed.ts))),
                Err((bytes, _)) => (bytes.as_slice(), None),
            };
            let own = subject == Some(index);
            if !self
                .ids
                .admit(&mut self.partition, (position, own), body, read)
            {
                continue;
            }
            let (line, parsed) = match decoded {
                Ok(pair) => pair,
                Err((_, error)) => {
                    refused.push((position, error));
                    continue;
                }
            };
            let global = event_partition(&parsed, count).is_none();
            let owner = Partition::owner(&parsed, count);
            if let Some(other) = owner.filter(|&p| global && p != index) {
                self.others.read(other, event.position, &self.complete);
            }
            if !global && owner != Some(index) {
                refused.push((event.position, format!("not partition {index}'s account")));
                continue;
            }
            if global && event.position > shared_through {
                let change = Change::Global(Box::new(parsed.clone()));
                self.shared.insert((event.position, 0), change);
            }
            // A global event without an account is logged by partition 0.
            let logs = owner == Some(index) || (owner.is_none() && index == 0);
            if logs && event.position > events_through {
                self.own.push_back((event.position, parsed, line));
            }
        }
        refused
    }

    /// Takes a message of the bus: its facts, and how far its partition is complete.
    pub fn take_facts(&mut self, batch: FactBatch) -> Result<(), String> {
        self.bus_read_through = self.bus_read_through.max(batch.seq);
        let (_, shared_through) = self.partition.through();
        for bytes in &batch.facts {
            let fact = Fact::decode(bytes).map_err(|e| e.to_string())?;
            if fact.position <= shared_through {
                continue;
            }
            let entry = self.shared.entry((fact.position, 1));
            let change = entry.or_insert(Change::Fact(Box::new(fact), None));
            if let Change::Fact(_, seq @ None) = change {
                *seq = Some(batch.seq);
            }
        }
        if let Some(done) = self.complete.get_mut(batch.partition as usize) {
            *done = (*done).max(batch.complete_through);
            self.others.reported(batch.partition, *done);
        }
        Ok(())
    }

    /// Complete through: every own event up to there is processed (and, once the caller
    /// published what [`Queues::step`] returned, its fact is out).
    pub fn complete_own(&self) -> u64 {
        match self.own.front() {
            Some((position, ..)) => self.read_through.min(position - 1),
            None => self.read_through,
        }
    }

    /// Whether every partition (this one by what it did) is complete through `at`; `but`
    /// leaves one out.
    fn all_complete(&self, at: u64, but: Option<u32>) -> bool {
        let own = self.partition.index() as usize;
        let but = but.map(|q| q as usize);
        (self.complete.iter().enumerate()).all(|(q, done)| {
            Some(q) == but
                || if q == own {
                    self.complete_own() >= at
                } else {
                    (self.others).complete_through(q, *done, self.read_through) >= at
                }
        })
    }

    /// Takes every step the rules allow, until none is: shared changes (rule 1) and own events
    /// (rule 2 for deciding ones, rule 3 for the rest).
    pub fn step(&mut self) -> Stepped {
        let mut out = Stepped::default();
        loop {
            let mut moved = false;
            while let Some((&(at, kind), _)) = self.shared.first_key_value() {
                if !self.all_complete(at - 1, None) {
                    break;
                }
                match self.shared.remove(&(at, kind)) {
                    Some(Change::Global(event)) => self.partition.apply_global(at, &event),
                    Some(Change::Fact(fact, _)) => self.partition.apply_fact(&fact),
                    Some(Change::Control(control)) => self.apply_control(at, *control),
                    None => {}
                }
                moved = true;
            }
            while let Some((at, event, _)) = self.own.front() {
                let at = *at;
                // Own events wait for an operator's change before them (overrides decide
                // whether an event hands a fact out); deciding ones for every shared change.
                let waits = self.controls.first().is_some_and(|&c| c < at)
                    || (event.body.asks_for_decision()
                        && !(self
                            .shared
                            .first_key_value()
                            .is_none_or(|(&(next, _), _)| next >= at)
                            && self.all_complete(at - 1, Some(self.partition.index()))));
                if waits {
                    break;
                }
                let Some((at, event, line)) = self.own.pop_front() else {
                    break;
                };
                self.process(at, &event, &line, &mut out);
                moved = true;
            }
            if !moved {
                let (events, shared) = self.partition.through();
                self.ids.forget_through(events.min(shared));
                out.ignored = self.ids.take_ignored();
                return out;
            }
        }
    }

    /// An own event's account part (a global event without an account is only logged here).
    fn process(&mut self, at: u64, event: &ContractEvent, line: &str, out: &mut Stepped) {
        out.logged.push(crate::risk::log_entry(event, line));
        if Partition::owner(event, self.partition.count()).is_none() {
            return;
        }
        out.events += 1;
        let (outcome, fact) = self.partition.process(at, event);
        if let Outcome::Decided(decision, features) = outcome {
            out.decisions
                .push(crate::risk::stored_decision(event, &decision, &features));
        }
        if let Some(fact) = fact {
            out.facts.push(fact.encode());
            let fact = Box::new(fact.into_owned());
            self.shared.insert((at, 1), Change::Fact(fact, None));
        }
    }
}

/// The control subject (`control`) and the checkpoint's record of it and of the id check.
impl Queues {
    /// A control message read at `event.position`: a shared change there, unless applied
    /// already (before a restart). One that `seal` does not open (not sealed by a serve process
    /// of this deployment, or not readable) is skipped by every partition.
    fn take_control(&mut self, event: StreamEvent, shared_through: u64, seal: &ControlSeal) {
        if event.position <= shared_through {
            return;
        }
        match seal.open(&event.body) {
            Ok(message) => {
                let change = Change::Control(Box::new(message));
                self.shared.insert((event.position, 0), change);
                self.controls.insert(event.position);
            }
            Err(error) => {
                tracing::error!(position = event.position, %error, "a control message refused; skipped");
            }
        }
    }

    fn apply_control(&mut self, at: u64, message: ControlMessage) {
        self.controls.remove(&at);
        self.in_force.apply(&mut self.partition, at, message);
    }

    /// What operators put in force and where the id check stands, after the positions.
    fn record(&self, bytes: &mut Vec<u8>) -> StoreResult<()> {
        let recorded = Recorded {
            in_force: self.in_force.clone(),
            ids: self.ids.clone(),
        };
        let json = serde_json::to_vec(&recorded).map_err(|e| StoreError::Backend(e.to_string()))?;
        let len = u32::try_from(json.len())
            .map_err(|_| StoreError::Backend("partition checkpoint: overrides too large".into()))?;
        bytes.extend_from_slice(&len.to_le_bytes());
        bytes.extend_from_slice(&json);
        Ok(())
    }

    /// What operators put in force here (policy, overrides).
    pub fn in_force(&self) -> &InForce {
        &self.in_force
    }
}

/// The other partitions' events read but not yet covered by their progress, so that a
/// partition's completeness can be told past its last report: with no event of its own between
/// its report and `x`, it has nothing to do there and no fact to hand out, so it is complete
/// through `x` (its facts up to its report are here: the bus brings them before the report).
///
/// After a restart the stream is read again only from `read_through + 1`; what another
/// partition had between its last report and there is not known, so until its reports pass
/// that point (`blind_through`) only its reports count.
#[derive(Debug)]
struct Others {
    /// Per partition, the positions of its events read after its report, in order.
    pending: Vec<VecDeque<u64>>,
    blind_through: u64,
}

impl Others {
    fn new(count: usize, blind_through: u64) -> Self {
        Self {
            pending: vec![VecDeque::new(); count],
            blind_through,
        }
    }

    /// Partition `q` has an event at `position` (read in position order).
    fn read(&mut self, q: u32, position: u64, complete: &[u64]) {
        let q = q as usize;
        if let (Some(pending), Some(&done)) = (self.pending.get_mut(q), complete.get(q))
            && position > done
        {
            pending.push_back(position);
        }
    }

    /// Partition `q` reported it is complete through `done`.
    fn reported(&mut self, q: u32, done: u64) {
        if let Some(pending) = self.pending.get_mut(q as usize) {
            while pending.front().is_some_and(|&at| at <= done) {
                pending.pop_front();
            }
        }
    }

    /// How far partition `q`, which reported `done`, is complete, given the stream was read
    /// through `read_through`.
    fn complete_through(&self, q: usize, done: u64, read_through: u64) -> u64 {
        if done < self.blind_through {
            return done;
        }
        let next = self.pending.get(q).and_then(VecDeque::front);
        next.map_or(read_through, |&at| at - 1).max(done)
    }
}

/// The partition `count` partitions route a stream line to, as a publisher does
/// (`None`: the global subject); a line that does not read goes to partition 0, which refuses
/// it (so it is said once).
fn routed_by_content(body: &[u8], count: u32) -> Option<u32> {
    let parsed = std::str::from_utf8(body)
        .ok()
        .map(|line| parse_line(line.trim_end()));
    match parsed {
        Some(Ok(event)) => event_partition(&event, count),
        _ => Some(0),
    }
}
