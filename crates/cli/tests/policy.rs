//! `portcullis policy` against a running server, on SQLite and PostgreSQL: a policy file that
//! does not load is refused with its rule and position and nothing is proposed; a backtest of
//! a file prints the before/after figures (checked against a count made here); the proposer
//! cannot approve their own version (maker-checker), an analyst cannot approve at all, a second
//! administrator publishes it; a rollback is proposed and published the same way; the versions
//! are listed with their operators' names, and shown byte for byte.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{Home, ingest, serve, stderr};
use serde_json::json;
use std::process::{Command, Output};

const HEADER: &str = "[thresholds]\nchallenge = 30\nhold = 60\nblock = 85\n";

/// A policy with one rule: hold every withdrawal of at least `usd`.
fn holding_from(usd: &str) -> String {
    format!(
        "{HEADER}[[rule]]\nid = \"large_withdrawal\"\ndescription = \"x\"\nwhen = \"amount_usd >= {usd}\"\nscore = 60\n"
    )
}

/// Withdrawals of the last hour: the victim's (confirmed as fraud afterwards) and an honest
/// customer's.
const WITHDRAWALS: [(&str, u32); 6] = [
    ("vic", 1500),
    ("vic", 2500),
    ("vic", 400),
    ("hon", 1200),
    ("hon", 300),
    ("hon", 80),
];

