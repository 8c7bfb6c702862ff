//! `portcullis policy backtest`: a policy file or a stored version replayed against the policy
//! in force over the stored events of a time range (`POST /v1/policy/backtest`), printed as
//! the console shows it: the totals before and after, each rule's figures before and after,
//! and the decisions that change.

use super::{PolicyBacktestArgs, out, read_policy, table};
use crate::requests::ApiRequest;
use crate::transport::Api;
use anyhow::Context as _;
use portcullis_app::ports::Clock as _;
use portcullis_core::time::UnixMillis;
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::process::ExitCode;

/// The default range: the last 30 days, to a minute ahead (events stamped by a clock a little
/// ahead of this one are in it), as the console's.
const DEFAULT_DAYS: i64 = 30;
const AHEAD_MS: i64 = 60_000;

pub async fn run(api: &Api, args: &PolicyBacktestArgs) -> anyhow::Result<ExitCode> {
    let (text, candidate) = match (&args.file, args.version) {
        (Some(file), _) => (read_policy(file)?, file.display().to_string()),
        (None, Some(number)) => {
            let version = api
                .call(&ApiRequest::get(format!("/v1/policy/versions/{number}")))
                .await?;
            let text = version["text"].as_str().context("a version without text")?;
            (text.to_owned(), format!("version {number}"))
        }
        (None, None) => anyhow::bail!("give the candidate: --file FILE or --version N"),
    };
    let now = portcullis_app::clock::SystemClock.now().as_millis();
    let from = (args.from.clone())
        .unwrap_or_else(|| UnixMillis(now - DEFAULT_DAYS * 86_400_000).to_rfc3339());
    let to = (args.to.clone()).unwrap_or_else(|| UnixMillis(now + AHEAD_MS).to_rfc3339());
    let mut body = json!({ "text": text, "from": from, "to": to });
    if let Some(max) = args.max_events {
        body["max_events"] = json!(max);
    }
    let answer = api
        .call(&ApiRequest::post("/v1/policy/backtest".into(), body))
        .await?;
    if args.json {
        return out(&serde_json::to_string_pretty(&answer)?);
    }
    let against = match answer["in_force_version"].as_i64() {
        Some(v) => format!("version {v} (in force)"),
        None => "the configured policy (in force)".to_owned(),
    };
    let report = &answer["report"];
    let head = format!(
        "backtest of {candidate} against {against}, events from {from} to {to}\n{} events replayed, {} decisions, {} accounts confirmed as fraud",
        report["events"], report["decided"], report["confirmed_accounts"]
    );
    out(&[head, totals(report), rules(report), changes(report)].join("\n\n"))
}

/// Whole dollars with thousands separators.
fn usd(value: &Value) -> String {
    // Report amounts are sums of USD amounts: far inside i64 once rounded.
    #[allow(clippy::cast_possible_truncation)]
    let dollars = value.as_f64().unwrap_or_default().round() as i64;
    let digits = dollars.unsigned_abs().to_string();
    let mut grouped = String::new();
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index).is_multiple_of(3) {
            grouped.push(',');
        }
        grouped.push(digit);
    }
    format!("{}${grouped}", if dollars < 0 { "-" } else { "" })
}

fn count(value: &Value) -> String {
    value.as_u64().unwrap_or_default().to_string()
}

/// How a figure is written.
type Show = fn(&Value) -> String;

/// Each side's totals, one figure a line.
fn totals(report: &Value) -> String {
    let figures: [(&str, &str, Show); 9] = [
        ("decisions", "decided", count),
        ("held", "held", count),
        ("blocked", "blocked", count),
        ("scam withdrawals", "scam_withdrawals", count),
        ("scam USD", "scam_usd", usd),
        ("scam USD stopped", "scam_usd_stopped", usd),
        ("legitimate withdrawals", "legit_withdrawals", count),
        (
            "legitimate withdrawals held",
            "legit_withdrawals_held",
            count,
        ),
        (
            "legitimate withdrawals blocked",
            "legit_withdrawals_blocked",
            count,
        ),
    ];
    let mut rows = vec![["".to_owned(), "in force".to_owned(), "candidate".to_owned()]];
    for (label, field, show) in figures {
        rows.push([
            label.to_owned(),
            show(&report["before"][field]),
            show(&report["after"][field]),
        ]);
    }
    table(&rows)
}

