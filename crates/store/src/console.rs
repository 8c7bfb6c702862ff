//! The analyst console's rows: operators' enrolment links, passkeys, ceremonies and sessions,
//! the queue's assignments (writes inside the commit transaction), and the reads of
//! [`ConsoleStore`].

use crate::SqlStore;
use crate::codec::{get, maybe_millis, millis};
use crate::commit::{Tx, execute};
use crate::reads::{decision_row, stored_event};
use async_trait::async_trait;
use portcullis_app::ports::{
    Assignment, ConsoleStore, ConsoleWrite, EnrolmentLink, HeldWithdrawal, OperatorCeremony,
    OperatorPasskey, OperatorSession, PendingChange, StoreError, StoreResult, StoredDecision,
    StoredEvent,
};
use portcullis_core::guard::{ReviewState, WithdrawalReview};
use portcullis_core::time::UnixMillis;
use sqlx::any::AnyRow;

/// Applies one of the console's writes.
pub(crate) async fn write(tx: &mut Tx<'_>, write: ConsoleWrite) -> StoreResult<()> {
    match write {
        ConsoleWrite::InsertEnrolmentLink(l) => {
            let query = sqlx::query("INSERT INTO operator_enrolment_links (token_hash, operator, created_by, created_at, expires_at, used_at) VALUES ($1, $2, $3, $4, $5, $6)")
                .bind(l.token_hash).bind(l.operator).bind(l.created_by).bind(l.created_at.as_millis())
                .bind(l.expires_at.as_millis()).bind(l.used_at.map(UnixMillis::as_millis));
            execute(tx, "enrolment link", query).await.map(|_| ())
        }
        ConsoleWrite::SpendEnrolmentLink { token_hash, at } => {
            let query = sqlx::query("UPDATE operator_enrolment_links SET used_at = $1 WHERE token_hash = $2 AND used_at IS NULL")
                .bind(at.as_millis()).bind(token_hash);
            once(
                tx,
                "enrolment link",
                query,
                "the enrolment link was already used",
            )
            .await
        }
        ConsoleWrite::InsertPasskey(p) => {
            let query = sqlx::query("INSERT INTO operator_passkeys (credential_id, operator, passkey, created_at, last_used_at) VALUES ($1, $2, $3, $4, $5)")
                .bind(p.credential_id).bind(p.operator).bind(p.passkey).bind(p.created_at.as_millis())
                .bind(p.last_used_at.map(UnixMillis::as_millis));
            execute(tx, "operator passkey", query).await.map(|_| ())
        }
        ConsoleWrite::UpdatePasskey {
            credential_id,
            passkey,
            at,
        } => {
            let query = sqlx::query("UPDATE operator_passkeys SET passkey = $1, last_used_at = $2 WHERE credential_id = $3")
                .bind(passkey).bind(at.as_millis()).bind(credential_id);
            execute(tx, "operator passkey", query).await.map(|_| ())
        }
        ConsoleWrite::InsertCeremony(c) => {
            let query = sqlx::query("INSERT INTO operator_ceremonies (id, operator, kind, state, expires_at, used_at) VALUES ($1, $2, $3, $4, $5, $6)")
                .bind(c.id).bind(c.operator).bind(c.kind).bind(c.state).bind(c.expires_at.as_millis())
                .bind(c.used_at.map(UnixMillis::as_millis));
            execute(tx, "operator ceremony", query).await.map(|_| ())
        }
        ConsoleWrite::SpendCeremony { id, at } => {
            let query = sqlx::query(
                "UPDATE operator_ceremonies SET used_at = $1 WHERE id = $2 AND used_at IS NULL",
            )
            .bind(at.as_millis())
            .bind(id);
            once(
                tx,
                "operator ceremony",
                query,
                "the WebAuthn challenge was already answered",
            )
            .await
        }
        ConsoleWrite::InsertSession(s) => {
            let query = sqlx::query("INSERT INTO operator_sessions (token_hash, operator, created_at, last_seen_at, expires_at, revoked_at) VALUES ($1, $2, $3, $4, $5, $6)")
                .bind(s.token_hash).bind(s.operator).bind(s.created_at.as_millis()).bind(s.last_seen_at.as_millis())
                .bind(s.expires_at.as_millis()).bind(s.revoked_at.map(UnixMillis::as_millis));
            execute(tx, "operator session", query).await.map(|_| ())
        }
        ConsoleWrite::TouchSession { token_hash, at } => {
            let query = sqlx::query("UPDATE operator_sessions SET last_seen_at = $1 WHERE token_hash = $2 AND last_seen_at < $3")
                .bind(at.as_millis()).bind(token_hash).bind(at.as_millis());
            execute(tx, "operator session", query).await.map(|_| ())
        }
        ConsoleWrite::RevokeSession { token_hash, at } => {
            let query = sqlx::query("UPDATE operator_sessions SET revoked_at = $1 WHERE token_hash = $2 AND revoked_at IS NULL")
                .bind(at.as_millis()).bind(token_hash);
            execute(tx, "operator session", query).await.map(|_| ())
        }
        ConsoleWrite::Assign(a) => {
            let query = sqlx::query(
                "INSERT INTO console_assignments (item, assignee, assigned_by, assigned_at) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (item) DO UPDATE SET assignee = excluded.assignee, assigned_by = excluded.assigned_by, assigned_at = excluded.assigned_at",
            )
            .bind(a.item).bind(a.assignee).bind(a.assigned_by).bind(a.assigned_at.as_millis());
            execute(tx, "assignment", query).await.map(|_| ())
        }
        ConsoleWrite::Unassign { item } => {
            let query = sqlx::query("DELETE FROM console_assignments WHERE item = $1").bind(item);
            execute(tx, "assignment", query).await.map(|_| ())
        }
        ConsoleWrite::PutWithdrawalReview {
            review,
            previous_version,
        } => put_review(tx, review, previous_version).await,
    }
}

