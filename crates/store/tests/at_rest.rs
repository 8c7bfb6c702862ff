//! Values sealed at rest, on both backends, read the way a thief of a database backup (without
//! the keyring) would read them: straight from the tables. The anti-phishing code and the
//! bodies of queued notices are ciphertext there, bound to their rows; rows written in plain
//! text before sealing existed still read and deliver, and a re-wrap seals them; a rotated
//! keyring still opens the old seals, and the re-wrap moves them to the new key.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use portcullis_app::keyring::MasterKeyring;
use portcullis_app::ports::{
    ChangeSet, Channel, ClaimRequest, OutboxFilter, OutboxMessage, Store, Write,
};
use portcullis_core::account::Account;
use portcullis_core::secret::Secret;
use portcullis_core::time::UnixMillis;
use sqlx::{AnyPool, Row as _};
use std::sync::Arc;

const CODE: &str = "Heron7731";
const CANCEL: &str = "https://ex.example/cancel/pcx_Zq8uYpC3vN1tR6wXe";

fn sqlite_url() -> (String, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("rest.db").display());
    (url, dir)
}

async fn postgres_url() -> (String, tempfile::TempDir) {
    let url = portcullis_store::testing::fresh_postgres_database("portcullis_rest")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    (url, tempfile::tempdir().unwrap())
}

/// A connection of the backup thief's own, straight to the database.
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

/// Every text column of the rows `query` selects, as stored.
async fn stored_text(pool: &AnyPool, query: &str) -> Vec<String> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(query.to_owned()))
        .fetch_all(pool)
        .await
        .unwrap();
    let mut texts = Vec::new();
    for row in &rows {
        for i in 0..row.len() {
            texts.push(
                row.try_get::<Option<String>, _>(i)
                    .unwrap()
                    .unwrap_or_default(),
            );
        }
    }
    texts
}

fn ring(active: &str, ids: &[&str]) -> Arc<MasterKeyring> {
    let keys = ids
        .iter()
        .map(|id| {
            (
                id.to_string(),
                Secret::new(vec![u8::try_from(id.len()).unwrap() + 3; 32]),
            )
        })
        .collect();
    Arc::new(MasterKeyring::new(active, keys).unwrap())
}

fn account(id: &str) -> Account {
    Account {
        id: id.into(),
        display_name: "Ada".into(),
        email: Some("ada@example.com".into()),
        phone: None,
        anti_phishing_code: Some(CODE.into()),
        created_at: UnixMillis(1),
        updated_at: UnixMillis(1),
        version: 1,
    }
}

fn message(id: &str, account: &str) -> OutboxMessage {
    OutboxMessage {
        id: id.into(),
        account: account.into(),
        channel: Channel::Email,
        recipient: "ada@example.com".into(),
        subject: "[Exemplar] A change".into(),
        body_text: format!("Your anti-phishing code: {CODE}\nCancel: {CANCEL}"),
        body_html: Some(format!("<p>{CODE}</p><a href=\"{CANCEL}\">Cancel</a>")),
        created_at: UnixMillis(10),
        dedupe_key: format!("{account}:{id}:email"),
    }
}

async fn commit(store: &dyn Store, writes: Vec<Write>) {
    let set = ChangeSet {
        writes,
        audit: vec![],
        events: vec![],
    };
    store.commit(set).await.unwrap();
}

fn claim(now: i64) -> ClaimRequest {
    ClaimRequest {
        now: UnixMillis(now),
        lease_token: format!("lease_{now}"),
        until: UnixMillis(now + 1_000),
        limit: 10,
        max_attempts: 3,
    }
}

/// Nothing a backup holds names the code or the cancel link.
async fn backup_reveals_neither(pool: &AnyPool) {
    let texts = [
        stored_text(pool, "SELECT anti_phishing_code FROM accounts").await,
        stored_text(pool, "SELECT body_text, body_html, subject FROM outbox").await,
    ]
    .concat();
    assert!(texts.iter().any(|t| !t.is_empty()), "the rows are there");
    for text in texts {
        assert!(!text.contains(CODE), "plain anti-phishing code: {text}");
        assert!(!text.contains("pcx_Zq8u"), "plain cancel token: {text}");
    }
}

async fn codes_and_bodies_are_sealed_and_bound_to_their_rows(url: String) {
    let store = portcullis_store::open(&url, ring("mk-a", &["mk-a"]))
        .await
        .unwrap();
    commit(
        store.as_ref(),
        vec![
            Write::InsertAccount(account("acc_1")),
            Write::EnqueueNotification(message("ntf_1", "acc_1")),
            Write::EnqueueNotification(message("ntf_2", "acc_1")),
        ],
    )
    .await;
    let pool = raw(&url).await;
    backup_reveals_neither(&pool).await;
    assert_eq!(
        stored_text(&pool, "SELECT anti_phishing_sealed_by FROM accounts").await,
        ["mk-a"]
    );

    // Use cases see plain values, as before.
    let read = store.account("acc_1").await.unwrap().unwrap();
    assert_eq!(read.anti_phishing_code.as_deref(), Some(CODE));
    let claimed = store.claim_due(&claim(20)).await.unwrap();
    assert_eq!(claimed.len(), 2);
    assert_eq!(claimed[0].message, message("ntf_1", "acc_1"));

    // An update seals the new code; a ciphertext copied onto another row does not open.
    let changed = Account {
        anti_phishing_code: Some("Otter2024".into()),
        ..read
    };
    commit(
        store.as_ref(),
        vec![Write::UpdateAccount {
            account: changed,
            expected_version: 1,
        }],
    )
    .await;
    let stored = stored_text(&pool, "SELECT anti_phishing_code FROM accounts").await;
    assert!(!stored[0].contains("Otter2024"));
    let account = store.account("acc_1").await.unwrap().unwrap();
    assert_eq!(account.anti_phishing_code.as_deref(), Some("Otter2024"));
    sql(
        &pool,
        "UPDATE outbox SET body_text = (SELECT body_text FROM outbox WHERE id = 'ntf_1') \
         WHERE id = 'ntf_2'",
    )
    .await;
    let listed = store.list_outbox(&OutboxFilter::default(), 10).await;
    assert!(listed.is_err(), "a moved body must not open: {listed:?}");
}

