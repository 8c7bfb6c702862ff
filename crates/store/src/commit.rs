//! The one write path: a [`ChangeSet`] applied in a single transaction.
//!
//! The transaction takes the write lock as it begins: on SQLite it is an immediate transaction
//! (so a deferred one never has to upgrade its lock and deadlock), on PostgreSQL it first locks
//! the audit head row. Either way commits run one after another, which keeps the audit chain
//! linear and makes `change_seq` grow in commit order.

use crate::at_rest::{enqueue, insert_account, update_account};
use crate::codec::{encode_allowlist, encode_fund_window, encode_scopes};
use crate::event_rows::{insert_decisions, insert_event, log_events_once};
use crate::{Backend, SqlStore, db_error};
use portcullis_app::ports::{ChangeSet, StoreError, StoreResult, Write};
use portcullis_core::audit::{AuditDraft, AuditKeys};
use portcullis_core::key::ApiKey;
use portcullis_core::time::UnixMillis;
use sqlx::{Any, Connection as _, Row as _, Transaction};

pub(crate) type Tx<'c> = Transaction<'c, Any>;

/// `Write::SaveCheckpoint` (also run by the log's `COPY` path, `log_copy`): a checkpoint never
/// replaces a later one.
pub(crate) const SAVE_CHECKPOINT: &str = "INSERT INTO engine_checkpoints (name, seq, state) \
     VALUES ($1, $2, $3) \
     ON CONFLICT (name) DO UPDATE SET seq = excluded.seq, state = excluded.state \
     WHERE engine_checkpoints.seq <= excluded.seq";

/// What every write transaction on PostgreSQL starts with (`begin_in_turn`).
pub(crate) const LOCK_AUDIT_HEAD: &str = "UPDATE audit_head SET seq = seq WHERE id = 1";

const NEXT_CHANGE_SEQ: &str = "(SELECT COALESCE(MAX(change_seq), 0) + 1 FROM api_keys)";

/// A payload this large (the engine's checkpoint: tens of megabytes on a busy deployment) is
/// written on a connection that is closed after its transaction instead of going back to the
/// pool. sqlx's PostgreSQL connection grows its write buffer to the largest message it sent
/// and never shrinks it, so in the pool every connection that once carried a checkpoint kept
/// a checkpoint's worth of memory (docs/benchmarks.md, the PostgreSQL soak's heap profile).
const LARGE_PAYLOAD_BYTES: usize = 1 << 20;

/// Whether `writes` carry a payload past [`LARGE_PAYLOAD_BYTES`].
pub(crate) fn carries_large_payload(writes: &[Write]) -> bool {
    writes.iter().any(|write| match write {
        Write::SaveCheckpoint(checkpoint) => checkpoint.state.len() >= LARGE_PAYLOAD_BYTES,
        _ => false,
    })
}

/// A connection of the writer pool for one write transaction; with `close_after`, on
/// PostgreSQL, it is closed when dropped rather than returned to the pool (see
/// [`LARGE_PAYLOAD_BYTES`]; SQLite's writer is left alone: an in-memory database lives only
/// as long as its connections).
pub(crate) async fn writer_connection(
    store: &SqlStore,
    close_after: bool,
) -> StoreResult<WriterConnection> {
    let mut connection = (store.writer_pool().acquire().await).map_err(|e| db_error("begin", e))?;
    if close_after && store.backend() == Backend::Postgres {
        connection.close_on_drop();
    }
    Ok(connection)
}

type WriterConnection = sqlx::pool::PoolConnection<Any>;

