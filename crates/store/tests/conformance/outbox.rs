//! Outbox stories: messages are queued with their change (or not at all), deduplicated,
//! leased exclusively, retried after a lease expires, backed off, and given up on visibly.

use super::{account, writes};
use portcullis_app::ports::{
    Channel, ClaimRequest, OutboxFilter, OutboxMessage, OutboxStatus, Store, StoreError, Write,
};
use portcullis_core::time::UnixMillis;
use std::collections::HashSet;
use std::sync::Arc;

fn message(id: &str, account: &str, at: i64) -> OutboxMessage {
    OutboxMessage {
        id: id.into(),
        account: account.into(),
        channel: Channel::Email,
        recipient: "ada@example.com".into(),
        subject: "[Exemplar] A change".into(),
        body_text: "Your anti-phishing code: Blue42".into(),
        body_html: Some("<p>Your anti-phishing code: Blue42</p>".into()),
        created_at: UnixMillis(at),
        dedupe_key: format!("{account}:{id}:email"),
    }
}

fn claim(token: &str, now: i64, lease: i64, limit: u32) -> ClaimRequest {
    ClaimRequest {
        now: UnixMillis(now),
        lease_token: token.into(),
        until: UnixMillis(now + lease),
        limit,
        max_attempts: 3,
    }
}

async fn enqueue(store: &dyn Store, messages: Vec<OutboxMessage>) {
    let set = writes(
        messages
            .into_iter()
            .map(Write::EnqueueNotification)
            .collect(),
    );
    store.commit(set).await.unwrap();
}

pub async fn outbox_queues_with_its_change_and_once(store: Arc<dyn Store>) {
    store
        .commit(writes(vec![
            Write::InsertAccount(account("acc_1")),
            Write::EnqueueNotification(message("ntf_1", "acc_1", 10)),
        ]))
        .await
        .unwrap();
    // The same account again fails the commit, and its notice is not queued either.
    let failed = store
        .commit(writes(vec![
            Write::EnqueueNotification(message("ntf_2", "acc_1", 11)),
            Write::InsertAccount(account("acc_1")),
        ]))
        .await;
    assert!(matches!(failed, Err(StoreError::Conflict(_))));
    // A second message under a known dedupe key is dropped; the first stays as it was.
    let mut again = message("ntf_1", "acc_1", 99);
    again.subject = "changed".into();
    enqueue(store.as_ref(), vec![again, message("ntf_3", "acc_2", 12)]).await;

    let all = store
        .list_outbox(&OutboxFilter::default(), 10)
        .await
        .unwrap();
    let ids: Vec<_> = all.iter().map(|e| e.message.id.as_str()).collect();
    assert_eq!(ids, vec!["ntf_3", "ntf_1"], "newest first");
    let first = &all[1];
    assert_eq!(first.message, message("ntf_1", "acc_1", 10));
    assert_eq!(first.status, OutboxStatus::Pending);
    assert_eq!(first.attempts, 0);
    assert_eq!(first.next_attempt_at, UnixMillis(10));
    assert_eq!(
        (first.lease_until, &first.last_error, first.delivered_at),
        (None, &None, None)
    );
    let for_acc_1 = OutboxFilter {
        account: Some("acc_1".into()),
        status: None,
    };
    assert_eq!(store.list_outbox(&for_acc_1, 10).await.unwrap().len(), 1);
    let dead = OutboxFilter {
        account: None,
        status: Some(OutboxStatus::Dead),
    };
    assert!(store.list_outbox(&dead, 10).await.unwrap().is_empty());
    // With the attempt limit lowered below what a message has used, it is given up on rather
    // than left pending forever.
    let no_more = ClaimRequest {
        max_attempts: 0,
        ..claim("z", 1_000, 1_000, 10)
    };
    assert!(store.claim_due(&no_more).await.unwrap().is_empty());
    let given_up = store.list_outbox(&dead, 10).await.unwrap();
    assert_eq!(given_up.len(), 2);
    assert!(
        given_up[0]
            .last_error
            .as_deref()
            .unwrap()
            .contains("attempts used up")
    );
}

