//! Storage conformance for guarded widening (the `GuardStore` port and the guard's `Write`
//! variants), run against embedded SQLite and the real PostgreSQL server like
//! `conformance.rs`: every story is written once against the `Store` port.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use portcullis_app::ports::{
    AccountGuard, ChangeSet, NewEvent, PendingAction, PendingChange, SealedBlob, StepUpGrant,
    Store, StoreError, TotpEnrolment, WithdrawalAddress, Write,
};
use portcullis_core::account::Account;
use portcullis_core::allowlist::IpAllowList;
use portcullis_core::audit::{AuditDraft, ChainVerifier};
use portcullis_core::guard::totp::TotpState;
use portcullis_core::guard::{PendingStatus, Protection, StepUpMethod, Widening};
use portcullis_core::scope::ScopeSet;
use portcullis_core::time::UnixMillis;
use std::sync::Arc;

async fn sqlite() -> (Arc<dyn Store>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("guard_conformance.db").display()
    );
    (portcullis_store::open(&url).await.unwrap(), dir)
}

async fn postgres() -> (Arc<dyn Store>, tempfile::TempDir) {
    let url = portcullis_store::testing::fresh_postgres_database("portcullis_conf")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    (
        portcullis_store::open(&url).await.unwrap(),
        tempfile::tempdir().unwrap(),
    )
}

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
            },
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

