//! One storage conformance suite, run against embedded SQLite and the real PostgreSQL server:
//! every story is written once against the `Store` port.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use portcullis_app::ports::{
    ChangeSet, EngineCheckpoint, NewEvent, Operator, SealedSecret, Store, StoreError, Write,
};
use portcullis_core::account::Account;
use portcullis_core::allowlist::IpAllowList;
use portcullis_core::audit::AuditDraft;
use portcullis_core::key::{ApiKey, KeyAlgorithm};
use portcullis_core::operator::Role;
use portcullis_core::scope::ScopeSet;
use portcullis_core::time::UnixMillis;
use std::sync::Arc;

#[macro_use]
#[path = "support/backends.rs"]
mod backends;
use backends::{chain_is_intact, postgres, sqlite};

#[path = "conformance/event_log.rs"]
mod event_log;
use event_log::{
    an_ignored_event_is_recorded_once, batches_append_only_new_ids_in_order,
    decisions_commit_with_the_events_they_decide, decisions_stored_together_keep_the_first,
};
#[path = "conformance/keys.rs"]
mod keys;
use keys::{
    a_key_update_never_changes_its_identity, changes_are_numbered_in_commit_order,
    keys_round_trip_and_update_with_versions, secrets_generations_and_reseal,
    usage_only_moves_forward,
};
#[path = "conformance/policies.rs"]
mod policies;
use policies::{policy_versions_publish_once_in_order, the_event_log_is_read_by_time};
#[path = "conformance/outbox.rs"]
mod outbox;
use outbox::{
    outbox_claims_are_exclusive_until_the_lease_expires, outbox_failures_back_off_and_then_die,
    outbox_queues_with_its_change_and_once,
};

fn account(id: &str) -> Account {
    Account {
        id: id.into(),
        display_name: "Ada".into(),
        email: Some("ada@example.com".into()),
        phone: None,
        anti_phishing_code: Some("Blue42".into()),
        created_at: UnixMillis(1_000),
        updated_at: UnixMillis(1_000),
        version: 1,
    }
}

fn key(key_id: &str, api_key: &str, account: &str) -> ApiKey {
    ApiKey {
        key_id: key_id.into(),
        api_key: api_key.into(),
        account: account.into(),
        label: "bot".into(),
        algorithm: KeyAlgorithm::HmacSha256,
        public_key: None,
        scopes: ScopeSet::parse(["read", "trade"]).unwrap(),
        ip_allowlist: IpAllowList::parse(["203.0.113.0/24", "2001:db8::/32"]).unwrap(),
        created_at: UnixMillis(2_000),
        updated_at: UnixMillis(2_000),
        expires_at: Some(UnixMillis(9_000_000)),
        last_used_at: None,
        last_used_ip: None,
        revoked_at: None,
        idle_warned_at: None,
        fund_window: None,
        version: 1,
    }
}

fn secret(key_id: &str, generation: i64, master: &str) -> SealedSecret {
    SealedSecret {
        key_id: key_id.into(),
        generation,
        master_key_id: master.into(),
        nonce: vec![u8::try_from(generation).unwrap(); 12],
        ciphertext: vec![0xAB, u8::try_from(generation).unwrap(), 0, 255],
        created_at: UnixMillis(3_000 + generation),
        valid_until: None,
    }
}

fn draft(action: &str) -> AuditDraft {
    AuditDraft {
        at: UnixMillis(5_000),
        actor: "operator:op_1".into(),
        action: action.into(),
        target: "key:k_1".into(),
        details: r#"{"b":1,"a":[2]}"#.into(),
    }
}

