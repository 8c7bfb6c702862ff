//! Backtests and rule statistics over real HTTP on both backends: a stored history of
//! withdrawals, some by accounts a `fraud.confirmed` later names, replayed through the policy in
//! force and a draft; every figure is checked against a count made here from the feed itself.
//! The range and the cap hold, and a draft that does not load is refused.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{Backend, TestServer};
use serde_json::{Value, json};
use std::collections::BTreeSet;

const HEADER: &str = "[thresholds]\nchallenge = 30\nhold = 60\nblock = 85\n";

fn rule(id: &str, usd: u32, score: u8, shadow: bool) -> String {
    format!(
        "[[rule]]\nid = \"{id}\"\ndescription = \"x\"\nwhen = \"amount_usd >= {usd}.0\"\nscore = {score}\nshadow = {shadow}\n"
    )
}

/// In force (the configured file): holds from 5,000 USD.
fn in_force() -> String {
    format!("{HEADER}{}", rule("huge", 5000, 60, false))
}

/// The draft: holds from 1,000 USD, and watches from 100 USD (shadow).
fn candidate() -> String {
    format!(
        "{HEADER}{}{}",
        rule("big", 1000, 60, false),
        rule("watch", 100, 10, true)
    )
}

fn at(minutes: i64) -> String {
    portcullis_core::time::UnixMillis(common::START.as_millis() + minutes * 60_000).to_rfc3339()
}

/// One withdrawal of the feed: (event id, account, withdrawal id, USD, minute).
struct Withdrawal {
    id: String,
    account: &'static str,
    withdrawal_id: String,
    usd: u32,
    minute: i64,
}

const ACCOUNTS: [&str; 5] = ["victim_1", "victim_2", "honest_1", "honest_2", "honest_3"];
const AMOUNTS: [u32; 8] = [50, 300, 1200, 2500, 6000, 800, 15000, 90];

fn withdrawals() -> Vec<Withdrawal> {
    let early = (0u32..3).map(|n| (n, i64::from(n) + 1));
    let in_range = (3u32..43).map(|n| (n, i64::from(n) + 10));
    early
        .chain(in_range)
        .map(|(n, minute)| Withdrawal {
            id: format!("e{n}"),
            account: ACCOUNTS[(n % 5) as usize],
            withdrawal_id: format!("w{n}"),
            usd: AMOUNTS[(n % 8) as usize] + n,
            minute,
        })
        .collect()
}

fn line(w: &Withdrawal) -> Value {
    json!({ "id": w.id, "ts": at(w.minute), "type": "withdrawal.requested", "account": w.account,
        "withdrawal_id": w.withdrawal_id, "asset": "USDT", "network": "TRX", "address": format!("T{}", w.account),
        "amount": w.usd.to_string(), "amount_usd": f64::from(w.usd), "ctx": { "ip": "198.51.100.7" } })
}

/// `victim_2` is confirmed inside the range (with one of honest_3's withdrawals listed),
/// `victim_1` only after it.
const LISTED: &str = "w9";
fn confirmations() -> Vec<Value> {
    vec![
        json!({ "id": "c_in", "ts": at(50), "type": "fraud.confirmed", "account": "victim_2", "withdrawal_ids": [LISTED], "note": "x" }),
        json!({ "id": "c_after", "ts": at(500), "type": "fraud.confirmed", "account": "victim_1", "note": "x" }),
    ]
}

const FROM: i64 = 5;
const TO: i64 = 100;

async fn server_with_history(backend: Backend) -> (TestServer, tempfile::TempDir) {
    let policy_dir = tempfile::tempdir().unwrap();
    let file = policy_dir.path().join("policy.toml");
    std::fs::write(&file, in_force()).unwrap();
    let server = TestServer::start_with(backend, move |config| {
        config.risk_policy_file = file.display().to_string();
    })
    .await;
    let mut lines: Vec<Value> = withdrawals().iter().map(line).collect();
    lines.extend(confirmations());
    lines.sort_by_key(|l| l["ts"].as_str().unwrap().to_owned());
    let body: Vec<String> = lines.iter().map(Value::to_string).collect();
    let feed = server.operator("integration").await;
    let reply = feed
        .post_raw(
            "/v1/events",
            body.join("\n").into_bytes(),
            "application/x-ndjson",
        )
        .await;
    assert_eq!(reply.body["accepted"], lines.len(), "{}", reply.text);
    (server, policy_dir)
}