/// A write transaction in its turn on `connection`: the caller holds this process's commit
/// turn (as long as the transaction), and on PostgreSQL the audit head row is touched first, so
/// that writes commit one after another, across processes too (see the module header). Every
/// write path opens its transaction here.
pub(crate) async fn begin_in_turn<'c>(
    store: &SqlStore,
    connection: &'c mut WriterConnection,
) -> StoreResult<Tx<'c>> {
    let begin = |e| db_error("begin", e);
    match store.backend() {
        // An immediate transaction takes the write lock as it begins, without writing a page.
        Backend::Sqlite => (connection.begin_with("BEGIN IMMEDIATE").await).map_err(begin),
        Backend::Postgres => {
            let mut tx = connection.begin().await.map_err(begin)?;
            sqlx::query(LOCK_AUDIT_HEAD)
                .execute(&mut *tx)
                .await
                .map_err(|e| db_error("lock", e))?;
            Ok(tx)
        }
    }
}

pub async fn commit(store: &SqlStore, change: ChangeSet) -> StoreResult<()> {
    if let Some(pool) = store.copy_pool()
        && change.audit.is_empty()
        && change.events.is_empty()
        && crate::log_copy::takes(&change.writes)
    {
        return crate::log_copy::commit(store, pool, change.writes).await;
    }
    let _turn = store.commit_turn().await;
    let mut connection = writer_connection(store, carries_large_payload(&change.writes)).await?;
    let mut tx = begin_in_turn(store, &mut connection).await?;
    if store.backend() == Backend::Postgres && crate::key_push::touches_keys(&change.writes) {
        crate::key_push::notify(&mut tx).await?;
    }
    apply_all(&mut tx, store, change.writes).await?;
    append_audit(&mut tx, store.audit_keys(), change.audit).await?;
    for event in change.events {
        insert_event(&mut tx, event).await?;
    }
    tx.commit().await.map_err(|e| db_error("commit", e))?;
    store.committed();
    Ok(())
}

/// Records an idle warning unless the key's warning is no longer `previous` (another
/// process's sweep warned first: a conflict, so the whole commit, the warning's event with
/// it, is refused).
async fn mark_idle_warned(
    tx: &mut Tx<'_>,
    key_id: String,
    at: UnixMillis,
    previous: Option<UnixMillis>,
) -> StoreResult<()> {
    // -1: never warned (times are after the epoch).
    let query = sqlx::query(
        "UPDATE api_keys SET idle_warned_at = $1 \
         WHERE key_id = $2 AND COALESCE(idle_warned_at, -1) = $3",
    )
    .bind(at.as_millis())
    .bind(key_id.clone())
    .bind(previous.map_or(-1, UnixMillis::as_millis));
    if execute(tx, "mark idle warned", query).await? > 0 {
        return Ok(());
    }
    let exists =
        sqlx::query("SELECT 1 AS one FROM api_keys WHERE key_id = $1").bind(key_id.clone());
    match exists.fetch_optional(&mut **tx).await {
        Ok(Some(_)) => Err(StoreError::Conflict(format!(
            "api key {key_id} was warned of idle expiry by another process"
        ))),
        Ok(None) => Err(StoreError::NotFound(format!("api_keys {key_id}"))),
        Err(error) => Err(db_error("api_keys", error)),
    }
}

/// The writes of `variant` that follow `first` in `writes`, with it.
macro_rules! run_of {
    ($writes:ident, $first:ident, $variant:path) => {{
        let mut run = vec![$first];
        while let Some($variant(next)) = $writes.next_if(|w| matches!(w, $variant(_))) {
            run.push(next);
        }
        run
    }};
}

/// Applies `writes` in order; a run of decisions, or of events logged once, is stored
/// together, in a few statements instead of one each.
async fn apply_all(tx: &mut Tx<'_>, store: &SqlStore, writes: Vec<Write>) -> StoreResult<()> {
    let backend = store.backend();
    let mut writes = writes.into_iter().peekable();
    while let Some(write) = writes.next() {
        match write {
            Write::InsertDecision(first) => {
                let decisions = run_of!(writes, first, Write::InsertDecision);
                insert_decisions(tx, backend, decisions).await?;
            }
            Write::LogEventOnce(first) => {
                let events = run_of!(writes, first, Write::LogEventOnce);
                log_events_once(tx, backend, events).await?;
            }
            write => apply(tx, store, write).await?,
        }
    }
    Ok(())
}

