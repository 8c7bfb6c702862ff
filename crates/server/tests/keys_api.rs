//! The key lifecycle over real HTTP on both backends: issue, list, change, rotate, import,
//! revoke, idle expiry, the events each change emits, and who may do what.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{Backend, TestServer, sign_hmac};
use portcullis_core::key::IdlePolicy;
use serde_json::{Value, json};

const DAY: i64 = IdlePolicy::DAY_MS;

async fn setup_account(server: &TestServer, id: &str) {
    let reply = server.admin().post("/v1/accounts", &json!({ "id": id, "display_name": "Ada", "email": "ada@example.com", "phone": "+14155550123", "anti_phishing_code": "Blue42" })).await;
    assert_eq!(reply.status, 201, "{}", reply.text);
}

async fn verify_ok(server: &TestServer, api_key: &str, secret: &str, tag: &str) -> Value {
    let payload = format!("tag={tag}&timestamp={}", server.now().as_millis());
    let body = json!({ "api_key": api_key, "signature": sign_hmac(secret, &payload), "payload": payload, "ip": "192.0.2.7", "scope": "read" });
    server.admin().post("/v1/verify", &body).await.body
}

async fn lifecycle_and_events(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin = server.admin();
    setup_account(&server, "acc_81").await;

    let created = admin.post("/v1/accounts/acc_81/keys", &json!({
        "label": "grid bot", "scopes": ["read", "trade"], "ip_allowlist": ["203.0.113.7", "2001:db8::/48"],
        "step_up": "totp", "ctx": { "ip": "198.51.100.23", "device_id": "d_81a", "channel": "app", "call_active": true }
    })).await;
    assert_eq!(created.status, 201, "{}", created.text);
    let key = &created.body["key"];
    let key_id = key["key_id"].as_str().unwrap().to_owned();
    assert_eq!(
        key["ip_allowlist"],
        json!(["203.0.113.7/32", "2001:db8::/48"])
    );
    assert_eq!(key["status"], "active");
    assert_eq!(created.body["secret"].as_str().unwrap().len(), 64);

    let listed = admin.get("/v1/accounts/acc_81/keys").await;
    assert_eq!(listed.status, 200);
    assert!(
        !listed
            .text
            .contains(created.body["secret"].as_str().unwrap()),
        "list must never show a secret"
    );
    assert_eq!(listed.body.as_array().unwrap().len(), 1);

    // A narrowing applies at once (widenings wait out a cool-down: see guard_api.rs).
    let updated = admin.patch(&format!("/v1/keys/{key_id}"), &json!({ "scopes": ["read"], "ip_allowlist": ["203.0.113.7/32"], "expected_version": 1 })).await;
    assert_eq!(updated.status, 200, "{}", updated.text);
    assert_eq!(updated.body["scopes"], json!(["read"]));
    assert_eq!(updated.body["version"], 2);
    let stale = admin
        .patch(
            &format!("/v1/keys/{key_id}"),
            &json!({ "label": "x", "expected_version": 1 }),
        )
        .await;
    assert_eq!(stale.status, 409);

    for (body, code) in [
        (json!({ "scopes": ["read", "admin"] }), "unknown_scope"),
        (json!({ "scopes": [] }), "unknown_scope"),
        (json!({ "ip_allowlist": ["10.0.0/8"] }), "invalid_cidr"),
        (
            json!({ "ip_allowlist": ["2001:db8::/129"] }),
            "invalid_cidr",
        ),
        (json!({ "expires_at": "tomorrow" }), "invalid_timestamp"),
        (
            json!({ "expires_at": "2020-01-01T00:00:00Z" }),
            "invalid_expiry",
        ),
        (
            json!({ "label": "x", "api_key": "other" }),
            "immutable_field",
        ),
        (json!({ "account": "acc_other" }), "immutable_field"),
        (json!({ "algorithm": "ed25519" }), "immutable_field"),
    ] {
        let reply = admin.patch(&format!("/v1/keys/{key_id}"), &body).await;
        assert_eq!(
            (reply.status, reply.body["error"]["code"].as_str().unwrap()),
            (400, code),
            "{body}"
        );
    }
    let unchanged = admin.get(&format!("/v1/keys/{key_id}")).await;
    assert_eq!(
        unchanged.body["version"], 2,
        "refused changes write nothing"
    );

    let revoked = admin
        .post(
            &format!("/v1/keys/{key_id}/revoke"),
            &json!({ "ctx": { "channel": "web" } }),
        )
        .await;
    assert_eq!(revoked.body["status"], "revoked");
    let after_revoke = admin
        .patch(&format!("/v1/keys/{key_id}"), &json!({ "label": "again" }))
        .await;
    assert_eq!(after_revoke.status, 409);

    let events = admin.get("/v1/events").await;
    let kinds: Vec<&str> = events
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event"]["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        vec!["api_key.created", "api_key.updated", "api_key.deleted"]
    );
    let created_event = &events.body[0]["event"];
    assert_eq!(created_event["account"], "acc_81");
    assert_eq!(created_event["key_id"], key_id.as_str());
    assert_eq!(created_event["step_up"], "totp");
    assert_eq!(created_event["ctx"]["call_active"], true);
    assert!(created_event["ts"].as_str().unwrap().ends_with('Z'));
    assert_eq!(events.body[1]["event"]["scopes"], json!(["read"]));
    assert_eq!(
        events.body[1]["event"]["ip_allowlist"],
        json!(["203.0.113.7/32"])
    );
}