fn event(id: &str) -> NewEvent {
    NewEvent {
        id: id.into(),
        ts: UnixMillis(6_000),
        account: Some("acc_1".into()),
        event_type: "api_key.created".into(),
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

async fn seed(store: &dyn Store) {
    store
        .commit(writes(vec![
            Write::InsertAccount(account("acc_1")),
            Write::InsertKey(key("k_1", "API1", "acc_1")),
        ]))
        .await
        .unwrap();
}

async fn operators_by_token_and_revocation(store: Arc<dyn Store>) {
    let operator = Operator {
        id: "op_1".into(),
        name: "alice".into(),
        role: Role::Analyst,
        token_hash: "ab".repeat(32),
        created_at: UnixMillis(1),
        revoked_at: None,
    };
    store
        .commit(writes(vec![Write::InsertOperator(operator.clone())]))
        .await
        .unwrap();
    assert_eq!(
        store
            .operator_by_token_hash(&"ab".repeat(32))
            .await
            .unwrap(),
        Some(operator.clone())
    );
    assert_eq!(
        store
            .operator_by_token_hash(&"cd".repeat(32))
            .await
            .unwrap(),
        None
    );
    let duplicate = Operator {
        id: "op_2".into(),
        ..operator.clone()
    };
    assert!(matches!(
        store
            .commit(writes(vec![Write::InsertOperator(duplicate)]))
            .await,
        Err(StoreError::Conflict(_))
    ));
    store
        .commit(writes(vec![Write::RevokeOperator {
            id: "op_1".into(),
            at: UnixMillis(7),
        }]))
        .await
        .unwrap();
    assert_eq!(
        store.operator("op_1").await.unwrap().unwrap().revoked_at,
        Some(UnixMillis(7))
    );
    assert!(matches!(
        store
            .commit(writes(vec![Write::RevokeOperator {
                id: "op_9".into(),
                at: UnixMillis(7)
            }]))
            .await,
        Err(StoreError::NotFound(_))
    ));
    assert_eq!(store.list_operators().await.unwrap().len(), 1);
}

/// Two admins revoking each other at the same moment: the last-admin check is in the same
/// transaction as the revoke, so exactly one of them succeeds and one admin token stays live.
async fn the_last_admin_token_is_never_revoked_even_in_a_race(store: Arc<dyn Store>) {
    for (id, hash) in [("op_a", "aa"), ("op_b", "bb")] {
        let admin = Operator {
            id: id.into(),
            name: id.into(),
            role: Role::Admin,
            token_hash: hash.repeat(32),
            created_at: UnixMillis(1),
            revoked_at: None,
        };
        store
            .commit(writes(vec![Write::InsertOperator(admin)]))
            .await
            .unwrap();
    }
    let revoke = |id: &str| {
        let store = store.clone();
        let id = id.to_owned();
        tokio::spawn(async move {
            store
                .commit(writes(vec![Write::RevokeOperator {
                    id,
                    at: UnixMillis(5),
                }]))
                .await
        })
    };
    let (a, b) = tokio::join!(revoke("op_a"), revoke("op_b"));
    let outcomes = [a.unwrap(), b.unwrap()];
    assert_eq!(
        outcomes.iter().filter(|o| o.is_ok()).count(),
        1,
        "{outcomes:?}"
    );
    assert!(
        outcomes
            .iter()
            .any(|o| matches!(o, Err(StoreError::Conflict(m)) if m.contains("last admin"))),
        "{outcomes:?}"
    );
    let live = store
        .list_operators()
        .await
        .unwrap()
        .into_iter()
        .filter(|o| o.revoked_at.is_none())
        .count();
    assert_eq!(live, 1);
}

async fn accounts_page_and_update_with_versions(store: Arc<dyn Store>) {
    for id in ["acc_c", "acc_a", "acc_b"] {
        store
            .commit(writes(vec![Write::InsertAccount(account(id))]))
            .await
            .unwrap();
    }
    assert!(matches!(
        store
            .commit(writes(vec![Write::InsertAccount(account("acc_a"))]))
            .await,
        Err(StoreError::Conflict(_))
    ));
    let page: Vec<String> = store
        .list_accounts(None, 2)
        .await
        .unwrap()
        .into_iter()
        .map(|a| a.id)
        .collect();
    assert_eq!(page, vec!["acc_a", "acc_b"]);
    let rest: Vec<String> = store
        .list_accounts(Some("acc_b"), 10)
        .await
        .unwrap()
        .into_iter()
        .map(|a| a.id)
        .collect();
    assert_eq!(rest, vec!["acc_c"]);
    let changed = Account {
        email: None,
        phone: Some("+14155550123".into()),
        version: 2,
        ..account("acc_a")
    };
    store
        .commit(writes(vec![Write::UpdateAccount {
            account: changed.clone(),
            expected_version: 1,
        }]))
        .await
        .unwrap();
    assert_eq!(store.account("acc_a").await.unwrap(), Some(changed.clone()));
    let stale = store
        .commit(writes(vec![Write::UpdateAccount {
            account: changed.clone(),
            expected_version: 1,
        }]))
        .await;
    assert!(matches!(stale, Err(StoreError::Conflict(_))), "{stale:?}");
    let missing = store
        .commit(writes(vec![Write::UpdateAccount {
            account: account("acc_z"),
            expected_version: 1,
        }]))
        .await;
    assert!(
        matches!(missing, Err(StoreError::NotFound(_))),
        "{missing:?}"
    );
}

async fn audit_chain_spans_commits(store: Arc<dyn Store>) {
    assert_eq!(
        chain_is_intact(store.as_ref()).await,
        0,
        "an empty chain verifies"
    );
    for n in 0..4 {
        let change = ChangeSet {
            writes: vec![],
            audit: vec![draft(&format!("a{n}")), draft(&format!("b{n}"))],
            events: vec![],
        };
        store.commit(change).await.unwrap();
    }
    assert_eq!(chain_is_intact(store.as_ref()).await, 8);
    let entries = store.audit_entries(6, 10).await.unwrap();
    assert_eq!(
        entries.iter().map(|e| e.seq).collect::<Vec<_>>(),
        vec![7, 8]
    );
    assert_eq!(
        entries[0].details, r#"{"b":1,"a":[2]}"#,
        "details are stored verbatim"
    );
}

async fn concurrent_commits_keep_one_chain(store: Arc<dyn Store>) {
    let tasks: Vec<_> = (0..12)
        .map(|n| {
            let store = store.clone();
            tokio::spawn(async move {
                let change = ChangeSet {
                    writes: vec![Write::InsertAccount(account(&format!("acc_{n}")))],
                    audit: vec![draft("x"), draft("y")],
                    events: vec![event(&format!("e{n}"))],
                };
                store.commit(change).await
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    assert_eq!(chain_is_intact(store.as_ref()).await, 24);
    let seqs: Vec<i64> = store
        .events_after(0, 100)
        .await
        .unwrap()
        .iter()
        .map(|e| e.seq)
        .collect();
    assert_eq!(seqs.len(), 12);
    assert!(seqs.windows(2).all(|w| w[0] < w[1]));
}

async fn a_failed_commit_writes_nothing(store: Arc<dyn Store>) {
    seed(store.as_ref()).await;
    let before = store.audit_head().await.unwrap();
    let change = ChangeSet {
        writes: vec![
            Write::MarkIdleWarned {
                key_id: "k_1".into(),
                at: UnixMillis(5_000),
                previous: None,
            },
            Write::InsertAccount(account("acc_new")),
            Write::InsertKey(key("k_new", "API1", "acc_new")),
        ],
        audit: vec![draft("should not exist")],
        events: vec![event("e_lost")],
    };
    assert!(matches!(
        store.commit(change).await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(store.account("acc_new").await.unwrap(), None);
    assert_eq!(
        store.key("k_1").await.unwrap().unwrap().idle_warned_at,
        None,
        "an idle warning is recorded with its audit entry and event, or not at all"
    );
    assert_eq!(store.audit_head().await.unwrap(), before);
    assert!(store.events_after(0, 10).await.unwrap().is_empty());
    assert_eq!(chain_is_intact(store.as_ref()).await, 1);
}

async fn events_append_and_page(store: Arc<dyn Store>) {
    let change = ChangeSet {
        writes: vec![],
        audit: vec![],
        events: (0..5).map(|n| event(&format!("e{n}"))).collect(),
    };
    store.commit(change).await.unwrap();
    let first = store.events_after(0, 2).await.unwrap();
    assert_eq!(
        first
            .iter()
            .map(|e| e.event.id.as_str())
            .collect::<Vec<_>>(),
        vec!["e0", "e1"]
    );
    assert_eq!(first[0].event, event("e0"));
    let rest = store.events_after(first[1].seq, 10).await.unwrap();
    assert_eq!(rest.len(), 3);
    let duplicate = ChangeSet {
        writes: vec![],
        audit: vec![],
        events: vec![event("e3")],
    };
    assert!(matches!(
        store.commit(duplicate).await,
        Err(StoreError::Conflict(_))
    ));
    store.ping().await.unwrap();
}

async fn engine_checkpoints_replace_and_never_move_back(store: Arc<dyn Store>) {
    assert_eq!(store.checkpoint("risk").await.unwrap(), None);
    let checkpoint = |seq: i64, state: Vec<u8>| EngineCheckpoint {
        name: "risk".into(),
        seq,
        state,
    };
    // Every byte value, zeros included, and a size well past a page.
    let state: Vec<u8> = (0..70_000u32)
        .map(|n| u8::try_from(n * 7 % 256).unwrap())
        .collect();
    store
        .commit(writes(vec![Write::SaveCheckpoint(checkpoint(
            10,
            state.clone(),
        ))]))
        .await
        .unwrap();
    assert_eq!(
        store.checkpoint("risk").await.unwrap(),
        Some(checkpoint(10, state))
    );
    store
        .commit(writes(vec![Write::SaveCheckpoint(checkpoint(
            25,
            vec![1, 2, 3],
        ))]))
        .await
        .unwrap();
    store
        .commit(writes(vec![Write::SaveCheckpoint(checkpoint(20, vec![9]))]))
        .await
        .unwrap();
    assert_eq!(
        store.checkpoint("risk").await.unwrap(),
        Some(checkpoint(25, vec![1, 2, 3])),
        "an older checkpoint never replaces a newer one"
    );
    let other = EngineCheckpoint {
        name: "risk.p1".into(),
        seq: 3,
        state: vec![],
    };
    store
        .commit(writes(vec![Write::SaveCheckpoint(other.clone())]))
        .await
        .unwrap();
    assert_eq!(store.checkpoint("risk.p1").await.unwrap(), Some(other));
    assert_eq!(store.checkpoint("risk").await.unwrap().unwrap().seq, 25);
}

conformance!(
    operators_by_token_and_revocation,
    the_last_admin_token_is_never_revoked_even_in_a_race,
    accounts_page_and_update_with_versions,
    keys_round_trip_and_update_with_versions,
    a_key_update_never_changes_its_identity,
    changes_are_numbered_in_commit_order,
    secrets_generations_and_reseal,
    usage_only_moves_forward,
    audit_chain_spans_commits,
    concurrent_commits_keep_one_chain,
    a_failed_commit_writes_nothing,
    events_append_and_page,
    outbox_queues_with_its_change_and_once,
    outbox_claims_are_exclusive_until_the_lease_expires,
    outbox_failures_back_off_and_then_die,
    engine_checkpoints_replace_and_never_move_back,
    batches_append_only_new_ids_in_order,
    decisions_stored_together_keep_the_first,
    decisions_commit_with_the_events_they_decide,
    an_ignored_event_is_recorded_once,
    policy_versions_publish_once_in_order,
    the_event_log_is_read_by_time,
);
