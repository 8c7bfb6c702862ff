//! The guard's tables: account protections and TOTP enrolment (one JSON document per
//! account), pending changes, step-up grants and withdrawal addresses. Writes run inside the
//! commit transaction (see `commit`); reads are plain queries.

use crate::SqlStore;
use crate::codec::{get, maybe_millis, millis};
use crate::commit::{Tx, execute, missing_or_changed};
use async_trait::async_trait;
use portcullis_app::ports::{
    AccountGuard, Ceremony, CustomerSession, FreezeLink, GuardStore, PendingChange, SignInLink,
    StepUpGrant, StoreError, StoreResult, StoredPasskey, WithdrawalAddress,
};
use portcullis_core::guard::StepUpMethod;
use portcullis_core::time::UnixMillis;
use sqlx::any::AnyRow;

const PENDING_COLUMNS: &str = "doc, version";

fn to_json<T: serde::Serialize>(what: &str, value: &T) -> StoreResult<String> {
    serde_json::to_string(value).map_err(|e| StoreError::Backend(format!("encoding {what}: {e}")))
}

fn from_json<T: serde::de::DeserializeOwned>(what: &str, text: &str) -> StoreResult<T> {
    serde_json::from_str(text).map_err(|e| StoreError::Backend(format!("decoding {what}: {e}")))
}

pub(crate) async fn put_guard(
    tx: &mut Tx<'_>,
    guard: AccountGuard,
    expected: i64,
) -> StoreResult<()> {
    let doc = to_json("account guard", &guard)?;
    let account = guard.account.clone();
    if expected == 0 {
        let query =
            sqlx::query("INSERT INTO account_guards (account, doc, version) VALUES ($1, $2, 1)")
                .bind(account.clone())
                .bind(doc);
        return execute(tx, "account guard", query)
            .await
            .map(|_| ())
            .map_err(|e| match e {
                StoreError::Conflict(_) => StoreError::Conflict(format!(
                    "account guard {account} was changed by someone else"
                )),
                other => other,
            });
    }
    let query = sqlx::query(
        "UPDATE account_guards SET doc = $1, version = $2 WHERE account = $3 AND version = $4",
    )
    .bind(doc)
    .bind(expected + 1)
    .bind(account.clone())
    .bind(expected);
    if execute(tx, "account guard", query).await? == 0 {
        return Err(missing_or_changed(tx, "account_guards", "account", &account).await);
    }
    Ok(())
}

pub(crate) async fn insert_pending(tx: &mut Tx<'_>, change: PendingChange) -> StoreResult<()> {
    let doc = to_json("pending change", &change)?;
    let query = sqlx::query("INSERT INTO pending_changes (id, account, status, applies_at, requested_at, cancel_token_hash, doc, version) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)")
        .bind(change.id).bind(change.account).bind(change.status.as_str().to_owned())
        .bind(change.applies_at.as_millis()).bind(change.requested_at.as_millis())
        .bind(change.cancel_token_hash).bind(doc).bind(change.version);
    execute(tx, "pending change", query).await.map(|_| ())
}

pub(crate) async fn update_pending(
    tx: &mut Tx<'_>,
    change: PendingChange,
    expected: i64,
) -> StoreResult<()> {
    let doc = to_json("pending change", &change)?;
    let id = change.id.clone();
    let query = sqlx::query("UPDATE pending_changes SET status = $1, applies_at = $2, doc = $3, version = $4 WHERE id = $5 AND version = $6")
        .bind(change.status.as_str().to_owned()).bind(change.applies_at.as_millis()).bind(doc)
        .bind(expected + 1).bind(id.clone()).bind(expected);
    if execute(tx, "pending change", query).await? == 0 {
        return Err(missing_or_changed(tx, "pending_changes", "id", &id).await);
    }
    Ok(())
}

pub(crate) async fn insert_grant(tx: &mut Tx<'_>, grant: StepUpGrant) -> StoreResult<()> {
    let query = sqlx::query("INSERT INTO step_up_grants (token_hash, account, method, issued_at, expires_at, spent_at) VALUES ($1, $2, $3, $4, $5, $6)")
        .bind(grant.token_hash).bind(grant.account).bind(grant.method.as_str().to_owned())
        .bind(grant.issued_at.as_millis()).bind(grant.expires_at.as_millis())
        .bind(grant.spent_at.map(UnixMillis::as_millis));
    execute(tx, "step-up grant", query).await.map(|_| ())
}

/// Spends a grant only if it is unspent, so two requests racing with one grant cannot both
/// pass: the second commit finds no row to update and fails as a whole (a conflict; a grant
/// that was never issued is not found).
pub(crate) async fn spend_grant(
    tx: &mut Tx<'_>,
    token_hash: String,
    at: UnixMillis,
) -> StoreResult<()> {
    let query = sqlx::query(
        "UPDATE step_up_grants SET spent_at = $1 WHERE token_hash = $2 AND spent_at IS NULL",
    )
    .bind(at.as_millis())
    .bind(token_hash.clone());
    if execute(tx, "step-up grant", query).await? == 0 {
        return Err(
            match missing_or_changed(tx, "step_up_grants", "token_hash", &token_hash).await {
                StoreError::Conflict(_) => {
                    StoreError::Conflict("the step-up grant was already used".into())
                }
                StoreError::NotFound(_) => StoreError::NotFound("step-up grant".into()),
                other => other,
            },
        );
    }
    Ok(())
}

