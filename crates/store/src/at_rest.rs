//! Values sealed at rest: the anti-phishing code (`accounts.anti_phishing_code`) and the
//! rendered bodies of queued notices (`outbox.body_text`, `outbox.body_html`, which quote that
//! code and carry live cancel links). A database backup without the keyring reveals neither.
//!
//! Each value is sealed with the master keyring (AES-256-GCM, see
//! `portcullis_app::keyring::MasterKeyring::seal_field`) bound to its column and row, so a
//! ciphertext copied onto another row does not open; a column beside it names the master key
//! (`anti_phishing_sealed_by`, `outbox.sealed_by`). A NULL there means the value was written in
//! plain text before sealing existed (migration 0012): such rows are still read as they are,
//! and [`reseal`] seals them along with values under an older master key.
//!
//! The adapter seals on write and opens on read, so every use case (and the delivery loop,
//! which opens a message when it claims it to send it) sees plain values, as before.

use crate::commit::{Tx, execute, missing_or_changed};
use crate::{SqlStore, codec, db_error};
use portcullis_app::keyring::{MasterKeyring, SealedField};
use portcullis_app::ports::{OutboxMessage, StoreError, StoreResult};
use portcullis_core::account::Account;
use sqlx::any::AnyRow;

/// The column of the anti-phishing code.
pub(crate) const ANTI_PHISHING_CODE: &str = "accounts.anti_phishing_code";
/// The columns of a notice's bodies.
pub(crate) const BODY_TEXT: &str = "outbox.body_text";
pub(crate) const BODY_HTML: &str = "outbox.body_html";

/// What a sealed value is bound to: its column and its row.
fn context(column: &str, row: &str) -> String {
    format!("{column}|{row}")
}

fn failed(error: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(error.to_string())
}

/// `plain`, sealed for `column` of `row` under the active master key.
pub(crate) fn seal(
    keyring: &MasterKeyring,
    column: &str,
    row: &str,
    plain: &str,
) -> StoreResult<SealedField> {
    keyring
        .seal_field(&context(column, row), plain)
        .map_err(failed)
}

/// The plain value of `column` of `row` as stored: opened when `sealed_by` names the master
/// key that sealed it, taken as it is when `sealed_by` is NULL (written before sealing).
pub(crate) fn open(
    keyring: &MasterKeyring,
    column: &str,
    row: &str,
    stored: String,
    sealed_by: Option<String>,
) -> StoreResult<String> {
    match sealed_by {
        None => Ok(stored),
        Some(master_key_id) => keyring
            .open_field(
                &context(column, row),
                &SealedField {
                    master_key_id,
                    sealed: stored,
                },
            )
            .map_err(failed),
    }
}

/// An account's anti-phishing code as stored, and the master key that sealed it.
fn sealed_code(
    keyring: &MasterKeyring,
    account: &Account,
) -> StoreResult<(Option<String>, Option<String>)> {
    match &account.anti_phishing_code {
        None => Ok((None, None)),
        Some(code) => {
            let field = seal(keyring, ANTI_PHISHING_CODE, &account.id, code)?;
            Ok((Some(field.sealed), Some(field.master_key_id)))
        }
    }
}

