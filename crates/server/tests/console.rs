//! The analyst console over real HTTP on both backends: enrolment links (single use, expiry,
//! only their hash stored, admins only), passkey enrolment and sign-in with a software
//! authenticator, the session cookie and its idle timeout, four-eyes releases of engine holds
//! (through the API and the console alike), and the audit entries each step leaves.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::center::{agent, blocking, request};
use common::guard::engine_hold;
use common::soft_passkey::SoftPasskey;
use common::{Backend, Client, TestServer};
use serde_json::{Value, json};

const ORIGIN: &str = "http://localhost:8443";
const MINUTE: i64 = 60_000;

async fn server(backend: Backend) -> TestServer {
    common::center::server(backend).await
}

/// An operator created through the API: (id, name, API client).
async fn operator(server: &TestServer, role: &str) -> (String, String, Client) {
    let name = format!(
        "{role}-{}",
        portcullis_app::random::alphanumeric(6).unwrap()
    );
    let created = server
        .admin()
        .post("/v1/operators", &json!({ "name": name, "role": role }))
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
    let id = created.body["operator"]["id"].as_str().unwrap().to_owned();
    let client = server.client(created.body["token"].as_str().unwrap());
    (id, name, client)
}

/// A fresh enrolment link's token for `who`.
async fn enrol_link(server: &TestServer, who: &str) -> String {
    let reply = server
        .admin()
        .post(&format!("/v1/operators/{who}/enrol-link"), &json!({}))
        .await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    let url = reply.body["url"].as_str().unwrap();
    let prefix = format!("{ORIGIN}/console/enrol/");
    assert!(url.starts_with(&format!("{prefix}pce_")), "{url}");
    url[prefix.len()..].to_owned()
}

async fn post(server: &TestServer, path: &str, body: Value) -> (u16, Option<String>, Value) {
    let (status, cookie, text) =
        request(&server.base_url, "POST", path, None, None, Some(body)).await;
    (
        status,
        cookie,
        serde_json::from_str(&text).unwrap_or(Value::Null),
    )
}

fn code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or("")
}

/// A signed-in console: the cookie to send and the page's anti-CSRF token.
struct Console {
    cookie: String,
    csrf: String,
}

/// The console session a finished ceremony's `Set-Cookie` opened.
fn session_of(set_cookie: &str) -> Console {
    assert!(
        set_cookie.contains("HttpOnly")
            && set_cookie.contains("SameSite=Strict")
            && set_cookie.contains("Path=/console"),
        "{set_cookie}"
    );
    let token = set_cookie
        .split(';')
        .next()
        .unwrap()
        .trim_start_matches("pc_console=");
    Console {
        cookie: format!("pc_console={token}"),
        csrf: portcullis_app::guard::csrf_token(token),
    }
}

/// Enrols a passkey from a link; the session it opens.
async fn enrol(server: &TestServer, token: &str, passkey: &mut SoftPasskey) -> Console {
    let (status, _, started) = post(
        server,
        "/console/api/enrol/start",
        json!({ "token": token }),
    )
    .await;
    assert_eq!(status, 200, "{started}");
    let credential = passkey.register(&started["options"]);
    let body =
        json!({ "token": token, "ceremony_id": started["ceremony_id"], "credential": credential });
    let (status, cookie, done) = post(server, "/console/api/enrol/finish", body).await;
    assert_eq!(status, 200, "{done}");
    assert_eq!(done["redirect"], "/console");
    session_of(&cookie.unwrap())
}

async fn sign_in(server: &TestServer, name: &str, passkey: &mut SoftPasskey) -> Console {
    let (status, _, started) = post(
        server,
        "/console/api/sign-in/start",
        json!({ "name": name }),
    )
    .await;
    assert_eq!(status, 200, "{started}");
    let credential = passkey.assert(&started["options"]);
    let body = json!({ "ceremony_id": started["ceremony_id"], "credential": credential });
    let (status, cookie, done) = post(server, "/console/api/sign-in/finish", body).await;
    assert_eq!(status, 200, "{done}");
    session_of(&cookie.unwrap())
}

async fn page(server: &TestServer, console: &Console, path: &str) -> (u16, String) {
    let (status, _, text) = request(
        &server.base_url,
        "GET",
        path,
        Some(console.cookie.clone()),
        None,
        None,
    )
    .await;
    (status, text)
}

