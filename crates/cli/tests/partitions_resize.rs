//! Changing the partition count `N` (docs/scaling.md, "Changing the number of partitions"):
//! two `portcullis serve` processes with `engine_partitions = 2` decide the first part of a
//! feed; stopped (SIGKILL), a process started with 3 and no confirmation refuses to run
//! partitions and decides nothing; two started with 3 and `partition_resize_from = 2` rebuild
//! from the stream's start while the rest of the feed is published, one of them killed midway;
//! the decisions exported in the feed's order equal `portcullis replay` byte for byte.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{
    Home, halves, leases_of, own_stream, publish, replayed_feed, serve_logged, stderr,
    stored_decisions, wait_for_decisions, wait_until,
};
use std::collections::BTreeSet;
use std::time::Duration;

#[test]
fn two_partitions_become_three_and_decide_exactly_what_one_replay_decides() {
    let home = Home::on_postgres();
    let database = home.postgres_url.clone().unwrap();
    let dir = home.dir.path();
    let (events, expected) = replayed_feed(&home, "100", "5", "11");
    let deciding = expected.lines().count() as i64;
    assert!(deciding > 20, "a feed with decisions: {deciding}");

    let (_, halves) = halves(&home, &events);
    let first = std::fs::read_to_string(&halves[0]).unwrap();
    // The decisions of the first half: the replay's lines whose event is in it.
    let first_ids: BTreeSet<String> = (first.lines())
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|e| e["id"].as_str().map(str::to_owned))
        .collect();
    let first_deciding = (expected.lines())
        .filter(|l| {
            let d: serde_json::Value = serde_json::from_str(l).unwrap();
            first_ids.contains(d["event_id"].as_str().unwrap())
        })
        .count() as i64;
    assert!(first_deciding > 0 && first_deciding < deciding);

    let (prefix, mut base) = own_stream(&database, "resize");
    base.extend([
        ("PORTCULLIS_PARTITION_LEASE_MS", "1500".into()),
        ("PORTCULLIS_RISK_CHECKPOINT_EVERY_EVENTS", "100".into()),
    ]);
    let settings = |partitions: &str, from: Option<&str>| {
        let mut env = base.clone();
        env.push(("PORTCULLIS_ENGINE_PARTITIONS", partitions.to_owned()));
        if let Some(from) = from {
            env.push(("PORTCULLIS_PARTITION_RESIZE_FROM", from.to_owned()));
        }
        env
    };
    let start = |env: &[(&str, String)]| {
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        serve_logged(&home, &env)
    };

    // N = 2: the first half decided, then both processes die.
    let mut servers: Vec<_> = (0..2).map(|_| start(&settings("2", None))).collect();
    publish(&home, &halves[0], &prefix, "2");
    wait_for_decisions(&database, first_deciding, Duration::from_secs(120));
    for (server, ..) in &mut servers {
        server.kill().unwrap();
        let _ = server.wait();
    }

    // N = 3 without the confirmation: no partition run, nothing decided.
    let (mut refusing, _, log) = start(&settings("3", None));
    publish(&home, &halves[1], &prefix, "3");
    wait_until("the refusal in the log", || {
        (log.lock().unwrap().iter()).any(|line| line.contains("partition_resize_from = 2"))
    });
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(leases_of(&database, refusing.id()), 0, "a lease taken");
    assert_eq!(stored_decisions(&database), first_deciding);
    refusing.kill().unwrap();
    let _ = refusing.wait();

    // N = 3 confirmed: two processes rebuild; one dies while it holds partitions.
    let confirmed = settings("3", Some("2"));
    let mut servers: Vec<_> = (0..2).map(|_| start(&confirmed)).collect();
    let victim = servers[1].0.id();
    wait_until("the victim holding a partition", || {
        leases_of(&database, victim) > 0
    });
    servers[1].0.kill().unwrap();
    let _ = servers[1].0.wait();
    wait_for_decisions(&database, deciding, Duration::from_secs(180));

    let exported = dir.join("exported.jsonl");
    let export = home.run(&[
        "decisions",
        "export",
        "--events",
        events.to_str().unwrap(),
        "--out",
        exported.to_str().unwrap(),
    ]);
    for (server, ..) in &mut servers {
        let _ = server.kill();
        let _ = server.wait();
    }
    assert!(export.status.success(), "{}", stderr(&export));
    let exported = std::fs::read_to_string(&exported).unwrap();
    assert_eq!(exported.lines().count(), expected.lines().count());
    assert!(
        exported == expected,
        "the exported decisions differ from the replay's"
    );
}
