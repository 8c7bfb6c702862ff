//! Propagation and overrides through HTTP on both backends: a confirmed fraud holds a second
//! victim's pending new address (the crew's) and a third victim's pending widening that
//! allow-listed the crew's server; a `suppress` override stops the first until it expires (the
//! manual clock); a `force` needs its own permission, holds what the entity links (two hops out,
//! as a confirmation), wins over a suppress, and every override and release is audited.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::guard::{HOUR, account_with_key, code_of, enrol_totp, feed, grant, signs_in_from};
use common::{Backend, TestServer};
use serde_json::json;

/// A customer with a key, signed in from `ip` (if any), with an authenticator and a step-up
/// grant to spend.
async fn stepped_up(server: &TestServer, account: &str, ip: Option<&str>) -> (String, String) {
    let (key_id, _, _) = account_with_key(server, account).await;
    if let Some(ip) = ip {
        signs_in_from(server, account, ip).await;
    }
    let app = enrol_totp(server, account).await;
    (key_id, grant(server, account, &app).await)
}

/// `account` asks to allow-list the crew's address: pending, its id.
async fn pending_address(server: &TestServer, account: &str) -> String {
    let (_, token) = stepped_up(server, account, None).await;
    let body = json!({ "address": "TQcrew", "asset": "USDT", "network": "TRX", "label": "new", "step_up_grant": token });
    let path = format!("/v1/accounts/{account}/addresses");
    pending_id(&server.admin().post(&path, &body).await)
}

/// The id of a change the reply says is pending.
fn pending_id(reply: &common::Reply) -> String {
    assert_eq!(reply.status, 202, "{}", reply.text);
    assert_eq!(reply.body["status"], "pending", "{}", reply.text);
    reply.body["id"].as_str().unwrap().to_owned()
}

/// `account`, signed in from the crew's server, asks to allow-list it on a withdrawing key:
/// pending, its id.
async fn pending_widening(server: &TestServer, account: &str) -> String {
    pending_widening_from(server, account, "198.51.100.66").await
}

/// `account`, signed in from `ip`, asks to allow-list it on a withdrawing key: pending, its id.
async fn pending_widening_from(server: &TestServer, account: &str, ip: &str) -> String {
    let (key_id, token) = stepped_up(server, account, Some(ip)).await;
    let widen = json!({ "scopes": ["read", "trade", "withdraw"], "ip_allowlist": ["203.0.113.7", ip], "step_up_grant": token });
    pending_id(
        &server
            .admin()
            .patch(&format!("/v1/keys/{key_id}"), &widen)
            .await,
    )
}

/// The first victim's key was pointed at the crew's server and drained into its address; the
/// exchange confirms the fraud (`n` tells confirmations apart).
async fn confirm_fraud(server: &TestServer, n: u32) {
    let now = server.now().to_rfc3339();
    feed(server, &[
        json!({ "id": format!("v1-key-{n}"), "ts": now, "type": "api_key.updated", "account": "victim-1", "key_id": "k-v1", "scopes": ["read", "withdraw"], "ip_allowlist": ["198.51.100.66/32"], "step_up": "sms", "ctx": { "ip": "192.0.2.10" } }),
        json!({ "id": format!("v1-out-{n}"), "ts": now, "type": "withdrawal.requested", "account": "victim-1", "withdrawal_id": format!("w{n}"), "asset": "USDT", "network": "TRX", "address": "TQcrew", "amount": "5000", "amount_usd": 5000.0, "key_id": "k-v1", "ctx": { "ip": "198.51.100.66" } }),
        json!({ "id": format!("v1-fraud-{n}"), "ts": now, "type": "fraud.confirmed", "account": "victim-1", "withdrawal_ids": [format!("w{n}")], "addresses": ["TQcrew"], "from": [], "note": "customer report" }),
    ]).await;
    // The background pass holds what a confirmation links before anything applies.
    server.app.guard.apply_due().await.unwrap();
}