fn history() -> Vec<String> {
    let now = portcullis_app::ports::Clock::now(&portcullis_app::clock::SystemClock);
    let start = now.as_millis() - 3_600_000;
    let ts = |ms: i64| portcullis_core::time::UnixMillis(ms).to_rfc3339();
    let mut lines: Vec<String> = WITHDRAWALS
        .iter()
        .enumerate()
        .map(|(n, (account, usd))| {
            json!({ "id": format!("bw{n}"), "ts": ts(start + n as i64 * 60_000),
                    "type": "withdrawal.requested", "account": account, "withdrawal_id": format!("bw{n}"),
                    "asset": "USDT", "network": "TRX", "address": format!("T{account}{n}"),
                    "amount": usd.to_string(), "amount_usd": usd, "ctx": { "ip": "198.51.100.9" } })
            .to_string()
        })
        .collect();
    lines.push(
        json!({ "id": "bconf", "ts": ts(start + 30 * 60_000), "type": "fraud.confirmed",
                "account": "vic", "note": "customer called" })
        .to_string(),
    );
    lines
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The last column of the line of `table` that starts with `label`.
fn figure(table: &str, label: &str) -> String {
    let line = table
        .lines()
        .find(|l| l.starts_with(label))
        .unwrap_or_else(|| panic!("no {label:?} in {table}"));
    line.split_whitespace().last().unwrap().to_owned()
}

/// Each line's words one space apart (tables are padded to their widest cell).
fn squeezed(text: &str) -> String {
    let lines: Vec<String> = (text.lines())
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    lines.join("\n")
}

fn admin_token(home: &Home, name: &str, role: &str) -> String {
    let created = home.json(&["operators", "create", "--name", name, "--role", role]);
    created["token"].as_str().unwrap().to_owned()
}

fn refused(output: &Output, says: &[&str]) {
    assert_eq!(output.status.code(), Some(1), "{}", stderr(output));
    for part in says {
        assert!(
            stderr(output).contains(part),
            "{part:?} in {}",
            stderr(output)
        );
    }
}

fn ok(output: &Output) -> String {
    assert!(output.status.success(), "{}", stderr(output));
    stdout(output)
}

fn policy_versions(home: &Home) {
    let dir = home.dir.path();
    let ada = admin_token(home, "ada", "admin");
    let bob = admin_token(home, "bob", "admin");
    let ana = admin_token(home, "ana", "analyst");
    let feeder = home.integration_token("feed");
    let (mut server, url) = serve(home);
    let as_ = |token: &str, args: &[&str]| {
        let mut all = vec!["--server", url.as_str(), "--token", token, "policy"];
        all.extend_from_slice(args);
        home.run(&all)
    };
    let write = |name: &str, text: &str| {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path.to_str().unwrap().to_owned()
    };
    assert!(ok(&as_(&ana, &["list"])).starts_with("no versions yet"));

    // A half-typed condition: refused with its rule, where it is, and why; nothing proposed.
    let bad = write("bad.toml", &holding_from("1000.0").replace("1000.0", ""));
    let says = [
        "bad.toml is not a valid policy: rule `large_withdrawal` (line 6), line 1 column",
        "of its `when`",
    ];
    refused(&as_(&ada, &["validate", &bad]), &says);
    refused(
        &as_(&ada, &["propose", &bad]),
        &[says[0], "nothing was proposed"],
    );
    let missing = as_(&ada, &["propose", "/nonexistent/p.toml"]);
    assert_eq!(missing.status.code(), Some(2));
    assert!(stderr(&missing).contains("cannot read the policy file /nonexistent/p.toml"));

    // A backtest of a draft over the stored history: before (the default policy) and after.
    let report = ingest(&url, &feeder, &history());
    assert_eq!(report["rejected"], json!([]), "{report}");
    let good_text = holding_from("1000.0");
    let good = write("good.toml", &good_text);
    assert!(ok(&as_(&ana, &["validate", &good])).ends_with("is valid: 1 rules (0 shadow)\n"));
    let printed = ok(&as_(&ana, &["backtest", "--file", &good]));
    assert!(
        printed.contains("against the configured policy (in force)"),
        "{printed}"
    );
    assert!(printed.contains("\n7 events replayed, 6 decisions, 1 accounts confirmed"));
    let scam = |big: bool| {
        (WITHDRAWALS.iter())
            .filter(|(a, usd)| *a == "vic" && (!big || *usd >= 1000))
            .map(|(_, usd)| usd)
            .sum::<u32>()
    };
    assert_eq!(
        figure(&printed, "scam USD "),
        format!("${},{:03}", scam(false) / 1000, scam(false) % 1000)
    );
    assert_eq!(
        figure(&printed, "scam USD stopped"),
        format!("${},{:03}", scam(true) / 1000, scam(true) % 1000)
    );
    let honest_held = WITHDRAWALS
        .iter()
        .filter(|(a, usd)| *a == "hon" && *usd >= 1000)
        .count();
    assert_eq!(
        figure(&printed, "legitimate withdrawals held"),
        honest_held.to_string()
    );
    assert!(
        squeezed(&printed).contains("\nlarge_withdrawal - -> 3 "),
        "{printed}"
    );
    let json_report: serde_json::Value =
        serde_json::from_str(&ok(&as_(&ana, &["backtest", "--file", &good, "--json"]))).unwrap();
    assert_eq!(json_report["report"]["after"]["held"], 3);
    let empty_range = [
        "backtest",
        "--file",
        &good,
        "--from",
        "2020-01-01T00:00:00Z",
        "--to",
        "2020-01-02T00:00:00Z",
    ];
    assert!(ok(&as_(&ana, &empty_range)).contains("\n0 events replayed"));
    let backwards = ["backtest", "--file", &good, "--from", "nonsense"];
    refused(&as_(&ana, &backwards), &["backtesting:", "HTTP 400"]);

    // Maker-checker: Ada proposes; she cannot approve it, nor can an analyst; Bob publishes.
    let proposed = ok(&as_(
        &ada,
        &["propose", &good, "--note", "hold large withdrawals"],
    ));
    assert!(
        proposed.starts_with("proposed version 1 (1 rules)"),
        "{proposed}"
    );
    assert!(proposed.contains("portcullis policy approve 1"));
    refused(
        &as_(&ada, &["approve", "1"]),
        &[
            "approving version 1: version 1 was proposed by you: a second operator must approve it (policy_self_approval, HTTP 403)",
        ],
    );
    refused(&as_(&ana, &["approve", "1"]), &["(forbidden, HTTP 403)"]);
    refused(
        &as_(&ana, &["propose", &good]),
        &["proposing: ", "(forbidden, HTTP 403)"],
    );
    let published = ok(&as_(&bob, &["approve", "1"]));
    assert!(
        published
            .starts_with("published version 1: in force now (publication 1, proposed by ada (op_"),
        "{published}"
    );
    assert!(published.contains("approved by bob (op_"), "{published}");
    refused(
        &as_(&bob, &["approve", "1"]),
        &["policy_published", "HTTP 409"],
    );
    refused(&as_(&bob, &["approve", "9"]), &["HTTP 404"]);
    assert_eq!(
        stdout(&as_(&ana, &["show"])),
        good_text,
        "in force, byte for byte"
    );
    let shown = as_(&ana, &["show", "1"]);
    assert_eq!(stdout(&shown), good_text);
    assert!(
        stderr(&shown).contains("# version 1, published, proposed by"),
        "{}",
        stderr(&shown)
    );
    assert!(stderr(&shown).contains("; note: hold large withdrawals"));

    // A second version by Bob, published by Ada; then a rollback to 1 by Ada, which Bob publishes.
    let second = write("second.toml", &holding_from("2000.0"));
    assert!(ok(&as_(&bob, &["propose", &second])).starts_with("proposed version 2"));
    ok(&as_(&ada, &["approve", "2"]));
    let rollback = ok(&as_(&ada, &["rollback", "1", "--note", "too lax"]));
    assert!(
        rollback.starts_with("proposed version 3 (a rollback to version 1)"),
        "{rollback}"
    );
    refused(&as_(&ada, &["approve", "3"]), &["policy_self_approval"]);
    ok(&as_(&bob, &["approve", "3"]));
    refused(
        &as_(&ada, &["rollback", "3"]),
        &[
            "rolling back to version 3:",
            "is the one in force",
            "HTTP 409",
        ],
    );
    let listed = ok(&as_(&ada, &["list"]));
    let listed = squeezed(&listed);
    let rows: Vec<&str> = listed.lines().collect();
    assert_eq!(rows.len(), 4, "{listed}");
    assert!(rows[1].starts_with("3 in force ada (op_"), "{listed}");
    assert!(
        rows[1].contains("bob (op_") && rows[1].ends_with("rollback to 1: too lax"),
        "{listed}"
    );
    assert!(rows[2].starts_with("2 published bob (op_"), "{listed}");
    // An analyst may not list operators: ids instead of names.
    let by_analyst = squeezed(&ok(&as_(&ana, &["list"])));
    assert!(
        by_analyst
            .lines()
            .nth(1)
            .unwrap()
            .starts_with("3 in force op_"),
        "{by_analyst}"
    );
    let versions: serde_json::Value =
        serde_json::from_str(&ok(&as_(&ana, &["list", "--json"]))).unwrap();
    assert_eq!(versions[0]["rollback_of"], 1);
    let against = ok(&as_(&ana, &["backtest", "--version", "2"]));
    assert!(
        against.starts_with("backtest of version 2 against version 3 (in force)"),
        "{against}"
    );

    // From the local store too, as the machine's administrator.
    Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status()
        .unwrap();
    server.wait().unwrap();
    assert_eq!(stdout(&home.run(&["policy", "show"])), good_text);
}

#[test]
fn policy_versions_from_the_command_line_on_sqlite() {
    policy_versions(&Home::new());
}

#[test]
fn policy_versions_from_the_command_line_on_postgres() {
    policy_versions(&Home::on_postgres());
}
