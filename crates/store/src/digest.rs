//! The daily digest's rows: subscriptions written inside the commit transaction, and the reads
//! of [`DigestStore`] (the due subscriptions, and one account's events over a period).

use crate::SqlStore;
use crate::codec::{get, millis};
use crate::commit::{Tx, execute};
use crate::reads::stored_event;
use async_trait::async_trait;
use portcullis_app::ports::{
    DigestStore, DigestSubscription, StoreError, StoreResult, StoredEvent,
};
use portcullis_core::time::UnixMillis;
use sqlx::any::AnyRow;

pub(crate) async fn put(tx: &mut Tx<'_>, s: DigestSubscription) -> StoreResult<()> {
    let query = sqlx::query(
        "INSERT INTO digest_subscriptions (account, hour_utc, next_at, created_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (account) DO UPDATE SET hour_utc = excluded.hour_utc, next_at = excluded.next_at",
    )
    .bind(s.account)
    .bind(i64::from(s.hour_utc))
    .bind(s.next_at.as_millis())
    .bind(s.created_at.as_millis());
    execute(tx, "digest subscription", query).await.map(|_| ())
}

pub(crate) async fn advance(
    tx: &mut Tx<'_>,
    account: String,
    sent_for: UnixMillis,
    next_at: UnixMillis,
) -> StoreResult<()> {
    let query = sqlx::query(
        "UPDATE digest_subscriptions SET next_at = $1 WHERE account = $2 AND next_at = $3",
    )
    .bind(next_at.as_millis())
    .bind(account.clone())
    .bind(sent_for.as_millis());
    if execute(tx, "digest subscription", query).await? == 0 {
        return Err(StoreError::Conflict(format!(
            "the digest of {account} was sent or changed meanwhile"
        )));
    }
    Ok(())
}

pub(crate) async fn remove(tx: &mut Tx<'_>, account: String) -> StoreResult<()> {
    let query =
        sqlx::query("DELETE FROM digest_subscriptions WHERE account = $1").bind(account.clone());
    if execute(tx, "digest subscription", query).await? == 0 {
        return Err(StoreError::NotFound(format!("digest of {account}")));
    }
    Ok(())
}

fn subscription(row: &AnyRow) -> StoreResult<DigestSubscription> {
    let hour: i64 = get(row, "hour_utc")?;
    Ok(DigestSubscription {
        account: get(row, "account")?,
        hour_utc: u8::try_from(hour)
            .map_err(|_| StoreError::Backend(format!("digest hour {hour} out of range")))?,
        next_at: millis(row, "next_at")?,
        created_at: millis(row, "created_at")?,
    })
}

#[async_trait]
impl DigestStore for SqlStore {
    async fn digest_subscription(&self, account: &str) -> StoreResult<Option<DigestSubscription>> {
        let query = sqlx::query("SELECT * FROM digest_subscriptions WHERE account = $1")
            .bind(account.to_owned());
        let rows = self.rows("digest subscription", query).await?;
        rows.first().map(subscription).transpose()
    }

    async fn due_digests(
        &self,
        now: UnixMillis,
        limit: u32,
    ) -> StoreResult<Vec<DigestSubscription>> {
        let query = sqlx::query(
            "SELECT * FROM digest_subscriptions WHERE next_at <= $1 ORDER BY next_at, account LIMIT $2",
        )
        .bind(now.as_millis())
        .bind(i64::from(limit));
        let rows = self.rows("digest subscriptions", query).await?;
        rows.iter().map(subscription).collect()
    }

    async fn account_events_between(
        &self,
        account: &str,
        from: UnixMillis,
        to: UnixMillis,
        limit: u32,
    ) -> StoreResult<Vec<StoredEvent>> {
        let query = sqlx::query(
            "SELECT seq, id, ts, account, type, body FROM events \
             WHERE account = $1 AND ts >= $2 AND ts < $3 ORDER BY seq LIMIT $4",
        )
        .bind(account.to_owned())
        .bind(from.as_millis())
        .bind(to.as_millis())
        .bind(i64::from(limit));
        let rows = self.rows("events", query).await?;
        rows.iter().map(stored_event).collect()
    }
}
