//! One owned partition at work: from its checkpoint `risk.<p>`, it reads the event stream and
//! the fact bus, takes every step the rules allow (`queues`), and for each round publishes its
//! facts with its progress, then hands what it logs and decides to its `committer`, which
//! stores it under the lease and then acknowledges. Nothing another partition waits for waits
//! on the database. A round whose facts cannot be published, or a commit that fails, ends the
//! work (nothing more is stored or acknowledged; whoever holds the lease next starts again from
//! the checkpoint, and event ids make the redo harmless). Between rounds it answers the
//! process's views of the shared state (`views`).

use super::committer::{Committer, Stored};
use super::queues::Queues;
use super::{Context, ViewRequest};
use crate::error::AppResult;
use crate::ports::{EngineCheckpoint, FactBatch, Write};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// A checkpoint this long after the last if the partition did anything (and after the
/// configured number of its own events).
const CHECKPOINT_EVERY: Duration = Duration::from_secs(10);
/// Waits at most this long for input before it looks again (and reports progress).
const IDLE_WAIT: Duration = Duration::from_millis(50);
/// Stream batches or bus messages taken per round at most.
const ROUND_INPUTS: usize = 64;

/// Works partition `partition` under `epoch` until `hand_back` turns true (then it queues a
/// last checkpoint, stores everything queued, and returns) or something fails.
pub(crate) async fn run(
    ctx: Arc<Context>,
    partition: u32,
    epoch: i64,
    mut hand_back: watch::Receiver<bool>,
) -> AppResult<()> {
    let queues = load(&ctx, partition).await?;
    let failed = super::failure(partition);
    let from = queues.stream_from();
    let generation = ctx.layout.generation;
    let feed = (ctx.events.open(partition, generation, from).await).map_err(failed)?;
    let mut bus = (ctx.bus.read(generation, queues.bus_read_from()).await).map_err(failed)?;
    tracing::info!(partition, epoch, from, "partition taken");
    let committer = Committer::start(ctx.clone(), partition, epoch, feed.acker.clone());
    // Answers the process's views of the shared state while it works (`views`).
    let (_registration, mut views) = ctx.risk.partition_views().register(partition);
    let mut work = Work {
        ctx: &ctx,
        partition,
        published: queues.complete_own(),
        queues,
        batches: feed.batches,
        committer,
        since_checkpoint: 0,
        checkpoint_due: tokio::time::Instant::now() + CHECKPOINT_EVERY,
    };
    let worked = (work.until_handed_back(&mut hand_back, &mut bus, &mut views)).await;
    // What was queued is stored (or the first failure said) before the lease can go.
    let stored = work.committer.finish().await;
    if worked.is_ok() && stored.is_ok() {
        tracing::info!(partition, "partition handed back");
    }
    worked.and(stored)
}

/// A partition at work.
struct Work<'c> {
    ctx: &'c Context,
    partition: u32,
    queues: Queues,
    batches: tokio::sync::mpsc::Receiver<Vec<crate::ports::StreamEvent>>,
    committer: Committer,
    /// The progress published last.
    published: u64,
    since_checkpoint: u64,
    checkpoint_due: tokio::time::Instant,
}

