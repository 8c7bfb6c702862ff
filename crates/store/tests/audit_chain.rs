//! The keyed audit chain on both backends, attacked the way someone who can write the database
//! but lacks the keyring would: a row edited, a row deleted, the newest rows cut off with the
//! head moved back, the chain recomputed without the key, a head file altered. And a chain
//! written before the chain was keyed keeps verifying after the migration.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use portcullis_app::Actor;
use portcullis_app::audit::{Audit, ChainReport};
use portcullis_app::clock::ManualClock;
use portcullis_app::error::AppError;
use portcullis_app::keyring::MasterKeyring;
use portcullis_app::ports::{ChangeSet, Store};
use portcullis_core::audit::{
    AuditDraft, AuditEntry, AuditKeys, ChainBreak, ChainSummary, GENESIS_HASH, SignedHead,
};
use portcullis_core::secret::Secret;
use portcullis_core::time::UnixMillis;
use portcullis_store::testing::audit_keys;
use sqlx::AnyPool;
use std::sync::Arc;

fn sqlite_url() -> (String, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("audit.db").display()
    );
    (url, dir)
}

async fn postgres_url() -> (String, tempfile::TempDir) {
    let url = portcullis_store::testing::fresh_postgres_database("portcullis_audit")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    (url, tempfile::tempdir().unwrap())
}

/// A connection of the attacker's own, straight to the database.
async fn raw(url: &str) -> AnyPool {
    sqlx::any::install_default_drivers();
    AnyPool::connect(url).await.unwrap()
}

async fn sql(pool: &AnyPool, statement: &str) {
    sqlx::query(sqlx::AssertSqlSafe(statement.to_owned()))
        .execute(pool)
        .await
        .unwrap();
}

fn audit(store: &Arc<dyn Store>) -> Audit {
    let clock = Arc::new(ManualClock::new(UnixMillis(90_000)));
    Audit::new(store.clone(), audit_keys(), clock)
}

async fn report(store: &Arc<dyn Store>, since: Option<&SignedHead>) -> ChainReport {
    audit(store)
        .verify(&Actor::local_cli(), since)
        .await
        .unwrap()
}

