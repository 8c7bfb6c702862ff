//! Partition leases (`LeaseStore`) and the commit's lease check (`Write::HoldsLease`): the
//! partitioned risk engine's ownership rows, on both backends.

use crate::commit::{Tx, execute};
use crate::{SqlStore, codec, db_error};
use async_trait::async_trait;
use portcullis_app::ports::{Lease, LeaseStore, StoreError, StoreResult};
use portcullis_core::time::UnixMillis;

#[async_trait]
impl LeaseStore for SqlStore {
    async fn heartbeat(
        &self,
        node: &str,
        now: UnixMillis,
        expires_at: UnixMillis,
    ) -> StoreResult<Vec<String>> {
        let _turn = self.writer_turn().await;
        sqlx::query(
            "INSERT INTO partition_nodes (node, expires_at) VALUES ($1, $2) \
             ON CONFLICT (node) DO UPDATE SET expires_at = excluded.expires_at",
        )
        .bind(node)
        .bind(expires_at.as_millis())
        .execute(self.writer_pool())
        .await
        .map_err(|e| db_error("partition node", e))?;
        let rows = sqlx::query("SELECT node FROM partition_nodes WHERE expires_at > $1")
            .bind(now.as_millis())
            .fetch_all(self.writer_pool())
            .await
            .map_err(|e| db_error("partition nodes", e))?;
        rows.iter()
            .map(|row| codec::text_column(row, "node"))
            .collect()
    }

    async fn leases(&self) -> StoreResult<Vec<Lease>> {
        let rows = sqlx::query(
            "SELECT part, owner, epoch, expires_at FROM partition_leases ORDER BY part",
        )
        .fetch_all(self.pool())
        .await
        .map_err(|e| db_error("partition leases", e))?;
        rows.iter()
            .map(|row| {
                Ok(Lease {
                    partition: u32::try_from(codec::i64_column(row, "part")?)
                        .map_err(|e| StoreError::Backend(e.to_string()))?,
                    owner: codec::text_column(row, "owner")?,
                    epoch: codec::i64_column(row, "epoch")?,
                    expires_at: UnixMillis(codec::i64_column(row, "expires_at")?),
                })
            })
            .collect()
    }

    async fn acquire(
        &self,
        partition: u32,
        node: &str,
        now: UnixMillis,
        expires_at: UnixMillis,
    ) -> StoreResult<Option<i64>> {
        let _turn = self.writer_turn().await;
        // One statement: two processes taking the same expired lease cannot both succeed.
        let row = sqlx::query(
            "INSERT INTO partition_leases (part, owner, epoch, expires_at) VALUES ($1, $2, 1, $3) \
             ON CONFLICT (part) DO UPDATE SET owner = excluded.owner, \
             epoch = partition_leases.epoch + 1, expires_at = excluded.expires_at \
             WHERE partition_leases.expires_at <= $4 RETURNING epoch",
        )
        .bind(i64::from(partition))
        .bind(node)
        .bind(expires_at.as_millis())
        .bind(now.as_millis())
        .fetch_optional(self.writer_pool())
        .await
        .map_err(|e| db_error("partition lease", e))?;
        row.map(|row| codec::i64_column(&row, "epoch")).transpose()
    }

    async fn renew(
        &self,
        partition: u32,
        node: &str,
        epoch: i64,
        expires_at: UnixMillis,
    ) -> StoreResult<bool> {
        let _turn = self.writer_turn().await;
        let done = sqlx::query(
            "UPDATE partition_leases SET expires_at = $1 WHERE part = $2 AND owner = $3 AND epoch = $4",
        )
        .bind(expires_at.as_millis())
        .bind(i64::from(partition))
        .bind(node)
        .bind(epoch)
        .execute(self.writer_pool())
        .await
        .map_err(|e| db_error("partition lease", e))?;
        Ok(done.rows_affected() == 1)
    }

    async fn release(&self, partition: u32, node: &str, epoch: i64) -> StoreResult<()> {
        // It lapses now: the same update as a renewal, to an expiry long past.
        self.renew(partition, node, epoch, UnixMillis(0))
            .await
            .map(|_| ())
    }
}

/// The partition layout's record (`portcullis_app::partitions::LAYOUT`): its `seq` is the
/// layout's generation.
pub(crate) const LAYOUT: &str = "risk.layout";

/// `Write::HoldsLease`: touches the lease row if it is still `owner`'s under `epoch` and the
/// layout stored is still `generation` (which locks the row until the commit ends, so a
/// takeover waits for this commit), else refuses.
pub(crate) async fn check_held(
    tx: &mut Tx<'_>,
    partition: u32,
    (owner, epoch): (String, i64),
    generation: i64,
) -> StoreResult<()> {
    let query = sqlx::query(HOLDS_LEASE)
        .bind(i64::from(partition))
        .bind(owner)
        .bind(epoch)
        .bind(generation)
        .bind(LAYOUT);
    let touched = execute(tx, "partition lease", query).await?;
    held_or_refused(touched, partition, epoch, generation)
}

/// The statement of [`check_held`] (also run by the log's `COPY` path, `log_copy`): binds the
/// partition, owner, epoch, generation and [`LAYOUT`].
pub(crate) const HOLDS_LEASE: &str = "UPDATE partition_leases SET epoch = epoch \
     WHERE part = $1 AND owner = $2 AND epoch = $3 \
     AND $4 = COALESCE((SELECT seq FROM engine_checkpoints WHERE name = $5), 0)";

/// [`HOLDS_LEASE`] touched `touched` rows: the lease is held, or the commit is refused.
pub(crate) fn held_or_refused(
    touched: u64,
    partition: u32,
    epoch: i64,
    generation: i64,
) -> StoreResult<()> {
    match touched {
        1 => Ok(()),
        _ => Err(StoreError::Conflict(format!(
            "the lease of partition {partition} is no longer held with epoch {epoch} in layout {generation}"
        ))),
    }
}

/// `Write::Relayout`: the layout record moved forward (or nothing, when it is there already),
/// then the other generations' partition checkpoints and the leases of partitions that no
/// longer exist deleted. Every lease row locked first, so the commits of partitions at work
/// (which hold their row until they end) finish before and none starts in the old layout
/// after.
pub(crate) async fn relayout(tx: &mut Tx<'_>, generation: i64, partitions: u32) -> StoreResult<()> {
    let lock = sqlx::query("UPDATE partition_leases SET epoch = epoch");
    execute(tx, "partition leases", lock).await?;
    let moved = sqlx::query(
        "INSERT INTO engine_checkpoints (name, seq, state) VALUES ($1, $2, $3) \
         ON CONFLICT (name) DO UPDATE SET seq = excluded.seq, state = excluded.state \
         WHERE engine_checkpoints.seq < excluded.seq",
    )
    .bind(LAYOUT)
    .bind(generation)
    .bind(partitions.to_string().into_bytes());
    if execute(tx, "partition layout", moved).await? == 0 {
        return Ok(());
    }
    let kept = format!("risk.g{generation}.%");
    let stale = sqlx::query(
        "DELETE FROM engine_checkpoints WHERE name LIKE 'risk.%' AND name <> $1 AND name NOT LIKE $2",
    )
    .bind(LAYOUT)
    .bind(kept);
    execute(tx, "partition checkpoints", stale).await?;
    let gone =
        sqlx::query("DELETE FROM partition_leases WHERE part >= $1").bind(i64::from(partitions));
    execute(tx, "partition leases", gone).await?;
    Ok(())
}