impl Work<'_> {
    /// Rounds until `hand_back` turns true (then a last checkpoint is queued) or something
    /// fails.
    async fn until_handed_back(
        &mut self,
        hand_back: &mut watch::Receiver<bool>,
        bus: &mut tokio::sync::mpsc::Receiver<FactBatch>,
        views: &mut tokio::sync::mpsc::Receiver<ViewRequest>,
    ) -> AppResult<()> {
        let failed = super::failure(self.partition);
        loop {
            tokio::select! {
                _ = hand_back.changed() => return self.checkpoint().await,
                batch = self.batches.recv() => {
                    let batch = batch.ok_or_else(|| failed("the event stream ended".into()))?;
                    take_events(&mut self.queues, batch, &self.ctx.seal);
                }
                batch = bus.recv() => {
                    let batch = batch.ok_or_else(|| failed("the fact bus ended".into()))?;
                    self.queues.take_facts(batch).map_err(failed)?;
                }
                Some(request) = views.recv() => {
                    request.answer(self.queues.partition().engine());
                    continue;
                }
                () = tokio::time::sleep(IDLE_WAIT) => {}
            }
            for _ in 0..ROUND_INPUTS {
                let Ok(batch) = self.batches.try_recv() else {
                    break;
                };
                take_events(&mut self.queues, batch, &self.ctx.seal);
            }
            for _ in 0..ROUND_INPUTS {
                let Ok(batch) = bus.try_recv() else { break };
                self.queues.take_facts(batch).map_err(failed)?;
            }
            if self.committer.stopped() {
                return Ok(());
            }
            self.round().await?;
        }
    }

    /// The steps the rules allow now: their facts and the progress published, then what they
    /// logged and decided handed to the committer; a checkpoint when one is due.
    async fn round(&mut self) -> AppResult<()> {
        let partition = self.partition;
        let failed = super::failure(partition);
        let stepped = self.queues.step();
        let decided = stepped.decisions.len() as u64;
        let complete = self.queues.complete_own();
        let moved = complete > self.published || !stepped.facts.is_empty();
        if moved {
            let batch = FactBatch {
                seq: 0,
                partition,
                facts: stepped.facts,
                complete_through: complete,
            };
            (self
                .ctx
                .bus
                .publish(self.ctx.layout.generation, self.published, &batch))
            .await
            .map_err(failed)?;
            self.published = complete;
        }
        let mut round = Stored {
            ack_through: if moved { complete } else { 0 },
            ..Stored::default()
        };
        round
            .writes
            .extend(stepped.ignored.into_iter().map(Write::RecordIgnored));
        if !stepped.logged.is_empty() || !stepped.decisions.is_empty() {
            round
                .writes
                .extend(stepped.logged.into_iter().map(Write::LogEventOnce));
            round
                .writes
                .extend(stepped.decisions.into_iter().map(Write::InsertDecision));
            let engine = self.queues.partition_mut().engine_mut();
            let alerts = engine.take_alerts().into_iter();
            round.writes.extend(alerts.map(crate::risk::stored_alert));
            round.marked = engine.take_propagations();
        }
        if !round.writes.is_empty() || round.ack_through > 0 {
            self.store(round).await;
        }
        self.ctx.gauges.worked(
            partition,
            self.queues.stream_from() - 1,
            complete,
            stepped.events,
            decided,
        );
        self.since_checkpoint += stepped.events;
        let every = self.ctx.settings.checkpoint_every_events;
        let many = every > 0 && self.since_checkpoint >= every;
        let due = self.since_checkpoint > 0 && tokio::time::Instant::now() >= self.checkpoint_due;
        if many || due {
            self.checkpoint().await?;
        }
        Ok(())
    }

    /// Queues the partition's checkpoint (every fact it made is published by now) behind
    /// the writes before it.
    async fn checkpoint(&mut self) -> AppResult<()> {
        // Seconds for a large partition: the worker's other tasks (HTTP requests among them)
        // move to another thread meanwhile. The partition is this task's alone, so nothing
        // else waits for it.
        let state = crate::risk::off_the_workers(|| self.queues.checkpoint())?;
        let checkpoint = EngineCheckpoint {
            name: self.ctx.layout.checkpoint_name(self.partition),
            seq: i64::try_from(self.queues.events_through()).unwrap_or(i64::MAX),
            state,
        };
        self.store(Stored {
            writes: vec![Write::SaveCheckpoint(checkpoint)],
            ..Stored::default()
        })
        .await;
        self.since_checkpoint = 0;
        self.checkpoint_due = tokio::time::Instant::now() + CHECKPOINT_EVERY;
        Ok(())
    }

    /// Hands a round to the committer. Refused only when its storing stopped: the loop sees
    /// that next, and `run` reports the committer's failure.
    async fn store(&self, round: Stored) {
        let _stopped = self.committer.store(round).await;
    }
}

fn take_events(
    queues: &mut Queues,
    batch: Vec<crate::ports::StreamEvent>,
    seal: &super::ControlSeal,
) {
    for (position, reason) in queues.take_events(batch, seal) {
        tracing::warn!(position, %reason, "an event on the stream is refused; skipped");
    }
}

/// The partition from its checkpoint (with what operators had in force at its position), or
/// fresh with what is in force now. In a layout whose count was changed (generation 2 on), the
/// stream holds events routed by another count: their partition is read from their lines.
async fn load(ctx: &Context, partition: u32) -> AppResult<Queues> {
    let current = ctx.in_force().await?;
    let layout = ctx.layout;
    let mut queues = match ctx
        .store
        .checkpoint(&layout.checkpoint_name(partition))
        .await?
    {
        Some(checkpoint) => Queues::from_checkpoint(&checkpoint.state, current)?,
        None => {
            let (policy, in_force) = current;
            Queues::new(policy, in_force, partition, layout.partitions)
        }
    };
    let count = queues.partition().count();
    if count != layout.partitions {
        return Err(super::failure(partition)(format!(
            "its checkpoint was made with {count} partitions, the layout has {}",
            layout.partitions
        )));
    }
    if layout.generation >= 2 {
        queues.route_by_content();
    }
    Ok(queues)
}