/// The figures counted from the feed, independently of the service.
#[derive(Debug, Default, PartialEq)]
struct Expected {
    scam_usd: f64,
    scam_usd_stopped_before: f64,
    scam_usd_stopped_after: f64,
    legit: u64,
    legit_held_before: u64,
    legit_held_after: u64,
    changed: BTreeSet<String>,
    watch_hits: u64,
    watch_confirmed: u64,
    huge_hits: u64,
}

fn expected() -> Expected {
    let mut e = Expected::default();
    for w in withdrawals()
        .iter()
        .filter(|w| (FROM..TO).contains(&w.minute))
    {
        let usd = f64::from(w.usd);
        let confirmed_account = w.account.starts_with("victim");
        let scam = confirmed_account || w.withdrawal_id == LISTED;
        let (before, after) = (w.usd >= 5000, w.usd >= 1000);
        if scam {
            e.scam_usd += usd;
            e.scam_usd_stopped_before += if before { usd } else { 0.0 };
            e.scam_usd_stopped_after += if after { usd } else { 0.0 };
        } else {
            e.legit += 1;
            e.legit_held_before += u64::from(before);
            e.legit_held_after += u64::from(after);
        }
        if before != after {
            e.changed.insert(w.id.clone());
        }
        if w.usd >= 100 {
            e.watch_hits += 1;
            e.watch_confirmed += u64::from(confirmed_account);
        }
        e.huge_hits += u64::from(before);
    }
    e
}

fn rule_of<'a>(side: &'a Value, id: &str) -> &'a Value {
    let rules = side["rules"].as_array().unwrap();
    rules.iter().find(|r| r["rule"] == id).unwrap()
}

fn measured(report: &Value) -> Expected {
    let (before, after) = (&report["before"], &report["after"]);
    let count = |v: &Value| v.as_u64().unwrap();
    Expected {
        scam_usd: before["scam_usd"].as_f64().unwrap(),
        scam_usd_stopped_before: before["scam_usd_stopped"].as_f64().unwrap(),
        scam_usd_stopped_after: after["scam_usd_stopped"].as_f64().unwrap(),
        legit: count(&before["legit_withdrawals"]),
        legit_held_before: count(&before["legit_withdrawals_held"]),
        legit_held_after: count(&after["legit_withdrawals_held"]),
        changed: report["examples"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["event_id"].as_str().unwrap().to_owned())
            .collect(),
        watch_hits: count(&rule_of(after, "watch")["hits"]),
        watch_confirmed: count(&rule_of(after, "watch")["confirmed"]),
        huge_hits: count(&rule_of(before, "huge")["hits"]),
    }
}

fn body(max_events: Option<u64>) -> Value {
    json!({ "text": candidate(), "from": at(FROM), "to": at(TO), "max_events": max_events })
}

async fn a_backtest_counts_what_the_feed_says(backend: Backend) {
    let (server, _policy) = server_with_history(backend).await;
    let analyst = server.operator("analyst").await;
    let reply = analyst.post("/v1/policy/backtest", &body(None)).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let report = &reply.body["report"];
    let want = expected();
    assert!(
        want.scam_usd_stopped_after > want.scam_usd_stopped_before
            && want.legit_held_after > want.legit_held_before
    );
    assert_eq!(measured(report), want, "{report}");
    let in_range = withdrawals()
        .iter()
        .filter(|w| (FROM..TO).contains(&w.minute))
        .count() as u64;
    assert_eq!(
        report["events"],
        in_range + 1,
        "the withdrawals and the confirmation in range"
    );
    assert_eq!(
        (
            report["confirmed_accounts"].clone(),
            report["changed"].clone()
        ),
        (json!(2), json!(want.changed.len()))
    );
    let example = &report["examples"][0];
    assert_eq!(
        (
            example["before"].clone(),
            example["after"].clone(),
            example["after_reasons"].clone()
        ),
        (json!("allow"), json!("hold"), json!(["big"]))
    );
    assert!(
        reply.body["in_force_version"].is_null(),
        "the configured policy"
    );

    // The policy in force, per rule, with the live counters beside it.
    let stats = analyst
        .get(&format!("/v1/policy/stats?from={}&to={}", at(FROM), at(TO)).replace('+', "%2B"))
        .await;
    assert_eq!(stats.status, 200, "{}", stats.text);
    let huge = rule_of(&stats.body["replayed"], "huge");
    assert_eq!(
        (huge["hits"].clone(), huge["held_or_blocked"].clone()),
        (json!(want.huge_hits), json!(want.huge_hits))
    );
    let all = withdrawals().iter().filter(|w| w.usd >= 5000).count() as u64;
    assert_eq!(
        stats.body["live_hits"]["huge"], all,
        "every event since the start"
    );
}

