//! The guard's steps as a customer and the exchange take them, over the API: an account with a
//! key, an authenticator app, step-up grants.

use super::{Client, Reply, TestServer};
use serde_json::{Value, json};
use totp_rs::Totp;

pub const HOUR: i64 = 3_600_000;

/// The customer signs in from `ip` (so the risk engine knows the address the key is bound to,
/// as it would for a real customer's bot server or home connection).
pub async fn signs_in_from(server: &TestServer, account: &str, ip: &str) {
    let line = json!({ "id": format!("login-{account}-{ip}"), "ts": server.now().to_rfc3339(), "type": "login", "account": account, "method": "password", "success": true, "ctx": { "ip": ip, "channel": "web" } });
    let reply = server
        .admin()
        .post_raw(
            "/v1/events",
            format!("{line}\n").into_bytes(),
            "application/x-ndjson",
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
}

pub async fn account_with_key(server: &TestServer, account: &str) -> (String, String, String) {
    let admin = server.admin();
    let reply = admin
        .post(
            "/v1/accounts",
            &json!({ "id": account, "email": "ada@example.com", "anti_phishing_code": "Blue42" }),
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    signs_in_from(server, account, "203.0.113.7").await;
    let key = admin
        .post(&format!("/v1/accounts/{account}/keys"), &json!({ "label": "bot", "scopes": ["read", "trade"], "ip_allowlist": ["203.0.113.7"] }))
        .await;
    assert_eq!(key.status, 201, "{}", key.text);
    let body = &key.body;
    (
        body["key"]["key_id"].as_str().unwrap().to_owned(),
        body["key"]["api_key"].as_str().unwrap().to_owned(),
        body["secret"].as_str().unwrap().to_owned(),
    )
}

/// Enrols an authenticator app and returns it (as the customer's phone would hold it).
pub async fn enrol_totp(server: &TestServer, account: &str) -> Totp {
    let admin = server.admin();
    let started = admin
        .post(&format!("/v1/accounts/{account}/totp"), &json!({}))
        .await;
    assert_eq!(started.status, 201, "{}", started.text);
    let uri = started.body["provisioning_uri"].as_str().unwrap();
    assert!(uri.starts_with("otpauth://totp/"), "{uri}");
    let qr = started.body["qr_svg"].as_str().unwrap();
    assert!(
        qr.contains("<svg") && qr.contains("</svg>"),
        "the URI comes as a QR code too"
    );
    let app = Totp::from_url(uri).unwrap();
    let confirmed = admin
        .post(
            &format!("/v1/accounts/{account}/totp/confirm"),
            &json!({ "code": code(&app, server) }),
        )
        .await;
    assert_eq!(confirmed.status, 204, "{}", confirmed.text);
    app
}

pub fn code(app: &Totp, server: &TestServer) -> String {
    app.generate(u64::try_from(server.now().as_millis() / 1000).unwrap())
        .to_string()
}

/// A fresh grant: moves the clock to the next TOTP step so the code is unspent.
pub async fn grant(server: &TestServer, account: &str, app: &Totp) -> String {
    server.clock.advance(30_000);
    let reply = server
        .admin()
        .post(
            &format!("/v1/accounts/{account}/step-up/totp"),
            &json!({ "code": code(app, server) }),
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    assert_eq!(reply.body["method"], "totp");
    reply.body["grant"].as_str().unwrap().to_owned()
}

pub async fn scopes(admin: &Client, key_id: &str) -> Value {
    admin.get(&format!("/v1/keys/{key_id}")).await.body["scopes"].clone()
}

pub fn code_of(reply: &Reply) -> (u16, String) {
    (
        reply.status,
        reply.body["error"]["code"]
            .as_str()
            .unwrap_or("")
            .to_owned(),
    )
}

/// Sends events to the feed; every line must be accepted.
pub async fn feed(server: &TestServer, lines: &[Value]) {
    let body: String = lines.iter().map(|l| format!("{l}\n")).collect();
    let reply = server
        .admin()
        .post_raw("/v1/events", body.into_bytes(), "application/x-ndjson")
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert!(
        reply.body["rejected"].as_array().unwrap().is_empty(),
        "{}",
        reply.text
    );
}

/// A widening of a new key on `account` that the risk engine holds (a call in progress); its id.
pub async fn engine_hold(server: &TestServer, account: &str) -> String {
    let (key_id, _, _) = account_with_key(server, account).await;
    let app = enrol_totp(server, account).await;
    let token = grant(server, account, &app).await;
    let widen = json!({ "scopes": ["read", "trade", "withdraw"], "step_up_grant": token, "ctx": { "call_active": true, "channel": "app" } });
    let held = server
        .admin()
        .patch(&format!("/v1/keys/{key_id}"), &widen)
        .await;
    assert_eq!(held.body["status"], "held", "{}", held.text);
    assert!(held.text.contains("risk-engine"), "{}", held.text);
    held.body["id"].as_str().unwrap().to_owned()
}
