//! With `engine_partitions`, an operator's change reaches the partitions only through the event
//! stream: when the stream does not take it, the request fails with 503 `stream_unavailable`
//! and nothing is changed (no override stored, the policy file not reloaded), on both
//! backends. (The override's entity check is answered by a partition at work in the process:
//! one is registered here, answering from an engine that saw the address.)

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use async_trait::async_trait;
use common::{Backend, TestServer};
use portcullis_app::partitions::{ControlSeal, PartitionGauges};
use portcullis_app::ports::{EventFeed, EventSource};
use portcullis_app::risk::StreamIngest;
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;

/// A stream that takes nothing.
struct Unreachable;

#[async_trait]
impl EventSource for Unreachable {
    async fn open(&self, _partition: u32, _gen: i64, _from: u64) -> Result<EventFeed, String> {
        Err("connection refused".into())
    }
    async fn publish(
        &self,
        _events: Vec<(Option<u32>, String, String)>,
    ) -> Result<Vec<bool>, String> {
        Err("connection refused".into())
    }
    async fn publish_control(&self, _id: Option<&str>, _body: Vec<u8>) -> Result<(), String> {
        Err("connection refused".into())
    }
}

async fn an_operators_change_the_stream_refuses_changes_nothing(backend: Backend) {
    let server = TestServer::start(backend).await;
    // Every clone of the engine (the guard's, the policy use cases') sends to the stream now.
    let _ = server.app.risk.clone().with_stream(StreamIngest {
        events: Arc::new(Unreachable),
        partitions: 2,
        wait: Duration::from_millis(100),
        gauges: Arc::new(PartitionGauges::new(2)),
        seal: Arc::new(ControlSeal::derive("k", &[("k", &[1u8; 32])]).unwrap()),
        clock: server.app.clock.clone(),
    });
    let admin = server.admin();
    // No partition at work here: no view of the graph, so no override (not even an attempt to
    // put it on the stream) and no graph.
    let force = json!({ "action": "force", "note": "the crew's" });
    let refused = admin
        .post("/v1/graph/address/TQcrew/override", &force)
        .await;
    assert_eq!(refused.status, 503, "{}", refused.text);
    assert_eq!(refused.body["error"]["code"], "partition_view_unavailable");
    let graph = admin.get("/v1/graph/address/TQcrew?hops=2").await;
    assert_eq!(graph.status, 503, "{}", graph.text);
    assert_eq!(graph.body["error"]["code"], "partition_view_unavailable");
    // A partition at work here answers the override's entity check, from an engine whose graph
    // holds the address.
    let (_registration, mut asked) = server.app.risk.partition_views().register(0);
    let mut engine =
        portcullis_engine::Engine::new(portcullis_engine::Policy::default_policy().unwrap());
    let line = r#"{"id":"e1","ts":"2026-01-01T00:00:00Z","type":"withdrawal.requested","account":"acc1","withdrawal_id":"w1","asset":"USDT","network":"TRX","address":"TQcrew","amount":"10","amount_usd":10.0,"ctx":{"ip":"198.51.100.9","device_id":"d1","channel":"web"}}"#;
    engine.process(&portcullis_core::contract::parse_line(line).unwrap());
    tokio::spawn(async move {
        while let Some(request) = asked.recv().await {
            request.answer(&engine);
        }
    });
    let set = admin
        .post(
            "/v1/graph/address/TQcrew/override",
            &json!({ "action": "force", "note": "the crew's" }),
        )
        .await;
    assert_eq!(set.status, 503, "{}", set.text);
    assert_eq!(
        set.body["error"]["code"], "stream_unavailable",
        "{}",
        set.text
    );
    let all = admin.get("/v1/overrides?all=true").await;
    assert_eq!(all.status, 200, "{}", all.text);
    assert_eq!(all.body.as_array().map(Vec::len), Some(0), "{}", all.text);

    let reload = admin.post("/v1/policy/reload", &json!({})).await;
    assert_eq!(reload.status, 503, "{}", reload.text);
    assert_eq!(reload.body["error"]["code"], "stream_unavailable");
}

on_both_backends!(an_operators_change_the_stream_refuses_changes_nothing);
