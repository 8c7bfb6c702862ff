//! Risk policy versions over real HTTP on both backends: validation as you type, maker-checker
//! (a proposal published only by a different operator; self-approval refused), the published
//! version in force at once and after a restart, rollback under the same rule, the configured
//! file refused as a reload once a version is published, a second process on the same database
//! taking the published version on its refresh, and the audit entries of every step.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{Backend, Client, TestServer};
use serde_json::{Value, json};
use std::sync::Arc;

const HEADER: &str = "[thresholds]\nchallenge = 30\nhold = 60\nblock = 85\n";

/// A policy with one rule holding withdrawals of at least `usd`.
fn holds_from(usd: u32) -> String {
    format!(
        "{HEADER}[[rule]]\nid = \"large_withdrawal\"\ndescription = \"x\"\nwhen = \"amount_usd >= {usd}.0\"\nscore = 60\n"
    )
}

fn at(minutes: i64) -> String {
    portcullis_core::time::UnixMillis(common::START.as_millis() + minutes * 60_000).to_rfc3339()
}

fn withdrawal(id: &str, minutes: i64, account: &str, usd: u32) -> Value {
    json!({ "id": id, "ts": at(minutes), "type": "withdrawal.requested", "account": account,
        "withdrawal_id": format!("w_{id}"), "asset": "USDT", "network": "TRX", "address": "TQ5xyz",
        "amount": usd.to_string(), "amount_usd": f64::from(usd), "ctx": { "ip": "198.51.100.7" } })
}

/// An admin created through the API: (id, client).
async fn admin(server: &TestServer) -> (String, Client) {
    let name = format!("admin-{}", portcullis_app::random::alphanumeric(6).unwrap());
    let created = server
        .admin()
        .post("/v1/operators", &json!({ "name": name, "role": "admin" }))
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
    let id = created.body["operator"]["id"].as_str().unwrap().to_owned();
    (id, server.client(created.body["token"].as_str().unwrap()))
}

fn code(reply: &common::Reply) -> &str {
    reply.body["error"]["code"].as_str().unwrap_or("")
}

async fn decide(client: &Client, event: &Value) -> String {
    let reply = client.post("/v1/decisions", event).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    reply.body["decision"].as_str().unwrap().to_owned()
}

async fn in_force(client: &Client) -> Value {
    let reply = client.get("/v1/policy").await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    reply.body
}

async fn audited(server: &TestServer, action: &str) -> Vec<Value> {
    let audit = server.admin().get("/v1/audit?limit=1000").await;
    let entries = audit.body.as_array().unwrap().iter();
    entries.filter(|e| e["action"] == action).cloned().collect()
}

async fn a_draft_is_validated_as_typed_with_its_rule_and_position(backend: Backend) {
    let server = TestServer::start(backend).await;
    let analyst = server.operator("analyst").await;
    let broken = holds_from(1000).replace("amount_usd >= 1000.0", "amount_usd >= ");
    let reply = analyst
        .post("/v1/policy/validate", &json!({ "text": broken }))
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.body["valid"], false);
    assert_eq!(
        reply.body["error"]["rule"], "large_withdrawal",
        "{}",
        reply.text
    );
    assert_eq!(reply.body["error"]["line"], 1, "{}", reply.text);
    assert!(
        reply.body["error"]["column"].as_i64().unwrap() > 0,
        "{}",
        reply.text
    );
    let unknown = holds_from(1000).replace("amount_usd", "amount_eur");
    let reply = analyst
        .post("/v1/policy/validate", &json!({ "text": unknown }))
        .await;
    assert_eq!(
        (
            reply.body["valid"].clone(),
            reply.body["error"]["rule"].clone()
        ),
        (json!(false), json!("large_withdrawal"))
    );
    let shadow = format!("{}shadow = true\n", holds_from(1000));
    let reply = analyst
        .post("/v1/policy/validate", &json!({ "text": shadow }))
        .await;
    assert_eq!(
        (
            reply.body["valid"].clone(),
            reply.body["rules"].clone(),
            reply.body["shadow_rules"].clone()
        ),
        (json!(true), json!(1), json!(1))
    );
    // Proposing needs `manage_policy`; a draft that does not load is refused with its reason.
    let refused = analyst
        .post("/v1/policy/versions", &json!({ "text": holds_from(1000) }))
        .await;
    assert_eq!(refused.status, 403, "{}", refused.text);
    let (_, maker) = admin(&server).await;
    let bad = maker
        .post("/v1/policy/versions", &json!({ "text": broken }))
        .await;
    assert_eq!(
        (bad.status, code(&bad)),
        (400, "invalid_policy"),
        "{}",
        bad.text
    );
    assert!(
        bad.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("large_withdrawal")
    );
    assert!(
        maker
            .get("/v1/policy/versions")
            .await
            .body
            .as_array()
            .unwrap()
            .is_empty()
    );
}

