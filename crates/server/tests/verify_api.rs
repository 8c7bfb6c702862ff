//! `POST /v1/verify` over real HTTP: every verdict and every malformed request, on both backends.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use base64::Engine as _;
use common::{Backend, TestServer, sign_hmac};
use serde_json::{Value, json};

async fn account_with_hmac_key(
    server: &TestServer,
    scopes: &[&str],
    allowlist: &[&str],
) -> (String, String, String) {
    let admin = server.admin();
    let account = format!("acc_{}", portcullis_app::random::alphanumeric(8).unwrap());
    let created = admin
        .post(
            "/v1/accounts",
            &json!({ "id": account, "email": "ada@example.com", "anti_phishing_code": "Blue42" }),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
    let key = admin
        .post(
            &format!("/v1/accounts/{account}/keys"),
            &json!({ "label": "bot", "scopes": scopes, "ip_allowlist": allowlist }),
        )
        .await;
    assert_eq!(key.status, 201, "{}", key.text);
    let api_key = key.body["key"]["api_key"].as_str().unwrap().to_owned();
    let secret = key.body["secret"].as_str().unwrap().to_owned();
    (account, api_key, secret)
}

fn payload_at(timestamp: i64, extra: &str) -> String {
    format!("symbol=BTCUSDT&side=BUY&type=MARKET&quantity=1{extra}&timestamp={timestamp}")
}

fn verify_body(api_key: &str, signature: &str, payload: &str, ip: &str, scope: &str) -> Value {
    json!({ "api_key": api_key, "signature": signature, "payload": payload, "ip": ip, "scope": scope })
}

async fn every_verdict(backend: Backend) {
    let server = TestServer::start(backend).await;
    let gateway = server.operator("integration").await;
    let (account, api_key, secret) =
        account_with_hmac_key(&server, &["read", "trade"], &["203.0.113.0/24"]).await;
    let now = server.now().as_millis();
    let verdict = |body: Value| {
        let gateway = gateway.clone();
        async move {
            let reply = gateway.post("/v1/verify", &body).await;
            assert_eq!(reply.status, 200, "{}", reply.text);
            reply.body
        }
    };

    let payload = payload_at(now, "");
    let signature = sign_hmac(&secret, &payload);
    let ok = verdict(verify_body(
        &api_key,
        &signature,
        &payload,
        "203.0.113.9",
        "trade",
    ))
    .await;
    assert_eq!(ok["ok"], true);
    assert_eq!(ok["account"], account.as_str());
    assert!(ok["key_id"].as_str().unwrap().starts_with("k_"));

    let replayed = verdict(verify_body(
        &api_key,
        &signature.to_uppercase(),
        &payload,
        "203.0.113.9",
        "trade",
    ))
    .await;
    assert_eq!(replayed, json!({ "ok": false, "reason": "replayed" }));

    let reason = |body: Value| async { verdict(body).await["reason"].as_str().unwrap().to_owned() };
    let fresh = |n: i64| payload_at(now, &format!("&n={n}"));

    assert_eq!(
        reason(verify_body(
            "nope",
            &signature,
            &payload,
            "203.0.113.9",
            "trade"
        ))
        .await,
        "unknown_key"
    );
    let p = fresh(1);
    assert_eq!(
        reason(verify_body(
            &api_key,
            &sign_hmac("wrong", &p),
            &p,
            "203.0.113.9",
            "trade"
        ))
        .await,
        "bad_signature"
    );
    let stale = payload_at(now - 5_001, "");
    assert_eq!(
        reason(verify_body(
            &api_key,
            &sign_hmac(&secret, &stale),
            &stale,
            "203.0.113.9",
            "trade"
        ))
        .await,
        "timestamp_outside_window"
    );
    let early = payload_at(now + 1_000, "");
    assert_eq!(
        reason(verify_body(
            &api_key,
            &sign_hmac(&secret, &early),
            &early,
            "203.0.113.9",
            "trade"
        ))
        .await,
        "timestamp_outside_window"
    );
    let p = fresh(2);
    assert_eq!(
        reason(verify_body(
            &api_key,
            &sign_hmac(&secret, &p),
            &p,
            "198.51.100.1",
            "trade"
        ))
        .await,
        "ip_not_allowed"
    );
    let p = fresh(3);
    assert_eq!(
        reason(verify_body(
            &api_key,
            &sign_hmac(&secret, &p),
            &p,
            "203.0.113.9",
            "withdraw"
        ))
        .await,
        "scope_missing"
    );

    // A key that expires, then a revoked key.
    let expiring = server
        .admin()
        .post(&format!("/v1/accounts/{account}/keys"), &json!({ "scopes": ["read"], "expires_at": portcullis_core::time::UnixMillis(now + 60_000).to_rfc3339() }))
        .await;
    let (exp_key, exp_secret) = (
        expiring.body["key"]["api_key"].as_str().unwrap().to_owned(),
        expiring.body["secret"].as_str().unwrap().to_owned(),
    );
    server.clock.advance(60_000);
    let later = server.now().as_millis();
    let p = payload_at(later, "");
    assert_eq!(
        reason(verify_body(
            &exp_key,
            &sign_hmac(&exp_secret, &p),
            &p,
            "192.0.2.1",
            "read"
        ))
        .await,
        "expired"
    );

    let key_id = ok["key_id"].as_str().unwrap();
    let revoked = server
        .admin()
        .post(&format!("/v1/keys/{key_id}/revoke"), &json!({}))
        .await;
    assert_eq!(revoked.status, 200, "{}", revoked.text);
    assert_eq!(revoked.body["status"], "revoked");
    let p = payload_at(later, "&n=4");
    assert_eq!(
        reason(verify_body(
            &api_key,
            &sign_hmac(&secret, &p),
            &p,
            "203.0.113.9",
            "trade"
        ))
        .await,
        "revoked"
    );

    // Every failure is counted per key and per IP.
    let metrics = server.admin().get("/metrics").await;
    assert_eq!(metrics.status, 200);
    assert!(
        metrics
            .text
            .contains("portcullis_verify_total{outcome=\"replayed\"} 1"),
        "{}",
        metrics.text
    );
    assert!(metrics.text.contains(&format!(
        "portcullis_verify_failures_by_key{{key_id=\"{key_id}\"}}"
    )));
    assert!(
        metrics
            .text
            .contains("portcullis_verify_failures_by_ip{ip=\"198.51.100.1\"} 1")
    );
}

async fn ed25519_keys_verify_base64_signatures(backend: Backend) {
    use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair as _};
    let server = TestServer::start(backend).await;
    let admin = server.admin();
    assert_eq!(
        admin
            .post("/v1/accounts", &json!({ "id": "acc_ed" }))
            .await
            .status,
        201
    );
    let pair = Ed25519KeyPair::from_seed_unchecked(&[7u8; 32]).unwrap();
    let public_hex = hex::encode(pair.public_key().as_ref());
    let created = admin
        .post(
            "/v1/accounts/acc_ed/keys",
            &json!({ "algorithm": "ed25519", "public_key": public_hex, "scopes": ["read"] }),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
    assert_eq!(
        created.body["secret"],
        Value::Null,
        "no secret exists for Ed25519 keys"
    );
    let api_key = created.body["key"]["api_key"].as_str().unwrap();
    let payload = payload_at(server.now().as_millis(), "");
    let signature =
        base64::engine::general_purpose::STANDARD.encode(pair.sign(payload.as_bytes()).as_ref());
    let reply = admin
        .post(
            "/v1/verify",
            &verify_body(api_key, &signature, &payload, "192.0.2.1", "read"),
        )
        .await;
    assert_eq!(reply.body["ok"], true, "{}", reply.text);
    let tampered = payload.replace("quantity=1", "quantity=9");
    let reply = admin
        .post(
            "/v1/verify",
            &verify_body(api_key, &signature, &tampered, "192.0.2.1", "read"),
        )
        .await;
    assert_eq!(reply.body["reason"], "bad_signature");
}

async fn malformed_requests_get_stable_codes(backend: Backend) {
    let server = TestServer::start(backend).await;
    let gateway = server.operator("integration").await;
    let (_, api_key, secret) = account_with_hmac_key(&server, &["read"], &[]).await;
    let now = server.now().as_millis();
    let code = |reply: common::Reply| {
        reply.body["error"]["code"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    };

    let reply = gateway
        .post_raw("/v1/verify", b"{\"api_key\": ".to_vec(), "application/json")
        .await;
    assert_eq!((reply.status, code(reply)), (400, "invalid_json".into()));
    let reply = gateway
        .post_raw(
            "/v1/verify",
            vec![b'{', 0xff, 0xfe, b'}'],
            "application/json",
        )
        .await;
    assert_eq!((reply.status, code(reply)), (400, "invalid_utf8".into()));
    let reply = gateway
        .post_raw(
            "/v1/verify",
            b"api_key=x".to_vec(),
            "application/x-www-form-urlencoded",
        )
        .await;
    assert_eq!(
        (reply.status, code(reply)),
        (415, "unsupported_media_type".into())
    );
    let huge = json!({ "api_key": api_key, "signature": "00", "payload": "a".repeat(70 * 1024), "ip": "192.0.2.1", "scope": "read" });
    let reply = gateway.post("/v1/verify", &huge).await;
    assert_eq!(
        (reply.status, code(reply)),
        (413, "payload_too_large".into())
    );

    let cases = [
        ("symbol=X", "missing_timestamp"),
        ("symbol=X&timestamp=soon", "invalid_timestamp"),
        (
            &*format!("timestamp={now}&recvWindow=60001"),
            "recv_window_out_of_range",
        ),
        (
            &*format!("timestamp={now}&timestamp={now}"),
            "duplicate_parameter",
        ),
    ];
    for (payload, expected) in cases {
        let body = verify_body(
            &api_key,
            &sign_hmac(&secret, payload),
            payload,
            "192.0.2.1",
            "read",
        );
        let reply = gateway.post("/v1/verify", &body).await;
        assert_eq!(
            (reply.status, code(reply)),
            (400, expected.to_owned()),
            "{payload}"
        );
    }
    let p = payload_at(now, "");
    let reply = gateway
        .post(
            "/v1/verify",
            &verify_body(&api_key, &sign_hmac(&secret, &p), &p, "not-an-ip", "read"),
        )
        .await;
    assert_eq!((reply.status, code(reply)), (400, "invalid_ip".into()));
    let reply = gateway
        .post(
            "/v1/verify",
            &verify_body(&api_key, &sign_hmac(&secret, &p), &p, "192.0.2.1", "admin"),
        )
        .await;
    assert_eq!((reply.status, code(reply)), (400, "unknown_scope".into()));
    let mut extra = verify_body(&api_key, "00", &p, "192.0.2.1", "read");
    extra["nonce"] = json!(1);
    let reply = gateway.post("/v1/verify", &extra).await;
    assert_eq!((reply.status, code(reply)), (400, "invalid_json".into()));

    // Nothing above consumed the signature: the well-formed request still verifies once.
    let reply = gateway
        .post(
            "/v1/verify",
            &verify_body(&api_key, &sign_hmac(&secret, &p), &p, "192.0.2.1", "read"),
        )
        .await;
    assert_eq!(reply.body["ok"], true, "{}", reply.text);
}

async fn only_integration_and_admin_may_verify(backend: Backend) {
    let server = TestServer::start(backend).await;
    let body = verify_body("k", "00", "timestamp=1", "192.0.2.1", "read");
    assert_eq!(
        server.anonymous().post("/v1/verify", &body).await.status,
        401
    );
    assert_eq!(
        server
            .client("pco_forged")
            .post("/v1/verify", &body)
            .await
            .status,
        401
    );
    let analyst = server.operator("analyst").await;
    let reply = analyst.post("/v1/verify", &body).await;
    assert_eq!(
        (reply.status, reply.body["error"]["code"].clone()),
        (403, json!("forbidden"))
    );
}

on_both_backends!(
    every_verdict,
    ed25519_keys_verify_base64_signatures,
    malformed_requests_get_stable_codes,
    only_integration_and_admin_may_verify,
);
