//! The partitioned engine as safe as one engine (issue 21), with `portcullis serve` processes
//! on one fresh PostgreSQL database and a NATS stream of this test's own:
//!
//! - an operator's force override set over HTTP on one node holds the next matching withdrawal
//!   of every partition, the other node's included; a policy version published on the other
//!   node is in force in every partition; processes started again (the partitions from their
//!   checkpoints) still decide with both;
//! - `POST /v1/events` puts each event on its partition, the owners decide, and a repeat within
//!   the stream's duplicate window is reported as a duplicate; an id sent again after that
//!   window (one second on this test's stream) is not decided or applied again, and an event
//!   older than the dedup horizon is ignored, as one engine (`portcullis replay`) ignores both;
//! - `POST /v1/decisions` answers 504 `decision_timeout` when no process holds the event's
//!   partition (`decision_wait_ms` shortened), and a process that works no partition answers
//!   the graph view and an override with 503 `partition_view_unavailable` (no view of the
//!   graph there, rather than an empty engine's);
//! - the graph view on each node is its partition's, which holds the links other partitions'
//!   events made, and an override for an entity no event named is refused `unknown_entity`;
//! - `/metrics` shows each partition worked by one node, with how far it read, decided, stored
//!   and logged.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{Home, db_count as query, nats_url, serve_with, stderr, wait_until};
use portcullis_core::partition::partition_of;
use portcullis_core::time::UnixMillis;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::process::Child;
use std::time::{Duration, Instant};

const PARTITIONS: u32 = 2;
const MINUTE: i64 = 60_000;

/// The wall clock (the processes stamp an override with theirs; later events must be later).
fn now_ms() -> i64 {
    use portcullis_app::ports::Clock as _;
    portcullis_app::clock::SystemClock.now().as_millis()
}

fn withdrawal(id: &str, ms: i64, account: &str, address: &str, usd: u32) -> String {
    format!(
        r#"{{"id":"{id}","ts":"{}","type":"withdrawal.requested","account":"{account}","withdrawal_id":"w-{id}","asset":"USDT","network":"TRX","address":"{address}","amount":"{usd}","amount_usd":{usd}.0,"ctx":{{"ip":"198.51.100.9","device_id":"d-{account}","channel":"web"}}}}"#,
        UnixMillis(ms).to_rfc3339()
    )
}

/// An account of partition `partition`.
fn account(prefix: &str, partition: u32) -> String {
    (0..)
        .map(|n| format!("{prefix}{n}"))
        .find(|a| partition_of(a, PARTITIONS) == partition)
        .unwrap()
}

fn execute(database: &str, sql: &str) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        sqlx::any::install_default_drivers();
        let pool = sqlx::AnyPool::connect(database).await.unwrap();
        sqlx::query(sqlx::AssertSqlSafe(sql.to_owned()))
            .execute(&pool)
            .await
            .unwrap();
        pool.close().await;
    });
}

/// The stream, made before the processes start (they keep its settings): duplicates are
/// dropped by message id for one second only.
fn make_stream(name: &str, prefix: &str) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let client = async_nats::connect(nats_url()).await.unwrap();
        let context = async_nats::jetstream::new(client);
        context
            .create_stream(async_nats::jetstream::stream::Config {
                name: name.to_owned(),
                subjects: vec![format!("{prefix}.>")],
                duplicate_window: Duration::from_secs(1),
                ..Default::default()
            })
            .await
            .unwrap();
    });
}

