//! A feed through `N` partitions in one process, with the exchange of facts and progress the
//! service will run across processes: `portcullis replay --partitions N`, and the proof (in
//! `portcullis-sim`'s tests) that it decides what one engine decides under any valid schedule.
//!
//! The feed is taken a batch at a time. Each event gets its position (counted from 1 over the
//! whole feed); ids are checked against the recent ones where the feed is read, as one engine
//! checks them (`Engine::process`: duplicates and events older than the horizon are ignored),
//! because that needs every id: in the service the event log's unique ids and the stream's
//! message ids play this part. The rest go to their partition's queue (global ones to every
//! queue). Then, until every queue and inbox is empty, a partition is picked whose next step is
//! allowed (see `partitioned`): its next thing in position order, its own or global event or
//! another partition's fact, once every other partition is complete through the position before.
//! Facts go into the other partitions' inboxes as they are made. Which allowed partition steps
//! is the schedule's choice; the result never depends on it.

use super::{Fact, Partition};
use crate::dedup::{Check, SeenIds};
use crate::engine::{EngineStats, Outcome};
use crate::policy::Policy;
use portcullis_core::contract::ContractEvent;
use portcullis_core::partition::event_partition;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};

/// Which allowed partition steps next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Schedule {
    /// The one whose next thing comes first in the feed (always allowed): one engine's order.
    InOrder,
    /// One of the allowed ones, picked by a generator seeded with this (tests).
    Seeded(u64),
}

/// See the module documentation.
#[derive(Debug)]
pub struct Replay {
    partitions: Vec<Partition>,
    seen_ids: SeenIds,
    /// The position the next event gets.
    next_position: u64,
    duplicates: u64,
    late: u64,
    schedule: Schedule,
    rng: u64,
}

/// One batch's queues and inboxes.
struct Round<'e> {
    events: &'e [ContractEvent],
    /// Per partition: its own and global events, as (position, index in `events`).
    queues: Vec<VecDeque<(u64, usize)>>,
    /// Per partition: other partitions' facts, as (position, index in `facts`).
    inboxes: Vec<BinaryHeap<Reverse<(u64, usize)>>>,
    facts: Vec<Fact<'e>>,
    /// Per partition: complete through this position.
    complete: Vec<u64>,
    /// The batch's last position.
    last: u64,
    /// Partitions.
    count: u32,
    outcomes: Vec<Option<Outcome>>,
}

impl Replay {
    /// `count` partitions (at least 1), each with the policy `policy` makes.
    pub fn new<E>(
        count: u32,
        schedule: Schedule,
        mut policy: impl FnMut() -> Result<Policy, E>,
    ) -> Result<Self, E> {
        let count = count.max(1);
        let seed = match schedule {
            Schedule::InOrder => 0,
            Schedule::Seeded(seed) => seed,
        };
        let partitions = (0..count)
            .map(|p| Ok(Partition::new(policy()?, p, count)))
            .collect::<Result<Vec<Partition>, E>>()?;
        Ok(Self {
            partitions,
            seen_ids: SeenIds::default(),
            next_position: 1,
            duplicates: 0,
            late: 0,
            schedule,
            rng: seed | 1,
        })
    }

    pub fn partitions(&self) -> &[Partition] {
        &self.partitions
    }

    /// For a partition's engine (overrides, reports), or to put one back from its checkpoint.
    pub fn partitions_mut(&mut self) -> &mut [Partition] {
        &mut self.partitions
    }

    /// The events of `batch`, the next part of the feed; their outcomes in feed order.
    pub fn run(&mut self, batch: &[ContractEvent]) -> Vec<Outcome> {
        self.run_observed(batch, &mut |_| {})
    }

    /// As [`Replay::run`], calling `after_step` with the partition after each of its steps
    /// (the checkpoint test puts the partition back from its own checkpoint there).
    pub fn run_observed(
        &mut self,
        batch: &[ContractEvent],
        after_step: &mut dyn FnMut(&mut Partition),
    ) -> Vec<Outcome> {
        let mut round = self.split(batch);
        while let Some(p) = self.pick(&round) {
            round.step(&mut self.partitions[p], p);
            after_step(&mut self.partitions[p]);
        }
        debug_assert!(round.queues.iter().all(VecDeque::is_empty));
        debug_assert!(round.inboxes.iter().all(BinaryHeap::is_empty));
        (round.outcomes.into_iter())
            .map(|o| o.unwrap_or(Outcome::Applied))
            .collect()
    }

