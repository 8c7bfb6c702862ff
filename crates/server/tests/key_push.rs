//! Key changes and operator-token revocations pushed to every node: two servers share one
//! PostgreSQL database; the second polls for key changes only once an hour and trusts a
//! checked token for an hour, so a revocation made on the first reaches it only through the
//! push. Each push path on its own: PostgreSQL's notifications (no NATS configured), and core
//! NATS on the local server (a node with NATS configured listens on NATS only), each refused
//! there within moments.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::guard::account_with_key;
use common::{Backend, Client, TestServer, sign_hmac};
use portcullis_server::config::Config;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// Long enough for any push on a loaded machine; far shorter than the hour a poll would take.
const DEADLINE: Duration = Duration::from_secs(30);
const HOUR_MS: u64 = 3_600_000;

#[derive(Debug, Clone, Copy)]
enum PushPath {
    Postgres,
    Nats,
}

fn nats_url() -> String {
    std::env::var("PORTCULLIS_TEST_NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into())
}

/// Two nodes of one deployment (same database, same master keys), neither polling in time;
/// with NATS, both on a subject of this test's own.
async fn two_nodes(path: PushPath) -> (TestServer, TestServer) {
    let suffix = portcullis_app::random::alphanumeric(8).unwrap();
    let configure = move |config: &mut Config| {
        config.refresh_interval_ms = HOUR_MS;
        config.token_cache_ms = HOUR_MS;
        if let PushPath::Nats = path {
            config.nats_url = nats_url();
            config.nats_stream = format!("PUSH_{suffix}");
            config.nats_subject = format!("push-{suffix}.events.>");
            config.nats_consumer = format!("engine-{suffix}");
            config.nats_key_subject = format!("push-{suffix}.keys.changed");
        }
    };
    let first = TestServer::start_with(Backend::Postgres, configure.clone()).await;
    let keyring = first.settings.keyring_file.display().to_string();
    let second = TestServer::start_on_with(
        tempfile::tempdir().unwrap(),
        first.database_url.clone(),
        first.clock.clone(),
        move |config| {
            configure(config);
            config.keyring_file = keyring;
        },
    )
    .await;
    (first, second)
}

async fn verify(gateway: &Client, api_key: &str, secret: &str, nonce: u32, now: i64) -> Value {
    let payload = format!("symbol=BTCUSDT&side=BUY&quantity=1&n={nonce}&timestamp={now}");
    let body = json!({ "api_key": api_key, "signature": sign_hmac(secret, &payload), "payload": payload, "ip": "203.0.113.7", "scope": "trade" });
    let reply = gateway.post("/v1/verify", &body).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    reply.body
}

async fn a_revoked_key_is_refused_on_the_other_node(path: PushPath) {
    let (first, second) = two_nodes(path).await;
    let (key_id, api_key, secret) = account_with_key(&first, "acc_push").await;
    let gateway = second.operator("integration").await;
    let now = first.now().as_millis();
    // The second node holds the key: created on the first, pushed (or loaded at its start).
    let mut answer = Value::Null;
    let started = Instant::now();
    for nonce in 0.. {
        answer = verify(&gateway, &api_key, &secret, nonce, now).await;
        if answer["ok"] == true || started.elapsed() > DEADLINE {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(answer["ok"], true, "{answer}");

    let revoked = first
        .admin()
        .post(&format!("/v1/keys/{key_id}/revoke"), &json!({}))
        .await;
    assert_eq!(revoked.status, 200, "{}", revoked.text);
    // Without the push the second node would go on accepting the key for an hour.
    let started = Instant::now();
    for nonce in 1_000.. {
        answer = verify(&gateway, &api_key, &secret, nonce, now).await;
        if answer["ok"] == false || started.elapsed() > DEADLINE {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        answer["ok"], false,
        "still accepted on the second node: {answer}"
    );
    assert_eq!(answer["reason"], "revoked", "{answer}");
}

async fn a_revoked_token_is_refused_on_the_other_node(path: PushPath) {
    let (first, second) = two_nodes(path).await;
    let created = first
        .admin()
        .post(
            "/v1/operators",
            &json!({ "name": "gateway-push", "role": "integration" }),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
    let id = created.body["operator"]["id"].as_str().unwrap().to_owned();
    let gateway = second.client(created.body["token"].as_str().unwrap());
    // Checked once on the second node, so it sits in that node's cache for an hour.
    assert_eq!(gateway.get("/v1/accounts").await.status, 200);

    let revoked = first
        .admin()
        .post(&format!("/v1/operators/{id}/revoke"), &json!({}))
        .await;
    assert_eq!(revoked.status, 200, "{}", revoked.text);
    let started = Instant::now();
    let mut status = 200;
    while started.elapsed() < DEADLINE {
        status = gateway.get("/v1/accounts").await.status;
        if status != 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        status, 401,
        "the revoked token still works on the second node"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revocation_on_one_node_is_in_force_on_another_through_postgres() {
    Box::pin(a_revoked_key_is_refused_on_the_other_node(
        PushPath::Postgres,
    ))
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revocation_on_one_node_is_in_force_on_another_through_nats() {
    Box::pin(a_revoked_key_is_refused_on_the_other_node(PushPath::Nats)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_revoked_on_one_node_is_refused_on_another_through_postgres() {
    Box::pin(a_revoked_token_is_refused_on_the_other_node(
        PushPath::Postgres,
    ))
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_revoked_on_one_node_is_refused_on_another_through_nats() {
    Box::pin(a_revoked_token_is_refused_on_the_other_node(PushPath::Nats)).await;
}

/// With NATS unreachable, a key change still commits and answers at once (the push is best
/// effort); the message that could not be confirmed is counted as failed and logged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_push_that_fails_never_fails_the_change_and_is_counted() {
    let suffix = portcullis_app::random::alphanumeric(8).unwrap();
    let server = TestServer::start_with(Backend::Sqlite, |config| {
        // Nothing listens on port 1.
        config.nats_url = "nats://127.0.0.1:1".into();
        config.nats_stream = format!("DOWN_{suffix}");
        config.nats_subject = format!("down-{suffix}.events.>");
        config.nats_consumer = format!("engine-{suffix}");
        config.nats_key_subject = format!("down-{suffix}.keys.changed");
    })
    .await;
    let (key_id, _, _) = account_with_key(&server, "acc_push_down").await;
    let revoked = server
        .admin()
        .post(&format!("/v1/keys/{key_id}/revoke"), &json!({}))
        .await;
    assert_eq!(revoked.status, 200, "{}", revoked.text);
    let key = server.admin().get(&format!("/v1/keys/{key_id}")).await;
    assert!(!key.body["revoked_at"].is_null(), "{}", key.text);

    let started = Instant::now();
    let mut counted = false;
    while !counted && started.elapsed() < DEADLINE {
        let metrics = server.admin().get("/metrics").await;
        counted = metrics
            .text
            .contains("portcullis_key_push_total{outcome=\"failed\"}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(counted, "no failed push counted");
}
