//! The read side of every port, plus the two telemetry writes that sit outside commits (key
//! usage and idle warnings): they change no configuration, take no audit entry and must not
//! contend with commits.

use crate::codec;
use crate::{SqlStore, db_error};
use async_trait::async_trait;
use portcullis_app::ports::{
    AccountStore, AuditStore, DecisionStore, EngineCheckpoint, EventLog, IgnoredEvent, KeyStore,
    KeyUsage, NewEvent, Operator, OperatorStore, SealedSecret, StoreResult, StoredDecision,
    StoredEvent,
};
use portcullis_core::account::Account;
use portcullis_core::audit::{AuditEntry, ChainHead};
use portcullis_core::key::ApiKey;
use portcullis_core::time::UnixMillis;
use sqlx::any::AnyRow;

const KEY_COLUMNS: &str = "key_id, api_key, account, label, algorithm, public_key, scopes, \
    ip_allowlist, created_at, updated_at, expires_at, last_used_at, last_used_ip, revoked_at, \
    idle_warned_at, version, fund_window, change_seq";
const SECRET_COLUMNS: &str =
    "key_id, generation, master_key_id, nonce, ciphertext, created_at, valid_until";

impl SqlStore {
    pub(crate) async fn rows(
        &self,
        what: &str,
        query: sqlx::query::Query<'_, sqlx::Any, sqlx::any::AnyArguments>,
    ) -> StoreResult<Vec<AnyRow>> {
        query
            .fetch_all(self.pool())
            .await
            .map_err(|e| db_error(what, e))
    }

    /// The first row a query returns, decoded; `None` when it returns none.
    pub(crate) async fn first_row<T>(
        &self,
        what: &str,
        query: sqlx::query::Query<'_, sqlx::Any, sqlx::any::AnyArguments>,
        decode: impl FnOnce(&AnyRow) -> StoreResult<T>,
    ) -> StoreResult<Option<T>> {
        query
            .fetch_optional(self.pool())
            .await
            .map_err(|e| db_error(what, e))?
            .as_ref()
            .map(decode)
            .transpose()
    }

    async fn keys_where(&self, condition: &str, value: &str) -> StoreResult<Vec<ApiKey>> {
        let sql = format!(
            "SELECT {KEY_COLUMNS} FROM api_keys WHERE {condition} = $1 ORDER BY created_at, key_id"
        );
        let rows = self
            .rows(
                "api_keys",
                sqlx::query(sqlx::AssertSqlSafe(sql)).bind(value.to_owned()),
            )
            .await?;
        rows.iter().map(codec::key).collect()
    }
}

#[async_trait]
impl OperatorStore for SqlStore {
    async fn operator_by_token_hash(&self, token_hash: &str) -> StoreResult<Option<Operator>> {
        self.first_row(
            "operators",
            sqlx::query("SELECT * FROM operators WHERE token_hash = $1")
                .bind(token_hash.to_owned()),
            codec::operator,
        )
        .await
    }

    async fn operator(&self, id: &str) -> StoreResult<Option<Operator>> {
        self.first_row(
            "operators",
            sqlx::query("SELECT * FROM operators WHERE id = $1").bind(id.to_owned()),
            codec::operator,
        )
        .await
    }

    async fn list_operators(&self) -> StoreResult<Vec<Operator>> {
        let rows = self
            .rows(
                "operators",
                sqlx::query("SELECT * FROM operators ORDER BY created_at, id"),
            )
            .await?;
        rows.iter().map(codec::operator).collect()
    }
}

#[async_trait]
impl AccountStore for SqlStore {
    async fn account(&self, id: &str) -> StoreResult<Option<Account>> {
        self.first_row(
            "accounts",
            sqlx::query("SELECT * FROM accounts WHERE id = $1").bind(id.to_owned()),
            |row| codec::account(row, self.keyring()),
        )
        .await
    }

    async fn list_accounts(&self, after: Option<&str>, limit: u32) -> StoreResult<Vec<Account>> {
        let query = sqlx::query("SELECT * FROM accounts WHERE id > $1 ORDER BY id LIMIT $2")
            .bind(after.unwrap_or_default().to_owned())
            .bind(i64::from(limit));
        let rows = self.rows("accounts", query).await?;
        rows.iter()
            .map(|row| codec::account(row, self.keyring()))
            .collect()
    }
}

#[async_trait]
impl KeyStore for SqlStore {
    async fn key(&self, key_id: &str) -> StoreResult<Option<ApiKey>> {
        Ok(self.keys_where("key_id", key_id).await?.into_iter().next())
    }

