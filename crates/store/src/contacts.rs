//! The official-contact registry and the report counts: writes inside the commit transaction,
//! and the reads of [`ContactStore`].

use crate::codec::{get, millis};
use crate::commit::{Tx, execute};
use crate::{SqlStore, db_error};
use async_trait::async_trait;
use portcullis_app::ports::{
    ContactStore, ReportTally, StoreError, StoreResult, StoredEvent, StoredOfficialContact,
};
use portcullis_contacts::{Direction, EntryKind, OfficialEntry};
use sqlx::any::AnyRow;

const REPORT_COLUMNS: &str = "kind, value, reports, public_reports, confirmed_frauds, \
    first_seen, last_seen, last_claimed, last_channel";

pub(crate) async fn insert_official(tx: &mut Tx<'_>, c: StoredOfficialContact) -> StoredResult {
    let e = c.entry;
    let query = sqlx::query("INSERT INTO official_contacts (id, kind, value, channel, direction, note, created_at, created_by) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)")
        .bind(e.id).bind(e.kind.as_str().to_owned()).bind(e.value).bind(e.channel)
        .bind(e.direction.as_str().to_owned()).bind(e.note).bind(c.created_at.as_millis())
        .bind(c.created_by);
    execute(tx, "official contact", query).await.map(|_| ())
}

type StoredResult = StoreResult<()>;

pub(crate) async fn remove_official(tx: &mut Tx<'_>, id: String) -> StoredResult {
    let query = sqlx::query("DELETE FROM official_contacts WHERE id = $1").bind(id.clone());
    if execute(tx, "official contact", query).await? == 0 {
        return Err(StoreError::NotFound(format!("official contact {id}")));
    }
    Ok(())
}

/// Moves the projector's position from `from_seq` to `to_seq` and adds the tallies, or writes
/// nothing when the position moved meanwhile.
pub(crate) async fn apply_reports(
    tx: &mut Tx<'_>,
    from_seq: i64,
    to_seq: i64,
    tallies: Vec<ReportTally>,
) -> StoredResult {
    let query = sqlx::query("UPDATE contact_report_cursor SET seq = $1 WHERE id = 1 AND seq = $2")
        .bind(to_seq)
        .bind(from_seq);
    if execute(tx, "contact report cursor", query).await? == 0 {
        return Err(StoreError::Conflict(
            "the contact reports were counted by someone else".into(),
        ));
    }
    for t in tallies {
        let query = sqlx::query(
            "INSERT INTO contact_reports (kind, value, reports, public_reports, confirmed_frauds, first_seen, last_seen, last_claimed, last_channel) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
             ON CONFLICT (kind, value) DO UPDATE SET \
               reports = contact_reports.reports + excluded.reports, \
               public_reports = contact_reports.public_reports + excluded.public_reports, \
               confirmed_frauds = contact_reports.confirmed_frauds + excluded.confirmed_frauds, \
               first_seen = CASE WHEN excluded.first_seen < contact_reports.first_seen THEN excluded.first_seen ELSE contact_reports.first_seen END, \
               last_claimed = CASE WHEN excluded.last_seen >= contact_reports.last_seen THEN excluded.last_claimed ELSE contact_reports.last_claimed END, \
               last_channel = CASE WHEN excluded.last_seen >= contact_reports.last_seen THEN excluded.last_channel ELSE contact_reports.last_channel END, \
               last_seen = CASE WHEN excluded.last_seen > contact_reports.last_seen THEN excluded.last_seen ELSE contact_reports.last_seen END",
        )
        .bind(t.kind).bind(t.value).bind(t.reports).bind(t.public_reports).bind(t.confirmed_frauds)
        .bind(t.first_seen.as_millis()).bind(t.last_seen.as_millis()).bind(t.last_claimed)
        .bind(t.last_channel);
        execute(tx, "contact report", query).await?;
    }
    Ok(())
}

