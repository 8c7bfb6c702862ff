//! Campaign alerts from the risk engine's entity graph: stored as the engine last saw them,
//! with an operator's confirmation kept across updates; and operators' overrides on its
//! entities, kept after they are lifted (replays need them).

use crate::commit::Tx;
use crate::{SqlStore, codec, db_error};
use async_trait::async_trait;
use portcullis_app::ports::{AlertStore, StoreError, StoreResult, StoredAlert, StoredOverride};
use portcullis_core::time::UnixMillis;
use sqlx::any::AnyRow;

const COLUMNS: &str = "id, kind, entity_kind, value, opened_at, updated_at, unrelated_accounts, \
    evidence, confirmed_by, confirmed_at";

fn alert(row: &AnyRow) -> StoreResult<StoredAlert> {
    Ok(StoredAlert {
        id: codec::text_column(row, "id")?,
        kind: codec::text_column(row, "kind")?,
        entity_kind: codec::text_column(row, "entity_kind")?,
        value: codec::text_column(row, "value")?,
        opened_at: codec::millis(row, "opened_at")?,
        updated_at: codec::millis(row, "updated_at")?,
        unrelated_accounts: codec::i64_column(row, "unrelated_accounts")?,
        evidence: codec::text_column(row, "evidence")?,
        confirmed_by: codec::maybe_text_column(row, "confirmed_by")?,
        confirmed_at: codec::maybe_millis(row, "confirmed_at")?,
    })
}

#[async_trait]
impl AlertStore for SqlStore {
    async fn alerts(
        &self,
        before: Option<UnixMillis>,
        limit: u32,
    ) -> StoreResult<Vec<StoredAlert>> {
        let sql = format!(
            "SELECT {COLUMNS} FROM network_alerts WHERE updated_at < $1 \
             ORDER BY updated_at DESC, id DESC LIMIT $2"
        );
        let query = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(before.map_or(i64::MAX, UnixMillis::as_millis))
            .bind(i64::from(limit));
        self.rows("network_alerts", query)
            .await?
            .iter()
            .map(alert)
            .collect()
    }

    async fn alert(&self, id: &str) -> StoreResult<Option<StoredAlert>> {
        let sql = format!("SELECT {COLUMNS} FROM network_alerts WHERE id = $1");
        let query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(id.to_owned());
        self.first_row("network_alerts", query, alert).await
    }

    async fn overrides(&self) -> StoreResult<Vec<StoredOverride>> {
        let sql = format!("SELECT {OVERRIDE_COLUMNS} FROM network_overrides ORDER BY set_at, id");
        let query = sqlx::query(sqlx::AssertSqlSafe(sql));
        self.rows("network_overrides", query)
            .await?
            .iter()
            .map(stored_override)
            .collect()
    }
}

const OVERRIDE_COLUMNS: &str =
    "id, kind, value, action, note, set_by, set_at, expires_at, lifted_by, lifted_at";

fn stored_override(row: &AnyRow) -> StoreResult<StoredOverride> {
    Ok(StoredOverride {
        id: codec::text_column(row, "id")?,
        kind: codec::text_column(row, "kind")?,
        value: codec::text_column(row, "value")?,
        action: codec::text_column(row, "action")?,
        note: codec::text_column(row, "note")?,
        set_by: codec::text_column(row, "set_by")?,
        set_at: codec::millis(row, "set_at")?,
        expires_at: codec::maybe_millis(row, "expires_at")?,
        lifted_by: codec::maybe_text_column(row, "lifted_by")?,
        lifted_at: codec::maybe_millis(row, "lifted_at")?,
    })
}

pub(crate) async fn put_override(tx: &mut Tx<'_>, o: StoredOverride) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO network_overrides (id, kind, value, action, note, set_by, set_at, \
         expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(o.id)
    .bind(o.kind)
    .bind(o.value)
    .bind(o.action)
    .bind(o.note)
    .bind(o.set_by)
    .bind(o.set_at.as_millis())
    .bind(o.expires_at.map(UnixMillis::as_millis))
    .execute(&mut **tx)
    .await
    .map_err(|e| db_error("network override", e))?;
    Ok(())
}

/// Lifts an override once.
pub(crate) async fn lift_override(
    tx: &mut Tx<'_>,
    id: String,
    by: String,
    at: UnixMillis,
) -> StoreResult<()> {
    let sql = "UPDATE network_overrides SET lifted_by = $1, lifted_at = $2 \
               WHERE id = $3 AND lifted_at IS NULL";
    once(tx, sql, (id, by, at), "network override", "lifted").await
}

/// Runs an update of one row, by `$1` and at `$2`, of the row `$3` that was not updated so
/// before: a conflict when there is no such row (unknown, or done already).
async fn once(
    tx: &mut Tx<'_>,
    sql: &'static str,
    (id, by, at): (String, String, UnixMillis),
    what: &str,
    done: &str,
) -> StoreResult<()> {
    let result = sqlx::query(sql)
        .bind(by)
        .bind(at.as_millis())
        .bind(id.clone())
        .execute(&mut **tx)
        .await
        .map_err(|e| db_error(what, e))?;
    if result.rows_affected() == 0 {
        return Err(StoreError::Conflict(format!(
            "{what} {id} is unknown or already {done}"
        )));
    }
    Ok(())
}

/// Inserts the alert, or updates what the engine saw of it (not its confirmation).
pub(crate) async fn put(tx: &mut Tx<'_>, a: StoredAlert) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO network_alerts (id, kind, entity_kind, value, opened_at, updated_at, \
         unrelated_accounts, evidence) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
         ON CONFLICT (id) DO UPDATE SET updated_at = excluded.updated_at, \
         unrelated_accounts = excluded.unrelated_accounts, evidence = excluded.evidence",
    )
    .bind(a.id)
    .bind(a.kind)
    .bind(a.entity_kind)
    .bind(a.value)
    .bind(a.opened_at.as_millis())
    .bind(a.updated_at.as_millis())
    .bind(a.unrelated_accounts)
    .bind(a.evidence)
    .execute(&mut **tx)
    .await
    .map_err(|e| db_error("network alert", e))?;
    Ok(())
}

/// Confirms an alert once.
pub(crate) async fn confirm(
    tx: &mut Tx<'_>,
    id: String,
    by: String,
    at: UnixMillis,
) -> StoreResult<()> {
    let sql = "UPDATE network_alerts SET confirmed_by = $1, confirmed_at = $2 \
               WHERE id = $3 AND confirmed_at IS NULL";
    once(tx, sql, (id, by, at), "network alert", "confirmed").await
}
