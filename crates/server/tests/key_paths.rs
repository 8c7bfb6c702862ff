//! Every key path through the guard, over real HTTP on both backends: import and rotation obey
//! the terms of a widening (an allow-list for `withdraw`, the freeze, the lock, a step-up grant
//! to rotate a fund-moving key's secret), and creation, import and rotation are announced.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::guard::{HOUR, account_with_key, code_of, enrol_totp, grant};
use common::{Backend, Client, TestServer};
use serde_json::{Value, json};

/// A server that announces on a webhook (never reached: the tests read the outbox).
async fn announcing(backend: Backend) -> TestServer {
    TestServer::start_with(backend, |config| {
        config.webhook_url = "http://127.0.0.1:9/hook".into();
        config.webhook_secret = portcullis_server::notify::Sensitive::new("whsec-test-0123456789");
        config.notify_interval_ms = 3_600_000;
    })
    .await
}

/// Whether a notice of type `kind` was queued for `account` (a webhook's subject is its type).
async fn announced(admin: &Client, account: &str, kind: &str) -> bool {
    let listed = admin.get(&format!("/v1/outbox?account={account}")).await;
    assert_eq!(listed.status, 200, "{}", listed.text);
    listed
        .body
        .as_array()
        .unwrap()
        .iter()
        .any(|m| m["subject"] == kind)
}

fn import_body(account: &str, api_key: &str, scopes: Value, allowlist: Value) -> Value {
    json!({ "account": account, "label": "migrated bot", "api_key": api_key, "secret": "an-exchange-secret-0123456789", "scopes": scopes, "ip_allowlist": allowlist })
}

/// Imports a `withdraw` key allow-listed to one host for `account`; returns its key id.
async fn import_payout_key(admin: &Client, account: &str, api_key: &str) -> String {
    let body = import_body(
        account,
        api_key,
        json!(["read", "withdraw"]),
        json!(["203.0.113.7"]),
    );
    let imported = admin.post("/v1/keys/import", &body).await;
    assert_eq!(imported.status, 201, "{}", imported.text);
    imported.body["key_id"].as_str().unwrap().to_owned()
}

async fn import_obeys_the_terms_of_any_key(backend: Backend) {
    let server = announcing(backend).await;
    let admin = server.admin();
    account_with_key(&server, "acc_i").await;
    assert!(announced(&admin, "acc_i", "key.created").await);

    let open = import_body(
        "acc_i",
        "IMPORTEDKEY000000001",
        json!(["read", "withdraw"]),
        json!([]),
    );
    let refused = admin.post("/v1/keys/import", &open).await;
    assert_eq!(code_of(&refused), (400, "withdraw_needs_allowlist".into()));

    let frozen = admin.post("/v1/accounts/acc_i/freeze", &json!({})).await;
    assert_eq!(frozen.status, 200, "{}", frozen.text);
    let withdraw = import_body(
        "acc_i",
        "IMPORTEDKEY000000002",
        json!(["read", "withdraw"]),
        json!(["203.0.113.7"]),
    );
    let during = admin.post("/v1/keys/import", &withdraw).await;
    assert_eq!(
        code_of(&during),
        (423, "account_protected".into()),
        "{}",
        during.text
    );
    let read = import_body("acc_i", "IMPORTEDKEY000000003", json!(["read"]), json!([]));
    let reading = admin.post("/v1/keys/import", &read).await;
    assert_eq!(
        reading.status, 201,
        "a key that cannot move money: {}",
        reading.text
    );
    assert!(announced(&admin, "acc_i", "key.imported").await);
    let keys = admin.get("/v1/accounts/acc_i/keys").await;
    assert_eq!(
        keys.body.as_array().unwrap().len(),
        2,
        "nothing refused was stored"
    );
}

async fn rotating_a_fund_moving_key_needs_a_step_up(backend: Backend) {
    let server = announcing(backend).await;
    let admin = server.admin();
    let (trade_key, _, _) = account_with_key(&server, "acc_r").await;
    let app = enrol_totp(&server, "acc_r").await;
    let token = grant(&server, "acc_r", &app).await;
    let created = admin
        .post("/v1/accounts/acc_r/keys", &json!({ "label": "payouts", "scopes": ["read", "withdraw"], "ip_allowlist": ["203.0.113.7"], "step_up_grant": token }))
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
    let payouts = created.body["key"]["key_id"].as_str().unwrap().to_owned();
    // Its announcement offers a freeze link beside the cancel link.
    let filter = portcullis_app::ports::OutboxFilter {
        account: Some("acc_r".into()),
        status: None,
    };
    let queued = server.app.store.list_outbox(&filter, 50).await.unwrap();
    let pending = queued
        .iter()
        .find(|entry| entry.message.subject == "widening.pending")
        .unwrap();
    let body: Value = serde_json::from_str(&pending.message.body_text).unwrap();
    assert!(
        body["freeze_url"]
            .as_str()
            .unwrap()
            .contains("/freeze/pfz_"),
        "{body}"
    );
    assert!(body["cancel_url"].as_str().unwrap().contains("/cancel/"));
    server.clock.advance(25 * HOUR);
    // The server's own background pass may apply it first: either way it is applied once.
    server.app.guard.apply_due().await.unwrap();
    assert_eq!(
        common::guard::scopes(&admin, &payouts).await,
        json!(["read", "withdraw"])
    );

    // A trading key's secret is rotated on the operator's word alone, and announced.
    let rotated = admin
        .post(&format!("/v1/keys/{trade_key}/rotate"), &json!({}))
        .await;
    assert_eq!(rotated.status, 200, "{}", rotated.text);
    assert!(announced(&admin, "acc_r", "key.rotated").await);

    // A key that can withdraw needs the customer's confirmation.
    let path = format!("/v1/keys/{payouts}/rotate");
    let bare = admin.post(&path, &json!({})).await;
    assert_eq!(
        code_of(&bare),
        (403, "step_up_required".into()),
        "{}",
        bare.text
    );
    let token = grant(&server, "acc_r", &app).await;
    let confirmed = admin.post(&path, &json!({ "step_up_grant": token })).await;
    assert_eq!(confirmed.status, 200, "{}", confirmed.text);
    assert!(confirmed.body["secret"].as_str().is_some());
    let again = admin.post(&path, &json!({ "step_up_grant": token })).await;
    assert_eq!(
        code_of(&again),
        (403, "grant_spent".into()),
        "{}",
        again.text
    );

    // Not while the settings are locked.
    let until = server.now().plus_millis(72 * HOUR).to_rfc3339();
    let locked = admin
        .post(
            "/v1/accounts/acc_r/settings-lock",
            &json!({ "until": until }),
        )
        .await;
    assert_eq!(locked.status, 200, "{}", locked.text);
    let token = grant(&server, "acc_r", &app).await;
    let during = admin.post(&path, &json!({ "step_up_grant": token })).await;
    assert_eq!(
        code_of(&during),
        (423, "account_protected".into()),
        "{}",
        during.text
    );
}