fn official(row: &AnyRow) -> StoreResult<StoredOfficialContact> {
    let kind: String = get(row, "kind")?;
    let direction: String = get(row, "direction")?;
    let corrupt = |what: &str| StoreError::Backend(format!("official_contacts: bad {what}"));
    Ok(StoredOfficialContact {
        entry: OfficialEntry {
            id: get(row, "id")?,
            kind: EntryKind::parse(&kind).map_err(|_| corrupt("kind"))?,
            value: get(row, "value")?,
            channel: get(row, "channel")?,
            direction: Direction::parse(&direction).ok_or_else(|| corrupt("direction"))?,
            note: get(row, "note")?,
        },
        created_at: millis(row, "created_at")?,
        created_by: get(row, "created_by")?,
    })
}

fn tally(row: &AnyRow) -> StoreResult<ReportTally> {
    Ok(ReportTally {
        kind: get(row, "kind")?,
        value: get(row, "value")?,
        reports: get(row, "reports")?,
        public_reports: get(row, "public_reports")?,
        confirmed_frauds: get(row, "confirmed_frauds")?,
        first_seen: millis(row, "first_seen")?,
        last_seen: millis(row, "last_seen")?,
        last_claimed: get(row, "last_claimed")?,
        last_channel: get(row, "last_channel")?,
    })
}

#[async_trait]
impl ContactStore for SqlStore {
    async fn official_contacts(&self) -> StoreResult<Vec<StoredOfficialContact>> {
        let query = sqlx::query("SELECT * FROM official_contacts ORDER BY created_at, id");
        self.rows("official_contacts", query)
            .await?
            .iter()
            .map(official)
            .collect()
    }

    async fn contact_reports(&self, limit: u32) -> StoreResult<Vec<ReportTally>> {
        let sql = format!(
            "SELECT {REPORT_COLUMNS} FROM contact_reports ORDER BY last_seen DESC, kind, value LIMIT $1"
        );
        let query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(i64::from(limit));
        self.rows("contact_reports", query)
            .await?
            .iter()
            .map(tally)
            .collect()
    }

    async fn scam_contacts(&self, threshold: i64) -> StoreResult<Vec<ReportTally>> {
        let sql = format!(
            "SELECT {REPORT_COLUMNS} FROM contact_reports WHERE confirmed_frauds > 0 OR reports >= $1 ORDER BY kind, value"
        );
        let query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(threshold);
        self.rows("contact_reports", query)
            .await?
            .iter()
            .map(tally)
            .collect()
    }

    async fn contact_report_cursor(&self) -> StoreResult<i64> {
        let row = sqlx::query("SELECT seq FROM contact_report_cursor WHERE id = 1")
            .fetch_one(self.pool())
            .await
            .map_err(|e| db_error("contact report cursor", e))?;
        get(&row, "seq")
    }

    async fn report_events_after(
        &self,
        after: i64,
        limit: u32,
    ) -> StoreResult<(Vec<StoredEvent>, i64)> {
        // The end of the log first: positions grow in commit order, so nothing can land below
        // it later, and a pass that finds no report still moves on to it.
        let head = sqlx::query("SELECT MAX(seq) AS seq FROM events")
            .fetch_one(self.pool())
            .await
            .map_err(|e| db_error("events", e))?;
        let head: Option<i64> = get(&head, "seq")?;
        let head = head.unwrap_or(0);
        let query = sqlx::query(
            "SELECT seq, id, ts, account, type, body FROM events WHERE seq > $1 AND seq <= $2 \
             AND type IN ('contact.reported', 'fraud.confirmed') ORDER BY seq LIMIT $3",
        )
        .bind(after)
        .bind(head)
        .bind(i64::from(limit));
        let rows = self.rows("events", query).await?;
        let events = rows
            .iter()
            .map(crate::reads::stored_event)
            .collect::<StoreResult<Vec<_>>>()?;
        let reached = match events.last() {
            Some(last) if events.len() == limit as usize => last.seq,
            _ => head,
        };
        Ok((events, reached.max(after)))
    }
}