pub(crate) async fn execute(
    tx: &mut Tx<'_>,
    what: &str,
    query: sqlx::query::Query<'_, Any, sqlx::any::AnyArguments>,
) -> StoreResult<u64> {
    query
        .execute(&mut **tx)
        .await
        .map(|r| r.rows_affected())
        .map_err(|e| db_error(what, e))
}

/// Revokes an operator's token, unless it is the last live admin token: the check is part of
/// the update itself, and commits run one after another (see the module header), so two admins
/// revoking each other at the same moment cannot both succeed.
async fn revoke_operator(tx: &mut Tx<'_>, id: &str, at: UnixMillis) -> StoreResult<()> {
    let query = sqlx::query(
        "UPDATE operators SET revoked_at = $1 WHERE id = $2 \
         AND (role <> 'admin' OR revoked_at IS NOT NULL OR EXISTS (SELECT 1 FROM operators o \
         WHERE o.role = 'admin' AND o.revoked_at IS NULL AND o.id <> $3))",
    )
    .bind(at.as_millis())
    .bind(id.to_owned())
    .bind(id.to_owned());
    if execute(tx, "operator", query).await? > 0 {
        return Ok(());
    }
    let exists = sqlx::query("SELECT 1 FROM operators WHERE id = $1")
        .bind(id.to_owned())
        .fetch_optional(&mut **tx)
        .await
        .map_err(|e| db_error("operator", e))?;
    match exists {
        Some(_) => Err(StoreError::Conflict(
            "this is the last admin token: create another admin before revoking it".into(),
        )),
        None => Err(StoreError::NotFound(format!("operator {id}"))),
    }
}

/// After an update touched no row: was the row missing, or had it changed?
pub(crate) async fn missing_or_changed(
    tx: &mut Tx<'_>,
    table: &str,
    column: &str,
    id: &str,
) -> StoreError {
    let sql = format!("SELECT 1 FROM {table} WHERE {column} = $1");
    match sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(id.to_owned())
        .fetch_optional(&mut **tx)
        .await
    {
        Ok(Some(_)) => StoreError::Conflict(format!("{table} {id} was changed by someone else")),
        Ok(None) => StoreError::NotFound(format!("{table} {id}")),
        Err(e) => db_error(table, e),
    }
}

