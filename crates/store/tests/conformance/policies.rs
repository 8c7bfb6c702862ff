//! Policy stories: versions are proposed with unique numbers, published once each with a
//! unique publication number (the highest is in force), and the event log is read by time for
//! backtests.

use super::writes;
use portcullis_app::ports::{
    ChangeSet, EventSpan, NewEvent, PolicyVersion, PolicyWrite, Store, StoreError, Write,
};
use portcullis_core::time::UnixMillis;
use std::sync::Arc;

fn proposal(version: i64, text: &str) -> PolicyVersion {
    PolicyVersion {
        version,
        text: text.into(),
        note: format!("note {version}"),
        rollback_of: (version == 3).then_some(1),
        proposed_by: "op_maker".into(),
        proposed_at: UnixMillis(1_000 + version),
        approved_by: None,
        published_at: None,
        publication: None,
    }
}

fn publish(version: i64, publication: i64) -> ChangeSet {
    let mut set = writes(vec![Write::Policy(PolicyWrite::Publish {
        version,
        approved_by: "op_checker".into(),
        at: UnixMillis(5_000 + publication),
        publication,
    })]);
    set.audit[0].target = format!("policy:v{version}");
    set
}

pub async fn policy_versions_publish_once_in_order(store: Arc<dyn Store>) {
    assert_eq!(store.latest_policy_version().await.unwrap(), 0);
    assert_eq!(store.latest_publication().await.unwrap(), 0);
    assert!(store.published_policy().await.unwrap().is_none());
    for (n, text) in [(1, "one"), (2, "two"), (3, "one")] {
        let propose = writes(vec![Write::Policy(PolicyWrite::Propose(proposal(n, text)))]);
        store.commit(propose).await.unwrap();
    }
    let taken = writes(vec![Write::Policy(PolicyWrite::Propose(proposal(
        2, "again",
    )))]);
    assert!(matches!(
        store.commit(taken).await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(store.latest_policy_version().await.unwrap(), 3);
    assert_eq!(
        store.policy_version(3).await.unwrap().unwrap(),
        proposal(3, "one")
    );

    store.commit(publish(2, 1)).await.unwrap();
    let twice = store.commit(publish(2, 2)).await;
    assert!(matches!(twice, Err(StoreError::Conflict(_))), "{twice:?}");
    let same_number = store.commit(publish(1, 1)).await;
    assert!(
        matches!(same_number, Err(StoreError::Conflict(_))),
        "another process published"
    );
    let missing = store.commit(publish(9, 2)).await;
    assert!(
        matches!(missing, Err(StoreError::Conflict(_))),
        "{missing:?}"
    );
    store.commit(publish(3, 2)).await.unwrap();

    let in_force = store.published_policy().await.unwrap().unwrap();
    assert_eq!(
        (
            in_force.version,
            in_force.publication,
            in_force.text.as_str()
        ),
        (3, Some(2), "one")
    );
    assert_eq!(in_force.approved_by.as_deref(), Some("op_checker"));
    assert_eq!(in_force.published_at, Some(UnixMillis(5_002)));
    assert_eq!(store.latest_publication().await.unwrap(), 2);
    let listed: Vec<(i64, Option<i64>)> = (store.policy_versions(10).await.unwrap().iter())
        .map(|v| (v.version, v.publication))
        .collect();
    assert_eq!(listed, vec![(3, Some(2)), (2, Some(1)), (1, None)]);
    assert_eq!(store.policy_versions(1).await.unwrap().len(), 1);
    // The policy's audit entries, newest first: the two publications (the proposals were
    // audited on another target here).
    let history: Vec<String> = (store.policy_audit(10).await.unwrap().into_iter())
        .map(|e| e.target)
        .collect();
    assert_eq!(
        history,
        vec!["policy:v3".to_owned(), "policy:v2".to_owned()]
    );
}

fn event(id: &str, ts: i64) -> NewEvent {
    NewEvent {
        id: id.into(),
        ts: UnixMillis(ts),
        account: Some("acc_1".into()),
        event_type: "login".into(),
        body: format!(r#"{{"id":"{id}"}}"#),
    }
}

pub async fn the_event_log_is_read_by_time(store: Arc<dyn Store>) {
    let empty = store
        .event_span(UnixMillis(0), UnixMillis(i64::MAX))
        .await
        .unwrap();
    assert_eq!(empty, EventSpan::default());
    // Logged out of time order, as late events are.
    let events = vec![
        event("a", 100),
        event("b", 300),
        event("c", 200),
        event("d", 400),
        event("e", 250),
    ];
    store.append_new_events(events).await.unwrap();
    let span = store
        .event_span(UnixMillis(200), UnixMillis(400))
        .await
        .unwrap();
    assert_eq!(
        span.count, 3,
        "b, c and e; d is at the end of the range, excluded"
    );
    let page = store
        .events_between(
            UnixMillis(200),
            UnixMillis(400),
            span.first_seq - 1,
            span.last_seq,
            2,
        )
        .await
        .unwrap();
    let ids: Vec<&str> = page.iter().map(|e| e.event.id.as_str()).collect();
    assert_eq!(ids, vec!["b", "c"], "in log order, a page at a time");
    let rest = store
        .events_between(
            UnixMillis(200),
            UnixMillis(400),
            page[1].seq,
            span.last_seq,
            2,
        )
        .await
        .unwrap();
    assert_eq!(
        rest.iter().map(|e| e.event.id.as_str()).collect::<Vec<_>>(),
        vec!["e"]
    );
    assert_eq!(rest[0].seq, span.last_seq);
}