pub(crate) async fn insert_account(
    tx: &mut Tx<'_>,
    store: &SqlStore,
    a: Account,
) -> StoreResult<()> {
    let (code, sealed_by) = sealed_code(store.keyring(), &a)?;
    let query = sqlx::query(
        "INSERT INTO accounts (id, display_name, email, phone, anti_phishing_code, \
         anti_phishing_sealed_by, created_at, updated_at, version) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(a.id)
    .bind(a.display_name)
    .bind(a.email)
    .bind(a.phone)
    .bind(code)
    .bind(sealed_by)
    .bind(a.created_at.as_millis())
    .bind(a.updated_at.as_millis())
    .bind(a.version);
    execute(tx, "account", query).await?;
    Ok(())
}

pub(crate) async fn update_account(
    tx: &mut Tx<'_>,
    store: &SqlStore,
    a: Account,
    expected_version: i64,
) -> StoreResult<()> {
    let (code, sealed_by) = sealed_code(store.keyring(), &a)?;
    let id = a.id.clone();
    let query = sqlx::query(
        "UPDATE accounts SET display_name = $1, email = $2, phone = $3, anti_phishing_code = $4, \
         anti_phishing_sealed_by = $5, updated_at = $6, version = $7 WHERE id = $8 AND version = $9",
    )
    .bind(a.display_name)
    .bind(a.email)
    .bind(a.phone)
    .bind(code)
    .bind(sealed_by)
    .bind(a.updated_at.as_millis())
    .bind(expected_version + 1)
    .bind(a.id)
    .bind(expected_version);
    if execute(tx, "account", query).await? == 0 {
        return Err(missing_or_changed(tx, "accounts", "id", &id).await);
    }
    Ok(())
}

/// Queues a message, its bodies sealed; one already queued under the same dedupe key stays as
/// it was, so announcing one thing twice sends it once.
pub(crate) async fn enqueue(
    tx: &mut Tx<'_>,
    store: &SqlStore,
    m: OutboxMessage,
) -> StoreResult<()> {
    let keyring = store.keyring();
    let text = seal(keyring, BODY_TEXT, &m.id, &m.body_text)?;
    let html = m
        .body_html
        .as_deref()
        .map(|html| seal(keyring, BODY_HTML, &m.id, html).map(|h| h.sealed))
        .transpose()?;
    let query = sqlx::query(
        "INSERT INTO outbox (id, account, channel, recipient, subject, body_text, body_html, sealed_by, \
         created_at, dedupe_key, status, attempts, next_attempt_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 'pending', 0, $11) ON CONFLICT (dedupe_key) DO NOTHING",
    )
    .bind(m.id)
    .bind(m.account)
    .bind(m.channel.as_str().to_owned())
    .bind(m.recipient)
    .bind(m.subject)
    .bind(text.sealed)
    .bind(html)
    .bind(text.master_key_id)
    .bind(m.created_at.as_millis())
    .bind(m.dedupe_key)
    .bind(m.created_at.as_millis());
    execute(tx, "outbox message", query).await?;
    Ok(())
}

/// Seals up to `limit` values that are in plain text or under another master key than the
/// active one (anti-phishing codes first, then notice bodies); returns how many it sealed.
pub(crate) async fn reseal(store: &SqlStore, limit: u32) -> StoreResult<u64> {
    let accounts = reseal_codes(store, limit).await?;
    let left = u64::from(limit).saturating_sub(accounts);
    if left == 0 {
        return Ok(accounts);
    }
    let outbox = reseal_bodies(store, u32::try_from(left).unwrap_or(limit)).await?;
    Ok(accounts + outbox)
}

/// Rows whose seal is not the active master key's (or which are not sealed at all).
async fn stale_rows(
    store: &SqlStore,
    select: &'static str,
    limit: u32,
) -> StoreResult<Vec<AnyRow>> {
    let active = store.keyring().active_id().to_owned();
    sqlx::query(select)
        .bind(active)
        .bind(i64::from(limit))
        .fetch_all(store.pool())
        .await
        .map_err(|e| db_error("reseal", e))
}

async fn reseal_codes(store: &SqlStore, limit: u32) -> StoreResult<u64> {
    let rows = stale_rows(
        store,
        "SELECT id, anti_phishing_code, anti_phishing_sealed_by FROM accounts \
         WHERE anti_phishing_code IS NOT NULL \
         AND (anti_phishing_sealed_by IS NULL OR anti_phishing_sealed_by <> $1) ORDER BY id LIMIT $2",
        limit,
    )
    .await?;
    let keyring = store.keyring();
    let mut sealed = 0;
    for row in &rows {
        let id = codec::text_column(row, "id")?;
        let stored = codec::text_column(row, "anti_phishing_code")?;
        let sealed_by = codec::maybe_text_column(row, "anti_phishing_sealed_by")?;
        let plain = open(keyring, ANTI_PHISHING_CODE, &id, stored.clone(), sealed_by)?;
        let fresh = seal(keyring, ANTI_PHISHING_CODE, &id, &plain)?;
        // Compared with what was read: an account updated meanwhile keeps its new code.
        let update = sqlx::query(
            "UPDATE accounts SET anti_phishing_code = $1, anti_phishing_sealed_by = $2 \
             WHERE id = $3 AND anti_phishing_code = $4",
        )
        .bind(fresh.sealed)
        .bind(fresh.master_key_id)
        .bind(id)
        .bind(stored);
        sealed += update
            .execute(store.pool())
            .await
            .map_err(|e| db_error("reseal", e))?
            .rows_affected();
    }
    Ok(sealed)
}

async fn reseal_bodies(store: &SqlStore, limit: u32) -> StoreResult<u64> {
    let rows = stale_rows(
        store,
        "SELECT id, body_text, body_html, sealed_by FROM outbox \
         WHERE sealed_by IS NULL OR sealed_by <> $1 ORDER BY id LIMIT $2",
        limit,
    )
    .await?;
    let keyring = store.keyring();
    let mut sealed = 0;
    for row in &rows {
        let id = codec::text_column(row, "id")?;
        let sealed_by = codec::maybe_text_column(row, "sealed_by")?;
        let text = codec::text_column(row, "body_text")?;
        let text = open(keyring, BODY_TEXT, &id, text, sealed_by.clone())?;
        let html = codec::maybe_text_column(row, "body_html")?
            .map(|html| open(keyring, BODY_HTML, &id, html, sealed_by.clone()))
            .transpose()?;
        let text = seal(keyring, BODY_TEXT, &id, &text)?;
        let html = html
            .map(|html| seal(keyring, BODY_HTML, &id, &html).map(|h| h.sealed))
            .transpose()?;
        // Bodies never change once queued; the seal is compared so that two re-wraps racing
        // over one row do not both count it.
        let update = sqlx::query(
            "UPDATE outbox SET body_text = $1, body_html = $2, sealed_by = $3 \
             WHERE id = $4 AND COALESCE(sealed_by, '') = $5",
        )
        .bind(text.sealed)
        .bind(html)
        .bind(text.master_key_id)
        .bind(id)
        .bind(sealed_by.unwrap_or_default());
        sealed += update
            .execute(store.pool())
            .await
            .map_err(|e| db_error("reseal", e))?
            .rows_affected();
    }
    Ok(sealed)
}