/// This test's environment for `serve`: its own stream, subjects and consumers.
fn environment(home: &Home, extra: &[(&str, &str)]) -> (Vec<(String, String)>, String, String) {
    let database = home.postgres_url.clone().unwrap();
    let unique: String = (database.rsplit('/').next().unwrap().chars())
        .filter(char::is_ascii_alphanumeric)
        .collect();
    let prefix = format!("ctl{unique}.events");
    let stream = format!("CTL_{unique}");
    let mut env: Vec<(String, String)> = [
        ("PORTCULLIS_NATS_URL", nats_url()),
        ("PORTCULLIS_NATS_STREAM", stream.clone()),
        ("PORTCULLIS_NATS_SUBJECT", format!("{prefix}.>")),
        ("PORTCULLIS_NATS_CONSUMER", format!("ctl-{unique}")),
        ("PORTCULLIS_NATS_KEY_SUBJECT", String::new()),
        ("PORTCULLIS_ENGINE_PARTITIONS", PARTITIONS.to_string()),
        ("PORTCULLIS_PARTITION_LEASE_MS", "1500".into()),
        // A checkpoint at every round with events: restarts resume from one.
        ("PORTCULLIS_RISK_CHECKPOINT_EVERY_EVENTS", "1".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    env.extend(
        extra
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    );
    (env, stream, prefix)
}

/// Processes killed when the test ends, however it ends.
struct Running(Vec<Child>);

impl Running {
    /// `count` processes; their addresses.
    fn start(home: &Home, env: &[(String, String)], count: usize) -> (Self, Vec<String>) {
        let (children, urls) = (0..count).map(|_| start(home, env)).unzip();
        (Self(children), urls)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn start(home: &Home, env: &[(String, String)]) -> (Child, String) {
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    serve_with(home, &env)
}

/// Waits until each of the processes holds one partition.
fn wait_for_leases(database: &str, servers: &[Child]) {
    wait_until("each process holding a partition", || {
        servers.iter().all(|server| {
            let pid = server.id();
            query(
                database,
                &format!(
                    "SELECT COUNT(*) FROM partition_leases WHERE owner LIKE '{pid}-%' AND expires_at > 0"
                ),
            ) == 1
        })
    });
}

fn admin(home: &Home, name: &str) -> String {
    let created = home.json(&["operators", "create", "--name", name, "--role", "admin"]);
    created["token"].as_str().unwrap().to_owned()
}

/// A request; the status and the JSON answer.
fn call(method: &str, url: &str, token: &str, body: &str, kind: &str) -> (u16, Value) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let authorization = format!("Bearer {token}");
    let mut response = match method {
        "GET" => agent
            .get(url)
            .header("authorization", &authorization)
            .call()
            .unwrap(),
        _ => agent
            .post(url)
            .header("authorization", &authorization)
            .header("content-type", kind)
            .send(body)
            .unwrap(),
    };
    let text = response.body_mut().read_to_string().unwrap();
    (
        response.status().as_u16(),
        serde_json::from_str(&text).unwrap_or(Value::Null),
    )
}

fn decide(url: &str, token: &str, line: &str) -> Value {
    let (status, answer) = call(
        "POST",
        &format!("{url}/v1/decisions"),
        token,
        line,
        "application/json",
    );
    assert_eq!(status, 200, "{answer}");
    answer
}

fn ingest(url: &str, token: &str, lines: &[&str]) -> Value {
    let (status, report) = call(
        "POST",
        &format!("{url}/v1/events"),
        token,
        &lines.join("\n"),
        "application/x-ndjson",
    );
    assert_eq!(status, 200, "{report}");
    report
}

fn reasons(decision: &Value) -> Vec<String> {
    (decision["reasons"].as_array().unwrap().iter())
        .map(|r| r.as_str().unwrap().to_owned())
        .collect()
}

/// The `portcullis_partition_*` figures of a node's `/metrics`, by name (without the prefix)
/// and partition.
fn partition_figures(url: &str, token: &str) -> BTreeMap<(String, u32), i64> {
    (common::metrics(url, token).lines())
        .filter_map(|line| {
            let rest = line.strip_prefix("portcullis_partition_")?;
            let (name, rest) = rest.split_once("{partition=\"")?;
            let (partition, value) = rest.split_once("\"} ")?;
            Some((
                (name.to_owned(), partition.parse().ok()?),
                value.parse().ok()?,
            ))
        })
        .collect()
}

/// Each partition is worked by exactly one of the nodes, which has decided some of its events
/// and has stored and logged everything it decided.
fn partitions_shown_caught_up(urls: &[String], token: &str) -> bool {
    let figures: Vec<_> = urls
        .iter()
        .map(|url| partition_figures(url, token))
        .collect();
    (0..PARTITIONS).all(|p| {
        let get = |f: &BTreeMap<(String, u32), i64>, name: &str| f[&(name.to_owned(), p)];
        let holders: Vec<_> = (figures.iter()).filter(|f| get(f, "epoch") > 0).collect();
        let [f] = holders.as_slice() else {
            return false;
        };
        let decided = get(f, "decided_through");
        get(f, "decisions_total") > 0
            && get(f, "events_total") >= get(f, "decisions_total")
            && get(f, "read_through") >= decided
            && get(f, "stored_through") == decided
            && get(f, "logged_through") == decided
    })
}

/// A node's engine counter `name` (`portcullis_decisions_total` and the like), summed over
/// its labels.
fn engine_counter(url: &str, token: &str, name: &str) -> u64 {
    (common::metrics(url, token).lines())
        .filter(|line| (line.strip_prefix(name)).is_some_and(|rest| rest.starts_with([' ', '{'])))
        .filter_map(|line| line.rsplit_once(' ')?.1.parse::<u64>().ok())
        .sum()
}

/// The engine's counters on `/metrics` are the partitions' own in this mode: over the nodes,
/// the decisions counted are those stored, each once; every node that works a partition shows
/// the id check's refusals (every partition checks every id) and the rules that fired.
fn engine_counters_add_up_to_the_stored_decisions(urls: &[String], token: &str, database: &str) {
    let stored = query(database, "SELECT count(*) FROM decisions");
    let counted: u64 = (urls.iter())
        .map(|url| engine_counter(url, token, "portcullis_decisions_total"))
        .sum();
    assert_eq!(counted, u64::try_from(stored).unwrap());
    for url in urls {
        let figures = partition_figures(url, token);
        let works = (0..PARTITIONS).any(|p| figures[&("epoch".to_owned(), p)] > 0);
        if !works {
            assert_eq!(
                engine_counter(url, token, "portcullis_engine_events_total"),
                0
            );
            continue;
        }
        let worked = engine_counter(url, token, "portcullis_engine_events_total");
        assert!(worked > 0, "{url} works a partition and shows no event");
        assert!(engine_counter(url, token, "portcullis_engine_duplicates_total") > 0);
        let fired = engine_counter(
            url,
            token,
            "portcullis_rule_hits_total{rule=\"every_withdrawal\"}",
        );
        assert!(
            fired > 0,
            "{url}: the strict policy's rule fired on its partition"
        );
    }
}

fn stored(url: &str, token: &str, id: &str) -> Option<Value> {
    let (status, decision) = call("GET", &format!("{url}/v1/decisions/{id}"), token, "", "");
    (status == 200).then_some(decision)
}

#[test]
fn operators_changes_and_ids_reach_every_partition_as_one_engine_takes_them() {
    let home = Home::on_postgres();
    let database = home.postgres_url.clone().unwrap();
    let (env, stream, prefix) = environment(&home, &[]);
    make_stream(&stream, &prefix);
    let token = home.integration_token("ingest");
    let (first_admin, second_admin) = (admin(&home, "first"), admin(&home, "second"));
    let (servers, urls) = Running::start(&home, &env, 2);
    wait_for_leases(&database, &servers.0);

    // Ids: one engine's rule, whatever the stream's window.
    let (c, d) = (account("c", 0), account("d", 1));
    let base = now_ms();
    let sent = [
        withdrawal("ids_c", base, &c, "TQsame", 100),
        withdrawal("ids_d", base, &d, "TQsame", 100),
    ];
    let report = ingest(&urls[0], &token, &[&sent[0], &sent[1]]);
    assert_eq!(
        (report["accepted"].as_u64(), report["duplicates"].as_u64()),
        (Some(2), Some(0))
    );
    let report = ingest(&urls[1], &token, &[&sent[0]]);
    assert_eq!(
        report["duplicates"], 1,
        "a repeat within the stream's window: {report}"
    );
    wait_until("both decided by their owners", || {
        stored(&urls[0], &token, "ids_c").is_some() && stored(&urls[1], &token, "ids_d").is_some()
    });
    // Past the stream's window: the id again, with a large amount (had it counted, the large
    // withdrawal below would not be unusual), and a large one older than the horizon.
    std::thread::sleep(Duration::from_millis(1_500));
    let resent = withdrawal("ids_c", base + 1_000, &c, "TQsame", 5_000);
    let late = withdrawal("ids_late", base - 30 * MINUTE, &c, "TQsame", 5_000);
    let report = ingest(&urls[1], &token, &[&resent, &late]);
    assert_eq!(
        report["accepted"], 2,
        "the stream no longer knows the id: {report}"
    );
    let after = withdrawal("ids_after", base + 2_000, &c, "TQsame", 5_000);
    let decided = decide(&urls[1], &token, &after);
    assert!(
        reasons(&decided).contains(&"unusual_amount".to_owned()),
        "{decided}"
    );
    assert!(
        stored(&urls[0], &token, "ids_late").is_none(),
        "a late event is not decided"
    );
    // Asked for a decision, a late event is answered that there will be none (not 504 after
    // the wait).
    let late_asked = withdrawal("ids_late2", base - 30 * MINUTE, &c, "TQsame", 5_000);
    let (status, refused) = call(
        "POST",
        &format!("{}/v1/decisions", urls[0]),
        &token,
        &late_asked,
        "application/json",
    );
    assert_eq!(status, 409, "{refused}");
    assert_eq!(refused["error"]["code"], "event_ignored", "{refused}");
    // One engine on the same lines decides the same.
    let feed = [
        &sent[0],
        &sent[1],
        &sent[0],
        &resent,
        &late,
        &after,
        &late_asked,
    ];
    let replayed = replay(&home, &feed);
    assert_eq!(replayed.len(), 3, "one engine decides three of them");
    for expected in &replayed {
        let id = expected["event_id"].as_str().unwrap();
        let got = stored(&urls[0], &token, id).unwrap();
        for field in ["decision", "score", "reasons"] {
            assert_eq!(got[field], expected[field], "{id} {field}");
        }
    }

    // A force override set on node 0 holds the next withdrawal to the address in both
    // partitions (one of them is node 1's).
    let (a, b) = (account("a", 0), account("b", 1));
    let before = decide(
        &urls[1],
        &token,
        &withdrawal("ov_before", now_ms(), &b, "TQforced", 50),
    );
    assert!(
        !reasons(&before).contains(&"confirmed_fraud_entity".to_owned()),
        "{before}"
    );
    // Node 0 answers the entity check from its partition, as of its progress: once it has
    // applied the fact of `ov_before` (partition 1's) it knows the address.
    wait_until("node 0's partition knowing the forced address", || {
        graph(&urls[0], &first_admin, "address/TQforced").0 == 200
    });
    let (status, set) = call(
        "POST",
        &format!("{}/v1/graph/address/TQforced/override", urls[0]),
        &first_admin,
        &json!({"action": "force", "note": "the crew's address"}).to_string(),
        "application/json",
    );
    assert_eq!(status, 201, "{set}");
    for (id, owner, node) in [("ov_a", &a, 1), ("ov_b", &b, 0)] {
        let line = withdrawal(id, now_ms(), owner, "TQforced", 50);
        let decided = decide(&urls[node], &token, &line);
        assert_eq!(decided["decision"], "hold", "{decided}");
        assert!(
            reasons(&decided).contains(&"confirmed_fraud_entity".to_owned()),
            "{decided}"
        );
    }

    // A policy version published on node 1 is in force in both partitions.
    let strict = format!(
        "{}\n[[rule]]\nid = \"every_withdrawal\"\ndescription = \"Test: every withdrawal.\"\nwhen = \"event_type == 'withdrawal.requested'\"\naction = \"block\"\nscore = 100\n",
        std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../engine/policy/default.toml"
        ))
        .unwrap()
    );
    let (status, proposed) = call(
        "POST",
        &format!("{}/v1/policy/versions", urls[1]),
        &first_admin,
        &json!({"text": strict, "note": "block every withdrawal"}).to_string(),
        "application/json",
    );
    assert_eq!(status, 201, "{proposed}");
    let version = proposed["version"].as_i64().unwrap();
    let (status, approved) = call(
        "POST",
        &format!("{}/v1/policy/versions/{version}/approve", urls[1]),
        &second_admin,
        "",
        "application/json",
    );
    assert_eq!(status, 200, "{approved}");
    let strict_everywhere = |urls: &[String], tag: &str| {
        for (owner, node) in [(&a, 0), (&b, 1)] {
            let line = withdrawal(&format!("{tag}_{owner}"), now_ms(), owner, "TQforced", 50);
            let decided = decide(&urls[node], &token, &line);
            assert_eq!(decided["decision"], "block", "{decided}");
            let why = reasons(&decided);
            assert!(why.contains(&"every_withdrawal".to_owned()), "{decided}");
            assert!(
                why.contains(&"confirmed_fraud_entity".to_owned()),
                "{decided}"
            );
        }
    };
    strict_everywhere(&urls, "pol");
    graph_shows_other_partitions_links(&urls, &token, &first_admin);
    wait_until("each partition shown on /metrics, caught up", || {
        partitions_shown_caught_up(&urls, &first_admin)
    });
    engine_counters_add_up_to_the_stored_decisions(&urls, &first_admin, &database);

    // Every process killed and started again: the partitions resume from their checkpoints
    // with the override and the policy in force.
    drop(servers);
    let (_servers, urls) = Running::start(&home, &env, 2);
    strict_everywhere(&urls, "again");
}

/// What one engine decides on these lines (`portcullis replay`), as decision lines.
fn replay(home: &Home, lines: &[&String]) -> Vec<Value> {
    let dir = home.dir.path();
    let events = dir.join("replay-in.jsonl");
    let out = dir.join("replay-out.jsonl");
    let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
    std::fs::write(&events, text).unwrap();
    let run = home.run(&[
        "replay",
        events.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(run.status.success(), "{}", stderr(&run));
    (std::fs::read_to_string(&out).unwrap().lines())
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

/// The graph around an entity (`kind/value`) with two hops, as a node answers it.
fn graph(url: &str, token: &str, entity: &str) -> (u16, Value) {
    call(
        "GET",
        &format!("{url}/v1/graph/{entity}?hops=2"),
        token,
        "",
        "",
    )
}

/// The account ids a graph view holds.
fn accounts_in(view: &Value) -> Vec<String> {
    (view["nodes"].as_array().into_iter().flatten())
        .filter(|node| node["kind"] == "account")
        .map(|node| node["value"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// Two accounts of different partitions withdraw to one address: on each node (each works one
/// partition) the graph around either account reaches the other through it, and an override
/// for an address no event named is refused.
fn graph_shows_other_partitions_links(urls: &[String], token: &str, admin: &str) {
    let (f, g) = (account("f", 0), account("g", 1));
    for (id, owner, node) in [("link_f", &f, 0), ("link_g", &g, 1)] {
        decide(
            &urls[node],
            token,
            &withdrawal(id, now_ms(), owner, "TQlinked", 40),
        );
    }
    for url in urls {
        for (from, to) in [(&f, &g), (&g, &f)] {
            wait_until("the link shown by the node's partition", || {
                let (status, view) = graph(url, admin, &format!("account/{from}"));
                status == 200 && accounts_in(&view).contains(to)
            });
        }
    }
    let (status, refused) = call(
        "POST",
        &format!("{}/v1/graph/address/TQnobody/override", urls[1]),
        admin,
        &json!({"action": "force", "note": "never named"}).to_string(),
        "application/json",
    );
    assert_eq!(status, 404, "{refused}");
    assert_eq!(refused["error"]["code"], "unknown_entity", "{refused}");
}

#[test]
fn a_process_working_no_partition_has_no_decision_nor_graph_to_give() {
    let home = Home::on_postgres();
    let database = home.postgres_url.clone().unwrap();
    let token = home.integration_token("ingest");
    // Both partitions held by a process that is not there, for a long while.
    let until = now_ms() + 10 * MINUTE;
    for partition in 0..PARTITIONS {
        execute(
            &database,
            &format!(
                "INSERT INTO partition_leases (part, owner, epoch, expires_at) VALUES ({partition}, 'gone', 1, {until})"
            ),
        );
    }
    let (env, _, _) = environment(&home, &[("PORTCULLIS_DECISION_WAIT_MS", "300")]);
    let (_server, urls) = Running::start(&home, &env, 1);
    let url = &urls[0];
    let line = withdrawal("nobody_decides", now_ms(), &account("e", 1), "TQsame", 100);
    let started = Instant::now();
    let (status, answer) = call(
        "POST",
        &format!("{url}/v1/decisions"),
        &token,
        &line,
        "application/json",
    );
    assert_eq!(status, 504, "{answer}");
    assert_eq!(answer["error"]["code"], "decision_timeout", "{answer}");
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert!(stored(url, &token, "nobody_decides").is_none());
    // No partition here, so no view of the graph: refused, not answered from an empty engine,
    // and an override is not set without its entity check.
    let operator = admin(&home, "lone");
    let (status, answer) = graph(url, &operator, "address/TQsame");
    assert_eq!(status, 503, "{answer}");
    assert_eq!(answer["error"]["code"], "partition_view_unavailable");
    let (status, answer) = call(
        "POST",
        &format!("{url}/v1/graph/address/TQsame/override"),
        &operator,
        &json!({"action": "force", "note": "unseen here"}).to_string(),
        "application/json",
    );
    assert_eq!(status, 503, "{answer}");
    assert_eq!(answer["error"]["code"], "partition_view_unavailable");
}
