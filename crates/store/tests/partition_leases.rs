//! Partition leases with the manual clock, on both backends: two processes share four
//! partitions fairly, one stops renewing, the other takes its partitions over with a new
//! epoch once the lease lapses, and a commit under the old epoch stores nothing; a process that
//! leaves is not waited for; a change of the partition count fences the old layout's commits.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use portcullis_app::clock::ManualClock;
use portcullis_app::partitions::{Layout, Leases, layout};
use portcullis_app::ports::{
    ChangeSet, EngineCheckpoint, NewEvent, Store, StoreError, StoredDecision, Write,
};
use portcullis_core::time::UnixMillis;
use std::sync::Arc;

#[macro_use]
#[allow(dead_code)] // The audit chain check is the other suites'.
#[path = "support/backends.rs"]
mod backends;
use backends::{postgres, sqlite};

const TTL: i64 = 5_000;

fn decision(id: &str) -> StoredDecision {
    StoredDecision {
        event_id: id.into(),
        decided_at: UnixMillis(1),
        decision: "allow".into(),
        score: 0,
        reasons: "[]".into(),
        features: "{}".into(),
    }
}

fn event(id: &str) -> NewEvent {
    NewEvent {
        id: id.into(),
        ts: UnixMillis(1),
        account: Some("acc_1".into()),
        event_type: "withdrawal.requested".into(),
        body: format!("{{\"id\":\"{id}\"}}"),
    }
}

/// A partition's commit under `epoch`: the event logged once and its decision.
async fn commit_under(
    store: &dyn Store,
    owner: &str,
    partition: u32,
    epoch: i64,
    id: &str,
) -> Result<(), StoreError> {
    commit_in(store, (owner, partition, epoch), 0, id).await
}

/// The same in layout `generation`.
async fn commit_in(
    store: &dyn Store,
    (owner, partition, epoch): (&str, u32, i64),
    generation: i64,
    id: &str,
) -> Result<(), StoreError> {
    store
        .commit(ChangeSet {
            writes: vec![
                Write::HoldsLease {
                    partition,
                    owner: owner.into(),
                    epoch,
                    generation,
                },
                Write::LogEventOnce(event(id)),
                Write::InsertDecision(decision(id)),
            ],
            ..ChangeSet::default()
        })
        .await
}

async fn a_lapsed_lease_is_taken_over_with_a_new_epoch(store: Arc<dyn Store>) {
    let clock = Arc::new(ManualClock::new(UnixMillis(1_000_000)));
    let mut a = Leases::new(store.clone(), clock.clone(), "a".into(), 4, TTL);
    let mut b = Leases::new(store.clone(), clock.clone(), "b".into(), 4, TTL);

    // Alone, a takes every partition.
    let tick = a.tick().await.unwrap();
    assert_eq!(tick.acquired, vec![(0, 1), (1, 1), (2, 1), (3, 1)]);
    // b arrives: nothing is free, and a now holds two beyond its fair share.
    assert!(b.tick().await.unwrap().acquired.is_empty());
    let tick = a.tick().await.unwrap();
    assert_eq!(tick.surplus, vec![3, 2]);
    for partition in tick.surplus {
        a.release(partition).await.unwrap();
    }
    assert_eq!(b.tick().await.unwrap().acquired, vec![(2, 2), (3, 2)]);
    assert_eq!(a.held().keys().copied().collect::<Vec<_>>(), [0, 1]);

    // Renewed before it lapses, a lease stays.
    clock.advance(TTL - 1);
    assert_eq!(a.tick().await.unwrap(), Default::default());
    assert_eq!(b.tick().await.unwrap(), Default::default());
    commit_under(store.as_ref(), "a", 0, 1, "evt_1")
        .await
        .unwrap();

    // a stops renewing (its process hangs); b takes its partitions once they lapse, at a new
    // epoch, and a's next commit with the old one is refused whole.
    clock.advance(TTL);
    let tick = b.tick().await.unwrap();
    assert_eq!(tick.acquired, vec![(0, 2), (1, 2)]);
    let refused = commit_under(store.as_ref(), "a", 0, 1, "evt_2").await;
    assert!(
        matches!(refused, Err(StoreError::Conflict(_))),
        "{refused:?}"
    );
    assert!(store.decision("evt_2").await.unwrap().is_none());
    assert!(
        store
            .events_after(0, 10)
            .await
            .unwrap()
            .iter()
            .all(|e| e.event.id != "evt_2")
    );
    // The new owner redoes the batch: the event already logged is kept once.
    commit_under(store.as_ref(), "b", 0, 2, "evt_1")
        .await
        .unwrap();
    commit_under(store.as_ref(), "b", 0, 2, "evt_2")
        .await
        .unwrap();
    let logged = store.events_after(0, 10).await.unwrap();
    assert_eq!(logged.len(), 2);

    // a wakes up: its renewals fail, it learns it lost both.
    let tick = a.tick().await.unwrap();
    assert_eq!(tick.lost, vec![0, 1]);
    assert!(a.held().is_empty());
    let leases = store.leases().await.unwrap();
    assert!(leases.iter().all(|l| l.owner == "b"), "{leases:?}");
    assert_eq!(
        leases.iter().map(|l| l.epoch).collect::<Vec<_>>(),
        [2, 2, 2, 2]
    );
}

