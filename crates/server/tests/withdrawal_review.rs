//! Held withdrawals reviewed over real HTTP on both backends: the engine holds a withdrawal from
//! a forced crew IP; releasing it takes two different analysts (the same one twice is refused),
//! is audited step by step, leaves the queue only when finished, and is announced to the
//! customer and the exchange; cancelling takes one operator (an integration may); a finished
//! review never moves again; a frozen account's held withdrawal cannot be released; an event that is not a held withdrawal is not found.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::center::{form, request, sign_in};
use common::channels::{outbox, start_with_channels as start, start_with_channels_and};
use common::guard::{account_with_key, code_of, feed, signs_in_from};
use common::{Backend, TestServer};
use serde_json::{Value, json};

const CREW_IP: &str = "198.51.100.66";

fn withdrawal(server: &TestServer, id: &str, account: &str, minutes: i64) -> Value {
    json!({
        "id": id, "ts": server.now().plus_millis(minutes * 60_000).to_rfc3339(),
        "type": "withdrawal.requested", "account": account, "withdrawal_id": format!("w_{id}"),
        "asset": "USDT", "network": "TRX", "address": format!("TQwallet{id}"), "amount": "40",
        "amount_usd": 40.0, "ctx": { "ip": CREW_IP, "channel": "web" }
    })
}

/// Two withdrawals from the crew's IP, held because an administrator forced it, and one from
/// home that is let through.
async fn held_withdrawals(server: &TestServer) {
    account_with_key(server, "acc_h").await;
    signs_in_from(server, "acc_h", CREW_IP).await;
    let forced = server
        .admin()
        .post(
            &format!("/v1/graph/ip/{CREW_IP}/override"),
            &json!({ "action": "force", "note": "crew server" }),
        )
        .await;
    assert_eq!(forced.status, 201, "{}", forced.text);
    let mut home = withdrawal(server, "w_home", "acc_h", 2);
    home["ctx"]["ip"] = json!("203.0.113.7");
    feed(
        server,
        &[
            withdrawal(server, "w_held", "acc_h", 1),
            withdrawal(server, "w_other", "acc_feed_only", 1),
            home,
        ],
    )
    .await;
    for id in ["w_held", "w_other"] {
        let decision = server.admin().get(&format!("/v1/decisions/{id}")).await;
        assert_eq!(decision.body["decision"], "hold", "{}", decision.text);
    }
}

async fn queued(server: &TestServer) -> Vec<(String, String)> {
    let items = server.app.store.held_withdrawals(None, 100).await.unwrap();
    items
        .into_iter()
        .map(|h| {
            let state = h.review.map_or("held", |r| r.state.as_str()).to_owned();
            (h.event.event.id, state)
        })
        .collect()
}

async fn a_release_takes_two_analysts_and_is_announced(backend: Backend) {
    let server = start(backend).await;
    held_withdrawals(&server).await;
    let (first, second) = (
        server.operator("analyst").await,
        server.operator("analyst").await,
    );
    let review = first.get("/v1/withdrawals/w_held/review").await;
    assert_eq!(review.body["state"], "held", "{}", review.text);
    assert_eq!(
        code_of(
            &server
                .operator("integration")
                .await
                .post("/v1/withdrawals/w_held/release", &json!({}))
                .await
        ),
        (403, "forbidden".into()),
        "an integration cannot let money go"
    );

    let approved = first
        .post("/v1/withdrawals/w_held/release", &json!({}))
        .await;
    assert_eq!(approved.status, 200, "{}", approved.text);
    assert_eq!(approved.body["state"], "approved");
    assert_eq!(
        code_of(
            &first
                .post("/v1/withdrawals/w_held/release", &json!({}))
                .await
        ),
        (403, "second_operator_required".into())
    );
    assert!(
        queued(&server)
            .await
            .contains(&("w_held".into(), "approved".into()))
    );
    assert!(
        !outbox(&server, "acc_h")
            .await
            .iter()
            .any(|m| m.subject == "withdrawal.released"),
        "nothing is announced before the release is complete"
    );

    let released = second
        .post("/v1/withdrawals/w_held/release", &json!({}))
        .await;
    assert_eq!(released.status, 200, "{}", released.text);
    assert_eq!(released.body["state"], "released");
    assert_eq!(released.body["approved_by"], approved.body["approved_by"]);
    assert_ne!(released.body["resolved_by"], released.body["approved_by"]);
    assert_eq!(
        code_of(
            &second
                .post("/v1/withdrawals/w_held/cancel", &json!({}))
                .await
        ),
        (409, "conflict".into()),
        "a finished review never moves again"
    );
    assert!(!queued(&server).await.iter().any(|(id, _)| id == "w_held"));
    let announced: Vec<String> = outbox(&server, "acc_h")
        .await
        .into_iter()
        .filter(|m| m.subject.contains("released"))
        .map(|m| format!("{:?}", m.channel))
        .collect();
    assert_eq!(announced.len(), 2, "an e-mail and a webhook: {announced:?}");
    let audit = server.admin().get("/v1/audit?limit=200").await;
    for action in ["withdrawal.release_approved", "withdrawal.released"] {
        assert!(audit.text.contains(action), "{action} audited");
    }
}

