//! Abuse limits over real HTTP on both backends, with the manual clock so every wait is exact:
//! per-IP limits on the public links (429 with `Retry-After`, open again once time has passed),
//! per-account limits on step-ups in the operator API and the security center, forged cancel
//! links counted in `/metrics` and never audited, and TOTP lockouts that grow from 15 minutes to
//! a day while a reused code never counts as a failure.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{Backend, Reply, TestServer};
use portcullis_server::config::Config;
use serde_json::{Value, json};
use std::sync::Arc;
use totp_rs::Totp;

const MINUTE: i64 = 60_000;
const HOUR: i64 = 60 * MINUTE;
const DAY: i64 = 24 * HOUR;

async fn start(backend: Backend, configure: impl FnOnce(&mut Config)) -> TestServer {
    TestServer::start_with(backend, configure).await
}

async fn account(server: &TestServer, id: &str) {
    let reply = server
        .admin()
        .post(
            "/v1/accounts",
            &json!({ "id": id, "anti_phishing_code": "Blue42" }),
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.text);
}

fn code_of(reply: &Reply) -> (u16, &str) {
    (
        reply.status,
        reply.body["error"]["code"].as_str().unwrap_or(""),
    )
}

/// A 429 `rate_limited` that asks to wait `seconds`.
fn assert_limited(reply: &Reply, seconds: &str) {
    assert_eq!(code_of(reply), (429, "rate_limited"), "{}", reply.text);
    assert_eq!(
        reply.retry_after.as_deref(),
        Some(seconds),
        "{}",
        reply.text
    );
}

async fn metric(server: &TestServer, line_start: &str) -> String {
    let metrics = server.admin().get("/metrics").await;
    assert_eq!(metrics.status, 200);
    metrics
        .text
        .lines()
        .find(|line| line.starts_with(line_start))
        .unwrap_or_else(|| panic!("no {line_start} in /metrics"))
        .to_owned()
}

async fn audit_actions(server: &TestServer) -> Vec<Value> {
    let audit = server.admin().get("/v1/audit?limit=1000").await;
    assert_eq!(audit.status, 200);
    audit.body.as_array().unwrap().clone()
}

async fn public_links_are_limited_per_address(backend: Backend) {
    // A burst of 3, then one every 10 s.
    let server = start(backend, |config| {
        config.rate_limit_ip_per_minute = 6;
        config.rate_limit_ip_burst = 3;
    })
    .await;
    account(&server, "acc_p").await;
    let anonymous = server.anonymous();
    let form = "application/x-www-form-urlencoded";
    let audit_before = audit_actions(&server).await.len();
    for n in 0..3 {
        let forged = anonymous
            .post_raw(&format!("/cancel/pcx_forged_{n}"), Vec::new(), form)
            .await;
        assert_eq!(forged.status, 404, "{}", forged.text);
    }
    // The bucket is shared by every public link: the sign-in page is refused now too.
    let refused = anonymous.get("/security/sign-in/psl_whatever").await;
    assert_limited(&refused, "10");
    let refused = anonymous
        .post_raw("/cancel/pcx_forged_3", Vec::new(), form)
        .await;
    assert_limited(&refused, "10");
    server.clock.advance(9_000);
    let refused = anonymous.get("/cancel/pcx_forged_3").await;
    assert_limited(&refused, "1");
    server.clock.advance(1_000);
    let allowed = anonymous.get("/cancel/pcx_forged_3").await;
    assert_eq!(allowed.status, 404, "{}", allowed.text);
    assert_limited(&anonymous.get("/cancel/pcx_forged_4").await, "10");

    // The operator API is not limited per address (the exchange's backend is one address).
    let operator = server
        .admin()
        .post(
            "/v1/accounts/acc_p/step-up/totp",
            &json!({ "code": "123456" }),
        )
        .await;
    assert_eq!(code_of(&operator), (400, "totp_not_enrolled"));

    // Forged links are counted, and none of them reached the audit chain.
    assert_eq!(
        metric(&server, "portcullis_cancel_links_forged_total ").await,
        "portcullis_cancel_links_forged_total 4"
    );
    assert_eq!(
        metric(&server, "portcullis_rate_limited_total{limit=\"ip\"}").await,
        "portcullis_rate_limited_total{limit=\"ip\"} 4"
    );
    let audit = audit_actions(&server).await;
    let refusals: Vec<&Value> = audit
        .iter()
        .filter(|entry| entry["action"] == "request.refused")
        .collect();
    assert!(refusals.is_empty(), "{refusals:?}");
    assert_eq!(audit.len(), audit_before, "nothing was audited: {audit:?}");
}