async fn a_second_operator_publishes_and_rollback_follows_the_same_rule(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (maker_id, maker) = admin(&server).await;
    let (checker_id, checker) = admin(&server).await;
    let feed = server.operator("integration").await;
    assert!(
        in_force(&feed).await["version"].is_null(),
        "the configured policy"
    );
    let before = decide(&feed, &withdrawal("w1", 1, "acc_a", 1500)).await;
    assert!(before == "allow" || before == "challenge", "{before}");

    let proposed = maker
        .post(
            "/v1/policy/versions",
            &json!({ "text": holds_from(1000), "note": "hold large" }),
        )
        .await;
    assert_eq!(proposed.status, 201, "{}", proposed.text);
    assert_eq!(
        (
            proposed.body["version"].clone(),
            proposed.body["status"].clone()
        ),
        (json!(1), json!("proposed"))
    );
    assert_eq!(proposed.body["proposed_by"], maker_id.as_str());
    let waiting = decide(&feed, &withdrawal("w2", 2, "acc_a", 1500)).await;
    assert!(
        waiting == "allow" || waiting == "challenge",
        "not in force yet: {waiting}"
    );

    let own = maker
        .post("/v1/policy/versions/1/approve", &json!({}))
        .await;
    assert_eq!(
        (own.status, code(&own)),
        (403, "policy_self_approval"),
        "{}",
        own.text
    );
    let analyst = server.operator("analyst").await;
    assert_eq!(
        analyst
            .post("/v1/policy/versions/1/approve", &json!({}))
            .await
            .status,
        403
    );
    let published = checker
        .post("/v1/policy/versions/1/approve", &json!({}))
        .await;
    assert_eq!(published.status, 200, "{}", published.text);
    assert_eq!(
        (
            published.body["status"].clone(),
            published.body["approved_by"].clone()
        ),
        (json!("published"), json!(checker_id))
    );
    assert_eq!(in_force(&feed).await["version"], 1);
    assert_eq!(
        decide(&feed, &withdrawal("w3", 3, "acc_a", 1500)).await,
        "hold",
        "in force at once"
    );
    let twice = checker
        .post("/v1/policy/versions/1/approve", &json!({}))
        .await;
    assert_eq!(
        (twice.status, code(&twice)),
        (409, "policy_published"),
        "{}",
        twice.text
    );

    // Version 2 holds from 5,000 only; then a rollback proposes version 1's text again.
    let second = checker
        .post("/v1/policy/versions", &json!({ "text": holds_from(5000) }))
        .await;
    assert_eq!(second.body["version"], 2, "{}", second.text);
    assert_eq!(
        maker
            .post("/v1/policy/versions/2/approve", &json!({}))
            .await
            .status,
        200
    );
    assert_eq!(
        decide(&feed, &withdrawal("w4", 4, "acc_a", 1500)).await,
        "allow"
    );
    let never = maker
        .post("/v1/policy/versions", &json!({ "text": holds_from(9000) }))
        .await;
    let not_published = checker
        .post("/v1/policy/versions/3/rollback", &json!({}))
        .await;
    assert_eq!(
        (never.status, code(&not_published)),
        (201, "invalid_policy"),
        "{}",
        not_published.text
    );
    let current = maker
        .post("/v1/policy/versions/2/rollback", &json!({}))
        .await;
    assert_eq!(current.status, 409, "{}", current.text);
    let rollback = maker
        .post("/v1/policy/versions/1/rollback", &json!({ "note": "back" }))
        .await;
    assert_eq!(rollback.status, 201, "{}", rollback.text);
    assert_eq!(
        (
            rollback.body["version"].clone(),
            rollback.body["rollback_of"].clone()
        ),
        (json!(4), json!(1))
    );
    let own = maker
        .post("/v1/policy/versions/4/approve", &json!({}))
        .await;
    assert_eq!(code(&own), "policy_self_approval");
    assert_eq!(
        checker
            .post("/v1/policy/versions/4/approve", &json!({}))
            .await
            .status,
        200
    );
    let now = in_force(&feed).await;
    assert_eq!(
        (now["version"].clone(), now["text"].clone()),
        (json!(4), json!(holds_from(1000)))
    );
    assert_eq!(
        decide(&feed, &withdrawal("w5", 5, "acc_a", 1500)).await,
        "hold"
    );

    let reload = server.admin().post("/v1/policy/reload", &json!({})).await;
    assert_eq!(
        (reload.status, code(&reload)),
        (409, "policy_version_in_force"),
        "{}",
        reload.text
    );

    let proposals = audited(&server, "policy.proposed").await;
    let makers: Vec<&str> = proposals
        .iter()
        .map(|e| e["actor"].as_str().unwrap())
        .collect();
    assert_eq!(
        makers,
        vec![maker_id.as_str(), checker_id.as_str(), maker_id.as_str()]
    );
    let publications = audited(&server, "policy.published").await;
    let targets: Vec<(&str, &str)> = publications
        .iter()
        .map(|e| (e["actor"].as_str().unwrap(), e["target"].as_str().unwrap()))
        .collect();
    assert_eq!(
        targets,
        vec![
            (checker_id.as_str(), "policy:v1"),
            (maker_id.as_str(), "policy:v2"),
            (checker_id.as_str(), "policy:v4")
        ]
    );
    let rollbacks = audited(&server, "policy.rollback_proposed").await;
    assert_eq!(rollbacks.len(), 1);
    assert_eq!(
        (
            rollbacks[0]["actor"].as_str(),
            rollbacks[0]["details"]["rollback_of"].clone()
        ),
        (Some(maker_id.as_str()), json!(1))
    );

    // A restart keeps the published version, over the configured policy.
    let (dir, url, clock) = server.stop().await;
    let server = TestServer::start_on(dir, url, clock).await;
    let feed = server.operator("integration").await;
    assert_eq!(in_force(&feed).await["version"], 4);
    assert_eq!(
        decide(&feed, &withdrawal("w6", 6, "acc_a", 1500)).await,
        "hold"
    );
}