async fn rotation_keeps_the_old_secret_for_the_overlap(backend: Backend) {
    let server = TestServer::start(backend).await;
    setup_account(&server, "acc_r").await;
    let admin = server.admin();
    let created = admin
        .post("/v1/accounts/acc_r/keys", &json!({ "scopes": ["read"] }))
        .await;
    let key_id = created.body["key"]["key_id"].as_str().unwrap().to_owned();
    let api_key = created.body["key"]["api_key"].as_str().unwrap().to_owned();
    let old = created.body["secret"].as_str().unwrap().to_owned();

    let rotated = admin
        .post(
            &format!("/v1/keys/{key_id}/rotate"),
            &json!({ "overlap_seconds": 3600 }),
        )
        .await;
    assert_eq!(rotated.status, 200, "{}", rotated.text);
    let new = rotated.body["secret"].as_str().unwrap().to_owned();
    assert_ne!(old, new);
    assert_eq!(rotated.body["key"]["api_key"], api_key.as_str());

    assert_eq!(verify_ok(&server, &api_key, &new, "a").await["ok"], true);
    assert_eq!(
        verify_ok(&server, &api_key, &old, "b").await["ok"],
        true,
        "the old secret works during the overlap"
    );
    server.clock.advance(3_600_000);
    assert_eq!(
        verify_ok(&server, &api_key, &old, "c").await["reason"],
        "bad_signature"
    );
    assert_eq!(verify_ok(&server, &api_key, &new, "d").await["ok"], true);

    let bad = admin
        .post(
            &format!("/v1/keys/{key_id}/rotate"),
            &json!({ "overlap_seconds": -1 }),
        )
        .await;
    assert_eq!(bad.body["error"]["code"], "invalid_overlap");
}

