//! One owned partition at work: from its checkpoint `risk.<p>`, it reads the event stream and
//! the fact bus, takes every step the rules allow (`queues`), and for each round stores the
//! events it logs and its decisions in one commit that checks its lease's epoch, then
//! publishes its facts with its progress, then acknowledges. A round that cannot be stored
//! ends the work (nothing acknowledged; whoever holds the lease next starts again from the
//! checkpoint, and event ids make the redo harmless).

use super::Context;
use super::queues::Queues;
use crate::error::{AppError, AppResult};
use crate::ports::{ChangeSet, EngineCheckpoint, FactBatch, StoreError, Write};
use std::time::Duration;
use tokio::sync::watch;

/// A checkpoint this long after the last if the partition did anything (and after the
/// configured number of its own events).
const CHECKPOINT_EVERY: Duration = Duration::from_secs(10);
/// Waits at most this long for input before it looks again (and reports progress).
const IDLE_WAIT: Duration = Duration::from_millis(50);
/// Stream batches or bus messages taken per round at most.
const ROUND_INPUTS: usize = 64;

/// The checkpoint's name for partition `p`.
pub fn checkpoint_name(partition: u32) -> String {
    format!("{}.{partition}", crate::risk::CHECKPOINT_NAME)
}

/// Works partition `partition` under `epoch` until `hand_back` turns true (then it writes a
/// checkpoint and returns) or something fails.
pub(crate) async fn run(
    ctx: &Context,
    partition: u32,
    epoch: i64,
    mut hand_back: watch::Receiver<bool>,
) -> AppResult<()> {
    let queues = load(ctx, partition).await?;
    let failed = |e: String| AppError::Internal(format!("partition {partition}: {e}"));
    let from = queues.stream_from();
    let feed = (ctx.events.open(partition, from).await).map_err(failed)?;
    let mut bus = ctx.bus.read(queues.bus_read_from()).await.map_err(failed)?;
    tracing::info!(partition, epoch, from, "partition taken");
    let mut work = Work {
        ctx,
        partition,
        epoch,
        published: queues.complete_own(),
        queues,
        feed,
        since_checkpoint: 0,
        first_decision: true,
        checkpoint_due: tokio::time::Instant::now() + CHECKPOINT_EVERY,
    };
    loop {
        tokio::select! {
            _ = hand_back.changed() => {
                write_checkpoint(ctx, &work.queues, partition, epoch).await?;
                tracing::info!(partition, "partition handed back");
                return Ok(());
            }
            batch = work.feed.batches.recv() => {
                let batch = batch.ok_or_else(|| failed("the event stream ended".into()))?;
                take_events(&mut work.queues, batch);
            }
            batch = bus.recv() => {
                let batch = batch.ok_or_else(|| failed("the fact bus ended".into()))?;
                work.queues.take_facts(batch).map_err(failed)?;
            }
            () = tokio::time::sleep(IDLE_WAIT) => {}
        }
        for _ in 0..ROUND_INPUTS {
            let Ok(batch) = work.feed.batches.try_recv() else {
                break;
            };
            take_events(&mut work.queues, batch);
        }
        for _ in 0..ROUND_INPUTS {
            let Ok(batch) = bus.try_recv() else { break };
            work.queues.take_facts(batch).map_err(failed)?;
        }
        work.round().await?;
    }
}

/// A partition at work.
struct Work<'c> {
    ctx: &'c Context,
    partition: u32,
    epoch: i64,
    queues: Queues,
    feed: crate::ports::EventFeed,
    /// The progress published last.
    published: u64,
    since_checkpoint: u64,
    first_decision: bool,
    checkpoint_due: tokio::time::Instant,
}

