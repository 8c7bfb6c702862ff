//! Guarded widening over real HTTP on both backends: TOTP enrolment and step-up (reuse and
//! lockout refused), widening held for its cool-down and applied on time (also across a
//! restart), the single-use cancel link, operator holds, risk holds, freeze, settings lock,
//! the withdrawal-address allow-list, and the audit chain intact after all of it.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::guard::{
    HOUR, account_with_key, code, code_of, enrol_totp, grant, scopes, signs_in_from,
};
use common::{Backend, TestServer, sign_hmac};
use serde_json::{Value, json};

async fn widening_waits_out_its_cooldown(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin = server.admin();
    let (key_id, api_key, secret) = account_with_key(&server, "acc_w").await;
    let widen = json!({ "scopes": ["read", "trade", "withdraw"] });
    let path = format!("/v1/keys/{key_id}");

    let nothing = admin.patch(&path, &widen).await;
    assert_eq!(
        code_of(&nothing),
        (403, "step_up_not_enrolled".into()),
        "{}",
        nothing.text
    );
    let app = enrol_totp(&server, "acc_w").await;
    let no_grant = admin.patch(&path, &widen).await;
    assert_eq!(code_of(&no_grant), (403, "step_up_required".into()));
    let unrestricted = admin
        .patch(
            &path,
            &json!({ "scopes": ["read", "withdraw"], "ip_allowlist": [] }),
        )
        .await;
    assert_eq!(
        code_of(&unrestricted),
        (400, "withdraw_needs_allowlist".into())
    );

    let token = grant(&server, "acc_w", &app).await;
    let pending = admin
        .patch(
            &path,
            &json!({ "scopes": ["read", "trade", "withdraw"], "step_up_grant": token }),
        )
        .await;
    assert_eq!(pending.status, 202, "{}", pending.text);
    assert_eq!(pending.body["status"], "pending");
    assert_eq!(pending.body["widenings"], json!(["adds_withdraw"]));
    assert!(
        pending.body["cancel_url"]
            .as_str()
            .unwrap()
            .contains("/cancel/pcx_")
    );
    let again = admin
        .patch(
            &path,
            &json!({ "scopes": ["read", "trade", "withdraw"], "step_up_grant": token }),
        )
        .await;
    assert_eq!(
        code_of(&again),
        (403, "grant_spent".into()),
        "a grant is spent once"
    );
    assert_eq!(
        scopes(&admin, &key_id).await,
        json!(["read", "trade"]),
        "nothing applies before the cool-down"
    );

    // A gateway asking for `withdraw` during the cool-down is refused.
    let payload = format!("a=1&timestamp={}", server.now().as_millis());
    let verify = admin.post("/v1/verify", &json!({ "api_key": api_key, "signature": sign_hmac(&secret, &payload), "payload": payload, "ip": "203.0.113.7", "scope": "withdraw" })).await;
    assert_eq!(verify.body["reason"], "scope_missing");

    // A narrowing meanwhile applies at once and is not undone when the widening lands.
    let narrowed = admin.patch(&path, &json!({ "scopes": ["read"] })).await;
    assert_eq!(narrowed.status, 200, "{}", narrowed.text);

    // (The server's background pass applies due changes too; either may get there first.)
    server.clock.advance(24 * HOUR - 1_000);
    server.app.guard.apply_due().await.unwrap();
    assert_eq!(
        scopes(&admin, &key_id).await,
        json!(["read"]),
        "one second early"
    );
    server.clock.advance(1_000);
    server.app.guard.apply_due().await.unwrap();
    let changes = admin.get("/v1/accounts/acc_w/changes").await;
    assert_eq!(
        scopes(&admin, &key_id).await,
        json!(["read", "withdraw"]),
        "{}",
        changes.text
    );
    let changes = admin.get("/v1/accounts/acc_w/changes").await;
    assert_eq!(changes.body[0]["status"], "applied", "{}", changes.text);
    assert!(
        changes.body[0].get("cancel_url").is_none(),
        "the link is shown only once"
    );
    let chain = admin.get("/v1/audit/verify").await;
    assert_eq!(chain.body["intact"], true, "{}", chain.text);
}