async fn import_takes_an_existing_binance_key(backend: Backend) {
    // The published Binance example key (../shared/data/test-vectors/signing-and-otp.md).
    let api_key = "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A";
    let secret = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j";
    let server = TestServer::start(backend).await;
    setup_account(&server, "acc_imp").await;
    let body = json!({ "account": "acc_imp", "label": "migrated", "api_key": api_key, "secret": secret, "scopes": ["read", "trade"] });

    let integration = server.operator("integration").await;
    assert_eq!(
        integration.post("/v1/keys/import", &body).await.status,
        403,
        "import is admin only"
    );

    // A secret is printable ASCII, as exchanges issue them: anything else is refused whole.
    let mut odd = body.clone();
    odd["secret"] = json!("NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP\u{e9}");
    let refused = server.admin().post("/v1/keys/import", &odd).await;
    assert_eq!(
        refused.body["error"]["code"], "invalid_secret",
        "{}",
        refused.text
    );

    let imported = server.admin().post("/v1/keys/import", &body).await;
    assert_eq!(imported.status, 201, "{}", imported.text);
    assert!(!imported.text.contains(secret));
    assert_eq!(
        server.admin().post("/v1/keys/import", &body).await.status,
        409,
        "an API key is imported once"
    );

    let payload = format!(
        "symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTC&quantity=1&price=0.1&recvWindow=5000&timestamp={}",
        server.now().as_millis()
    );
    let reply = server.admin().post("/v1/verify", &json!({ "api_key": api_key, "signature": sign_hmac(secret, &payload), "payload": payload, "ip": "192.0.2.1", "scope": "trade" })).await;
    assert_eq!(reply.body["ok"], true, "{}", reply.text);
}

async fn idle_unrestricted_trading_keys_are_warned_then_expire(backend: Backend) {
    let server = TestServer::start(backend).await;
    setup_account(&server, "acc_idle").await;
    let admin = server.admin();
    let risky = admin
        .post(
            "/v1/accounts/acc_idle/keys",
            &json!({ "scopes": ["read", "trade"] }),
        )
        .await;
    let safe = admin
        .post(
            "/v1/accounts/acc_idle/keys",
            &json!({ "scopes": ["read", "trade"], "ip_allowlist": ["192.0.2.0/24"] }),
        )
        .await;
    let risky_id = risky.body["key"]["key_id"].as_str().unwrap().to_owned();
    assert!(risky.body["key"]["idle_expires_at"].is_string());
    assert!(safe.body["key"]["idle_expires_at"].is_null());

    // A second process on the same database, whose sweep runs after the first's: its cache
    // still has the key unwarned (a warning is not a key change), and it warns no one again.
    let keyring = server.settings.keyring_file.display().to_string();
    let other = TestServer::start_on_with(
        tempfile::tempdir().unwrap(),
        server.database_url.clone(),
        server.clock.clone(),
        move |config| config.keyring_file = keyring,
    )
    .await;
    server.clock.advance(23 * DAY);
    let report = server
        .app
        .keys
        .sweep_idle(server.clock.as_ref())
        .await
        .unwrap();
    assert_eq!(report.warned, vec![risky_id.clone()]);
    let elsewhere = other
        .app
        .keys
        .sweep_idle(server.clock.as_ref())
        .await
        .unwrap();
    assert!(elsewhere.warned.is_empty(), "warned by the first process");
    let again = server
        .app
        .keys
        .sweep_idle(server.clock.as_ref())
        .await
        .unwrap();
    assert!(again.warned.is_empty(), "one warning per idle stretch");

    server.clock.advance(7 * DAY);
    let api_key = risky.body["key"]["api_key"].as_str().unwrap();
    let reply = verify_ok(
        &server,
        api_key,
        risky.body["secret"].as_str().unwrap(),
        "x",
    )
    .await;
    assert_eq!(reply["reason"], "expired");
    let report = server
        .app
        .keys
        .sweep_idle(server.clock.as_ref())
        .await
        .unwrap();
    assert_eq!(report.expired, vec![risky_id.clone()]);
    assert_eq!(
        admin.get(&format!("/v1/keys/{risky_id}")).await.body["status"],
        "expired"
    );
    let safe_id = safe.body["key"]["key_id"].as_str().unwrap();
    assert_eq!(
        admin.get(&format!("/v1/keys/{safe_id}")).await.body["status"],
        "active"
    );

    let events = admin.get("/v1/events").await;
    let kinds: Vec<&str> = events
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event"]["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        vec![
            "api_key.created",
            "api_key.created",
            "api_key.idle_warning",
            "api_key.idle_expired"
        ]
    );
}

