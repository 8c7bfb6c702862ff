//! The event log's group commit on an SQLite file, on a connection of its own driven
//! synchronously by the caller.
//!
//! Every other write goes through sqlx, whose SQLite driver runs each statement on a thread of
//! its own: a round trip between threads per statement, and a group commit of decisions has
//! four (begin, events, decisions, commit). Under a stream of synchronous decisions, thousands
//! of groups a second, those hand-offs and the conversions of sqlx's `Any` driver came to
//! about a fifth of the server's CPU per decision (docs/benchmarks.md, 2026-12-03). Here the
//! whole transaction runs on the calling thread with prepared, cached statements, one row per
//! execution (a statement is a function call now, not a round trip).
//!
//! The transaction still runs in the process's writer turn (see `SqlStore::writer`), so it
//! commits in turn with sqlx's writes. It never waits on SQLite's lock while holding the
//! thread: the connection's busy timeout is zero, and a lock held by another process (the CLI
//! on the same file, say) is waited for asynchronously, between attempts to begin.

use portcullis_app::ports::{NewEvent, StoreError, StoreResult, StoredDecision};
use rusqlite::{Connection, ErrorCode, OptionalExtension as _, TransactionBehavior};
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a group waits for another process to release the write lock, as sqlx's
/// connections do (`busy_timeout = 5000`).
const LOCK_WAIT: Duration = Duration::from_secs(5);
/// The first pause between two attempts to take the lock; it doubles up to `MAX_RETRY_PAUSE`.
const FIRST_RETRY_PAUSE: Duration = Duration::from_millis(1);
const MAX_RETRY_PAUSE: Duration = Duration::from_millis(50);

const INSERT_EVENT: &str = "INSERT INTO events (id, ts, account, type, body) \
     VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (id) DO NOTHING RETURNING seq";
const INSERT_DECISION: &str = "INSERT INTO decisions (event_id, decided_at, decision, score, reasons, features) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (event_id) DO NOTHING";

/// The connection the event log's appends run on.
#[derive(Debug)]
pub(crate) struct SqliteLog {
    connection: Mutex<Connection>,
}

/// Why an attempt at a group commit did not commit.
enum Attempt {
    /// Another connection holds the write lock: nothing was written, try again later.
    Locked,
    Failed(StoreError),
}

impl From<rusqlite::Error> for Attempt {
    fn from(error: rusqlite::Error) -> Self {
        Attempt::Failed(log_error(error))
    }
}

impl SqliteLog {
    /// Opens the database file at `path` (migrated already) with the settings of every
    /// connection of the store, except that it never waits for a lock (see the module header).
    pub(crate) fn open(path: &Path) -> StoreResult<Self> {
        let connection = Connection::open(path).map_err(log_error)?;
        connection
            .execute_batch(&crate::sqlite_settings(0))
            .map_err(log_error)?;
        Ok(Self {
            connection: Mutex::new(connection),
        })
    }

    /// See [`portcullis_app::ports::EventLog::append_new_events_then`]. The caller holds the
    /// writer's turn.
    pub(crate) async fn append(
        &self,
        events: &[NewEvent],
        then: &mut (dyn FnMut(Vec<Option<i64>>) -> Vec<StoredDecision> + Send),
    ) -> StoreResult<Vec<Option<i64>>> {
        let started = Instant::now();
        let mut pause = FIRST_RETRY_PAUSE;
        loop {
            match self.try_append(events, then) {
                Ok(positions) => return Ok(positions),
                Err(Attempt::Failed(error)) => return Err(error),
                Err(Attempt::Locked) if started.elapsed() >= LOCK_WAIT => {
                    return Err(StoreError::Backend(
                        "events: the database stayed locked by another process".into(),
                    ));
                }
                Err(Attempt::Locked) => {
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(MAX_RETRY_PAUSE);
                }
            }
        }
    }

    /// One attempt: the events, then what `then` decides of their positions, in one
    /// transaction. `then` runs only once the lock is held, so a retry never calls it twice.
    fn try_append(
        &self,
        events: &[NewEvent],
        then: &mut (dyn FnMut(Vec<Option<i64>>) -> Vec<StoredDecision> + Send),
    ) -> Result<Vec<Option<i64>>, Attempt> {
        // A panic elsewhere while this lock was held left no transaction open: a transaction
        // rolls back as it is dropped.
        let mut connection = self
            .connection
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let tx = match connection.transaction_with_behavior(TransactionBehavior::Immediate) {
            Ok(tx) => tx,
            Err(error) if is_locked(&error) => return Err(Attempt::Locked),
            Err(error) => return Err(error.into()),
        };
        let positions = {
            let mut insert = tx.prepare_cached(INSERT_EVENT)?;
            let mut positions = Vec::with_capacity(events.len());
            for event in events {
                let seq: Option<i64> = insert
                    .query_row(
                        (
                            &event.id,
                            event.ts.as_millis(),
                            &event.account,
                            &event.event_type,
                            &event.body,
                        ),
                        |row| row.get(0),
                    )
                    .optional()?;
                positions.push(seq);
            }
            positions
        };
        let decisions = then(positions.clone());
        {
            let mut insert = tx.prepare_cached(INSERT_DECISION)?;
            for d in &decisions {
                insert.execute((
                    &d.event_id,
                    d.decided_at.as_millis(),
                    &d.decision,
                    d.score,
                    &d.reasons,
                    &d.features,
                ))?;
            }
        }
        tx.commit()?;
        Ok(positions)
    }
}

/// Whether SQLite refused because another connection holds the lock.
fn is_locked(error: &rusqlite::Error) -> bool {
    matches!(
        error.sqlite_error_code(),
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked)
    )
}

/// A driver error as the store's, telling constraint violations apart as `db_error` does.
fn log_error(error: rusqlite::Error) -> StoreError {
    match error.sqlite_error() {
        Some(e) if e.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE => {
            StoreError::Conflict("events: already exists".into())
        }
        Some(e) if e.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_FOREIGNKEY => {
            StoreError::NotFound("events: a referenced row".into())
        }
        _ => StoreError::Backend(format!("events: {error}")),
    }
}
