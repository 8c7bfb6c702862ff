//! The JetStream feed against the real NATS server on 127.0.0.1:4222 (the test command starts
//! one when missing): events published to the stream are stored, applied and decided; a
//! consumer restart mid-stream loses nothing and doubles nothing.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::TestServer;
use portcullis_app::clock::ManualClock;
use std::sync::Arc;
use std::time::Duration;

fn nats_url() -> String {
    std::env::var("PORTCULLIS_TEST_NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into())
}

fn event(n: usize) -> String {
    let ts = portcullis_core::time::UnixMillis(common::START.as_millis() + n as i64 * 60_000)
        .to_rfc3339();
    if n.is_multiple_of(2) {
        format!(
            r#"{{"id":"n{n}","ts":"{ts}","type":"login","account":"acc_n","method":"password","success":true,"ctx":{{"ip":"198.51.100.7"}}}}"#
        )
    } else {
        format!(
            r#"{{"id":"n{n}","ts":"{ts}","type":"address.added","account":"acc_n","address":"T{n}","asset":"USDT","network":"TRX","step_up":"passkey","ctx":{{"ip":"198.51.100.7"}}}}"#
        )
    }
}

async fn publish(subject: &str, lines: impl IntoIterator<Item = String>) {
    let client = async_nats::connect(nats_url()).await.unwrap_or_else(|e| {
        panic!(
            "NATS with JetStream must run at {} (scripts/test.sh starts it): {e}",
            nats_url()
        )
    });
    let context = async_nats::jetstream::new(client);
    for line in lines {
        context
            .publish(subject.to_owned(), line.into())
            .await
            .unwrap()
            .await
            .unwrap();
    }
}

/// Waits until every listed event has been decided, or fails after 15 s.
async fn wait_for_decisions(server: &TestServer, ids: &[String]) {
    let admin = server.admin();
    for _ in 0..150 {
        let mut missing = 0;
        for id in ids {
            if admin.get(&format!("/v1/decisions/{id}")).await.status != 200 {
                missing += 1;
            }
        }
        if missing == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("events published to NATS were not decided in time");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jetstream_events_are_applied_once_across_a_consumer_restart() {
    let suffix = portcullis_app::random::alphanumeric(8)
        .unwrap()
        .to_ascii_lowercase();
    let stream = format!("PORTCULLIS_TEST_{suffix}");
    let subject = format!("portcullis.test.{suffix}");
    let configure = |config: &mut portcullis_server::config::Config| {
        config.nats_url = nats_url();
        config.nats_stream = stream.clone();
        config.nats_subject = format!("{subject}.>");
        config.nats_consumer = format!("engine-{suffix}");
    };
    let dir = tempfile::tempdir().unwrap();
    let url = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("portcullis.db").display()
    );
    let server = TestServer::start_on_with(
        dir,
        url,
        Arc::new(ManualClock::new(common::START)),
        configure,
    )
    .await;
    // The consumer creates the stream; give it a moment before publishing.
    tokio::time::sleep(Duration::from_millis(500)).await;
    publish(&format!("{subject}.p0"), (0..10).map(event)).await;
    let first: Vec<String> = (0..10)
        .filter(|n| n % 2 == 1)
        .map(|n| format!("n{n}"))
        .collect();
    wait_for_decisions(&server, &first).await;

    let (dir, url, clock) = server.stop().await;
    // While the consumer is down: new events, and a redelivery of ones already applied.
    publish(&format!("{subject}.p0"), (5..20).map(event)).await;
    publish(&format!("{subject}.p0"), ["not an event".to_owned()]).await;
    let server = TestServer::start_on_with(dir, url, clock, configure).await;
    let all: Vec<String> = (0..20)
        .filter(|n| n % 2 == 1)
        .map(|n| format!("n{n}"))
        .collect();
    wait_for_decisions(&server, &all).await;

    let log = server.admin().get("/v1/events?limit=1000").await;
    let ids: Vec<&str> = log
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event"]["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 20, "every event once, none twice: {ids:?}");
    let metrics = server.admin().get("/metrics").await;
    assert!(
        metrics.text.contains("portcullis_engine_events_total 20"),
        "{}",
        metrics.text
    );
}