async fn apply(tx: &mut Tx<'_>, store: &SqlStore, write: Write) -> StoreResult<()> {
    let backend = store.backend();
    match write {
        Write::InsertOperator(op) => {
            let query = sqlx::query("INSERT INTO operators (id, name, role, token_hash, created_at, revoked_at) VALUES ($1, $2, $3, $4, $5, $6)")
                .bind(op.id).bind(op.name).bind(op.role.as_str().to_owned()).bind(op.token_hash)
                .bind(op.created_at.as_millis()).bind(op.revoked_at.map(UnixMillis::as_millis));
            execute(tx, "operator", query).await?;
        }
        Write::RevokeOperator { id, at } => revoke_operator(tx, &id, at).await?,
        Write::InsertAccount(account) => insert_account(tx, store, account).await?,
        Write::UpdateAccount {
            account,
            expected_version,
        } => update_account(tx, store, account, expected_version).await?,
        Write::InsertKey(key) => insert_key(tx, key).await?,
        Write::UpdateKey {
            key,
            expected_version,
        } => update_key(tx, key, expected_version).await?,
        Write::MarkIdleWarned {
            key_id,
            at,
            previous,
        } => mark_idle_warned(tx, key_id, at, previous).await?,
        Write::InsertSecret(s) => {
            let query = sqlx::query("INSERT INTO key_secrets (key_id, generation, master_key_id, nonce, ciphertext, created_at, valid_until) VALUES ($1, $2, $3, $4, $5, $6, $7)")
                .bind(s.key_id).bind(s.generation).bind(s.master_key_id).bind(s.nonce).bind(s.ciphertext)
                .bind(s.created_at.as_millis()).bind(s.valid_until.map(UnixMillis::as_millis));
            execute(tx, "key secret", query).await?;
        }
        Write::SetSecretValidUntil {
            key_id,
            generation,
            valid_until,
        } => {
            let query = sqlx::query(
                "UPDATE key_secrets SET valid_until = $1 WHERE key_id = $2 AND generation = $3",
            )
            .bind(valid_until.as_millis())
            .bind(key_id.clone())
            .bind(generation);
            if execute(tx, "key secret", query).await? == 0 {
                return Err(StoreError::NotFound(format!(
                    "secret {key_id}/{generation}"
                )));
            }
        }
        Write::PutGuard {
            guard,
            expected_version,
        } => crate::guard::put_guard(tx, guard, expected_version).await?,
        Write::InsertPending(change) => crate::guard::insert_pending(tx, change).await?,
        Write::UpdatePending {
            change,
            expected_version,
        } => crate::guard::update_pending(tx, change, expected_version).await?,
        Write::InsertGrant(grant) => crate::guard::insert_grant(tx, grant).await?,
        Write::SpendGrant { token_hash, at } => {
            crate::guard::spend_grant(tx, token_hash, at).await?
        }
        Write::PutAddress(address) => crate::guard::put_address(tx, address).await?,
        Write::RemoveAddress {
            account,
            network,
            address,
        } => crate::guard::remove_address(tx, account, network, address).await?,
        Write::InsertPasskey(passkey) => crate::passkeys::insert_passkey(tx, passkey).await?,
        Write::UpdatePasskey {
            credential_id,
            passkey,
            last_used_at,
        } => crate::passkeys::update_passkey(tx, credential_id, passkey, last_used_at).await?,
        Write::RemovePasskey {
            account,
            credential_id,
        } => crate::passkeys::remove_passkey(tx, account, credential_id).await?,
        Write::InsertCeremony(ceremony) => crate::passkeys::insert_ceremony(tx, ceremony).await?,
        Write::SpendCeremony { id, at } => crate::passkeys::spend_ceremony(tx, id, at).await?,
        Write::InsertSignInLink(link) => crate::sessions::insert_link(tx, link).await?,
        Write::SpendSignInLink { token_hash, at } => {
            crate::sessions::spend_link(tx, token_hash, at).await?
        }
        Write::InsertFreezeLink(link) => crate::sessions::insert_freeze_link(tx, link).await?,
        Write::SpendFreezeLink { token_hash, at } => {
            crate::sessions::spend_freeze_link(tx, token_hash, at).await?
        }
        Write::InsertSession(session) => crate::sessions::insert_session(tx, session).await?,
        Write::RevokeSession { token_hash, at } => {
            crate::sessions::revoke_session(tx, token_hash, at).await?
        }
        Write::InsertDecision(d) => insert_decisions(tx, backend, vec![d]).await?,
        Write::EnqueueNotification(message) => enqueue(tx, store, message).await?,
        Write::PutAlert(alert) => crate::alerts::put(tx, alert).await?,
        Write::ConfirmAlert { id, by, at } => crate::alerts::confirm(tx, id, by, at).await?,
        Write::PutOverride(o) => crate::alerts::put_override(tx, o).await?,
        Write::LiftOverride { id, by, at } => crate::alerts::lift_override(tx, id, by, at).await?,
        Write::SaveCheckpoint(c) => {
            let query = sqlx::query(SAVE_CHECKPOINT)
                .bind(c.name)
                .bind(c.seq)
                .bind(c.state);
            execute(tx, "engine checkpoint", query).await?;
        }
        Write::HoldsLease {
            partition,
            owner,
            epoch,
            generation,
        } => crate::leases::check_held(tx, partition, (owner, epoch), generation).await?,
        Write::Relayout {
            generation,
            partitions,
        } => crate::leases::relayout(tx, generation, partitions).await?,
        Write::LogEventOnce(event) => log_events_once(tx, backend, vec![event]).await?,
        Write::RecordIgnored(ignored) => {
            let query = sqlx::query(
                "INSERT INTO ignored_events (event_id, reason, event_ts) VALUES ($1, $2, $3) \
                 ON CONFLICT (event_id) DO NOTHING",
            )
            .bind(ignored.event_id)
            .bind(ignored.reason)
            .bind(ignored.event_ts.as_millis());
            execute(tx, "ignored event", query).await?;
        }
        Write::PutDigest(subscription) => crate::digest::put(tx, subscription).await?,
        Write::AdvanceDigest {
            account,
            sent_for,
            next_at,
        } => crate::digest::advance(tx, account, sent_for, next_at).await?,
        Write::RemoveDigest { account } => crate::digest::remove(tx, account).await?,
        Write::Console(write) => crate::console::write(tx, write).await?,
        Write::Policy(write) => crate::policies::write(tx, write).await?,
        Write::InsertOfficialContact(contact) => {
            crate::contacts::insert_official(tx, contact).await?
        }
        Write::RemoveOfficialContact { id } => crate::contacts::remove_official(tx, id).await?,
        Write::ApplyContactReports {
            from_seq,
            to_seq,
            tallies,
        } => crate::contacts::apply_reports(tx, from_seq, to_seq, tallies).await?,
        Write::ResealSecret {
            secret: s,
            expected_master_key_id,
        } => {
            let what = format!("secret {}/{}", s.key_id, s.generation);
            let query = sqlx::query("UPDATE key_secrets SET master_key_id = $1, nonce = $2, ciphertext = $3 WHERE key_id = $4 AND generation = $5 AND master_key_id = $6")
                .bind(s.master_key_id).bind(s.nonce).bind(s.ciphertext).bind(s.key_id).bind(s.generation).bind(expected_master_key_id);
            if execute(tx, "key secret", query).await? == 0 {
                return Err(StoreError::Conflict(format!(
                    "{what} is no longer sealed by the expected master key"
                )));
            }
        }
    }
    Ok(())
}