async fn cancel_link_is_single_use_and_get_never_cancels(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin = server.admin();
    let (key_id, _, _) = account_with_key(&server, "acc_c").await;
    let app = enrol_totp(&server, "acc_c").await;
    let token = grant(&server, "acc_c", &app).await;
    let pending = admin
        .patch(
            &format!("/v1/keys/{key_id}"),
            &json!({ "ip_allowlist": [], "step_up_grant": token }),
        )
        .await;
    assert_eq!(pending.status, 202, "{}", pending.text);
    assert_eq!(pending.body["widenings"], json!(["widens_allowlist"]));
    let url = pending.body["cancel_url"].as_str().unwrap();
    let link = &url[url.find("/cancel/").unwrap()..];

    let anonymous = server.anonymous();
    let page = anonymous.get(link).await;
    assert_eq!(page.status, 200);
    assert!(page.text.contains("Cancel this change"), "{}", page.text);
    assert!(page.text.contains("any IP address"), "{}", page.text);
    assert!(page.text.contains("we never call") || page.text.contains("We never call"));
    let change_id = pending.body["id"].as_str().unwrap();
    assert_eq!(
        admin.get(&format!("/v1/changes/{change_id}")).await.body["status"],
        "pending",
        "GET must not cancel"
    );

    let done = anonymous
        .post_raw(link, Vec::new(), "application/x-www-form-urlencoded")
        .await;
    assert_eq!(done.status, 200, "{}", done.text);
    assert!(done.text.contains("cancelled"));
    let reused = anonymous
        .post_raw(link, Vec::new(), "application/x-www-form-urlencoded")
        .await;
    assert_eq!(reused.status, 409, "{}", reused.text);
    let forged = anonymous
        .post_raw(
            "/cancel/pcx_forged",
            Vec::new(),
            "application/x-www-form-urlencoded",
        )
        .await;
    assert_eq!(forged.status, 404);
    let audit = admin.get("/v1/audit?limit=1000").await;
    let codes: Vec<&str> = audit
        .body
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "request.refused")
        .filter_map(|e| e["details"]["code"].as_str())
        .collect();
    assert!(
        codes.contains(&"cancel_link_used"),
        "a reused link is audited: {codes:?}"
    );
    assert!(
        !codes.contains(&"invalid_cancel_link"),
        "a forged link names no account and is counted in /metrics, not audited: {codes:?}"
    );

    server.clock.advance(48 * HOUR);
    server.app.guard.apply_due().await.unwrap();
    let key = admin.get(&format!("/v1/keys/{key_id}")).await;
    assert_eq!(
        key.body["ip_allowlist"],
        json!(["203.0.113.7/32"]),
        "the cancelled change never applies"
    );
    let change = admin.get(&format!("/v1/changes/{change_id}")).await;
    assert_eq!(change.body["status"], "cancelled");
    assert!(
        change.body["status_detail"]
            .as_str()
            .unwrap()
            .contains("customer:acc_c")
    );
}

async fn totp_codes_are_spent_once_and_brute_force_locks_out(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin = server.admin();
    account_with_key(&server, "acc_t").await;
    let app = enrol_totp(&server, "acc_t").await;
    let path = "/v1/accounts/acc_t/step-up/totp";
    // The confirmation code's step is spent.
    let reused = admin
        .post(path, &json!({ "code": code(&app, &server) }))
        .await;
    assert_eq!(code_of(&reused), (403, "totp_reused".into()));
    // A reused code is not a failure: four wrong codes pass, the fifth locks.
    for _ in 0..4 {
        let wrong = admin.post(path, &json!({ "code": "000000" })).await;
        assert_eq!(code_of(&wrong), (403, "totp_wrong".into()));
    }
    let locked = admin.post(path, &json!({ "code": "000000" })).await;
    assert_eq!(
        code_of(&locked),
        (423, "step_up_locked".into()),
        "{}",
        locked.text
    );
    server.clock.advance(30_000);
    let right_but_locked = admin
        .post(path, &json!({ "code": code(&app, &server) }))
        .await;
    assert_eq!(code_of(&right_but_locked), (423, "step_up_locked".into()));
    server.clock.advance(15 * 60_000);
    let fine = admin
        .post(path, &json!({ "code": code(&app, &server) }))
        .await;
    assert_eq!(fine.status, 201, "{}", fine.text);
    let restart = admin.post("/v1/accounts/acc_t/totp", &json!({})).await;
    assert_eq!(
        restart.status, 409,
        "a confirmed app cannot be swapped silently"
    );
    let audit = admin.get("/v1/audit?limit=1000").await;
    let failures = audit
        .body
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "step_up.failed")
        .count();
    assert!(failures >= 6, "every failure is audited: {failures}");
}

