//! The single engine's checkpoints: taken (the state as of the log position it covers, every
//! decision up to there stored), written, and put back (at start, and to rewind after a failed
//! commit). The serialisation lets readers of the engine in meanwhile (`engine_lock`); the
//! writing to storage holds nothing.

use super::engine_lock::Exclusive;
use super::{CHECKPOINT_NAME, Risk};
use crate::error::{AppError, AppResult};
use crate::ports::{ChangeSet, EngineCheckpoint, Store, Write};
use portcullis_engine::Engine;
use std::sync::atomic::Ordering;

impl Risk {
    /// Writes a checkpoint if the engine applied anything since the last one; `true` if it did.
    pub async fn checkpoint(&self) -> AppResult<bool> {
        let cursor = self.cursor.write().await;
        if cursor.seq == cursor.checkpoint_seq {
            return Ok(false);
        }
        let (cursor, snapshot) = self.snapshot(cursor).await?;
        drop(cursor);
        self.write_checkpoint(snapshot).await?;
        Ok(true)
    }

    /// Puts the engine back where storage says it is: its latest checkpoint, with the log after
    /// it left for the catch-up to replay (which re-derives the same decisions). On failure the
    /// cursor stays marked as ahead, so the next catch-up tries again.
    pub(super) async fn rewind(&self, cursor: &mut super::engine_lock::Cursor) -> AppResult<()> {
        let seq = restore_latest(self.store.as_ref(), &mut cursor.engine).await?;
        tracing::warn!(
            seq,
            "risk engine rewound to its checkpoint after a failed commit"
        );
        cursor.seq = seq;
        cursor.checkpoint_seq = seq;
        cursor.since_checkpoint = 0;
        cursor.ahead_of_storage = false;
        Ok(())
    }

    /// A snapshot to write when the policy's number of entries were applied since the last
    /// (`write_checkpoint`, once the engine is released), and the cursor back.
    pub(super) async fn checkpoint_if_due<'a>(
        &self,
        cursor: Exclusive<'a>,
    ) -> AppResult<(Exclusive<'a>, Option<EngineCheckpoint>)> {
        let every = self.checkpoints.every_events;
        if every > 0 && cursor.since_checkpoint >= every {
            let (cursor, snapshot) = self.snapshot(cursor).await?;
            return Ok((cursor, Some(snapshot)));
        }
        Ok((cursor, None))
    }

    /// The state as of `cursor.seq` (every decision up to there is already stored), as bytes,
    /// and the cursor back. The serialisation keeps writers out but lets readers in (graph
    /// queries, stats: `engine_lock`); writing the bytes, which takes seconds for a million
    /// accounts, holds nothing (`write_checkpoint`).
    async fn snapshot<'a>(
        &self,
        cursor: Exclusive<'a>,
    ) -> AppResult<(Exclusive<'a>, EngineCheckpoint)> {
        if cursor.ahead_of_storage {
            return Err(AppError::Internal(
                "the engine is ahead of storage; not saving it".into(),
            ));
        }
        let (mut cursor, state) = cursor
            .shared(|cursor| {
                off_the_workers(|| {
                    #[cfg(feature = "test-hooks")]
                    self.serialising_hook.run();
                    cursor.engine.checkpoint()
                })
            })
            .await;
        let state = state.map_err(|e| AppError::Internal(e.to_string()))?;
        // Nothing was applied meanwhile (the turn was held): the bytes are the state at `seq`.
        cursor.checkpoint_seq = cursor.seq;
        cursor.since_checkpoint = 0;
        let snapshot = EngineCheckpoint {
            name: CHECKPOINT_NAME.to_owned(),
            seq: cursor.seq,
            state,
        };
        Ok((cursor, snapshot))
    }

    /// Stores a snapshot that came due on the way: its failure is logged, not the caller's
    /// (whose events and decisions are stored already).
    pub(super) async fn write_due_checkpoint(&self, snapshot: EngineCheckpoint) {
        if let Err(error) = self.write_checkpoint(snapshot).await {
            tracing::warn!(%error, "risk engine checkpoint not written; the next one is due later");
        }
    }

    /// Stores a snapshot. Two written out of order are harmless: the store keeps the later
    /// position. One that fails is only a later start (the log after the stored one is
    /// replayed), and the next is due after as many entries again.
    async fn write_checkpoint(&self, snapshot: EngineCheckpoint) -> AppResult<()> {
        let (seq, bytes) = (snapshot.seq, snapshot.state.len());
        self.store
            .commit(ChangeSet {
                writes: vec![Write::SaveCheckpoint(snapshot)],
                ..ChangeSet::default()
            })
            .await?;
        self.checkpoints_written.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(seq, bytes, "risk engine checkpoint written");
        Ok(())
    }

    /// Runs `hook` in the middle of every checkpoint's serialisation from now on (`None`: no
    /// more), with the engine held as the serialisation holds it: lets a test hold a
    /// checkpoint in progress for as long as it needs. Only in builds with `test-hooks`.
    #[cfg(feature = "test-hooks")]
    pub fn while_serialising(&self, hook: Option<Box<dyn Fn() + Send + Sync>>) {
        *self.serialising_hook.0.lock() = hook.map(std::sync::Arc::from);
    }
}

/// What [`Risk::while_serialising`] set.
#[cfg(feature = "test-hooks")]
#[derive(Default)]
pub(super) struct SerialisingHook(parking_lot::Mutex<Option<HookFn>>);

#[cfg(feature = "test-hooks")]
type HookFn = std::sync::Arc<dyn Fn() + Send + Sync>;

#[cfg(feature = "test-hooks")]
impl SerialisingHook {
    fn run(&self) {
        // Called without the lock held: the hook may wait for whoever sets the next one.
        let hook = self.0.lock().clone();
        if let Some(hook) = hook {
            hook();
        }
    }
}

#[cfg(feature = "test-hooks")]
impl std::fmt::Debug for SerialisingHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SerialisingHook")
    }
}

/// Runs CPU-bound work of seconds (serialising a million accounts) without stalling the
/// other requests of the runtime's worker: on a multi-threaded runtime (the service's, even
/// with one worker) the worker's other tasks move to another thread meanwhile; elsewhere (a
/// single-threaded test runtime) it just runs.
pub(crate) fn off_the_workers<T>(work: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(tokio::runtime::RuntimeFlavor::MultiThread) => tokio::task::block_in_place(work),
        _ => work(),
    }
}

/// Puts `engine` in the state of the latest checkpoint it can read (empty without one), and
/// returns the log position that state covers.
pub(super) async fn restore_latest(store: &dyn Store, engine: &mut Engine) -> AppResult<i64> {
    // Read first: if storage fails, the engine is left as it was.
    let latest = store.checkpoint(CHECKPOINT_NAME).await?;
    engine.reset();
    let Some(checkpoint) = latest else {
        return Ok(0);
    };
    match engine.restore(&checkpoint.state) {
        Ok(()) => Ok(checkpoint.seq),
        Err(error) => {
            tracing::warn!(%error, "replaying the whole event log instead");
            engine.reset();
            Ok(0)
        }
    }
}