/// Each rule of either side, its figures before -> after ("-": not in that policy).
fn rules(report: &Value) -> String {
    let side = |name: &str| -> Vec<Value> {
        report[name]["rules"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    };
    let (before, after) = (side("before"), side("after"));
    let ids: BTreeSet<&str> = (before.iter().chain(&after))
        .filter_map(|r| r["rule"].as_str())
        .collect();
    let find = |rules: &[Value], id: &str| rules.iter().find(|r| r["rule"] == id).cloned();
    let mut rows = vec![
        [
            "rule",
            "hits",
            "held or blocked",
            "confirmed",
            "scam USD stopped",
            "legit stopped",
        ]
        .map(String::from),
    ];
    for id in ids {
        let (b, a) = (find(&before, id), find(&after, id));
        let shadow = [&b, &a]
            .iter()
            .any(|r| r.as_ref().is_some_and(|r| r["shadow"] == true));
        let pair = |field: &str, show: Show| {
            let one = |r: &Option<Value>| r.as_ref().map_or("-".to_owned(), |r| show(&r[field]));
            format!("{} -> {}", one(&b), one(&a))
        };
        rows.push([
            if shadow {
                format!("{id} (shadow)")
            } else {
                id.to_owned()
            },
            pair("hits", count),
            pair("held_or_blocked", count),
            pair("confirmed", count),
            pair("scam_usd_stopped", usd),
            pair("legit_withdrawals_stopped", count),
        ]);
    }
    format!("per rule, in force -> candidate:\n{}", table(&rows))
}

/// The decisions whose verdict changes (the first ones the report lists).
fn changes(report: &Value) -> String {
    let examples = report["examples"].as_array().cloned().unwrap_or_default();
    let changed = report["changed"].as_u64().unwrap_or_default();
    if changed == 0 {
        return "no decision changes".to_owned();
    }
    let reasons = |r: &Value| {
        let list: Vec<&str> = (r.as_array().into_iter().flatten())
            .filter_map(Value::as_str)
            .collect();
        if list.is_empty() {
            String::new()
        } else {
            format!(" ({})", list.join(", "))
        }
    };
    let mut rows = vec![
        [
            "event",
            "account",
            "type",
            "amount",
            "label",
            "in force -> candidate",
        ]
        .map(String::from),
    ];
    for e in &examples {
        rows.push([
            super::text(&e["event_id"]),
            super::text(&e["account"]),
            super::text(&e["event_type"]),
            if e["amount_usd"].is_number() {
                usd(&e["amount_usd"])
            } else {
                String::new()
            },
            if e["scam"] == true { "scam" } else { "legit" }.to_owned(),
            format!(
                "{}{} -> {}{}",
                super::text(&e["before"]),
                reasons(&e["before_reasons"]),
                super::text(&e["after"]),
                reasons(&e["after_reasons"])
            ),
        ]);
    }
    format!(
        "{changed} decisions change (the first {}):\n{}",
        examples.len(),
        table(&rows)
    )
}

#[cfg(test)]
mod tests {
    use super::{changes, rules, totals, usd};
    use serde_json::json;

    #[test]
    fn dollars_are_whole_and_grouped() {
        assert_eq!(usd(&json!(0.4)), "$0");
        assert_eq!(usd(&json!(4000.0)), "$4,000");
        assert_eq!(usd(&json!(1_234_567.5)), "$1,234,568");
        assert_eq!(usd(&json!(-999)), "-$999");
    }

    #[test]
    fn a_report_prints_both_sides_each_rule_and_the_changes() {
        let rule = |id: &str, hits: u64, shadow: bool| {
            json!({ "rule": id, "shadow": shadow, "hits": hits, "held_or_blocked": hits,
                    "confirmed": 1, "scam_usd_stopped": 1500.0, "legit_withdrawals_stopped": 0 })
        };
        let report = json!({
            "before": { "decided": 6, "held": 0, "scam_usd": 4400.0, "rules": [rule("old", 1, true)] },
            "after": { "decided": 6, "held": 3, "scam_usd": 4400.0, "scam_usd_stopped": 4000.0,
                       "rules": [rule("big", 3, false)] },
            "changed": 1,
            "examples": [{ "event_id": "w1", "account": "vic", "event_type": "withdrawal.requested",
                           "amount_usd": 1500.0, "scam": true, "before": "allow", "before_reasons": [],
                           "after": "hold", "after_reasons": ["big"] }],
        });
        let squeezed = |text: String| {
            let lines: Vec<String> = (text.lines())
                .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
                .collect();
            lines.join("\n")
        };
        let totals = squeezed(totals(&report));
        assert!(totals.contains("\nheld 0 3\n"), "{totals}");
        assert!(
            totals.contains("\nscam USD stopped $0 $4,000\n"),
            "{totals}"
        );
        let rules = squeezed(rules(&report));
        assert!(
            rules.contains("\nbig - -> 3 - -> 3 - -> 1 - -> $1,500 - -> 0"),
            "{rules}"
        );
        assert!(rules.contains("\nold (shadow) 1 -> - 1 -> -"), "{rules}");
        let changes = squeezed(changes(&report));
        assert!(
            changes.starts_with("1 decisions change (the first 1):"),
            "{changes}"
        );
        let change = "w1 vic withdrawal.requested $1,500 scam allow -> hold (big)";
        assert!(changes.ends_with(change), "{changes}");
    }
}
