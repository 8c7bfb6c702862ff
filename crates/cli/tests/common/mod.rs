//! What the binary's tests share: a data directory with the environment that points the
//! binary at it (SQLite or a fresh PostgreSQL database), a served instance, batch ingest.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use serde_json::Value;
use std::io::{BufRead as _, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};

pub const BIN: &str = env!("CARGO_BIN_EXE_portcullis");

/// A data directory and the environment that points the binary at it.
pub struct Home {
    pub dir: tempfile::TempDir,
    /// PostgreSQL instead of the embedded SQLite file.
    pub postgres_url: Option<String>,
}

impl Home {
    pub fn new() -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
            postgres_url: None,
        }
    }

    pub fn on_postgres() -> Self {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let url = runtime
            .block_on(portcullis_store::testing::fresh_postgres_database(
                "portcullis_it",
            ))
            .unwrap_or_else(|e| panic!("{e}"));
        Self {
            dir: tempfile::tempdir().unwrap(),
            postgres_url: Some(url),
        }
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(BIN);
        command
            .args(args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("PORTCULLIS_DATA_DIR", self.dir.path())
            .env("PORTCULLIS_LOG_FORMAT", "json");
        if let Some(url) = &self.postgres_url {
            command.env("PORTCULLIS_DATABASE_URL", url);
        }
        command
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }

    pub fn json(&self, args: &[&str]) -> Value {
        let output = self.run(args);
        assert!(
            output.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        serde_json::from_slice(&output.stdout).unwrap()
    }

    /// A new operator token with role `integration`.
    pub fn integration_token(&self, name: &str) -> String {
        let created = self.json(&[
            "operators",
            "create",
            "--name",
            name,
            "--role",
            "integration",
        ]);
        created["token"].as_str().unwrap().to_owned()
    }

    pub fn database_url(&self) -> String {
        format!(
            "sqlite://{}",
            self.dir.path().join("portcullis.db").display()
        )
    }
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// A simulated feed written in `home`'s directory (`feed/events.jsonl`), and what
/// `portcullis replay` decides on it: the events file and the decision lines.
pub fn replayed_feed(home: &Home, accounts: &str, days: &str, seed: &str) -> (PathBuf, String) {
    let dir = home.dir.path();
    let feed_dir = dir.join("feed");
    let simulated = home.run(&[
        "simulate",
        "--accounts",
        accounts,
        "--days",
        days,
        "--seed",
        seed,
        "--out",
        feed_dir.to_str().unwrap(),
    ]);
    assert!(simulated.status.success(), "{}", stderr(&simulated));
    let events = feed_dir.join("events.jsonl");
    let replayed = dir.join("replayed.jsonl");
    let replay = home.run(&[
        "replay",
        events.to_str().unwrap(),
        "--out",
        replayed.to_str().unwrap(),
    ]);
    assert!(replay.status.success(), "{}", stderr(&replay));
    (events, std::fs::read_to_string(&replayed).unwrap())
}

/// Starts `portcullis serve` on a free port and waits until it listens.
pub fn serve(home: &Home) -> (Child, String) {
    serve_with(home, &[])
}

/// Starts `portcullis serve` with more environment.
pub fn serve_with(home: &Home, env: &[(&str, &str)]) -> (Child, String) {
    let (child, url, _log) = serve_logged(home, env);
    (child, url)
}

/// As `serve_with`, keeping the server's log lines (JSON) for the test to read.
pub fn serve_logged(
    home: &Home,
    env: &[(&str, &str)],
) -> (Child, String, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    let mut child = home
        .command(&["serve"])
        .envs(env.iter().copied())
        .env("PORTCULLIS_LISTEN", "127.0.0.1:0")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    // Lines before "listening" are kept too: a background task (the partitions' layout
    // check, say) may log what a test waits for before the listener says where it is.
    let mut before = Vec::new();
    let address = loop {
        let line = lines
            .next()
            .expect("the server exited before listening")
            .unwrap();
        let log: Value = serde_json::from_str(&line).unwrap_or(Value::Null);
        if log["fields"]["message"] == "portcullis listening" {
            break log["fields"]["address"].as_str().unwrap().to_owned();
        }
        before.push(line);
    };
    let log = std::sync::Arc::new(std::sync::Mutex::new(before));
    let kept = log.clone();
    std::thread::spawn(move || {
        for line in lines.map_while(Result::ok) {
            kept.lock().unwrap().push(line);
        }
    });
    (child, format!("http://{address}"), log)
}

/// Sends a JSON Lines batch to the risk engine and returns the report.
pub fn ingest(url: &str, token: &str, lines: &[String]) -> Value {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let mut response = agent
        .post(&format!("{url}/v1/events"))
        .header("authorization", &format!("Bearer {token}"))
        .header("content-type", "application/x-ndjson")
        .send(lines.join("\n"))
        .unwrap();
    serde_json::from_str(&response.body_mut().read_to_string().unwrap()).unwrap()
}

/// The NATS server the partitioned tests use.
/// A node's `/metrics` text, read with an operator's token.
pub fn metrics(url: &str, token: &str) -> String {
    ureq::get(&format!("{url}/metrics"))
        .header("authorization", &format!("Bearer {token}"))
        .call()
        .unwrap()
        .body_mut()
        .read_to_string()
        .unwrap()
}

pub fn nats_url() -> String {
    std::env::var("PORTCULLIS_TEST_NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into())
}

/// A count from the database.
pub fn db_count(database: &str, sql: &str) -> i64 {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        sqlx::any::install_default_drivers();
        let pool = sqlx::AnyPool::connect(database).await.unwrap();
        let count: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_owned()))
            .fetch_one(&pool)
            .await
            .unwrap();
        pool.close().await;
        count
    })
}

