//! The `portcullis` binary as an operator uses it: configuration, the local store, a running
//! server over HTTP, the audit check's exit codes, and graceful shutdown.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use serde_json::Value;
use sqlx::Connection as _;
use std::io::Write as _;
use std::process::{Command, Stdio};

mod common;

use common::{Home, ingest, serve, stderr};

#[test]
fn config_example_and_check() {
    let home = Home::new();
    let example = home.run(&["config", "example"]);
    assert!(example.status.success());
    assert!(String::from_utf8_lossy(&example.stdout).contains("database_url"));
    let check = home.run(&["config", "check"]);
    assert!(check.status.success(), "{}", stderr(&check));
    let typo = home
        .command(&["config", "check"])
        .env("PORTCULLIS_DATABSE_URL", "x")
        .output()
        .unwrap();
    assert_eq!(typo.status.code(), Some(2));
    assert!(stderr(&typo).contains("databse_url"), "{}", stderr(&typo));
    let file = home.dir.path().join("bad.toml");
    std::fs::write(&file, "listen = \"127.0.0.1:1\"\nlisten_prot = 1\n").unwrap();
    let bad = home.run(&["--config", file.to_str().unwrap(), "config", "check"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(stderr(&bad).contains("listen_prot"), "{}", stderr(&bad));
}

/// Credentials in a database or server URL, and a secret on a configuration line that does not
/// parse, never reach the terminal: not in `config check`, not in an error.
#[test]
fn secrets_in_urls_and_configuration_are_never_printed() {
    let home = Home::new();
    let database = "postgres://portcullis:hunter2@127.0.0.1:9/p?password=hunter2";
    let check = home
        .command(&["config", "check"])
        .env("PORTCULLIS_DATABASE_URL", database)
        .output()
        .unwrap();
    let shown = String::from_utf8_lossy(&check.stdout).into_owned();
    assert!(shown.contains("portcullis:***@127.0.0.1:9"), "{shown}");
    assert!(!shown.contains("hunter2"), "{shown}");
    let unreachable = home
        .command(&["accounts", "show", "acc_1"])
        .env("PORTCULLIS_DATABASE_URL", database)
        .output()
        .unwrap();
    assert!(!unreachable.status.success());
    assert!(
        stderr(&unreachable).contains("opening the local store"),
        "{}",
        stderr(&unreachable)
    );
    assert!(
        !stderr(&unreachable).contains("hunter2"),
        "{}",
        stderr(&unreachable)
    );
    let remote = home.run(&[
        "--server",
        "http://op:s3cretpw@127.0.0.1:9",
        "--token",
        "t",
        "accounts",
        "show",
        "acc_1",
    ]);
    assert!(
        stderr(&remote).contains("cannot reach http://op:***@127.0.0.1:9"),
        "{}",
        stderr(&remote)
    );
    assert!(!stderr(&remote).contains("s3cretpw"), "{}", stderr(&remote));

    let file = home.dir.path().join("secret.toml");
    std::fs::write(
        &file,
        "exchange_name = \"Exemplar\"\nwebhook_secret = whsec_live_0123456789abcdef\n",
    )
    .unwrap();
    let bad = home.run(&["--config", file.to_str().unwrap(), "config", "check"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(stderr(&bad).contains("line 2"), "{}", stderr(&bad));
    assert!(!stderr(&bad).contains("whsec_live"), "{}", stderr(&bad));
}

#[test]
fn local_store_commands_and_errors() {
    let home = Home::new();
    let admin = home.json(&["operators", "create", "--name", "root", "--role", "admin"]);
    assert!(admin["token"].as_str().unwrap().starts_with("pco_"));
    // An analyst's console enrolment link, by name: single use, only its hash stored.
    home.json(&["operators", "create", "--name", "ana", "--role", "analyst"]);
    let link = home.json(&["operators", "enrol-link", "ana"]);
    assert!(
        link["url"]
            .as_str()
            .unwrap()
            .contains("/console/enrol/pce_"),
        "{link}"
    );
    assert_eq!(link["operator"]["name"], "ana");
    home.json(&[
        "operators",
        "create",
        "--name",
        "bot",
        "--role",
        "integration",
    ]);
    let refused = home.run(&["operators", "enrol-link", "bot"]);
    assert!(!refused.status.success());
    assert!(
        stderr(&refused).contains("admins and analysts"),
        "{}",
        stderr(&refused)
    );
    home.json(&[
        "accounts",
        "create",
        "acc_81",
        "--email",
        "ada@example.com",
        "--anti-phishing-code",
        "Blue42",
    ]);
    let issued = home.json(&[
        "keys",
        "create",
        "--account",
        "acc_81",
        "--label",
        "grid",
        "--scope",
        "read,trade",
        "--ip",
        "203.0.113.7",
    ]);
    let secret = issued["secret"].as_str().unwrap();
    assert_eq!(issued["key"]["ip_allowlist"][0], "203.0.113.7/32");

    // A new name applies at once; a new e-mail is a widening the CLI cannot bypass: without an
    // authenticator (and a grant) it is refused and nothing changes.
    let renamed = home.json(&["accounts", "update", "acc_81", "--name", "Ada L."]);
    assert_eq!(renamed["display_name"], "Ada L.");
    let moved = home.run(&[
        "accounts",
        "update",
        "acc_81",
        "--email",
        "attacker@example.net",
        "--step-up-grant",
        "psu_forged",
    ]);
    assert!(!moved.status.success());
    assert!(
        stderr(&moved).contains("step_up_not_enrolled"),
        "{}",
        stderr(&moved)
    );
    let shown = home.json(&["accounts", "show", "acc_81"]);
    assert_eq!(shown["email"], "ada@example.com");
    let listed = home.run(&["keys", "list", "--account", "acc_81"]);
    assert!(listed.status.success());
    assert!(
        !String::from_utf8_lossy(&listed.stdout).contains(secret),
        "listing never shows a secret"
    );

    let bad = home.run(&[
        "keys",
        "create",
        "--account",
        "acc_81",
        "--scope",
        "read,root",
    ]);
    assert_eq!(bad.status.code(), Some(1));
    assert!(stderr(&bad).contains("unknown_scope"), "{}", stderr(&bad));
    let bad = home.run(&[
        "keys",
        "create",
        "--account",
        "acc_81",
        "--scope",
        "read",
        "--ip",
        "10.0.0/8",
    ]);
    assert!(stderr(&bad).contains("invalid_cidr"), "{}", stderr(&bad));

    let mut import = home
        .command(&[
            "keys",
            "import",
            "--account",
            "acc_81",
            "--api-key",
            "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A",
            "--scope",
            "read",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    import
        .stdin
        .take()
        .unwrap()
        .write_all(b"NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j\n")
        .unwrap();
    let imported = import.wait_with_output().unwrap();
    assert!(imported.status.success(), "{}", stderr(&imported));

    let intact = home.run(&["audit", "verify"]);
    assert!(intact.status.success(), "{}", stderr(&intact));
    assert_eq!(
        serde_json::from_slice::<Value>(&intact.stdout).unwrap()["intact"],
        true
    );
}

#[test]
fn graph_overrides_through_the_local_store() {
    let home = Home::new();
    home.json(&[
        "accounts",
        "create",
        "acc_82",
        "--email",
        "ada@example.com",
        "--anti-phishing-code",
        "Blue42",
    ]);
    // The key's allow-listed host is in the engine's graph from its `api_key.created`.
    home.json(&[
        "keys",
        "create",
        "--account",
        "acc_82",
        "--label",
        "bot",
        "--scope",
        "read",
        "--ip",
        "198.51.100.23",
    ]);
    let set = home.json(&[
        "graph",
        "override",
        "set",
        "ip",
        "198.51.100.23",
        "--action",
        "suppress",
        "--note",
        "office NAT",
    ]);
    assert_eq!(
        (set["action"].as_str(), set["note"].as_str()),
        (Some("suppress"), Some("office NAT"))
    );
    let graph = home.json(&["graph", "show", "ip", "198.51.100.23", "--hops", "1"]);
    assert_eq!(graph["nodes"][0]["override"], "suppress", "{graph}");
    assert_eq!(
        home.json(&["graph", "override", "list"])
            .as_array()
            .map(Vec::len),
        Some(1)
    );
    let lifted = home.json(&["graph", "override", "lift", "ip", "198.51.100.23"]);
    assert_eq!(lifted[0]["id"], set["id"]);
    assert_eq!(
        home.json(&["graph", "override", "list"])
            .as_array()
            .map(Vec::len),
        Some(0)
    );
    let all = home.json(&["graph", "override", "list", "--all"]);
    assert!(all[0]["lifted_at"].is_string(), "{all}");
    let unknown = home.run(&[
        "graph",
        "override",
        "set",
        "ip",
        "192.0.2.99",
        "--action",
        "force",
    ]);
    assert!(!unknown.status.success());
    assert!(
        stderr(&unknown).contains("unknown_entity"),
        "{}",
        stderr(&unknown)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_verify_fails_and_names_a_tampered_entry() {
    let home = Home::new();
    home.json(&["accounts", "create", "acc_1"]);
    home.json(&["keys", "create", "--account", "acc_1", "--scope", "read"]);
    home.json(&["keys", "create", "--account", "acc_1", "--scope", "trade"]);
    let mut connection = sqlx::SqliteConnection::connect(&home.database_url())
        .await
        .unwrap();
    sqlx::query("UPDATE audit_log SET actor = 'operator:someone_else' WHERE seq = 2")
        .execute(&mut connection)
        .await
        .unwrap();
    connection.close().await.unwrap();
    let broken = home.run(&["audit", "verify"]);
    assert_eq!(broken.status.code(), Some(1));
    let report: Value = serde_json::from_slice(&broken.stdout).unwrap();
    assert_eq!(
        (report["first_bad_seq"].clone(), report["problem"].clone()),
        (Value::from(2), Value::from("edited"))
    );
    assert!(
        stderr(&broken).contains("entry 2 does not match its seal"),
        "{}",
        stderr(&broken)
    );
}

/// Runs SQL straight against the home's database, as someone with write access to it but not
/// to the keyring would.
fn tamper(home: &Home, statements: &[String]) {
    let url = home
        .postgres_url
        .clone()
        .unwrap_or_else(|| home.database_url());
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        sqlx::any::install_default_drivers();
        let mut connection = sqlx::AnyConnection::connect(&url).await.unwrap();
        for statement in statements {
            sqlx::query(sqlx::AssertSqlSafe(statement.clone()))
                .execute(&mut connection)
                .await
                .unwrap();
        }
        connection.close().await.unwrap();
    });
}

/// `audit head --out` then `audit verify --since-head`: the newest entries cut off together
/// with the database's head pass a plain verify but not one against the exported head, and an
/// altered head file is refused.
fn an_exported_head_catches_a_cut_off_chain(home: &Home) {
    home.json(&["accounts", "create", "acc_1"]);
    for scope in ["read", "trade", "read"] {
        home.json(&["keys", "create", "--account", "acc_1", "--scope", scope]);
    }
    let head_file = home.dir.path().join("audit-head.json");
    let head_path = head_file.to_str().unwrap();
    let exported = home.run(&["audit", "head", "--out", head_path]);
    assert!(exported.status.success(), "{}", stderr(&exported));
    assert!(String::from_utf8_lossy(&exported.stdout).contains("wrote the audit head"));
    let head: Value = serde_json::from_str(&std::fs::read_to_string(&head_file).unwrap()).unwrap();
    let seq = head["seq"].as_i64().unwrap();
    assert!(seq >= 4, "{head}");
    let since = home.run(&["audit", "verify", "--since-head", head_path]);
    assert!(since.status.success(), "{}", stderr(&since));

    let keep = seq - 2;
    tamper(
        home,
        &[
            format!("DELETE FROM audit_log WHERE seq > {keep}"),
            format!(
                "UPDATE audit_head SET seq = {keep}, hash = (SELECT hash FROM audit_log WHERE seq = {keep}) WHERE id = 1"
            ),
        ],
    );
    let plain = home.run(&["audit", "verify"]);
    assert!(plain.status.success(), "the database alone cannot tell");
    let cut = home.run(&["audit", "verify", "--since-head", head_path]);
    assert_eq!(cut.status.code(), Some(1), "{}", stderr(&cut));
    let report: Value = serde_json::from_slice(&cut.stdout).unwrap();
    assert_eq!(report["problem"], "truncated_below_head");
    assert!(
        stderr(&cut).contains(&format!("the exported head records entry {seq}")),
        "{}",
        stderr(&cut)
    );

    let mut altered = head.clone();
    altered["seq"] = Value::from(keep);
    std::fs::write(&head_file, altered.to_string()).unwrap();
    let refused = home.run(&["audit", "verify", "--since-head", head_path]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        stderr(&refused).contains("signature does not verify")
            && stderr(&refused).contains("bad_audit_head"),
        "{}",
        stderr(&refused)
    );
}

#[test]
fn an_exported_head_catches_a_cut_off_chain_on_sqlite() {
    an_exported_head_catches_a_cut_off_chain(&Home::new());
}

#[test]
fn an_exported_head_catches_a_cut_off_chain_on_postgres() {
    an_exported_head_catches_a_cut_off_chain(&Home::on_postgres());
}

/// The kernel's `THP_enabled` line for a process (Linux 5.0 and later).
#[cfg(target_os = "linux")]
fn thp_enabled(pid: u32) -> Option<String> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("THP_enabled:"))?;
    Some(line["THP_enabled:".len()..].trim().to_owned())
}

#[cfg(target_os = "linux")]
#[test]
fn the_server_runs_without_transparent_huge_pages_and_batch_commands_keep_them() {
    let home = Home::new();
    let (mut server, _) = serve(&home);
    assert_eq!(thp_enabled(server.id()).as_deref(), Some("0"));
    server.kill().unwrap();
    server.wait().unwrap();
    // Anything else the binary runs is left as the system has it (this test's own process
    // stands in for the system's default, which a command inherits unless it changes it).
    let mut batch = home
        .command(&["replay", "/dev/stdin", "--out", "/dev/null"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let while_running = thp_enabled(batch.id());
    drop(batch.stdin.take());
    batch.wait().unwrap();
    assert_eq!(while_running, thp_enabled(std::process::id()));
}

#[test]
fn remote_commands_against_a_running_server_then_graceful_stop() {
    let home = Home::new();
    let created = home.json(&[
        "operators",
        "create",
        "--name",
        "gateway",
        "--role",
        "integration",
    ]);
    let token = created["token"].as_str().unwrap().to_owned();
    let (mut server, url) = serve(&home);

    let remote = |args: &[&str]| {
        let mut all = vec!["--server", url.as_str(), "--token", token.as_str()];
        all.extend_from_slice(args);
        home.run(&all)
    };
    assert!(
        remote(&["accounts", "create", "acc_remote"])
            .status
            .success()
    );
    let issued = remote(&[
        "keys",
        "create",
        "--account",
        "acc_remote",
        "--scope",
        "read,trade",
    ]);
    assert!(issued.status.success(), "{}", stderr(&issued));
    let issued: Value = serde_json::from_slice(&issued.stdout).unwrap();
    let forbidden = remote(&["operators", "list"]);
    assert_eq!(forbidden.status.code(), Some(1));
    assert!(
        stderr(&forbidden).contains("forbidden"),
        "{}",
        stderr(&forbidden)
    );
    let no_token = home.run(&[
        "--server",
        url.as_str(),
        "--token",
        "pco_wrong",
        "accounts",
        "list",
    ]);
    assert!(
        stderr(&no_token).contains("unauthenticated"),
        "{}",
        stderr(&no_token)
    );

    let api_key = issued["key"]["api_key"].as_str().unwrap();
    let payload = "symbol=BTCUSDT&timestamp=1";
    let verdict = remote(&[
        "verify",
        "--api-key",
        api_key,
        "--signature",
        "00",
        "--payload",
        payload,
        "--ip",
        "192.0.2.1",
        "--scope",
        "trade",
    ]);
    let verdict: Value = serde_json::from_slice(&verdict.stdout).unwrap();
    assert_eq!(verdict["reason"], "timestamp_outside_window");

    // A key created through the local store while the server runs is picked up by it.
    let local = home.json(&[
        "keys",
        "create",
        "--account",
        "acc_remote",
        "--scope",
        "read",
    ]);
    let key_id = local["key"]["key_id"].as_str().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let shown = remote(&["keys", "show", key_id]);
    assert!(shown.status.success(), "{}", stderr(&shown));

    let pid = server.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let status = server.wait().unwrap();
    assert!(
        status.success(),
        "graceful shutdown exits 0, got {status:?}"
    );
}

#[test]
fn replay_writes_one_decision_per_deciding_event_identically_every_time() {
    let home = Home::new();
    let events = home.dir.path().join("events.jsonl");
    let lines = [
        r#"{"id":"l1","ts":"2025-07-28T14:00:00.000Z","type":"login","account":"acc_81","method":"password","success":true,"ctx":{"ip":"198.51.100.23","device_id":"d_81a"}}"#,
        r#"{"id":"e1","ts":"2025-07-28T14:03:11.250Z","type":"api_key.updated","account":"acc_81","key_id":"k_3","scopes":["read","trade","withdraw"],"ip_allowlist":["203.0.113.7/32"],"step_up":"totp","ctx":{"ip":"198.51.100.23","device_id":"d_81a","channel":"app","call_active":true}}"#,
        r#"this is not json"#,
        r#"{"id":"e2","ts":"2025-07-28T14:09:40.002Z","type":"withdrawal.requested","account":"acc_81","withdrawal_id":"w_9","asset":"USDT","network":"TRX","address":"TQ5...","amount":"2400","amount_usd":2400.0,"key_id":"k_3","ctx":{"ip":"203.0.113.7","channel":"api"}}"#,
        r#"{"id":"e2","ts":"2025-07-28T14:09:40.002Z","type":"withdrawal.requested","account":"acc_81","withdrawal_id":"w_9","asset":"USDT","network":"TRX","address":"TQ5...","amount":"2400","amount_usd":2400.0,"key_id":"k_3","ctx":{"ip":"203.0.113.7","channel":"api"}}"#,
    ];
    std::fs::write(&events, lines.join("\n")).unwrap();
    let replay = |out: &str| {
        let out = home.dir.path().join(out);
        let output = home.run(&[
            "replay",
            events.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ]);
        assert!(output.status.success(), "{}", stderr(&output));
        (std::fs::read_to_string(out).unwrap(), stderr(&output))
    };
    let (first, summary) = replay("a.jsonl");
    let (second, _) = replay("b.jsonl");
    assert_eq!(
        first, second,
        "identical input gives byte-identical decisions"
    );
    let decisions: Vec<Value> = first
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(decisions.len(), 2, "{first}");
    assert_eq!(
        (
            decisions[0]["event_id"].as_str(),
            decisions[1]["event_id"].as_str()
        ),
        (Some("e1"), Some("e2"))
    );
    assert_eq!(
        decisions[1]["decision"], "block",
        "the drain through a key whose widening was stopped is blocked"
    );
    assert!(summary.contains("line 3:"), "{summary}");
    assert!(summary.contains("1 duplicates ignored"), "{summary}");

    let bad_policy = home.dir.path().join("bad.toml");
    std::fs::write(&bad_policy, "[thresholds]\nchallenge = 30\nhold = 60\nblock = 85\n[[rule]]\nid = \"oops\"\ndescription = \"x\"\nwhen = \"call_active &&\"\nscore = 5\n").unwrap();
    let refused = home.run(&[
        "replay",
        events.to_str().unwrap(),
        "--out",
        "/dev/null",
        "--policy",
        bad_policy.to_str().unwrap(),
    ]);
    assert_eq!(refused.status.code(), Some(2));
    assert!(stderr(&refused).contains("oops"), "{}", stderr(&refused));
}

fn feed_event(n: usize) -> String {
    let ts = portcullis_core::time::UnixMillis(1_767_225_600_000 + n as i64 * 1000).to_rfc3339();
    format!(
        r#"{{"id":"k{n}","ts":"{ts}","type":"address.added","account":"acc_{}","address":"T{n}","asset":"USDT","network":"TRX","step_up":"passkey"}}"#,
        n % 7
    )
}

#[test]
fn a_kill_during_ingest_loses_nothing_on_sqlite() {
    kill_during_ingest(&Home::new());
}

#[test]
fn a_kill_during_ingest_loses_nothing_on_postgres() {
    kill_during_ingest(&Home::on_postgres());
}

/// No acknowledged event is lost and none is applied twice when the server is killed (-9)
/// in the middle of a batch.
fn kill_during_ingest(home: &Home) {
    let token = home.integration_token("feed");
    let (mut server, url) = serve(home);
    let acknowledged: Vec<String> = (0..200).map(feed_event).collect();
    for batch in acknowledged.chunks(50) {
        assert_eq!(ingest(&url, &token, batch)["accepted"], 50);
    }
    // A batch still in flight when the process dies: whatever part of it was stored counts.
    let in_flight: Vec<String> = (200..1000).map(feed_event).collect();
    let sender = {
        let (url, token, lines) = (url.clone(), token.clone(), in_flight.clone());
        std::thread::spawn(move || {
            let agent: ureq::Agent = ureq::Agent::config_builder()
                .http_status_as_error(false)
                .build()
                .into();
            let _ = agent
                .post(&format!("{url}/v1/events"))
                .header("authorization", &format!("Bearer {token}"))
                .header("content-type", "application/x-ndjson")
                .send(lines.join("\n"));
        })
    };
    std::thread::sleep(std::time::Duration::from_millis(150));
    server.kill().unwrap();
    server.wait().unwrap();
    let _ = sender.join();

    let (mut server, url) = serve(home);
    let replayed = ingest(&url, &token, &acknowledged);
    assert_eq!(
        replayed["accepted"], 0,
        "every acknowledged event survived the kill"
    );
    assert_eq!(replayed["duplicates"], 200);
    let everything = ingest(&url, &token, &in_flight);
    let accepted_now = everything["accepted"].as_u64().unwrap();
    let stored_before = everything["duplicates"].as_u64().unwrap();
    assert_eq!(
        accepted_now + stored_before,
        800,
        "each in-flight event is stored exactly once"
    );
    let text = common::metrics(&url, &token);
    assert!(
        text.contains("portcullis_engine_events_total 1000"),
        "every stored event applied once after the restart"
    );
    assert!(text.contains("portcullis_decisions_total"), "{text}");
    let pid = server.id().to_string();
    Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    server.wait().unwrap();
}
