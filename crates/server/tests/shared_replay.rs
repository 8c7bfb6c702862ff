//! The replay guard every node shares (`replay_guard_redis_url`, the local Redis): a signed
//! request accepted by one node is refused as a replay by another that shares the guard, while
//! a node without it (the control) lets it through; a node whose Redis cannot be reached
//! refuses every request it would accept (fail closed), and still refuses bad ones as such.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::guard::account_with_key;
use common::{Backend, Client, TestServer, sign_hmac};
use serde_json::{Value, json};

fn redis_url() -> String {
    std::env::var("PORTCULLIS_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

async fn verify(gateway: &Client, api_key: &str, signature: &str, payload: &str) -> (u16, Value) {
    let body = json!({ "api_key": api_key, "signature": signature, "payload": payload, "ip": "203.0.113.7", "scope": "trade" });
    let reply = gateway.post("/v1/verify", &body).await;
    (reply.status, reply.body)
}

/// Another node of the same deployment: same database, same master keys, the given Redis.
async fn node(first: &TestServer, redis: Option<String>) -> TestServer {
    let keyring = first.settings.keyring_file.clone();
    TestServer::start_on_with(
        tempfile::tempdir().unwrap(),
        first.database_url.clone(),
        first.clock.clone(),
        |config| {
            config.keyring_file = keyring.display().to_string();
            config.replay_guard_redis_url = redis.unwrap_or_default();
        },
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replay_sent_to_another_node_is_refused_and_an_unreachable_guard_refuses_all() {
    let first = TestServer::start_with(Backend::Postgres, |config| {
        config.replay_guard_redis_url = redis_url();
    })
    .await;
    let (_, api_key, secret) = account_with_key(&first, "acc_shared").await;
    let second = node(&first, Some(redis_url())).await;
    let unguarded = node(&first, None).await;
    let now = first.now().as_millis();
    let payload = format!("symbol=BTCUSDT&side=BUY&quantity=1&timestamp={now}");
    let signature = sign_hmac(&secret, &payload);

    let gateway = first.operator("integration").await;
    let (status, answer) = verify(&gateway, &api_key, &signature, &payload).await;
    assert_eq!((status, &answer["ok"]), (200, &json!(true)), "{answer}");
    let on_second = second.operator("integration").await;
    let (status, answer) = verify(&on_second, &api_key, &signature, &payload).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        (&answer["ok"], &answer["reason"]),
        (&json!(false), &json!("replayed")),
        "the second node knows the first one's signature: {answer}"
    );
    let (_, answer) = verify(
        &unguarded.operator("integration").await,
        &api_key,
        &signature,
        &payload,
    )
    .await;
    assert_eq!(
        answer["ok"], true,
        "the control: a node without the shared guard cannot know it"
    );
    let fresh = format!("symbol=BTCUSDT&side=SELL&quantity=1&timestamp={now}");
    let (_, answer) = verify(&on_second, &api_key, &sign_hmac(&secret, &fresh), &fresh).await;
    assert_eq!(answer["ok"], true, "a new signature passes: {answer}");

    let cut_off = node(&first, Some("redis://127.0.0.1:1".into())).await;
    let on_cut_off = cut_off.operator("integration").await;
    let other = format!("symbol=ETHUSDT&side=BUY&quantity=1&timestamp={now}");
    let (status, answer) = verify(&on_cut_off, &api_key, &sign_hmac(&secret, &other), &other).await;
    assert_eq!(status, 503, "{answer}");
    assert_eq!(
        answer["error"]["code"], "replay_guard_unavailable",
        "{answer}"
    );
    let (status, answer) = verify(&on_cut_off, &api_key, &"0".repeat(64), &other).await;
    assert_eq!(
        (status, &answer["reason"]),
        (200, &json!("bad_signature")),
        "a request refused on its own merits is refused as such: {answer}"
    );
}