/// A console form post (url-encoded, with the page's token): (status, Location or body).
async fn form(
    server: &TestServer,
    console: &Console,
    path: &str,
    fields: &[(&str, &str)],
) -> (u16, String) {
    let url = format!("{}{path}", server.base_url);
    let cookie = console.cookie.clone();
    let mut body = format!("csrf={}", console.csrf);
    for (k, v) in fields {
        body.push_str(&format!("&{k}={v}"));
    }
    blocking(move || {
        let mut response = agent()
            .post(&url)
            .header("cookie", &cookie)
            .header("content-type", "application/x-www-form-urlencoded")
            .send(body)
            .unwrap();
        let location = response
            .headers()
            .get("location")
            .map(|v| v.to_str().unwrap().to_owned());
        let status = response.status().as_u16();
        (
            status,
            location.unwrap_or_else(|| response.body_mut().read_to_string().unwrap_or_default()),
        )
    })
    .await
}

async fn audited(server: &TestServer, action: &str) -> Vec<Value> {
    let audit = server.admin().get("/v1/audit?limit=1000").await;
    audit
        .body
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == action)
        .cloned()
        .collect()
}

async fn an_enrolment_link_works_once_until_it_expires(backend: Backend) {
    let server = server(backend).await;
    let (id, name, analyst) = operator(&server, "analyst").await;
    let (_, integration_name, _) = operator(&server, "integration").await;
    // Only an administrator mints them, and only for people who review.
    let refused = analyst
        .post(&format!("/v1/operators/{name}/enrol-link"), &json!({}))
        .await;
    assert_eq!(refused.status, 403, "{}", refused.text);
    let refused = server
        .admin()
        .post(
            &format!("/v1/operators/{integration_name}/enrol-link"),
            &json!({}),
        )
        .await;
    assert_eq!(refused.status, 400, "{}", refused.text);

    let token = enrol_link(&server, &name).await;
    // Only the hash is stored.
    assert!(
        server
            .app
            .store
            .enrolment_link(&token)
            .await
            .unwrap()
            .is_none()
    );
    let stored = server
        .app
        .store
        .enrolment_link(&portcullis_app::operators::token_hash(&token))
        .await
        .unwrap();
    assert_eq!(stored.unwrap().operator, id);
    // A GET shows who it is for and spends nothing.
    let (status, _, html) = request(
        &server.base_url,
        "GET",
        &format!("/console/enrol/{token}"),
        None,
        None,
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert!(html.contains(&name), "{html}");

    let mut passkey = SoftPasskey::new(ORIGIN);
    let console = enrol(&server, &token, &mut passkey).await;
    let (status, html) = page(&server, &console, "/console").await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("Queue") && html.contains(&name), "{html}");
    // Used: a second enrolment from the same link is refused, and says so.
    let (status, _, again) = post(
        &server,
        "/console/api/enrol/start",
        json!({ "token": token }),
    )
    .await;
    assert_eq!(
        (status, code(&again)),
        (403, "sign_in_link_used"),
        "{again}"
    );

    // An unused link past its hour is refused.
    let late = enrol_link(&server, &id).await;
    server.clock.advance(61 * MINUTE);
    let (status, _, expired) = post(
        &server,
        "/console/api/enrol/start",
        json!({ "token": late }),
    )
    .await;
    assert_eq!(
        (status, code(&expired)),
        (403, "sign_in_link_expired"),
        "{expired}"
    );
    let (status, _, _) = post(
        &server,
        "/console/api/enrol/start",
        json!({ "token": "pce_forged" }),
    )
    .await;
    assert_eq!(status, 403);

    // The session idled past its timeout: signed out. The passkey signs in again.
    let (status, _) = page(&server, &console, "/console").await;
    assert_eq!(status, 303, "an idle session ends");
    let console = sign_in(&server, &name, &mut passkey).await;
    assert_eq!(page(&server, &console, "/console").await.0, 200);
    // An unknown operator has no passkey to answer with.
    let (status, _, unknown) = post(
        &server,
        "/console/api/sign-in/start",
        json!({ "name": "nobody" }),
    )
    .await;
    assert_eq!(
        (status, code(&unknown)),
        (403, "passkey_not_enrolled"),
        "{unknown}"
    );
    // Signing out ends the session.
    let (status, location) = form(&server, &console, "/console/sign-out", &[]).await;
    assert_eq!((status, location.as_str()), (303, "/console/sign-in"));
    assert_eq!(page(&server, &console, "/console").await.0, 303);

    for action in [
        "operator.enrolment_link_issued",
        "operator.passkey_enrolled",
        "console.signed_in",
        "console.signed_out",
    ] {
        let entries = audited(&server, action).await;
        assert!(!entries.is_empty(), "{action} audited");
    }
    let signed_in = audited(&server, "console.signed_in").await;
    assert!(
        signed_in.iter().all(|e| e["actor"] == id.as_str()),
        "{signed_in:?}"
    );
}

