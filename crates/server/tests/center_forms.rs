//! The security center's forms and checks over real HTTP on both backends: a tab left open
//! across sign-ins (a narrowing is taken when the browser vouches for the page, else offered
//! again; anything else gets the "out of date" page, never JSON), the checks the page's script
//! runs before any step-up (they write nothing and spend nothing), and refusals that never
//! name another account.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::center::{Browser, account, code, form, server, sign_in};
use common::guard::{account_with_key, enrol_totp};
use common::{Backend, TestServer};
use serde_json::json;

async fn frozen(server: &TestServer, account: &str) -> bool {
    let reply = server
        .admin()
        .get(&format!("/v1/accounts/{account}/protection"))
        .await;
    reply.body["frozen"].as_bool().unwrap()
}

async fn a_stale_tab_freezes_and_nothing_else_passes(backend: Backend) {
    let server = server(backend).await;
    account(&server, "acc_t").await;
    let old = sign_in(&server, "acc_t").await;
    let new = sign_in(&server, "acc_t").await;
    // The old tab's token under the new session's cookie.
    let stale = Browser {
        base: new.base.clone(),
        cookie: new.cookie.clone(),
        csrf: old.csrf.clone(),
    };
    let token = [("csrf", stale.csrf.as_str())];

    // A form that is not a narrowing: a page that says so, nothing done.
    let (status, page) = form(&stale, "/security/totp/start", &token, Some("same-origin")).await;
    assert_eq!(status, 403);
    assert!(page.contains("<title>This page was out of date"), "{page}");
    assert!(page.contains("href=\"/security\""), "a way back: {page}");
    assert!(!page.contains("otpauth"), "no enrolment started");

    // Freeze without the browser vouching for the page (or from another site): offered again
    // under the current token, not done.
    for site in [None, Some("cross-site")] {
        let (status, page) = form(&stale, "/security/freeze", &token, site).await;
        assert_eq!(status, 403, "{page}");
        assert!(page.contains("action=\"/security/freeze\""), "{page}");
        assert!(page.contains(&new.csrf), "the current token: {page}");
        assert!(!frozen(&server, "acc_t").await);
    }
    // With the browser vouching for its own page, the freeze is taken.
    let (status, _) = form(&stale, "/security/freeze", &token, Some("same-origin")).await;
    assert_eq!(status, 303, "freezing works from a stale tab");
    assert!(frozen(&server, "acc_t").await);
}

/// Past the account's rate limit a form gets a page too, not JSON.
async fn a_form_past_the_limit_gets_a_page(backend: Backend) {
    let server = TestServer::start_with(backend, |config| {
        config.public_url = "http://localhost:8443".into();
        config.rate_limit_account_burst = 3;
    })
    .await;
    account(&server, "acc_l").await;
    let browser = sign_in(&server, "acc_l").await;
    let token = [("csrf", browser.csrf.as_str())];
    let mut answers = Vec::new();
    for _ in 0..5 {
        answers.push(form(&browser, "/security/settings-lock", &token, None).await);
    }
    let (status, page) = answers.last().unwrap();
    assert_eq!(*status, 429, "{answers:?}");
    assert!(page.contains("<title>Too many attempts"), "{page}");
}

async fn checks_before_the_step_up_write_nothing(backend: Backend) {
    let server = server(backend).await;
    let (key_id, _, _) = account_with_key(&server, "acc_c").await;
    let (other_key, _, _) = account_with_key(&server, "acc_other_81").await;
    let browser = sign_in(&server, "acc_c").await;
    let check = |key: &str| format!("/security/api/keys/{key}/check");
    let before = server.admin().get("/v1/audit?limit=1000").await.body;

    // A narrowing needs no step-up; a widening needs an authenticator first.
    let (status, body) = browser
        .api(
            &check(&key_id),
            json!({ "scopes": ["read"], "ip_allowlist": ["203.0.113.7"] }),
        )
        .await;
    assert_eq!(
        (status, body["step_up"].clone()),
        (200, json!(null)),
        "{body}"
    );
    let widen = json!({ "scopes": ["read", "trade", "withdraw"], "ip_allowlist": ["203.0.113.7"] });
    let (status, body) = browser.api(&check(&key_id), widen.clone()).await;
    assert_eq!(
        (status, code(&body)),
        (403, "step_up_not_enrolled"),
        "{body}"
    );

    // With an authenticator: the method, and the change's own refusals before any code.
    enrol_totp(&server, "acc_c").await;
    let (status, body) = browser.api(&check(&key_id), widen).await;
    assert_eq!(
        (status, body["step_up"].clone()),
        (200, json!("totp")),
        "{body}"
    );
    let (status, body) = browser
        .api(
            &check(&key_id),
            json!({ "scopes": ["read", "withdraw"], "ip_allowlist": [] }),
        )
        .await;
    assert_eq!(
        (status, code(&body)),
        (400, "withdraw_needs_allowlist"),
        "{body}"
    );
    let (status, body) = browser
        .api(
            "/security/api/addresses/check",
            json!({ "address": "", "asset": "USDT", "network": "TRX" }),
        )
        .await;
    assert_eq!((status, code(&body)), (400, "invalid_address"), "{body}");

    // Another account's key: not found, and its account is never named.
    let (status, body) = browser
        .api(
            &check(&other_key),
            json!({ "scopes": ["read"], "ip_allowlist": [] }),
        )
        .await;
    assert_eq!(status, 404, "{body}");
    assert!(!body.to_string().contains("acc_other_81"), "{body}");

    // The checks changed nothing: no pending change, no grant spent, the same audit trail
    // (but for the enrolment's own entries).
    let changes = server.admin().get("/v1/accounts/acc_c/changes").await.body;
    assert_eq!(changes, json!([]));
    let after = server.admin().get("/v1/audit?limit=1000").await.body;
    let actions = |v: &serde_json::Value| -> Vec<String> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|e| e["action"].as_str().unwrap().to_owned())
            .filter(|a| !a.starts_with("totp."))
            .collect()
    };
    assert_eq!(actions(&before), actions(&after));
}

on_both_backends!(
    a_stale_tab_freezes_and_nothing_else_passes,
    a_form_past_the_limit_gets_a_page,
    checks_before_the_step_up_write_nothing,
);