async fn plain_rows_from_before_sealing_still_read_and_a_rewrap_seals_them(url: String) {
    let store = portcullis_store::open(&url, ring("mk-a", &["mk-a"]))
        .await
        .unwrap();
    // Rows as written before migration 0012: plain text, no seal named.
    let pool = raw(&url).await;
    sql(
        &pool,
        &format!(
            "INSERT INTO accounts (id, display_name, email, anti_phishing_code, created_at, \
             updated_at, version) VALUES ('acc_old', 'Ada', 'ada@example.com', '{CODE}', 1, 1, 1)"
        ),
    )
    .await;
    let old = message("ntf_old", "acc_old");
    sql(
        &pool,
        &format!(
            "INSERT INTO outbox (id, account, channel, recipient, subject, body_text, body_html, \
             created_at, dedupe_key, status, attempts, next_attempt_at) VALUES ('ntf_old', \
             'acc_old', 'email', 'ada@example.com', '{}', '{}', '{}', 10, '{}', 'pending', 0, 10)",
            old.subject,
            old.body_text,
            old.body_html.clone().unwrap(),
            old.dedupe_key
        ),
    )
    .await;
    let read = store.account("acc_old").await.unwrap().unwrap();
    assert_eq!(read.anti_phishing_code.as_deref(), Some(CODE));
    let listed = store
        .list_outbox(&OutboxFilter::default(), 10)
        .await
        .unwrap();
    assert_eq!(
        listed[0].message, old,
        "a plain body reads as it was written"
    );

    assert_eq!(store.reseal_at_rest(100).await.unwrap(), 2);
    assert_eq!(store.reseal_at_rest(100).await.unwrap(), 0, "nothing left");
    backup_reveals_neither(&pool).await;
    let claimed = store.claim_due(&claim(20)).await.unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].message, old, "and still delivers once sealed");
    let read = store.account("acc_old").await.unwrap().unwrap();
    assert_eq!(read.anti_phishing_code.as_deref(), Some(CODE));
}

async fn a_rotated_keyring_opens_old_seals_and_a_rewrap_moves_them(url: String) {
    let store = portcullis_store::open(&url, ring("mk-a", &["mk-a"]))
        .await
        .unwrap();
    commit(
        store.as_ref(),
        vec![
            Write::InsertAccount(account("acc_1")),
            Write::EnqueueNotification(message("ntf_1", "acc_1")),
        ],
    )
    .await;
    drop(store);
    let rotated = portcullis_store::open(&url, ring("mk-bb", &["mk-a", "mk-bb"]))
        .await
        .unwrap();
    let listed = rotated.list_outbox(&OutboxFilter::default(), 10).await;
    assert_eq!(listed.unwrap()[0].message, message("ntf_1", "acc_1"));
    assert_eq!(rotated.reseal_at_rest(1).await.unwrap(), 1, "in pages");
    assert_eq!(rotated.reseal_at_rest(100).await.unwrap(), 1);
    assert_eq!(rotated.reseal_at_rest(100).await.unwrap(), 0);
    drop(rotated);

    let pool = raw(&url).await;
    let seals = [
        stored_text(&pool, "SELECT anti_phishing_sealed_by FROM accounts").await,
        stored_text(&pool, "SELECT sealed_by FROM outbox").await,
    ]
    .concat();
    assert_eq!(seals, ["mk-bb", "mk-bb"]);
    let only_new = portcullis_store::open(&url, ring("mk-bb", &["mk-bb"]))
        .await
        .unwrap();
    let read = only_new.account("acc_1").await.unwrap().unwrap();
    assert_eq!(read.anti_phishing_code.as_deref(), Some(CODE));
    let claimed = only_new.claim_due(&claim(20)).await.unwrap();
    assert_eq!(claimed[0].message, message("ntf_1", "acc_1"));
    // Without the key that sealed them, the values do not open at all.
    let lost = portcullis_store::open(&url, ring("mk-a", &["mk-a"]))
        .await
        .unwrap();
    assert!(lost.account("acc_1").await.is_err());
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
    codes_and_bodies_are_sealed_and_bound_to_their_rows,
    plain_rows_from_before_sealing_still_read_and_a_rewrap_seals_them,
    a_rotated_keyring_opens_old_seals_and_a_rewrap_moves_them,
);