/// An account with a key whose widening (asked for during a phone call) the engine held.
async fn an_engine_hold_needs_a_second_operator(backend: Backend) {
    let server = server(backend).await;
    let (first_id, first_name, first) = operator(&server, "analyst").await;
    let (second_id, _, second) = operator(&server, "analyst").await;

    // Through the API.
    let change = engine_hold(&server, "acc_api").await;
    let path = format!("/v1/changes/{change}/release");
    let approved = first.post(&path, &json!({})).await;
    assert_eq!(approved.body["status"], "held", "{}", approved.text);
    assert_eq!(approved.body["release_approved_by"], first_id.as_str());
    let again = first.post(&path, &json!({})).await;
    assert_eq!(
        (again.status, again.body["error"]["code"].as_str()),
        (403, Some("second_operator_required")),
        "{}",
        again.text
    );
    assert!(again.text.contains("second operator"), "{}", again.text);
    server.clock.advance(25 * 60 * MINUTE);
    let released = second.post(&path, &json!({})).await;
    assert_eq!(released.body["status"], "applied", "{}", released.text);
    assert_eq!(released.body["released_by"], second_id.as_str());

    // Through the console: the first approval there, the same operator's token refused.
    let change = engine_hold(&server, "acc_console").await;
    let token = enrol_link(&server, &first_name).await;
    let console = enrol(&server, &token, &mut SoftPasskey::new(ORIGIN)).await;
    let case = "/console/accounts/acc_console".to_owned();
    let (status, html) = page(&server, &console, &case).await;
    assert_eq!(status, 200);
    assert!(html.contains("Approve release (1 of 2)"), "{html}");
    let (status, location) = form(
        &server,
        &console,
        &format!("/console/changes/{change}/release"),
        &[("back", &case)],
    )
    .await;
    assert_eq!((status, location.as_str()), (303, case.as_str()));
    let (_, html) = page(&server, &console, &case).await;
    assert!(
        html.contains(&format!("Release approved by {first_name}:")),
        "{html}"
    );
    // The timeline names who did it too, not their id.
    assert!(
        html.contains(&format!("<td data-label=\"Who\">{first_name}</td>")),
        "{html}"
    );
    let (status, refusal) = form(
        &server,
        &console,
        &format!("/console/changes/{change}/release"),
        &[],
    )
    .await;
    assert_eq!(status, 403, "{refusal}");
    assert!(refusal.contains("second_operator_required"), "{refusal}");
    let api = first
        .post(&format!("/v1/changes/{change}/release"), &json!({}))
        .await;
    assert_eq!(api.status, 403, "{}", api.text);
    // A form without the page's token changes nothing.
    let forged = Console {
        cookie: console.cookie.clone(),
        csrf: "0".repeat(32),
    };
    let (status, _) = form(
        &server,
        &forged,
        &format!("/console/changes/{change}/cancel"),
        &[],
    )
    .await;
    assert_eq!(status, 403);
    let completed = second
        .post(&format!("/v1/changes/{change}/release"), &json!({}))
        .await;
    assert_eq!(completed.body["status"], "pending", "{}", completed.text);
    assert_eq!(
        completed.body["released_by"],
        second_id.as_str(),
        "released; it applies when its cool-down ends"
    );

    let approvals = audited(&server, "widening.release_approved").await;
    assert_eq!(approvals.len(), 2, "{approvals:?}");
    assert!(approvals.iter().all(|e| e["actor"] == first_id.as_str()));
    let releases = audited(&server, "widening.released").await;
    assert!(
        releases.len() == 2 && releases.iter().all(|e| e["actor"] == second_id.as_str()),
        "{releases:?}"
    );
    // The case's timeline shows both operators' steps.
    let (_, html) = page(&server, &console, &case).await;
    assert!(
        html.contains("widening.release_approved") && html.contains("widening.released"),
        "{html}"
    );
}