/// A fund-moving key of an account with no authenticator (an imported payout key, before the
/// customer enrolled anything) is not rotated on an operator token's word alone: whoever
/// holds the new secret can withdraw at once, with no cool-down and no engine, so it takes the
/// customer's confirmation like a widening, and with nothing to confirm with it is refused
/// (403 `step_up_not_enrolled`). (A leaked integration token used to get such a key's new
/// secret with no step-up at all.) A trading key still rotates on the operator's word.
async fn a_fund_moving_key_is_not_rotated_without_a_factor(backend: Backend) {
    let server = announcing(backend).await;
    let admin = server.admin();
    let (trade_key, _, _) = account_with_key(&server, "acc_nf").await;
    let payouts = import_payout_key(&admin, "acc_nf", "IMPORTEDKEY000000009").await;
    let integration = server.operator("integration").await;
    let rotated = integration
        .post(&format!("/v1/keys/{payouts}/rotate"), &json!({}))
        .await;
    assert_eq!(
        code_of(&rotated),
        (403, "step_up_not_enrolled".into()),
        "{}",
        rotated.text
    );
    assert!(rotated.body.get("secret").is_none(), "{}", rotated.text);
    let trading = integration
        .post(&format!("/v1/keys/{trade_key}/rotate"), &json!({}))
        .await;
    assert_eq!(trading.status, 200, "{}", trading.text);
}

/// An operator token enrols the customer's first authenticator and steps up with it at once:
/// the withdraw key's new secret is refused until that factor is a cool-down old.
async fn a_first_factor_unlocks_a_fund_moving_rotation_only_after_the_cool_down(backend: Backend) {
    let server = announcing(backend).await;
    let admin = server.admin();
    account_with_key(&server, "acc_ff").await;
    let payouts = import_payout_key(&admin, "acc_ff", "IMPORTEDKEY000000011").await;
    let path = format!("/v1/keys/{payouts}/rotate");
    let integration = server.operator("integration").await;
    let app = enrol_totp(&server, "acc_ff").await;
    let token = grant(&server, "acc_ff", &app).await;
    let refused = integration
        .post(&path, &json!({ "step_up_grant": token }))
        .await;
    assert_eq!(
        code_of(&refused),
        (403, "first_factor_too_recent".into()),
        "{}",
        refused.text
    );
    assert!(refused.body.get("secret").is_none(), "{}", refused.text);
    let message = refused.body["error"]["message"].as_str().unwrap();
    assert!(message.contains("allowed from 2026-01-02T00:"), "{message}");
    // Just short of the cool-down: still refused.
    server.clock.advance(23 * HOUR);
    let token = grant(&server, "acc_ff", &app).await;
    let early = integration
        .post(&path, &json!({ "step_up_grant": token }))
        .await;
    assert_eq!(
        code_of(&early).1,
        "first_factor_too_recent",
        "{}",
        early.text
    );
    server.clock.advance(HOUR);
    let token = grant(&server, "acc_ff", &app).await;
    let rotated = integration
        .post(&path, &json!({ "step_up_grant": token }))
        .await;
    assert_eq!(rotated.status, 200, "{}", rotated.text);
    assert!(
        rotated.body["secret"].as_str().is_some(),
        "{}",
        rotated.text
    );
    // An account whose factor is old: a step-up rotates at once.
    let token = grant(&server, "acc_ff", &app).await;
    let again = integration
        .post(&path, &json!({ "step_up_grant": token }))
        .await;
    assert_eq!(again.status, 200, "{}", again.text);
}

on_both_backends!(
    a_fund_moving_key_is_not_rotated_without_a_factor,
    a_first_factor_unlocks_a_fund_moving_rotation_only_after_the_cool_down,
    import_obeys_the_terms_of_any_key,
    rotating_a_fund_moving_key_needs_a_step_up,
);