async fn chain_is_intact(store: &dyn Store) -> i64 {
    let mut verifier = ChainVerifier::new();
    for entry in store.audit_entries(0, 10_000).await.unwrap() {
        verifier.check(&entry).unwrap();
    }
    verifier
        .finish(store.audit_head().await.unwrap().as_ref())
        .unwrap()
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

async fn pending_changes_are_found_by_id_token_and_account(store: Arc<dyn Store>) {
    seed(store.as_ref()).await;
    let old = pending("chg_old", "acc_1", 1_000, 5_000);
    let new = pending("chg_new", "acc_1", 3_000, 9_000);
    let mid = pending("chg_mid", "acc_1", 2_000, 4_000);
    let other = pending("chg_other", "acc_2", 4_000, 4_000);
    for change in [&old, &new, &mid, &other] {
        store
            .commit(full(
                vec![Write::InsertPending(change.clone())],
                &format!("e_{}", change.id),
            ))
            .await
            .unwrap();
    }
    assert_eq!(
        store.pending_change("chg_old").await.unwrap(),
        Some(old.clone()),
        "every field round-trips"
    );
    assert_eq!(store.pending_change("chg_none").await.unwrap(), None);
    assert_eq!(
        store
            .pending_by_cancel_token(&new.cancel_token_hash)
            .await
            .unwrap(),
        Some(new.clone())
    );
    assert_eq!(
        store
            .pending_by_cancel_token(&"f".repeat(64))
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        ids(&store.pending_for_account("acc_1", 10).await.unwrap()),
        vec!["chg_new", "chg_mid", "chg_old"],
        "newest first"
    );
    assert_eq!(
        ids(&store.pending_for_account("acc_1", 2).await.unwrap()),
        vec!["chg_new", "chg_mid"],
        "the limit keeps the newest"
    );
    assert_eq!(
        ids(&store.pending_for_account("acc_2", 10).await.unwrap()),
        vec!["chg_other"]
    );
    assert!(
        store
            .pending_for_account("acc_nobody", 10)
            .await
            .unwrap()
            .is_empty()
    );

    let same_token = PendingChange {
        id: "chg_dup".into(),
        ..new.clone()
    };
    let duplicate = store
        .commit(writes(vec![Write::InsertPending(same_token)]))
        .await;
    assert!(
        matches!(duplicate, Err(StoreError::Conflict(_))),
        "a cancel token hash is unique: {duplicate:?}"
    );
    let same_id = PendingChange {
        cancel_token_hash: "e".repeat(64),
        ..new.clone()
    };
    assert!(matches!(
        store
            .commit(writes(vec![Write::InsertPending(same_id)]))
            .await,
        Err(StoreError::Conflict(_))
    ));
    let orphan = store
        .commit(writes(vec![Write::InsertPending(pending(
            "chg_orphan",
            "acc_nobody",
            1,
            1,
        ))]))
        .await;
    assert!(
        matches!(orphan, Err(StoreError::NotFound(_))),
        "a change needs its account: {orphan:?}"
    );
    assert_eq!(store.pending_change("chg_dup").await.unwrap(), None);
    assert_eq!(store.pending_change("chg_orphan").await.unwrap(), None);
}

async fn pending_actions_of_every_kind_round_trip(store: Arc<dyn Store>) {
    seed(store.as_ref()).await;
    let narrow_only = PendingAction::KeyChange {
        key_id: "k_2".into(),
        label: None,
        add_scopes: ScopeSet::parse(["transfer"]).unwrap(),
        remove_scopes: ScopeSet::EMPTY,
        ip_allowlist: Some(IpAllowList::unrestricted()),
        expires_at: None,
    };
    let address = PendingAction::AddAddress {
        address: "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq".into(),
        asset: "BTC".into(),
        network: "BITCOIN".into(),
        label: "cold wallet".into(),
    };
    let cases = [
        ("chg_k", key_change("k_1"), PendingStatus::Pending),
        (
            "chg_n",
            narrow_only,
            PendingStatus::Held {
                by: "risk-engine".into(),
                reason: "new_device,call_during_session".into(),
            },
        ),
        (
            "chg_a",
            address,
            PendingStatus::Cancelled {
                at: NOW,
                by: "customer:acc_1".into(),
            },
        ),
        (
            "chg_u",
            PendingAction::Unfreeze,
            PendingStatus::Failed {
                at: NOW,
                reason: "the account is frozen".into(),
            },
        ),
    ];
    for (id, action, status) in cases {
        let change = PendingChange {
            action,
            status,
            step_up: StepUpMethod::Passkey,
            event_id: None,
            ..pending(id, "acc_1", 1, 2)
        };
        store
            .commit(writes(vec![Write::InsertPending(change.clone())]))
            .await
            .unwrap();
        assert_eq!(store.pending_change(id).await.unwrap(), Some(change));
    }
}

/// `PendingAction::KeyChange::expires_at` is `Some(None)` for "remove the expiry" and `None`
/// for "leave it"; stored as JSON, both become `null` and read back as "leave it".
async fn removing_the_expiry_survives_storage(store: Arc<dyn Store>) {
    seed(store.as_ref()).await;
    let change = PendingChange {
        action: PendingAction::KeyChange {
            key_id: "k_1".into(),
            label: None,
            add_scopes: ScopeSet::EMPTY,
            remove_scopes: ScopeSet::EMPTY,
            ip_allowlist: None,
            expires_at: Some(None),
        },
        widenings: vec![Widening::ExtendsExpiry],
        ..pending("chg_forever", "acc_1", 1, 2)
    };
    store
        .commit(writes(vec![Write::InsertPending(change.clone())]))
        .await
        .unwrap();
    assert_eq!(
        store.pending_change("chg_forever").await.unwrap(),
        Some(change)
    );
}

async fn due_pending_is_open_and_on_time_oldest_first(store: Arc<dyn Store>) {
    seed(store.as_ref()).await;
    let now = 10_000;
    let statuses = [
        ("chg_due_late", 9_000, PendingStatus::Pending),
        ("chg_due_early", 2_000, PendingStatus::Pending),
        ("chg_due_exact", now, PendingStatus::Pending),
        ("chg_future", now + 1, PendingStatus::Pending),
        (
            "chg_held",
            1_000,
            PendingStatus::Held {
                by: "op_1".into(),
                reason: "customer called support".into(),
            },
        ),
        (
            "chg_applied",
            1_000,
            PendingStatus::Applied {
                at: UnixMillis(1_500),
            },
        ),
        (
            "chg_cancelled",
            1_000,
            PendingStatus::Cancelled {
                at: UnixMillis(1_200),
                by: "customer:acc_1".into(),
            },
        ),
        (
            "chg_failed",
            1_000,
            PendingStatus::Failed {
                at: UnixMillis(1_300),
                reason: "key revoked".into(),
            },
        ),
    ];
    for (n, (id, applies, status)) in statuses.into_iter().enumerate() {
        let account = if n % 2 == 0 { "acc_1" } else { "acc_2" };
        let change = PendingChange {
            status,
            ..pending(id, account, 100 + i64::try_from(n).unwrap(), applies)
        };
        store
            .commit(writes(vec![Write::InsertPending(change)]))
            .await
            .unwrap();
    }
    let due = store.due_pending(UnixMillis(now), 100).await.unwrap();
    assert_eq!(
        ids(&due),
        vec!["chg_due_early", "chg_due_late", "chg_due_exact"],
        "only pending changes whose time has come (at the instant included), oldest first, from every account"
    );
    assert!(due.iter().all(|c| c.status == PendingStatus::Pending));
    assert_eq!(
        ids(&store.due_pending(UnixMillis(now), 2).await.unwrap()),
        vec!["chg_due_early", "chg_due_late"],
        "the limit keeps the oldest"
    );
    assert!(
        store
            .due_pending(UnixMillis(1_999), 100)
            .await
            .unwrap()
            .is_empty(),
        "nothing is due before its time"
    );

    // Holding a due change takes it off the list; releasing puts it back.
    let early = store
        .pending_change("chg_due_early")
        .await
        .unwrap()
        .unwrap();
    let held = PendingChange {
        status: PendingStatus::Held {
            by: "risk-engine".into(),
            reason: "hold".into(),
        },
        version: 2,
        ..early.clone()
    };
    store
        .commit(writes(vec![Write::UpdatePending {
            change: held.clone(),
            expected_version: 1,
        }]))
        .await
        .unwrap();
    assert_eq!(
        ids(&store.due_pending(UnixMillis(now), 100).await.unwrap()),
        vec!["chg_due_late", "chg_due_exact"]
    );
    let released = PendingChange {
        status: PendingStatus::Pending,
        version: 3,
        ..held.clone()
    };
    store
        .commit(writes(vec![Write::UpdatePending {
            change: released,
            expected_version: 2,
        }]))
        .await
        .unwrap();
    assert_eq!(
        ids(&store.due_pending(UnixMillis(now), 100).await.unwrap()),
        vec!["chg_due_early", "chg_due_late", "chg_due_exact"]
    );
}

async fn pending_updates_are_versioned(store: Arc<dyn Store>) {
    seed(store.as_ref()).await;
    let change = pending("chg_1", "acc_1", 1_000, 5_000);
    store
        .commit(writes(vec![Write::InsertPending(change.clone())]))
        .await
        .unwrap();
    let held = PendingChange {
        status: PendingStatus::Held {
            by: "op_1".into(),
            reason: "review".into(),
        },
        applies_at: UnixMillis(6_000),
        version: 2,
        ..change.clone()
    };
    store
        .commit(writes(vec![Write::UpdatePending {
            change: held.clone(),
            expected_version: 1,
        }]))
        .await
        .unwrap();
    assert_eq!(
        store.pending_change("chg_1").await.unwrap(),
        Some(held.clone())
    );
    assert_eq!(
        store
            .pending_by_cancel_token(&change.cancel_token_hash)
            .await
            .unwrap(),
        Some(held.clone()),
        "the cancel token still finds the updated change"
    );
    let audited = chain_is_intact(store.as_ref()).await;

    let cancelled = PendingChange {
        status: PendingStatus::Cancelled {
            at: NOW,
            by: "customer:acc_1".into(),
        },
        version: 2,
        ..change.clone()
    };
    let stale = store
        .commit(full(
            vec![Write::UpdatePending {
                change: cancelled.clone(),
                expected_version: 1,
            }],
            "e_stale",
        ))
        .await;
    assert!(matches!(stale, Err(StoreError::Conflict(_))), "{stale:?}");
    assert_eq!(
        store.pending_change("chg_1").await.unwrap(),
        Some(held.clone()),
        "a stale update changes nothing"
    );
    assert_eq!(chain_is_intact(store.as_ref()).await, audited);
    assert!(store.events_after(0, 10).await.unwrap().is_empty());

    let missing = store
        .commit(writes(vec![Write::UpdatePending {
            change: pending("chg_none", "acc_1", 1, 1),
            expected_version: 1,
        }]))
        .await;
    assert!(
        matches!(missing, Err(StoreError::NotFound(_))),
        "{missing:?}"
    );

    store
        .commit(writes(vec![Write::UpdatePending {
            change: cancelled.clone(),
            expected_version: 2,
        }]))
        .await
        .unwrap();
    let stored = store.pending_change("chg_1").await.unwrap().unwrap();
    assert_eq!(stored.status, cancelled.status);
    assert_eq!(stored.version, 3, "the store numbers versions");
    assert_eq!(stored.applies_at, UnixMillis(5_000));
}

async fn a_grant_is_spent_once_and_a_second_spend_writes_nothing(store: Arc<dyn Store>) {
    seed(store.as_ref()).await;
    let hash = "a1".repeat(32);
    store
        .commit(writes(vec![Write::InsertGrant(grant(&hash, "acc_1"))]))
        .await
        .unwrap();
    assert_eq!(
        store.grant(&hash).await.unwrap(),
        Some(grant(&hash, "acc_1")),
        "every field round-trips"
    );
    assert_eq!(store.grant(&"b2".repeat(32)).await.unwrap(), None);
    assert!(
        matches!(
            store
                .commit(writes(vec![Write::InsertGrant(grant(&hash, "acc_1"))]))
                .await,
            Err(StoreError::Conflict(_))
        ),
        "a grant hash is unique"
    );
    assert!(
        matches!(
            store
                .commit(writes(vec![Write::InsertGrant(grant(
                    &"c3".repeat(32),
                    "acc_nobody"
                ))]))
                .await,
            Err(StoreError::NotFound(_))
        ),
        "a grant needs its account"
    );

    let first = pending("chg_first", "acc_1", 1_000, 5_000);
    store
        .commit(full(
            vec![
                Write::SpendGrant {
                    token_hash: hash.clone(),
                    at: NOW.plus_millis(10),
                },
                Write::InsertPending(first.clone()),
            ],
            "e_first",
        ))
        .await
        .unwrap();
    assert_eq!(
        store.grant(&hash).await.unwrap().unwrap().spent_at,
        Some(NOW.plus_millis(10))
    );
    assert_eq!(
        store.pending_change("chg_first").await.unwrap(),
        Some(first)
    );
    let head = store.audit_head().await.unwrap();
    let events = store.events_after(0, 10).await.unwrap().len();

    // The second spend fails, whether the pending change comes before or after it.
    let second = pending("chg_second", "acc_1", 2_000, 6_000);
    let third = pending("chg_third", "acc_1", 2_000, 6_000);
    for set in [
        vec![
            Write::InsertPending(second.clone()),
            Write::SpendGrant {
                token_hash: hash.clone(),
                at: NOW.plus_millis(20),
            },
        ],
        vec![
            Write::SpendGrant {
                token_hash: hash.clone(),
                at: NOW.plus_millis(20),
            },
            Write::InsertPending(third.clone()),
        ],
    ] {
        let again = store.commit(full(set, "e_second")).await;
        assert!(matches!(again, Err(StoreError::Conflict(_))), "{again:?}");
    }
    assert_eq!(store.pending_change("chg_second").await.unwrap(), None);
    assert_eq!(store.pending_change("chg_third").await.unwrap(), None);
    assert_eq!(
        store.grant(&hash).await.unwrap().unwrap().spent_at,
        Some(NOW.plus_millis(10)),
        "the first spend stands"
    );
    assert_eq!(store.audit_head().await.unwrap(), head);
    assert_eq!(store.events_after(0, 10).await.unwrap().len(), events);
    assert_eq!(
        ids(&store.pending_for_account("acc_1", 10).await.unwrap()),
        vec!["chg_first"]
    );

    let unknown = store
        .commit(writes(vec![Write::SpendGrant {
            token_hash: "d4".repeat(32),
            at: NOW,
        }]))
        .await;
    assert!(
        matches!(unknown, Err(StoreError::NotFound(_))),
        "a grant never issued is not found: {unknown:?}"
    );
    assert_eq!(store.audit_head().await.unwrap(), head);
}

async fn racing_spends_of_one_grant_let_exactly_one_through(store: Arc<dyn Store>) {
    seed(store.as_ref()).await;
    let hash = "e5".repeat(32);
    store
        .commit(writes(vec![Write::InsertGrant(grant(&hash, "acc_1"))]))
        .await
        .unwrap();
    let tasks: Vec<_> = (0..8)
        .map(|n| {
            let store = store.clone();
            let hash = hash.clone();
            tokio::spawn(async move {
                let change = full(
                    vec![
                        Write::SpendGrant {
                            token_hash: hash,
                            at: NOW.plus_millis(n),
                        },
                        Write::InsertPending(pending(&format!("chg_{n}"), "acc_1", n, n)),
                    ],
                    &format!("e_{n}"),
                );
                store.commit(change).await
            })
        })
        .collect();
    let mut won = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(()) => won += 1,
            Err(StoreError::Conflict(_)) => {}
            Err(other) => panic!("a losing spend is a conflict, not {other:?}"),
        }
    }
    assert_eq!(won, 1);
    assert_eq!(
        store.pending_for_account("acc_1", 100).await.unwrap().len(),
        1
    );
    assert_eq!(store.events_after(0, 100).await.unwrap().len(), 1);
    assert_eq!(
        chain_is_intact(store.as_ref()).await,
        3,
        "seed, grant and the one winner"
    );
}