async fn three_processes_share_four_partitions_one_one_two(store: Arc<dyn Store>) {
    let clock = Arc::new(ManualClock::new(UnixMillis(1_000_000)));
    let mut nodes: Vec<Leases> = ["a", "b", "c"]
        .into_iter()
        .map(|node| Leases::new(store.clone(), clock.clone(), node.into(), 4, TTL))
        .collect();
    assert_eq!(nodes[0].tick().await.unwrap().acquired.len(), 4);
    for node in &mut nodes[1..] {
        assert!(node.tick().await.unwrap().acquired.is_empty());
    }
    // Two processes hold nothing: the first keeps floor(4 / 3) = 1 and hands back the rest.
    let tick = nodes[0].tick().await.unwrap();
    assert_eq!(tick.surplus, vec![3, 2, 1]);
    for partition in tick.surplus {
        nodes[0].release(partition).await.unwrap();
    }
    // While c holds nothing, b takes only the floor; then c, up to ceil(4 / 3) = 2.
    for _ in 0..2 {
        for node in &mut nodes {
            node.tick().await.unwrap();
        }
    }
    let held: Vec<usize> = nodes.iter().map(|node| node.held().len()).collect();
    assert_eq!(held, [1, 1, 2]);
    for node in &mut nodes {
        assert_eq!(node.tick().await.unwrap(), Default::default(), "settled");
    }
}

async fn a_process_that_leaves_is_not_waited_for(store: Arc<dyn Store>) {
    let clock = Arc::new(ManualClock::new(UnixMillis(1_000_000)));
    let mut a = Leases::new(store.clone(), clock.clone(), "a".into(), 4, TTL);
    let mut b = Leases::new(store.clone(), clock.clone(), "b".into(), 4, TTL);
    assert_eq!(a.tick().await.unwrap().acquired.len(), 4);
    let tick = a.tick().await.unwrap();
    assert!(tick.surplus.is_empty(), "b has not been seen yet");
    // b arrives while a holds all four: b takes nothing yet and a hands back two.
    assert!(b.tick().await.unwrap().acquired.is_empty());
    for partition in a.tick().await.unwrap().surplus {
        a.release(partition).await.unwrap();
    }
    assert_eq!(b.tick().await.unwrap().acquired.len(), 2);
    // a shuts down: at b's next tick, with no time passed, b takes all four.
    a.leave().await.unwrap();
    assert!(a.held().is_empty());
    clock.advance(1);
    assert_eq!(b.tick().await.unwrap().acquired.len(), 2);
    assert_eq!(b.held().len(), 4);
}

/// A partition's log rows, many to a commit (on PostgreSQL copied in the binary format, and
/// more than one statement's worth of the JSON path a redo takes), with lines that need
/// escaping, a raw tab, and events without an account: read back from the log in the order
/// they were written, byte for byte; a redo that overlaps them logs only the new ids; a
/// commit of as many rows with a checkpoint under an epoch no longer held stores nothing.
async fn many_log_rows_are_stored_once_in_order_as_written(store: Arc<dyn Store>) {
    let clock = Arc::new(ManualClock::new(UnixMillis(1_000_000)));
    let mut a = Leases::new(store.clone(), clock, "a".into(), 1, TTL);
    assert_eq!(a.tick().await.unwrap().acquired, vec![(0, 1)]);
    let logged = |n: usize| NewEvent {
        id: format!("evt_{n:05}_{}", 7_919 * n % 10_007),
        ts: UnixMillis(i64::try_from(n).unwrap()),
        account: (!n.is_multiple_of(5)).then(|| format!("acc_{}", n % 97)),
        event_type: "login".into(),
        body: format!("{{\"id\":\"evt_{n}\",\t\"note\":\"quote \\\" back \\\\ é 😀 \\u0041\"}}"),
    };
    let holds = || Write::HoldsLease {
        partition: 0,
        owner: "a".into(),
        epoch: 1,
        generation: 0,
    };
    let commit = |range: std::ops::Range<usize>| {
        let mut writes = vec![holds()];
        writes.extend(range.map(|n| Write::LogEventOnce(logged(n))));
        writes
    };
    write(store.as_ref(), commit(0..5_000)).await;
    write(store.as_ref(), commit(4_000..6_000)).await;
    let mut stale = vec![Write::HoldsLease {
        partition: 0,
        owner: "a".into(),
        epoch: 2,
        generation: 0,
    }];
    stale.extend((6_000..7_000).map(|n| Write::LogEventOnce(logged(n))));
    stale.push(Write::SaveCheckpoint(EngineCheckpoint {
        name: "risk.0".into(),
        seq: 7_000,
        state: vec![1],
    }));
    let refused = store.commit(ChangeSet {
        writes: stale,
        ..ChangeSet::default()
    });
    assert!(matches!(refused.await, Err(StoreError::Conflict(_))));
    assert!(store.checkpoint("risk.0").await.unwrap().is_none());
    let mut read = Vec::new();
    while read.len() < 6_001 {
        let after = read
            .last()
            .map_or(0, |e: &portcullis_app::ports::StoredEvent| e.seq);
        let page = store.events_after(after, 1_000).await.unwrap();
        if page.is_empty() {
            break;
        }
        read.extend(page);
    }
    let events: Vec<NewEvent> = read.into_iter().map(|e| e.event).collect();
    assert_eq!(events.len(), 6_000);
    assert!(
        events
            .iter()
            .eq((0..6_000).map(logged).collect::<Vec<_>>().iter())
    );
}