    async fn key_by_api_key(&self, api_key: &str) -> StoreResult<Option<ApiKey>> {
        Ok(self
            .keys_where("api_key", api_key)
            .await?
            .into_iter()
            .next())
    }

    async fn keys_for_account(&self, account: &str) -> StoreResult<Vec<ApiKey>> {
        self.keys_where("account", account).await
    }

    async fn keys_changed_since(&self, after: i64) -> StoreResult<(Vec<ApiKey>, i64)> {
        let sql =
            format!("SELECT {KEY_COLUMNS} FROM api_keys WHERE change_seq > $1 ORDER BY change_seq");
        let rows = self
            .rows(
                "api_keys",
                sqlx::query(sqlx::AssertSqlSafe(sql)).bind(after),
            )
            .await?;
        let mut newest = after;
        let mut keys = Vec::with_capacity(rows.len());
        for row in &rows {
            newest = newest.max(codec::i64_column(row, "change_seq")?);
            keys.push(codec::key(row)?);
        }
        Ok((keys, newest))
    }

    async fn secrets(&self, key_id: &str) -> StoreResult<Vec<SealedSecret>> {
        let sql = format!(
            "SELECT {SECRET_COLUMNS} FROM key_secrets WHERE key_id = $1 ORDER BY generation DESC"
        );
        let rows = self
            .rows(
                "key_secrets",
                sqlx::query(sqlx::AssertSqlSafe(sql)).bind(key_id.to_owned()),
            )
            .await?;
        rows.iter().map(codec::secret).collect()
    }

    async fn secrets_not_sealed_by(
        &self,
        master_key_id: &str,
        limit: u32,
    ) -> StoreResult<Vec<SealedSecret>> {
        let sql = format!(
            "SELECT {SECRET_COLUMNS} FROM key_secrets WHERE master_key_id <> $1 ORDER BY key_id, generation LIMIT $2"
        );
        let query = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(master_key_id.to_owned())
            .bind(i64::from(limit));
        let rows = self.rows("key_secrets", query).await?;
        rows.iter().map(codec::secret).collect()
    }

    async fn record_key_usage(&self, usage: &[KeyUsage]) -> StoreResult<()> {
        let _turn = self.writer_turn().await;
        let mut tx = self
            .writer_pool()
            .begin()
            .await
            .map_err(|e| db_error("record usage", e))?;
        for use_ in usage {
            sqlx::query(
                "UPDATE api_keys SET last_used_at = $1, last_used_ip = $2 \
                 WHERE key_id = $3 AND (last_used_at IS NULL OR last_used_at < $4)",
            )
            .bind(use_.at.as_millis())
            .bind(use_.ip.map(|ip| ip.to_string()))
            .bind(use_.key_id.clone())
            .bind(use_.at.as_millis())
            .execute(&mut *tx)
            .await
            .map_err(|e| db_error("record usage", e))?;
        }
        tx.commit().await.map_err(|e| db_error("record usage", e))
    }

    async fn watch_key_changes(&self) -> StoreResult<Option<tokio::sync::mpsc::Receiver<()>>> {
        match self.listen_url() {
            Some(url) => crate::key_push::listen(url).await.map(Some),
            None => Ok(None),
        }
    }
}

#[async_trait]
impl AuditStore for SqlStore {
    async fn audit_entries(&self, after: i64, limit: u32) -> StoreResult<Vec<AuditEntry>> {
        let query = sqlx::query("SELECT * FROM audit_log WHERE seq > $1 ORDER BY seq LIMIT $2")
            .bind(after)
            .bind(i64::from(limit));
        let rows = self.rows("audit_log", query).await?;
        rows.iter().map(codec::audit_entry).collect()
    }

    async fn audit_for_account(&self, account: &str, limit: u32) -> StoreResult<Vec<AuditEntry>> {
        let query = sqlx::query(
            // One `IN` over the account's own target and its keys': each is an index range
            // (`audit_log_target`), where an `OR` scanned the log.
            "SELECT * FROM audit_log WHERE target IN \
             (SELECT $1 UNION ALL SELECT 'key:' || key_id FROM api_keys WHERE account = $2) \
             ORDER BY seq DESC LIMIT $3",
        )
        .bind(format!("account:{account}"))
        .bind(account.to_owned())
        .bind(i64::from(limit));
        let rows = self.rows("audit_log", query).await?;
        rows.iter().map(codec::audit_entry).collect()
    }

