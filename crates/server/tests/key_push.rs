//! Key changes pushed to every node on PostgreSQL: two servers share one database; the second
//! polls for key changes only once an hour, so a revocation made on the first reaches it only
//! through the pushed notification. It must be refused there within moments.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::guard::account_with_key;
use common::{Backend, Client, TestServer, sign_hmac};
use serde_json::{Value, json};
use std::time::Duration;

async fn verify(gateway: &Client, api_key: &str, secret: &str, nonce: u32, now: i64) -> Value {
    let payload = format!("symbol=BTCUSDT&side=BUY&quantity=1&n={nonce}&timestamp={now}");
    let body = json!({ "api_key": api_key, "signature": sign_hmac(secret, &payload), "payload": payload, "ip": "203.0.113.7", "scope": "trade" });
    let reply = gateway.post("/v1/verify", &body).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    reply.body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revocation_on_one_node_is_in_force_on_another_at_once() {
    let first = TestServer::start(Backend::Postgres).await;
    let (key_id, api_key, secret) = account_with_key(&first, "acc_push").await;
    // Another node of the same deployment: same database, same master keys.
    let keyring = first.settings.keyring_file.clone();
    let second = TestServer::start_on_with(
        tempfile::tempdir().unwrap(),
        first.database_url.clone(),
        first.clock.clone(),
        |config| {
            config.refresh_interval_ms = 3_600_000;
            config.keyring_file = keyring.display().to_string();
        },
    )
    .await;
    let gateway = second.operator("integration").await;
    let now = first.now().as_millis();
    assert_eq!(
        verify(&gateway, &api_key, &secret, 0, now).await["ok"],
        true
    );

    let revoked = first
        .admin()
        .post(&format!("/v1/keys/{key_id}/revoke"), &json!({}))
        .await;
    assert_eq!(revoked.status, 200, "{}", revoked.text);
    // Without the push the second node would go on accepting the key for an hour.
    let mut answer = Value::Null;
    for nonce in 1..=50 {
        answer = verify(&gateway, &api_key, &secret, nonce, now).await;
        if answer["ok"] == false {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        answer["ok"], false,
        "still accepted on the second node: {answer}"
    );
    assert_eq!(answer["reason"], "revoked", "{answer}");
}
