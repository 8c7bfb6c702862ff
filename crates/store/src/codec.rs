//! Column encodings shared by both backends: how domain values become TEXT and BIGINT columns
//! and come back. A row that does not decode is a backend error naming the row, never a panic.

use crate::at_rest;
use portcullis_app::keyring::MasterKeyring;
use portcullis_app::ports::{
    Channel, Operator, OutboxEntry, OutboxMessage, OutboxStatus, SealedSecret, StoreError,
    StoreResult,
};
use portcullis_core::account::Account;
use portcullis_core::allowlist::IpAllowList;
use portcullis_core::audit::AuditEntry;
use portcullis_core::guard::fund_window::FundWindow;
use portcullis_core::key::{ApiKey, KeyAlgorithm};
use portcullis_core::operator::Role;
use portcullis_core::scope::ScopeSet;
use portcullis_core::signing::Ed25519PublicKey;
use portcullis_core::time::UnixMillis;
use sqlx::Row as _;
use sqlx::any::AnyRow;

fn bad(what: &str, detail: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(format!("stored {what} does not decode: {detail}"))
}

pub(crate) fn get<'r, T>(row: &'r AnyRow, column: &str) -> StoreResult<T>
where
    T: sqlx::Decode<'r, sqlx::Any> + sqlx::Type<sqlx::Any>,
{
    row.try_get(column).map_err(|e| bad(column, e))
}

pub(crate) fn millis(row: &AnyRow, column: &str) -> StoreResult<UnixMillis> {
    get::<i64>(row, column).map(UnixMillis)
}

pub(crate) fn maybe_millis(row: &AnyRow, column: &str) -> StoreResult<Option<UnixMillis>> {
    get::<Option<i64>>(row, column).map(|v| v.map(UnixMillis))
}

pub fn encode_scopes(scopes: ScopeSet) -> String {
    scopes.to_string()
}

/// A fund window as its JSON column (`NULL` when there is none).
pub fn encode_fund_window(window: Option<&FundWindow>) -> StoreResult<Option<String>> {
    window
        .map(serde_json::to_string)
        .transpose()
        .map_err(|e| StoreError::Backend(format!("fund window does not encode: {e}")))
}

fn fund_window(row: &AnyRow) -> StoreResult<Option<FundWindow>> {
    let text: Option<String> = get(row, "fund_window")?;
    text.map(|text| serde_json::from_str(&text))
        .transpose()
        .map_err(|e| bad("fund_window", e))
}

pub fn encode_allowlist(list: &IpAllowList) -> String {
    // Infallible: an allow-list can never be stored as `[]` (unrestricted) by an encoding failure.
    serde_json::Value::from(list.entries()).to_string()
}

pub fn operator(row: &AnyRow) -> StoreResult<Operator> {
    let role: String = get(row, "role")?;
    Ok(Operator {
        id: get(row, "id")?,
        name: get(row, "name")?,
        role: role.parse::<Role>().map_err(|e| bad("role", e))?,
        token_hash: get(row, "token_hash")?,
        created_at: millis(row, "created_at")?,
        revoked_at: maybe_millis(row, "revoked_at")?,
    })
}

/// An account, its anti-phishing code opened (see `at_rest`).
pub fn account(row: &AnyRow, keyring: &MasterKeyring) -> StoreResult<Account> {
    let id: String = get(row, "id")?;
    let code: Option<String> = get(row, "anti_phishing_code")?;
    let sealed_by: Option<String> = get(row, "anti_phishing_sealed_by")?;
    let anti_phishing_code = code
        .map(|code| at_rest::open(keyring, at_rest::ANTI_PHISHING_CODE, &id, code, sealed_by))
        .transpose()?;
    Ok(Account {
        id,
        display_name: get(row, "display_name")?,
        email: get(row, "email")?,
        phone: get(row, "phone")?,
        anti_phishing_code,
        created_at: millis(row, "created_at")?,
        updated_at: millis(row, "updated_at")?,
        version: get(row, "version")?,
    })
}

