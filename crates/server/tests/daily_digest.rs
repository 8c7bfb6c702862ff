//! The daily security digest over real HTTP on both backends: switched on at an hour (and
//! announced), sent once when due with what happened in the last 24 hours (keys used and from
//! where, new IPs and devices, changes, holds, the check-up score), sent on a quiet day too,
//! switched off (announced) and then no longer sent; bad input is a 400 with a stable code.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::channels::{outbox, start_with_channels_and};
use common::guard::{HOUR, account_with_key, code_of};
use common::{Backend, TestServer};
use portcullis_app::ports::{Channel, OutboxMessage};
use portcullis_core::time::UnixMillis;
use serde_json::json;

const DAY: i64 = 24 * HOUR;

async fn ingest(server: &TestServer, lines: &[String]) {
    let body = lines.join("\n") + "\n";
    let reply = server
        .admin()
        .post_raw("/v1/events", body.into_bytes(), "application/x-ndjson")
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    server.app.risk.catch_up().await.unwrap();
}

fn at(ts: UnixMillis) -> String {
    ts.to_rfc3339()
}

async fn digests(server: &TestServer, account: &str, kind: &str) -> Vec<OutboxMessage> {
    (outbox(server, account).await.into_iter())
        .filter(|m| {
            m.channel == Channel::Email && (m.subject.contains(kind) || m.body_text.contains(kind))
        })
        .collect()
}