pub(crate) async fn put_address(tx: &mut Tx<'_>, a: WithdrawalAddress) -> StoreResult<()> {
    let query = sqlx::query("INSERT INTO withdrawal_addresses (account, network, address, asset, label, requested_at, usable_from) VALUES ($1, $2, $3, $4, $5, $6, $7) \
         ON CONFLICT (account, network, address) DO UPDATE SET asset = excluded.asset, label = excluded.label, requested_at = excluded.requested_at, usable_from = excluded.usable_from")
        .bind(a.account).bind(a.network).bind(a.address).bind(a.asset).bind(a.label)
        .bind(a.requested_at.as_millis()).bind(a.usable_from.as_millis());
    execute(tx, "withdrawal address", query).await.map(|_| ())
}

pub(crate) async fn remove_address(
    tx: &mut Tx<'_>,
    account: String,
    network: String,
    address: String,
) -> StoreResult<()> {
    let query = sqlx::query(
        "DELETE FROM withdrawal_addresses WHERE account = $1 AND network = $2 AND address = $3",
    )
    .bind(account)
    .bind(network.clone())
    .bind(address.clone());
    if execute(tx, "withdrawal address", query).await? == 0 {
        return Err(StoreError::NotFound(format!(
            "address {address} on {network}"
        )));
    }
    Ok(())
}

pub(crate) fn pending(row: &AnyRow) -> StoreResult<PendingChange> {
    let mut change: PendingChange = from_json("pending change", &get::<String>(row, "doc")?)?;
    change.version = get(row, "version")?;
    Ok(change)
}

fn grant(row: &AnyRow) -> StoreResult<StepUpGrant> {
    let method: String = get(row, "method")?;
    Ok(StepUpGrant {
        token_hash: get(row, "token_hash")?,
        account: get(row, "account")?,
        method: StepUpMethod::parse(&method)
            .ok_or_else(|| StoreError::Backend(format!("unknown step-up method `{method}`")))?,
        issued_at: millis(row, "issued_at")?,
        expires_at: millis(row, "expires_at")?,
        spent_at: maybe_millis(row, "spent_at")?,
    })
}

fn address(row: &AnyRow) -> StoreResult<WithdrawalAddress> {
    Ok(WithdrawalAddress {
        account: get(row, "account")?,
        network: get(row, "network")?,
        address: get(row, "address")?,
        asset: get(row, "asset")?,
        label: get(row, "label")?,
        requested_at: millis(row, "requested_at")?,
        usable_from: millis(row, "usable_from")?,
    })
}

impl SqlStore {
    async fn pending_where(
        &self,
        condition: &str,
        value: String,
    ) -> StoreResult<Option<PendingChange>> {
        let sql = format!("SELECT {PENDING_COLUMNS} FROM pending_changes WHERE {condition} = $1");
        self.first_row(
            "pending change",
            sqlx::query(sqlx::AssertSqlSafe(sql)).bind(value),
            pending,
        )
        .await
    }
}

#[async_trait]
impl GuardStore for SqlStore {
    async fn guard(&self, account: &str) -> StoreResult<Option<AccountGuard>> {
        self.first_row(
            "account guard",
            sqlx::query("SELECT doc, version FROM account_guards WHERE account = $1")
                .bind(account.to_owned()),
            |row| {
                let mut guard: AccountGuard =
                    from_json("account guard", &get::<String>(row, "doc")?)?;
                guard.version = get(row, "version")?;
                Ok(guard)
            },
        )
        .await
    }

    async fn totp_guards_after(&self, after: &str, limit: u32) -> StoreResult<Vec<AccountGuard>> {
        // The document is JSON text on both backends; an enrolment is the only `"totp":{`.
        let query = sqlx::query(
            "SELECT doc, version FROM account_guards WHERE account > $1 \
             AND doc LIKE '%\"totp\":{%' ORDER BY account LIMIT $2",
        )
        .bind(after.to_owned())
        .bind(i64::from(limit));
        self.rows("account guard", query)
            .await?
            .iter()
            .map(|row| {
                let mut guard: AccountGuard =
                    from_json("account guard", &get::<String>(row, "doc")?)?;
                guard.version = get(row, "version")?;
                Ok(guard)
            })
            .collect()
    }

    async fn pending_change(&self, id: &str) -> StoreResult<Option<PendingChange>> {
        self.pending_where("id", id.to_owned()).await
    }

    async fn pending_by_cancel_token(
        &self,
        token_hash: &str,
    ) -> StoreResult<Option<PendingChange>> {
        self.pending_where("cancel_token_hash", token_hash.to_owned())
            .await
    }

