//! Step-up grants spent once (also under races), the address allow-list, and atomicity of a
//! commit with a failing guard write in the middle.

use super::*;

pub(super) async fn a_grant_is_spent_once_and_a_second_spend_writes_nothing(store: Arc<dyn Store>) {
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

pub(super) async fn racing_spends_of_one_grant_let_exactly_one_through(store: Arc<dyn Store>) {
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

pub(super) async fn addresses_upsert_list_and_remove(store: Arc<dyn Store>) {
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

pub(super) async fn a_failing_guard_write_in_the_middle_leaves_nothing(store: Arc<dyn Store>) {
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