async fn the_digest_says_what_happened_once_a_day_even_on_quiet_days(backend: Backend) {
    // The server's own pass would send the digest whenever the test clock passes its time;
    // here the test sends it, to look at each one.
    let server = start_with_channels_and(backend, |config| {
        config.refresh_interval_ms = 3_600_000;
    })
    .await;
    let admin = server.admin();
    let (key_id, _, _) = account_with_key(&server, "acc_d").await;
    let now = server.now();
    ingest(&server, &[
        format!(r#"{{"id":"old-login","ts":"{}","type":"login","account":"acc_d","method":"password","success":true,"ctx":{{"ip":"203.0.113.7","device_id":"d-home"}}}}"#, at(now.plus_millis(-3 * DAY))),
    ]).await;

    let on = admin
        .put("/v1/accounts/acc_d/digest", &json!({ "hour_utc": 7 }))
        .await;
    assert_eq!(on.status, 200, "{}", on.text);
    let next_at = UnixMillis::parse_rfc3339(on.body["next_at"].as_str().unwrap()).unwrap();
    assert!(next_at > now && next_at.as_millis() - now.as_millis() <= DAY);
    assert_eq!(
        admin.get("/v1/accounts/acc_d/digest").await.body["hour_utc"],
        7
    );
    let announced = digests(&server, "acc_d", "security digest every day at 07:00 UTC").await;
    assert_eq!(announced.len(), 1, "switching it on is announced");

    let t = at(server.now());
    ingest(&server, &[
        format!(r#"{{"id":"use-1","ts":"{t}","type":"api_key.used","account":"acc_d","key_id":"{key_id}","endpoint":"/api/v3/order","count":40,"window_s":60,"ctx":{{"ip":"203.0.113.7"}}}}"#),
        format!(r#"{{"id":"use-2","ts":"{t}","type":"api_key.used","account":"acc_d","key_id":"{key_id}","endpoint":"/api/v3/order","count":2,"window_s":60,"ctx":{{"ip":"198.51.100.9"}}}}"#),
        format!(r#"{{"id":"login-new","ts":"{t}","type":"login","account":"acc_d","method":"password","success":true,"ctx":{{"ip":"198.51.100.9","device_id":"d-stranger"}}}}"#),
        format!(r#"{{"id":"fraud","ts":"{t}","type":"fraud.confirmed","account":"acc_other","withdrawal_ids":[],"addresses":["TQscamCollector1"],"from":[],"note":"campaign"}}"#),
        format!(r#"{{"id":"w-scam","ts":"{t}","type":"withdrawal.requested","account":"acc_d","withdrawal_id":"w1","asset":"USDT","network":"TRX","address":"TQscamCollector1","amount":"900","amount_usd":900.0,"key_id":"{key_id}","ctx":{{"ip":"198.51.100.9","channel":"api"}}}}"#),
    ]).await;
    let revoked = admin
        .post(&format!("/v1/keys/{key_id}/revoke"), &json!({}))
        .await;
    assert_eq!(revoked.status, 200, "{}", revoked.text);

    assert_eq!(
        server.app.guard.send_due_digests().await.unwrap(),
        0,
        "not due yet"
    );
    server.clock.set(next_at);
    assert_eq!(server.app.guard.send_due_digests().await.unwrap(), 1);
    assert_eq!(
        server.app.guard.send_due_digests().await.unwrap(),
        0,
        "sent once"
    );
    let sent = digests(&server, "acc_d", "Your daily security digest: ").await;
    assert_eq!(sent.len(), 1);
    let text = &sent[0].body_text;
    for expected in [
        "Blue42",
        "'bot': 42 request(s) from 198.51.100.9, 203.0.113.7",
        "New IP addresses: 198.51.100.9",
        "New devices: d-stranger",
        "API key revoked",
        "a withdrawal at",
        "Check-up score",
    ] {
        assert!(
            text.contains(expected),
            "{expected:?} missing from:\n{text}"
        );
    }
    assert!(!text.contains("New devices: d-home"), "{text}");

    // A quiet day still brings a digest, which says so.
    server.clock.advance(DAY);
    assert_eq!(server.app.guard.send_due_digests().await.unwrap(), 1);
    let quiet = digests(&server, "acc_d", "nothing happened in the last 24 hours").await;
    assert_eq!(quiet.len(), 1);

    let off = admin.delete("/v1/accounts/acc_d/digest").await;
    assert_eq!(off.status, 204, "{}", off.text);
    assert_eq!(
        digests(&server, "acc_d", "digest was switched off")
            .await
            .len(),
        1
    );
    server.clock.advance(DAY);
    assert_eq!(server.app.guard.send_due_digests().await.unwrap(), 0);
    assert_eq!(admin.get("/v1/accounts/acc_d/digest").await.status, 404);
    let audit = admin.get("/v1/audit?limit=1000").await.body;
    let actions: Vec<&str> = (audit.as_array().unwrap().iter())
        .filter_map(|e| e["action"].as_str())
        .filter(|a| a.starts_with("digest."))
        .collect();
    assert_eq!(actions.len(), 2, "{actions:?}");
}

async fn bad_digest_requests_are_refused_with_a_code(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin = server.admin();
    account_with_key(&server, "acc_b").await;
    let late = admin
        .put("/v1/accounts/acc_b/digest", &json!({ "hour_utc": 24 }))
        .await;
    assert_eq!(code_of(&late), (400, "invalid_digest_hour".into()));
    let word = admin
        .put("/v1/accounts/acc_b/digest", &json!({ "hour_utc": "seven" }))
        .await;
    assert_eq!(code_of(&word).0, 400);
    let nobody = admin
        .put("/v1/accounts/acc_nobody/digest", &json!({ "hour_utc": 7 }))
        .await;
    assert_eq!(nobody.status, 404, "{}", nobody.text);
    assert_eq!(admin.delete("/v1/accounts/acc_b/digest").await.status, 404);
    let analyst = server.operator("analyst").await;
    let refused = analyst
        .put("/v1/accounts/acc_b/digest", &json!({ "hour_utc": 7 }))
        .await;
    assert_eq!(refused.status, 403, "{}", refused.text);
    assert_eq!(
        admin.get("/v1/accounts/acc_b/digest").await.status,
        404,
        "nothing changed"
    );
}

on_both_backends!(
    the_digest_says_what_happened_once_a_day_even_on_quiet_days,
    bad_digest_requests_are_refused_with_a_code,
);