async fn addresses_upsert_list_and_remove(store: Arc<dyn Store>) {
    seed(store.as_ref()).await;
    let btc = address("acc_1", "BITCOIN", "bc1qzz", "cold");
    let eth = address("acc_1", "ETHEREUM", "0xabc", "hot");
    let btc_b = address("acc_1", "BITCOIN", "bc1qaa", "spare");
    let theirs = address("acc_2", "BITCOIN", "bc1qzz", "someone else");
    for a in [&btc, &eth, &btc_b, &theirs] {
        store
            .commit(writes(vec![Write::PutAddress(a.clone())]))
            .await
            .unwrap();
    }
    assert_eq!(
        store.addresses("acc_1").await.unwrap(),
        vec![btc_b.clone(), btc.clone(), eth.clone()],
        "every field round-trips, ordered by network then address"
    );
    assert_eq!(
        store.addresses("acc_2").await.unwrap(),
        vec![theirs.clone()]
    );
    assert!(store.addresses("acc_nobody").await.unwrap().is_empty());

    let relabelled = WithdrawalAddress {
        asset: "BTC".into(),
        label: "cold storage".into(),
        requested_at: NOW.plus_millis(1),
        usable_from: NOW.plus_millis(25 * HOUR),
        ..btc.clone()
    };
    store
        .commit(writes(vec![Write::PutAddress(relabelled.clone())]))
        .await
        .unwrap();
    assert_eq!(
        store.addresses("acc_1").await.unwrap(),
        vec![btc_b.clone(), relabelled.clone(), eth.clone()],
        "putting an address again refreshes it in place"
    );

    store
        .commit(writes(vec![Write::RemoveAddress {
            account: "acc_1".into(),
            network: "BITCOIN".into(),
            address: "bc1qzz".into(),
        }]))
        .await
        .unwrap();
    assert_eq!(
        store.addresses("acc_1").await.unwrap(),
        vec![btc_b.clone(), eth.clone()]
    );
    assert_eq!(
        store.addresses("acc_2").await.unwrap(),
        vec![theirs],
        "removing is per account"
    );
    let audited = chain_is_intact(store.as_ref()).await;
    for (account, network, addr) in [
        ("acc_1", "BITCOIN", "bc1qzz"),
        ("acc_1", "ETHEREUM", "bc1qaa"),
        ("acc_nobody", "BITCOIN", "bc1qaa"),
    ] {
        let gone = store
            .commit(writes(vec![
                Write::PutAddress(address("acc_1", "SOLANA", "So1", "new")),
                Write::RemoveAddress {
                    account: account.into(),
                    network: network.into(),
                    address: addr.into(),
                },
            ]))
            .await;
        assert!(
            matches!(gone, Err(StoreError::NotFound(_))),
            "{account}/{network}/{addr}: {gone:?}"
        );
    }
    assert_eq!(
        store.addresses("acc_1").await.unwrap(),
        vec![btc_b, eth],
        "the put beside a failed remove is not written"
    );
    assert_eq!(chain_is_intact(store.as_ref()).await, audited);
    let orphan = store
        .commit(writes(vec![Write::PutAddress(address(
            "acc_nobody",
            "BITCOIN",
            "bc1q",
            "",
        ))]))
        .await;
    assert!(
        matches!(orphan, Err(StoreError::NotFound(_))),
        "an address needs its account: {orphan:?}"
    );
}

