//! Pending changes: found by id, cancel token and account; every action round-trips; the due
//! list; versioned updates.

use super::*;

pub(super) async fn pending_changes_are_found_by_id_token_and_account(store: Arc<dyn Store>) {
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

pub(super) async fn pending_actions_of_every_kind_round_trip(store: Arc<dyn Store>) {
    seed(store.as_ref()).await;
    let narrow_only = PendingAction::KeyChange {
        key_id: "k_2".into(),
        label: None,
        add_scopes: ScopeSet::parse(["transfer"]).unwrap(),
        remove_scopes: ScopeSet::EMPTY,
        ip_allowlist: Some(IpAllowList::unrestricted()),
        expires_at: None,
        fund_window: None,
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
        (
            "chg_c",
            PendingAction::ContactChange {
                email: Some(Some("new@example.net".into())),
                anti_phishing_code: Some(None),
            },
            PendingStatus::Pending,
        ),
        (
            "chg_e",
            PendingAction::ContactChange {
                email: None,
                anti_phishing_code: Some(Some("Red777".into())),
            },
            PendingStatus::Pending,
        ),
    ];
    for (id, action, status) in cases {
        let change = PendingChange {
            action,
            status,
            step_up: StepUpMethod::Passkey,
            event_id: None,
            released_by: None,
            approved_by: None,
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
pub(super) async fn removing_the_expiry_survives_storage(store: Arc<dyn Store>) {
    seed(store.as_ref()).await;
    let change = PendingChange {
        action: PendingAction::KeyChange {
            key_id: "k_1".into(),
            label: None,
            add_scopes: ScopeSet::EMPTY,
            remove_scopes: ScopeSet::EMPTY,
            ip_allowlist: None,
            expires_at: Some(None),
            fund_window: None,
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

pub(super) async fn due_pending_is_open_and_on_time_oldest_first(store: Arc<dyn Store>) {
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

pub(super) async fn pending_updates_are_versioned(store: Arc<dyn Store>) {
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