    async fn pending_for_account(
        &self,
        account: &str,
        limit: u32,
    ) -> StoreResult<Vec<PendingChange>> {
        let query = sqlx::query("SELECT doc, version FROM pending_changes WHERE account = $1 ORDER BY requested_at DESC, id DESC LIMIT $2")
            .bind(account.to_owned())
            .bind(i64::from(limit));
        self.rows("pending change", query)
            .await?
            .iter()
            .map(pending)
            .collect()
    }

    async fn due_pending(&self, now: UnixMillis, limit: u32) -> StoreResult<Vec<PendingChange>> {
        let query = sqlx::query("SELECT doc, version FROM pending_changes WHERE status = 'pending' AND applies_at <= $1 ORDER BY applies_at, id LIMIT $2")
            .bind(now.as_millis())
            .bind(i64::from(limit));
        self.rows("pending change", query)
            .await?
            .iter()
            .map(pending)
            .collect()
    }

    async fn grant(&self, token_hash: &str) -> StoreResult<Option<StepUpGrant>> {
        let query = sqlx::query("SELECT * FROM step_up_grants WHERE token_hash = $1")
            .bind(token_hash.to_owned());
        self.first_row("step-up grant", query, grant).await
    }

    async fn passkeys(&self, account: &str) -> StoreResult<Vec<StoredPasskey>> {
        let query = sqlx::query(
            "SELECT * FROM passkeys WHERE account = $1 ORDER BY created_at, credential_id",
        )
        .bind(account.to_owned());
        self.rows("passkey", query)
            .await?
            .iter()
            .map(crate::passkeys::passkey)
            .collect()
    }

    async fn ceremony(&self, id: &str) -> StoreResult<Option<Ceremony>> {
        let query =
            sqlx::query("SELECT * FROM webauthn_ceremonies WHERE id = $1").bind(id.to_owned());
        self.first_row("ceremony", query, crate::passkeys::ceremony)
            .await
    }

    async fn sign_in_link(&self, token_hash: &str) -> StoreResult<Option<SignInLink>> {
        let query = sqlx::query("SELECT * FROM sign_in_links WHERE token_hash = $1")
            .bind(token_hash.to_owned());
        self.first_row("sign-in link", query, crate::sessions::link)
            .await
    }

    async fn freeze_link(&self, token_hash: &str) -> StoreResult<Option<FreezeLink>> {
        let query = sqlx::query("SELECT * FROM freeze_links WHERE token_hash = $1")
            .bind(token_hash.to_owned());
        self.first_row("freeze link", query, crate::sessions::freeze_link)
            .await
    }

    async fn customer_session(&self, token_hash: &str) -> StoreResult<Option<CustomerSession>> {
        let query = sqlx::query("SELECT * FROM customer_sessions WHERE token_hash = $1")
            .bind(token_hash.to_owned());
        self.first_row("session", query, crate::sessions::session)
            .await
    }

    async fn addresses(&self, account: &str) -> StoreResult<Vec<WithdrawalAddress>> {
        let query = sqlx::query(
            "SELECT * FROM withdrawal_addresses WHERE account = $1 ORDER BY network, address",
        )
        .bind(account.to_owned());
        self.rows("withdrawal address", query)
            .await?
            .iter()
            .map(address)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A guard document as stored before TOTP lockouts grew: its TOTP state has no `level` and
    /// no `last_failure`. It must still read, as the first level with no failure on record.
    #[test]
    fn a_guard_document_from_before_growing_lockouts_reads() {
        let stored = r#"{
            "account": "acc_81",
            "protection": {"frozen_at": null, "locked_until": null},
            "totp": {
                "secret": {"master_key_id": "mk_1", "nonce": "AAAA", "ciphertext": "BBBB"},
                "created_at": "2026-01-01T00:00:00.000Z",
                "confirmed_at": "2026-01-01T00:01:00.000Z",
                "state": {
                    "last_step": 58907520,
                    "failures": 2,
                    "locked_until": "2026-01-02T00:00:00.000Z"
                }
            }
        }"#;
        let guard: AccountGuard = from_json("account guard", stored).unwrap();
        let state = &guard.totp.unwrap().state;
        assert_eq!(state.last_step, Some(58_907_520));
        assert_eq!(state.failures, 2);
        assert_eq!(
            state.locked_until,
            Some(UnixMillis::parse_rfc3339("2026-01-02T00:00:00.000Z").unwrap())
        );
        assert_eq!(state.level, 0);
        assert_eq!(state.last_failure, None);
        // Written back, it carries the new fields.
        let written = to_json("account guard", &guard_with(state.clone())).unwrap();
        assert!(written.contains("\"level\":0"), "{written}");
    }

    fn guard_with(state: portcullis_core::guard::totp::TotpState) -> AccountGuard {
        let mut guard = AccountGuard::empty("acc_81");
        guard.totp = Some(portcullis_app::ports::TotpEnrolment {
            secret: portcullis_app::ports::SealedBlob {
                master_key_id: "mk_1".into(),
                nonce: "AAAA".into(),
                ciphertext: "BBBB".into(),
            },
            created_at: UnixMillis(0),
            confirmed_at: None,
            state,
            step_up: None,
        });
        guard
    }
}