const REVIEW_RACE: &str =
    "another operator reviewed this withdrawal at the same moment; reload and look again";

async fn put_review(
    tx: &mut Tx<'_>,
    r: WithdrawalReview,
    previous_version: Option<i64>,
) -> StoreResult<()> {
    let query = match previous_version {
        None => sqlx::query(
            "INSERT INTO withdrawal_reviews (event_id, account, state, approved_by, resolved_by, updated_at, version) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (event_id) DO NOTHING",
        )
        .bind(r.event_id)
        .bind(r.account)
        .bind(r.state.as_str())
        .bind(r.approved_by)
        .bind(r.resolved_by)
        .bind(r.updated_at.as_millis())
        .bind(r.version),
        Some(previous) => sqlx::query(
            "UPDATE withdrawal_reviews SET state = $1, approved_by = $2, resolved_by = $3, updated_at = $4, version = $5 \
             WHERE event_id = $6 AND version = $7",
        )
        .bind(r.state.as_str())
        .bind(r.approved_by)
        .bind(r.resolved_by)
        .bind(r.updated_at.as_millis())
        .bind(r.version)
        .bind(r.event_id)
        .bind(previous),
    };
    once(tx, "withdrawal review", query, REVIEW_RACE).await
}

/// Runs an update that must change exactly one row that was not changed before.
async fn once(
    tx: &mut Tx<'_>,
    what: &'static str,
    query: sqlx::query::Query<'_, sqlx::Any, sqlx::any::AnyArguments>,
    conflict: &str,
) -> StoreResult<()> {
    if execute(tx, what, query).await? == 0 {
        return Err(StoreError::Conflict(conflict.to_owned()));
    }
    Ok(())
}

fn link(row: &AnyRow) -> StoreResult<EnrolmentLink> {
    Ok(EnrolmentLink {
        token_hash: get(row, "token_hash")?,
        operator: get(row, "operator")?,
        created_by: get(row, "created_by")?,
        created_at: millis(row, "created_at")?,
        expires_at: millis(row, "expires_at")?,
        used_at: maybe_millis(row, "used_at")?,
    })
}

