//! A customer signed in to the security center acts on their own account and nothing else,
//! whichever use case a handler calls: every use case checks its actor against the account it
//! touches (another account's things are "not found", so nothing about them is revealed), and
//! what only operators do across accounts, or what a customer's own permission set leaves out, is
//! refused outright.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::guard::{account_with_key, enrol_totp, grant};
use common::{Backend, TestServer};
use portcullis_app::contacts::{NewOfficial, NewReport};
use portcullis_app::keys::KeyChange;
use portcullis_app::{Actor, AppError};
use serde_json::json;

fn not_found<T: std::fmt::Debug>(what: &str, result: Result<T, AppError>) {
    assert!(
        matches!(result, Err(AppError::NotFound(_))),
        "{what}: {result:?}"
    );
}

fn forbidden<T: std::fmt::Debug>(what: &str, result: Result<T, AppError>) {
    assert!(
        matches!(result, Err(AppError::Forbidden)),
        "{what}: {result:?}"
    );
}

async fn a_customer_reaches_no_other_account(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (key_id, _, _) = account_with_key(&server, "acc_victim").await;
    let app = enrol_totp(&server, "acc_victim").await;
    let token = grant(&server, "acc_victim", &app).await;
    let widen = json!({ "scopes": ["read", "trade", "withdraw"], "step_up_grant": token });
    let pending = server
        .admin()
        .patch(&format!("/v1/keys/{key_id}"), &widen)
        .await;
    let change = pending.body["id"].as_str().unwrap().to_owned();
    account_with_key(&server, "acc_other").await;

    let other = Actor::customer("acc_other");
    let (a, guard) = (&server.app, &server.app.guard);
    let victim = "acc_victim";
    not_found("account", a.accounts.get(&other, victim).await);
    not_found("key", a.keys.key(&other, &key_id).await);
    not_found("keys", a.keys.keys_for_account(&other, victim).await);
    not_found("changes", guard.changes_for(&other, victim).await);
    not_found("change", guard.change(&other, &change).await);
    not_found("cancel", guard.cancel(&other, &change).await);
    not_found("protection", guard.protection(&other, victim).await);
    not_found("addresses", guard.addresses(&other, victim).await);
    not_found("passkeys", guard.passkeys(&other, victim).await);
    not_found("totp", guard.start_totp(&other, victim, None).await);
    not_found(
        "freeze",
        guard.freeze(&other, victim, Default::default()).await,
    );
    not_found(
        "lock",
        guard.lock_settings(&other, victim, server.now()).await,
    );
    not_found(
        "revoke",
        guard.revoke_key(&other, &key_id, Default::default()).await,
    );
    not_found(
        "rotate",
        guard.rotate_key(&other, &key_id, None, None).await,
    );
    // Nothing about the key is looked at first: a change that would be refused, or a key that
    // is revoked, says no more than a key that is not there.
    let bad = KeyChange {
        scopes: Some(vec!["bogus".into()]),
        ..KeyChange::default()
    };
    not_found("check", guard.check_key_change(&other, &key_id, &bad).await);
    not_found("widen", guard.change_key(&other, &key_id, bad, None).await);
    let (revoked, _, _) = account_with_key(&server, "acc_gone").await;
    let gone = server
        .admin()
        .post(&format!("/v1/keys/{revoked}/revoke"), &json!({}))
        .await;
    assert_eq!(gone.status, 200, "{}", gone.text);
    not_found(
        "rotate revoked",
        guard.rotate_key(&other, &revoked, None, None).await,
    );
    forbidden("list accounts", a.accounts.list(&other, None, 10).await);
    forbidden("audit", a.audit.entries(&other, 0, 10).await);
    forbidden("ingest", a.risk.ingest(&other, "").await);
    // A customer is no integration token: its own permission set has no sign-in links (not
    // even for its own account), no withdrawal checks and no event feed.
    for account in [victim, "acc_other"] {
        forbidden(
            "sign-in link",
            guard
                .sign_in_link(&other, account, Default::default())
                .await,
        );
        forbidden(
            "withdrawal check",
            guard
                .check_withdrawal(
                    &other,
                    &portcullis_app::guard::WithdrawalRequest {
                        account: account.to_owned(),
                        network: "ethereum".into(),
                        address: "0xabc".into(),
                        ..Default::default()
                    },
                )
                .await,
        );
    }
    forbidden("events", a.audit.events(&other, 0, 10).await);
    // Contacts: a customer may verify, and report for their own account only; the registry
    // and the reports are the exchange's.
    let contacts = &a.contacts;
    let theirs = NewReport {
        account: Some(victim.into()),
        value: "+447700900123".into(),
        ..NewReport::default()
    };
    not_found("report", contacts.report(&other, &theirs).await);
    let official = NewOfficial {
        kind: "domain".into(),
        value: "exchange-support.example".into(),
        ..NewOfficial::default()
    };
    forbidden(
        "add official",
        contacts.add_official(&other, &official).await,
    );
    forbidden("official", contacts.list_official(&other).await);
    forbidden(
        "remove official",
        contacts.remove_official(&other, "oc_1").await,
    );
    forbidden("reports", contacts.reports(&other, 10).await);
    forbidden("registry", contacts.registry_inputs(&other).await);

    // Nothing changed, and the customer's own account is theirs.
    let mine = a.keys.keys_for_account(&other, "acc_other").await.unwrap();
    assert_eq!(mine.len(), 1);
    let still = server.admin().get(&format!("/v1/changes/{change}")).await;
    assert_eq!(still.body["status"], "pending", "{}", still.text);
}

on_both_backends!(a_customer_reaches_no_other_account);
