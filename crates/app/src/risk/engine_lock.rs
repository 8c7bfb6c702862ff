//! Who may use the engine when: its state and log position ([`Cursor`]) behind a read-write
//! lock, and a separate turn that every change of the engine takes first.
//!
//! Why two locks. A checkpoint serialises the engine for hundreds of milliseconds with a
//! million accounts. Under one mutex a graph query, a `knows_entity` check or the stats waited
//! all that time (a 29 ms p99 for graph queries in the round where the minute's checkpoint
//! fell, docs/benchmarks.md). Serialising only reads, so it runs under a read guard and the
//! queries, also readers, go on beside it. But a writer (an ingest, a group of decisions)
//! queued on tokio's `RwLock` behind that read guard would block every reader that comes after
//! it (the lock is fair: a queued writer goes first), and the queries would stall again
//! whenever ingest runs. So writers do not queue on the `RwLock` while a checkpoint reads:
//! every writer first takes the turn ([`EngineLock::write`]), and the checkpoint keeps the turn
//! for its whole serialisation ([`Exclusive::shared`]). Writers wait on the turn, readers never
//! do; at most one writer, the one holding the turn, ever waits on the `RwLock` itself.
//!
//! Holding the turn also means nothing is applied while the state is serialised: the snapshot
//! is the state as of `seq`, and the checkpoint's bookkeeping afterwards needs no accounting
//! for events applied meanwhile. Writers still wait for the serialisation, as before; making
//! them not wait would need a copy of the state (as long to make as the serialisation) or a
//! persistent one.

use super::InForce;
use portcullis_engine::Engine;
use std::ops::{Deref, DerefMut};
use tokio::sync::{Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};

/// The engine and where it stands in the event log.
#[derive(Debug)]
pub(super) struct Cursor {
    pub(super) engine: Engine,
    /// The last log position applied.
    pub(super) seq: i64,
    /// The position the latest checkpoint covers.
    pub(super) checkpoint_seq: i64,
    /// Entries applied since it.
    pub(super) since_checkpoint: u64,
    /// The engine applied entries whose decisions are not known to be stored (a commit failed
    /// or was cut short): it must be rewound before it applies or saves anything, or those
    /// entries would count twice.
    pub(super) ahead_of_storage: bool,
    /// The policy the engine runs, and where it came from.
    pub(super) in_force: InForce,
}

/// The cursor, shared by readers, changed by one writer at a time (see the module header).
#[derive(Debug)]
pub(super) struct EngineLock {
    /// The turn to change the engine.
    turn: Mutex<()>,
    cursor: RwLock<Cursor>,
}

impl EngineLock {
    pub(super) fn new(cursor: Cursor) -> Self {
        Self {
            turn: Mutex::new(()),
            cursor: RwLock::new(cursor),
        }
    }

    /// The cursor to read: waits only for a writer that is changing the engine, never for a
    /// checkpoint being serialised.
    pub(super) async fn read(&self) -> RwLockReadGuard<'_, Cursor> {
        self.cursor.read().await
    }

    /// The cursor to change: the turn first (waiting there for a checkpoint being serialised,
    /// without holding readers up), then the cursor itself.
    pub(super) async fn write(&self) -> Exclusive<'_> {
        let turn = self.turn.lock().await;
        let cursor = self.cursor.write().await;
        Exclusive {
            cursor,
            lock: &self.cursor,
            _turn: turn,
        }
    }
}

/// The cursor held for writing, with the turn.
pub(super) struct Exclusive<'a> {
    // Declared first: dropped before the turn, so the next writer finds the cursor free.
    cursor: RwLockWriteGuard<'a, Cursor>,
    lock: &'a RwLock<Cursor>,
    _turn: MutexGuard<'a, ()>,
}

impl Exclusive<'_> {
    /// Runs `work` on the cursor with readers let in meanwhile, and takes the cursor back for
    /// writing after it. The turn stays held throughout: no writer changes the engine in
    /// between, so what `work` saw is still the state when this returns.
    pub(super) async fn shared<T>(self, work: impl FnOnce(&Cursor) -> T) -> (Self, T) {
        let Self {
            cursor,
            lock,
            _turn,
        } = self;
        let reading = cursor.downgrade();
        let out = work(&reading);
        drop(reading);
        // Only readers can be ahead of this (writers wait for the turn): it waits for the
        // queries already running, no longer.
        let cursor = lock.write().await;
        (
            Self {
                cursor,
                lock,
                _turn,
            },
            out,
        )
    }
}

impl Deref for Exclusive<'_> {
    type Target = Cursor;
    fn deref(&self) -> &Cursor {
        &self.cursor
    }
}

impl DerefMut for Exclusive<'_> {
    fn deref_mut(&mut self) -> &mut Cursor {
        &mut self.cursor
    }
}
