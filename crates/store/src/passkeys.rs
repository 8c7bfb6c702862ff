//! Passkeys and WebAuthn ceremonies: writes inside the commit transaction, row decoding for the
//! reads in `guard`.

use crate::codec::{get, maybe_millis, millis};
use crate::commit::{Tx, execute};
use portcullis_app::ports::{Ceremony, CeremonyKind, StoreError, StoreResult, StoredPasskey};
use portcullis_core::time::UnixMillis;
use sqlx::any::AnyRow;

pub(crate) async fn insert_passkey(tx: &mut Tx<'_>, p: StoredPasskey) -> StoreResult<()> {
    let query = sqlx::query("INSERT INTO passkeys (credential_id, account, label, passkey, created_at, last_used_at) VALUES ($1, $2, $3, $4, $5, $6)")
        .bind(p.credential_id).bind(p.account).bind(p.label).bind(p.passkey)
        .bind(p.created_at.as_millis()).bind(p.last_used_at.map(UnixMillis::as_millis));
    execute(tx, "passkey", query).await.map(|_| ())
}

pub(crate) async fn update_passkey(
    tx: &mut Tx<'_>,
    credential_id: String,
    passkey: String,
    at: UnixMillis,
) -> StoreResult<()> {
    let query =
        sqlx::query("UPDATE passkeys SET passkey = $1, last_used_at = $2 WHERE credential_id = $3")
            .bind(passkey)
            .bind(at.as_millis())
            .bind(credential_id.clone());
    if execute(tx, "passkey", query).await? == 0 {
        return Err(StoreError::NotFound(format!("passkey {credential_id}")));
    }
    Ok(())
}

pub(crate) async fn remove_passkey(
    tx: &mut Tx<'_>,
    account: String,
    credential_id: String,
) -> StoreResult<()> {
    let query = sqlx::query("DELETE FROM passkeys WHERE account = $1 AND credential_id = $2")
        .bind(account)
        .bind(credential_id.clone());
    if execute(tx, "passkey", query).await? == 0 {
        return Err(StoreError::NotFound(format!("passkey {credential_id}")));
    }
    Ok(())
}

pub(crate) async fn insert_ceremony(tx: &mut Tx<'_>, c: Ceremony) -> StoreResult<()> {
    let query = sqlx::query("INSERT INTO webauthn_ceremonies (id, account, kind, state, expires_at, used_at) VALUES ($1, $2, $3, $4, $5, $6)")
        .bind(c.id).bind(c.account).bind(c.kind.as_str().to_owned()).bind(c.state)
        .bind(c.expires_at.as_millis()).bind(c.used_at.map(UnixMillis::as_millis));
    execute(tx, "ceremony", query).await.map(|_| ())
}

/// Marks a ceremony answered only if it was not, so one challenge never passes twice.
pub(crate) async fn spend_ceremony(tx: &mut Tx<'_>, id: String, at: UnixMillis) -> StoreResult<()> {
    let query = sqlx::query(
        "UPDATE webauthn_ceremonies SET used_at = $1 WHERE id = $2 AND used_at IS NULL",
    )
    .bind(at.as_millis())
    .bind(id);
    if execute(tx, "ceremony", query).await? == 0 {
        return Err(StoreError::Conflict(
            "the WebAuthn challenge was already answered".into(),
        ));
    }
    Ok(())
}

pub(crate) fn passkey(row: &AnyRow) -> StoreResult<StoredPasskey> {
    Ok(StoredPasskey {
        credential_id: get(row, "credential_id")?,
        account: get(row, "account")?,
        label: get(row, "label")?,
        passkey: get(row, "passkey")?,
        created_at: millis(row, "created_at")?,
        last_used_at: maybe_millis(row, "last_used_at")?,
    })
}

pub(crate) fn ceremony(row: &AnyRow) -> StoreResult<Ceremony> {
    let kind: String = get(row, "kind")?;
    Ok(Ceremony {
        id: get(row, "id")?,
        account: get(row, "account")?,
        kind: CeremonyKind::parse(&kind)
            .ok_or_else(|| StoreError::Backend(format!("unknown ceremony kind `{kind}`")))?,
        state: get(row, "state")?,
        expires_at: millis(row, "expires_at")?,
        used_at: maybe_millis(row, "used_at")?,
    })
}
