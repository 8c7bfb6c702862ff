//! SQLite's write-ahead log, checkpointed off the write path.
//!
//! Left to itself SQLite checkpoints inside the commit that grows the log past its threshold:
//! that commit copies the log back into the database file and waits for two `fsync`s, and with
//! one writer at a time every request behind it waits as well (under a stream of decisions that
//! was the slowest percent of their latency). Here the automatic threshold is raised to a safety
//! net, and every `COMMITS_PER_CHECKPOINT` commits a passive checkpoint runs on a task and a
//! connection of its own; a passive checkpoint never blocks writers or readers, it copies what
//! no reader still needs.

use sqlx::AnyPool;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// Commits between two background checkpoints. Small checkpoints, often: each has little to
/// copy and to flush, and so does the `fsync` that a restart of the log costs the next writer
/// (SQLite syncs a fresh log's header). At 10,000 decisions/s the writer's `fsync`s took a
/// median 0.33 ms with 16 against 2.19 ms with 256, and the p99 of the decisions was
/// 2.2-2.5 ms with 16, 3.3-4.3 ms with 64, 4.3-7.6 ms with 256 and 29-100 ms with 2,048
/// (docs/benchmarks.md, 2026-12-03).
const COMMITS_PER_CHECKPOINT: u64 = 16;
/// The automatic checkpoint's threshold, in pages (about 40 MB): reached only when background
/// checkpoints fall behind, and then still bounding the log.
pub(crate) const AUTOCHECKPOINT_PAGES: u32 = 10_000;

/// When the next background checkpoint is due, and whether one is running.
#[derive(Debug, Default)]
pub(crate) struct WalCheckpoints {
    commits: AtomicU64,
    running: Arc<AtomicBool>,
}

impl WalCheckpoints {
    /// Counts a commit; every `COMMITS_PER_CHECKPOINT`th starts a checkpoint unless one runs.
    pub(crate) fn committed(&self, pool: &AnyPool) {
        let commits = self.commits.fetch_add(1, Ordering::Relaxed) + 1;
        if !commits.is_multiple_of(COMMITS_PER_CHECKPOINT)
            || self.running.swap(true, Ordering::AcqRel)
        {
            return;
        }
        let (pool, running) = (pool.clone(), Arc::clone(&self.running));
        tokio::spawn(async move {
            if let Err(error) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
                .execute(&pool)
                .await
            {
                tracing::warn!(%error, "checkpoint of the write-ahead log failed");
            }
            running.store(false, Ordering::Release);
        });
    }
}
