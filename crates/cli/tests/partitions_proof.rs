//! The partitioned engine's proof (issue 21, part 3), small: three `portcullis serve`
//! processes with `engine_partitions = 4` on one fresh PostgreSQL database and one NATS server
//! (a stream of its own), a simulated feed published in two halves, one process killed with
//! SIGKILL between them while it owns partitions, and the decisions exported in the feed's
//! order equal `portcullis replay` of the same file byte for byte: nothing lost, nothing
//! doubled, graph and campaigns included; and `POST /v1/decisions` on any node answers with
//! what the owner stored. `scripts/proof-partitions.sh` is the large run.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{
    Home, halves, leases_of, own_stream, publish, replayed_feed, serve_with, stderr,
    stored_decisions, wait_for_decisions, wait_until,
};
use std::time::Duration;

const PARTITIONS: &str = "4";

#[test]
fn three_processes_one_killed_decide_exactly_what_one_replay_decides() {
    let home = Home::on_postgres();
    let database = home.postgres_url.clone().unwrap();
    let dir = home.dir.path();
    let (events, expected) = replayed_feed(&home, "150", "7", "11");
    let deciding = expected.lines().count() as i64;
    assert!(deciding > 50, "a feed with decisions: {deciding}");

    let (text, halves) = halves(&home, &events);
    let lines = text.lines().count();
    assert!(lines > 2_000, "a few thousand events: {lines}");

    // The fresh database's name: the stream, its subjects and consumers are this test's own.
    let (prefix, mut env) = own_stream(&database, "proof");
    env.extend([
        ("PORTCULLIS_ENGINE_PARTITIONS", PARTITIONS.into()),
        ("PORTCULLIS_PARTITION_LEASE_MS", "1500".into()),
        // Checkpoints mid-feed: the partitions taken over resume from one.
        ("PORTCULLIS_RISK_CHECKPOINT_EVERY_EVENTS", "150".into()),
    ]);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let token = home.integration_token("proof");
    let (mut servers, urls): (Vec<_>, Vec<_>) = (0..3).map(|_| serve_with(&home, &env)).unzip();

    publish(&home, &halves[0], &prefix, PARTITIONS);
    // Some of the first half decided, and the victim owns partitions: it is at work when it
    // dies.
    let victim = servers[1].id();
    wait_until(
        "a decision stored and the victim holding a partition",
        || stored_decisions(&database) > 0 && leases_of(&database, victim) > 0,
    );
    servers[1].kill().unwrap();
    let _ = servers[1].wait();
    publish(&home, &halves[1], &prefix, PARTITIONS);
    wait_for_decisions(&database, deciding, Duration::from_secs(180));

    // Any node answers a synchronous decision with what the owner stored.
    let (line, decided) = first_decision(&text, &expected);
    let answer = decide(&urls[0], &token, line);
    assert_eq!(
        answer,
        serde_json::from_str::<serde_json::Value>(decided).unwrap()
    );

    let exported = dir.join("exported.jsonl");
    let export = home.run(&[
        "decisions",
        "export",
        "--events",
        events.to_str().unwrap(),
        "--out",
        exported.to_str().unwrap(),
    ]);
    // A new deciding event sent to another node is decided by its owner and answered. It is
    // stamped with the feed's newest time: one stamped days before, as the line it copies,
    // would be ignored as late (older than the dedup horizon behind the newest), as one
    // engine ignores it.
    let mut fresh: serde_json::Value = serde_json::from_str(line).unwrap();
    let newest = (text.lines())
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|event| event["ts"].as_str().map(str::to_owned))
        .max()
        .unwrap();
    fresh["id"] = "evt_proof_sync".into();
    fresh["ts"] = newest.into();
    let fresh = fresh.to_string();
    assert_eq!(
        decide(&urls[2], &token, &fresh)["event_id"],
        "evt_proof_sync"
    );
    for server in &mut servers {
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

/// The first event of the feed that the replay decided, and that decision's line.
fn first_decision<'a>(feed: &'a str, replayed: &'a str) -> (&'a str, &'a str) {
    let decided = replayed.lines().next().unwrap();
    let id: serde_json::Value = serde_json::from_str(decided).unwrap();
    let id = id["event_id"].as_str().unwrap();
    let line = (feed.lines())
        .find(|line| line.contains(&format!("\"id\":\"{id}\"")))
        .unwrap();
    (line, decided)
}

/// `POST /v1/decisions`.
fn decide(url: &str, token: &str, line: &str) -> serde_json::Value {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let mut response = agent
        .post(&format!("{url}/v1/decisions"))
        .header("authorization", &format!("Bearer {token}"))
        .header("content-type", "application/json")
        .send(line)
        .unwrap();
    let body = response.body_mut().read_to_string().unwrap();
    assert_eq!(response.status(), 200, "{body}");
    serde_json::from_str(&body).unwrap()
}