/// Signs `account` in to the security center; returns (cookie, CSRF token).
async fn sign_in(server: &TestServer, account: &str) -> (String, String) {
    let link = server
        .admin()
        .post(&format!("/v1/accounts/{account}/sign-in-links"), &json!({}))
        .await;
    assert_eq!(link.status, 201, "{}", link.text);
    let url = link.body["url"].as_str().unwrap();
    let path = &url[url.find("/security/").unwrap()..];
    let url = format!("{}{path}", server.base_url);
    let cookie = tokio::task::spawn_blocking(move || {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .build()
            .into();
        let response = agent.post(&url).send_empty().unwrap();
        assert_eq!(response.status().as_u16(), 303);
        let cookie = response.headers().get("set-cookie").unwrap();
        cookie
            .to_str()
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .to_owned()
    })
    .await
    .unwrap();
    let token = cookie.trim_start_matches("pc_session=");
    let csrf = portcullis_app::guard::csrf_token(token);
    (cookie, csrf)
}

/// A script call from the security center's page.
async fn center_post(server: &TestServer, session: &(String, String), path: &str) -> Reply {
    let url = format!("{}{path}", server.base_url);
    let (cookie, csrf) = session.clone();
    tokio::task::spawn_blocking(move || {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        let mut response = agent
            .post(&url)
            .header("cookie", &cookie)
            .header("x-csrf-token", &csrf)
            .header("content-type", "application/json")
            .send(json!({ "code": "123456" }).to_string())
            .unwrap();
        let retry_after = response
            .headers()
            .get("retry-after")
            .map(|v| v.to_str().unwrap().to_owned());
        let text = response.body_mut().read_to_string().unwrap();
        Reply {
            status: response.status().as_u16(),
            body: serde_json::from_str(&text).unwrap_or(Value::Null),
            text,
            retry_after,
            csp: None,
        }
    })
    .await
    .unwrap()
}

async fn step_ups_are_limited_per_account(backend: Backend) {
    let server = start(backend, |config| {
        config.rate_limit_account_per_minute = 6;
        config.rate_limit_account_burst = 3;
    })
    .await;
    for id in ["acc_a", "acc_b", "acc_c"] {
        account(&server, id).await;
    }
    let admin = server.admin();
    let step_up = |account: &str| format!("/v1/accounts/{account}/step-up/totp");
    let body = json!({ "code": "123456" });
    for _ in 0..3 {
        let reply = admin.post(&step_up("acc_a"), &body).await;
        assert_eq!(code_of(&reply), (400, "totp_not_enrolled"));
    }
    assert_limited(&admin.post(&step_up("acc_a"), &body).await, "10");
    // Another account has a bucket of its own.
    let other = admin.post(&step_up("acc_b"), &body).await;
    assert_eq!(code_of(&other), (400, "totp_not_enrolled"));
    server.clock.advance(10_000);
    let again = admin.post(&step_up("acc_a"), &body).await;
    assert_eq!(code_of(&again), (400, "totp_not_enrolled"));

    // The security center's step-ups and posts draw on the same per-account bucket.
    let session = sign_in(&server, "acc_c").await;
    for _ in 0..3 {
        let reply = center_post(&server, &session, "/security/api/step-up/totp").await;
        assert_eq!(
            code_of(&reply),
            (400, "totp_not_enrolled"),
            "{}",
            reply.text
        );
    }
    let refused = center_post(&server, &session, "/security/api/step-up/passkey/start").await;
    assert_limited(&refused, "10");
    assert_limited(&admin.post(&step_up("acc_c"), &body).await, "10");
    server.clock.advance(10_000);
    let reply = center_post(&server, &session, "/security/api/step-up/totp").await;
    assert_eq!(
        code_of(&reply),
        (400, "totp_not_enrolled"),
        "{}",
        reply.text
    );
    assert_eq!(
        metric(&server, "portcullis_rate_limited_total{limit=\"account\"}").await,
        "portcullis_rate_limited_total{limit=\"account\"} 3"
    );
}

/// Enrols an authenticator app and returns it, with the code that confirmed it.
async fn enrol_totp(server: &TestServer, account: &str) -> (Totp, String) {
    let admin = server.admin();
    let started = admin
        .post(&format!("/v1/accounts/{account}/totp"), &json!({}))
        .await;
    assert_eq!(started.status, 201, "{}", started.text);
    let app = Totp::from_url(started.body["provisioning_uri"].as_str().unwrap()).unwrap();
    let code = code_at(&app, server, 0);
    let confirmed = admin
        .post(
            &format!("/v1/accounts/{account}/totp/confirm"),
            &json!({ "code": code }),
        )
        .await;
    assert_eq!(confirmed.status, 204, "{}", confirmed.text);
    (app, code)
}

