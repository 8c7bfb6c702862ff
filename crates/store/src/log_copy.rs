//! The partitions' event-log commits on PostgreSQL, through `COPY events FROM STDIN` in
//! PostgreSQL's binary format instead of statements: the rows are streamed to the server
//! without a statement's parameters or a JSON array to read, which spends about a third less
//! of the server's time per row than `json_to_recordset` (docs/benchmarks.md, 2026-12-07,
//! branch `owner3`). The log is the database's largest share of a partition's work.
//!
//! Which commits: those of a partition committer's log stage, made only of the lease check,
//! event-log rows (`Write::LogEventOnce`, at least [`COPY_FROM_ROWS`]) and checkpoints, with
//! no audit entry. They run as every commit does (`commit::begin_in_turn`): in the process's
//! commit turn, with the audit head's row locked first (log positions grow in commit order),
//! the writes in order, all or nothing. sqlx's `Any` driver has no `COPY`, so they run on a
//! PostgreSQL connection of a small pool of their own.
//!
//! `COPY` has no `ON CONFLICT`: a partition redoing work after a restart or a takeover may
//! log an event that is there already. The rows are copied inside a savepoint; if one is
//! there, the savepoint is rolled back and the same rows go through the statement of the
//! one write path (`LOG_ONCE_FROM_JSON`, which skips known ids), so each event is logged
//! once, in order, as before.

use crate::commit::{LOCK_AUDIT_HEAD, SAVE_CHECKPOINT, carries_large_payload};
use crate::event_rows::{LOG_ONCE_FROM_JSON, LOG_ROWS_PER_STATEMENT, log_rows_json};
use crate::leases::{HOLDS_LEASE, LAYOUT, held_or_refused};
use crate::{SqlStore, db_error};
use portcullis_app::ports::{NewEvent, StoreError, StoreResult, Write};
use sqlx::{Connection as _, PgConnection, PgPool};

/// Log rows at least for a commit to go this way: below, a statement or two of the one write
/// path cost as little as the savepoint and the copy's round trips.
pub(crate) const COPY_FROM_ROWS: usize = 256;

/// Bytes of rows sent to the server at a time.
const SEND_BYTES: usize = 256 * 1024;

const COPY_EVENTS: &str = "COPY events (id, ts, account, type, body) FROM STDIN (FORMAT binary)";

/// Whether `writes` are a log stage's commit this module stores (see the module header).
pub(crate) fn takes(writes: &[Write]) -> bool {
    let mut rows = 0;
    for write in writes {
        match write {
            Write::LogEventOnce(_) => rows += 1,
            Write::HoldsLease { .. } | Write::SaveCheckpoint(_) => {}
            _ => return false,
        }
    }
    rows >= COPY_FROM_ROWS
}

/// Commits `writes` (for which [`takes`] is true) on `pool`.
pub(crate) async fn commit(store: &SqlStore, pool: &PgPool, writes: Vec<Write>) -> StoreResult<()> {
    let _turn = store.commit_turn().await;
    let mut connection = pool.acquire().await.map_err(|e| db_error("begin", e))?;
    if carries_large_payload(&writes) {
        connection.close_on_drop();
    }
    let mut tx = connection.begin().await.map_err(|e| db_error("begin", e))?;
    sqlx::query(LOCK_AUDIT_HEAD)
        .execute(&mut *tx)
        .await
        .map_err(|e| db_error("lock", e))?;
    let mut writes = writes.into_iter().peekable();
    while let Some(write) = writes.next() {
        match write {
            Write::LogEventOnce(first) => {
                let mut events = vec![first];
                while let Some(Write::LogEventOnce(next)) =
                    writes.next_if(|w| matches!(w, Write::LogEventOnce(_)))
                {
                    events.push(next);
                }
                log_once(&mut tx, &events).await?;
            }
            Write::HoldsLease {
                partition,
                owner,
                epoch,
                generation,
            } => {
                let touched = sqlx::query(HOLDS_LEASE)
                    .bind(i64::from(partition))
                    .bind(owner)
                    .bind(epoch)
                    .bind(generation)
                    .bind(LAYOUT)
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| db_error("partition lease", e))?;
                held_or_refused(touched.rows_affected(), partition, epoch, generation)?;
            }
            Write::SaveCheckpoint(c) => {
                (sqlx::query(SAVE_CHECKPOINT)
                    .bind(c.name)
                    .bind(c.seq)
                    .bind(c.state))
                .execute(&mut *tx)
                .await
                .map_err(|e| db_error("engine checkpoint", e))?;
            }
            _ => {
                return Err(StoreError::Backend(
                    "log copy: a write it does not take".into(),
                ));
            }
        }
    }
    tx.commit().await.map_err(|e| db_error("commit", e))
}