async fn insert_key(tx: &mut Tx<'_>, key: ApiKey) -> StoreResult<()> {
    let sql = format!(
        "INSERT INTO api_keys (key_id, api_key, account, label, algorithm, public_key, scopes, ip_allowlist, created_at, updated_at, expires_at, last_used_at, last_used_ip, revoked_at, idle_warned_at, version, fund_window, change_seq) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, {NEXT_CHANGE_SEQ})"
    );
    let query = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(key.key_id)
        .bind(key.api_key)
        .bind(key.account)
        .bind(key.label)
        .bind(key.algorithm.as_str().to_owned())
        .bind(key.public_key.map(|k| k.to_hex()))
        .bind(encode_scopes(key.scopes))
        .bind(encode_allowlist(&key.ip_allowlist))
        .bind(key.created_at.as_millis())
        .bind(key.updated_at.as_millis())
        .bind(key.expires_at.map(UnixMillis::as_millis))
        .bind(key.last_used_at.map(UnixMillis::as_millis))
        .bind(key.last_used_ip.map(|ip| ip.to_string()))
        .bind(key.revoked_at.map(UnixMillis::as_millis))
        .bind(key.idle_warned_at.map(UnixMillis::as_millis))
        .bind(key.version)
        .bind(encode_fund_window(key.fund_window.as_ref())?);
    execute(tx, "api key", query).await.map(|_| ())
}

