//! Many rows in few statements: decisions, and events into the log (appended with their
//! positions, or logged once by a partition that may redo a batch). The commit path
//! ([`crate::commit`]) calls these inside its transaction; [`append_new_events`] opens its own.

use crate::commit::{Tx, begin_in_turn, execute, writer_connection};
use crate::{Backend, SqlStore, db_error};
use portcullis_app::ports::{NewEvent, StoreError, StoreResult, StoredDecision};
use sqlx::{Any, Row as _};

/// Rows per multi-row insert for large batches, largest first. A batch is cut greedily into
/// these, and what is left (fewer than the smallest) goes in one statement of its own size: so
/// a group of decisions costs one statement per table, and there are few enough shapes (the two
/// large ones and one per size below the smaller) that every one stays prepared in the
/// connection's statement cache. Each statement is a round trip to SQLite's thread (on one
/// core, two switches between threads). At six parameters or fewer per row, the largest stays
/// far below both backends' limits on the parameters of one statement.
const INSERT_SHAPES: [usize; 2] = [64, 16];

/// `rows` cut greedily into chunks of the insert shapes, then the rest, in order.
fn in_shapes<T>(rows: Vec<T>) -> Vec<Vec<T>> {
    let mut rest = rows.into_iter();
    let mut chunks = Vec::new();
    while !rest.as_slice().is_empty() {
        let size = INSERT_SHAPES
            .into_iter()
            .find(|&shape| shape <= rest.len())
            .unwrap_or(rest.len());
        chunks.push(rest.by_ref().take(size).collect());
    }
    chunks
}