impl Work<'_> {
    /// The steps the rules allow now: stored (under the lease), then their facts and the
    /// progress published, then acknowledged; a checkpoint when one is due.
    async fn round(&mut self) -> AppResult<()> {
        let (ctx, partition) = (self.ctx, self.partition);
        let failed = |e: String| AppError::Internal(format!("partition {partition}: {e}"));
        let stepped = self.queues.step();
        let complete = self.queues.complete_own();
        if !stepped.logged.is_empty() || !stepped.decisions.is_empty() {
            let mut writes = vec![holds(ctx, partition, self.epoch)];
            writes.extend(stepped.logged.into_iter().map(Write::LogEventOnce));
            let decided = !stepped.decisions.is_empty();
            writes.extend(stepped.decisions.into_iter().map(Write::InsertDecision));
            let engine = self.queues.partition_mut().engine_mut();
            writes.extend(
                engine
                    .take_alerts()
                    .into_iter()
                    .map(crate::risk::stored_alert),
            );
            let marked = engine.take_propagations();
            commit(ctx, writes).await?;
            ctx.risk.requeue_propagations(marked);
            if decided && std::mem::take(&mut self.first_decision) {
                // The failover figure: from a process's death to this line of the taker.
                let epoch = self.epoch;
                tracing::info!(
                    partition,
                    epoch,
                    "first decision stored since the partition was taken"
                );
            }
        }
        if complete > self.published || !stepped.facts.is_empty() {
            let batch = FactBatch {
                seq: 0,
                partition,
                facts: stepped.facts,
                complete_through: complete,
            };
            ctx.bus
                .publish(self.published, &batch)
                .await
                .map_err(failed)?;
            self.feed
                .acker
                .ack_through(complete)
                .await
                .map_err(failed)?;
            self.published = complete;
        }
        self.since_checkpoint += stepped.events;
        let now = tokio::time::Instant::now();
        let every = ctx.settings.checkpoint_every_events;
        let many = every > 0 && self.since_checkpoint >= every;
        if many || (self.since_checkpoint > 0 && now >= self.checkpoint_due) {
            write_checkpoint(ctx, &self.queues, partition, self.epoch).await?;
            self.since_checkpoint = 0;
            self.checkpoint_due = now + CHECKPOINT_EVERY;
        }
        Ok(())
    }
}

fn take_events(queues: &mut Queues, batch: Vec<crate::ports::StreamEvent>) {
    for (position, reason) in queues.take_events(batch) {
        tracing::warn!(position, %reason, "an event on the stream is refused; skipped");
    }
}

fn holds(ctx: &Context, partition: u32, epoch: i64) -> Write {
    Write::HoldsLease {
        partition,
        owner: ctx.node.clone(),
        epoch,
    }
}

/// Commits a round's writes; a lease lost is said as such.
async fn commit(ctx: &Context, writes: Vec<Write>) -> AppResult<()> {
    match ctx
        .store
        .commit(ChangeSet {
            writes,
            ..ChangeSet::default()
        })
        .await
    {
        Ok(()) => Ok(()),
        Err(StoreError::Conflict(why)) => Err(AppError::Internal(why)),
        Err(error) => Err(error.into()),
    }
}

/// The partition from its checkpoint (with what operators had in force at its position), or
/// fresh with what is in force now.
async fn load(ctx: &Context, partition: u32) -> AppResult<Queues> {
    let current = ctx.in_force().await?;
    match ctx.store.checkpoint(&checkpoint_name(partition)).await? {
        Some(checkpoint) => Ok(Queues::from_checkpoint(&checkpoint.state, current)?),
        None => {
            let (policy, in_force) = current;
            Ok(Queues::new(
                policy,
                in_force,
                partition,
                ctx.settings.partitions,
            ))
        }
    }
}

/// Stores the checkpoint (every fact it made is published by now), under the lease.
async fn write_checkpoint(
    ctx: &Context,
    queues: &Queues,
    partition: u32,
    epoch: i64,
) -> AppResult<()> {
    let state = queues.checkpoint()?;
    let checkpoint = EngineCheckpoint {
        name: checkpoint_name(partition),
        seq: i64::try_from(queues.events_through()).unwrap_or(i64::MAX),
        state,
    };
    commit(
        ctx,
        vec![
            holds(ctx, partition, epoch),
            Write::SaveCheckpoint(checkpoint),
        ],
    )
    .await
}