async fn status(server: &TestServer, change: &str) -> (String, String) {
    let reply = server.admin().get(&format!("/v1/changes/{change}")).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    (
        reply.body["status"].as_str().unwrap().to_owned(),
        reply.body["status_detail"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
    )
}

async fn a_suppress_override_stops_propagation_until_it_expires(backend: Backend) {
    let server = TestServer::start(backend).await;
    let address_change = pending_address(&server, "victim-2").await;
    let widening = pending_widening(&server, "victim-3").await;
    let analyst = server.operator("analyst").await;
    // The crew's address is known to the graph from victim-2's request; a reviewer marks it
    // known-good for an hour (say, a payment processor's).
    let expires = (server.now().as_millis() + HOUR).to_string();
    let expires = portcullis_core::time::UnixMillis(expires.parse().unwrap()).to_rfc3339();
    let set = analyst
        .post(
            "/v1/graph/address/TQcrew/override",
            &json!({ "action": "suppress", "expires_at": expires, "note": "processor" }),
        )
        .await;
    assert_eq!(set.status, 201, "{}", set.text);
    assert_eq!(set.body["action"], "suppress");

    confirm_fraud(&server, 1).await;
    let (held, detail) = status(&server, &widening).await;
    assert_eq!(held, "held", "linked through the server: {detail}");
    assert!(
        detail.contains("ip:198.51.100.66 > account:victim-3") && detail.contains("v1-fraud-1"),
        "{detail}"
    );
    assert_eq!(
        status(&server, &address_change).await.0,
        "pending",
        "not through the suppressed address"
    );
    let graph = analyst.get("/v1/graph/address/TQcrew?hops=0").await;
    assert_eq!(
        graph.body["nodes"][0]["override"], "suppress",
        "{}",
        graph.text
    );
    assert!(graph.body["nodes"][0]["mark"].is_null(), "{}", graph.text);

    // An hour later the suppression has expired: the next confirmation goes through it.
    server.clock.advance(2 * HOUR);
    assert!(
        analyst
            .get("/v1/overrides")
            .await
            .body
            .as_array()
            .unwrap()
            .is_empty()
    );
    confirm_fraud(&server, 2).await;
    let (held, detail) = status(&server, &address_change).await;
    assert_eq!(held, "held", "{detail}");
    assert!(
        detail.contains("address:TQcrew > account:victim-2"),
        "{detail}"
    );
    let all = analyst.get("/v1/overrides?all=true").await;
    assert_eq!(all.body.as_array().unwrap().len(), 1, "{}", all.text);

    // Releasing a network hold takes two operators (four-eyes), audited.
    let approved = analyst
        .post(&format!("/v1/changes/{address_change}/release"), &json!({}))
        .await;
    assert_eq!(approved.body["status"], "held", "{}", approved.text);
    let released = server
        .admin()
        .post(&format!("/v1/changes/{address_change}/release"), &json!({}))
        .await;
    assert_eq!(released.status, 200, "{}", released.text);
    let audit = server.admin().get("/v1/audit?limit=1000").await;
    for action in [
        "network.override_set",
        "widening.network_held",
        "widening.release_approved",
        "widening.released",
    ] {
        assert!(audit.text.contains(action), "{action} audited");
    }
}

async fn force_needs_its_permission_holds_what_it_links_and_wins(backend: Backend) {
    let server = TestServer::start(backend).await;
    let widening = pending_widening(&server, "victim-3").await;
    let (admin, analyst) = (server.admin(), server.operator("analyst").await);
    let path = "/v1/graph/ip/198.51.100.66/override";
    let force = json!({ "action": "force", "note": "crew server" });
    assert_eq!(
        code_of(&analyst.post(path, &force).await),
        (403, "forbidden".into())
    );
    let integration = server.operator("integration").await;
    let suppress = json!({ "action": "suppress" });
    assert_eq!(integration.post(path, &suppress).await.status, 403);
    assert_eq!(
        code_of(&admin.post("/v1/graph/ip/192.0.2.99/override", &force).await),
        (404, "unknown_entity".into())
    );
    assert_eq!(
        code_of(&admin.post(path, &json!({ "action": "ban" })).await),
        (400, "invalid_override".into())
    );
    assert_eq!(
        code_of(&admin.post("/v1/graph/ip/not-an-ip/override", &force).await),
        (400, "invalid_entity".into())
    );
    assert_eq!(
        code_of(
            &admin
                .post(
                    path,
                    &json!({ "action": "force", "expires_at": "2000-01-01T00:00:00Z" })
                )
                .await
        ),
        (400, "invalid_expiry".into())
    );

    let set = admin.post(path, &force).await;
    assert_eq!(set.status, 201, "{}", set.text);
    let (held, detail) = status(&server, &widening).await;
    assert_eq!(held, "held", "{detail}");
    assert!(
        detail.contains("override:force ip:198.51.100.66"),
        "{detail}"
    );

    // A suppress beside it: force wins.
    assert_eq!(analyst.post(path, &suppress).await.status, 201);
    let graph = analyst.get("/v1/graph/ip/198.51.100.66?hops=0").await;
    let node = &graph.body["nodes"][0];
    assert_eq!(node["override"], "force", "{node}");
    assert_eq!(node["mark"]["hops"], 0, "{node}");
    assert_eq!(
        analyst
            .get("/v1/overrides")
            .await
            .body
            .as_array()
            .unwrap()
            .len(),
        2
    );

    // Lifting a force needs the permission too; lifting is audited.
    assert_eq!(
        analyst.delete(&format!("{path}?action=force")).await.status,
        403
    );
    let lifted = admin.delete(&format!("{path}?action=force")).await;
    assert_eq!(lifted.status, 200, "{}", lifted.text);
    assert_eq!(
        code_of(&admin.delete(&format!("{path}?action=force")).await).0,
        404
    );
    let graph = analyst.get("/v1/graph/ip/198.51.100.66?hops=0").await;
    assert_eq!(graph.body["nodes"][0]["override"], "suppress");
    let audit = admin.get("/v1/audit?limit=1000").await;
    assert!(audit.text.contains("network.override_lifted"), "audited");
    assert!(audit.text.contains("network.override_set"), "audited");
}

/// A force counts as a confirmation: it reaches two hops, so forcing a mule account holds the
/// pending widening of a customer who signed in from the mule's IP, and no one else's.
async fn a_force_reaches_two_hops_as_a_confirmation_does(backend: Backend) {
    let server = TestServer::start(backend).await;
    signs_in_from(&server, "crew-mule", "198.51.100.88").await;
    let linked = pending_widening_from(&server, "victim-4", "198.51.100.88").await;
    let unrelated = pending_widening_from(&server, "bystander", "192.0.2.44").await;
    let set = (server.admin())
        .post(
            "/v1/graph/account/crew-mule/override",
            &json!({ "action": "force", "note": "mule" }),
        )
        .await;
    assert_eq!(set.status, 201, "{}", set.text);
    let (held, detail) = status(&server, &linked).await;
    assert_eq!(held, "held", "{detail}");
    assert!(
        detail.contains("account:crew-mule > ip:198.51.100.88 > account:victim-4"),
        "{detail}"
    );
    assert!(
        detail.contains("override:force account:crew-mule"),
        "{detail}"
    );
    assert_eq!(status(&server, &unrelated).await.0, "pending");
    // The graph shows the mark two hops out, with its provenance.
    let graph = (server.operator("analyst").await)
        .get("/v1/graph/account/victim-4?hops=0")
        .await;
    let mark = &graph.body["nodes"][0]["mark"];
    assert_eq!(mark["hops"], 2, "{}", graph.text);
}

on_both_backends!(
    a_suppress_override_stops_propagation_until_it_expires,
    force_needs_its_permission_holds_what_it_links_and_wins,
    a_force_reaches_two_hops_as_a_confirmation_does,
);
