//! What storage holds: no HMAC secret, anti-phishing code or cancel link in plain text (SQLite
//! file, PostgreSQL dump), an audit
//! chain that names the exact entry someone tampered with, secrets that move to a new master
//! key, and the OpenAPI document kept in the repository.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::guard::{enrol_totp, grant, signs_in_from};
use common::{Backend, TestServer, sign_hmac};
use portcullis_app::clock::ManualClock;
use portcullis_server::notify::Sensitive;
use serde_json::json;
use std::sync::Arc;

async fn issue_keys(server: &TestServer, n: usize) -> Vec<(String, String, String)> {
    let admin = server.admin();
    let reply = admin
        .post(
            "/v1/accounts",
            &json!({ "id": "acc_s", "anti_phishing_code": "Blue42" }),
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    let mut keys = Vec::new();
    for i in 0..n {
        let created = admin.post("/v1/accounts/acc_s/keys", &json!({ "label": format!("k{i}"), "scopes": ["read", "trade"], "ip_allowlist": ["192.0.2.0/24"] })).await;
        assert_eq!(created.status, 201, "{}", created.text);
        keys.push((
            created.body["key"]["key_id"].as_str().unwrap().to_owned(),
            created.body["key"]["api_key"].as_str().unwrap().to_owned(),
            created.body["secret"].as_str().unwrap().to_owned(),
        ));
    }
    keys
}

/// Every byte the database holds: the SQLite file and its write-ahead log, or a pg_dump.
async fn database_bytes(server: &TestServer) -> Vec<u8> {
    if server.database_url.starts_with("sqlite:") {
        let mut bytes = Vec::new();
        for entry in std::fs::read_dir(server.dir.path()).unwrap() {
            let path = entry.unwrap().path();
            if path
                .file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("portcullis.db")
            {
                bytes.extend(std::fs::read(&path).unwrap());
            }
        }
        assert!(bytes.len() > 4096, "the database file was read");
        bytes
    } else {
        let output = std::process::Command::new("pg_dump")
            .arg("--data-only")
            .arg(&server.database_url)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "pg_dump failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        output.stdout
    }
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

async fn secrets_are_never_stored_in_plain_text(backend: Backend) {
    let server = TestServer::start(backend).await;
    let keys = issue_keys(&server, 3).await;
    let (key_id, _, _) = &keys[0];
    let rotated = server
        .admin()
        .post(&format!("/v1/keys/{key_id}/rotate"), &json!({}))
        .await;
    let rotated_secret = rotated.body["secret"].as_str().unwrap().to_owned();
    let bytes = database_bytes(&server).await;
    for (_, api_key, secret) in &keys {
        assert!(
            contains(&bytes, api_key),
            "the dump is real: it holds the public API key"
        );
        assert!(
            !contains(&bytes, secret),
            "an HMAC secret is stored in plain text"
        );
        assert!(
            !contains(&bytes, &hex::encode(secret)),
            "an HMAC secret is stored as hex"
        );
    }
    assert!(!contains(&bytes, &rotated_secret));
    let audit = server.admin().get("/v1/audit?limit=1000").await;
    assert!(audit.text.contains("anti_phishing_code_set"));
    assert!(
        !audit.text.contains("Blue42"),
        "audit details hold no anti-phishing code"
    );
    assert!(
        !contains(&bytes, &server.admin_token),
        "operator tokens are stored hashed"
    );
}

/// A server with both official channels configured (neither reachable: the messages only need
/// to be queued).
async fn server_with_channels(backend: Backend) -> TestServer {
    let dir = tempfile::tempdir().unwrap();
    let url = match backend {
        Backend::Sqlite => format!(
            "sqlite://{}?mode=rwc",
            dir.path().join("portcullis.db").display()
        ),
        Backend::Postgres => common::fresh_postgres_database().await,
    };
    let clock = Arc::new(ManualClock::new(common::START));
    TestServer::start_on_with(dir, url, clock, |config| {
        config.exchange_name = "Exemplar".into();
        config.smtp_url = Sensitive::new("smtp://127.0.0.1:9");
        config.smtp_from = "Exemplar Security <security@exemplar.example>".into();
        config.webhook_url = "http://127.0.0.1:9/hook".into();
        config.webhook_secret = Sensitive::new("whsec_0123456789abcdef");
        config.notify_interval_ms = 3_600_000;
    })
    .await
}

/// A widening announced by e-mail and webhook leaves neither the anti-phishing code nor the
/// cancel link (or its token) anywhere in the database: the outbox bodies and the account's
/// code are sealed with the keyring, and the change keeps only the token's hash.
async fn a_backup_reveals_no_anti_phishing_code_or_cancel_link(backend: Backend) {
    const CODE: &str = "Heron7731";
    let server = server_with_channels(backend).await;
    let admin = server.admin();
    let account = json!({ "id": "acc_p", "email": "ada@example.com", "anti_phishing_code": CODE });
    assert_eq!(admin.post("/v1/accounts", &account).await.status, 201);
    signs_in_from(&server, "acc_p", "203.0.113.7").await;
    let key = admin
        .post("/v1/accounts/acc_p/keys", &json!({ "label": "bot", "scopes": ["read", "trade"], "ip_allowlist": ["203.0.113.7"] }))
        .await;
    let key_id = key.body["key"]["key_id"].as_str().unwrap().to_owned();
    let app = enrol_totp(&server, "acc_p").await;
    let token = grant(&server, "acc_p", &app).await;
    let widen = json!({ "scopes": ["read", "trade", "withdraw"], "step_up_grant": token });
    let pending = admin.patch(&format!("/v1/keys/{key_id}"), &widen).await;
    assert_eq!(pending.status, 202, "{}", pending.text);
    let cancel_url = pending.body["cancel_url"].as_str().unwrap().to_owned();
    let (_, cancel_token) = cancel_url.rsplit_once("/cancel/").unwrap();
    assert!(cancel_token.starts_with("pcx_"), "{cancel_url}");

    let outbox = admin.get("/v1/outbox?account=acc_p").await;
    let widening: Vec<&str> = (outbox.body.as_array().unwrap().iter())
        .filter(|m| {
            m["subject"].as_str().unwrap().contains("withdraw")
                || m["subject"] == "widening.pending"
        })
        .map(|m| m["channel"].as_str().unwrap())
        .collect();
    assert!(
        widening.contains(&"email") && widening.contains(&"webhook"),
        "the widening was announced on both channels: {}",
        outbox.text
    );
    let shown = admin.get("/v1/accounts/acc_p").await;
    assert_eq!(shown.body["anti_phishing_code_set"], true, "{}", shown.text);
    assert!(
        !shown.text.contains(CODE),
        "the API never shows the code back"
    );

    let bytes = database_bytes(&server).await;
    assert!(
        contains(&bytes, "acc_p"),
        "the dump is real: it holds the account"
    );
    assert!(
        contains(&bytes, "ada@example.com"),
        "e-mail addresses are still plain"
    );
    assert!(
        !contains(&bytes, CODE),
        "the anti-phishing code is stored in plain text"
    );
    assert!(
        !contains(&bytes, cancel_token),
        "a cancel token is stored in plain text"
    );
    assert!(
        !contains(&bytes, &cancel_token[..16]),
        "part of a cancel token is stored"
    );
}

async fn tamper(server: &TestServer, sql: &str) {
    server.execute_sql(sql).await;
}

async fn audit_verify_names_the_tampered_entry(backend: Backend) {
    let server = TestServer::start(backend).await;
    issue_keys(&server, 3).await;
    let report = server.admin().get("/v1/audit/verify").await;
    assert_eq!(report.body["intact"], true, "{}", report.text);
    let entries = report.body["entries"].as_i64().unwrap();
    assert!(entries >= 5, "operator, account and three keys are audited");

    let audit = server.admin().get("/v1/audit?limit=1000").await;
    let third = &audit.body[2];
    assert_eq!(third["seq"], 3);
    assert!(third["details"].is_object());

    tamper(
        &server,
        "UPDATE audit_log SET details = replace(details, 'trade', 'withdraw') WHERE seq = 4",
    )
    .await;
    let report = server.admin().get("/v1/audit/verify").await;
    assert_eq!(report.body["intact"], false);
    assert_eq!(report.body["first_bad_seq"], 4);
    assert_eq!(report.body["problem"], "edited");
}

async fn audit_verify_finds_a_removed_entry(backend: Backend) {
    let server = TestServer::start(backend).await;
    issue_keys(&server, 2).await;
    tamper(&server, "DELETE FROM audit_log WHERE seq = 2").await;
    let report = server.admin().get("/v1/audit/verify").await;
    assert_eq!(
        (
            report.body["first_bad_seq"].clone(),
            report.body["problem"].clone()
        ),
        (json!(2), json!("removed")),
        "{}",
        report.text
    );
}

async fn rewrap_moves_every_secret_to_a_new_master_key(backend: Backend) {
    let server = TestServer::start(backend).await;
    let keys = issue_keys(&server, 3).await;
    // The TOTP secret lives sealed inside the account's guard document.
    let app = enrol_totp(&server, "acc_s").await;
    let keyring_file = server.settings.keyring_file.clone();
    let new_id =
        portcullis_server::keyring_file::add_key(&keyring_file, server.now().plus_millis(1))
            .unwrap();
    let (dir, url, clock) = server.stop().await;
    let server = TestServer::start_on(dir, url, clock).await;

    let report = server.admin().post("/v1/secrets/rewrap", &json!({})).await;
    assert_eq!(report.status, 200, "{}", report.text);
    assert_eq!(report.body["resealed"], 3);
    assert_eq!(
        report.body["resealed_at_rest"], 2,
        "the account's anti-phishing code and its TOTP secret follow the new master key"
    );
    assert_eq!(report.body["active_master_key"], new_id.as_str());
    let again = server.admin().post("/v1/secrets/rewrap", &json!({})).await;
    assert_eq!(again.body["resealed"], 0);
    assert_eq!(again.body["resealed_at_rest"], 0);

    // Drop every other master key: the secrets still open, so they really moved.
    let text = std::fs::read_to_string(&keyring_file).unwrap();
    let kept: Vec<&str> = text
        .lines()
        .filter(|l| !l.starts_with("mk-") || l.starts_with(&format!("{new_id} ")))
        .collect();
    std::fs::write(&keyring_file, kept.join("\n")).unwrap();
    let (dir, url, clock) = server.stop().await;
    let server = TestServer::start_on(dir, url, clock).await;
    for (i, (_, api_key, secret)) in keys.iter().enumerate() {
        let payload = format!("i={i}&timestamp={}", server.now().as_millis());
        let body = json!({ "api_key": api_key, "signature": sign_hmac(secret, &payload), "payload": payload, "ip": "192.0.2.1", "scope": "trade" });
        assert_eq!(
            server.admin().post("/v1/verify", &body).await.body["ok"],
            true
        );
    }
    let account = server.admin().get("/v1/accounts/acc_s").await;
    assert_eq!(
        account.status, 200,
        "the sealed anti-phishing code opens under the new key alone: {}",
        account.text
    );
    // A TOTP step-up opens the re-wrapped secret under the new key alone.
    grant(&server, "acc_s", &app).await;
}

async fn readiness_reports_the_backend(backend: Backend) {
    let server = TestServer::start(backend).await;
    let ready = server.anonymous().get("/readyz").await;
    let expected = if backend == Backend::Sqlite {
        "sqlite"
    } else {
        "postgres"
    };
    assert_eq!(ready.body["backend"], expected);
    let missing = server.admin().get("/v1/nothing-here").await;
    assert_eq!(
        (missing.status, missing.body["error"]["code"].clone()),
        (404, json!("not_found"))
    );
    let wrong_method = server
        .admin()
        .send(
            "PATCH",
            "/v1/verify",
            Some(b"{}".to_vec()),
            "application/json",
        )
        .await;
    assert_eq!(wrong_method.status, 405);
}

/// Verification reads the whole chain and is exempt from the request timeout: with a 1 ms
/// timeout, a chain of a few thousand entries still verifies over HTTP.
async fn a_long_verification_outlives_the_request_timeout(backend: Backend) {
    let server = TestServer::start_with(backend, |config| {
        config.request_timeout_ms = 1;
    })
    .await;
    let drafts = (0..3_000)
        .map(|n| portcullis_core::audit::AuditDraft {
            at: common::START,
            actor: "system".into(),
            action: "test.entry".into(),
            target: format!("test:{n}"),
            details: "{}".into(),
        })
        .collect();
    let change = portcullis_app::ports::ChangeSet {
        writes: vec![],
        audit: drafts,
        events: vec![],
    };
    server.app.store.commit(change).await.unwrap();
    let report = server.admin().get("/v1/audit/verify").await;
    assert_eq!(report.status, 200, "{}", report.text);
    assert_eq!(report.body["intact"], true, "{}", report.text);
    assert!(report.body["entries"].as_i64().unwrap() > 3_000);
}

on_both_backends!(
    a_long_verification_outlives_the_request_timeout,
    secrets_are_never_stored_in_plain_text,
    a_backup_reveals_no_anti_phishing_code_or_cancel_link,
    audit_verify_names_the_tampered_entry,
    audit_verify_finds_a_removed_entry,
    rewrap_moves_every_secret_to_a_new_master_key,
    readiness_reports_the_backend,
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_served_openapi_document_is_the_one_in_the_repository() {
    let server = TestServer::start(Backend::Sqlite).await;
    let served = server.anonymous().get("/openapi.json").await;
    assert_eq!(served.body["openapi"], "3.1.0");
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/openapi.json");
    let kept = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        kept == served.text,
        "docs/openapi.json is out of date: regenerate it with `cargo run -p portcullis -- openapi > docs/openapi.json`"
    );
}
