//! A feed through `N` partitions in one process, with the exchange of facts and progress the
//! service will run across processes: `portcullis replay --partitions N`, and the proof (in
//! `portcullis-sim`'s tests) that it decides what one engine decides under any valid schedule.
//!
//! The feed is taken a batch at a time. Each event gets its position (counted from 1 over the
//! whole feed); ids are checked against the recent ones where the feed is read, as one engine
//! checks them (`Partition::check_id`, the check of `Engine::process`: duplicates and events
//! older than the horizon are ignored), because that needs every id: here once, with partition
//! 0's set; in the service every partition checks every id of the stream (they all hold the
//! same set). An event's account part goes to its owner's queue, a global
//! event's global part to every partition's shared queue, and each fact, as it is made, to
//! every partition's shared queue (its maker's too). Then, until every queue is empty, one of
//! the steps the rules allow (see `partitioned`) is taken: a partition's next event, or its
//! next shared change. Which one is the schedule's choice; the result never depends on it.

use super::{Fact, Partition};
use crate::engine::{EngineStats, Outcome};
use crate::policy::Policy;
use portcullis_core::contract::ContractEvent;
use portcullis_core::partition::event_partition;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};

/// Which of the allowed steps is taken next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Schedule {
    /// The one that comes first in the feed (always allowed).
    InOrder,
    /// Any allowed one, picked by a generator seeded with this (tests).
    Seeded(u64),
}

/// See the module documentation.
#[derive(Debug)]
pub struct Replay {
    partitions: Vec<Partition>,
    /// The position the next event gets.
    next_position: u64,
    /// Facts handed out so far.
    facts: u64,
    schedule: Schedule,
    rng: u64,
}

/// A shared change: a global event's global part, or a fact.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Change {
    /// Index in the batch's events.
    Global(usize),
    /// Index in the batch's facts.
    Fact(usize),
}

/// One step of one partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Event,
    Shared,
}

/// One batch's queues.
struct Round<'e> {
    events: &'e [ContractEvent],
    /// Per partition: the events whose account part is its, as (position, index in `events`).
    queues: Vec<VecDeque<(u64, usize)>>,
    /// Per partition: the shared changes it has not applied, first position first (a global
    /// part before the fact at the same position).
    shared: Vec<BinaryHeap<Reverse<(u64, Change)>>>,
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
            next_position: 1,
            facts: 0,
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
        while let Some((p, step)) = self.pick(&round) {
            round.step(&mut self.partitions[p], p, step);
            after_step(&mut self.partitions[p]);
        }
        self.facts += round.facts.len() as u64;
        debug_assert!(round.queues.iter().all(VecDeque::is_empty));
        debug_assert!(round.shared.iter().all(BinaryHeap::is_empty));
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
            shared: vec![BinaryHeap::new(); n],
            facts: Vec::new(),
            complete: vec![0; n],
            last: self.next_position - 1,
            count: self.partitions.first().map_or(1, Partition::count),
            outcomes: vec![None; events.len()],
        };
        for (index, event) in events.iter().enumerate() {
            let position = first + index as u64;
            // Partition 0's set stands for all: each would hold the same (`check_id`).
            if let Some(refused) = self.partitions[0].check_id(&event.id, event.ts.as_millis()) {
                round.outcomes[index] = Some(refused);
                continue;
            }
            if event_partition(event, round.count).is_none() {
                let change = Reverse((position, Change::Global(index)));
                round.shared.iter_mut().for_each(|q| q.push(change));
            }
            if let Some(p) = Partition::owner(event, round.count) {
                round.queues[p as usize].push_back((position, index));
            }
        }
        for p in 0..n {
            round.complete[p] = round.completed(p);
        }
        round
    }

    /// The step taken next, or `None` when the batch is done.
    fn pick(&mut self, round: &Round<'_>) -> Option<(usize, Step)> {
        let n = round.queues.len();
        match self.schedule {
            // The first thing in the feed is always allowed.
            Schedule::InOrder => (0..n)
                .flat_map(|p| {
                    let event = round.next_event(p).map(|at| (at, 1, p, Step::Event));
                    let shared = round.next_shared(p).map(|at| (at, 0, p, Step::Shared));
                    [event, shared]
                })
                .flatten()
                .min_by_key(|(at, order, p, _)| (*at, *order, *p))
                .map(|(_, _, p, step)| (p, step)),
            Schedule::Seeded(_) => {
                let allowed: Vec<(usize, Step)> = (0..n)
                    .flat_map(|p| [(p, Step::Event), (p, Step::Shared)])
                    .filter(|(p, step)| round.allowed(*p, *step))
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
        let checked = self.partitions[0].engine().stats();
        let mut total = EngineStats {
            duplicates: checked.duplicates,
            late: checked.late,
            ..EngineStats::default()
        };
        for partition in &self.partitions {
            total.add_partition(partition.engine().stats());
        }
        // Every event that was not refused by the id check was applied once.
        total.events = self.next_position - 1 - total.duplicates - total.late;
        total
    }

    /// Facts handed out so far: the account events that changed what every account sees.
    pub fn facts(&self) -> u64 {
        self.facts
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
    fn next_event(&self, p: usize) -> Option<u64> {
        self.queues[p].front().map(|(at, _)| *at)
    }

    fn next_shared(&self, p: usize) -> Option<u64> {
        self.shared[p].peek().map(|Reverse((at, _))| *at)
    }

    /// Whether the rules allow `p`'s next `step` now (see `partitioned`).
    fn allowed(&self, p: usize, step: Step) -> bool {
        let complete_through = |at: u64, but: Option<usize>| {
            (self.complete.iter().enumerate()).all(|(q, done)| Some(q) == but || *done >= at)
        };
        match step {
            Step::Shared => self
                .next_shared(p)
                .is_some_and(|at| complete_through(at - 1, None)),
            Step::Event => self.queues[p].front().is_some_and(|&(at, index)| {
                !self.events[index].body.asks_for_decision()
                    || (self.next_shared(p).is_none_or(|next| next >= at)
                        && complete_through(at - 1, Some(p)))
            }),
        }
    }

    /// Complete through the position before its next event, or the whole batch.
    fn completed(&self, p: usize) -> u64 {
        self.queues[p].front().map_or(self.last, |(at, _)| at - 1)
    }

    /// Takes `p`'s next `step`: applies its next shared change, or does its next event's
    /// account part and hands the fact to every partition.
    fn step(&mut self, partition: &mut Partition, p: usize, step: Step) {
        if step == Step::Shared {
            match self.shared[p].pop() {
                Some(Reverse((at, Change::Global(index)))) => {
                    partition.apply_global(at, &self.events[index])
                }
                Some(Reverse((_, Change::Fact(id)))) => partition.apply_fact(&self.facts[id]),
                None => {}
            }
            return;
        }
        let Some((position, index)) = self.queues[p].pop_front() else {
            return;
        };
        let (outcome, fact) = partition.process(position, &self.events[index]);
        self.outcomes[index] = Some(outcome);
        if let Some(fact) = fact {
            let id = self.facts.len();
            self.facts.push(fact);
            let change = Reverse((position, Change::Fact(id)));
            self.shared.iter_mut().for_each(|q| q.push(change));
        }
        self.complete[p] = self.completed(p);
    }
}
