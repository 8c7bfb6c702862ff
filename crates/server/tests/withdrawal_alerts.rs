//! Withdrawal alerts over real HTTP on both backends: every withdrawal the exchange reports is
//! announced on the official channels once its decision is stored (let through, held or
//! refused), with the anti-phishing code, amount, address, key and IP and a single-use freeze
//! link that freezes the account in one click; each exactly once, and never for accounts
//! Portcullis does not manage.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::channels::{outbox, start_with_channels as start};
use common::guard::account_with_key;
use common::{Backend, TestServer};
use portcullis_app::ports::{Channel, OutboxMessage};
use serde_json::Value;

/// The withdrawal alerts queued for `account` (e-mails and webhooks).
async fn alerts(server: &TestServer, account: &str) -> Vec<OutboxMessage> {
    outbox(server, account)
        .await
        .into_iter()
        .filter(|m| m.subject.starts_with("withdrawal.") || m.subject.contains("withdrawal"))
        .collect()
}

fn withdrawal(id: &str, account: &str, key: Option<&str>, ip: &str) -> String {
    let key = key
        .map(|k| format!(r#","key_id":"{k}""#))
        .unwrap_or_default();
    format!(
        r#"{{"id":"{id}","ts":"2026-01-01T00:10:00.000Z","type":"withdrawal.requested","account":"{account}","withdrawal_id":"w_{id}","asset":"USDT","network":"TRX","address":"TQsafeWallet9","amount":"2400","amount_usd":2400.0{key},"ctx":{{"ip":"{ip}","channel":"api"}}}}"#
    )
}

async fn every_withdrawal_is_announced_once_with_a_freeze_link(backend: Backend) {
    let server = start(backend).await;
    let admin = server.admin();
    let (key_id, _, _) = account_with_key(&server, "acc_w").await;
    // The first pass only marks where the log ends (the server's own pass may have run it).
    server.app.guard.announce_withdrawals().await.unwrap();

    // One withdrawal in the app, one through a key that cannot withdraw (refused), one for an
    // account Portcullis does not manage.
    let feed = [
        withdrawal("e1", "acc_w", None, "198.51.100.23"),
        withdrawal("e2", "acc_w", Some(&key_id), "203.0.113.99"),
        withdrawal("e3", "acc_elsewhere", None, "198.51.100.1"),
    ]
    .join("\n");
    let ingested = admin
        .post_raw("/v1/events", feed.into_bytes(), "application/x-ndjson")
        .await;
    assert_eq!(ingested.status, 200, "{}", ingested.text);
    server.app.risk.catch_up().await.unwrap();
    server.app.guard.announce_withdrawals().await.unwrap();

    let alerts: Vec<OutboxMessage> = alerts(&server, "acc_w").await;
    let hooks: Vec<&OutboxMessage> = alerts
        .iter()
        .filter(|m| m.channel == Channel::Webhook)
        .collect();
    let mut types: Vec<&str> = hooks.iter().map(|m| m.subject.as_str()).collect();
    types.sort_unstable();
    assert_eq!(
        types,
        ["withdrawal.blocked", "withdrawal.requested"],
        "{alerts:?}"
    );
    let mails: Vec<&OutboxMessage> = alerts
        .iter()
        .filter(|m| m.channel == Channel::Email)
        .collect();
    assert_eq!(mails.len(), 2);
    let refused = mails
        .iter()
        .find(|m| m.subject.contains("was refused"))
        .unwrap();
    let text = &refused.body_text;
    assert!(
        text.starts_with("Your anti-phishing code: Blue42"),
        "{text}"
    );
    for fact in [
        "2400 USDT",
        "TQsafeWallet9",
        &format!("API key {key_id}"),
        "203.0.113.99",
        "/freeze/pfz_",
    ] {
        assert!(text.contains(fact), "{fact} missing from: {text}");
    }
    let body: Value = serde_json::from_str(&hooks[0].body_text).unwrap();
    assert!(
        body["freeze_url"]
            .as_str()
            .unwrap()
            .contains("/freeze/pfz_")
    );
    assert!(outbox(&server, "acc_elsewhere").await.is_empty());

    // Exactly once: another pass (and the server's own) adds nothing.
    server.app.guard.announce_withdrawals().await.unwrap();
    assert_eq!(self::alerts(&server, "acc_w").await.len(), alerts.len());

    // The freeze link freezes the account in one click.
    let start = text.find("/freeze/").unwrap();
    let freeze = text[start..].split_whitespace().next().unwrap();
    let done = server
        .anonymous()
        .post_raw(freeze, Vec::new(), "application/x-www-form-urlencoded")
        .await;
    assert_eq!(done.status, 200, "{}", done.text);
    assert_eq!(
        admin.get("/v1/accounts/acc_w/protection").await.body["frozen"],
        true
    );
}

async fn an_undecided_withdrawal_waits_for_its_decision(backend: Backend) {
    let server = start(backend).await;
    account_with_key(&server, "acc_u").await;
    server.app.guard.announce_withdrawals().await.unwrap();
    // Logged but not yet decided: the alerts stop there rather than skip it.
    let line = withdrawal("u1", "acc_u", None, "198.51.100.23");
    server.log_without_deciding(&line).await;
    // (The server's background pass may decide it at any moment; either way it is announced
    // once, after its decision.)
    let pass = server.app.guard.announce_withdrawals().await.unwrap();
    if pass.waiting_for_decision {
        assert!(alerts(&server, "acc_u").await.is_empty());
    }
    server.app.risk.catch_up().await.unwrap();
    server.app.guard.announce_withdrawals().await.unwrap();
    let alerts = alerts(&server, "acc_u").await;
    assert_eq!(
        alerts
            .iter()
            .filter(|m| m.channel == Channel::Webhook)
            .count(),
        1,
        "{alerts:?}"
    );
}

on_both_backends!(
    every_withdrawal_is_announced_once_with_a_freeze_link,
    an_undecided_withdrawal_waits_for_its_decision,
);
