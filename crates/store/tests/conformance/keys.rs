//! Key stories: keys round-trip and update under optimistic versions without changing who they
//! are, changes are numbered in commit order, secrets keep their generations through a reseal,
//! and usage only moves forward.

use super::{account, key, secret, seed, writes};
use portcullis_app::ports::{KeyUsage, SealedSecret, Store, StoreError, Write};
use portcullis_core::allowlist::IpAllowList;
use portcullis_core::key::KeyAlgorithm;
use portcullis_core::scope::ScopeSet;
use portcullis_core::signing::Ed25519PublicKey;
use portcullis_core::time::UnixMillis;
use std::sync::Arc;

pub async fn keys_round_trip_and_update_with_versions(store: Arc<dyn Store>) {
    seed(store.as_ref()).await;
    let stored = store.key("k_1").await.unwrap().unwrap();
    assert_eq!(
        stored,
        key("k_1", "API1", "acc_1"),
        "every field round-trips"
    );
    assert_eq!(
        store.key_by_api_key("API1").await.unwrap(),
        Some(stored.clone())
    );
    let mut ed = key("k_2", "API2", "acc_1");
    ed.algorithm = KeyAlgorithm::Ed25519;
    ed.public_key = Some(
        Ed25519PublicKey::parse("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
            .unwrap(),
    );
    ed.ip_allowlist = IpAllowList::unrestricted();
    store
        .commit(writes(vec![Write::InsertKey(ed.clone())]))
        .await
        .unwrap();
    assert_eq!(store.key("k_2").await.unwrap(), Some(ed));
    assert!(
        matches!(
            store
                .commit(writes(vec![Write::InsertKey(key("k_3", "API1", "acc_1"))]))
                .await,
            Err(StoreError::Conflict(_))
        ),
        "api_key is unique"
    );
    assert!(
        store
            .commit(writes(vec![Write::InsertKey(key(
                "k_4",
                "API4",
                "acc_nobody"
            ))]))
            .await
            .is_err(),
        "a key needs its account"
    );
    assert_eq!(store.keys_for_account("acc_1").await.unwrap().len(), 2);

    store
        .record_key_usage(&[KeyUsage {
            key_id: "k_1".into(),
            at: UnixMillis(8_000),
            ip: Some("203.0.113.9".parse().unwrap()),
        }])
        .await
        .unwrap();
    let mut changed = stored.clone();
    changed.scopes = ScopeSet::parse(["read"]).unwrap();
    changed.revoked_at = Some(UnixMillis(9_000));
    changed.version = 2;
    store
        .commit(writes(vec![Write::UpdateKey {
            key: changed.clone(),
            expected_version: 1,
        }]))
        .await
        .unwrap();
    let after = store.key("k_1").await.unwrap().unwrap();
    assert_eq!(after.scopes, changed.scopes);
    assert_eq!(after.revoked_at, Some(UnixMillis(9_000)));
    assert_eq!(after.version, 2);
    assert_eq!(
        after.last_used_at,
        Some(UnixMillis(8_000)),
        "an update never clobbers usage"
    );
    assert!(matches!(
        store
            .commit(writes(vec![Write::UpdateKey {
                key: changed.clone(),
                expected_version: 1
            }]))
            .await,
        Err(StoreError::Conflict(_))
    ));
    assert!(matches!(
        store
            .commit(writes(vec![Write::UpdateKey {
                key: key("k_9", "X", "acc_1"),
                expected_version: 1
            }]))
            .await,
        Err(StoreError::NotFound(_))
    ));
}

pub async fn a_key_update_never_changes_its_identity(store: Arc<dyn Store>) {
    seed(store.as_ref()).await;
    store
        .commit(writes(vec![Write::InsertAccount(account("acc_2"))]))
        .await
        .unwrap();
    let stored = store.key("k_1").await.unwrap().unwrap();
    for field in ["api_key", "account", "algorithm"] {
        let mut changed = stored.clone();
        changed.label = "renamed".into();
        match field {
            "api_key" => changed.api_key = "API_OTHER".into(),
            "account" => changed.account = "acc_2".into(),
            _ => changed.algorithm = KeyAlgorithm::Ed25519,
        }
        changed.version = 2;
        let refused = store
            .commit(writes(vec![Write::UpdateKey {
                key: changed,
                expected_version: 1,
            }]))
            .await;
        match refused {
            Err(StoreError::Immutable(message)) => assert!(message.contains(field), "{message}"),
            other => panic!("changing {field}: {other:?}"),
        }
        assert_eq!(
            store.key("k_1").await.unwrap().unwrap(),
            stored,
            "nothing of a refused update is written ({field})"
        );
    }
    // A stale version is still a conflict, and an unknown key still missing.
    let mut stale = stored.clone();
    stale.label = "renamed".into();
    assert!(matches!(
        store
            .commit(writes(vec![Write::UpdateKey {
                key: stale,
                expected_version: 7,
            }]))
            .await,
        Err(StoreError::Conflict(_))
    ));
    assert!(matches!(
        store
            .commit(writes(vec![Write::UpdateKey {
                key: key("k_9", "API9", "acc_1"),
                expected_version: 1,
            }]))
            .await,
        Err(StoreError::NotFound(_))
    ));
}

pub async fn changes_are_numbered_in_commit_order(store: Arc<dyn Store>) {
    seed(store.as_ref()).await;
    let (keys, first) = store.keys_changed_since(0).await.unwrap();
    assert_eq!(keys.len(), 1);
    store
        .commit(writes(vec![Write::InsertKey(key("k_2", "API2", "acc_1"))]))
        .await
        .unwrap();
    let mut changed = key("k_1", "API1", "acc_1");
    changed.version = 2;
    store
        .commit(writes(vec![Write::UpdateKey {
            key: changed,
            expected_version: 1,
        }]))
        .await
        .unwrap();
    let (keys, newest) = store.keys_changed_since(first).await.unwrap();
    let ids: Vec<&str> = keys.iter().map(|k| k.key_id.as_str()).collect();
    assert_eq!(ids, vec!["k_2", "k_1"]);
    assert!(newest > first);
    store
        .record_key_usage(&[KeyUsage {
            key_id: "k_2".into(),
            at: UnixMillis(1),
            ip: None,
        }])
        .await
        .unwrap();
    store
        .commit(writes(vec![Write::MarkIdleWarned {
            key_id: "k_2".into(),
            at: UnixMillis(2),
            previous: None,
        }]))
        .await
        .unwrap();
    assert_eq!(
        store.keys_changed_since(newest).await.unwrap(),
        (vec![], newest),
        "telemetry is not a change"
    );
}

pub async fn secrets_generations_and_reseal(store: Arc<dyn Store>) {
    seed(store.as_ref()).await;
    store
        .commit(writes(vec![
            Write::InsertSecret(secret("k_1", 1, "mk1")),
            Write::InsertSecret(secret("k_1", 2, "mk1")),
        ]))
        .await
        .unwrap();
    let generations: Vec<i64> = store
        .secrets("k_1")
        .await
        .unwrap()
        .iter()
        .map(|s| s.generation)
        .collect();
    assert_eq!(generations, vec![2, 1], "newest first");
    assert_eq!(
        store.secrets("k_1").await.unwrap()[1],
        secret("k_1", 1, "mk1"),
        "bytes round-trip"
    );
    store
        .commit(writes(vec![Write::SetSecretValidUntil {
            key_id: "k_1".into(),
            generation: 1,
            valid_until: UnixMillis(77),
        }]))
        .await
        .unwrap();
    assert_eq!(
        store.secrets("k_1").await.unwrap()[1].valid_until,
        Some(UnixMillis(77))
    );
    assert!(matches!(
        store
            .commit(writes(vec![Write::InsertSecret(secret("k_1", 2, "mk1"))]))
            .await,
        Err(StoreError::Conflict(_))
    ));

    assert_eq!(
        store.secrets_not_sealed_by("mk2", 1).await.unwrap().len(),
        1,
        "limit applies"
    );
    let resealed = SealedSecret {
        master_key_id: "mk2".into(),
        ciphertext: vec![1, 2, 3],
        ..secret("k_1", 1, "mk1")
    };
    store
        .commit(writes(vec![Write::ResealSecret {
            secret: resealed.clone(),
            expected_master_key_id: "mk1".into(),
        }]))
        .await
        .unwrap();
    let stored = store.secrets("k_1").await.unwrap();
    assert_eq!(stored[1].master_key_id, "mk2");
    assert_eq!(
        stored[1].valid_until,
        Some(UnixMillis(77)),
        "reseal keeps the validity"
    );
    let again = store
        .commit(writes(vec![Write::ResealSecret {
            secret: resealed,
            expected_master_key_id: "mk1".into(),
        }]))
        .await;
    assert!(matches!(again, Err(StoreError::Conflict(_))), "{again:?}");
    assert_eq!(
        store.secrets_not_sealed_by("mk2", 10).await.unwrap().len(),
        1
    );
}

pub async fn usage_only_moves_forward(store: Arc<dyn Store>) {
    seed(store.as_ref()).await;
    let ip = |s: &str| Some(s.parse().unwrap());
    store
        .record_key_usage(&[KeyUsage {
            key_id: "k_1".into(),
            at: UnixMillis(500),
            ip: ip("203.0.113.1"),
        }])
        .await
        .unwrap();
    store
        .record_key_usage(&[
            KeyUsage {
                key_id: "k_1".into(),
                at: UnixMillis(400),
                ip: ip("203.0.113.2"),
            },
            KeyUsage {
                key_id: "k_unknown".into(),
                at: UnixMillis(1),
                ip: None,
            },
        ])
        .await
        .unwrap();
    let stored = store.key("k_1").await.unwrap().unwrap();
    assert_eq!(
        (stored.last_used_at, stored.last_used_ip),
        (Some(UnixMillis(500)), ip("203.0.113.1"))
    );
    store
        .record_key_usage(&[KeyUsage {
            key_id: "k_1".into(),
            at: UnixMillis(600),
            ip: ip("2001:db8::7"),
        }])
        .await
        .unwrap();
    let stored = store.key("k_1").await.unwrap().unwrap();
    assert_eq!(
        (stored.last_used_at, stored.last_used_ip),
        (Some(UnixMillis(600)), ip("2001:db8::7"))
    );
    store
        .commit(writes(vec![Write::MarkIdleWarned {
            key_id: "k_1".into(),
            at: UnixMillis(700),
            previous: None,
        }]))
        .await
        .unwrap();
    let warned = store.key("k_1").await.unwrap().unwrap();
    assert_eq!(warned.idle_warned_at, Some(UnixMillis(700)));
    // Another sweep that saw the key unwarned is refused: the owner is warned once.
    let stale = |previous| {
        writes(vec![Write::MarkIdleWarned {
            key_id: "k_1".into(),
            at: UnixMillis(710),
            previous,
        }])
    };
    assert!(matches!(
        store.commit(stale(None)).await,
        Err(StoreError::Conflict(_))
    ));
    assert!(matches!(
        store.commit(stale(Some(UnixMillis(650)))).await,
        Err(StoreError::Conflict(_))
    ));
    let still = store.key("k_1").await.unwrap().unwrap();
    assert_eq!(still.idle_warned_at, Some(UnixMillis(700)));
    assert_eq!(
        warned.version, stored.version,
        "a warning is not a new version"
    );
    assert!(matches!(
        store
            .commit(writes(vec![Write::MarkIdleWarned {
                key_id: "k_404".into(),
                at: UnixMillis(700),
                previous: None,
            }]))
            .await,
        Err(StoreError::NotFound(_))
    ));
}
