//! The partition layout: how many partitions the stored partition checkpoints were made with,
//! and its generation (docs/scaling.md, "Changing the number of partitions"). Recorded as the
//! checkpoint row `risk.layout` (`seq` the generation, the state the count as text), so that
//! the commit's lease check can compare it in the same statement.
//!
//! A process whose `engine_partitions` differs from the stored count runs no partition,
//! unless the operator confirms the change (`partition_resize_from` = the stored count): then
//! the layout moves to the next generation, whose partitions start without a checkpoint and
//! rebuild from the stream's start (decisions and log rows already stored are kept: ids are
//! stored once). Each generation has its own checkpoints, stream consumers and fact-bus
//! subjects; the lease check refuses a commit of another generation, so processes of the old
//! count store nothing once the layout moved.

use super::queues::Queues;
use crate::error::{AppError, AppResult};
use crate::ports::{ChangeSet, Store, Write};

/// The layout's record among the checkpoints.
pub const LAYOUT: &str = "risk.layout";

/// A partition layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    /// 0 before layouts were recorded, 1 for the first recorded; one more at each change of
    /// the count.
    pub generation: i64,
    pub partitions: u32,
}

impl Layout {
    /// Partition `partition`'s checkpoint name: `risk.<p>` in the first generation (as before
    /// layouts were recorded), `risk.g<generation>.<p>` after.
    pub fn checkpoint_name(self, partition: u32) -> String {
        let base = crate::risk::CHECKPOINT_NAME;
        match self.generation {
            0 => format!("{base}.{partition}"),
            generation => format!("{base}.g{generation}.{partition}"),
        }
    }
}

/// The layout stored: its record, else (a deployment from before records) the count in
/// partition 0's checkpoint of the first generation, else none (nothing partitioned yet).
pub async fn stored(store: &dyn Store) -> AppResult<Option<Layout>> {
    if let Some(record) = store.checkpoint(LAYOUT).await? {
        let text = String::from_utf8_lossy(&record.state);
        let partitions = (text.trim().parse::<u32>()).map_err(|_| {
            AppError::Internal(format!("partition layout record unreadable: {text}"))
        })?;
        return Ok(Some(Layout {
            generation: record.seq,
            partitions,
        }));
    }
    let first = Layout {
        generation: 0,
        partitions: 1,
    };
    let checkpoint = store.checkpoint(&first.checkpoint_name(0)).await?;
    Ok(checkpoint
        .and_then(|c| Queues::count_in(&c.state))
        .map(|partitions| Layout {
            generation: 0,
            partitions,
        }))
}

/// The layout this process runs: the stored one when its count is `partitions`; the next
/// generation when the stored count is `resize_from` (the operator's confirmation; the change
/// is made here, once, whichever process comes first); a first record when nothing is stored.
/// Otherwise refused, saying what to do.
pub async fn settle(
    store: &dyn Store,
    partitions: u32,
    resize_from: Option<u32>,
) -> AppResult<Layout> {
    let layout = match stored(store).await? {
        Some(layout) if layout.partitions == partitions => return Ok(layout),
        Some(layout) if resize_from == Some(layout.partitions) => Layout {
            generation: layout.generation + 1,
            partitions,
        },
        Some(layout) => return Err(refusal(layout, partitions)),
        // The first record is generation 1, so that a process that started before it, with no
        // record to go by (generation 0), stores nothing once it is made.
        None => Layout {
            generation: 1,
            partitions,
        },
    };
    let change = ChangeSet {
        writes: vec![Write::Relayout {
            generation: layout.generation,
            partitions,
        }],
        ..ChangeSet::default()
    };
    store.commit(change).await?;
    // Another process may have moved it first (to the same place, or elsewhere): what is
    // stored now decides.
    check(store, layout).await.map(|()| layout)
}

/// Whether the stored layout is still `layout` (a process checks at every lease tick).
pub async fn check(store: &dyn Store, layout: Layout) -> AppResult<()> {
    match stored(store).await? {
        Some(now) if now == layout => Ok(()),
        Some(now) => Err(refusal(now, layout.partitions)),
        None => Err(AppError::Internal("partition layout record gone".into())),
    }
}

fn refusal(stored: Layout, partitions: u32) -> AppError {
    AppError::Conflict(format!(
        "the stored partitions were made with engine_partitions = {stored_count} (layout \
         generation {generation}) and this process has engine_partitions = {partitions}: it \
         runs no partition. To change the count, stop every serve process and start them with \
         engine_partitions = {partitions} and partition_resize_from = {stored_count} (every \
         partition is rebuilt from the stream's start; docs/scaling.md); else start it with \
         engine_partitions = {stored_count}",
        stored_count = stored.partitions,
        generation = stored.generation,
    ))
}
