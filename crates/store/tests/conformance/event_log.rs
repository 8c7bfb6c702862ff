//! Event log stories for batches: a batch is appended in one go, in order, skipping ids
//! already logged or repeated inside it, and decisions stored together keep the first one.

use super::event;
use portcullis_app::ports::{ChangeSet, NewEvent, Store, StoredDecision, Write};
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
