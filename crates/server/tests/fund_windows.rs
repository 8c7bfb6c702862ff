//! Time-boxed withdraw with a cap, over real HTTP on both backends: `withdraw` granted for a
//! chosen period (after the usual step-up and cool-down) lapses by itself, refused at once
//! when its time ends and tidied and announced by the sweep; the exchange's withdrawal check
//! counts every allowed amount against the cap, also when checks arrive together; extending a
//! window is a widening, shortening it is not; bad input is a 400 with a stable code.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::channels::{outbox, start_with_channels_and};
use common::guard::{HOUR, account_with_key, code_of, enrol_totp, grant};
use common::{Backend, Client, TestServer};
use serde_json::{Value, json};
use totp_rs::Totp;

/// An account whose key may `withdraw` to an allow-listed address in `window`, through the
/// whole guarded path: step-up, cool-down, applied. Returns the key id and the customer's
/// authenticator app.
async fn boxed_withdraw_key(server: &TestServer, account: &str, window: Value) -> (String, Totp) {
    let admin = server.admin();
    let (key_id, _, _) = account_with_key(server, account).await;
    let app = enrol_totp(server, account).await;
    let token = grant(server, account, &app).await;
    let address = json!({ "address": "TQsafeWallet9", "asset": "USDT", "network": "TRX", "step_up_grant": token });
    let added = admin
        .post(&format!("/v1/accounts/{account}/addresses"), &address)
        .await;
    assert_eq!(added.status, 202, "{}", added.text);
    let token = grant(server, account, &app).await;
    let widen = json!({ "scopes": ["read", "trade", "withdraw"], "fund_window": window, "step_up_grant": token });
    let pending = admin.patch(&format!("/v1/keys/{key_id}"), &widen).await;
    assert_eq!(pending.status, 202, "{}", pending.text);
    assert_eq!(pending.body["widenings"], json!(["adds_withdraw"]));
    server.clock.advance(24 * HOUR);
    server.app.guard.apply_due().await.unwrap();
    (key_id, app)
}

async fn check(integration: &Client, account: &str, key_id: &str, amount: Option<f64>) -> Value {
    let mut body = json!({ "account": account, "network": "TRX", "address": "TQsafeWallet9", "key_id": key_id });
    if let Some(amount) = amount {
        body["amount_usd"] = json!(amount);
    }
    let reply = integration.post("/v1/withdrawals/check", &body).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    reply.body
}

fn refused(reason: &str) -> Value {
    json!({ "allowed": false, "reason": reason })
}

fn allowed() -> Value {
    json!({ "allowed": true, "reason": null })
}

