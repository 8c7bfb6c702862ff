//! Event log stories for batches: a batch is appended in one go, in order, skipping ids
//! already logged or repeated inside it, and decisions stored together keep the first one; an
//! ignored event's record keeps the first too.

use super::event;
use portcullis_app::ports::{ChangeSet, IgnoredEvent, NewEvent, Store, StoredDecision, Write};
use portcullis_core::time::UnixMillis;
use std::sync::Arc;

pub async fn batches_append_only_new_ids_in_order(store: Arc<dyn Store>) {
    assert!(store.append_new_events(vec![]).await.unwrap().is_empty());
    store.append_new_events(vec![event("old")]).await.unwrap();
    // More than the largest statement shape, so the batch spans several statements.
    let mut batch: Vec<NewEvent> = (0..150).map(|n| event(&format!("b{n}"))).collect();
    batch.insert(10, event("old"));
    batch.insert(20, event("b3"));
    let appended = store.append_new_events(batch.clone()).await.unwrap();
    assert_eq!(appended.len(), batch.len());
    let skipped: Vec<usize> = (0..batch.len()).filter(|&n| !appended[n]).collect();
    assert_eq!(
        skipped,
        vec![10, 20],
        "the logged id and the repeat are skipped"
    );
    let logged = store.events_after(0, 1_000).await.unwrap();
    let ids: Vec<&str> = logged.iter().map(|e| e.event.id.as_str()).collect();
    let expected: Vec<String> = std::iter::once("old".to_owned())
        .chain((0..150).map(|n| format!("b{n}")))
        .collect();
    assert_eq!(ids, expected, "log order is batch order");
    assert!(logged.windows(2).all(|pair| pair[0].seq < pair[1].seq));
    assert_eq!(logged[1].event, event("b0"), "every field is stored");
}

pub async fn an_ignored_event_is_recorded_once(store: Arc<dyn Store>) {
    let ignored = |reason: &str| {
        let record = IgnoredEvent {
            event_id: "late1".into(),
            reason: reason.into(),
            event_ts: UnixMillis(5_000),
        };
        ChangeSet {
            writes: vec![Write::RecordIgnored(record)],
            ..ChangeSet::default()
        }
    };
    assert_eq!(store.ignored_event("late1").await.unwrap(), None);
    store.commit(ignored("late")).await.unwrap();
    store.commit(ignored("duplicate or late")).await.unwrap();
    let recorded = store.ignored_event("late1").await.unwrap().unwrap();
    assert_eq!(
        (recorded.reason.as_str(), recorded.event_ts),
        ("late", UnixMillis(5_000))
    );
    assert_eq!(store.ignored_event("other").await.unwrap(), None);
}

pub async fn decisions_stored_together_keep_the_first(store: Arc<dyn Store>) {
    let decision = |id: &str, verdict: &str| {
        Write::InsertDecision(StoredDecision {
            event_id: id.into(),
            decided_at: UnixMillis(7_000),
            decision: verdict.into(),
            score: 10,
            reasons: "[]".into(),
            features: r#"{"n":1}"#.into(),
        })
    };
    let commit = |writes: Vec<Write>| ChangeSet {
        writes,
        ..ChangeSet::default()
    };
    store
        .commit(commit(vec![decision("d0", "hold")]))
        .await
        .unwrap();
    let many: Vec<Write> = (0..90)
        .map(|n| decision(&format!("d{n}"), "allow"))
        .collect();
    store.commit(commit(many)).await.unwrap();
    let first = store.decision("d0").await.unwrap().unwrap();
    assert_eq!(first.decision, "hold", "a stored decision is kept");
    let last = store.decision("d89").await.unwrap().unwrap();
    assert_eq!((last.decision.as_str(), last.score), ("allow", 10));
    assert_eq!(last.features, r#"{"n":1}"#);
}

pub async fn decisions_commit_with_the_events_they_decide(store: Arc<dyn Store>) {
    let decision = |id: &str, verdict: &str| StoredDecision {
        event_id: id.into(),
        decided_at: UnixMillis(9_000),
        decision: verdict.into(),
        score: 40,
        reasons: r#"["r1"]"#.into(),
        features: r#"{"f":2}"#.into(),
    };
    store.append_new_events(vec![event("seen")]).await.unwrap();
    store
        .commit(ChangeSet {
            writes: vec![Write::InsertDecision(decision("x1", "hold"))],
            ..ChangeSet::default()
        })
        .await
        .unwrap();
    let mut shown = Vec::new();
    let batch = vec![event("x1"), event("seen"), event("x2"), event("x1")];
    let positions = store
        .append_new_events_then(batch, &mut |positions| {
            shown = positions.clone();
            vec![decision("x1", "allow"), decision("x2", "block")]
        })
        .await
        .unwrap();
    assert_eq!(positions, shown, "`then` sees the positions returned");
    let seen = store.events_after(0, 10).await.unwrap()[0].seq;
    let [Some(x1), None, Some(x2), None] = positions[..] else {
        panic!("only the new ids are appended, once: {positions:?}");
    };
    assert!(seen < x1 && x1 < x2, "positions grow in batch order");
    let kept = store.decision("x1").await.unwrap().unwrap();
    assert_eq!(kept.decision, "hold", "a stored decision is kept");
    let stored = store.decision("x2").await.unwrap().unwrap();
    assert_eq!(stored, decision("x2", "block"), "every field is stored");
    assert!(
        (store.append_new_events_then(vec![], &mut |_| vec![decision("x3", "allow")]))
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store.decision("x3").await.unwrap(),
        None,
        "an empty batch writes nothing"
    );
}