async fn another_process_on_the_database_takes_the_published_version(backend: Backend) {
    let first = TestServer::start(backend).await;
    let other_dir = tempfile::tempdir().unwrap();
    // The same master keyring (the data directory's files), as processes of one service share.
    for entry in std::fs::read_dir(first.dir.path()).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name().to_string_lossy().into_owned();
        if entry.file_type().unwrap().is_file() && !name.starts_with("portcullis.db") {
            std::fs::copy(entry.path(), other_dir.path().join(&name)).unwrap();
        }
    }
    let clock = Arc::new(portcullis_app::clock::ManualClock::new(common::START));
    let second = TestServer::start_on(other_dir, first.database_url.clone(), clock).await;
    let (_, maker) = admin(&first).await;
    let (_, checker) = admin(&first).await;
    let proposed = maker
        .post("/v1/policy/versions", &json!({ "text": holds_from(1000) }))
        .await;
    assert_eq!(proposed.status, 201, "{}", proposed.text);
    assert_eq!(
        checker
            .post("/v1/policy/versions/1/approve", &json!({}))
            .await
            .status,
        200
    );
    // The refresh pass of the other process (called here rather than waited for).
    second.app.risk.refresh_policy().await.unwrap();
    let seen = second.app.risk.in_force().await;
    assert_eq!(
        (seen.version, seen.text.as_ref()),
        (Some(1), holds_from(1000).as_str())
    );
    assert!(
        !second.app.risk.refresh_policy().await.unwrap(),
        "nothing newer"
    );
}

on_both_backends!(
    a_draft_is_validated_as_typed_with_its_rule_and_position,
    a_second_operator_publishes_and_rollback_follows_the_same_rule,
    another_process_on_the_database_takes_the_published_version,
);