    /// Positions, the id check, and each event into its partitions' queues.
    fn split<'e>(&mut self, events: &'e [ContractEvent]) -> Round<'e> {
        let n = self.partitions.len();
        let first = self.next_position;
        self.next_position += events.len() as u64;
        let mut round = Round {
            events,
            queues: vec![VecDeque::new(); n],
            inboxes: vec![BinaryHeap::new(); n],
            facts: Vec::new(),
            complete: vec![0; n],
            last: self.next_position - 1,
            count: self.partitions.first().map_or(1, Partition::count),
            outcomes: vec![None; events.len()],
        };
        for (index, event) in events.iter().enumerate() {
            let position = first + index as u64;
            match self.seen_ids.check(&event.id, event.ts.as_millis()) {
                Check::New => {}
                Check::Duplicate => {
                    self.duplicates += 1;
                    round.outcomes[index] = Some(Outcome::Duplicate);
                    continue;
                }
                Check::Late => {
                    self.late += 1;
                    round.outcomes[index] = Some(Outcome::Late);
                    continue;
                }
            }
            match event_partition(event, round.count) {
                Some(p) => round.queues[p as usize].push_back((position, index)),
                None => round
                    .queues
                    .iter_mut()
                    .for_each(|q| q.push_back((position, index))),
            }
        }
        for p in 0..n {
            round.complete[p] = round.completed(p);
        }
        round
    }

    /// The partition that steps next, or `None` when the batch is done.
    fn pick(&mut self, round: &Round<'_>) -> Option<usize> {
        let next = |p: usize| round.next_of(p);
        match self.schedule {
            Schedule::InOrder => (0..round.queues.len())
                .filter_map(|p| next(p).map(|at| (at, p)))
                .min()
                .map(|(_, p)| p),
            Schedule::Seeded(_) => {
                let allowed: Vec<usize> = (0..round.queues.len())
                    .filter(|&p| next(p).is_some_and(|at| round.others_complete(p, at - 1)))
                    .collect();
                // xorshift64: enough to try many interleavings, the same ones every run.
                self.rng ^= self.rng << 13;
                self.rng ^= self.rng >> 7;
                self.rng ^= self.rng << 17;
                let pick = usize::try_from(self.rng % allowed.len().max(1) as u64).ok()?;
                allowed.get(pick).copied()
            }
        }
    }

    /// The counters one engine would show for the same feed: the partitions' own (an event
    /// every partition applied counts once), with the ids checked here.
    pub fn stats(&self) -> EngineStats {
        let mut total = EngineStats {
            duplicates: self.duplicates,
            late: self.late,
            ..EngineStats::default()
        };
        for partition in &self.partitions {
            let stats = partition.engine().stats();
            for (verdict, n) in &stats.decisions {
                *total.decisions.entry(*verdict).or_default() += n;
            }
            for (rule, n) in &stats.rule_hits {
                *total.rule_hits.entry(rule.clone()).or_default() += n;
            }
            for (rule, n) in &stats.rule_errors {
                *total.rule_errors.entry(rule.clone()).or_default() += n;
            }
            total.changes_applied += stats.changes_applied;
            total.changes_cancelled += stats.changes_cancelled;
            total.changes_unmatched += stats.changes_unmatched;
        }
        // Every event that was not refused by the id check was applied once.
        total.events = self.next_position - 1 - self.duplicates - self.late;
        total
    }

    /// Accounts tracked, over all partitions (each account lives in one).
    pub fn tracked_accounts(&self) -> usize {
        self.partitions
            .iter()
            .map(|p| p.engine().tracked_accounts())
            .sum()
    }
}

impl<'e> Round<'e> {
    /// The position of `p`'s next thing: its next event or its inbox's first fact.
    fn next_of(&self, p: usize) -> Option<u64> {
        let event = self.queues[p].front().map(|(at, _)| *at);
        let fact = self.inboxes[p].peek().map(|Reverse((at, _))| *at);
        match (event, fact) {
            (Some(e), Some(f)) => Some(e.min(f)),
            (e, f) => e.or(f),
        }
    }

    /// Whether every partition but `p` is complete through `position`.
    fn others_complete(&self, p: usize, position: u64) -> bool {
        (self.complete.iter().enumerate()).all(|(q, done)| q == p || *done >= position)
    }

    /// Complete through the position before its next event, or the whole batch.
    fn completed(&self, p: usize) -> u64 {
        self.queues[p].front().map_or(self.last, |(at, _)| at - 1)
    }

    /// `p`'s next thing: a fact that comes before its next event, else that event (a fact at
    /// a global event's position is its owner's, applied after the event).
    fn step(&mut self, partition: &mut Partition, p: usize) {
        let event_at = self.queues[p].front().map_or(u64::MAX, |(at, _)| *at);
        if let Some(Reverse((at, fact))) = self.inboxes[p].peek().copied()
            && at < event_at
        {
            self.inboxes[p].pop();
            partition.apply_fact(&self.facts[fact]);
            return;
        }
        let Some((position, index)) = self.queues[p].pop_front() else {
            return;
        };
        let (outcome, fact) = partition.process(position, &self.events[index]);
        let owner = (self.events[index].account.as_deref())
            .map(|a| portcullis_core::partition::partition_of(a, self.count));
        if owner.unwrap_or(0) == partition.index() {
            self.outcomes[index] = Some(outcome);
        }
        if let Some(fact) = fact {
            let id = self.facts.len();
            self.facts.push(fact);
            for (q, inbox) in self.inboxes.iter_mut().enumerate() {
                if q != p {
                    inbox.push(Reverse((position, id)));
                }
            }
        }
        self.complete[p] = self.completed(p);
    }
}
