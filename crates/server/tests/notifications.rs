//! The server's delivery loop: a notice committed to the outbox of a running server reaches
//! the configured webhook, signed, and is counted in the metrics; the loop stops with the
//! server.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use common::{Backend, TestServer};
use portcullis_app::clock::ManualClock;
use portcullis_app::notify::announce;
use portcullis_app::ports::{ChangeSet, Clock, OutboxFilter, OutboxStatus};
use portcullis_core::notice::{Notice, NoticeKind};
use portcullis_core::webhook::{DELIVERY_ID_HEADER, SIGNATURE_HEADER, verify_webhook_signature};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

const SECRET: &str = "whsec_server_test_0123456789";

type Delivered = (String, serde_json::Value);

async fn receive(
    State((clock, deliveries)): State<(Arc<ManualClock>, mpsc::UnboundedSender<Delivered>)>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let signature = header(SIGNATURE_HEADER);
    if verify_webhook_signature(SECRET.as_bytes(), &signature, &body, clock.now(), 300).is_err() {
        return StatusCode::UNAUTHORIZED;
    }
    let json = serde_json::from_slice(&body).unwrap();
    deliveries.send((header(DELIVERY_ID_HEADER), json)).unwrap();
    StatusCode::OK
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_delivers_queued_notices_to_the_webhook() {
    let clock = Arc::new(ManualClock::new(common::START));
    let (sent, mut deliveries) = mpsc::unbounded_channel();
    let router = axum::Router::new()
        .route("/hook", axum::routing::post(receive))
        .with_state((clock.clone(), sent));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook_url = format!("http://{}/hook", listener.local_addr().unwrap());
    let receiver = tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });

    let dir = tempfile::tempdir().unwrap();
    let url = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("portcullis.db").display()
    );
    let server = TestServer::start_on_with(dir, url, clock.clone(), |config| {
        config.exchange_name = "Exemplar".into();
        config.webhook_url = hook_url.clone();
        config.webhook_secret = portcullis_server::notify::Sensitive::new(SECRET);
        config.notify_interval_ms = 20;
    })
    .await;
    assert_eq!(
        server.app.channels.webhook_url.as_deref(),
        Some(hook_url.as_str())
    );
    let created = server
        .admin()
        .post(
            "/v1/accounts",
            &serde_json::json!({ "id": "acc_1", "display_name": "Ada", "email": "ada@example.com", "anti_phishing_code": "Blue42" }),
        )
        .await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    let account = server.app.store.account("acc_1").await.unwrap().unwrap();
    let notice = Notice {
        kind: NoticeKind::AccountFrozen,
        key: "freeze_1".into(),
        account: "acc_1".into(),
        occurred_at: clock.now(),
        summary: "Account frozen at the customer's request".into(),
        details: vec![],
        takes_effect_at: None,
        cancel_url: None,
        freeze_url: None,
    };
    let writes = announce(&account, &notice, &server.app.channels, clock.now());
    assert_eq!(writes.len(), 1, "webhook only: no SMTP is configured");
    server
        .app
        .store
        .commit(ChangeSet {
            writes,
            audit: vec![],
            events: vec![],
        })
        .await
        .unwrap();

    // A bound against hanging only; the loop delivers within a tick or two.
    let (delivery_id, body) = tokio::time::timeout(Duration::from_secs(60), deliveries.recv())
        .await
        .expect("the delivery loop never sent the notice")
        .unwrap();
    assert_eq!(body["id"], delivery_id.as_str());
    assert_eq!(body["type"], "account.frozen");
    assert_eq!(body["account"], "acc_1");

    // Delivered is recorded after the receiver answered: wait for that state, then check it.
    let filter = OutboxFilter {
        account: Some("acc_1".into()),
        status: Some(OutboxStatus::Delivered),
    };
    let mut recorded = Vec::new();
    for _ in 0..600 {
        recorded = server.app.store.list_outbox(&filter, 10).await.unwrap();
        if !recorded.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(recorded.len(), 1);
    assert_eq!(recorded[0].message.id, delivery_id);
    let listed = server.admin().get("/v1/outbox?account=acc_1").await;
    assert_eq!(listed.status, 200, "{:?}", listed.body);
    assert_eq!(listed.body[0]["id"], delivery_id.as_str());
    assert_eq!(listed.body[0]["status"], "delivered");
    assert_eq!(listed.body[0]["channel"], "webhook");
    assert_eq!(listed.body[0]["attempts"], 1);
    let none_dead = server.admin().get("/v1/outbox?status=dead").await;
    assert_eq!(none_dead.body, serde_json::json!([]));
    let bad = server.admin().get("/v1/outbox?status=lost").await;
    assert_eq!(bad.status, 400);
    let integration = server.operator("integration").await;
    assert_eq!(integration.get("/v1/outbox").await.status, 403);
    let metrics = server.admin().get("/metrics").await;
    assert!(
        metrics
            .text
            .contains("portcullis_notifications_total{outcome=\"delivered\"}"),
        "{}",
        metrics.text
    );

    server.stop().await;
    assert!(deliveries.try_recv().is_err(), "delivered exactly once");
    receiver.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_channels_nothing_is_announced() {
    let server = TestServer::start(Backend::Sqlite).await;
    assert_eq!(server.app.channels.webhook_url, None);
    assert!(!server.app.channels.email);
    server.stop().await;
}