async fn pending_change_survives_a_restart_and_applies_on_time(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (key_id, _, _) = account_with_key(&server, "acc_r").await;
    let app = enrol_totp(&server, "acc_r").await;
    let token = grant(&server, "acc_r", &app).await;
    let pending = server
        .admin()
        .patch(
            &format!("/v1/keys/{key_id}"),
            &json!({ "scopes": ["read", "trade", "transfer"], "step_up_grant": token }),
        )
        .await;
    assert_eq!(pending.status, 202, "{}", pending.text);
    let (dir, url, clock) = server.stop().await;
    clock.advance(25 * HOUR);
    let server = TestServer::start_on(dir, url, clock).await;
    // The background pass (every refresh interval) applies it without being asked.
    let mut applied = Value::Null;
    for _ in 0..100 {
        applied = scopes(&server.admin(), &key_id).await;
        if applied == json!(["read", "trade", "transfer"]) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(applied, json!(["read", "trade", "transfer"]));
}

async fn holds_freeze_lock_and_risk(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin = server.admin();
    let analyst = server.operator("analyst").await;
    let integration = server.operator("integration").await;
    let (key_id, _, _) = account_with_key(&server, "acc_f").await;
    let app = enrol_totp(&server, "acc_f").await;
    let path = format!("/v1/keys/{key_id}");

    // An operator hold stops the change past its time; a release after it applies it at once.
    let token = grant(&server, "acc_f", &app).await;
    let pending = admin
        .patch(
            &path,
            &json!({ "scopes": ["read", "trade", "withdraw"], "step_up_grant": token }),
        )
        .await;
    let change = pending.body["id"].as_str().unwrap().to_owned();
    assert_eq!(
        integration
            .post(
                &format!("/v1/changes/{change}/hold"),
                &json!({ "reason": "x" })
            )
            .await
            .status,
        403
    );
    let held = analyst
        .post(
            &format!("/v1/changes/{change}/hold"),
            &json!({ "reason": "customer called support" }),
        )
        .await;
    assert_eq!(held.body["status"], "held", "{}", held.text);
    server.clock.advance(25 * HOUR);
    server.app.guard.apply_due().await.unwrap();
    assert_eq!(scopes(&admin, &key_id).await, json!(["read", "trade"]));
    let released = analyst
        .post(&format!("/v1/changes/{change}/release"), &json!({}))
        .await;
    assert_eq!(released.body["status"], "applied", "{}", released.text);
    assert_eq!(
        scopes(&admin, &key_id).await,
        json!(["read", "trade", "withdraw"])
    );

    // A widening during a phone call is held by the risk engine (TOTP is not phishing-resistant).
    let token = grant(&server, "acc_f", &app).await;
    let risky = admin.patch(&path, &json!({ "scopes": ["read", "trade", "withdraw", "transfer"], "step_up_grant": token, "ctx": { "call_active": true, "channel": "app" } })).await;
    assert_eq!(risky.status, 202, "{}", risky.text);
    assert_eq!(risky.body["status"], "held", "{}", risky.text);
    assert!(
        risky.body["status_detail"]
            .as_str()
            .unwrap()
            .contains("call_during_escalation"),
        "{}",
        risky.text
    );

    // Freeze: fund-moving scopes go, open changes are cancelled, widening is refused.
    let frozen = admin.post("/v1/accounts/acc_f/freeze", &json!({})).await;
    assert_eq!(frozen.status, 200, "{}", frozen.text);
    assert_eq!(frozen.body["keys_narrowed"], json!([key_id]));
    assert_eq!(
        frozen.body["changes_cancelled"].as_array().unwrap().len(),
        1
    );
    assert_eq!(scopes(&admin, &key_id).await, json!(["read", "trade"]));
    let token = grant(&server, "acc_f", &app).await;
    let refused = admin
        .patch(
            &path,
            &json!({ "scopes": ["read", "trade", "withdraw"], "step_up_grant": token }),
        )
        .await;
    assert_eq!(code_of(&refused), (423, "account_protected".into()));
    let check = integration
        .post(
            "/v1/withdrawals/check",
            &json!({ "account": "acc_f", "network": "TRX", "address": "T9" }),
        )
        .await;
    assert_eq!(
        check.body,
        json!({ "allowed": false, "reason": "account_frozen" })
    );
    let unfreeze = admin
        .post(
            "/v1/accounts/acc_f/unfreeze",
            &json!({ "step_up_grant": token }),
        )
        .await;
    assert_eq!(
        code_of(&unfreeze),
        (403, "step_up_not_enrolled".into()),
        "unfreezing needs a passkey: {}",
        unfreeze.text
    );

    // Settings lock: only ever later, and it refuses widening.
    let (other, _, _) = account_with_key(&server, "acc_l").await;
    let app_l = enrol_totp(&server, "acc_l").await;
    let until = server.now().plus_millis(10 * 24 * HOUR);
    let locked = admin
        .post(
            "/v1/accounts/acc_l/settings-lock",
            &json!({ "until": until.to_rfc3339() }),
        )
        .await;
    assert_eq!(locked.status, 200, "{}", locked.text);
    let shorter = server.now().plus_millis(24 * HOUR).to_rfc3339();
    let shorten = admin
        .post(
            "/v1/accounts/acc_l/settings-lock",
            &json!({ "until": shorter }),
        )
        .await;
    assert_eq!(code_of(&shorten), (409, "lock_cannot_shorten".into()));
    let token = grant(&server, "acc_l", &app_l).await;
    let during = admin
        .patch(
            &format!("/v1/keys/{other}"),
            &json!({ "scopes": ["read", "trade", "withdraw"], "step_up_grant": token }),
        )
        .await;
    assert_eq!(code_of(&during), (423, "account_protected".into()));

    // Unfreezing an account that is not frozen is at odds with its state (409), not a
    // protection at work (423).
    let not_frozen = admin.post("/v1/accounts/acc_l/unfreeze", &json!({})).await;
    assert_eq!(code_of(&not_frozen), (409, "not_frozen".into()));

    // A context the API cannot vouch for is refused before anything is done with it.
    for ctx in [
        json!({ "ip": "10.0.0.999" }),
        json!({ "channel": "phone" }),
        json!({ "device_id": "" }),
        json!({ "user_agent": "a\u{7}b" }),
    ] {
        let refused = admin
            .post("/v1/accounts/acc_l/freeze", &json!({ "ctx": ctx }))
            .await;
        assert_eq!(code_of(&refused), (400, "invalid_context".into()), "{ctx}");
    }
    assert_eq!(admin.get("/v1/audit/verify").await.body["intact"], true);
}

async fn withdrawal_addresses_wait_out_their_cooldown(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin = server.admin();
    let integration = server.operator("integration").await;
    account_with_key(&server, "acc_a").await;
    let app = enrol_totp(&server, "acc_a").await;
    let token = grant(&server, "acc_a", &app).await;
    let body = json!({ "address": "TQ5abc", "asset": "usdt", "network": "trx", "label": "cold", "step_up_grant": token });
    let pending = admin.post("/v1/accounts/acc_a/addresses", &body).await;
    assert_eq!(pending.status, 202, "{}", pending.text);
    let token = grant(&server, "acc_a", &app).await;
    let evm = json!({ "address": "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed", "asset": "USDT", "network": "ETH", "step_up_grant": token });
    let pending_evm = admin.post("/v1/accounts/acc_a/addresses", &evm).await;
    assert_eq!(pending_evm.status, 202, "{}", pending_evm.text);
    let check = json!({ "account": "acc_a", "network": "TRX", "address": "TQ5abc" });
    let before = integration.post("/v1/withdrawals/check", &check).await;
    assert_eq!(
        before.body,
        json!({ "allowed": false, "reason": "address_not_allowlisted" })
    );
    // The engine saw the contract's address.added with the step-up used.
    let events = admin.get("/v1/events").await;
    let added = events
        .body
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["event"]["type"] == "address.added")
        .unwrap();
    assert_eq!(added["event"]["step_up"], "totp");
    server.clock.advance(24 * HOUR);
    server.app.guard.apply_due().await.unwrap();
    let after = integration.post("/v1/withdrawals/check", &check).await;
    assert_eq!(after.body, json!({ "allowed": true, "reason": null }));
    // An EVM address in another case is the same address; a base58 one is not.
    let lower = json!({ "account": "acc_a", "network": "ETH", "address": "0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed" });
    let lower = integration.post("/v1/withdrawals/check", &lower).await;
    assert_eq!(lower.body["allowed"], true, "{}", lower.text);
    let variant = json!({ "account": "acc_a", "network": "TRX", "address": "tq5ABC" });
    let variant = integration.post("/v1/withdrawals/check", &variant).await;
    assert_eq!(variant.body["allowed"], false, "base58 is case-sensitive");
    let listed = admin.get("/v1/accounts/acc_a/addresses").await;
    assert_eq!(listed.body[1]["asset"], "USDT");
    assert_eq!(
        listed.body[0]["address"], "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed",
        "kept as the customer wrote it"
    );
    let bad = admin
        .post(
            "/v1/accounts/acc_a/addresses",
            &json!({ "address": "", "asset": "BTC", "network": "BTC" }),
        )
        .await;
    assert_eq!(code_of(&bad), (400, "invalid_address".into()));
    assert_eq!(
        admin
            .delete("/v1/accounts/acc_a/addresses/TRX/TQ5abc")
            .await
            .status,
        204
    );
    let gone = integration.post("/v1/withdrawals/check", &check).await;
    assert_eq!(gone.body["allowed"], false);
}