fn passkey(row: &AnyRow) -> StoreResult<OperatorPasskey> {
    Ok(OperatorPasskey {
        credential_id: get(row, "credential_id")?,
        operator: get(row, "operator")?,
        passkey: get(row, "passkey")?,
        created_at: millis(row, "created_at")?,
        last_used_at: maybe_millis(row, "last_used_at")?,
    })
}

fn ceremony(row: &AnyRow) -> StoreResult<OperatorCeremony> {
    Ok(OperatorCeremony {
        id: get(row, "id")?,
        operator: get(row, "operator")?,
        kind: get(row, "kind")?,
        state: get(row, "state")?,
        expires_at: millis(row, "expires_at")?,
        used_at: maybe_millis(row, "used_at")?,
    })
}

fn session(row: &AnyRow) -> StoreResult<OperatorSession> {
    Ok(OperatorSession {
        token_hash: get(row, "token_hash")?,
        operator: get(row, "operator")?,
        created_at: millis(row, "created_at")?,
        last_seen_at: millis(row, "last_seen_at")?,
        expires_at: millis(row, "expires_at")?,
        revoked_at: maybe_millis(row, "revoked_at")?,
    })
}

fn assignment(row: &AnyRow) -> StoreResult<Assignment> {
    Ok(Assignment {
        item: get(row, "item")?,
        assignee: get(row, "assignee")?,
        assigned_by: get(row, "assigned_by")?,
        assigned_at: millis(row, "assigned_at")?,
    })
}

/// The review columns of a held withdrawal's row (`NULL` when no review started).
fn review(row: &AnyRow) -> StoreResult<Option<WithdrawalReview>> {
    let state: Option<String> = get(row, "r_state")?;
    let Some(state) = state else {
        return Ok(None);
    };
    let state = ReviewState::parse(&state)
        .ok_or_else(|| StoreError::Backend(format!("unknown withdrawal review state {state}")))?;
    Ok(Some(WithdrawalReview {
        event_id: get(row, "id")?,
        account: get(row, "r_account")?,
        state,
        approved_by: get(row, "r_approved_by")?,
        resolved_by: get(row, "r_resolved_by")?,
        updated_at: millis(row, "r_updated_at")?,
        version: get(row, "r_version")?,
    }))
}

fn held(row: &AnyRow) -> StoreResult<HeldWithdrawal> {
    let (event, decision) = with_decision(row)?;
    let decision = decision
        .ok_or_else(|| StoreError::Backend("a held withdrawal without its decision".into()))?;
    Ok(HeldWithdrawal {
        event,
        decision,
        review: review(row)?,
    })
}

/// The columns of an event and its decision, as `stored_event` and `decision_row` read them
/// (a macro, so that the statements below are built from one list at compile time).
macro_rules! event_and_decision_columns {
    () => {
        "SELECT e.seq, e.id, e.ts, e.account, e.type, e.body, d.event_id, \
         d.decided_at, d.decision, d.score, d.reasons, d.features"
    };
}

/// Held withdrawals with their reviews; the caller adds the `WHERE` beyond the hold itself.
const HELD_WITHDRAWALS: &str = concat!(
    event_and_decision_columns!(),
    ", r.state AS r_state, r.account AS r_account, r.approved_by AS r_approved_by, \
     r.resolved_by AS r_resolved_by, r.updated_at AS r_updated_at, r.version AS r_version \
     FROM events e JOIN decisions d ON d.event_id = e.id \
     LEFT JOIN withdrawal_reviews r ON r.event_id = e.id \
     WHERE d.decision = 'hold' AND e.type = 'withdrawal.requested'"
);

/// An event row joined with its decision (`NULL` columns when it has none).
fn with_decision(row: &AnyRow) -> StoreResult<(StoredEvent, Option<StoredDecision>)> {
    let decided: Option<String> = get(row, "event_id")?;
    let decision = decided.map(|_| decision_row(row)).transpose()?;
    Ok((stored_event(row)?, decision))
}

/// Events with their decisions; the caller adds the join and the `WHERE`.
const EVENT_AND_DECISION: &str = concat!(event_and_decision_columns!(), " FROM events e");