async fn use_keeps_a_key_alive_and_is_stored(backend: Backend) {
    let server = TestServer::start(backend).await;
    setup_account(&server, "acc_use").await;
    let created = server
        .admin()
        .post(
            "/v1/accounts/acc_use/keys",
            &json!({ "scopes": ["read", "trade"] }),
        )
        .await;
    let key_id = created.body["key"]["key_id"].as_str().unwrap().to_owned();
    let api_key = created.body["key"]["api_key"].as_str().unwrap().to_owned();
    let secret = created.body["secret"].as_str().unwrap().to_owned();
    for day in 0..3 {
        server.clock.advance(20 * DAY);
        assert_eq!(
            verify_ok(&server, &api_key, &secret, &format!("d{day}")).await["ok"],
            true,
            "day {day}"
        );
    }
    let shown = server.admin().get(&format!("/v1/keys/{key_id}")).await;
    assert_eq!(shown.body["last_used_ip"], "192.0.2.7");
    assert_eq!(shown.body["status"], "active");

    // Usage is written back and survives a restart.
    let (dir, url, clock) = server.stop().await;
    let restarted = TestServer::start_on(dir, url, clock).await;
    let shown = restarted.admin().get(&format!("/v1/keys/{key_id}")).await;
    assert_eq!(shown.body["last_used_ip"], "192.0.2.7");
    assert_eq!(shown.body["last_used_at"], restarted.now().to_rfc3339());
    assert_eq!(
        verify_ok(&restarted, &api_key, &secret, "after-restart").await["ok"],
        true
    );
}

async fn roles_and_tokens(backend: Backend) {
    let server = TestServer::start(backend).await;
    setup_account(&server, "acc_roles").await;
    let endpoints = [
        ("GET", "/v1/accounts"),
        ("GET", "/v1/accounts/acc_roles"),
        ("GET", "/v1/accounts/acc_roles/keys"),
        ("GET", "/v1/operators"),
        ("GET", "/v1/audit"),
        ("GET", "/v1/audit/verify"),
        ("GET", "/v1/events"),
        ("GET", "/metrics"),
        ("POST", "/v1/accounts"),
        ("POST", "/v1/keys/import"),
        ("POST", "/v1/secrets/rewrap"),
        ("POST", "/v1/operators"),
        ("POST", "/v1/accounts/acc_roles/keys"),
        ("GET", "/v1/keys/k_x"),
    ];
    for (method, path) in endpoints {
        let reply = server
            .anonymous()
            .send(method, path, Some(b"{}".to_vec()), "application/json")
            .await;
        assert_eq!(reply.status, 401, "{method} {path} must need a token");
        assert_eq!(reply.body["error"]["code"], "unauthenticated");
    }
    for public in ["/healthz", "/readyz", "/openapi.json"] {
        assert_eq!(server.anonymous().get(public).await.status, 200, "{public}");
    }

    let analyst = server.operator("analyst").await;
    assert_eq!(analyst.get("/v1/accounts/acc_roles/keys").await.status, 200);
    assert_eq!(analyst.get("/v1/audit").await.status, 200);
    assert_eq!(
        analyst
            .post(
                "/v1/accounts/acc_roles/keys",
                &json!({ "scopes": ["read"] })
            )
            .await
            .status,
        403
    );
    assert_eq!(
        analyst
            .post("/v1/accounts", &json!({ "id": "acc_x" }))
            .await
            .status,
        403
    );

    let integration = server.operator("integration").await;
    assert_eq!(
        integration
            .post(
                "/v1/accounts/acc_roles/keys",
                &json!({ "scopes": ["read"] })
            )
            .await
            .status,
        201
    );
    assert_eq!(integration.get("/v1/audit").await.status, 403);
    assert_eq!(
        integration
            .post("/v1/operators", &json!({ "name": "evil", "role": "admin" }))
            .await
            .status,
        403
    );
    assert_eq!(
        integration
            .post("/v1/secrets/rewrap", &json!({}))
            .await
            .status,
        403
    );

    let operators = server.admin().get("/v1/operators").await;
    let analyst_id = operators
        .body
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["role"] == "analyst")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(!operators.text.contains("pco_"), "tokens are never listed");
    assert_eq!(
        server
            .admin()
            .post(&format!("/v1/operators/{analyst_id}/revoke"), &json!({}))
            .await
            .status,
        200
    );
    assert_eq!(
        analyst.get("/v1/audit").await.status,
        401,
        "a revoked token stops working at once"
    );
    let bad_role = server
        .admin()
        .post("/v1/operators", &json!({ "name": "x", "role": "root" }))
        .await;
    assert_eq!(bad_role.body["error"]["code"], "invalid_role");

    // The last admin token cannot be revoked (nobody could manage operators any more); once
    // there is another, it can.
    let admin_id = |body: &serde_json::Value, name_start: &str| {
        body.as_array()
            .unwrap()
            .iter()
            .find(|o| o["role"] == "admin" && o["name"].as_str().unwrap().starts_with(name_start))
            .unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let first = admin_id(&operators.body, "test-admin");
    let last = server
        .admin()
        .post(&format!("/v1/operators/{first}/revoke"), &json!({}))
        .await;
    assert_eq!(last.status, 409, "{}", last.text);
    let second = server.operator("admin").await;
    let listed = second.get("/v1/operators").await;
    let revoked = second
        .post(
            &format!(
                "/v1/operators/{}/revoke",
                admin_id(&listed.body, "test-admin")
            ),
            &json!({}),
        )
        .await;
    assert_eq!(revoked.status, 200, "{}", revoked.text);
}