pub fn key(row: &AnyRow) -> StoreResult<ApiKey> {
    let key_id: String = get(row, "key_id")?;
    let algorithm: String = get(row, "algorithm")?;
    let scopes: String = get(row, "scopes")?;
    let allowlist: String = get(row, "ip_allowlist")?;
    let public_key: Option<String> = get(row, "public_key")?;
    let last_ip: Option<String> = get(row, "last_used_ip")?;
    let entries: Vec<String> =
        serde_json::from_str(&allowlist).map_err(|e| bad("ip_allowlist", e))?;
    Ok(ApiKey {
        api_key: get(row, "api_key")?,
        account: get(row, "account")?,
        label: get(row, "label")?,
        algorithm: KeyAlgorithm::parse(&algorithm).ok_or_else(|| bad("algorithm", &algorithm))?,
        public_key: public_key
            .map(|text| Ed25519PublicKey::parse(&text))
            .transpose()
            .map_err(|e| bad("public_key", e))?,
        scopes: ScopeSet::parse(scopes.split(',').filter(|s| !s.is_empty()))
            .map_err(|e| bad("scopes", e))?,
        ip_allowlist: IpAllowList::parse(&entries).map_err(|e| bad("ip_allowlist", e))?,
        created_at: millis(row, "created_at")?,
        updated_at: millis(row, "updated_at")?,
        expires_at: maybe_millis(row, "expires_at")?,
        last_used_at: maybe_millis(row, "last_used_at")?,
        last_used_ip: last_ip
            .map(|ip| ip.parse())
            .transpose()
            .map_err(|e| bad("last_used_ip", e))?,
        revoked_at: maybe_millis(row, "revoked_at")?,
        idle_warned_at: maybe_millis(row, "idle_warned_at")?,
        fund_window: fund_window(row)?,
        version: get(row, "version")?,
        key_id,
    })
}

pub fn secret(row: &AnyRow) -> StoreResult<SealedSecret> {
    Ok(SealedSecret {
        key_id: get(row, "key_id")?,
        generation: get(row, "generation")?,
        master_key_id: get(row, "master_key_id")?,
        nonce: get(row, "nonce")?,
        ciphertext: get(row, "ciphertext")?,
        created_at: millis(row, "created_at")?,
        valid_until: maybe_millis(row, "valid_until")?,
    })
}

pub fn audit_entry(row: &AnyRow) -> StoreResult<AuditEntry> {
    Ok(AuditEntry {
        seq: get(row, "seq")?,
        at: millis(row, "at")?,
        actor: get(row, "actor")?,
        action: get(row, "action")?,
        target: get(row, "target")?,
        details: get(row, "details")?,
        prev_hash: get(row, "prev_hash")?,
        hash: get(row, "hash")?,
        mac_key_id: get(row, "mac_key_id")?,
    })
}

pub fn i64_column(row: &AnyRow, column: &str) -> StoreResult<i64> {
    get(row, column)
}

pub fn text_column(row: &AnyRow, column: &str) -> StoreResult<String> {
    get(row, column)
}

pub fn maybe_text_column(row: &AnyRow, column: &str) -> StoreResult<Option<String>> {
    get(row, column)
}

/// An outbox entry, its bodies opened (see `at_rest`).
pub fn outbox_entry(row: &AnyRow, keyring: &MasterKeyring) -> StoreResult<OutboxEntry> {
    let channel: String = get(row, "channel")?;
    let status: String = get(row, "status")?;
    let id: String = get(row, "id")?;
    let sealed_by: Option<String> = get(row, "sealed_by")?;
    let body_text = at_rest::open(
        keyring,
        at_rest::BODY_TEXT,
        &id,
        get(row, "body_text")?,
        sealed_by.clone(),
    )?;
    let body_html = get::<Option<String>>(row, "body_html")?
        .map(|html| at_rest::open(keyring, at_rest::BODY_HTML, &id, html, sealed_by))
        .transpose()?;
    Ok(OutboxEntry {
        message: OutboxMessage {
            id,
            account: get(row, "account")?,
            channel: Channel::parse(&channel).ok_or_else(|| bad("channel", &channel))?,
            recipient: get(row, "recipient")?,
            subject: get(row, "subject")?,
            body_text,
            body_html,
            created_at: millis(row, "created_at")?,
            dedupe_key: get(row, "dedupe_key")?,
        },
        status: OutboxStatus::parse(&status).ok_or_else(|| bad("status", &status))?,
        attempts: get(row, "attempts")?,
        next_attempt_at: millis(row, "next_attempt_at")?,
        lease_until: maybe_millis(row, "lease_until")?,
        last_error: get(row, "last_error")?,
        delivered_at: maybe_millis(row, "delivered_at")?,
    })
}

pub fn bytes_column(row: &AnyRow, column: &str) -> StoreResult<Vec<u8>> {
    get(row, column)
}
