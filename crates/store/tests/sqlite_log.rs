//! The event log's appends on an SQLite file run on a connection of their own, synchronously:
//! a write lock held by another process is waited for without holding up the runtime, and the
//! append lands once the lock is released.

#![allow(clippy::unwrap_used)] // Tests fail by panicking.

use portcullis_app::ports::NewEvent;
use portcullis_core::time::UnixMillis;
use std::time::Duration;

fn event(id: &str) -> NewEvent {
    NewEvent {
        id: id.into(),
        ts: UnixMillis(6_000),
        account: Some("acc_1".into()),
        event_type: "login".into(),
        body: format!(r#"{{"id":"{id}"}}"#),
    }
}

// One thread: if the append waited for the lock on it, nothing else would run meanwhile.
#[tokio::test(flavor = "current_thread")]
async fn an_append_waits_for_another_process_lock_without_blocking_the_runtime() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.db");
    let store = portcullis_store::open(
        &format!("sqlite://{}?mode=rwc", path.display()),
        portcullis_store::testing::keyring(),
    )
    .await
    .unwrap();
    // What the CLI writing to the same file looks like from here: another connection holding
    // SQLite's write lock.
    let holder = rusqlite::Connection::open(&path).unwrap();
    holder.execute_batch("BEGIN IMMEDIATE").unwrap();

    let appending = {
        let store = std::sync::Arc::clone(&store);
        tokio::spawn(async move { store.append_new_events(vec![event("e1")]).await })
    };
    let started = tokio::time::Instant::now();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "the runtime kept running while the append waited"
    );
    assert!(!appending.is_finished(), "the append waits for the lock");
    assert!(store.events_after(0, 10).await.unwrap().is_empty());

    holder.execute_batch("COMMIT").unwrap();
    let appended = appending.await.unwrap().unwrap();
    assert_eq!(appended, [true]);
    let logged = store.events_after(0, 10).await.unwrap();
    assert_eq!(logged.len(), 1);
    assert_eq!(logged[0].event, event("e1"));
}