pub async fn outbox_claims_are_exclusive_until_the_lease_expires(store: Arc<dyn Store>) {
    let queued: Vec<_> = (0..8)
        .map(|n| message(&format!("ntf_{n}"), "acc_1", 100 + n))
        .collect();
    enqueue(store.as_ref(), queued).await;
    // Nothing is due before it was queued.
    assert!(
        store
            .claim_due(&claim("early", 50, 1_000, 10))
            .await
            .unwrap()
            .is_empty()
    );
    let (claim_a, claim_b) = (claim("a", 1_000, 60_000, 8), claim("b", 1_000, 60_000, 8));
    let (a, b) = tokio::join!(store.claim_due(&claim_a), store.claim_due(&claim_b));
    // Racing claims may split the batch any way (one may even lose every race), never share.
    let c = store
        .claim_due(&claim("c", 1_000, 60_000, 8))
        .await
        .unwrap();
    let mut held = Vec::new();
    for (token, entries) in [("a", a.unwrap()), ("b", b.unwrap()), ("c", c)] {
        held.extend(entries.into_iter().map(|e| (token, e)));
    }
    let ids: HashSet<_> = held.iter().map(|(_, e)| e.message.id.clone()).collect();
    assert_eq!(
        (ids.len(), held.len()),
        (8, 8),
        "every message claimed once"
    );
    assert!(held.iter().all(|(_, e)| e.attempts == 1));
    // While leased, nothing more is due.
    assert!(
        store
            .claim_due(&claim("x", 30_000, 60_000, 10))
            .await
            .unwrap()
            .is_empty()
    );
    // Five are delivered; the worker holding the other three vanishes. Once its lease expires
    // they come back, oldest due first, with the attempt counted.
    held.sort_by_key(|(_, e)| e.message.created_at);
    let (done, lost) = held.split_at(5);
    for (_, entry) in done {
        store
            .mark_delivered(&entry.message.id, UnixMillis(2_000))
            .await
            .unwrap();
    }
    let retried = store
        .claim_due(&claim("d", 61_000, 60_000, 10))
        .await
        .unwrap();
    let retried_ids: Vec<_> = retried.iter().map(|e| e.message.id.clone()).collect();
    let lost_ids: Vec<_> = lost.iter().map(|(_, e)| e.message.id.clone()).collect();
    assert_eq!(retried_ids, lost_ids);
    assert!(retried.iter().all(|e| e.attempts == 2));
    // The vanished worker's late outcome is refused: the lease is "d"'s now.
    let (stale_token, stale) = &lost[0];
    assert!(matches!(
        store
            .mark_failed(&stale.message.id, stale_token, "late", None)
            .await,
        Err(StoreError::Conflict(_))
    ));
    let delivered = OutboxFilter {
        account: None,
        status: Some(OutboxStatus::Delivered),
    };
    let delivered = store.list_outbox(&delivered, 10).await.unwrap();
    assert_eq!(delivered.len(), 5);
    assert!(
        delivered
            .iter()
            .all(|e| e.delivered_at == Some(UnixMillis(2_000)) && e.lease_until.is_none())
    );
}

pub async fn outbox_failures_back_off_and_then_die(store: Arc<dyn Store>) {
    enqueue(
        store.as_ref(),
        vec![message("ntf_a", "acc_1", 0), message("ntf_b", "acc_1", 1)],
    )
    .await;
    let first = store.claim_due(&claim("t1", 10, 1_000, 1)).await.unwrap();
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].message.id, "ntf_a");
    store
        .mark_failed("ntf_a", "t1", "503 from receiver", Some(UnixMillis(5_000)))
        .await
        .unwrap();
    // Not due before its retry time (ntf_b is), due after it.
    let next = store
        .claim_due(&claim("t2", 4_999, 1_000, 5))
        .await
        .unwrap();
    assert_eq!(next.len(), 1);
    assert_eq!(next[0].message.id, "ntf_b");
    store
        .mark_failed("ntf_b", "t2", "mailbox does not exist", None)
        .await
        .unwrap();
    let again = store
        .claim_due(&claim("t3", 5_000, 1_000, 5))
        .await
        .unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(
        (again[0].message.id.as_str(), again[0].attempts),
        ("ntf_a", 2)
    );
    assert_eq!(again[0].last_error.as_deref(), Some("503 from receiver"));
    // Third and last attempt: its worker dies; once the lease expires the message is dead,
    // not retried a fourth time.
    store
        .mark_failed("ntf_a", "t3", "timeout", Some(UnixMillis(6_000)))
        .await
        .unwrap();
    let third = store
        .claim_due(&claim("t4", 6_000, 1_000, 5))
        .await
        .unwrap();
    assert_eq!(third[0].attempts, 3);
    assert!(
        store
            .claim_due(&claim("t5", 7_000, 1_000, 5))
            .await
            .unwrap()
            .is_empty()
    );
    let dead = store
        .list_outbox(
            &OutboxFilter {
                account: Some("acc_1".into()),
                status: Some(OutboxStatus::Dead),
            },
            10,
        )
        .await
        .unwrap();
    let mut summary: Vec<_> = dead
        .iter()
        .map(|e| (e.message.id.as_str(), e.attempts, e.last_error.is_some()))
        .collect();
    summary.sort();
    assert_eq!(summary, vec![("ntf_a", 3, true), ("ntf_b", 1, true)]);
    assert_eq!(
        dead.iter()
            .find(|e| e.message.id == "ntf_b")
            .and_then(|e| e.last_error.as_deref()),
        Some("mailbox does not exist")
    );
    // Delivery is idempotent; unknown messages are not found.
    store
        .mark_delivered("ntf_b", UnixMillis(8_000))
        .await
        .unwrap();
    store
        .mark_delivered("ntf_b", UnixMillis(9_000))
        .await
        .unwrap();
    assert!(matches!(
        store.mark_delivered("ntf_zz", UnixMillis(1)).await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        store.mark_failed("ntf_zz", "t", "x", None).await,
        Err(StoreError::NotFound(_))
    ));
}
