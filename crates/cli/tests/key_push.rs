//! A key revoked with the local CLI reaches a running server through NATS before the command
//! exits: the server polls for key changes only once an hour and listens on NATS (so not on
//! PostgreSQL's notifications), so only the message the CLI publishes can tell it.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{Home, serve_with};
use portcullis_app::clock::SystemClock;
use portcullis_app::ports::Clock as _;
use portcullis_core::secret::Secret;
use portcullis_core::signing::HmacSha256Key;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

fn nats_url() -> String {
    std::env::var("PORTCULLIS_TEST_NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into())
}

fn verify(url: &str, token: &str, api_key: &str, secret: &str, nonce: u32) -> Value {
    let now = SystemClock.now().as_millis();
    let payload = format!("symbol=BTCUSDT&side=BUY&quantity=1&n={nonce}&timestamp={now}");
    let signature =
        HmacSha256Key::new(&Secret::new(secret.as_bytes().to_vec())).sign_hex(payload.as_bytes());
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let body = json!({ "api_key": api_key, "signature": signature, "payload": payload, "ip": "203.0.113.7", "scope": "trade" });
    let mut response = agent
        .post(&format!("{url}/v1/verify"))
        .header("authorization", &format!("Bearer {token}"))
        .send_json(&body)
        .unwrap();
    serde_json::from_str(&response.body_mut().read_to_string().unwrap()).unwrap()
}

#[test]
fn a_key_revoked_with_the_local_cli_is_refused_by_a_running_server_at_once() {
    let home = Home::on_postgres();
    let suffix = std::process::id();
    let nats = [
        ("PORTCULLIS_NATS_URL", nats_url()),
        ("PORTCULLIS_NATS_STREAM", format!("CLIPUSH_{suffix}")),
        (
            "PORTCULLIS_NATS_SUBJECT",
            format!("clipush-{suffix}.events.>"),
        ),
        ("PORTCULLIS_NATS_CONSUMER", format!("engine-{suffix}")),
        (
            "PORTCULLIS_NATS_KEY_SUBJECT",
            format!("clipush-{suffix}.keys"),
        ),
        ("PORTCULLIS_REFRESH_INTERVAL_MS", "3600000".into()),
    ];
    let nats: Vec<(&str, &str)> = nats.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let token = home.integration_token("gateway");
    home.json(&[
        "accounts",
        "create",
        "acc_cli_push",
        "--email",
        "ada@example.com",
        "--anti-phishing-code",
        "Blue42",
    ]);
    let created = home.json(&[
        "keys",
        "create",
        "--account",
        "acc_cli_push",
        "--label",
        "bot",
        "--scope",
        "read,trade",
    ]);
    let key_id = created["key"]["key_id"].as_str().unwrap().to_owned();
    let api_key = created["key"]["api_key"].as_str().unwrap().to_owned();
    let secret = created["secret"].as_str().unwrap().to_owned();
    let (mut server, url) = serve_with(&home, &nats);
    assert_eq!(verify(&url, &token, &api_key, &secret, 0)["ok"], true);

    let revoked = home
        .command(&["keys", "revoke", &key_id])
        .envs(nats.iter().copied())
        .output()
        .unwrap();
    assert!(revoked.status.success(), "{}", common::stderr(&revoked));
    let started = Instant::now();
    let mut answer = Value::Null;
    for nonce in 1.. {
        answer = verify(&url, &token, &api_key, &secret, nonce);
        if answer["ok"] == false || started.elapsed() > Duration::from_secs(30) {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    server.kill().unwrap();
    let _ = server.wait();
    assert_eq!(answer["reason"], "revoked", "{answer}");
}