async fn accounts_validate_and_page(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin = server.admin();
    for id in ["acc_c", "acc_a", "acc_b"] {
        assert_eq!(
            admin
                .post("/v1/accounts", &json!({ "id": id }))
                .await
                .status,
            201
        );
    }
    assert_eq!(
        admin
            .post("/v1/accounts", &json!({ "id": "acc_a" }))
            .await
            .status,
        409
    );
    let bad = admin.post("/v1/accounts", &json!({ "id": "acc d" })).await;
    assert_eq!(bad.body["error"]["code"], "invalid_account");
    let bad = admin
        .patch("/v1/accounts/acc_a", &json!({ "phone": "12345" }))
        .await;
    assert_eq!(bad.body["error"]["code"], "invalid_account");
    let page = admin.get("/v1/accounts?limit=2").await;
    let ids: Vec<&str> = page
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec!["acc_a", "acc_b"]);
    let page = admin.get("/v1/accounts?after=acc_b").await;
    assert_eq!(page.body[0]["id"], "acc_c");
    let updated = admin
        .patch(
            "/v1/accounts/acc_a",
            &json!({ "display_name": "Ada", "phone": "+14155550123" }),
        )
        .await;
    assert_eq!(updated.status, 200, "{}", updated.text);
    assert_eq!(updated.body["phone"], "+14155550123");
    // A new contact is a widening (contact_api.rs has the stories): without an authenticator
    // it is refused, and the code is never echoed.
    let contact = admin
        .patch(
            "/v1/accounts/acc_a",
            &json!({ "anti_phishing_code": "Green7", "email": "a@example.org" }),
        )
        .await;
    assert_eq!(contact.status, 403, "{}", contact.text);
    assert_eq!(contact.body["error"]["code"], "step_up_not_enrolled");
    assert!(
        !contact.text.contains("Green7"),
        "the anti-phishing code is not echoed to operators"
    );
    assert_eq!(
        admin.get("/v1/accounts/acc_a").await.body["anti_phishing_code_set"],
        false
    );
    assert_eq!(admin.get("/v1/accounts/acc_nope").await.status, 404);
    assert_eq!(
        admin
            .post("/v1/accounts/acc_nope/keys", &json!({ "scopes": ["read"] }))
            .await
            .status,
        404
    );
}

on_both_backends!(
    lifecycle_and_events,
    rotation_keeps_the_old_secret_for_the_overlap,
    import_takes_an_existing_binance_key,
    idle_unrestricted_trading_keys_are_warned_then_expire,
    use_keeps_a_key_alive_and_is_stored,
    roles_and_tokens,
    accounts_validate_and_page,
);