/// Replaces the configuration columns; usage columns (`last_used_*`, `idle_warned_at`) are
/// telemetry and are left alone.
async fn update_key(tx: &mut Tx<'_>, key: ApiKey, expected_version: i64) -> StoreResult<()> {
    // The identity columns are part of the condition, so a write that would change them
    // touches no row (and is then told apart from a stale version below).
    let sql = format!(
        "UPDATE api_keys SET label = $1, public_key = $2, scopes = $3, ip_allowlist = $4, updated_at = $5, expires_at = $6, revoked_at = $7, version = $8, fund_window = $9, change_seq = {NEXT_CHANGE_SEQ} \
         WHERE key_id = $10 AND version = $11 AND api_key = $12 AND account = $13 AND algorithm = $14"
    );
    let key_id = key.key_id.clone();
    let identity = KeyIdentity {
        api_key: key.api_key.clone(),
        account: key.account.clone(),
        algorithm: key.algorithm.as_str().to_owned(),
    };
    let query = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(key.label)
        .bind(key.public_key.map(|k| k.to_hex()))
        .bind(encode_scopes(key.scopes))
        .bind(encode_allowlist(&key.ip_allowlist))
        .bind(key.updated_at.as_millis())
        .bind(key.expires_at.map(UnixMillis::as_millis))
        .bind(key.revoked_at.map(UnixMillis::as_millis))
        .bind(expected_version + 1)
        .bind(encode_fund_window(key.fund_window.as_ref())?)
        .bind(key.key_id)
        .bind(expected_version)
        .bind(identity.api_key.clone())
        .bind(identity.account.clone())
        .bind(identity.algorithm.clone());
    if execute(tx, "api key", query).await? == 0 {
        return Err(why_key_unchanged(tx, &key_id, &identity).await);
    }
    Ok(())
}

/// What a stored key is and stays: its public identifier, owner and signature scheme.
#[derive(Debug)]
struct KeyIdentity {
    api_key: String,
    account: String,
    algorithm: String,
}

/// After a key update touched no row: was the key missing, was it asked to change its
/// identity, or had it changed since it was read?
async fn why_key_unchanged(tx: &mut Tx<'_>, key_id: &str, wanted: &KeyIdentity) -> StoreError {
    let row = sqlx::query("SELECT api_key, account, algorithm FROM api_keys WHERE key_id = $1")
        .bind(key_id.to_owned())
        .fetch_optional(&mut **tx)
        .await;
    let row = match row {
        Ok(Some(row)) => row,
        Ok(None) => return StoreError::NotFound(format!("api_keys {key_id}")),
        Err(e) => return db_error("api key", e),
    };
    let mut changed = Vec::new();
    for (column, value) in [
        ("api_key", &wanted.api_key),
        ("account", &wanted.account),
        ("algorithm", &wanted.algorithm),
    ] {
        match row.try_get::<String, _>(column) {
            Ok(stored) if stored == *value => {}
            Ok(_) => changed.push(column),
            Err(e) => return db_error("api key", e),
        }
    }
    if changed.is_empty() {
        StoreError::Conflict(format!("api_keys {key_id} was changed by someone else"))
    } else {
        StoreError::Immutable(format!(
            "key {key_id}: {} cannot be changed (issue a new key instead)",
            changed.join(", ")
        ))
    }
}

/// Appends the drafts after the head, each sealed with the active audit key.
async fn append_audit(
    tx: &mut Tx<'_>,
    keys: &AuditKeys,
    drafts: Vec<AuditDraft>,
) -> StoreResult<()> {
    if drafts.is_empty() {
        return Ok(());
    }
    let head = sqlx::query("SELECT seq, hash FROM audit_head WHERE id = 1")
        .fetch_one(&mut **tx)
        .await
        .map_err(|e| db_error("audit head", e))?;
    let mut seq = crate::codec::i64_column(&head, "seq")?;
    let mut hash = crate::codec::text_column(&head, "hash")?;
    for draft in drafts {
        seq += 1;
        let entry = draft.seal(seq, &hash, keys);
        let query = sqlx::query("INSERT INTO audit_log (seq, at, actor, action, target, details, prev_hash, hash, mac_key_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)")
            .bind(entry.seq).bind(entry.at.as_millis()).bind(entry.actor).bind(entry.action)
            .bind(entry.target).bind(entry.details).bind(entry.prev_hash).bind(entry.hash.clone())
            .bind(entry.mac_key_id);
        execute(tx, "audit entry", query).await?;
        hash = entry.hash;
    }
    let query = sqlx::query("UPDATE audit_head SET seq = $1, hash = $2 WHERE id = 1")
        .bind(seq)
        .bind(hash);
    execute(tx, "audit head", query).await.map(|_| ())
}
