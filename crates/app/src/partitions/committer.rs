//! A partition's writes, stored behind its work instead of in its way: the runner hands each
//! round's writes here and goes on. Two stages, each in order and under the partition's lease,
//! each taking several rounds to a commit when they queue up:
//!
//! 1. **decisions** (with the alerts it reported): stored first, since `POST /v1/decisions`
//!    waits for them, then the guard is handed what confirmations marked;
//! 2. **the event log and checkpoints**: every event the partition logs (far more rows than
//!    decisions, the database's heavier work), then its checkpoints, each after the rows and
//!    decisions before it; then the event stream is acknowledged through what is stored.
//!
//! Why this is safe: nothing another partition waits for is in these writes. Facts and
//! progress go on the bus first (a function of the feed, the same whoever computes them), and
//! a checkpoint is queued only after the facts it covers were published and is stored only
//! after everything before it. If a commit fails (the lease was lost, the database is gone),
//! nothing after it is stored or acknowledged, the work stops, and whoever holds the lease next
//! redoes it from the last checkpoint stored: event ids make the redo harmless. The log trails
//! the decisions by at most [`LOG_QUEUE`] rounds.

use super::Context;
use crate::error::{AppError, AppResult};
use crate::ports::{ChangeSet, EventAcker, StoreError, Write};
use portcullis_engine::Propagation;
use std::sync::Arc;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// Rounds queued at most before the runner waits for the decisions' stage.
const QUEUED_ROUNDS: usize = 64;
/// Rounds at most whose log rows wait for the log's stage before the decisions' stage waits.
pub(crate) const LOG_QUEUE: usize = 256;
/// Log rows at most in one commit of the log's stage (past it, the round that crosses it): a
/// decisions commit waits for the process's commit turn behind at most one such commit.
const LOG_ROWS_PER_COMMIT: usize = 2_048;

/// One round's writes.
#[derive(Debug, Default)]
pub(crate) struct Stored {
    pub writes: Vec<Write>,
    /// What confirmations marked, for the guard once stored.
    pub marked: Vec<Propagation>,
    /// The stream is acknowledged through here once stored (0: nothing to acknowledge).
    pub ack_through: u64,
}

/// What the log's stage stores: log rows and checkpoints, in order.
struct Logged {
    writes: Vec<Write>,
    ack_through: u64,
}

/// The runner's end: see the module documentation.
pub(crate) struct Committer {
    queue: mpsc::Sender<Stored>,
    task: JoinHandle<AppResult<()>>,
}

impl Committer {
    /// Starts storing for `partition` under `epoch`.
    pub fn start(
        ctx: Arc<Context>,
        partition: u32,
        epoch: i64,
        acker: Arc<dyn EventAcker>,
    ) -> Self {
        let (queue, rounds) = mpsc::channel(QUEUED_ROUNDS);
        let (to_log, logged) = mpsc::channel(LOG_QUEUE);
        let stage = Stage {
            ctx,
            partition,
            epoch,
        };
        let log = tokio::spawn(stage.clone().store_log(acker, logged));
        let task = tokio::spawn(stage.store_decisions(rounds, to_log, log));
        Self { queue, task }
    }

    /// Queues a round's writes; waits only when [`QUEUED_ROUNDS`] are queued already. An
    /// error says the storing stopped (its reason comes from [`Committer::finish`]).
    pub async fn store(&self, round: Stored) -> Result<(), ()> {
        self.queue.send(round).await.map_err(|_| ())
    }

    /// Whether the storing stopped (a failed commit).
    pub fn stopped(&self) -> bool {
        self.task.is_finished()
    }

    /// Stores what is queued, then stops; the first failure if there was one.
    pub async fn finish(self) -> AppResult<()> {
        drop(self.queue);
        joined(self.task).await
    }
}

async fn joined(task: JoinHandle<AppResult<()>>) -> AppResult<()> {
    task.await
        .map_err(|e| AppError::Internal(format!("the partition's storing ended: {e}")))?
}

/// What both stages store under.
#[derive(Clone)]
struct Stage {
    ctx: Arc<Context>,
    partition: u32,
    epoch: i64,
}

impl Stage {
    /// Stage 1: decisions and alerts; the rest goes on to the log's stage (`log`), whose
    /// failure, if it stops first, is the one returned.
    async fn store_decisions(
        self,
        mut rounds: mpsc::Receiver<Stored>,
        to_log: mpsc::Sender<Logged>,
        log: JoinHandle<AppResult<()>>,
    ) -> AppResult<()> {
        let mut first_decision = true;
        while let Some(first) = rounds.recv().await {
            let (mut now, mut later) = (vec![self.holds()], Vec::new());
            let (mut marked, mut ack_through) = (Vec::new(), 0);
            let mut next = Some(first);
            while let Some(round) = next {
                for write in round.writes {
                    match write {
                        Write::LogEventOnce(_) | Write::SaveCheckpoint(_) => later.push(write),
                        write => now.push(write),
                    }
                }
                marked.extend(round.marked);
                ack_through = ack_through.max(round.ack_through);
                next = rounds.try_recv().ok();
            }
            let decided = now.iter().any(|w| matches!(w, Write::InsertDecision(_)));
            if now.len() > 1 {
                self.commit(now).await?;
            }
            self.ctx.gauges.stored(self.partition, ack_through);
            self.ctx.risk.requeue_propagations(marked);
            if decided && std::mem::take(&mut first_decision) {
                // The failover figure: from a process's death to this line of the taker.
                let (partition, epoch) = (self.partition, self.epoch);
                tracing::info!(
                    partition,
                    epoch,
                    "first decision stored since the partition was taken"
                );
            }
            let logged = Logged {
                writes: later,
                ack_through,
            };
            if to_log.send(logged).await.is_err() {
                break;
            }
        }
        drop(to_log);
        joined(log).await
    }

    /// Stage 2: the event log and checkpoints, then the acknowledgement.
    async fn store_log(
        self,
        acker: Arc<dyn EventAcker>,
        mut queued: mpsc::Receiver<Logged>,
    ) -> AppResult<()> {
        let failed = super::failure(self.partition);
        while let Some(first) = queued.recv().await {
            let (mut writes, mut ack_through) = (vec![self.holds()], 0);
            let mut next = Some(first);
            while let Some(logged) = next {
                writes.extend(logged.writes);
                ack_through = ack_through.max(logged.ack_through);
                next = (writes.len() < LOG_ROWS_PER_COMMIT)
                    .then(|| queued.try_recv().ok())
                    .flatten();
            }
            if writes.len() > 1 {
                self.commit(writes).await?;
            }
            if ack_through > 0 {
                acker.ack_through(ack_through).await.map_err(failed)?;
                self.ctx.gauges.logged(self.partition, ack_through);
            }
        }
        Ok(())
    }

    /// The lease check every commit of a partition starts with.
    fn holds(&self) -> Write {
        Write::HoldsLease {
            partition: self.partition,
            owner: self.ctx.node.clone(),
            epoch: self.epoch,
            generation: self.ctx.layout.generation,
        }
    }

    /// Commits writes; a lease lost is said as such.
    async fn commit(&self, writes: Vec<Write>) -> AppResult<()> {
        let change = ChangeSet {
            writes,
            ..ChangeSet::default()
        };
        match self.ctx.store.commit(change).await {
            Ok(()) => Ok(()),
            Err(StoreError::Conflict(why)) => Err(AppError::Internal(why)),
            Err(error) => Err(error.into()),
        }
    }
}