async fn withdraw_lapses_by_itself_and_the_cap_counts_every_cent(backend: Backend) {
    // The background pass would tidy the key as soon as its window ends; this story watches
    // the moment between, so the pass runs only when the test calls it.
    let server = start_with_channels_and(backend, |config| {
        config.refresh_interval_ms = 3_600_000;
    })
    .await;
    let admin = server.admin();
    let integration = server.operator("integration").await;
    let window = json!({ "hours": 6, "cap_usd": 500 });
    let (key_id, _) = boxed_withdraw_key(&server, "acc_w", window).await;
    let key = admin.get(&format!("/v1/keys/{key_id}")).await.body;
    assert_eq!(key["scopes"], json!(["read", "trade", "withdraw"]));
    assert_eq!(
        (
            key["fund_window"]["cap_usd"].as_f64(),
            key["fund_window"]["open"].as_bool()
        ),
        (Some(500.0), Some(true))
    );

    assert_eq!(
        check(&integration, "acc_w", &key_id, None).await,
        refused("amount_required")
    );
    assert_eq!(
        check(&integration, "acc_w", &key_id, Some(300.0)).await,
        allowed()
    );
    assert_eq!(
        check(&integration, "acc_w", &key_id, Some(250.0)).await,
        refused("fund_window_cap_reached"),
        "a refused amount is not counted"
    );
    assert_eq!(
        check(&integration, "acc_w", &key_id, Some(200.0)).await,
        allowed()
    );
    assert_eq!(
        check(&integration, "acc_w", &key_id, Some(0.01)).await,
        refused("fund_window_cap_reached")
    );
    let key = admin.get(&format!("/v1/keys/{key_id}")).await.body;
    assert_eq!(key["fund_window"]["remaining_usd"], 0.0);
    let audit = admin.get("/v1/audit?limit=1000").await.body;
    let spends = (audit.as_array().unwrap().iter())
        .filter(|e| e["action"] == "api_key.fund_window_spent")
        .count();
    assert_eq!(spends, 2);

    // The window's end is in force at once, before any sweep tidies the key.
    server.clock.advance(6 * HOUR);
    assert_eq!(
        check(&integration, "acc_w", &key_id, Some(1.0)).await,
        refused("fund_window_lapsed")
    );
    let key = admin.get(&format!("/v1/keys/{key_id}")).await.body;
    assert_eq!(key["scopes"], json!(["read", "trade"]));
    assert_eq!(key["fund_window"]["open"], false);

    assert_eq!(server.app.guard.lapse_fund_windows().await.unwrap(), 1);
    assert_eq!(server.app.guard.lapse_fund_windows().await.unwrap(), 0);
    let key = admin.get(&format!("/v1/keys/{key_id}")).await.body;
    assert_eq!(key["scopes"], json!(["read", "trade"]));
    assert!(key.get("fund_window").is_none(), "{key}");
    assert_eq!(
        check(&integration, "acc_w", &key_id, Some(1.0)).await,
        refused("key_cannot_withdraw")
    );
    let lapsed: Vec<_> = (outbox(&server, "acc_w").await.into_iter())
        .filter(|m| {
            m.subject.contains("time-limited withdrawals ended")
                || m.subject == "key.fund_window_lapsed"
        })
        .collect();
    assert_eq!(lapsed.len(), 2, "one e-mail and one webhook");
    let events = admin.get("/v1/events").await.body;
    let last_update = (events.as_array().unwrap().iter())
        .rev()
        .find(|e| e["event"]["type"] == "api_key.updated")
        .unwrap();
    assert_eq!(last_update["event"]["scopes"], json!(["read", "trade"]));
    assert_eq!(admin.get("/v1/audit/verify").await.body["intact"], true);
}

async fn checks_that_arrive_together_never_spend_past_the_cap(backend: Backend) {
    let server = TestServer::start(backend).await;
    let integration = server.operator("integration").await;
    let (key_id, _) =
        boxed_withdraw_key(&server, "acc_c", json!({ "hours": 4, "cap_usd": 500 })).await;
    let checks = (0..10).map(|_| check(&integration, "acc_c", &key_id, Some(100.0)));
    let answers = futures::future::join_all(checks).await;
    let allowed_count = answers.iter().filter(|a| a["allowed"] == true).count();
    assert_eq!(allowed_count, 5, "{answers:?}");
    assert!(
        (answers.iter())
            .filter(|a| a["allowed"] == false)
            .all(|a| a["reason"] == "fund_window_cap_reached"),
        "{answers:?}"
    );
}

