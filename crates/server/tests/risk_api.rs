//! The risk engine over real HTTP on both backends: batch ingest with per-line errors and
//! idempotence, synchronous decisions, stored decisions with their features, the key
//! authority's own events reaching the engine, and state rebuilt after a restart.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{Backend, TestServer};
use serde_json::json;

fn at(minutes: i64) -> String {
    portcullis_core::time::UnixMillis(common::START.as_millis() + minutes * 60_000).to_rfc3339()
}

fn history() -> String {
    [
        format!(r#"{{"id":"h1","ts":"{}","type":"login","account":"acc_r","method":"password","success":true,"ctx":{{"ip":"198.51.100.23","device_id":"d1"}}}}"#, at(0)),
        format!(r#"{{"id":"h2","ts":"{}","type":"api_key.created","account":"acc_r","key_id":"kx","scopes":["read","trade"],"ip_allowlist":["198.51.100.23/32"],"step_up":"passkey","ctx":{{"ip":"198.51.100.23","device_id":"d1"}}}}"#, at(1)),
        "{broken".to_owned(),
        format!(r#"{{"id":"h3","ts":"{}","type":"teleport","account":"acc_r"}}"#, at(2)),
        format!(r#"{{"id":"h4","ts":"{}","type":"api_key.updated","account":"acc_r","key_id":"kx","scopes":["read","trade","withdraw"],"ip_allowlist":["203.0.113.7/32"],"step_up":"sms","ctx":{{"ip":"198.51.100.23","call_active":true}}}}"#, at(60)),
    ]
    .join("\n")
}

async fn ingest_reports_lines_and_ignores_duplicates(backend: Backend) {
    let server = TestServer::start(backend).await;
    let feed = server.operator("integration").await;
    let reply = feed
        .post_raw("/v1/events", history().into_bytes(), "application/x-ndjson")
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.body["accepted"], 3);
    let rejected: Vec<i64> = reply.body["rejected"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["line"].as_i64().unwrap())
        .collect();
    assert_eq!(rejected, vec![3, 4]);
    assert!(
        reply.body["rejected"][1]["reason"]
            .as_str()
            .unwrap()
            .contains("teleport")
    );
    let decisions = reply.body["decisions"].as_array().unwrap();
    assert_eq!(decisions.len(), 2, "the two key events ask for decisions");
    assert_eq!(decisions[1]["event_id"], "h4");
    assert!(
        ["hold", "block"].contains(&decisions[1]["decision"].as_str().unwrap()),
        "{}",
        reply.text
    );

    let again = feed
        .post_raw("/v1/events", history().into_bytes(), "application/x-ndjson")
        .await;
    assert_eq!(
        (
            again.body["accepted"].clone(),
            again.body["duplicates"].clone()
        ),
        (json!(0), json!(3))
    );
    assert!(again.body["decisions"].as_array().unwrap().is_empty());
    // A line that is not UTF-8, or nests absurdly deep, is refused alone: the others go ahead.
    let mut mixed = b"\xff\xfe\n".to_vec();
    let deep = format!(
        r#"{{"id":"deep","ts":"{}","type":"login","account":"acc_r","method":"password","success":true,"x":{}1{}}}"#,
        at(1),
        "[".repeat(127),
        "]".repeat(127)
    );
    let fine = json!({ "id": "fine", "ts": at(1), "type": "login", "account": "acc_r", "method": "password", "success": true });
    mixed.extend_from_slice(format!("{deep}\n{fine}\n").as_bytes());
    let bad = feed
        .post_raw("/v1/events", mixed, "application/x-ndjson")
        .await;
    assert_eq!(bad.status, 200, "{}", bad.text);
    assert_eq!(bad.body["accepted"], 1, "{}", bad.text);
    let rejected = bad.body["rejected"].as_array().unwrap();
    assert_eq!(
        (rejected[0]["line"].clone(), rejected[1]["line"].clone()),
        (json!(1), json!(2))
    );
    assert!(rejected[0]["reason"].as_str().unwrap().contains("UTF-8"));
    assert!(rejected[1]["reason"].as_str().unwrap().contains("nested"));
    let analyst = server.operator("analyst").await;
    assert_eq!(
        analyst
            .post_raw("/v1/events", history().into_bytes(), "application/x-ndjson")
            .await
            .status,
        403
    );
    let metrics = analyst.get("/metrics").await;
    for expected in [
        "portcullis_rule_hits_total{rule=\"call_during_escalation\"} 1",
        "portcullis_engine_refused_lines_total 6",
    ] {
        assert!(
            metrics.text.contains(expected),
            "{expected} in {}",
            metrics.text
        );
    }
}

async fn decisions_are_synchronous_stored_and_survive_a_restart(backend: Backend) {
    let server = TestServer::start(backend).await;
    let feed = server.operator("integration").await;
    feed.post_raw("/v1/events", history().into_bytes(), "application/x-ndjson")
        .await;
    let drain = json!({
        "id": "w1", "ts": at(66), "type": "withdrawal.requested", "account": "acc_r", "withdrawal_id": "w1",
        "asset": "USDT", "network": "TRX", "address": "TQattacker", "amount": "4900", "amount_usd": 4900.0,
        "key_id": "kx", "ctx": { "ip": "203.0.113.7", "channel": "api" }
    });
    let decision = feed.post("/v1/decisions", &drain).await;
    assert_eq!(decision.status, 200, "{}", decision.text);
    assert_eq!(decision.body["decision"], "block");
    assert!(
        decision.body["reasons"]
            .as_array()
            .unwrap()
            .contains(&json!("key_lacks_withdraw_scope")),
        "{}",
        decision.text
    );
    let same = feed.post("/v1/decisions", &drain).await;
    assert_eq!(
        same.body, decision.body,
        "sending it again gives the same decision"
    );

    let stored = server
        .operator("analyst")
        .await
        .get("/v1/decisions/w1")
        .await;
    assert_eq!(stored.status, 200, "{}", stored.text);
    assert_eq!(stored.body["features"]["key_lacks_withdraw"], true);
    assert_eq!(stored.body["features"]["amount_usd"], 4900.0);

    let login = json!({ "id": "l9", "ts": at(70), "type": "login", "account": "acc_r", "method": "password", "success": true });
    assert_eq!(
        feed.post("/v1/decisions", &login).await.body["error"]["code"],
        "no_decision"
    );
    let broken = json!({ "id": "x", "ts": at(70), "type": "deposit", "account": "acc_r", "asset": "BTC", "amount": "-1", "amount_usd": 1.0 });
    assert_eq!(
        feed.post("/v1/decisions", &broken).await.body["error"]["code"],
        "invalid_event"
    );
    // A withdrawal under the id of a login already logged: not decided, and said so.
    let logged = json!({ "id": "l10", "ts": at(71), "type": "login", "account": "acc_r", "method": "password", "success": true });
    feed.post_raw(
        "/v1/events",
        logged.to_string().into_bytes(),
        "application/x-ndjson",
    )
    .await;
    let reused = json!({
        "id": "l10", "ts": at(72), "type": "withdrawal.requested", "account": "acc_r", "withdrawal_id": "w9",
        "asset": "USDT", "network": "TRX", "address": "TQattacker", "amount": "10", "amount_usd": 10.0,
        "ctx": { "ip": "203.0.113.7", "channel": "api" }
    });
    let refused = feed.post("/v1/decisions", &reused).await;
    assert_eq!(refused.status, 409, "{}", refused.text);
    assert_eq!(
        refused.body["error"]["code"], "event_ignored",
        "{}",
        refused.text
    );

    // After a restart the engine is rebuilt from the log: the key is still without `withdraw`.
    let (dir, url, clock) = server.stop().await;
    let server = TestServer::start_on(dir, url, clock).await;
    let feed = server.operator("integration").await;
    let second = json!({
        "id": "w2", "ts": at(80), "type": "withdrawal.requested", "account": "acc_r", "withdrawal_id": "w2",
        "asset": "USDT", "network": "TRX", "address": "TQattacker", "amount": "10", "amount_usd": 10.0,
        "key_id": "kx", "ctx": { "ip": "203.0.113.7", "channel": "api" }
    });
    let decision = feed.post("/v1/decisions", &second).await;
    assert_eq!(decision.body["decision"], "block", "{}", decision.text);
    assert!(
        decision.body["reasons"]
            .as_array()
            .unwrap()
            .contains(&json!("key_lacks_withdraw_scope"))
    );
}

async fn the_key_authoritys_changes_reach_the_engine(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin = server.admin();
    assert_eq!(
        admin
            .post("/v1/accounts", &json!({ "id": "acc_ka" }))
            .await
            .status,
        201
    );
    let key = admin
        .post("/v1/accounts/acc_ka/keys", &json!({ "scopes": ["read", "trade"], "ip_allowlist": ["192.0.2.0/24"], "step_up": "passkey" }))
        .await;
    let key_id = key.body["key"]["key_id"].as_str().unwrap();
    let outside = json!({
        "id": "w_out", "ts": server.now().plus_millis(60_000).to_rfc3339(), "type": "withdrawal.requested", "account": "acc_ka",
        "withdrawal_id": "w_out", "asset": "BTC", "network": "BTC", "address": "bc1x", "amount": "0.1", "amount_usd": 6000.0,
        "key_id": key_id, "ctx": { "ip": "203.0.113.99", "channel": "api" }
    });
    let decision = admin.post("/v1/decisions", &outside).await;
    assert_eq!(decision.body["decision"], "block", "{}", decision.text);
    assert!(
        decision.body["reasons"]
            .as_array()
            .unwrap()
            .contains(&json!("ip_outside_key_allowlist")),
        "{}",
        decision.text
    );
    let log = admin.get("/v1/events").await;
    assert_eq!(log.body[0]["event"]["type"], "api_key.created");
    let created = admin
        .get(&format!(
            "/v1/decisions/{}",
            log.body[0]["event"]["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(
        created.status, 200,
        "the authority's own api_key.created was decided too: {}",
        created.text
    );
}

const ONE_RULE: &str = "[thresholds]\nchallenge = 30\nhold = 60\nblock = 85\n[[rule]]\nid = \"any_new_address\"\ndescription = \"x\"\nwhen = \"event_type == 'address.added'\"\nscore = 40\n";

fn address(id: &str, minutes: i64) -> serde_json::Value {
    json!({ "id": id, "ts": at(minutes), "type": "address.added", "account": "acc_p", "address": format!("T{id}"), "asset": "USDT", "network": "TRX", "step_up": "passkey" })
}

async fn the_policy_reloads_without_a_restart_and_a_bad_one_is_refused(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let policy_file = dir.path().join("policy.toml");
    std::fs::write(&policy_file, ONE_RULE).unwrap();
    let url = match backend {
        Backend::Sqlite => format!(
            "sqlite://{}?mode=rwc",
            dir.path().join("portcullis.db").display()
        ),
        Backend::Postgres => common::fresh_postgres_database().await,
    };
    let file = policy_file.clone();
    let clock = std::sync::Arc::new(portcullis_app::clock::ManualClock::new(common::START));
    let server = TestServer::start_on_with(dir, url, clock, move |config| {
        config.risk_policy_file = file.display().to_string();
    })
    .await;
    let admin = server.admin();
    let first = admin.post("/v1/decisions", &address("p1", 1)).await;
    assert_eq!(
        (
            first.body["decision"].clone(),
            first.body["reasons"].clone()
        ),
        (json!("challenge"), json!(["any_new_address"])),
        "{}",
        first.text
    );

    std::fs::write(
        &policy_file,
        ONE_RULE.replace("event_type == 'address.added'", "event_type == &&"),
    )
    .unwrap();
    let refused = admin.post("/v1/policy/reload", &json!({})).await;
    assert_eq!(
        refused.body["error"]["code"], "invalid_policy",
        "{}",
        refused.text
    );
    assert!(
        refused.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("any_new_address")
    );
    let still = admin.post("/v1/decisions", &address("p2", 2)).await;
    assert_eq!(
        still.body["decision"], "challenge",
        "the running policy stays"
    );

    std::fs::write(&policy_file, ONE_RULE.replace("score = 40", "score = 90")).unwrap();
    let reloaded = admin.post("/v1/policy/reload", &json!({})).await;
    assert_eq!(reloaded.body["rules"], 1, "{}", reloaded.text);
    let after = admin.post("/v1/decisions", &address("p3", 3)).await;
    assert_eq!(after.body["decision"], "block");
    let integration = server.operator("integration").await;
    assert_eq!(
        integration
            .post("/v1/policy/reload", &json!({}))
            .await
            .status,
        403
    );
}

/// A generated feed: several accounts, logins, key changes with and without call signals, new
/// addresses and withdrawals, in time order.
fn generated_feed() -> Vec<String> {
    let mut lines = Vec::new();
    for account in 0..6 {
        let ip = format!("198.51.100.{}", 10 + account);
        let base = account * 7;
        let call = account % 2 == 0;
        lines.push(format!(r#"{{"id":"g{account}a","ts":"{}","type":"login","account":"c{account}","method":"password","success":true,"ctx":{{"ip":"{ip}","device_id":"d{account}"}}}}"#, at(base)));
        lines.push(format!(r#"{{"id":"g{account}b","ts":"{}","type":"api_key.created","account":"c{account}","key_id":"k{account}","scopes":["read","trade"],"ip_allowlist":["{ip}/32"],"step_up":"passkey","ctx":{{"ip":"{ip}"}}}}"#, at(base + 1)));
        lines.push(format!(r#"{{"id":"g{account}c","ts":"{}","type":"api_key.updated","account":"c{account}","key_id":"k{account}","scopes":["read","trade","withdraw"],"ip_allowlist":["203.0.113.{account}/32"],"step_up":"totp","ctx":{{"ip":"{ip}","call_active":{call}}}}}"#, at(base + 2)));
        lines.push(format!(r#"{{"id":"g{account}d","ts":"{}","type":"address.added","account":"c{account}","address":"T{account}","asset":"USDT","network":"TRX","step_up":"passkey","ctx":{{"ip":"{ip}"}}}}"#, at(base + 3)));
        lines.push(format!(r#"{{"id":"g{account}e","ts":"{}","type":"withdrawal.requested","account":"c{account}","withdrawal_id":"w{account}","asset":"USDT","network":"TRX","address":"T{account}","amount":"900","amount_usd":900.0,"key_id":"k{account}","ctx":{{"ip":"203.0.113.{account}"}}}}"#, at(base + 4)));
    }
    lines
}

async fn http_ingest_in_small_batches_decides_like_a_file_replay(backend: Backend) {
    let feed = generated_feed();
    let mut engine =
        portcullis_engine::Engine::new(portcullis_engine::Policy::default_policy().unwrap());
    let expected: Vec<serde_json::Value> = feed
        .iter()
        .filter_map(|line| {
            match engine.process(&portcullis_core::contract::parse_line(line).unwrap()) {
                portcullis_engine::Outcome::Decided(decision, _) => {
                    Some(serde_json::from_str(&decision.to_json_line()).unwrap())
                }
                _ => None,
            }
        })
        .collect();
    let server = TestServer::start(backend).await;
    let client = server.operator("integration").await;
    let mut decided = Vec::new();
    for batch in feed.chunks(3) {
        let reply = client
            .post_raw(
                "/v1/events",
                batch.join("\n").into_bytes(),
                "application/x-ndjson",
            )
            .await;
        decided.extend(reply.body["decisions"].as_array().unwrap().iter().cloned());
    }
    assert_eq!(decided.len(), 24);
    assert_eq!(
        decided, expected,
        "the service decides exactly as the replay does"
    );
}

/// The in-process engine's decisions for `lines`, as JSON.
fn replayed(engine: &mut portcullis_engine::Engine, lines: &[String]) -> Vec<serde_json::Value> {
    lines
        .iter()
        .filter_map(|line| {
            match engine.process(&portcullis_core::contract::parse_line(line).unwrap()) {
                portcullis_engine::Outcome::Decided(decision, _) => {
                    Some(serde_json::from_str(&decision.to_json_line()).unwrap())
                }
                _ => None,
            }
        })
        .collect()
}

async fn ingest_in_threes(server: &TestServer, lines: &[String]) -> Vec<serde_json::Value> {
    let client = server.operator("integration").await;
    let mut decided = Vec::new();
    for batch in lines.chunks(3) {
        let reply = client
            .post_raw(
                "/v1/events",
                batch.join("\n").into_bytes(),
                "application/x-ndjson",
            )
            .await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        decided.extend(reply.body["decisions"].as_array().unwrap().iter().cloned());
    }
    decided
}

async fn a_restart_resumes_from_the_checkpoint_and_decides_like_a_full_replay(backend: Backend) {
    let feed = generated_feed();
    // 15 lines in batches of three: checkpoints after 6 and 12; the last three are applied
    // but not checkpointed when the crash comes.
    let (before_crash, rest) = feed.split_at(15);
    let (only_logged, after_crash) = rest.split_first().unwrap();
    assert!(
        only_logged.contains(r#""type":"login""#),
        "asks for no decision"
    );
    let mut engine =
        portcullis_engine::Engine::new(portcullis_engine::Policy::default_policy().unwrap());
    let expected = replayed(&mut engine, &feed);
    let configure = |config: &mut portcullis_server::config::Config| {
        config.risk_checkpoint_every_events = 4;
        config.risk_checkpoint_interval_s = 0;
        // No background catch-up in between: each batch is applied by its own request.
        config.refresh_interval_ms = 3_600_000;
    };
    let server = TestServer::start(backend).await;
    let (dir, url, clock) = server.stop().await;
    let server = TestServer::start_on_with(dir, url, clock, configure).await;
    assert_eq!(server.app.risk.start_report().checkpoint_seq, None);
    let mut decided = ingest_in_threes(&server, before_crash).await;
    assert_eq!(server.app.risk.checkpoints_written(), 2);
    // Appended to the log, not yet applied: the crash comes between the two steps.
    server.log_without_deciding(only_logged).await;

    let (dir, url, clock) = server.crash().await;
    let server = TestServer::start_on_with(dir, url, clock, configure).await;
    let report = server.app.risk.start_report();
    let checkpoint_seq = report.checkpoint_seq.expect("started from a checkpoint");
    assert_eq!(
        report.replayed,
        16 - checkpoint_seq as u64,
        "only the log after the checkpoint is replayed"
    );
    assert_eq!(report.replayed, 4, "{report:?}");
    let stats = server.app.risk.stats().await;
    assert_eq!(stats.events, 16, "nothing lost, nothing applied twice");
    decided.extend(ingest_in_threes(&server, after_crash).await);
    assert_eq!(
        decided, expected,
        "the same decisions as one uninterrupted replay"
    );

    // A graceful stop checkpoints everything: the next start replays nothing.
    let (dir, url, clock) = server.stop().await;
    let server = TestServer::start_on_with(dir, url, clock, configure).await;
    let report = server.app.risk.start_report();
    assert_eq!(report.replayed, 0, "{report:?}");
    assert!(report.checkpoint_seq.unwrap() > checkpoint_seq);
    let metrics = server.admin().get("/metrics").await;
    assert!(
        metrics
            .text
            .contains("portcullis_engine_replayed_at_start 0"),
        "{}",
        metrics.text
    );
    let next = format!(
        r#"{{"id":"n1","ts":"{}","type":"withdrawal.requested","account":"c2","withdrawal_id":"wn","asset":"USDT","network":"TRX","address":"T2","amount":"50","amount_usd":50.0,"key_id":"k2","ctx":{{"ip":"203.0.113.2"}}}}"#,
        at(200)
    );
    let reply = server
        .operator("integration")
        .await
        .post_raw(
            "/v1/decisions",
            next.clone().into_bytes(),
            "application/json",
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(vec![reply.body], replayed(&mut engine, &[next]));
}

on_both_backends!(
    ingest_reports_lines_and_ignores_duplicates,
    decisions_are_synchronous_stored_and_survive_a_restart,
    the_key_authoritys_changes_reach_the_engine,
    http_ingest_in_small_batches_decides_like_a_file_replay,
    the_policy_reloads_without_a_restart_and_a_bad_one_is_refused,
    a_restart_resumes_from_the_checkpoint_and_decides_like_a_full_replay,
);