async fn write(store: &dyn Store, writes: Vec<Write>) {
    let change = ChangeSet {
        writes,
        ..ChangeSet::default()
    };
    store.commit(change).await.unwrap();
}

/// A change of the partition count: the old layout's commits are refused, its checkpoints and
/// the leases of partitions gone are deleted, a second change to the same generation does
/// nothing, and a process of another count is refused unless it confirms the count stored.
async fn a_layout_change_fences_the_old_layout_and_tidies(store: Arc<dyn Store>) {
    let clock = Arc::new(ManualClock::new(UnixMillis(1_000_000)));
    let mut a = Leases::new(store.clone(), clock.clone(), "a".into(), 4, TTL);
    assert_eq!(a.tick().await.unwrap().acquired.len(), 4);
    let saved = |name: &str| {
        Write::SaveCheckpoint(EngineCheckpoint {
            name: name.into(),
            seq: 1,
            state: vec![1],
        })
    };
    write(
        store.as_ref(),
        vec![saved("risk"), saved("risk.0"), saved("risk.3")],
    )
    .await;
    commit_in(store.as_ref(), ("a", 0, 1), 0, "evt_1")
        .await
        .unwrap();

    let relayout = |partitions| Write::Relayout {
        generation: 2,
        partitions,
    };
    write(store.as_ref(), vec![relayout(2)]).await;
    let refused = commit_in(store.as_ref(), ("a", 0, 1), 0, "evt_2").await;
    assert!(
        matches!(refused, Err(StoreError::Conflict(_))),
        "{refused:?}"
    );
    commit_in(store.as_ref(), ("a", 0, 1), 2, "evt_3")
        .await
        .unwrap();
    assert!(store.checkpoint("risk.0").await.unwrap().is_none());
    assert!(store.checkpoint("risk.3").await.unwrap().is_none());
    assert!(
        store.checkpoint("risk").await.unwrap().is_some(),
        "one engine's"
    );
    let parts = |leases: Vec<portcullis_app::ports::Lease>| -> Vec<u32> {
        leases.iter().map(|l| l.partition).collect()
    };
    assert_eq!(parts(store.leases().await.unwrap()), vec![0, 1]);

    // The same generation again (another process, later): nothing changes.
    write(store.as_ref(), vec![relayout(5)]).await;
    let two = Layout {
        generation: 2,
        partitions: 2,
    };
    assert_eq!(layout::stored(store.as_ref()).await.unwrap(), Some(two));
    assert_eq!(parts(store.leases().await.unwrap()), vec![0, 1]);

    let refusal = layout::settle(store.as_ref(), 3, None).await.unwrap_err();
    assert!(
        refusal.to_string().contains("partition_resize_from = 2"),
        "{refusal}"
    );
    let wrong = layout::settle(store.as_ref(), 3, Some(4)).await;
    assert!(wrong.is_err(), "confirmed from a count not stored");
    let three = Layout {
        generation: 3,
        partitions: 3,
    };
    assert_eq!(
        layout::settle(store.as_ref(), 3, Some(2)).await.unwrap(),
        three
    );
    assert_eq!(
        layout::settle(store.as_ref(), 3, None).await.unwrap(),
        three
    );
    assert!(layout::check(store.as_ref(), two).await.is_err());
}

conformance!(
    a_layout_change_fences_the_old_layout_and_tidies,
    a_lapsed_lease_is_taken_over_with_a_new_epoch,
    three_processes_share_four_partitions_one_one_two,
    a_process_that_leaves_is_not_waited_for,
    many_log_rows_are_stored_once_in_order_as_written
);
