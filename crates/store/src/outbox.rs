//! The delivery side of the outbox: leasing due messages and recording outcomes. Messages are
//! queued by `commit` (with the change they announce); these writes only move delivery state,
//! so they run outside commits and never contend for the audit lock.
//!
//! A claim is a compare-and-set per message (`UPDATE ... WHERE` the lease is free), the same
//! SQL in both dialects: under PostgreSQL's row locks and SQLite's single writer, of two
//! workers racing for one message exactly one update matches.

use crate::codec;
use crate::{SqlStore, db_error};
use async_trait::async_trait;
use portcullis_app::ports::{
    ClaimRequest, OutboxEntry, OutboxFilter, OutboxStatus, OutboxStore, StoreError, StoreResult,
};
use portcullis_core::time::UnixMillis;

const COLUMNS: &str = "id, account, channel, recipient, subject, body_text, body_html, \
    created_at, dedupe_key, status, attempts, next_attempt_at, lease_token, lease_until, \
    last_error, delivered_at, sealed_by";

const ABANDONED: &str = "attempts used up: the worker sending the last allowed attempt stopped \
    before recording its outcome, or the attempt limit was lowered";

impl SqlStore {
    async fn outbox_execute(
        &self,
        what: &str,
        query: sqlx::query::Query<'_, sqlx::Any, sqlx::any::AnyArguments>,
    ) -> StoreResult<u64> {
        query
            .execute(self.pool())
            .await
            .map(|r| r.rows_affected())
            .map_err(|e| db_error(what, e))
    }

    async fn outbox_exists(&self, id: &str) -> StoreResult<bool> {
        let row = sqlx::query("SELECT 1 FROM outbox WHERE id = $1")
            .bind(id.to_owned())
            .fetch_optional(self.pool())
            .await
            .map_err(|e| db_error("outbox", e))?;
        Ok(row.is_some())
    }
}

#[async_trait]
impl OutboxStore for SqlStore {
    async fn claim_due(&self, claim: &ClaimRequest) -> StoreResult<Vec<OutboxEntry>> {
        let now = claim.now.as_millis();
        // Attempts used up and no live lease: the worker of the last attempt died mid-send (or
        // the limit was lowered). Retrying forever could repeat whatever killed the worker, so
        // the message is given up on, visibly.
        let abandon = sqlx::query(
            "UPDATE outbox SET status = 'dead', last_error = $1, lease_token = NULL, lease_until = NULL \
             WHERE status = 'pending' AND attempts >= $2 AND (lease_until IS NULL OR lease_until <= $3)",
        )
        .bind(ABANDONED.to_owned())
        .bind(claim.max_attempts)
        .bind(now);
        self.outbox_execute("outbox", abandon).await?;

        let sql = format!(
            "SELECT {COLUMNS} FROM outbox WHERE status = 'pending' AND next_attempt_at <= $1 \
             AND (lease_until IS NULL OR lease_until <= $2) AND attempts < $3 \
             ORDER BY next_attempt_at, id LIMIT $4"
        );
        let candidates = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(now)
            .bind(now)
            .bind(claim.max_attempts)
            .bind(i64::from(claim.limit))
            .fetch_all(self.pool())
            .await
            .map_err(|e| db_error("outbox", e))?;
        let mut claimed = Vec::with_capacity(candidates.len());
        for row in &candidates {
            let mut entry = codec::outbox_entry(row, self.keyring())?;
            let take = sqlx::query(
                "UPDATE outbox SET lease_token = $1, lease_until = $2, attempts = attempts + 1 \
                 WHERE id = $3 AND status = 'pending' AND (lease_until IS NULL OR lease_until <= $4)",
            )
            .bind(claim.lease_token.clone())
            .bind(claim.until.as_millis())
            .bind(entry.message.id.clone())
            .bind(now);
            // Zero rows: another worker claimed it between our read and this update.
            if self.outbox_execute("outbox", take).await? == 1 {
                entry.attempts += 1;
                entry.lease_until = Some(claim.until);
                claimed.push(entry);
            }
        }
        Ok(claimed)
    }

    async fn mark_delivered(&self, id: &str, at: UnixMillis) -> StoreResult<()> {
        let query = sqlx::query(
            "UPDATE outbox SET status = 'delivered', delivered_at = $1, lease_token = NULL, \
             lease_until = NULL, last_error = NULL WHERE id = $2 AND status <> 'delivered'",
        )
        .bind(at.as_millis())
        .bind(id.to_owned());
        if self.outbox_execute("outbox", query).await? == 0 && !self.outbox_exists(id).await? {
            return Err(StoreError::NotFound(format!("outbox message {id}")));
        }
        Ok(())
    }

    async fn mark_failed(
        &self,
        id: &str,
        lease_token: &str,
        error: &str,
        retry_at: Option<UnixMillis>,
    ) -> StoreResult<()> {
        let status = match retry_at {
            Some(_) => OutboxStatus::Pending,
            None => OutboxStatus::Dead,
        };
        // When dead, next_attempt_at keeps its last value (it is never read again).
        let query = sqlx::query(
            "UPDATE outbox SET status = $1, last_error = $2, next_attempt_at = COALESCE($3, next_attempt_at), \
             lease_token = NULL, lease_until = NULL \
             WHERE id = $4 AND status = 'pending' AND lease_token = $5",
        )
        .bind(status.as_str().to_owned())
        .bind(error.to_owned())
        .bind(retry_at.map(UnixMillis::as_millis))
        .bind(id.to_owned())
        .bind(lease_token.to_owned());
        if self.outbox_execute("outbox", query).await? == 1 {
            return Ok(());
        }
        if self.outbox_exists(id).await? {
            Err(StoreError::Conflict(format!(
                "outbox message {id} is no longer leased by this worker"
            )))
        } else {
            Err(StoreError::NotFound(format!("outbox message {id}")))
        }
    }

    async fn list_outbox(
        &self,
        filter: &OutboxFilter,
        limit: u32,
    ) -> StoreResult<Vec<OutboxEntry>> {
        // Empty strings stand for "any": both dialects compare them the same way, unlike a
        // NULL parameter whose type PostgreSQL cannot infer.
        let sql = format!(
            "SELECT {COLUMNS} FROM outbox WHERE ($1 = '' OR account = $2) AND ($3 = '' OR status = $4) \
             ORDER BY created_at DESC, id DESC LIMIT $5"
        );
        let account = filter.account.clone().unwrap_or_default();
        let status = filter.status.map_or("", OutboxStatus::as_str).to_owned();
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(account.clone())
            .bind(account)
            .bind(status.clone())
            .bind(status)
            .bind(i64::from(limit))
            .fetch_all(self.pool())
            .await
            .map_err(|e| db_error("outbox", e))?;
        rows.iter()
            .map(|row| codec::outbox_entry(row, self.keyring()))
            .collect()
    }
}