/// `VALUES` placeholders for `rows` rows of `columns` parameters: `($1, $2), ($3, $4)` on
/// PostgreSQL, `(?, ?), (?, ?)` on SQLite, which numbers anonymous parameters in order while
/// it looks every `$N` up by name (a cost that grows with the square of their number).
fn values_placeholders(backend: Backend, rows: usize, columns: usize) -> String {
    (0..rows)
        .map(|row| {
            let parameters: Vec<String> = (1..=columns)
                .map(|column| match backend {
                    Backend::Sqlite => "?".to_owned(),
                    Backend::Postgres => format!("${}", row * columns + column),
                })
                .collect();
            format!("({})", parameters.join(", "))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

type AnyQuery<'q> = sqlx::query::Query<'q, Any, sqlx::any::AnyArguments>;

/// Inserts `rows` in the insert shapes: `INSERT INTO <into> VALUES ... <then>`, each row's
/// `columns` parameters bound by `bind`.
async fn insert_rows<T>(
    tx: &mut Tx<'_>,
    backend: Backend,
    (what, into, then, columns): (&str, &str, &str, usize),
    rows: Vec<T>,
    bind: impl for<'q> Fn(AnyQuery<'q>, T) -> AnyQuery<'q>,
) -> StoreResult<()> {
    for chunk in in_shapes(rows) {
        let placeholders = values_placeholders(backend, chunk.len(), columns);
        let sql = format!("INSERT INTO {into} VALUES {placeholders} {then}");
        let query = (chunk.into_iter()).fold(sqlx::query(sqlx::AssertSqlSafe(sql)), &bind);
        execute(tx, what, query).await?;
    }
    Ok(())
}

/// Stores decisions, keeping a decision already stored for the same event.
pub(crate) async fn insert_decisions(
    tx: &mut Tx<'_>,
    backend: Backend,
    decisions: Vec<StoredDecision>,
) -> StoreResult<()> {
    let into = "decisions (event_id, decided_at, decision, score, reasons, features)";
    let shape = ("decision", into, "ON CONFLICT (event_id) DO NOTHING", 6);
    insert_rows(tx, backend, shape, decisions, |query, d| {
        query
            .bind(d.event_id)
            .bind(d.decided_at.as_millis())
            .bind(d.decision)
            .bind(d.score)
            .bind(d.reasons)
            .bind(d.features)
    })
    .await
}

/// Events at most in one statement of [`log_events_once_postgres`] (about 400 bytes each).
pub(crate) const LOG_ROWS_PER_STATEMENT: usize = 2_048;

/// Logs events, skipping those whose id is logged already (a partition redoing a batch).
pub(crate) async fn log_events_once(
    tx: &mut Tx<'_>,
    backend: Backend,
    events: Vec<NewEvent>,
) -> StoreResult<()> {
    if backend == Backend::Postgres {
        return log_events_once_postgres(tx, events).await;
    }
    let shape = (
        "event",
        "events (id, ts, account, type, body)",
        "ON CONFLICT (id) DO NOTHING",
        5,
    );
    insert_rows(tx, backend, shape, events, |query, event| {
        query
            .bind(event.id)
            .bind(event.ts.as_millis())
            .bind(event.account)
            .bind(event.event_type)
            .bind(event.body)
    })
    .await
}

/// [`log_events_once`] on PostgreSQL: the rows go as one JSON array per statement, read by
/// `json_to_recordset` and inserted in the array's order (its ordinality, so the log's
/// positions follow it as a multi-row `VALUES` did), instead of five
/// bound parameters a row. A partition logs every event it owns, and this is the database's
/// largest share of its work: one parameter instead of thousands saves the client's encoding
/// and the server's reading of them (docs/benchmarks.md, 2026-12-07, branch `owner`).
async fn log_events_once_postgres(tx: &mut Tx<'_>, events: Vec<NewEvent>) -> StoreResult<()> {
    for chunk in events.chunks(LOG_ROWS_PER_STATEMENT) {
        let query = sqlx::query(LOG_ONCE_FROM_JSON).bind(log_rows_json(chunk)?);
        execute(tx, "event", query).await?;
    }
    Ok(())
}

/// The statement of [`log_events_once_postgres`] (also run by the log's `COPY` path when a
/// row is there already, `log_copy`): binds [`log_rows_json`] of the rows.
pub(crate) const LOG_ONCE_FROM_JSON: &str = "INSERT INTO events (id, ts, account, type, body) \
     SELECT id, ts, account, type, body FROM ROWS FROM (json_to_recordset($1::json) \
     AS (id TEXT, ts BIGINT, account TEXT, type TEXT, body TEXT)) \
     WITH ORDINALITY AS r(id, ts, account, type, body, position) ORDER BY position \
     ON CONFLICT (id) DO NOTHING";

/// Events as the JSON array [`LOG_ONCE_FROM_JSON`] reads.
pub(crate) fn log_rows_json(events: &[NewEvent]) -> StoreResult<String> {
    #[derive(serde::Serialize)]
    struct Row<'a> {
        id: &'a str,
        ts: i64,
        account: Option<&'a str>,
        #[serde(rename = "type")]
        event_type: &'a str,
        body: &'a str,
    }
    let rows: Vec<Row<'_>> = (events.iter())
        .map(|event| Row {
            id: &event.id,
            ts: event.ts.as_millis(),
            account: event.account.as_deref(),
            event_type: &event.event_type,
            body: &event.body,
        })
        .collect();
    serde_json::to_string(&rows).map_err(|e| StoreError::Backend(format!("events: {e}")))
}

/// See [`portcullis_app::ports::EventLog::append_new_events_then`]. A whole batch costs one
/// transaction and a few statements, instead of a transaction per event: this is what lets
/// concurrent synchronous decisions share their writes (a group commit). On an SQLite file it
/// runs on the event log's own connection (`sqlite_log`).
pub async fn append_new_events(
    store: &SqlStore,
    events: Vec<NewEvent>,
    then: &mut (dyn FnMut(Vec<Option<i64>>) -> Vec<StoredDecision> + Send),
) -> StoreResult<Vec<Option<i64>>> {
    if events.is_empty() {
        return Ok(Vec::new());
    }
    // In turn, as every commit: log positions grow in commit order, so a reader of the log
    // never skips an entry that commits later with a lower position.
    if let Some(log) = store.sqlite_log() {
        let _turn = store.writer_turn().await;
        let positions = log.append(&events, then).await?;
        store.committed();
        return Ok(positions);
    }
    let _turn = store.commit_turn().await;
    let mut connection = writer_connection(store, false).await?;
    let mut tx = begin_in_turn(store, &mut connection).await?;
    let ids: Vec<String> = events.iter().map(|event| event.id.clone()).collect();
    let mut appended_ids = std::collections::HashMap::new();
    for chunk in in_shapes(events) {
        let sql = format!(
            "INSERT INTO events (id, ts, account, type, body) VALUES {} \
             ON CONFLICT (id) DO NOTHING RETURNING seq, id",
            values_placeholders(store.backend(), chunk.len(), 5)
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for event in chunk {
            query = query
                .bind(event.id)
                .bind(event.ts.as_millis())
                .bind(event.account)
                .bind(event.event_type)
                .bind(event.body);
        }
        let appended = query
            .fetch_all(&mut *tx)
            .await
            .map_err(|e| db_error("events", e))?;
        for row in &appended {
            let id: String = row.try_get("id").map_err(|e| db_error("events", e))?;
            let seq: i64 = row.try_get("seq").map_err(|e| db_error("events", e))?;
            appended_ids.insert(id, seq);
        }
    }
    // The first event with an appended id is the one appended; a repeat later in the batch is
    // not.
    let positions: Vec<Option<i64>> = ids.iter().map(|id| appended_ids.remove(id)).collect();
    insert_decisions(&mut tx, store.backend(), then(positions.clone())).await?;
    tx.commit().await.map_err(|e| db_error("commit", e))?;
    store.committed();
    Ok(positions)
}

pub(crate) async fn insert_event(tx: &mut Tx<'_>, event: NewEvent) -> StoreResult<()> {
    let query =
        sqlx::query("INSERT INTO events (id, ts, account, type, body) VALUES ($1, $2, $3, $4, $5)")
            .bind(event.id)
            .bind(event.ts.as_millis())
            .bind(event.account)
            .bind(event.event_type)
            .bind(event.body);
    execute(tx, "event", query).await.map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::in_shapes;

    fn sizes(rows: usize) -> Vec<usize> {
        in_shapes((0..rows).collect::<Vec<_>>())
            .iter()
            .map(Vec::len)
            .collect()
    }

    #[test]
    fn a_group_below_the_smallest_shape_is_one_statement_and_larger_ones_are_cut_greedily() {
        assert!(sizes(0).is_empty());
        assert_eq!(sizes(1), [1]);
        assert_eq!(sizes(7), [7]);
        assert_eq!(sizes(16), [16]);
        assert_eq!(sizes(21), [16, 5]);
        assert_eq!(sizes(100), [64, 16, 16, 4]);
        let rows: Vec<usize> = in_shapes((0..100).collect()).concat();
        assert_eq!(rows, (0..100).collect::<Vec<_>>(), "rows keep their order");
    }
}
