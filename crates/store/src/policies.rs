//! The risk policy's versions (writes inside the commit transaction, and the reads of
//! [`PolicyStore`]), and the reads of the event log by time a backtest replays.

use crate::SqlStore;
use crate::codec::{get, maybe_millis, millis};
use crate::commit::{Tx, execute};
use crate::reads::stored_event;
use async_trait::async_trait;
use portcullis_app::ports::{
    EventSpan, PolicyStore, PolicyVersion, PolicyWrite, StoreError, StoreResult, StoredEvent,
};
use portcullis_core::audit::AuditEntry;
use portcullis_core::time::UnixMillis;
use sqlx::any::AnyRow;

/// Applies one of the policy's writes.
pub(crate) async fn write(tx: &mut Tx<'_>, write: PolicyWrite) -> StoreResult<()> {
    match write {
        PolicyWrite::Propose(v) => {
            let query = sqlx::query(
                "INSERT INTO policy_versions (version, text, note, rollback_of, proposed_by, proposed_at) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(v.version)
            .bind(v.text)
            .bind(v.note)
            .bind(v.rollback_of)
            .bind(v.proposed_by)
            .bind(v.proposed_at.as_millis());
            execute(tx, "policy version", query).await.map(|_| ())
        }
        PolicyWrite::Publish {
            version,
            approved_by,
            at,
            publication,
        } => {
            let query = sqlx::query(
                "UPDATE policy_versions SET approved_by = $1, published_at = $2, publication = $3 \
                 WHERE version = $4 AND publication IS NULL",
            )
            .bind(approved_by)
            .bind(at.as_millis())
            .bind(publication)
            .bind(version);
            if execute(tx, "policy version", query).await? == 0 {
                return Err(StoreError::Conflict(format!(
                    "policy version {version} is published already, or does not exist"
                )));
            }
            Ok(())
        }
    }
}

fn version(row: &AnyRow) -> StoreResult<PolicyVersion> {
    Ok(PolicyVersion {
        version: get(row, "version")?,
        text: get(row, "text")?,
        note: get(row, "note")?,
        rollback_of: get(row, "rollback_of")?,
        proposed_by: get(row, "proposed_by")?,
        proposed_at: millis(row, "proposed_at")?,
        approved_by: get(row, "approved_by")?,
        published_at: maybe_millis(row, "published_at")?,
        publication: get(row, "publication")?,
    })
}

impl SqlStore {
    /// One nullable integer a query returns (0 when NULL).
    async fn scalar(
        &self,
        what: &str,
        query: sqlx::query::Query<'_, sqlx::Any, sqlx::any::AnyArguments>,
    ) -> StoreResult<i64> {
        let row = self.first_row(what, query, |row| get::<Option<i64>>(row, "n"));
        Ok(row.await?.flatten().unwrap_or(0))
    }
}

#[async_trait]
impl PolicyStore for SqlStore {
    async fn policy_versions(&self, limit: u32) -> StoreResult<Vec<PolicyVersion>> {
        let query = sqlx::query("SELECT * FROM policy_versions ORDER BY version DESC LIMIT $1")
            .bind(i64::from(limit));
        self.rows("policy versions", query)
            .await?
            .iter()
            .map(version)
            .collect()
    }

    async fn policy_version(&self, number: i64) -> StoreResult<Option<PolicyVersion>> {
        let query = sqlx::query("SELECT * FROM policy_versions WHERE version = $1").bind(number);
        self.first_row("policy version", query, version).await
    }

    async fn latest_policy_version(&self) -> StoreResult<i64> {
        let query = sqlx::query("SELECT MAX(version) AS n FROM policy_versions");
        self.scalar("policy versions", query).await
    }

    async fn published_policy(&self) -> StoreResult<Option<PolicyVersion>> {
        let query = sqlx::query(
            "SELECT * FROM policy_versions WHERE publication IS NOT NULL \
             ORDER BY publication DESC LIMIT 1",
        );
        self.first_row("policy version", query, version).await
    }

    async fn latest_publication(&self) -> StoreResult<i64> {
        let query = sqlx::query("SELECT MAX(publication) AS n FROM policy_versions");
        self.scalar("policy versions", query).await
    }

    async fn policy_audit(&self, limit: u32) -> StoreResult<Vec<AuditEntry>> {
        // A range on the target rather than LIKE, so both backends use the index.
        let query = sqlx::query(
            "SELECT * FROM audit_log WHERE target >= 'policy:' AND target < 'policy;' \
             ORDER BY seq DESC LIMIT $1",
        )
        .bind(i64::from(limit));
        let rows = self.rows("audit_log", query).await?;
        rows.iter().map(crate::codec::audit_entry).collect()
    }

    async fn event_span(&self, from: UnixMillis, to: UnixMillis) -> StoreResult<EventSpan> {
        let query = sqlx::query(
            "SELECT COUNT(*) AS n, MIN(seq) AS first_seq, MAX(seq) AS last_seq FROM events \
             WHERE ts >= $1 AND ts < $2",
        )
        .bind(from.as_millis())
        .bind(to.as_millis());
        let span = self.first_row("events", query, |row| {
            Ok(EventSpan {
                count: get(row, "n")?,
                first_seq: get::<Option<i64>>(row, "first_seq")?.unwrap_or(0),
                last_seq: get::<Option<i64>>(row, "last_seq")?.unwrap_or(0),
            })
        });
        Ok(span.await?.unwrap_or_default())
    }

    async fn events_between(
        &self,
        from: UnixMillis,
        to: UnixMillis,
        after: i64,
        upto: i64,
        limit: u32,
    ) -> StoreResult<Vec<StoredEvent>> {
        let query = sqlx::query(
            "SELECT seq, id, ts, account, type, body FROM events \
             WHERE seq > $1 AND seq <= $2 AND ts >= $3 AND ts < $4 ORDER BY seq LIMIT $5",
        )
        .bind(after)
        .bind(upto)
        .bind(from.as_millis())
        .bind(to.as_millis())
        .bind(i64::from(limit));
        self.rows("events", query)
            .await?
            .iter()
            .map(stored_event)
            .collect()
    }
}