#[async_trait]
impl ConsoleStore for SqlStore {
    async fn enrolment_link(&self, token_hash: &str) -> StoreResult<Option<EnrolmentLink>> {
        let query = sqlx::query("SELECT * FROM operator_enrolment_links WHERE token_hash = $1")
            .bind(token_hash.to_owned());
        self.first_row("enrolment link", query, link).await
    }

    async fn operator_passkeys(&self, operator: &str) -> StoreResult<Vec<OperatorPasskey>> {
        let query = sqlx::query(
            "SELECT * FROM operator_passkeys WHERE operator = $1 ORDER BY created_at, credential_id",
        )
        .bind(operator.to_owned());
        self.rows("operator passkeys", query)
            .await?
            .iter()
            .map(passkey)
            .collect()
    }

    async fn operator_ceremony(&self, id: &str) -> StoreResult<Option<OperatorCeremony>> {
        let query =
            sqlx::query("SELECT * FROM operator_ceremonies WHERE id = $1").bind(id.to_owned());
        self.first_row("operator ceremony", query, ceremony).await
    }

    async fn operator_session(&self, token_hash: &str) -> StoreResult<Option<OperatorSession>> {
        let query = sqlx::query("SELECT * FROM operator_sessions WHERE token_hash = $1")
            .bind(token_hash.to_owned());
        self.first_row("operator session", query, session).await
    }

    async fn assignments(&self, items: &[String]) -> StoreResult<Vec<Assignment>> {
        let mut found = Vec::new();
        // A page of items at a time: one query each, well under either backend's bound on
        // parameters.
        for page in items.chunks(500) {
            let marks: Vec<String> = (1..=page.len()).map(|n| format!("${n}")).collect();
            let sql = format!(
                "SELECT * FROM console_assignments WHERE item IN ({}) ORDER BY item",
                marks.join(", ")
            );
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
            for item in page {
                query = query.bind(item.clone());
            }
            for row in self.rows("assignments", query).await? {
                found.push(assignment(&row)?);
            }
        }
        Ok(found)
    }

    async fn open_changes(&self, limit: u32) -> StoreResult<Vec<PendingChange>> {
        let query = sqlx::query(
            "SELECT doc, version FROM pending_changes WHERE status IN ('pending', 'held') \
             ORDER BY requested_at, id LIMIT $1",
        )
        .bind(i64::from(limit));
        self.rows("pending change", query)
            .await?
            .iter()
            .map(crate::guard::pending)
            .collect()
    }

    async fn held_withdrawals(
        &self,
        account: Option<&str>,
        limit: u32,
    ) -> StoreResult<Vec<HeldWithdrawal>> {
        // `$2 IS NULL` would need a typed NULL on PostgreSQL: two statements instead.
        let of_account = if account.is_some() {
            "AND e.account = $2 "
        } else {
            ""
        };
        let sql = format!(
            "{HELD_WITHDRAWALS} AND (r.state IS NULL OR r.state = 'approved') {of_account}\
             ORDER BY d.decided_at DESC, d.event_id LIMIT $1"
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(i64::from(limit));
        if let Some(account) = account {
            query = query.bind(account.to_owned());
        }
        self.rows("held withdrawals", query)
            .await?
            .iter()
            .map(held)
            .collect()
    }

    async fn held_withdrawal(&self, event_id: &str) -> StoreResult<Option<HeldWithdrawal>> {
        let sql = format!("{HELD_WITHDRAWALS} AND e.id = $1");
        let query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(event_id.to_owned());
        self.first_row("held withdrawal", query, held).await
    }

    async fn account_history(
        &self,
        account: &str,
        limit: u32,
    ) -> StoreResult<Vec<(StoredEvent, Option<StoredDecision>)>> {
        let sql = format!(
            "{EVENT_AND_DECISION} LEFT JOIN decisions d ON d.event_id = e.id \
             WHERE e.account = $1 ORDER BY e.seq DESC LIMIT $2"
        );
        let query = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(account.to_owned())
            .bind(i64::from(limit));
        self.rows("account history", query)
            .await?
            .iter()
            .map(with_decision)
            .collect()
    }
}