async fn a_failing_guard_write_in_the_middle_leaves_nothing(store: Arc<dyn Store>) {
    seed(store.as_ref()).await;
    let existing = pending("chg_existing", "acc_2", 1, 1);
    store
        .commit(writes(vec![
            Write::InsertPending(existing.clone()),
            Write::InsertGrant(grant(&"0f".repeat(32), "acc_1")),
        ]))
        .await
        .unwrap();
    let audited = chain_is_intact(store.as_ref()).await;
    let head = store.audit_head().await.unwrap();

    let failures: Vec<(&str, Write)> = vec![
        (
            "stale guard",
            Write::PutGuard {
                guard: guard("acc_1"),
                expected_version: 7,
            },
        ),
        (
            "stale pending change",
            Write::UpdatePending {
                change: existing.clone(),
                expected_version: 5,
            },
        ),
        (
            "duplicate cancel token",
            Write::InsertPending(PendingChange {
                id: "chg_clash".into(),
                ..existing.clone()
            }),
        ),
        (
            "unknown grant",
            Write::SpendGrant {
                token_hash: "77".repeat(32),
                at: NOW,
            },
        ),
        (
            "missing address",
            Write::RemoveAddress {
                account: "acc_1".into(),
                network: "BITCOIN".into(),
                address: "nowhere".into(),
            },
        ),
    ];
    for (what, failing) in failures {
        let change = full(
            vec![
                Write::PutGuard {
                    guard: guard("acc_1"),
                    expected_version: 0,
                },
                Write::SpendGrant {
                    token_hash: "0f".repeat(32),
                    at: NOW,
                },
                Write::InsertPending(pending("chg_new", "acc_1", 5, 5)),
                failing,
                Write::PutAddress(address("acc_1", "BITCOIN", "bc1q", "x")),
            ],
            "e_lost",
        );
        let result = store.commit(change).await;
        assert!(result.is_err(), "{what}: the commit must fail");
        assert_eq!(store.guard("acc_1").await.unwrap(), None, "{what}");
        assert_eq!(
            store
                .grant(&"0f".repeat(32))
                .await
                .unwrap()
                .unwrap()
                .spent_at,
            None,
            "{what}: the grant is still unspent"
        );
        assert_eq!(
            store.pending_change("chg_new").await.unwrap(),
            None,
            "{what}"
        );
        assert!(store.addresses("acc_1").await.unwrap().is_empty(), "{what}");
        assert_eq!(
            store.pending_change("chg_existing").await.unwrap(),
            Some(existing.clone()),
            "{what}"
        );
        assert!(
            store.events_after(0, 10).await.unwrap().is_empty(),
            "{what}"
        );
        assert_eq!(store.audit_head().await.unwrap(), head, "{what}");
        assert_eq!(chain_is_intact(store.as_ref()).await, audited, "{what}");
    }
    // The same commit without the failing write goes through whole.
    store
        .commit(full(
            vec![
                Write::PutGuard {
                    guard: guard("acc_1"),
                    expected_version: 0,
                },
                Write::SpendGrant {
                    token_hash: "0f".repeat(32),
                    at: NOW,
                },
                Write::InsertPending(pending("chg_new", "acc_1", 5, 5)),
                Write::PutAddress(address("acc_1", "BITCOIN", "bc1q", "x")),
            ],
            "e_kept",
        ))
        .await
        .unwrap();
    assert_eq!(store.guard("acc_1").await.unwrap().unwrap().version, 1);
    assert!(store.pending_change("chg_new").await.unwrap().is_some());
    assert_eq!(store.addresses("acc_1").await.unwrap().len(), 1);
    assert_eq!(store.events_after(0, 10).await.unwrap().len(), 1);
    assert_eq!(chain_is_intact(store.as_ref()).await, audited + 1);
}

macro_rules! conformance {
    ($($(#[$meta:meta])* $story:ident),* $(,)?) => {
        mod sqlite_backend {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            $(#[$meta])*
            async fn $story() {
                let (store, _dir) = super::sqlite().await;
                assert_eq!(store.backend_name(), "sqlite");
                super::$story(store).await;
            })*
        }
        mod postgres_backend {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            $(#[$meta])*
            async fn $story() {
                let (store, _dir) = super::postgres().await;
                assert_eq!(store.backend_name(), "postgres");
                super::$story(store).await;
            })*
        }
    };
}

conformance!(
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
