//! What both storage conformance suites share: a fresh store on each backend, the check that
//! the audit chain is whole, and the macro that runs every story against both backends.

use portcullis_app::ports::Store;
use portcullis_core::audit::ChainVerifier;
use std::sync::Arc;

/// A fresh embedded SQLite store (the directory holds its file).
pub async fn sqlite() -> (Arc<dyn Store>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("store.db").display()
    );
    (
        portcullis_store::open(&url, portcullis_store::testing::keyring())
            .await
            .unwrap(),
        dir,
    )
}

/// A store on a fresh database of the real PostgreSQL server.
pub async fn postgres() -> (Arc<dyn Store>, tempfile::TempDir) {
    let url = portcullis_store::testing::fresh_postgres_database("portcullis_conf")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    (
        portcullis_store::open(&url, portcullis_store::testing::keyring())
            .await
            .unwrap(),
        tempfile::tempdir().unwrap(),
    )
}

/// Checks every audit entry (sealed with the test audit keys) against its predecessor and the
/// head; returns the last sequence.
pub async fn chain_is_intact(store: &dyn Store) -> i64 {
    let keys = portcullis_store::testing::audit_keys();
    let mut verifier = ChainVerifier::new(&keys, store.audit_head().await.unwrap());
    for entry in store.audit_entries(0, 10_000).await.unwrap() {
        verifier.check(&entry).unwrap();
    }
    verifier.finish().unwrap().entries
}

/// Runs each named story (an `async fn(Arc<dyn Store>)` of the suite) as a test on SQLite and
/// as one on PostgreSQL, with the attributes written before its name.
macro_rules! conformance {
    ($($(#[$meta:meta])* $story:ident),* $(,)?) => {
        mod sqlite_backend {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            $(#[$meta])*
            async fn $story() {
                let (store, _dir) = super::sqlite().await;
                assert_eq!(store.backend_name(), "sqlite");
                super::$story(store).await;
            })*
        }
        mod postgres_backend {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            $(#[$meta])*
            async fn $story() {
                let (store, _dir) = super::postgres().await;
                assert_eq!(store.backend_name(), "postgres");
                super::$story(store).await;
            })*
        }
    };
}
