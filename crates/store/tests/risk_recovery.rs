//! The risk engine against the real SQLite store when storing decisions fails: the engine must
//! not count the events of the failed page twice, and the decisions are made once storage
//! works again; and decisions made concurrently, in groups, are the ones a replay of the log
//! makes.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // Tests fail by panicking.

use portcullis_app::access::Actor;
use portcullis_app::risk::{CheckpointPolicy, Risk};
use portcullis_engine::Policy;
use sqlx::Connection as _;

fn withdrawal(id: &str, second: u32) -> String {
    format!(
        r#"{{"id":"{id}","ts":"2026-03-01T10:00:{second:02}Z","type":"withdrawal.requested","account":"acc_1","withdrawal_id":"{id}","asset":"USDT","network":"TRX","address":"TQx","amount":"100","amount_usd":100.0,"ctx":{{"ip":"203.0.113.7","channel":"app"}}}}"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_decision_commit_rewinds_the_engine() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("p.db").display());
    let store = portcullis_store::open(&url, portcullis_store::testing::keyring())
        .await
        .unwrap();
    let risk = Risk::start(
        store.clone(),
        Policy::default_policy().unwrap(),
        CheckpointPolicy::default(),
    )
    .await
    .unwrap();
    let actor = Actor::system();
    risk.decide(&actor, &withdrawal("w1", 1)).await.unwrap();
    risk.checkpoint().await.unwrap();
    risk.decide(&actor, &withdrawal("w2", 2)).await.unwrap();

    // Storage refuses the next decision (a synchronous decision is stored in the transaction
    // that logs its event, so the event is refused with it).
    let mut sql = sqlx::SqliteConnection::connect(&url).await.unwrap();
    sqlx::query(
        "CREATE TRIGGER refuse BEFORE INSERT ON decisions WHEN NEW.event_id = 'w3' \
         BEGIN SELECT RAISE(ABORT, 'refused for the test'); END",
    )
    .execute(&mut sql)
    .await
    .unwrap();
    let refused = risk.decide(&actor, &withdrawal("w3", 3)).await;
    assert!(refused.is_err(), "{refused:?}");
    sqlx::query("DROP TRIGGER refuse")
        .execute(&mut sql)
        .await
        .unwrap();

    // The engine went back to the checkpoint (after w1): w2 and w3 are applied once each.
    let again = risk.decide(&actor, &withdrawal("w3", 3)).await.unwrap();
    assert_eq!(again.event_id, "w3");
    assert_eq!(
        risk.stats().await.events,
        3,
        "every logged event counted once"
    );
    let stored = risk.decision(&actor, "w3").await.unwrap();
    assert_eq!(stored.decision, again.decision.as_str());
    assert!(stored.features.contains("prior_withdrawals_30d"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_decisions_match_a_replay_of_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("p.db").display());
    let store = portcullis_store::open(&url, portcullis_store::testing::keyring())
        .await
        .unwrap();
    let policy = || Policy::default_policy().unwrap();
    let risk = Risk::start(store.clone(), policy(), CheckpointPolicy::default())
        .await
        .unwrap();
    // Sent at once, so that they are decided in groups (and the log sets their order).
    let lines: Vec<String> = (0..40).map(|n| withdrawal(&format!("c{n}"), n)).collect();
    let answers = decide_all(&risk, &lines).await;
    let logged = store.events_after(0, 100).await.unwrap();
    assert_eq!(logged.len(), 40);
    let mut engine = portcullis_engine::Engine::new(policy());
    for entry in &logged {
        let event = portcullis_core::contract::parse_line(&entry.event.body).unwrap();
        // As the service applies its log: every entry is new, late or not.
        let portcullis_engine::Outcome::Decided(expected, _) = engine.process_unique(&event) else {
            panic!("a withdrawal is decided");
        };
        assert_eq!(
            answers[&expected.event_id], expected,
            "{}",
            expected.event_id
        );
    }
    let (groups, requests) = risk.decision_groups();
    assert_eq!(requests, 40);
    assert!(groups <= 40);
}

async fn decide_all(
    risk: &Risk,
    lines: &[String],
) -> std::collections::HashMap<String, portcullis_engine::Decision> {
    let mut tasks = Vec::new();
    for line in lines {
        let (risk, line) = (risk.clone(), line.clone());
        tasks.push(tokio::spawn(async move {
            risk.decide(&Actor::system(), &line).await
        }));
    }
    let mut answers = std::collections::HashMap::new();
    for task in tasks {
        let decision = task.await.expect("the task ran").expect("decided");
        answers.insert(decision.event_id.clone(), decision);
    }
    answers
}
