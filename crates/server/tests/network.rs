//! The entity graph through HTTP on both backends: a confirmed fraud holds a second victim's
//! pending widening that allow-listed the crew's server, campaign alerts are listed, read and
//! confirmed by operators only, and the graph around an entity is bounded.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::guard::{account_with_key, code_of, enrol_totp, feed, grant, signs_in_from};
use common::{Backend, TestServer};
use serde_json::{Value, json};

/// The second victim allow-lists the crew's server on a withdrawing key: the pending change.
async fn victim_widens_to_the_crews_server(server: &TestServer) -> String {
    let (key_id, _, _) = account_with_key(server, "victim-2").await;
    signs_in_from(server, "victim-2", "198.51.100.66").await;
    let app = enrol_totp(server, "victim-2").await;
    let token = grant(server, "victim-2", &app).await;
    let widen = json!({ "scopes": ["read", "trade", "withdraw"], "ip_allowlist": ["203.0.113.7", "198.51.100.66"], "step_up_grant": token });
    let pending = server
        .admin()
        .patch(&format!("/v1/keys/{key_id}"), &widen)
        .await;
    assert_eq!(pending.status, 202, "{}", pending.text);
    assert_eq!(pending.body["status"], "pending", "{}", pending.text);
    pending.body["id"].as_str().unwrap().to_owned()
}

/// The first victim's key was pointed at the same server and drained; the exchange confirms
/// the fraud, and the background pass holds what the confirmation links before anything
/// applies.
async fn fraud_through_the_crews_server_confirmed(server: &TestServer) {
    let now = server.now().to_rfc3339();
    feed(server, &[
        json!({ "id": "v1-key", "ts": now, "type": "api_key.updated", "account": "victim-1", "key_id": "k-v1", "scopes": ["read", "withdraw"], "ip_allowlist": ["198.51.100.66/32"], "step_up": "sms", "ctx": { "ip": "192.0.2.10" } }),
        json!({ "id": "v1-out", "ts": now, "type": "withdrawal.requested", "account": "victim-1", "withdrawal_id": "w1", "asset": "USDT", "network": "TRX", "address": "TQcrew", "amount": "5000", "amount_usd": 5000.0, "key_id": "k-v1", "ctx": { "ip": "198.51.100.66" } }),
        json!({ "id": "v1-fraud", "ts": now, "type": "fraud.confirmed", "account": "victim-1", "withdrawal_ids": ["w1"], "addresses": ["TQcrew"], "from": [], "note": "customer report" }),
    ]).await;
    server.app.guard.apply_due().await.unwrap();
}