async fn extending_a_window_is_a_widening_and_shortening_it_is_not(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin = server.admin();
    let integration = server.operator("integration").await;
    let (key_id, app) =
        boxed_withdraw_key(&server, "acc_e", json!({ "hours": 6, "cap_usd": 500 })).await;
    assert_eq!(
        check(&integration, "acc_e", &key_id, Some(400.0)).await,
        allowed()
    );
    let path = format!("/v1/keys/{key_id}");

    // Shorter and lower: at once, no step-up, and what already left still counts.
    let shorter = admin
        .patch(
            &path,
            &json!({ "fund_window": { "hours": 2, "cap_usd": 450 } }),
        )
        .await;
    assert_eq!(shorter.status, 200, "{}", shorter.text);
    assert_eq!(shorter.body["fund_window"]["remaining_usd"], 50.0);
    assert_eq!(
        check(&integration, "acc_e", &key_id, Some(60.0)).await,
        refused("fund_window_cap_reached")
    );

    // Longer, higher, or no window at all: a widening, with the step-up the customer has.
    for wider in [
        json!({ "fund_window": { "hours": 12, "cap_usd": 450 } }),
        json!({ "fund_window": { "hours": 2, "cap_usd": 10000 } }),
        json!({ "fund_window": null }),
    ] {
        let refused = admin.patch(&path, &wider).await;
        assert_eq!(
            code_of(&refused),
            (403, "step_up_required".into()),
            "{wider}"
        );
        let mut confirmed = wider.clone();
        confirmed["step_up_grant"] = json!(grant(&server, "acc_e", &app).await);
        let pending = admin.patch(&path, &confirmed).await;
        assert_eq!(pending.status, 202, "{wider}: {}", pending.text);
        assert_eq!(pending.body["widenings"], json!(["extends_fund_window"]));
        let id = pending.body["id"].as_str().unwrap();
        let cancelled = admin
            .post(&format!("/v1/changes/{id}/cancel"), &json!({}))
            .await;
        assert_eq!(cancelled.status, 200, "{}", cancelled.text);
    }

    // Bad input: a clear 400, nothing changed.
    for (body, code) in [
        (
            json!({ "fund_window": { "hours": 0 } }),
            "invalid_fund_window",
        ),
        (
            json!({ "fund_window": { "hours": 745 } }),
            "invalid_fund_window",
        ),
        (
            json!({ "fund_window": { "hours": 2, "cap_usd": -1 } }),
            "invalid_fund_window",
        ),
        (
            json!({ "fund_window": { "hours": 2, "cap_usd": 0 } }),
            "invalid_fund_window",
        ),
        (
            json!({ "fund_window": { "hours": 2, "cap": 5 } }),
            "invalid_json",
        ),
        (
            json!({ "scopes": ["read"], "fund_window": { "hours": 2 } }),
            "invalid_fund_window",
        ),
    ] {
        let reply = admin.patch(&path, &body).await;
        assert_eq!(
            code_of(&reply),
            (400, code.into()),
            "{body}: {}",
            reply.text
        );
    }
    let key = admin.get(&path).await.body;
    assert_eq!(key["fund_window"]["remaining_usd"], 50.0, "{key}");
    let bad_amount = integration
        .post(
            "/v1/withdrawals/check",
            &json!({ "account": "acc_e", "network": "TRX", "address": "TQsafeWallet9", "key_id": key_id, "amount_usd": -5 }),
        )
        .await;
    assert_eq!(code_of(&bad_amount), (400, "invalid_amount".into()));

    // Another account's key is not found, and says nothing about that account.
    let (other_key, _, _) = account_with_key(&server, "acc_other").await;
    let foreign = integration
        .post(
            "/v1/withdrawals/check",
            &json!({ "account": "acc_e", "network": "TRX", "address": "TQsafeWallet9", "key_id": other_key }),
        )
        .await;
    assert_eq!(foreign.status, 404, "{}", foreign.text);
    assert!(!foreign.text.contains("acc_other"), "{}", foreign.text);
}