fn draft(n: i64) -> AuditDraft {
    AuditDraft {
        at: UnixMillis(n * 1_000),
        actor: "operator:op_1".into(),
        action: "api_key.updated".into(),
        target: format!("key:k_{n}"),
        details: format!(r#"{{"n":{n}}}"#),
    }
}

/// Opens the store (running every migration) and commits entries `from..=to`.
async fn store_with(url: &str, from: i64, to: i64) -> Arc<dyn Store> {
    let store = portcullis_store::open(url, portcullis_store::testing::keyring())
        .await
        .unwrap();
    for n in from..=to {
        let change = ChangeSet {
            writes: vec![],
            audit: vec![draft(n)],
            events: vec![],
        };
        store.commit(change).await.unwrap();
    }
    store
}

fn intact(entries: i64, legacy: i64) -> ChainReport {
    ChainReport::Intact(ChainSummary { entries, legacy })
}

async fn a_row_edited_is_found(url: String) {
    let store = store_with(&url, 1, 5).await;
    assert_eq!(report(&store, None).await, intact(5, 0));
    sql(
        &raw(&url).await,
        "UPDATE audit_log SET actor = 'operator:mallory' WHERE seq = 3",
    )
    .await;
    assert_eq!(
        report(&store, None).await,
        ChainReport::Broken(ChainBreak::Edited { seq: 3 })
    );
}

async fn a_row_deleted_is_found(url: String) {
    let store = store_with(&url, 1, 5).await;
    sql(&raw(&url).await, "DELETE FROM audit_log WHERE seq = 2").await;
    assert_eq!(
        report(&store, None).await,
        ChainReport::Broken(ChainBreak::Removed {
            first_missing_seq: 2
        })
    );
}

async fn newest_rows_cut_off_with_the_head_moved_back_fail_against_an_exported_head(url: String) {
    let store = store_with(&url, 1, 5).await;
    let exported = audit(&store)
        .export_head(&Actor::local_cli())
        .await
        .unwrap();
    assert_eq!(exported.seq, 5);
    // A chain that grew since the head was exported extends it.
    let store = store_with(&url, 6, 7).await;
    assert_eq!(report(&store, Some(&exported)).await, intact(7, 0));
    let pool = raw(&url).await;
    sql(&pool, "DELETE FROM audit_log WHERE seq > 3").await;
    sql(
        &pool,
        "UPDATE audit_head SET seq = 3, hash = (SELECT hash FROM audit_log WHERE seq = 3) WHERE id = 1",
    )
    .await;
    assert_eq!(
        report(&store, None).await,
        intact(3, 0),
        "the database alone cannot tell"
    );
    assert_eq!(
        report(&store, Some(&exported)).await,
        ChainReport::Broken(ChainBreak::TruncatedBelowHead {
            last_seq: 3,
            head_seq: 5
        })
    );
    // New entries written over the cut-off positions do not hide it.
    let store = store_with(&url, 8, 10).await;
    assert_eq!(
        report(&store, Some(&exported)).await,
        ChainReport::Broken(ChainBreak::RewrittenSinceHead { seq: 5 })
    );
}

/// Rewrites every entry (entry 2 changed) with `reseal`, links them up again and moves the
/// head, as an attacker with write access to the database would.
async fn rewrite(
    url: &str,
    store: &Arc<dyn Store>,
    reseal: impl Fn(AuditDraft, i64, &str) -> AuditEntry,
) {
    let pool = raw(url).await;
    let mut prev = GENESIS_HASH.to_owned();
    for old in store.audit_entries(0, 100).await.unwrap() {
        let mut draft = AuditDraft {
            at: old.at,
            actor: old.actor,
            action: old.action,
            target: old.target,
            details: old.details,
        };
        if old.seq == 2 {
            draft.details = r#"{"scopes":["withdraw"]}"#.into();
        }
        let entry = reseal(draft, old.seq, &prev);
        let key = entry
            .mac_key_id
            .as_ref()
            .map_or("NULL".to_owned(), |id| format!("'{id}'"));
        sql(
            &pool,
            &format!(
                "UPDATE audit_log SET details = '{}', prev_hash = '{}', hash = '{}', mac_key_id = {key} WHERE seq = {}",
                entry.details, entry.prev_hash, entry.hash, entry.seq
            ),
        )
        .await;
        prev = entry.hash;
    }
    sql(
        &pool,
        &format!("UPDATE audit_head SET hash = '{prev}' WHERE id = 1"),
    )
    .await;
}

async fn a_chain_recomputed_without_the_key_is_found(url: String) {
    let store = store_with(&url, 1, 4).await;
    let exported = audit(&store)
        .export_head(&Actor::local_cli())
        .await
        .unwrap();
    // Plain SHA-256 links, as the chain was before it was keyed.
    rewrite(&url, &store, |draft, seq, prev| {
        draft.seal_legacy(seq, prev)
    })
    .await;
    assert_eq!(
        report(&store, None).await,
        ChainReport::Broken(ChainBreak::Unkeyed {
            seq: 1,
            legacy_until: 0
        })
    );
    // MACs under a key derived from other material, claiming the real key's id.
    let wrong = AuditKeys::derive("mk-test", &[("mk-test", &[8; 32])]).unwrap();
    rewrite(&url, &store, |draft, seq, prev| {
        draft.seal(seq, prev, &wrong)
    })
    .await;
    assert_eq!(
        report(&store, None).await,
        ChainReport::Broken(ChainBreak::Edited { seq: 1 })
    );
    // Someone holding the keyring can re-seal the chain; only an exported head reveals it.
    let right = audit_keys();
    rewrite(&url, &store, |draft, seq, prev| {
        draft.seal(seq, prev, &right)
    })
    .await;
    assert_eq!(report(&store, None).await, intact(4, 0));
    assert_eq!(
        report(&store, Some(&exported)).await,
        ChainReport::Broken(ChainBreak::RewrittenSinceHead { seq: 4 })
    );
}

async fn a_tampered_head_file_is_refused(url: String) {
    let store = store_with(&url, 1, 3).await;
    let exported = audit(&store)
        .export_head(&Actor::local_cli())
        .await
        .unwrap();
    assert_eq!(report(&store, Some(&exported)).await, intact(3, 0));
    let mut moved = exported.clone();
    moved.seq = 2;
    let refused = audit(&store)
        .verify(&Actor::local_cli(), Some(&moved))
        .await
        .unwrap_err();
    assert!(
        matches!(&refused, AppError::Invalid { code: portcullis_app::ErrorCode::BadAuditHead, message } if message.contains("signature")),
        "{refused:?}"
    );
}

/// Builds a database as the code before keyed entries did (migrations up to 0010, entries
/// sealed with plain SHA-256), then opens it with the current store.
async fn a_legacy_chain_keeps_verifying_after_the_migration(url: String) {
    let pool = raw(&url).await;
    let before_keyed = 10;
    if url.starts_with("sqlite:") {
        sqlx::migrate!("./migrations/sqlite")
            .run_to(before_keyed, &pool)
            .await
            .unwrap();
    } else {
        sqlx::migrate!("./migrations/postgres")
            .run_to(before_keyed, &pool)
            .await
            .unwrap();
    }
    let mut prev = GENESIS_HASH.to_owned();
    for seq in 1..=3 {
        let e = draft(seq).seal_legacy(seq, &prev);
        sql(
            &pool,
            &format!(
                "INSERT INTO audit_log (seq, at, actor, action, target, details, prev_hash, hash) \
                 VALUES ({seq}, {}, '{}', '{}', '{}', '{}', '{}', '{}')",
                e.at.as_millis(),
                e.actor,
                e.action,
                e.target,
                e.details,
                e.prev_hash,
                e.hash
            ),
        )
        .await;
        prev = e.hash;
    }
    sql(
        &pool,
        &format!("UPDATE audit_head SET seq = 3, hash = '{prev}' WHERE id = 1"),
    )
    .await;
    pool.close().await;

    let store = store_with(&url, 4, 6).await;
    assert_eq!(report(&store, None).await, intact(6, 3));
    let entries = store.audit_entries(0, 10).await.unwrap();
    assert_eq!(entries[2].mac_key_id, None);
    assert_eq!(
        entries[3].mac_key_id.as_deref(),
        Some("mk-test:audit-mac-v1")
    );
    assert_eq!(
        entries[3].prev_hash, entries[2].hash,
        "the first keyed entry links to the last legacy one"
    );
    // Legacy entries are still checked, and no unkeyed entry may follow them.
    let raw = raw(&url).await;
    sql(&raw, "UPDATE audit_log SET mac_key_id = NULL WHERE seq = 5").await;
    assert_eq!(
        report(&store, None).await,
        ChainReport::Broken(ChainBreak::Unkeyed {
            seq: 5,
            legacy_until: 3
        })
    );
    sql(
        &raw,
        "UPDATE audit_log SET target = 'key:k_x' WHERE seq = 2",
    )
    .await;
    assert_eq!(
        report(&store, None).await,
        ChainReport::Broken(ChainBreak::Edited { seq: 2 })
    );
}

/// A new active master key seals new entries under its own audit key; the older entries verify
/// as long as their master key stays in the keyring, and are named when it is gone.
async fn a_rotated_keyring_keeps_the_chain_verifiable(url: String) {
    store_with(&url, 1, 2).await;
    let old: &[u8] = &[7; 32];
    let new: &[u8] = &[9; 32];
    let ring = MasterKeyring::new(
        "mk-new",
        vec![
            ("mk-test".into(), Secret::new(old.to_vec())),
            ("mk-new".into(), Secret::new(new.to_vec())),
        ],
    )
    .unwrap();
    let rotated = ring.audit_keys();
    let store = portcullis_store::open(&url, Arc::new(ring)).await.unwrap();
    let change = ChangeSet {
        writes: vec![],
        audit: vec![draft(3)],
        events: vec![],
    };
    store.commit(change).await.unwrap();
    let entries = store.audit_entries(0, 10).await.unwrap();
    assert_eq!(
        entries[1].mac_key_id.as_deref(),
        Some("mk-test:audit-mac-v1")
    );
    assert_eq!(
        entries[2].mac_key_id.as_deref(),
        Some("mk-new:audit-mac-v1")
    );
    let clock = Arc::new(ManualClock::new(UnixMillis(90_000)));
    let verify = |keys: Arc<AuditKeys>| {
        let audit = Audit::new(store.clone(), keys, clock.clone());
        async move { audit.verify(&Actor::local_cli(), None).await.unwrap() }
    };
    assert_eq!(verify(rotated).await, intact(3, 0));
    let without_old = Arc::new(AuditKeys::derive("mk-new", &[("mk-new", new)]).unwrap());
    assert_eq!(
        verify(without_old).await,
        ChainReport::Broken(ChainBreak::UnknownKey {
            seq: 1,
            key_id: "mk-test:audit-mac-v1".into()
        })
    );
}

macro_rules! on_both_backends {
    ($($story:ident),* $(,)?) => {
        mod sqlite_backend {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $story() {
                let (url, _dir) = super::sqlite_url();
                super::$story(url).await;
            })*
        }
        mod postgres_backend {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $story() {
                let (url, _dir) = super::postgres_url().await;
                super::$story(url).await;
            })*
        }
    };
}

on_both_backends!(
    a_row_edited_is_found,
    a_row_deleted_is_found,
    newest_rows_cut_off_with_the_head_moved_back_fail_against_an_exported_head,
    a_chain_recomputed_without_the_key_is_found,
    a_tampered_head_file_is_refused,
    a_legacy_chain_keeps_verifying_after_the_migration,
    a_rotated_keyring_keeps_the_chain_verifiable,
);