async fn one_operator_cancels_and_only_held_withdrawals_have_a_review(backend: Backend) {
    let server = start(backend).await;
    held_withdrawals(&server).await;
    let integration = server.operator("integration").await;
    let cancelled = integration
        .post("/v1/withdrawals/w_other/cancel", &json!({}))
        .await;
    assert_eq!(cancelled.status, 200, "{}", cancelled.text);
    assert_eq!(cancelled.body["state"], "cancelled");
    let analyst = server.operator("analyst").await;
    assert_eq!(
        code_of(
            &analyst
                .post("/v1/withdrawals/w_other/release", &json!({}))
                .await
        ),
        (409, "conflict".into())
    );
    assert_eq!(
        analyst.get("/v1/withdrawals/w_other/review").await.body["state"],
        "cancelled"
    );
    assert_eq!(
        queued(&server).await,
        vec![("w_held".to_owned(), "held".to_owned())]
    );
    // The console's queue words it as the case and the security center do.
    let queue = (server.app.console)
        .queue(&portcullis_app::Actor::local_cli(), &Default::default())
        .await
        .unwrap();
    let item = queue.items.iter().find(|i| i.id == "withdrawal:w_held");
    assert_eq!(
        item.map(|i| i.summary.as_str()),
        Some("40 USDT (about 40.00 USD) to TQwalletw_held on TRX")
    );
    // While the account is frozen nothing lets its money go, not even a reviewed release; a
    // cancel still works.
    let admin = server.admin();
    assert_eq!(
        admin
            .post("/v1/accounts/acc_h/freeze", &json!({}))
            .await
            .status,
        200
    );
    assert_eq!(
        code_of(
            &analyst
                .post("/v1/withdrawals/w_held/release", &json!({}))
                .await
        ),
        (423, "account_protected".into())
    );
    assert_eq!(
        analyst.get("/v1/withdrawals/w_held/review").await.body["state"],
        "held"
    );
    let cancelled = analyst
        .post("/v1/withdrawals/w_held/cancel", &json!({}))
        .await;
    assert_eq!(cancelled.body["state"], "cancelled", "{}", cancelled.text);
    for id in ["w_home", "no_such_event"] {
        assert_eq!(
            code_of(
                &analyst
                    .post(&format!("/v1/withdrawals/{id}/release"), &json!({}))
                    .await
            )
            .0,
            404,
            "{id} is not a held withdrawal"
        );
    }
}

async fn the_customer_cancels_a_held_withdrawal_from_the_security_center(backend: Backend) {
    // The security center's links name a host (passkeys need one).
    let server = start_with_channels_and(backend, |config| {
        config.public_url = "http://localhost:8443".into();
    })
    .await;
    held_withdrawals(&server).await;
    let customer = sign_in(&server, "acc_h").await;
    let (status, _, page) = request(
        &server.base_url,
        "GET",
        "/security",
        Some(customer.cookie.clone()),
        None,
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert!(page.contains("id=\"withdrawal-w_held\""), "{page}");
    assert!(page.contains("40 USDT"), "{page}");
    assert!(
        page.contains("will ever call or message you to"),
        "the honest warning: {page}"
    );
    assert!(
        !page.contains("withdrawal-w_other"),
        "another account's hold is not shown"
    );

    let token = [("csrf", customer.csrf.as_str())];
    // Another account's held withdrawal: not found (a customer learns nothing of other
    // accounts), nothing changed.
    let (status, _) = form(
        &customer,
        "/security/withdrawals/w_other/cancel",
        &token,
        None,
    )
    .await;
    assert_eq!(status, 404);
    let (status, _) = form(
        &customer,
        "/security/withdrawals/w_held/cancel",
        &token,
        None,
    )
    .await;
    assert_eq!(status, 303);
    let analyst = server.operator("analyst").await;
    for (id, state) in [("w_held", "cancelled"), ("w_other", "held")] {
        let review = analyst.get(&format!("/v1/withdrawals/{id}/review")).await;
        assert_eq!(review.body["state"], state, "{}", review.text);
    }
    let review = analyst.get("/v1/withdrawals/w_held/review").await;
    assert_eq!(review.body["resolved_by"], "customer:acc_h");
    assert!(
        outbox(&server, "acc_h")
            .await
            .iter()
            .any(|m| m.subject == "withdrawal.cancelled"),
        "the exchange is told by webhook"
    );
}

on_both_backends!(
    the_customer_cancels_a_held_withdrawal_from_the_security_center,
    a_release_takes_two_analysts_and_is_announced,
    one_operator_cancels_and_only_held_withdrawals_have_a_review,
);
