//! The risk engine against the real SQLite store when storing decisions fails: the engine must
//! not count the events of the failed page twice, and the decisions are made once storage
//! works again.

use portcullis_app::access::Actor;
use portcullis_app::risk::{CheckpointPolicy, Risk};
use portcullis_engine::Policy;
use sqlx::Connection as _;

fn withdrawal(id: &str, minute: u32) -> String {
    format!(
        r#"{{"id":"{id}","ts":"2026-03-01T10:{minute:02}:00Z","type":"withdrawal.requested","account":"acc_1","withdrawal_id":"{id}","asset":"USDT","network":"TRX","address":"TQx","amount":"100","amount_usd":100.0,"ctx":{{"ip":"203.0.113.7","channel":"app"}}}}"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_decision_commit_rewinds_the_engine() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("p.db").display());
    let store = portcullis_store::open(&url).await.unwrap();
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

    // Storage refuses the next decision; the event itself is logged before that.
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

    // The next catch-up starts from the checkpoint (after w1) and applies w2 and w3 once each.
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
