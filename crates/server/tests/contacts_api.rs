//! "Is this really the exchange?" through the running server, on both backends: registry
//! changes audited and refused to everyone but an admin, verification answers and bad input as
//! 400s with stable codes, and reports counted per contact from the event log (across a
//! restart, without counting twice) until a contact becomes a known scam.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{Backend, TestServer};
use portcullis_app::contacts::NewReport;
use portcullis_app::{Actor, AppError};
use serde_json::{Value, json};

async fn add(server: &TestServer, kind: &str, value: &str, note: &str) -> Value {
    let added = server
        .admin()
        .post(
            "/v1/contacts/official",
            &json!({ "kind": kind, "value": value, "note": note }),
        )
        .await;
    assert_eq!(added.status, 201, "{}", added.text);
    added.body
}

async fn verify(server: &TestServer, value: &str) -> Value {
    let answer = server
        .admin()
        .post("/v1/contacts/verify", &json!({ "value": value }))
        .await;
    assert_eq!(answer.status, 200, "{value}: {}", answer.text);
    answer.body
}

async fn audit_actions(server: &TestServer) -> Vec<(String, String)> {
    let audit = server.admin().get("/v1/audit?limit=1000").await;
    assert_eq!(audit.status, 200, "{}", audit.text);
    (audit.body.as_array().unwrap().iter())
        .map(|e| {
            (
                e["action"].as_str().unwrap().to_owned(),
                e["target"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

async fn registry_changes_are_audited_and_only_admins_make_them(backend: Backend) {
    let server = TestServer::start(backend).await;
    let site = add(
        &server,
        "domain",
        "https://www.Exchange.example/",
        "our website",
    )
    .await;
    assert_eq!(site["value"], "exchange.example");
    let line = add(&server, "phone", "+44 20 7946 0958", "24/7 support line").await;
    assert_eq!(
        (line["value"].as_str(), line["direction"].as_str()),
        (Some("+442079460958"), Some("inbound"))
    );
    add(&server, "email", "exchange.example", "").await;
    add(&server, "handle", "@Exchange_Support", "").await;
    let again = (server.admin())
        .post(
            "/v1/contacts/official",
            &json!({ "kind": "phone", "value": "+442079460958" }),
        )
        .await;
    assert_eq!(
        (again.status, again.body["error"]["code"].as_str()),
        (409, Some("conflict"))
    );

    let listed = server.admin().get("/v1/contacts/official").await;
    assert_eq!(listed.body.as_array().unwrap().len(), 4);
    let id = line["id"].as_str().unwrap();
    let removed = server
        .admin()
        .delete(&format!("/v1/contacts/official/{id}"))
        .await;
    assert_eq!(removed.status, 200, "{}", removed.text);
    let missing = server
        .admin()
        .delete(&format!("/v1/contacts/official/{id}"))
        .await;
    assert_eq!(missing.status, 404);

    let actions = audit_actions(&server).await;
    let added = actions
        .iter()
        .filter(|(a, _)| a == "contact.official_added")
        .count();
    assert_eq!(added, 4, "{actions:?}");
    assert!(actions.contains(&("contact.official_removed".into(), format!("contact:{id}"))));
    let chain = server.admin().get("/v1/audit/verify").await;
    assert_eq!(chain.body["intact"], true, "{}", chain.text);

    // Nobody else changes the registry: not an analyst, not the exchange's backend, not a
    // customer; every role may verify.
    for role in ["analyst", "integration"] {
        let client = server.operator(role).await;
        let refused = client
            .post(
                "/v1/contacts/official",
                &json!({ "kind": "domain", "value": "x.example" }),
            )
            .await;
        assert_eq!(refused.status, 403, "{role}");
        let answer = client
            .post(
                "/v1/contacts/verify",
                &json!({ "value": "exchange.example" }),
            )
            .await;
        assert_eq!(answer.body["verdict"], "official", "{role}");
    }
    let customer = Actor::customer("acc_1");
    let new = portcullis_app::contacts::NewOfficial {
        kind: "domain".into(),
        value: "x.example".into(),
        ..Default::default()
    };
    assert!(matches!(
        server.app.contacts.add_official(&customer, &new).await,
        Err(AppError::Forbidden)
    ));
    assert!(matches!(
        server.app.contacts.list_official(&customer).await,
        Err(AppError::Forbidden)
    ));
    assert!(matches!(
        server.app.contacts.reports(&customer, 10).await,
        Err(AppError::Forbidden)
    ));
    assert_eq!(
        verify(&server, "+44 20 7946 0958").await["verdict"],
        "not_official",
        "removed"
    );
}

async fn answers_name_what_they_found_and_bad_input_is_a_400_with_a_code(backend: Backend) {
    let server = TestServer::start(backend).await;
    add(&server, "domain", "exchange.example", "our website").await;
    add(&server, "phone", "+442079460958", "24/7 support line").await;

    let official = verify(&server, "(+44) 020 7946 0958").await;
    assert_eq!(official["verdict"], "official", "{official}");
    let explanation = official["explanation"].as_str().unwrap();
    assert!(
        explanation.contains("we never call you from it"),
        "{explanation}"
    );
    assert!(
        explanation.contains("not that a message is genuine"),
        "{explanation}"
    );

    let fake = verify(&server, "https://exchange.example.account-verify.io/login").await;
    assert_eq!(
        (fake["verdict"].as_str(), fake["lookalike"].as_str()),
        (Some("lookalike"), Some("official_name_as_subdomain"))
    );
    assert_eq!(fake["official_match"]["value"], "exchange.example");
    assert_eq!(
        verify(&server, "exchange-support.com").await["lookalike"],
        "brand_with_added_word"
    );
    assert_eq!(
        verify(&server, "exchnage.example").await["lookalike"],
        "transposition"
    );
    assert_eq!(
        verify(&server, "nobody@example.org").await["verdict"],
        "not_official"
    );

    for (value, code) in [
        ("", "empty_value"),
        ("   ", "empty_value"),
        (&"a".repeat(2049) as &str, "value_too_long"),
        ("exchange.example\u{0}", "control_characters"),
        ("line\nbreak", "control_characters"),
        ("xn--a.example", "invalid_punycode"),
        ("https://xn--zz-.example/", "invalid_punycode"),
        ("0207 946 0958", "invalid_phone"),
        ("+999 1234 5678", "invalid_phone"),
        ("a b c", "invalid_handle"),
    ] {
        let refused = server
            .admin()
            .post("/v1/contacts/verify", &json!({ "value": value }))
            .await;
        assert_eq!(
            (refused.status, refused.body["error"]["code"].as_str()),
            (400, Some(code)),
            "{value:?}: {}",
            refused.text
        );
    }
    let refused = server
        .admin()
        .post(
            "/v1/contacts/official",
            &json!({ "kind": "fax", "value": "1" }),
        )
        .await;
    assert_eq!(refused.body["error"]["code"], "invalid_contact_kind");
    let refused = server
        .admin()
        .post(
            "/v1/contacts/official",
            &json!({ "kind": "handle", "value": "ok", "direction": "sideways" }),
        )
        .await;
    assert_eq!(refused.body["error"]["code"], "invalid_direction");
    // The service still answers after all of it.
    assert_eq!(
        verify(&server, "exchange.example").await["verdict"],
        "official"
    );
}

fn report(value: &str, claimed: &str) -> NewReport {
    NewReport {
        account: None,
        value: value.into(),
        channel: Some("phone".into()),
        claimed: Some(claimed.into()),
    }
}

async fn reports_are_counted_once_across_restarts_until_a_contact_is_a_known_scam(
    backend: Backend,
) {
    let server = TestServer::start_with(backend, |c| c.contact_report_threshold = 2).await;
    add(&server, "domain", "exchange.example", "").await;
    let contacts = &server.app.contacts;
    let caller = "+44 7700 900123";
    // Anonymous reports from the public page are counted apart and never make a scam.
    let public = Actor::system();
    for _ in 0..5 {
        contacts
            .report(&public, &report(caller, "Exchange support"))
            .await
            .unwrap();
    }
    assert_eq!(verify(&server, caller).await["verdict"], "not_official");
    contacts
        .report(
            &Actor::customer("acc_1"),
            &report("+447700900123", "Exchange security team"),
        )
        .await
        .unwrap();
    assert_eq!(
        verify(&server, caller).await["verdict"],
        "not_official",
        "one report is below the threshold"
    );

    // The event is the contract's, with the customer's own account.
    let logged = server.logged_events().await;
    let event = logged
        .iter()
        .rev()
        .find(|e| e["type"] == "contact.reported")
        .unwrap();
    assert_eq!(
        (event["account"].as_str(), event["channel"].as_str()),
        (Some("acc_1"), Some("phone"))
    );
    assert_eq!(
        (event["from"].as_str(), event["claimed"].as_str()),
        (Some("+447700900123"), Some("Exchange security team"))
    );
    assert!(event["contacted_at"].is_string());

    // A customer cannot report in another account's name.
    let theirs = NewReport {
        account: Some("acc_2".into()),
        ..report(caller, "")
    };
    assert!(matches!(
        contacts.report(&Actor::customer("acc_1"), &theirs).await,
        Err(AppError::NotFound(_))
    ));

    let (dir, url, clock) = server.stop().await;
    let server =
        TestServer::start_on_with(dir, url, clock, |c| c.contact_report_threshold = 2).await;
    server.app.contacts.project().await.unwrap();
    server
        .app
        .contacts
        .report(&Actor::customer("acc_2"), &report(caller, "Exchange"))
        .await
        .unwrap();
    let scam = verify(&server, caller).await;
    assert_eq!(
        (scam["verdict"].as_str(), scam["reasons"][0].as_str()),
        (Some("known_scam"), Some("known_scam_reported"))
    );

    // A confirmed fraud through the event feed names its contacts as scams at once.
    let fraud = json!({"id": "f1", "ts": "2026-01-01T00:00:00Z", "type": "fraud.confirmed", "account": "acc_3",
        "from": ["https://exchange-refund.example/claim"], "addresses": [], "withdrawal_ids": []});
    let ingested = server
        .admin()
        .post_raw(
            "/v1/events",
            format!("{fraud}\n").into_bytes(),
            "application/x-ndjson",
        )
        .await;
    assert_eq!(ingested.status, 200, "{}", ingested.text);
    server.app.contacts.project().await.unwrap();
    let confirmed = verify(&server, "exchange-refund.example").await;
    assert_eq!(confirmed["verdict"], "known_scam");
    assert_eq!(confirmed["reasons"][0], "known_scam_confirmed_fraud");
    assert_eq!(
        confirmed["official_match"]["value"], "exchange.example",
        "it also names what it imitates"
    );

    let listed = server.admin().get("/v1/contacts/reports").await;
    assert_eq!(listed.status, 200, "{}", listed.text);
    let rows = listed.body.as_array().unwrap();
    let phone = rows.iter().find(|r| r["value"] == "+447700900123").unwrap();
    assert_eq!(
        (phone["reports"].as_i64(), phone["public_reports"].as_i64()),
        (Some(2), Some(5)),
        "{phone}"
    );
    assert_eq!(
        (phone["kind"].as_str(), phone["known_scam"].as_bool()),
        (Some("phone"), Some(true))
    );
    assert!(phone["first_seen"].as_str().unwrap() <= phone["last_seen"].as_str().unwrap());
    assert_eq!(phone["last_claimed"], "Exchange");
    let link = rows
        .iter()
        .find(|r| r["value"] == "exchange-refund.example")
        .unwrap();
    assert_eq!(link["confirmed_frauds"], 1);
    let analyst = server.operator("analyst").await;
    assert_eq!(analyst.get("/v1/contacts/reports").await.status, 200);
}

on_both_backends!(
    registry_changes_are_audited_and_only_admins_make_them,
    answers_name_what_they_found_and_bad_input_is_a_400_with_a_code,
    reports_are_counted_once_across_restarts_until_a_contact_is_a_known_scam,
);