async fn a_new_key_can_ask_for_withdraw_in_a_window_from_the_start(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin = server.admin();
    account_with_key(&server, "acc_n").await;
    let app = enrol_totp(&server, "acc_n").await;
    let token = grant(&server, "acc_n", &app).await;
    let created = admin
        .post(
            "/v1/accounts/acc_n/keys",
            &json!({ "label": "payout bot", "scopes": ["read", "withdraw"], "ip_allowlist": ["203.0.113.7"],
                     "fund_window": { "hours": 4, "cap_usd": 1000 }, "step_up_grant": token }),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
    let key_id = created.body["key"]["key_id"].as_str().unwrap().to_owned();
    assert_eq!(created.body["key"]["scopes"], json!(["read"]));
    server.clock.advance(24 * HOUR);
    let applied_at = server.now();
    server.app.guard.apply_due().await.unwrap();
    let key = admin.get(&format!("/v1/keys/{key_id}")).await.body;
    assert_eq!(key["scopes"], json!(["read", "withdraw"]));
    let until = key["fund_window"]["until"].as_str().unwrap();
    assert_eq!(
        until,
        applied_at.plus_millis(4 * HOUR).to_rfc3339(),
        "the window opens when the change takes effect, not when it was asked for"
    );
    let nothing_to_box = admin
        .post(
            "/v1/accounts/acc_n/keys",
            &json!({ "label": "reader", "scopes": ["read"], "fund_window": { "hours": 4 } }),
        )
        .await;
    assert_eq!(
        code_of(&nothing_to_box),
        (400, "invalid_fund_window".into())
    );
}

/// A cap is counted by the withdrawal check, and transfers never pass through it: a capped
/// window that would box `transfer` is refused (400 `invalid_fund_window`) rather than
/// promising a limit nothing keeps, on a key change and on a new key alike. (It was taken, and
/// the key could then transfer without limit until the window ended.)
async fn a_cap_is_refused_on_a_window_that_boxes_transfer(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin = server.admin();
    let (key_id, _, _) = account_with_key(&server, "acc_t").await;
    let app = enrol_totp(&server, "acc_t").await;
    let capped = json!({ "hours": 6, "cap_usd": 500 });
    for scopes in [
        json!(["read", "transfer"]),
        json!(["read", "withdraw", "transfer"]),
    ] {
        let token = grant(&server, "acc_t", &app).await;
        let widen = json!({ "scopes": scopes, "fund_window": capped, "step_up_grant": token });
        let refused = admin.patch(&format!("/v1/keys/{key_id}"), &widen).await;
        assert_eq!(
            code_of(&refused),
            (400, "invalid_fund_window".into()),
            "{scopes}: {}",
            refused.text
        );
        assert!(refused.text.contains("transfer"), "{}", refused.text);
    }
    let token = grant(&server, "acc_t", &app).await;
    let new_key = json!({ "label": "payouts", "scopes": ["read", "transfer"], "fund_window": capped, "step_up_grant": token });
    let refused = admin.post("/v1/accounts/acc_t/keys", &new_key).await;
    assert_eq!(
        code_of(&refused),
        (400, "invalid_fund_window".into()),
        "{}",
        refused.text
    );
    // Nothing was written: no key besides the first, no pending change.
    let keys = admin.get("/v1/accounts/acc_t/keys").await;
    assert_eq!(keys.body.as_array().map(Vec::len), Some(1), "{}", keys.text);
    let changes = admin.get("/v1/accounts/acc_t/changes").await;
    assert_eq!(
        changes.body.as_array().map(Vec::len),
        Some(0),
        "{}",
        changes.text
    );
    // A window on `transfer` without a cap is still a time box, and a capped one on
    // `withdraw` alone is what the check counts.
    let token = grant(&server, "acc_t", &app).await;
    let boxed = json!({ "scopes": ["read", "transfer"], "fund_window": { "hours": 6 }, "step_up_grant": token });
    let pending = admin.patch(&format!("/v1/keys/{key_id}"), &boxed).await;
    assert_eq!(pending.status, 202, "{}", pending.text);
}

on_both_backends!(
    a_cap_is_refused_on_a_window_that_boxes_transfer,
    withdraw_lapses_by_itself_and_the_cap_counts_every_cent,
    checks_that_arrive_together_never_spend_past_the_cap,
    extending_a_window_is_a_widening_and_shortening_it_is_not,
    a_new_key_can_ask_for_withdraw_in_a_window_from_the_start,
);