    async fn audit_head(&self) -> StoreResult<Option<ChainHead>> {
        self.first_row(
            "audit_head",
            sqlx::query("SELECT seq, hash, legacy_until FROM audit_head WHERE id = 1"),
            |row| {
                Ok(ChainHead {
                    seq: codec::i64_column(row, "seq")?,
                    hash: codec::text_column(row, "hash")?,
                    legacy_until: codec::i64_column(row, "legacy_until")?,
                })
            },
        )
        .await
    }
}

#[async_trait]
impl DecisionStore for SqlStore {
    async fn decision(&self, event_id: &str) -> StoreResult<Option<StoredDecision>> {
        let query =
            sqlx::query("SELECT * FROM decisions WHERE event_id = $1").bind(event_id.to_owned());
        self.first_row("decisions", query, decision_row).await
    }

    async fn ignored_event(&self, event_id: &str) -> StoreResult<Option<IgnoredEvent>> {
        let query = sqlx::query("SELECT * FROM ignored_events WHERE event_id = $1")
            .bind(event_id.to_owned());
        self.first_row("ignored events", query, |row| {
            Ok(IgnoredEvent {
                event_id: codec::text_column(row, "event_id")?,
                reason: codec::text_column(row, "reason")?,
                event_ts: UnixMillis(codec::i64_column(row, "event_ts")?),
            })
        })
        .await
    }

    async fn decisions_after(
        &self,
        after: i64,
        limit: u32,
    ) -> StoreResult<Vec<(i64, StoredDecision)>> {
        let query = sqlx::query(
            "SELECT e.seq AS seq, d.event_id AS event_id, d.decided_at AS decided_at, \
             d.decision AS decision, d.score AS score, d.reasons AS reasons, d.features AS features \
             FROM events e JOIN decisions d ON d.event_id = e.id \
             WHERE e.seq > $1 ORDER BY e.seq LIMIT $2",
        )
        .bind(after)
        .bind(i64::from(limit));
        let rows = self.rows("decisions", query).await?;
        rows.iter()
            .map(|row| Ok((codec::i64_column(row, "seq")?, decision_row(row)?)))
            .collect()
    }

    async fn checkpoint(&self, name: &str) -> StoreResult<Option<EngineCheckpoint>> {
        let query = sqlx::query("SELECT name, seq, state FROM engine_checkpoints WHERE name = $1")
            .bind(name.to_owned());
        self.first_row("engine_checkpoints", query, |row| {
            Ok(EngineCheckpoint {
                name: codec::text_column(row, "name")?,
                seq: codec::i64_column(row, "seq")?,
                state: codec::bytes_column(row, "state")?,
            })
        })
        .await
    }
}

#[async_trait]
impl EventLog for SqlStore {
    async fn events_after(&self, after: i64, limit: u32) -> StoreResult<Vec<StoredEvent>> {
        let query = sqlx::query("SELECT seq, id, ts, account, type, body FROM events WHERE seq > $1 ORDER BY seq LIMIT $2")
            .bind(after)
            .bind(i64::from(limit));
        let rows = self.rows("events", query).await?;
        rows.iter().map(stored_event).collect()
    }

    async fn append_new_events_then(
        &self,
        events: Vec<NewEvent>,
        then: &mut (dyn FnMut(Vec<Option<i64>>) -> Vec<StoredDecision> + Send),
    ) -> StoreResult<Vec<Option<i64>>> {
        crate::event_rows::append_new_events(self, events, then).await
    }
}

/// A decisions row.
pub(crate) fn decision_row(row: &AnyRow) -> StoreResult<StoredDecision> {
    Ok(StoredDecision {
        event_id: codec::text_column(row, "event_id")?,
        decided_at: UnixMillis(codec::i64_column(row, "decided_at")?),
        decision: codec::text_column(row, "decision")?,
        score: codec::i64_column(row, "score")?,
        reasons: codec::text_column(row, "reasons")?,
        features: codec::text_column(row, "features")?,
    })
}

/// An event log row (`seq, id, ts, account, type, body`).
pub(crate) fn stored_event(row: &AnyRow) -> StoreResult<StoredEvent> {
    Ok(StoredEvent {
        seq: codec::i64_column(row, "seq")?,
        event: NewEvent {
            id: codec::text_column(row, "id")?,
            ts: UnixMillis(codec::i64_column(row, "ts")?),
            account: codec::maybe_text_column(row, "account")?,
            event_type: codec::text_column(row, "type")?,
            body: codec::text_column(row, "body")?,
        },
    })
}