async fn the_range_the_cap_and_the_draft_are_checked(backend: Backend) {
    let (server, _policy) = server_with_history(backend).await;
    let analyst = server.operator("analyst").await;
    let in_range = withdrawals()
        .iter()
        .filter(|w| (FROM..TO).contains(&w.minute))
        .count() as u64
        + 1;
    let too_many = analyst
        .post("/v1/policy/backtest", &body(Some(in_range - 1)))
        .await;
    assert_eq!(
        (too_many.status, too_many.body["error"]["code"].as_str()),
        (400, Some("backtest_too_large")),
        "{}",
        too_many.text
    );
    assert!(
        too_many.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains(&in_range.to_string())
    );
    let exactly = analyst
        .post("/v1/policy/backtest", &body(Some(in_range)))
        .await;
    assert_eq!(exactly.status, 200, "{}", exactly.text);
    let over = analyst
        .post("/v1/policy/backtest", &body(Some(1_000_001)))
        .await;
    assert_eq!(over.body["error"]["code"], "invalid_query", "{}", over.text);
    let backwards = json!({ "text": candidate(), "from": at(TO), "to": at(FROM) });
    let reply = analyst.post("/v1/policy/backtest", &backwards).await;
    assert_eq!(
        reply.body["error"]["code"], "invalid_query",
        "{}",
        reply.text
    );
    let broken = json!({ "text": "[thresholds]\nchallenge = 90\nhold = 60\nblock = 85\n", "from": at(FROM), "to": at(TO) });
    let reply = analyst.post("/v1/policy/backtest", &broken).await;
    assert_eq!(
        reply.body["error"]["code"], "invalid_policy",
        "{}",
        reply.text
    );
    let customer_side = server
        .anonymous()
        .post("/v1/policy/backtest", &body(None))
        .await;
    assert_eq!(customer_side.status, 401);
}

/// A backtest whose request is dropped (its future is polled once, then dropped, as when the
/// client goes away) gives its turn back: the next one runs rather than `backtest_busy`.
async fn a_dropped_backtest_gives_its_turn_back(backend: Backend) {
    let (server, _policy) = server_with_history(backend).await;
    let actor =
        portcullis_app::Actor::operator("op_test", portcullis_core::operator::Role::Analyst);
    let range = portcullis_app::policy::BacktestRange {
        from: portcullis_core::time::UnixMillis::parse_rfc3339(&at(FROM)).unwrap(),
        to: portcullis_core::time::UnixMillis::parse_rfc3339(&at(TO)).unwrap(),
        max_events: None,
    };
    let policies = &server.app.policies;
    let draft = candidate();
    let first = policies.backtest(&actor, &draft, range);
    let cut = tokio::time::timeout(std::time::Duration::ZERO, first).await;
    assert!(cut.is_err(), "the first poll waits for the store");
    let again = policies.backtest(&actor, &draft, range).await;
    let decided = withdrawals()
        .iter()
        .filter(|w| (FROM..TO).contains(&w.minute))
        .count();
    assert_eq!(again.unwrap().report.decided, decided as u64);
}

on_both_backends!(
    a_backtest_counts_what_the_feed_says,
    the_range_the_cap_and_the_draft_are_checked,
    a_dropped_backtest_gives_its_turn_back,
);
