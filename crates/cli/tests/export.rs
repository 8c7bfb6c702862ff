//! `portcullis decisions export` against `portcullis replay`: a simulated feed is sent to a
//! running server in batches, and the stored decisions, exported page by page in the feed's
//! order (and in log order, and from the local store), are byte for byte the replay's, on
//! SQLite and on PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{Home, ingest, replayed_feed, serve, stderr};
use std::path::Path;
use std::process::Command;

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap()
}

fn export_equals_replay(home: &Home) {
    let dir = home.dir.path();
    let (events, expected) = replayed_feed(home, "80", "5", "3");
    let lines: Vec<String> = read(&events).lines().map(str::to_owned).collect();
    let decided = expected.lines().count();
    assert!(decided > 60, "a feed that pages: {decided} decisions");

    let token = home.integration_token("feed");
    let (mut server, url) = serve(home);
    for batch in lines.chunks(500) {
        let report = ingest(&url, &token, batch);
        assert_eq!(
            report["rejected"].as_array().map(Vec::len),
            Some(0),
            "{report}"
        );
    }
    let remote = |args: &[&str]| {
        let mut all = vec!["--server", url.as_str(), "--token", token.as_str()];
        all.extend_from_slice(args);
        home.run(&all)
    };
    let in_feed_order = dir.join("exported.jsonl");
    let export = remote(&[
        "decisions",
        "export",
        "--page",
        "25",
        "--out",
        in_feed_order.to_str().unwrap(),
        "--events",
        events.to_str().unwrap(),
    ]);
    assert!(export.status.success(), "{}", stderr(&export));
    assert_eq!(
        read(&in_feed_order),
        expected,
        "the service decided as the replay does"
    );
    assert!(
        stderr(&export).contains(&format!("exported {decided} decisions in the order of")),
        "{}",
        stderr(&export)
    );
    let in_log_order = dir.join("log_order.jsonl");
    let export = remote(&[
        "decisions",
        "export",
        "--page",
        "7",
        "--out",
        in_log_order.to_str().unwrap(),
    ]);
    assert!(export.status.success(), "{}", stderr(&export));
    assert_eq!(
        read(&in_log_order),
        expected,
        "sent in the feed's order, logged in it"
    );

    // A file with part of the feed and an event the service never saw.
    let part = dir.join("part.jsonl");
    let deciding: Vec<&String> = lines
        .iter()
        .filter(|l| l.contains("withdrawal.requested"))
        .collect();
    let unseen = deciding[0].replacen("\"id\":\"", "\"id\":\"never_sent_", 1);
    std::fs::write(&part, format!("{}\nnot an event\n{unseen}\n", deciding[1])).unwrap();
    let partial = dir.join("partial.jsonl");
    let export = remote(&[
        "decisions",
        "export",
        "--out",
        partial.to_str().unwrap(),
        "--events",
        part.to_str().unwrap(),
    ]);
    assert!(export.status.success(), "{}", stderr(&export));
    assert_eq!(read(&partial).lines().count(), 1);
    let report = stderr(&export);
    assert!(
        report.contains(&format!(
            "{} stored decisions are for events not in it",
            decided - 1
        )),
        "{report}"
    );
    assert!(
        report.contains("1 lines of") && report.contains("(first: line 2)"),
        "{report}"
    );
    assert!(
        report.contains("1 events that ask for a decision have none stored (first: never_sent_"),
        "{report}"
    );

    let no_token = home.run(&[
        "--server",
        url.as_str(),
        "--token",
        "pc_wrong",
        "decisions",
        "export",
        "--out",
        partial.to_str().unwrap(),
    ]);
    assert_eq!(no_token.status.code(), Some(1), "{}", stderr(&no_token));
    assert!(
        stderr(&no_token).contains("HTTP 401"),
        "{}",
        stderr(&no_token)
    );

    let pid = server.id().to_string();
    Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    server.wait().unwrap();
    let local = dir.join("local.jsonl");
    let export = home.run(&[
        "decisions",
        "export",
        "--out",
        local.to_str().unwrap(),
        "--events",
        events.to_str().unwrap(),
    ]);
    assert!(export.status.success(), "{}", stderr(&export));
    assert_eq!(read(&local), expected, "from the local store too");
}

#[test]
fn exported_decisions_equal_the_replay_on_sqlite() {
    export_equals_replay(&Home::new());
}

#[test]
fn exported_decisions_equal_the_replay_on_postgres() {
    export_equals_replay(&Home::on_postgres());
}
