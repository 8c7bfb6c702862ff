//! Storage conformance for guarded widening (the `GuardStore` port and the guard's `Write`
//! variants), run against embedded SQLite and the real PostgreSQL server like
//! `conformance.rs`: every story is written once against the `Store` port.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use portcullis_app::ports::{
    AccountGuard, ChangeSet, FreezeLink, NewEvent, PendingAction, PendingChange, SealedBlob,
    StepUpGrant, Store, StoreError, TotpEnrolment, WithdrawalAddress, Write,
};
use portcullis_core::account::Account;
use portcullis_core::allowlist::IpAllowList;
use portcullis_core::audit::AuditDraft;
use portcullis_core::guard::totp::TotpState;
use portcullis_core::guard::{PendingStatus, Protection, StepUpMethod, Widening};
use portcullis_core::scope::ScopeSet;
use portcullis_core::time::UnixMillis;
use std::sync::Arc;

#[macro_use]
#[path = "support/backends.rs"]
mod backends;
use backends::{chain_is_intact, postgres, sqlite};

#[path = "guard_conformance/grants.rs"]
mod grants;
#[path = "guard_conformance/pending.rs"]
mod pending;

use grants::*;
use pending::*;

const NOW: UnixMillis = UnixMillis(1_753_711_391_250);
const HOUR: i64 = 3_600_000;

fn account(id: &str) -> Account {
    Account {
        id: id.into(),
        display_name: "Ada".into(),
        email: Some("ada@example.com".into()),
        phone: None,
        anti_phishing_code: None,
        created_at: UnixMillis(1_000),
        updated_at: UnixMillis(1_000),
        version: 1,
    }
}

fn draft(action: &str) -> AuditDraft {
    AuditDraft {
        at: NOW,
        actor: "customer:acc_1".into(),
        action: action.into(),
        target: "account:acc_1".into(),
        details: "{}".into(),
    }
}