async fn a_confirmed_fraud_holds_a_linked_victims_pending_widening(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin = server.admin();
    let change = victim_widens_to_the_crews_server(&server).await;
    fraud_through_the_crews_server_confirmed(&server).await;
    let held = admin.get(&format!("/v1/changes/{change}")).await;
    assert_eq!(held.body["status"], "held", "{}", held.text);
    let detail = held.body["status_detail"].as_str().unwrap();
    assert!(
        detail.contains("network: account:victim-1 > ip:198.51.100.66 > account:victim-2")
            && detail.contains("v1-fraud"),
        "{detail}"
    );
    // Held through the same path as any risk hold: it never applies until released.
    server.clock.advance(72 * common::guard::HOUR);
    assert_eq!(server.app.guard.apply_due().await.unwrap(), 0);
    let audit = admin.get("/v1/audit?limit=1000").await;
    assert!(audit.text.contains("widening.network_held"), "audited");

    // The graph shows the path, bounded and validated.
    let analyst = server.operator("analyst").await;
    let graph = analyst.get("/v1/graph/ip/198.51.100.66?hops=2").await;
    assert_eq!(graph.status, 200, "{}", graph.text);
    let values: Vec<&str> = graph.body["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["value"].as_str().unwrap())
        .collect();
    assert!(
        values.contains(&"victim-1") && values.contains(&"victim-2"),
        "{values:?}"
    );
    assert_eq!(graph.body["truncated"], false);
    let ip = &graph.body["nodes"][0];
    assert_eq!(ip["mark"]["hops"], 1, "{ip}");
    assert_eq!(
        code_of(&analyst.get("/v1/graph/ip/198.51.100.66?hops=4").await),
        (400, "invalid_query".into())
    );
    assert_eq!(
        code_of(&analyst.get("/v1/graph/planet/x").await),
        (400, "invalid_entity".into())
    );
    assert_eq!(
        code_of(&analyst.get("/v1/graph/address/Tnobody").await),
        (404, "unknown_entity".into())
    );
    let integration = server.operator("integration").await;
    assert_eq!(
        integration.get("/v1/graph/ip/198.51.100.66").await.status,
        403
    );
}

/// An operator's hold is released by one call; a confirmation that reaches a change an
/// operator held first replaces that hold with its own, so releasing it takes two operators
/// like any hold the engine made.
async fn a_confirmation_takes_over_an_operators_hold(backend: Backend) {
    let server = TestServer::start(backend).await;
    let analyst = server.operator("analyst").await;
    let change = victim_widens_to_the_crews_server(&server).await;
    let held = analyst
        .post(
            &format!("/v1/changes/{change}/hold"),
            &json!({ "reason": "looking into it" }),
        )
        .await;
    assert_eq!(held.body["status"], "held", "{}", held.text);
    fraud_through_the_crews_server_confirmed(&server).await;
    let shown = analyst.get(&format!("/v1/changes/{change}")).await;
    let detail = shown.body["status_detail"].as_str().unwrap();
    assert!(detail.contains("network: account:victim-1"), "{detail}");
    let path = format!("/v1/changes/{change}/release");
    let approved = analyst.post(&path, &json!({})).await;
    assert_eq!(approved.body["status"], "held", "{}", approved.text);
    let alone = analyst.post(&path, &json!({})).await;
    assert_eq!(
        code_of(&alone),
        (403, "second_operator_required".into()),
        "{}",
        alone.text
    );
}

async fn campaign_alerts_are_listed_read_and_confirmed_once(backend: Backend) {
    let server = TestServer::start(backend).await;
    let now = server.now().to_rfc3339();
    let lines: Vec<Value> = (1..=3)
        .map(|n| json!({ "id": format!("w{n}"), "ts": now, "type": "withdrawal.requested", "account": format!("acc-{n}"), "withdrawal_id": format!("w{n}"), "asset": "USDT", "network": "TRX", "address": "TQcampaign", "amount": "100", "amount_usd": 100.0, "ctx": { "ip": format!("192.0.2.{n}") } }))
        .collect();
    feed(&server, &lines).await;
    let analyst = server.operator("analyst").await;
    let alerts = analyst.get("/v1/alerts").await;
    assert_eq!(alerts.status, 200, "{}", alerts.text);
    let alert = alerts
        .body
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["kind"] == "address_campaign")
        .unwrap()
        .clone();
    assert_eq!(alert["value"], "TQcampaign");
    assert_eq!(alert["unrelated_accounts"], 3);
    let events: Vec<&str> = alert["evidence"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event_id"].as_str().unwrap())
        .collect();
    assert_eq!(events, ["w1", "w2", "w3"]);
    let id = alert["id"].as_str().unwrap();
    let one = analyst.get(&format!("/v1/alerts/{id}")).await;
    assert_eq!(one.body["id"], id);
    assert_eq!(
        code_of(&analyst.get("/v1/alerts/al-nothing").await),
        (404, "unknown_alert".into())
    );
    let integration = server.operator("integration").await;
    assert_eq!(integration.get("/v1/alerts").await.status, 403);

    let confirmed = analyst
        .post(
            &format!("/v1/alerts/{id}/confirm"),
            &json!({ "note": "crew wallet" }),
        )
        .await;
    assert_eq!(confirmed.status, 200, "{}", confirmed.text);
    assert!(confirmed.body["confirmed_by"].is_string());
    assert_eq!(
        code_of(
            &analyst
                .post(&format!("/v1/alerts/{id}/confirm"), &json!({}))
                .await
        ),
        (409, "alert_confirmed".into())
    );
    // The confirmation is logged as a fraud.confirmed naming the alert: the next withdrawal
    // to the address is stopped, with the path kept in its features.
    let events = server.logged_events().await;
    assert!(
        events
            .iter()
            .any(|e| e["type"] == "fraud.confirmed" && e["note"] == format!("alert:{id}"))
    );
    let later = server.now().to_rfc3339();
    let decided = analyst.get("/v1/alerts").await;
    assert_eq!(decided.status, 200);
    feed(&server, &[json!({ "id": "w4", "ts": later, "type": "withdrawal.requested", "account": "acc-4", "withdrawal_id": "w4", "asset": "USDT", "network": "TRX", "address": "TQcampaign", "amount": "100", "amount_usd": 100.0 })]).await;
    let decision = server.admin().get("/v1/decisions/w4").await;
    assert_ne!(decision.body["decision"], "allow", "{}", decision.text);
    assert_eq!(
        decision.body["features"]["network_path"], "address:TQcampaign",
        "{}",
        decision.text
    );
}

/// A confirmation that reaches a change the engine already holds, whose release one operator
/// has approved, voids that approval: the change is held again with the new path, and the
/// next operator's release is a first approval, not the second. (The half-done release used
/// to survive the new evidence, still showing the old reason, so one more operator, who never
/// saw the confirmation, completed it.)
async fn a_confirmation_voids_a_first_approval_of_an_engine_hold(backend: Backend) {
    let server = TestServer::start(backend).await;
    let first = server.operator("analyst").await;
    let second = server.operator("analyst").await;
    let change = victim_widens_to_the_crews_server(&server).await;
    fraud_through_the_crews_server_confirmed(&server).await;
    let path = format!("/v1/changes/{change}/release");
    let approved = first.post(&path, &json!({})).await;
    assert_eq!(approved.body["status"], "held", "{}", approved.text);
    assert!(
        approved.body["release_approved_by"].is_string(),
        "{}",
        approved.text
    );

    // The crew strikes again: a second confirmation through the same server.
    let now = server.now().to_rfc3339();
    feed(&server, &[
        json!({ "id": "v1-fraud-2", "ts": now, "type": "fraud.confirmed", "account": "victim-1", "withdrawal_ids": ["w1"], "addresses": ["TQcrew"], "from": [], "note": "second report" }),
    ]).await;
    server.app.guard.apply_due().await.unwrap();
    let shown = second.get(&format!("/v1/changes/{change}")).await;
    assert_eq!(shown.body["status"], "held", "{}", shown.text);
    assert!(
        shown.body["release_approved_by"].is_null(),
        "{}",
        shown.text
    );
    let detail = shown.body["status_detail"].as_str().unwrap();
    assert!(detail.contains("v1-fraud-2"), "{detail}");
    let released = second.post(&path, &json!({})).await;
    assert_eq!(released.body["status"], "held", "{}", released.text);
    assert!(released.body["released_by"].is_null(), "{}", released.text);
}

async fn a_confirmation_voids_a_first_approval_of_a_held_withdrawal(backend: Backend) {
    let server = TestServer::start(backend).await;
    let first = server.operator("analyst").await;
    let second = server.operator("analyst").await;
    victim_widens_to_the_crews_server(&server).await;
    // An administrator forces the crew's server: the second victim's withdrawal from it is held.
    let forced = server
        .admin()
        .post(
            "/v1/graph/ip/198.51.100.66/override",
            &json!({ "action": "force", "note": "crew server" }),
        )
        .await;
    assert_eq!(forced.status, 201, "{}", forced.text);
    let now = server.now().to_rfc3339();
    feed(&server, &[
        json!({ "id": "v2-out", "ts": now, "type": "withdrawal.requested", "account": "victim-2", "withdrawal_id": "w2", "asset": "USDT", "network": "TRX", "address": "TQelsewhere", "amount": "40", "amount_usd": 40.0, "ctx": { "ip": "198.51.100.66" } }),
    ]).await;
    server.app.guard.apply_due().await.unwrap();
    let decision = server.admin().get("/v1/decisions/v2-out").await;
    assert_eq!(decision.body["decision"], "hold", "{}", decision.text);
    let path = "/v1/withdrawals/v2-out/release";
    let approved = first.post(path, &json!({})).await;
    assert_eq!(approved.body["state"], "approved", "{}", approved.text);

    // Then the exchange confirms a fraud through the same server: the approval came before it.
    fraud_through_the_crews_server_confirmed(&server).await;
    let review = second.get("/v1/withdrawals/v2-out/review").await;
    assert_eq!(review.body["state"], "held", "{}", review.text);
    assert!(review.body["approved_by"].is_null(), "{}", review.text);
    let audit = server.admin().get("/v1/audit?limit=1000").await;
    let voided = audit
        .body
        .as_array()
        .unwrap()
        .iter()
        .find(|entry| entry["action"] == "withdrawal.release_approval_voided");
    assert!(
        voided.is_some_and(|entry| entry.to_string().contains("v1-fraud")),
        "the voiding is audited with the path: {}",
        audit.text
    );
    // The second operator's click is a first approval again, not the release.
    let again = second.post(path, &json!({})).await;
    assert_eq!(again.body["state"], "approved", "{}", again.text);
    assert!(again.body["resolved_by"].is_null(), "{}", again.text);
}

on_both_backends!(
    a_confirmed_fraud_holds_a_linked_victims_pending_widening,
    a_confirmation_voids_a_first_approval_of_a_held_withdrawal,
    a_confirmation_takes_over_an_operators_hold,
    a_confirmation_voids_a_first_approval_of_an_engine_hold,
    campaign_alerts_are_listed_read_and_confirmed_once,
);