/// An operator's own hold is released by one call, so it must not replace the risk engine's:
/// holding an engine-held change first would let one analyst release it alone.
async fn an_operator_hold_does_not_replace_an_engine_hold(backend: Backend) {
    let server = server(backend).await;
    let (first_id, _, first) = operator(&server, "analyst").await;
    let change = engine_hold(&server, "acc_rehold").await;
    let held = first
        .post(
            &format!("/v1/changes/{change}/hold"),
            &json!({ "reason": "mine now" }),
        )
        .await;
    assert_eq!(
        (held.status, held.body["error"]["code"].as_str()),
        (409, Some("change_held")),
        "{}",
        held.text
    );
    let path = format!("/v1/changes/{change}/release");
    let approved = first.post(&path, &json!({})).await;
    assert_eq!(approved.body["status"], "held", "{}", approved.text);
    assert_eq!(approved.body["release_approved_by"], first_id.as_str());
    let alone = first.post(&path, &json!({})).await;
    assert_eq!(alone.status, 403, "{}", alone.text);
}

/// The end state of a race: the engine decided to hold a widening, but an operator's hold had
/// moved the change first, so the engine's hold was never recorded (its version check failed).
/// Releasing the operator's hold records the engine's instead, which takes two operators.
async fn a_release_records_the_engines_hold_that_an_operators_hold_got_ahead_of(backend: Backend) {
    let server = server(backend).await;
    let (first_id, _, first) = operator(&server, "analyst").await;
    let (_, _, second) = operator(&server, "analyst").await;
    let (key_id, _, _) = common::guard::account_with_key(&server, "acc_race").await;
    let app = common::guard::enrol_totp(&server, "acc_race").await;
    let token = common::guard::grant(&server, "acc_race", &app).await;
    let widen = json!({ "scopes": ["read", "trade", "withdraw"], "step_up_grant": token });
    let pending = server
        .admin()
        .patch(&format!("/v1/keys/{key_id}"), &widen)
        .await;
    assert_eq!(pending.body["status"], "pending", "{}", pending.text);
    let change = pending.body["id"].as_str().unwrap().to_owned();
    let event = pending.body["event_id"].as_str().unwrap().to_owned();
    let held = first
        .post(
            &format!("/v1/changes/{change}/hold"),
            &json!({ "reason": "checking" }),
        )
        .await;
    assert_eq!(held.body["status"], "held", "{}", held.text);
    server
        .execute_sql(&format!(
            "UPDATE decisions SET decision = 'hold', reasons = '[\"the engine held it\"]' \
             WHERE event_id = '{event}'"
        ))
        .await;
    let path = format!("/v1/changes/{change}/release");
    let stopped = first.post(&path, &json!({})).await;
    assert_eq!(stopped.body["status"], "held", "{}", stopped.text);
    assert!(stopped.text.contains("risk-engine"), "{}", stopped.text);
    let approved = first.post(&path, &json!({})).await;
    assert_eq!(approved.body["release_approved_by"], first_id.as_str());
    let alone = first.post(&path, &json!({})).await;
    assert_eq!(alone.status, 403, "{}", alone.text);
    let released = second.post(&path, &json!({})).await;
    assert_eq!(released.body["status"], "pending", "{}", released.text);
}