async fn new_keys_wait_for_fund_moving_scopes(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin = server.admin();
    account_with_key(&server, "acc_n").await;
    let app = enrol_totp(&server, "acc_n").await;
    let without = admin
        .post(
            "/v1/accounts/acc_n/keys",
            &json!({ "scopes": ["read", "withdraw"], "ip_allowlist": ["192.0.2.1"] }),
        )
        .await;
    assert_eq!(code_of(&without), (403, "step_up_required".into()));
    let keys_before = admin
        .get("/v1/accounts/acc_n/keys")
        .await
        .body
        .as_array()
        .unwrap()
        .len();
    assert_eq!(keys_before, 1, "a refused request leaves no key behind");
    signs_in_from(&server, "acc_n", "192.0.2.1").await;
    let token = grant(&server, "acc_n", &app).await;
    let created = admin.post("/v1/accounts/acc_n/keys", &json!({ "scopes": ["read", "withdraw"], "ip_allowlist": ["192.0.2.1"], "step_up_grant": token })).await;
    assert_eq!(created.status, 201, "{}", created.text);
    assert_eq!(created.body["key"]["scopes"], json!(["read"]));
    assert_eq!(
        created.body["pending"]["widenings"],
        json!(["adds_withdraw"])
    );
    let key_id = created.body["key"]["key_id"].as_str().unwrap();
    server.clock.advance(24 * HOUR);
    server.app.guard.apply_due().await.unwrap();
    assert_eq!(scopes(&admin, key_id).await, json!(["read", "withdraw"]));
}

on_both_backends!(
    widening_waits_out_its_cooldown,
    cancel_link_is_single_use_and_get_never_cancels,
    totp_codes_are_spent_once_and_brute_force_locks_out,
    pending_change_survives_a_restart_and_applies_on_time,
    holds_freeze_lock_and_risk,
    withdrawal_addresses_wait_out_their_cooldown,
    new_keys_wait_for_fund_moving_scopes,
);
