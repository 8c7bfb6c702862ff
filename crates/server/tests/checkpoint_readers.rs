//! Reads of the engine go on while a checkpoint is being serialised, on both backends: the
//! graph view over HTTP, `knows_entity` and the counters answer while the serialisation is held
//! in progress (`Risk::while_serialising`), also with an ingest waiting to apply meanwhile; and
//! the checkpoint still covers exactly the state it saw, the ingest's event is decided after it,
//! and the next checkpoint covers that.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::guard::feed;
use common::{Backend, TestServer};
use serde_json::json;
use std::sync::mpsc;
use std::time::Duration;

/// Only so that a build where a read waits for the checkpoint fails instead of hanging: the
/// assertions are about what completed while the checkpoint was held, not about durations.
const HANG_GUARD: Duration = Duration::from_secs(60);

/// Lets the held serialisation go (also when the test fails first, so the runtime can stop).
struct Resume {
    risk: portcullis_app::risk::Risk,
    go: mpsc::Sender<()>,
}

impl Drop for Resume {
    fn drop(&mut self) {
        self.risk.while_serialising(None);
        let _ = self.go.send(());
    }
}

/// Holds the next checkpoint's serialisation until the `Resume` is dropped; the receiver
/// hears when the serialisation is under way.
fn hold_serialisation(
    risk: &portcullis_app::risk::Risk,
) -> (Resume, tokio::sync::oneshot::Receiver<()>) {
    let (started, serialising) = tokio::sync::oneshot::channel();
    let started = std::sync::Mutex::new(Some(started));
    let (go, wait) = mpsc::channel::<()>();
    let wait = std::sync::Mutex::new(wait);
    risk.while_serialising(Some(Box::new(move || {
        if let Some(started) = started.lock().unwrap().take() {
            let _ = started.send(());
        }
        let _ = wait.lock().unwrap().recv();
    })));
    let resume = Resume {
        risk: risk.clone(),
        go,
    };
    (resume, serialising)
}

async fn reads_go_on_while_a_checkpoint_is_serialised(backend: Backend) {
    let server = TestServer::start(backend).await;
    let now = server.now().to_rfc3339();
    feed(&server, &[
        json!({ "id": "a-in", "ts": now, "type": "login", "account": "acc-a", "method": "password", "success": true, "ctx": { "ip": "198.51.100.20", "device_id": "dev-a" } }),
        json!({ "id": "b-in", "ts": now, "type": "login", "account": "acc-b", "method": "password", "success": true, "ctx": { "ip": "198.51.100.20", "device_id": "dev-b" } }),
    ]).await;
    let risk = server.app.risk.clone();
    let logged_before = server.app.store.events_after(0, 1_000).await.unwrap();
    let seq_before = logged_before.last().unwrap().seq;

    let (resume, serialising) = hold_serialisation(&risk);
    let checkpoint = tokio::spawn({
        let risk = risk.clone();
        async move { risk.checkpoint().await }
    });
    tokio::time::timeout(HANG_GUARD, serialising)
        .await
        .expect("the checkpoint never started serialising")
        .unwrap();

    // Readers answer while the serialisation is held.
    let analyst = server.operator("analyst").await;
    let graph = tokio::time::timeout(HANG_GUARD, analyst.get("/v1/graph/ip/198.51.100.20?hops=2"))
        .await
        .expect("the graph query waited for the checkpoint");
    assert_eq!(graph.status, 200, "{}", graph.text);
    let nodes = graph.body["nodes"].to_string();
    assert!(
        nodes.contains("\"acc-a\"") && nodes.contains("\"acc-b\""),
        "{nodes}"
    );
    let known = tokio::time::timeout(
        HANG_GUARD,
        risk.knows_entity(portcullis_engine::EntityKind::Device, "dev-a"),
    )
    .await
    .expect("knows_entity waited for the checkpoint");
    assert!(known.expect("one engine answers its own view"));
    assert!(!checkpoint.is_finished(), "the checkpoint is still held");

    // An ingest arrives: it waits for the checkpoint (it changes the engine), and readers
    // that come after it still do not.
    let ingest = tokio::spawn({
        let client = server.admin();
        let line = json!({ "id": "a-out", "ts": now, "type": "withdrawal.requested", "account": "acc-a", "withdrawal_id": "wa", "asset": "USDT", "network": "TRX", "address": "TQreaders", "amount": "10", "amount_usd": 10.0, "ctx": { "ip": "198.51.100.20" } });
        async move {
            client
                .post_raw(
                    "/v1/events",
                    format!("{line}\n").into_bytes(),
                    "application/x-ndjson",
                )
                .await
        }
    });
    // Logged: the ingest is on its way to the engine (or waiting for it already).
    while server
        .app
        .store
        .events_after(seq_before, 10)
        .await
        .unwrap()
        .is_empty()
    {
        tokio::task::yield_now().await;
    }
    for _ in 0..100 {
        tokio::task::yield_now().await;
    }
    let graph = tokio::time::timeout(HANG_GUARD, analyst.get("/v1/graph/account/acc-b?hops=2"))
        .await
        .expect("a graph query behind a waiting ingest waited for the checkpoint");
    assert_eq!(graph.status, 200, "{}", graph.text);
    let stats = tokio::time::timeout(HANG_GUARD, risk.stats())
        .await
        .expect("the counters waited for the checkpoint");
    assert_eq!(stats.events, 2, "the waiting ingest applied nothing yet");
    assert!(!checkpoint.is_finished() && !ingest.is_finished());

    // Let go: the checkpoint covers what it saw, the ingest is decided after it.
    drop(resume);
    assert!(
        checkpoint.await.unwrap().unwrap(),
        "a checkpoint was written"
    );
    let reply = ingest.await.unwrap();
    assert_eq!(reply.status, 200, "{}", reply.text);
    let stored = server.app.store.checkpoint("risk").await.unwrap().unwrap();
    assert_eq!(
        stored.seq, seq_before,
        "the checkpoint is the state it serialised"
    );
    let decision = server.admin().get("/v1/decisions/a-out").await;
    assert_eq!(decision.status, 200, "{}", decision.text);
    // The event applied after it is the next checkpoint's.
    assert!(risk.checkpoint().await.unwrap());
    let stored = server.app.store.checkpoint("risk").await.unwrap().unwrap();
    assert_eq!(stored.seq, seq_before + 1);
    assert!(!risk.checkpoint().await.unwrap(), "nothing applied since");
}

on_both_backends!(reads_go_on_while_a_checkpoint_is_serialised);