/// Waits until `done`; panics after a minute.
pub fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let started = std::time::Instant::now();
    while !done() {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(60),
            "not within a minute: {what}"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// Decisions stored.
pub fn stored_decisions(database: &str) -> i64 {
    db_count(database, "SELECT COUNT(*) FROM decisions")
}

/// Partition leases held by the process `pid` (a node is named by its process id first).
pub fn leases_of(database: &str, pid: u32) -> i64 {
    db_count(
        database,
        &format!(
            "SELECT COUNT(*) FROM partition_leases WHERE owner LIKE '{pid}-%' AND expires_at > 0"
        ),
    )
}

/// Waits until `count` decisions are stored; panics after `limit`.
pub fn wait_for_decisions(database: &str, count: i64, limit: std::time::Duration) {
    let started = std::time::Instant::now();
    loop {
        let stored = stored_decisions(database);
        if stored >= count {
            assert_eq!(stored, count, "more decisions than deciding events");
            return;
        }
        assert!(
            started.elapsed() < limit,
            "{stored} of {count} decisions stored after {limit:?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

/// `portcullis publish` of `file` by `partitions` partitions under `prefix`.
pub fn publish(home: &Home, file: &std::path::Path, prefix: &str, partitions: &str) {
    let published = home.run(&[
        "publish",
        file.to_str().unwrap(),
        "--partitions",
        partitions,
        "--subject-prefix",
        prefix,
        "--nats-url",
        &nats_url(),
    ]);
    assert!(published.status.success(), "{}", stderr(&published));
}

/// The feed's lines written in two halves, `first.jsonl` and `second.jsonl` in the home
/// directory; returns the whole text and the two files.
pub fn halves(home: &Home, events: &std::path::Path) -> (String, [PathBuf; 2]) {
    let text = std::fs::read_to_string(events).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let (first, second) = lines.split_at(lines.len() / 2);
    let dir = home.dir.path();
    let halves = [dir.join("first.jsonl"), dir.join("second.jsonl")];
    std::fs::write(&halves[0], first.join("\n") + "\n").unwrap();
    std::fs::write(&halves[1], second.join("\n") + "\n").unwrap();
    (text, halves)
}

/// A stream with subjects and consumers of the test's own, named after its fresh `database`:
/// the events' subject prefix and the settings that point `serve` at it.
pub fn own_stream(database: &str, name: &str) -> (String, Vec<(&'static str, String)>) {
    let unique: String = (database.rsplit('/').next().unwrap().chars())
        .filter(char::is_ascii_alphanumeric)
        .collect();
    let prefix = format!("{name}{unique}.events");
    let env = vec![
        ("PORTCULLIS_NATS_URL", nats_url()),
        (
            "PORTCULLIS_NATS_STREAM",
            format!("{}_{unique}", name.to_uppercase()),
        ),
        ("PORTCULLIS_NATS_SUBJECT", format!("{prefix}.>")),
        ("PORTCULLIS_NATS_CONSUMER", format!("{name}-{unique}")),
        ("PORTCULLIS_NATS_KEY_SUBJECT", String::new()),
    ];
    (prefix, env)
}
