//! The risk engine against the real SQLite store when storing decisions fails: the engine must
//! not count the events of the failed page twice, and the decisions are made once storage
//! works again; and decisions made concurrently, in groups, are the ones a replay of the log
//! makes, and are made by their own group even while ingest appends beside them (on both
//! backends).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // Tests fail by panicking.

use portcullis_app::access::Actor;
use portcullis_app::ports::Store;
use portcullis_app::risk::{CheckpointPolicy, Risk};
use portcullis_engine::Policy;
use sqlx::Connection as _;
use std::sync::Arc;

#[macro_use]
#[path = "support/backends.rs"]
mod backends;
use backends::{chain_is_intact, postgres, sqlite};

fn withdrawal(id: &str, second: u32) -> String {
    format!(
        r#"{{"id":"{id}","ts":"2026-03-01T10:00:{second:02}Z","type":"withdrawal.requested","account":"acc_1","withdrawal_id":"{id}","asset":"USDT","network":"TRX","address":"TQx","amount":"100","amount_usd":100.0,"ctx":{{"ip":"203.0.113.7","channel":"app"}}}}"#
    )
}

/// The engine on `store` with the default policy, caught up with its log.
async fn started(store: Arc<dyn Store>) -> Risk {
    let policy = Policy::default_policy().unwrap();
    (Risk::start(store, policy, CheckpointPolicy::default()).await).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_decision_commit_rewinds_the_engine() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("p.db").display());
    let store = portcullis_store::open(&url, portcullis_store::testing::keyring())
        .await
        .unwrap();
    let risk = started(store.clone()).await;
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
    let tasks = lines
        .iter()
        .map(|line| spawn_decision(risk, line))
        .collect();
    answers_of(tasks).await
}

type DecisionTask =
    tokio::task::JoinHandle<portcullis_app::error::AppResult<portcullis_engine::Decision>>;

/// `line` decided on a task of its own.
fn spawn_decision(risk: &Risk, line: &str) -> DecisionTask {
    let (risk, line) = (risk.clone(), line.to_owned());
    tokio::spawn(async move { risk.decide(&Actor::system(), &line).await })
}

/// The decisions the tasks answered, by event id.
async fn answers_of(
    tasks: Vec<DecisionTask>,
) -> std::collections::HashMap<String, portcullis_engine::Decision> {
    let mut answers = std::collections::HashMap::new();
    for task in tasks {
        let decision = task.await.expect("the task ran").expect("decided");
        answers.insert(decision.event_id.clone(), decision);
    }
    answers
}

/// `n` sign-ins of other accounts, as one ingest batch: events that ask for no decision, which
/// the engine must apply before any decision that comes after them in the log.
fn logins(batch: u32, n: u32) -> String {
    (0..n)
        .map(|i| {
            format!(
                r#"{{"id":"l{batch}_{i}","ts":"2026-03-01T10:01:{:02}Z","type":"login","account":"acc_{}","success":true,"method":"password","ctx":{{"ip":"198.51.100.{i}","device_id":"d{i}","channel":"app"}}}}"#,
                batch % 60,
                i + 2
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Decisions and ingest at once, as in the mixed soak: ingest appends land between a group's
/// last catch-up and its append, so the group's events do not follow what the engine applied
/// and it must catch up the log. It does so still holding the engine: had it let go, an
/// ingest's catch-up waiting for the engine would apply the group's events first, and every
/// decision of the group would be read back from storage, one query each, while the next
/// group waits (on PostgreSQL the decisions fell behind their rate that way).
async fn decisions_beside_ingest_are_made_by_their_group(store: Arc<dyn Store>) {
    let risk = started(store.clone()).await;
    // Rounds of one ingest batch and four decisions, sent at once.
    let (mut ingest, mut decisions) = (Vec::new(), Vec::new());
    for round in 0..30 {
        let (risk_now, batch) = (risk.clone(), logins(round, 20));
        ingest.push(tokio::spawn(async move {
            risk_now.ingest(&Actor::system(), &batch).await
        }));
        for n in round * 4..round * 4 + 4 {
            decisions.push(spawn_decision(&risk, &withdrawal(&format!("m{n}"), n % 60)));
        }
    }
    let answers = answers_of(decisions).await;
    for task in ingest {
        let report = task.await.expect("the task ran").expect("ingested");
        assert_eq!(report.accepted, 20);
    }
    assert_eq!(answers.len(), 120);
    let (_, requests) = risk.decision_groups();
    assert_eq!(requests, 120);
    assert_eq!(
        risk.decisions_read_back(),
        0,
        "every decision made by its own group, none read back from storage"
    );
    for (id, answer) in &answers {
        let stored = risk.decision(&Actor::system(), id).await.unwrap();
        assert_eq!(stored.decision, answer.decision.as_str(), "{id}");
    }
    assert_eq!(risk.stats().await.events, 120 + 30 * 20);
    chain_is_intact(store.as_ref()).await;
}

conformance!(decisions_beside_ingest_are_made_by_their_group);