/// Logs `events` in order, each id once: copied in a savepoint, or, when one is logged
/// already, through the statement that skips known ids.
async fn log_once(tx: &mut PgConnection, events: &[NewEvent]) -> StoreResult<()> {
    let mut savepoint = tx.begin().await.map_err(|e| db_error("savepoint", e))?;
    match copy_rows(&mut savepoint, events).await {
        Ok(()) => savepoint
            .commit()
            .await
            .map_err(|e| db_error("savepoint", e)),
        Err(error)
            if error
                .as_database_error()
                .is_some_and(|e| e.is_unique_violation()) =>
        {
            savepoint
                .rollback()
                .await
                .map_err(|e| db_error("savepoint", e))?;
            for chunk in events.chunks(LOG_ROWS_PER_STATEMENT) {
                (sqlx::query(LOG_ONCE_FROM_JSON).bind(log_rows_json(chunk)?))
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| db_error("event", e))?;
            }
            Ok(())
        }
        Err(error) => Err(db_error("event", error)),
    }
}

async fn copy_rows(connection: &mut PgConnection, events: &[NewEvent]) -> sqlx::Result<()> {
    let mut copy = connection.copy_in_raw(COPY_EVENTS).await?;
    let mut buffer = Vec::with_capacity(SEND_BYTES * 2);
    buffer.extend_from_slice(HEADER);
    for event in events {
        binary_row(&mut buffer, event).map_err(|e| sqlx::Error::Encode(e.into()))?;
        if buffer.len() >= SEND_BYTES {
            copy.send(std::mem::take(&mut buffer)).await?;
            buffer.reserve(SEND_BYTES * 2);
        }
    }
    buffer.extend_from_slice(&(-1i16).to_be_bytes());
    copy.send(buffer).await?;
    copy.finish().await.map(|_| ())
}

/// The binary format's signature, flags (none) and header extension (none).
const HEADER: &[u8] = b"PGCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0";

/// One row of `events (id, ts, account, type, body)` in the binary format: the field count,
/// then each field's length (-1: NULL) and bytes (text as its UTF-8 bytes, a BIGINT as eight
/// bytes, big-endian).
fn binary_row(out: &mut Vec<u8>, event: &NewEvent) -> Result<(), String> {
    out.extend_from_slice(&5i16.to_be_bytes());
    text(out, Some(&event.id))?;
    out.extend_from_slice(&8i32.to_be_bytes());
    out.extend_from_slice(&event.ts.as_millis().to_be_bytes());
    text(out, event.account.as_deref())?;
    text(out, Some(&event.event_type))?;
    text(out, Some(&event.body))
}

fn text(out: &mut Vec<u8>, value: Option<&str>) -> Result<(), String> {
    match value {
        None => out.extend_from_slice(&(-1i32).to_be_bytes()),
        Some(value) => {
            let len = i32::try_from(value.len()).map_err(|_| "an event over 2 GiB".to_owned())?;
            out.extend_from_slice(&len.to_be_bytes());
            out.extend_from_slice(value.as_bytes());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use portcullis_core::time::UnixMillis;

    #[test]
    fn a_row_is_the_field_count_then_each_field_with_its_length() {
        let event = NewEvent {
            id: "e1".into(),
            ts: UnixMillis(258),
            account: None,
            event_type: "t".into(),
            body: "{\"a\":\"\\t\"}".into(),
        };
        let mut out = Vec::new();
        binary_row(&mut out, &event).unwrap();
        let mut expected = vec![
            0, 5, 0, 0, 0, 2, b'e', b'1', 0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 1, 2,
        ];
        expected.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0, 0, 0, 1, b't', 0, 0, 0, 10]);
        expected.extend_from_slice(b"{\"a\":\"\\t\"}");
        assert_eq!(out, expected);
        assert_eq!(HEADER.len(), 19);
    }

    #[test]
    fn only_a_log_stage_commit_with_enough_rows_is_taken() {
        let event = |i: usize| {
            Write::LogEventOnce(NewEvent {
                id: format!("e{i}"),
                ts: UnixMillis(0),
                account: None,
                event_type: "t".into(),
                body: "{}".into(),
            })
        };
        let rows: Vec<Write> = (0..COPY_FROM_ROWS).map(event).collect();
        assert!(takes(&rows));
        assert!(!takes(&rows[1..]));
        let mut with_decision = rows;
        with_decision.push(Write::RecordIgnored(portcullis_app::ports::IgnoredEvent {
            event_id: "x".into(),
            reason: "duplicate".into(),
            event_ts: UnixMillis(0),
        }));
        assert!(!takes(&with_decision));
    }
}