async fn console_actions_are_audited_under_the_operator_and_shown_in_the_case(backend: Backend) {
    let server = server(backend).await;
    let (admin_id, _, _) = operator(&server, "admin").await;
    let (analyst_id, analyst_name, _) = operator(&server, "analyst").await;
    let ana = enrol(
        &server,
        &enrol_link(&server, &analyst_name).await,
        &mut SoftPasskey::new(ORIGIN),
    )
    .await;
    let change = engine_hold(&server, "acc_f").await;
    let case = "/console/accounts/acc_f";

    // Assigning: to another operator, audited on the item's account.
    let item = format!("change:{change}");
    let (status, location) = form(
        &server,
        &ana,
        "/console/assign",
        &[
            ("item", &item),
            ("assignee", &admin_id),
            ("back", "/console?kind=change"),
        ],
    )
    .await;
    assert_eq!((status, location.as_str()), (303, "/console?kind=change"));
    let (_, queue) = page(&server, &ana, &format!("/console?assignee={admin_id}")).await;
    assert!(queue.contains(&item), "{queue}");
    let (status, refusal) = form(
        &server,
        &ana,
        "/console/assign",
        &[("item", "key:k_1"), ("assignee", &admin_id)],
    )
    .await;
    assert_eq!(status, 400, "{refusal}");
    // A form never leads off the console.
    let (_, location) = form(
        &server,
        &ana,
        "/console/assign",
        &[
            ("item", &item),
            ("assignee", ""),
            ("back", "//evil.example"),
        ],
    )
    .await;
    assert_eq!(location, "/console");

    // An account only the exchange's feed knows has a case too; one nobody knows is not found.
    let login = json!({ "id": "feed-only-login", "ts": server.now().to_rfc3339(), "type": "login", "account": "acc_feed_only", "method": "password", "success": true, "ctx": { "ip": "192.0.2.44" } });
    common::guard::feed(&server, &[login]).await;
    let (status, feed_only) = page(&server, &ana, "/console/accounts/acc_feed_only").await;
    assert_eq!(status, 200, "{feed_only}");
    assert!(feed_only.contains("192.0.2.44"), "its timeline");
    let (status, _) = page(&server, &ana, "/console/accounts/acc_nobody").await;
    assert_eq!(status, 404);

    // Overrides: an analyst suppresses for some hours; force needs its permission.
    let fields = [
        ("kind", "ip"),
        ("value", "203.0.113.7"),
        ("action", "suppress"),
        ("hours", "2"),
        ("note", "office"),
        ("back", case),
    ];
    let (status, location) = form(&server, &ana, "/console/overrides", &fields).await;
    assert_eq!((status, location.as_str()), (303, case));
    let overrides = server.admin().get("/v1/overrides").await;
    assert_eq!(
        overrides.body[0]["action"], "suppress",
        "{}",
        overrides.text
    );
    assert!(
        overrides.body[0]["expires_at"].is_string(),
        "{}",
        overrides.text
    );
    let forced = [
        ("kind", "ip"),
        ("value", "203.0.113.7"),
        ("action", "force"),
        ("hours", "2"),
    ];
    assert_eq!(
        form(&server, &ana, "/console/overrides", &forced).await.0,
        403
    );
    let forever = [
        ("kind", "ip"),
        ("value", "203.0.113.7"),
        ("action", "suppress"),
        ("hours", "0"),
    ];
    let (status, refusal) = form(&server, &ana, "/console/overrides", &forever).await;
    assert!(
        status == 400 && refusal.contains("1 to 2160 hours"),
        "{refusal}"
    );

    // Freezing is protective: the analyst may (lifting it takes a role that manages keys).
    let (status, location) = form(&server, &ana, &format!("{case}/freeze"), &[]).await;
    assert_eq!((status, location.as_str()), (303, case));
    let analyst_api = server.operator("analyst").await;
    let lift = analyst_api
        .post("/v1/accounts/acc_f/unfreeze", &json!({}))
        .await;
    assert_eq!(lift.status, 403, "{}", lift.text);
    let protection = server.admin().get("/v1/accounts/acc_f/protection").await;
    assert!(
        protection.body["frozen_at"].is_string(),
        "{}",
        protection.text
    );

    for (action, actor) in [
        ("console.assigned", &analyst_id),
        ("network.override_set", &analyst_id),
        ("account.frozen", &analyst_id),
    ] {
        let entries = audited(&server, action).await;
        assert!(
            !entries.is_empty() && entries.iter().all(|e| e["actor"] == actor.as_str()),
            "{action}: {entries:?}"
        );
    }
    // The case shows the freeze and the assignments in its timeline, and the change cancelled.
    let (_, html) = page(&server, &ana, case).await;
    assert!(
        html.contains("account.frozen") && html.contains("console.assigned"),
        "{html}"
    );
    assert!(
        html.contains(&format!("closed-{change}")),
        "the freeze cancelled the open change: {html}"
    );
    assert!(html.contains("Frozen"), "{html}");
}

on_both_backends!(
    an_enrolment_link_works_once_until_it_expires,
    an_engine_hold_needs_a_second_operator,
    an_operator_hold_does_not_replace_an_engine_hold,
    a_release_records_the_engines_hold_that_an_operators_hold_got_ahead_of,
    console_actions_are_audited_under_the_operator_and_shown_in_the_case,
);
