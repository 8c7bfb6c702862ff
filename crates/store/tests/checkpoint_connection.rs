//! The engine's checkpoint (tens of megabytes on a busy deployment) does not stay behind in the
//! PostgreSQL writer pool: sqlx grows a connection's write buffer to the largest message it
//! sent and never shrinks it, so the connection that wrote a large checkpoint is closed after
//! its transaction (`LARGE_PAYLOAD_BYTES` in `crates/store/src/commit.rs`), while ordinary
//! commits keep theirs.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use portcullis_app::ports::{ChangeSet, EngineCheckpoint, Write};
use sqlx::Connection as _;
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

fn checkpoint(seq: i64, state: Vec<u8>) -> ChangeSet {
    ChangeSet {
        writes: vec![Write::SaveCheckpoint(EngineCheckpoint {
            name: "risk".into(),
            seq,
            state,
        })],
        audit: vec![],
        events: vec![],
    }
}

/// The server processes of this database's other connections (the store's pools).
async fn store_connections(watcher: &mut sqlx::PgConnection) -> BTreeSet<i32> {
    sqlx::query_scalar::<_, i32>(
        "SELECT pid FROM pg_stat_activity WHERE datname = current_database() \
         AND pid <> pg_backend_pid()",
    )
    .fetch_all(watcher)
    .await
    .unwrap()
    .into_iter()
    .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_connection_that_wrote_a_large_checkpoint_leaves_the_pool() {
    let url = portcullis_store::testing::fresh_postgres_database("portcullis_ckpt")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let store = portcullis_store::open(&url, portcullis_store::testing::keyring())
        .await
        .unwrap();
    let mut watcher = sqlx::PgConnection::connect(&url).await.unwrap();

    store.commit(checkpoint(1, vec![1; 1_000])).await.unwrap();
    let before = store_connections(&mut watcher).await;
    store.commit(checkpoint(2, vec![2; 1_000])).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let after_small = store_connections(&mut watcher).await;
    assert!(
        before.is_subset(&after_small),
        "a small commit closed a connection: {before:?} then {after_small:?}"
    );

    let large: Vec<u8> = (0..3_000_000u32).map(|n| (n % 251) as u8).collect();
    store.commit(checkpoint(3, large.clone())).await.unwrap();
    // The closing runs in the background once the connection is dropped.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let now = store_connections(&mut watcher).await;
        if !after_small.is_subset(&now) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the connection that wrote the large checkpoint is still open: {now:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // The pool opens another in its place, and the checkpoint is whole.
    store.commit(checkpoint(4, vec![4; 10])).await.unwrap();
    let saved = store.checkpoint("risk").await.unwrap().unwrap();
    assert_eq!((saved.seq, saved.state), (4, vec![4; 10]));
    store.commit(checkpoint(5, large.clone())).await.unwrap();
    assert_eq!(
        store.checkpoint("risk").await.unwrap().unwrap().state,
        large
    );
}