fn event(id: &str) -> NewEvent {
    NewEvent {
        id: id.into(),
        ts: NOW,
        account: Some("acc_1".into()),
        event_type: "api_key.updated".into(),
        body: format!(r#"{{"id":"{id}"}}"#),
    }
}

fn writes(writes: Vec<Write>) -> ChangeSet {
    ChangeSet {
        writes,
        audit: vec![draft("test")],
        events: vec![],
    }
}

/// A change set as the use cases build them: writes, an audit entry and an event.
fn full(writes: Vec<Write>, event_id: &str) -> ChangeSet {
    ChangeSet {
        writes,
        audit: vec![draft("widening.requested")],
        events: vec![event(event_id)],
    }
}

async fn seed(store: &dyn Store) {
    store
        .commit(writes(vec![
            Write::InsertAccount(account("acc_1")),
            Write::InsertAccount(account("acc_2")),
        ]))
        .await
        .unwrap();
}

fn guard(account: &str) -> AccountGuard {
    AccountGuard {
        account: account.into(),
        protection: Protection {
            frozen_at: None,
            locked_until: Some(NOW.plus_millis(48 * HOUR)),
        },
        totp: Some(TotpEnrolment {
            secret: SealedBlob {
                master_key_id: "mk1".into(),
                nonce: "AAECAwQFBgcICQoL".into(),
                ciphertext: "q83vASNFZ4k=".into(),
            },
            created_at: NOW,
            confirmed_at: Some(NOW.plus_millis(30_000)),
            state: TotpState {
                last_step: Some(58_457_046),
                failures: 2,
                locked_until: None,
                level: 2,
                last_failure: Some(NOW.plus_millis(60_000)),
            },
            step_up: Some(StepUpMethod::Passkey),
        }),
        version: 0,
    }
}

fn key_change(key_id: &str) -> PendingAction {
    PendingAction::KeyChange {
        key_id: key_id.into(),
        label: Some("bot".into()),
        add_scopes: ScopeSet::parse(["withdraw"]).unwrap(),
        remove_scopes: ScopeSet::parse(["trade"]).unwrap(),
        ip_allowlist: Some(IpAllowList::parse(["203.0.113.7", "2001:db8::/48"]).unwrap()),
        expires_at: Some(Some(NOW.plus_millis(90 * 24 * HOUR))),
        fund_window: None,
    }
}

/// A pending change as the use cases record it (version 1), requested at `requested` and
/// applying at `applies`.
fn pending(id: &str, account: &str, requested: i64, applies: i64) -> PendingChange {
    PendingChange {
        id: id.into(),
        account: account.into(),
        action: key_change("k_1"),
        widenings: vec![Widening::AddsWithdraw, Widening::WidensAllowlist],
        status: PendingStatus::Pending,
        requested_at: UnixMillis(requested),
        applies_at: UnixMillis(applies),
        requested_by: format!("customer:{account}"),
        step_up: StepUpMethod::Totp,
        cancel_token_hash: format!("{id:0>64}"),
        event_id: Some(format!("evt_{id}")),
        released_by: None,
        approved_by: None,
        version: 1,
    }
}

fn grant(hash: &str, account: &str) -> StepUpGrant {
    StepUpGrant {
        token_hash: hash.into(),
        account: account.into(),
        method: StepUpMethod::Totp,
        issued_at: NOW,
        expires_at: NOW.plus_millis(300_000),
        spent_at: None,
    }
}

fn address(account: &str, network: &str, address: &str, label: &str) -> WithdrawalAddress {
    WithdrawalAddress {
        account: account.into(),
        network: network.into(),
        address: address.into(),
        asset: "BTC".into(),
        label: label.into(),
        requested_at: NOW,
        usable_from: NOW.plus_millis(24 * HOUR),
    }
}

fn ids(changes: &[PendingChange]) -> Vec<&str> {
    changes.iter().map(|c| c.id.as_str()).collect()
}

async fn guard_round_trips_with_optimistic_versions(store: Arc<dyn Store>) {
    seed(store.as_ref()).await;
    assert_eq!(store.guard("acc_1").await.unwrap(), None);
    let first = guard("acc_1");
    store
        .commit(writes(vec![Write::PutGuard {
            guard: first.clone(),
            expected_version: 0,
        }]))
        .await
        .unwrap();
    let stored = store.guard("acc_1").await.unwrap().unwrap();
    assert_eq!(
        stored,
        AccountGuard {
            version: 1,
            ..first.clone()
        },
        "every field round-trips and the first version is 1"
    );
    let audited = chain_is_intact(store.as_ref()).await;

    let again = store
        .commit(writes(vec![Write::PutGuard {
            guard: AccountGuard::empty("acc_1"),
            expected_version: 0,
        }]))
        .await;
    assert!(
        matches!(again, Err(StoreError::Conflict(_))),
        "a second first write is a conflict: {again:?}"
    );

    let mut frozen = stored.clone();
    frozen.protection.frozen_at = Some(NOW.plus_millis(5));
    frozen.totp = None;
    store
        .commit(writes(vec![Write::PutGuard {
            guard: frozen.clone(),
            expected_version: 1,
        }]))
        .await
        .unwrap();
    let stored = store.guard("acc_1").await.unwrap().unwrap();
    assert_eq!(stored.version, 2);
    assert_eq!(stored.protection.frozen_at, Some(NOW.plus_millis(5)));
    assert_eq!(stored.totp, None);
    let audited = audited + 1;

    let stale = store
        .commit(writes(vec![Write::PutGuard {
            guard: first.clone(),
            expected_version: 1,
        }]))
        .await;
    assert!(matches!(stale, Err(StoreError::Conflict(_))), "{stale:?}");
    assert_eq!(
        store.guard("acc_1").await.unwrap(),
        Some(AccountGuard {
            version: 2,
            ..frozen.clone()
        }),
        "a stale write changes nothing"
    );
    let ahead = store
        .commit(writes(vec![Write::PutGuard {
            guard: first.clone(),
            expected_version: 3,
        }]))
        .await;
    assert!(matches!(ahead, Err(StoreError::Conflict(_))), "{ahead:?}");
    assert_eq!(store.guard("acc_1").await.unwrap().unwrap().version, 2);
    assert_eq!(
        chain_is_intact(store.as_ref()).await,
        audited,
        "refused writes leave no audit entry"
    );

    assert_eq!(
        store.guard("acc_2").await.unwrap(),
        None,
        "guards are per account"
    );
    let missing = store
        .commit(writes(vec![Write::PutGuard {
            guard: guard("acc_nobody"),
            expected_version: 0,
        }]))
        .await;
    assert!(
        matches!(missing, Err(StoreError::NotFound(_))),
        "a guard needs its account: {missing:?}"
    );
    let missing = store
        .commit(writes(vec![Write::PutGuard {
            guard: guard("acc_2"),
            expected_version: 4,
        }]))
        .await;
    assert!(
        matches!(missing, Err(StoreError::NotFound(_))),
        "updating a guard that was never stored: {missing:?}"
    );
    assert_eq!(store.guard("acc_2").await.unwrap(), None);
}

/// A freeze link is found by its hash and spent once: a second spend is a conflict and the
/// commit it belongs to writes nothing.
async fn a_freeze_link_is_spent_once(store: Arc<dyn Store>) {
    seed(store.as_ref()).await;
    let link = FreezeLink {
        token_hash: "fh_1".into(),
        account: "acc_1".into(),
        created_at: UnixMillis(1_000),
        expires_at: UnixMillis(9_000),
        used_at: None,
    };
    store
        .commit(writes(vec![Write::InsertFreezeLink(link.clone())]))
        .await
        .unwrap();
    assert_eq!(store.freeze_link("fh_1").await.unwrap(), Some(link.clone()));
    assert_eq!(store.freeze_link("fh_nope").await.unwrap(), None);
    let spend = || Write::SpendFreezeLink {
        token_hash: "fh_1".into(),
        at: UnixMillis(2_000),
    };
    store.commit(writes(vec![spend()])).await.unwrap();
    let second = store
        .commit(writes(vec![
            Write::PutGuard {
                guard: guard("acc_1"),
                expected_version: 0,
            },
            spend(),
        ]))
        .await;
    assert!(matches!(second, Err(StoreError::Conflict(_))), "{second:?}");
    assert_eq!(
        store.guard("acc_1").await.unwrap(),
        None,
        "nothing else written"
    );
    assert_eq!(
        store.freeze_link("fh_1").await.unwrap().unwrap().used_at,
        Some(UnixMillis(2_000))
    );
}

conformance!(
    a_freeze_link_is_spent_once,
    guard_round_trips_with_optimistic_versions,
    pending_changes_are_found_by_id_token_and_account,
    pending_actions_of_every_kind_round_trip,
    removing_the_expiry_survives_storage,
    due_pending_is_open_and_on_time_oldest_first,
    pending_updates_are_versioned,
    a_grant_is_spent_once_and_a_second_spend_writes_nothing,
    racing_spends_of_one_grant_let_exactly_one_through,
    addresses_upsert_list_and_remove,
    a_failing_guard_write_in_the_middle_leaves_nothing,
);
