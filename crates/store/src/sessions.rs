//! Security-center sign-in links and customer sessions: writes inside the commit transaction,
//! row decoding for the reads in `guard`.

use crate::codec::{get, maybe_millis, millis};
use crate::commit::{Tx, execute};
use portcullis_app::ports::{CustomerSession, FreezeLink, SignInLink, StoreError, StoreResult};
use portcullis_core::events::EventContext;
use portcullis_core::time::UnixMillis;
use sqlx::any::AnyRow;

pub(crate) async fn insert_link(tx: &mut Tx<'_>, l: SignInLink) -> StoreResult<()> {
    let ctx = context_json(&l.ctx)?;
    let query = sqlx::query("INSERT INTO sign_in_links (token_hash, account, created_at, expires_at, used_at, ctx) VALUES ($1, $2, $3, $4, $5, $6)")
        .bind(l.token_hash).bind(l.account).bind(l.created_at.as_millis())
        .bind(l.expires_at.as_millis()).bind(l.used_at.map(UnixMillis::as_millis)).bind(ctx);
    execute(tx, "sign-in link", query).await.map(|_| ())
}

/// Uses a link only if unused, so one link never opens two sessions.
pub(crate) async fn spend_link(
    tx: &mut Tx<'_>,
    token_hash: String,
    at: UnixMillis,
) -> StoreResult<()> {
    let query = sqlx::query(
        "UPDATE sign_in_links SET used_at = $1 WHERE token_hash = $2 AND used_at IS NULL",
    )
    .bind(at.as_millis())
    .bind(token_hash);
    if execute(tx, "sign-in link", query).await? == 0 {
        return Err(StoreError::Conflict(
            "the sign-in link was already used".into(),
        ));
    }
    Ok(())
}

pub(crate) async fn insert_freeze_link(tx: &mut Tx<'_>, l: FreezeLink) -> StoreResult<()> {
    let query = sqlx::query("INSERT INTO freeze_links (token_hash, account, created_at, expires_at, used_at) VALUES ($1, $2, $3, $4, $5)")
        .bind(l.token_hash).bind(l.account).bind(l.created_at.as_millis())
        .bind(l.expires_at.as_millis()).bind(l.used_at.map(UnixMillis::as_millis));
    execute(tx, "freeze link", query).await.map(|_| ())
}

/// Uses a freeze link only if unused, so two clicks racing freeze (and audit) once.
pub(crate) async fn spend_freeze_link(
    tx: &mut Tx<'_>,
    token_hash: String,
    at: UnixMillis,
) -> StoreResult<()> {
    let query = sqlx::query(
        "UPDATE freeze_links SET used_at = $1 WHERE token_hash = $2 AND used_at IS NULL",
    )
    .bind(at.as_millis())
    .bind(token_hash);
    if execute(tx, "freeze link", query).await? == 0 {
        return Err(StoreError::Conflict(
            "the freeze link was already used".into(),
        ));
    }
    Ok(())
}

pub(crate) fn freeze_link(row: &AnyRow) -> StoreResult<FreezeLink> {
    Ok(FreezeLink {
        token_hash: get(row, "token_hash")?,
        account: get(row, "account")?,
        created_at: millis(row, "created_at")?,
        expires_at: millis(row, "expires_at")?,
        used_at: maybe_millis(row, "used_at")?,
    })
}

pub(crate) async fn insert_session(tx: &mut Tx<'_>, s: CustomerSession) -> StoreResult<()> {
    let ctx = context_json(&s.ctx)?;
    let query = sqlx::query("INSERT INTO customer_sessions (token_hash, account, created_at, expires_at, revoked_at, ctx) VALUES ($1, $2, $3, $4, $5, $6)")
        .bind(s.token_hash).bind(s.account).bind(s.created_at.as_millis())
        .bind(s.expires_at.as_millis()).bind(s.revoked_at.map(UnixMillis::as_millis)).bind(ctx);
    execute(tx, "session", query).await.map(|_| ())
}

pub(crate) async fn revoke_session(
    tx: &mut Tx<'_>,
    token_hash: String,
    at: UnixMillis,
) -> StoreResult<()> {
    let query = sqlx::query(
        "UPDATE customer_sessions SET revoked_at = $1 WHERE token_hash = $2 AND revoked_at IS NULL",
    )
    .bind(at.as_millis())
    .bind(token_hash);
    execute(tx, "session", query).await.map(|_| ())
}

pub(crate) fn link(row: &AnyRow) -> StoreResult<SignInLink> {
    Ok(SignInLink {
        token_hash: get(row, "token_hash")?,
        account: get(row, "account")?,
        created_at: millis(row, "created_at")?,
        expires_at: millis(row, "expires_at")?,
        used_at: maybe_millis(row, "used_at")?,
        ctx: context(row)?,
    })
}

pub(crate) fn session(row: &AnyRow) -> StoreResult<CustomerSession> {
    Ok(CustomerSession {
        token_hash: get(row, "token_hash")?,
        account: get(row, "account")?,
        created_at: millis(row, "created_at")?,
        expires_at: millis(row, "expires_at")?,
        revoked_at: maybe_millis(row, "revoked_at")?,
        ctx: context(row)?,
    })
}

fn context_json(ctx: &EventContext) -> StoreResult<String> {
    serde_json::to_string(ctx).map_err(|e| StoreError::Backend(format!("session context: {e}")))
}

fn context(row: &AnyRow) -> StoreResult<EventContext> {
    let text: String = get(row, "ctx")?;
    serde_json::from_str(&text).map_err(|e| StoreError::Backend(format!("session context: {e}")))
}
