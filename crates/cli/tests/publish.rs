//! `portcullis publish` against the local NATS server (JetStream): a simulated feed with a bad
//! line and a repeated event lands on a stream this test creates, each event once, in file
//! order, on its account's partition subject (FNV-1a-32 mod N, computed here on its own) or on
//! `global`, with `Nats-Msg-Id` = its id; published again, every event is a duplicate; without
//! a stream the command says what to create.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use async_nats::jetstream::{self, consumer::pull, stream};
use common::{Home, stderr};
use futures::StreamExt as _;
use serde_json::Value;

fn nats_url() -> String {
    std::env::var("PORTCULLIS_TEST_NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into())
}

/// The subject suffix an event must have: written out here, not taken from the code under test.
fn expected_suffix(event: &Value, partitions: u32) -> String {
    let kind = event["type"].as_str().unwrap();
    match event["account"].as_str() {
        Some(account) if kind != "market.activity" && kind != "fraud.confirmed" => {
            let mut hash: u32 = 2_166_136_261;
            for byte in account.bytes() {
                hash = (hash ^ u32::from(byte)).wrapping_mul(16_777_619);
            }
            (hash % partitions).to_string()
        }
        _ => "global".into(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_puts_each_event_once_on_its_partition_and_waits_for_the_stream() {
    let client = async_nats::connect(nats_url()).await.unwrap_or_else(|e| {
        panic!(
            "NATS at {} (scripts/services.sh ensure_nats): {e}",
            nats_url()
        )
    });
    let context = jetstream::new(client);
    // A name no other run uses (the hasher's keys are random per process).
    let unique =
        std::hash::BuildHasher::hash_one(&std::collections::hash_map::RandomState::new(), 0u8);
    let prefix = format!("pctest{unique}.events");
    let name = format!("PCTEST_{unique}");
    let mut created = context
        .create_stream(stream::Config {
            name: name.clone(),
            subjects: vec![format!("{prefix}.>")],
            ..Default::default()
        })
        .await
        .unwrap();

    let home = Home::new();
    let dir = home.dir.path();
    let simulated = home.run(&[
        "simulate",
        "--accounts",
        "12",
        "--days",
        "2",
        "--seed",
        "9",
        "--out",
        dir.join("feed").to_str().unwrap(),
    ]);
    assert!(simulated.status.success(), "{}", stderr(&simulated));
    let feed = std::fs::read_to_string(dir.join("feed/events.jsonl")).unwrap();
    let mut lines: Vec<&str> = feed.lines().collect();
    let repeated = lines[5];
    lines.insert(3, "{\"id\":\"broken\"");
    lines.push(repeated);
    let file = dir.join("events.jsonl");
    std::fs::write(&file, lines.join("\n")).unwrap();
    let unique_events: Vec<Value> = feed
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(unique_events.iter().any(|e| e["type"] == "market.activity"));

    let publish = |prefix: &str| {
        home.command(&[
            "publish",
            file.to_str().unwrap(),
            "--partitions",
            "5",
            "--subject-prefix",
            prefix,
            "--nats-url",
            &nats_url(),
        ])
        .output()
        .unwrap()
    };
    let first = publish(&prefix);
    assert!(first.status.success(), "{}", stderr(&first));
    let report = stderr(&first);
    assert!(
        report.contains("line 4: "),
        "the bad line by number: {report}"
    );
    assert!(
        report.contains(&format!(
            "published {} events to nats://127.0.0.1:4222 (1 already in the stream, 1 lines refused) over 5 partitions",
            unique_events.len()
        )),
        "{report}"
    );

    let info = created.info().await.unwrap();
    assert_eq!(
        info.state.messages,
        unique_events.len() as u64,
        "each event once"
    );
    let consumer = created
        .create_consumer(pull::Config {
            durable_name: None,
            ..Default::default()
        })
        .await
        .unwrap();
    let mut messages = consumer.messages().await.unwrap().take(unique_events.len());
    let mut suffixes = std::collections::BTreeSet::new();
    for (expected, line) in unique_events.iter().zip(feed.lines()) {
        let message = messages.next().await.unwrap().unwrap();
        let id = expected["id"].as_str().unwrap();
        assert_eq!(
            std::str::from_utf8(&message.payload).unwrap(),
            line,
            "file order, line as sent"
        );
        let suffix = expected_suffix(expected, 5);
        assert_eq!(
            message.subject.as_str(),
            format!("{prefix}.{suffix}"),
            "{line}"
        );
        let headers = message.headers.as_ref().unwrap();
        assert_eq!(headers.get("Nats-Msg-Id").map(|v| v.as_str()), Some(id));
        suffixes.insert(suffix);
        message.ack().await.unwrap();
    }
    assert!(
        suffixes.len() > 3 && suffixes.contains("global"),
        "{suffixes:?}"
    );

    let again = publish(&prefix);
    assert!(again.status.success(), "{}", stderr(&again));
    assert!(
        stderr(&again).contains(&format!(
            "published 0 events to nats://127.0.0.1:4222 ({} already in the stream",
            unique_events.len() + 1
        )),
        "{}",
        stderr(&again)
    );
    assert_eq!(
        created.info().await.unwrap().state.messages,
        unique_events.len() as u64
    );

    let nowhere = publish(&format!("pctest{unique}.nostream"));
    assert_eq!(nowhere.status.code(), Some(2), "{}", stderr(&nowhere));
    assert!(
        stderr(&nowhere).contains("no JetStream stream takes"),
        "{}",
        stderr(&nowhere)
    );
    context.delete_stream(&name).await.unwrap();
}