/// The app's code `steps` time steps from now.
fn code_at(app: &Totp, server: &TestServer, steps: i64) -> String {
    let seconds = server.now().as_millis() / 1000 + 30 * steps;
    app.generate(u64::try_from(seconds).unwrap()).to_string()
}

/// A code the server refuses now (none of the steps its skew accepts).
fn wrong_code(app: &Totp, server: &TestServer) -> String {
    let accepted = [-1, 0, 1].map(|steps| code_at(app, server, steps));
    ["000000", "111111", "222222"]
        .into_iter()
        .find(|guess| !accepted.iter().any(|code| code == guess))
        .unwrap()
        .to_owned()
}

/// Sends wrong codes until the method locks; returns how long it locked for.
async fn lock_out(server: &TestServer, app: &Totp, path: &str) -> i64 {
    let admin = server.admin();
    for attempt in 1..5 {
        let wrong = admin
            .post(path, &json!({ "code": wrong_code(app, server) }))
            .await;
        assert_eq!(code_of(&wrong), (403, "totp_wrong"), "attempt {attempt}");
    }
    let locked = admin
        .post(path, &json!({ "code": wrong_code(app, server) }))
        .await;
    assert_eq!(code_of(&locked), (423, "step_up_locked"), "{}", locked.text);
    let message = locked.body["error"]["message"].as_str().unwrap();
    let until = message.rsplit(' ').next().unwrap();
    let until = portcullis_core::time::UnixMillis::parse_rfc3339(until).unwrap();
    until.millis_since(server.now())
}

async fn totp_lockouts_grow_and_reused_codes_do_not_count(backend: Backend) {
    let server = start(backend, |_| {}).await;
    account(&server, "acc_t").await;
    let (app, confirmation) = enrol_totp(&server, "acc_t").await;
    let path = "/v1/accounts/acc_t/step-up/totp";
    let admin = server.admin();
    // The confirmation's step is spent; sending it again and again never locks anything.
    for _ in 0..8 {
        let reused = admin.post(path, &json!({ "code": confirmation })).await;
        assert_eq!(code_of(&reused), (403, "totp_reused"), "{}", reused.text);
    }
    // The first lockout is 15 minutes; each next one of the streak longer, up to a day.
    for expected in [15 * MINUTE, HOUR, 4 * HOUR, DAY, DAY] {
        assert_eq!(lock_out(&server, &app, path).await, expected);
        server.clock.advance(expected - 1_000);
        let right = admin
            .post(path, &json!({ "code": code_at(&app, &server, 0) }))
            .await;
        assert_eq!(code_of(&right), (423, "step_up_locked"), "still locked");
        server.clock.advance(1_000);
    }
    // The right code passes once the lockout ends; it does not lower the level.
    let passed = admin
        .post(path, &json!({ "code": code_at(&app, &server, 0) }))
        .await;
    assert_eq!(passed.status, 201, "{}", passed.text);
    server.clock.advance(30_000);
    assert_eq!(lock_out(&server, &app, path).await, DAY);
    // A quiet day after the lockout ends steps the level down one.
    server.clock.advance(DAY + DAY);
    assert_eq!(lock_out(&server, &app, path).await, 4 * HOUR);
}

/// The CLI sends its requests through the router in-process, with no connection and so no peer
/// address: nothing is limited per IP there, and nothing fails for want of an address.
async fn in_process_requests_have_no_per_ip_limit(backend: Backend) {
    use tower::ServiceExt as _;
    let server = start(backend, |config| {
        config.rate_limit_ip_per_minute = 1;
        config.rate_limit_ip_burst = 1;
    })
    .await;
    let limits = portcullis_server::limits::RateLimits::new(
        &server.settings.rate_limits,
        server.clock.clone(),
    );
    let state = portcullis_server::state::AppState::with_policy_file(
        server.app.clone(),
        None,
        None,
        Arc::new(limits),
    );
    let router = portcullis_server::router(state, &server.settings);
    for _ in 0..3 {
        let request = axum::http::Request::builder()
            .method("POST")
            .uri("/cancel/pcx_forged")
            .body(axum::body::Body::empty())
            .unwrap();
        let response = router.clone().oneshot(request).await.unwrap();
        assert_eq!(response.status(), 404);
    }
    // Over HTTP the same server's bucket of one is spent after one request.
    let anonymous = server.anonymous();
    assert_eq!(anonymous.get("/cancel/pcx_forged").await.status, 404);
    assert_limited(&anonymous.get("/cancel/pcx_forged").await, "60");
}

on_both_backends!(
    in_process_requests_have_no_per_ip_limit,
    public_links_are_limited_per_address,
    step_ups_are_limited_per_account,
    totp_lockouts_grow_and_reused_codes_do_not_count,
);
