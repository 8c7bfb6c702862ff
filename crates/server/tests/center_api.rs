//! The security center's edges over real HTTP on both backends: sign-in links (a GET signs
//! nobody in; a link works once and briefly), the session cookie, CSRF refusals, and the
//! WebAuthn ceremonies' bad input: malformed, rejected, reused, expired and foreign challenges.
//! (A real passkey ceremony runs in Chromium: tests/browser.)

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::center::{account, agent, blocking, code, link, request, request_via, server, sign_in};
use common::guard::{account_with_key, enrol_totp, grant};
use common::{Backend, TestServer};
use portcullis_app::ports::Clock;
use serde_json::{Value, json};

async fn sessions_and_csrf(backend: Backend) {
    let server = server(backend).await;
    account(&server, "acc_s").await;
    let (status, _, page) = request(&server.base_url, "GET", "/security", None, None, None).await;
    assert_eq!(status, 401);
    assert!(page.contains("signed out"), "{page}");
    let (status, _, json) = request(
        &server.base_url,
        "POST",
        "/security/api/step-up/passkey/start",
        None,
        None,
        None,
    )
    .await;
    assert_eq!(status, 401, "{json}");

    let browser = sign_in(&server, "acc_s").await;
    let (status, _, page) = request(
        &browser.base,
        "GET",
        "/security",
        Some(browser.cookie.clone()),
        None,
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert!(page.contains("Blue42") && page.contains(&browser.csrf));
    for csrf in [None, Some("0".repeat(32))] {
        let (status, _, json) = request(
            &browser.base,
            "POST",
            "/security/api/passkeys/register/start",
            Some(browser.cookie.clone()),
            csrf,
            None,
        )
        .await;
        assert_eq!(status, 403, "{json}");
        assert!(json.contains("csrf_failed"), "{json}");
    }
    // A form post is checked the same way: a wrong token freezes nothing, the right one does.
    for (csrf, status) in [("0".repeat(32), 403), (browser.csrf.clone(), 303)] {
        let (url, cookie) = (
            format!("{}/security/freeze", browser.base),
            browser.cookie.clone(),
        );
        let got = blocking(move || {
            agent()
                .post(&url)
                .header("cookie", &cookie)
                .header("content-type", "application/x-www-form-urlencoded")
                .send(format!("csrf={csrf}"))
                .unwrap()
                .status()
                .as_u16()
        })
        .await;
        assert_eq!(got, status);
        let frozen = server
            .admin()
            .get("/v1/accounts/acc_s/protection")
            .await
            .body["frozen"]
            .clone();
        assert_eq!(
            frozen,
            status == 303,
            "frozen only by the form with the right token"
        );
    }
    let expired_link = link(&server, "acc_s").await;
    server.clock.advance(5 * 60_000);
    let (status, _, _) = request(&server.base_url, "POST", &expired_link, None, None, None).await;
    assert_eq!(status, 403, "a link is short-lived");
    server.clock.advance(60 * 60_000);
    let (status, _, _) = request(
        &browser.base,
        "GET",
        "/security",
        Some(browser.cookie.clone()),
        None,
        None,
    )
    .await;
    assert_eq!(status, 401, "a session ends after an hour");
    let _ = server.clock.now();
}

async fn webauthn_ceremonies_refuse_bad_answers(backend: Backend) {
    let server = server(backend).await;
    account(&server, "acc_w").await;
    account(&server, "acc_x").await;
    let browser = sign_in(&server, "acc_w").await;
    let other = sign_in(&server, "acc_x").await;

    let (status, started) = browser
        .api("/security/api/passkeys/register/start", json!({}))
        .await;
    assert_eq!(status, 200, "{started}");
    assert_eq!(started["options"]["publicKey"]["rp"]["id"], "localhost");
    assert_eq!(
        started["options"]["publicKey"]["authenticatorSelection"]["userVerification"],
        "required"
    );
    let ceremony = started["ceremony_id"].as_str().unwrap().to_owned();

    let (status, body) = browser
        .api(
            "/security/api/passkeys/register/finish",
            json!({ "ceremony_id": ceremony, "credential": { "nonsense": true } }),
        )
        .await;
    assert_eq!((status, code(&body)), (400, "invalid_credential"), "{body}");
    let forged = json!({ "id": "AAAA", "rawId": "AAAA", "type": "public-key", "response": { "attestationObject": "AAAA", "clientDataJSON": "AAAA" }, "extensions": {} });
    let (status, body) = other
        .api(
            "/security/api/passkeys/register/finish",
            json!({ "ceremony_id": ceremony, "credential": forged }),
        )
        .await;
    assert_eq!(
        (status, code(&body)),
        (403, "invalid_challenge"),
        "another account's challenge: {body}"
    );
    let (status, body) = browser
        .api(
            "/security/api/passkeys/register/finish",
            json!({ "ceremony_id": ceremony, "credential": forged }),
        )
        .await;
    assert_eq!((status, code(&body)), (403, "passkey_rejected"), "{body}");
    let (status, body) = browser
        .api(
            "/security/api/passkeys/register/finish",
            json!({ "ceremony_id": ceremony, "credential": forged }),
        )
        .await;
    assert_eq!((status, code(&body)), (403, "challenge_used"), "{body}");

    let (_, started) = browser
        .api("/security/api/passkeys/register/start", json!({}))
        .await;
    server.clock.advance(5 * 60_000);
    let late = json!({ "ceremony_id": started["ceremony_id"], "credential": forged });
    let (status, body) = browser
        .api("/security/api/passkeys/register/finish", late)
        .await;
    assert_eq!((status, code(&body)), (403, "challenge_expired"), "{body}");

    let (status, body) = browser
        .api("/security/api/step-up/passkey/start", json!({}))
        .await;
    assert_eq!(
        (status, code(&body)),
        (403, "passkey_not_enrolled"),
        "{body}"
    );
    assert!(
        server
            .admin()
            .get("/v1/accounts/acc_w/passkeys")
            .await
            .body
            .as_array()
            .unwrap()
            .is_empty()
    );
    let audit = server.admin().get("/v1/audit?limit=1000").await;
    assert!(
        audit.text.contains("passkey.registration_refused"),
        "refusals are audited"
    );
    for code in ["invalid_challenge", "challenge_used", "challenge_expired"] {
        assert!(audit.text.contains(code), "{code} is audited");
    }
}

/// The value of the cookie `name` among a response's `Set-Cookie` lines.
fn cookie_value(set_cookies: &str, name: &str) -> Option<String> {
    set_cookies
        .lines()
        .filter_map(|line| line.split(';').next())
        .filter_map(|pair| pair.split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v.to_owned())
}

async fn the_customers_context_reaches_the_engine(backend: Backend) {
    let server = TestServer::start_with(backend, |config| {
        config.public_url = "http://localhost:8443".into();
        // The tests connect from 127.0.0.1: here it plays the exchange's reverse proxy.
        config.trusted_proxies = "127.0.0.1".into();
    })
    .await;
    let (key_id, _, _) = account_with_key(&server, "acc_c").await;
    let app = enrol_totp(&server, "acc_c").await;

    // The exchange's app saw a call in progress when the customer opened the center.
    let ctx = json!({ "channel": "app", "device_id": "d_phone", "call_active": true, "ip": "192.0.2.66" });
    let minted = server
        .admin()
        .post("/v1/accounts/acc_c/sign-in-links", &json!({ "ctx": ctx }))
        .await;
    assert_eq!(minted.status, 201, "{}", minted.text);
    let path = &minted.body["url"].as_str().unwrap()["http://localhost:8443".len()..];
    let proxy = Some("198.51.100.77".to_owned());
    let (status, cookies, _) = request_via(
        &server.base_url,
        "POST",
        path,
        None,
        None,
        None,
        proxy.clone(),
    )
    .await;
    assert_eq!(status, 303);
    let cookies = cookies.unwrap();
    let session = cookie_value(&cookies, "pc_session").unwrap();
    let device = cookie_value(&cookies, "pc_device").unwrap();
    assert!(device.starts_with("dev_"), "{cookies}");

    let token = grant(&server, "acc_c", &app).await;
    let change = json!({ "scopes": ["read", "trade", "withdraw"], "ip_allowlist": ["203.0.113.7"], "step_up_grant": token });
    let (status, _, text) = request_via(
        &server.base_url,
        "POST",
        &format!("/security/api/keys/{key_id}/change"),
        Some(format!("pc_session={session}; pc_device={device}")),
        Some(portcullis_app::guard::csrf_token(&session)),
        Some(change),
        proxy,
    )
    .await;
    assert_eq!(status, 200, "{text}");
    let reply: Value = serde_json::from_str(&text).unwrap();
    let reply = &reply["pending"];
    let events = server.logged_events().await;
    let event = events
        .iter()
        .find(|e| e["id"] == reply["event_id"])
        .unwrap();
    assert_eq!(event["effective"], "pending");
    assert_eq!(
        event["ctx"],
        json!({ "ip": "198.51.100.77", "device_id": "d_phone", "channel": "app", "call_active": true }),
        "the client's address through the trusted proxy, the exchange's device and call"
    );
    let decision = server
        .admin()
        .get(&format!(
            "/v1/decisions/{}",
            reply["event_id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(
        decision.body["features"]["ip_new"], true,
        "{}",
        decision.text
    );
    assert_eq!(decision.body["features"]["call_active"], true);
    assert_eq!(reply["status"], "held", "a widening during a call: {text}");

    // Without the exchange's device, the browser's own device cookie stands in.
    let plain = link(&server, "acc_c").await;
    let (_, cookies, _) = request_via(
        &server.base_url,
        "POST",
        &plain,
        Some(format!("pc_device={device}")),
        None,
        None,
        None,
    )
    .await;
    let cookies = cookies.unwrap();
    assert_eq!(
        cookie_value(&cookies, "pc_device"),
        None,
        "a known browser keeps its id"
    );
    let session = cookie_value(&cookies, "pc_session").unwrap();
    let (status, _, text) = request_via(
        &server.base_url,
        "POST",
        "/security/api/keys/{key_id}/change"
            .replace("{key_id}", &key_id)
            .as_str(),
        Some(format!("pc_session={session}; pc_device={device}")),
        Some(portcullis_app::guard::csrf_token(&session)),
        Some(json!({ "scopes": ["read"], "ip_allowlist": ["203.0.113.7"] })),
        None,
    )
    .await;
    assert_eq!(status, 200, "a narrowing applies at once: {text}");
    let events = server.logged_events().await;
    let last = events.last().unwrap();
    assert_eq!(last["ctx"]["device_id"], device.as_str(), "{last}");
    assert_eq!(last["ctx"]["ip"], "127.0.0.1", "{last}");
    assert_eq!(last["ctx"]["channel"], "web", "{last}");
}

/// The contact page shows the warning first; its API needs the CSRF header and a step-up, and
/// answers with the pending change, as `PATCH /v1/accounts/{account}` does.
async fn contact_change_from_the_center_is_guarded(backend: Backend) {
    let server = server(backend).await;
    account(&server, "acc_m").await;
    let browser = sign_in(&server, "acc_m").await;
    let cookie = Some(browser.cookie.clone());
    let (status, _, html) = request(
        &browser.base,
        "GET",
        "/security/contact",
        cookie.clone(),
        None,
        None,
    )
    .await;
    assert_eq!(status, 200, "{html}");
    let warning = html.find("never call or message you to ask for").unwrap();
    assert!(
        warning < html.find("id=\"contact-form\"").unwrap(),
        "the warning comes first"
    );
    let (_, _, overview) = request(
        &browser.base,
        "GET",
        "/security",
        cookie.clone(),
        None,
        None,
    )
    .await;
    assert!(overview.contains("id=\"change-contact\""));

    let body = json!({ "email": "new@example.net" });
    let (status, _, _) = request(
        &browser.base,
        "POST",
        "/security/api/contact",
        cookie.clone(),
        None,
        Some(body.clone()),
    )
    .await;
    assert_eq!(status, 403, "no CSRF header, no change");
    let (status, reply) = browser.api("/security/api/contact", body).await;
    assert_eq!((status, code(&reply)), (403, "step_up_not_enrolled"));

    let app = common::guard::enrol_totp(&server, "acc_m").await;
    let grant = common::guard::grant(&server, "acc_m", &app).await;
    let (status, reply) = browser
        .api(
            "/security/api/contact",
            json!({ "email": "new@", "step_up_grant": grant }),
        )
        .await;
    assert_eq!((status, code(&reply)), (400, "invalid_email"));
    let (status, reply) = browser
        .api(
            "/security/api/contact",
            json!({ "email": "new@example.net", "step_up_grant": grant }),
        )
        .await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["applied"], false);
    assert_eq!(reply["pending"]["kind"], "contact_change");
    assert_eq!(reply["pending"]["requested_by"], "customer:acc_m");
    let account = server.admin().get("/v1/accounts/acc_m").await.body;
    assert_eq!(
        account["email"],
        Value::Null,
        "nothing applies before the cool-down"
    );
    let (_, _, overview) = request(&browser.base, "GET", "/security", cookie, None, None).await;
    assert!(overview.contains("new e-mail address for security notices: new@example.net"));
}

on_both_backends!(
    sessions_and_csrf,
    webauthn_ceremonies_refuse_bad_answers,
    the_customers_context_reaches_the_engine,
    contact_change_from_the_center_is_guarded,
);
