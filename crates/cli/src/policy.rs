//! `portcullis policy`: the risk policy's versions from the command line, through the same API
//! as the console's rules page (`/v1/policy/*`), on the local store or a running server: list
//! and show versions, validate and propose a policy file, approve a proposal as the second
//! operator (maker-checker: the use case refuses the proposer), roll back to an earlier
//! published version, and backtest a file or a version over the stored history with the
//! before/after figures. Every refusal is the API's message and code, and exit code 1. The
//! subcommands' clap types are here rather than in `args.rs`.

mod backtest;

use crate::requests::ApiRequest;
use crate::transport::{Api, refusal_exits_1};
use anyhow::Context as _;
use clap::{Args, Subcommand};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// The versions, newest first, with who proposed and who approved each; the one in force
    /// is marked.
    List {
        /// The API's JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// One version's policy file on stdout (what it is, by whom, on stderr); without a
    /// number, the policy in force.
    Show { version: Option<i64> },
    /// Check a policy file as a proposal would be checked; a mistake is named with its rule
    /// and position.
    Validate { file: PathBuf },
    /// Propose a policy file as a new version (validated first; admins). It is in force only
    /// when a second operator approves it.
    Propose {
        file: PathBuf,
        /// Why (kept with the version and in the audit trail), at most 500 characters.
        #[arg(long, default_value = "")]
        note: String,
    },
    /// Approve a proposed version and publish it: in force at once. The operator who
    /// proposed it cannot (maker-checker).
    Approve { version: i64 },
    /// Propose an earlier published version again; a second operator approves it like any
    /// version.
    Rollback {
        version: i64,
        #[arg(long, default_value = "")]
        note: String,
    },
    /// Replay the stored events of a time range through the policy in force and a candidate
    /// (a file or a version), and print both side by side: scam USD stopped, legitimate
    /// withdrawals held, per rule, and the decisions that change.
    Backtest(PolicyBacktestArgs),
}

#[derive(Debug, Args)]
pub struct PolicyBacktestArgs {
    /// The candidate policy file.
    #[arg(long, required_unless_present = "version", conflicts_with = "version")]
    pub file: Option<PathBuf>,
    /// A stored version as the candidate.
    #[arg(long)]
    pub version: Option<i64>,
    /// The range's start, RFC 3339 (default: 30 days before now).
    #[arg(long)]
    pub from: Option<String>,
    /// The range's end, exclusive, RFC 3339 (default: a minute from now).
    #[arg(long)]
    pub to: Option<String>,
    /// The most events to replay, 1 to 1,000,000 (the server's default: 200,000).
    #[arg(long)]
    pub max_events: Option<u64>,
    /// The API's JSON instead of the tables.
    #[arg(long)]
    pub json: bool,
}

pub async fn run(api: &Api, command: &PolicyCommand) -> anyhow::Result<ExitCode> {
    match command {
        PolicyCommand::List { json } => refusal_exits_1("listing versions", list(api, *json).await),
        PolicyCommand::Show { version } => {
            refusal_exits_1("reading the policy", show(api, *version).await)
        }
        PolicyCommand::Validate { file } => {
            refusal_exits_1("validating", validate(api, file).await)
        }
        PolicyCommand::Propose { file, note } => {
            refusal_exits_1("proposing", propose(api, file, note).await)
        }
        PolicyCommand::Approve { version } => refusal_exits_1(
            &format!("approving version {version}"),
            approve(api, *version).await,
        ),
        PolicyCommand::Rollback { version, note } => refusal_exits_1(
            &format!("rolling back to version {version}"),
            rollback(api, *version, note).await,
        ),
        PolicyCommand::Backtest(args) => {
            refusal_exits_1("backtesting", backtest::run(api, args).await)
        }
    }
}

fn out(text: &str) -> anyhow::Result<ExitCode> {
    writeln!(std::io::stdout(), "{text}").context("writing to stdout")?;
    Ok(ExitCode::SUCCESS)
}

fn note(text: &str) {
    let _ = writeln!(std::io::stderr(), "{text}");
}

/// Operator ids to names, for those who may list operators (admins); otherwise empty, and
/// ids are shown as they are.
async fn operator_names(api: &Api) -> HashMap<String, String> {
    let Ok(Value::Array(operators)) = api.call(&ApiRequest::get("/v1/operators".into())).await
    else {
        return HashMap::new();
    };
    (operators.iter())
        .filter_map(|o| Some((o["id"].as_str()?.to_owned(), o["name"].as_str()?.to_owned())))
        .collect()
}

fn named(names: &HashMap<String, String>, id: &Value) -> String {
    let Some(id) = id.as_str() else {
        return String::new();
    };
    names
        .get(id)
        .map_or_else(|| id.to_owned(), |n| format!("{n} ({id})"))
}

async fn list(api: &Api, as_json: bool) -> anyhow::Result<ExitCode> {
    let versions = api
        .call(&ApiRequest::get("/v1/policy/versions".into()))
        .await?;
    if as_json {
        return out(&serde_json::to_string_pretty(&versions)?);
    }
    let in_force = api.call(&ApiRequest::get("/v1/policy".into())).await?;
    let in_force = in_force["version"].as_i64();
    let names = operator_names(api).await;
    let mut rows = vec![
        [
            "version",
            "status",
            "proposed by",
            "proposed at",
            "approved by",
            "published at",
            "note",
        ]
        .map(String::from),
    ];
    for v in versions.as_array().context("the versions are not a list")? {
        let number = v["version"].as_i64().unwrap_or_default();
        let status = if Some(number) == in_force {
            "in force".to_owned()
        } else {
            v["status"].as_str().unwrap_or_default().to_owned()
        };
        let note = match v["rollback_of"].as_i64() {
            Some(to) => format!("rollback to {to}: {}", text(&v["note"])),
            None => text(&v["note"]),
        };
        rows.push([
            number.to_string(),
            status,
            named(&names, &v["proposed_by"]),
            text(&v["proposed_at"]),
            named(&names, &v["approved_by"]),
            text(&v["published_at"]),
            note,
        ]);
    }
    if rows.len() == 1 {
        return out(
            "no versions yet: the configured policy is in force (`portcullis policy propose FILE`)",
        );
    }
    out(&table(&rows))
}

fn text(value: &Value) -> String {
    value.as_str().unwrap_or_default().to_owned()
}

/// Rows as columns padded to their widest cell (the last one is not padded).
fn table<const N: usize>(rows: &[[String; N]]) -> String {
    let mut widths = [0usize; N];
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let lines: Vec<String> = (rows.iter())
        .map(|row| {
            let cells: Vec<String> = (row.iter().zip(widths))
                .map(|(cell, width)| format!("{cell:<width$}"))
                .collect();
            cells.join("  ").trim_end().to_owned()
        })
        .collect();
    lines.join("\n")
}

async fn show(api: &Api, version: Option<i64>) -> anyhow::Result<ExitCode> {
    let Some(number) = version else {
        let in_force = api.call(&ApiRequest::get("/v1/policy".into())).await?;
        note(&match in_force["version"].as_i64() {
            Some(v) => format!("# the policy in force: version {v}"),
            None => "# the policy in force: the configured policy (no version published)".into(),
        });
        return print_policy(&in_force["text"]);
    };
    let v = api
        .call(&ApiRequest::get(format!("/v1/policy/versions/{number}")))
        .await?;
    let names = operator_names(api).await;
    let mut about = format!(
        "# version {number}, {}, proposed by {} at {}",
        text(&v["status"]),
        named(&names, &v["proposed_by"]),
        text(&v["proposed_at"])
    );
    if v["approved_by"].is_string() {
        about.push_str(&format!(
            ", approved by {} at {}",
            named(&names, &v["approved_by"]),
            text(&v["published_at"])
        ));
    }
    if let Some(to) = v["rollback_of"].as_i64() {
        about.push_str(&format!(", a rollback to version {to}"));
    }
    if !text(&v["note"]).is_empty() {
        about.push_str(&format!("; note: {}", text(&v["note"])));
    }
    note(&about);
    print_policy(&v["text"])
}

/// The policy file as stored, byte for byte (so `policy show N > file` gives it back).
fn print_policy(text: &Value) -> anyhow::Result<ExitCode> {
    let text = text.as_str().context("the policy has no text")?;
    std::io::stdout()
        .write_all(text.as_bytes())
        .context("writing to stdout")?;
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn read_policy(file: &Path) -> anyhow::Result<String> {
    std::fs::read_to_string(file)
        .with_context(|| format!("cannot read the policy file {}", file.display()))
}

/// Checks a policy file through the API: `Ok(Err(message))` says where it fails.
async fn checked(api: &Api, file: &Path, text: &str) -> anyhow::Result<Result<Value, String>> {
    let request = ApiRequest::post("/v1/policy/validate".into(), json!({ "text": text }));
    let answer = api.call(&request).await?;
    if answer["valid"] == Value::Bool(true) {
        return Ok(Ok(answer));
    }
    Ok(Err(problem(file, text, &answer["error"])))
}

/// Where and why a policy file fails: the rule (and its line in the file), the position
/// inside its `when`, the reason.
fn problem(file: &Path, text: &str, error: &Value) -> String {
    let rule = error["rule"].as_str().unwrap_or("policy");
    let reason = error["reason"].as_str().unwrap_or("not valid");
    let mut place = if rule == "policy" {
        "the file as a whole".to_owned()
    } else {
        format!("rule `{rule}`")
    };
    if let Some(line) = rule_line(text, rule) {
        place.push_str(&format!(" (line {line})"));
    }
    if let (Some(line), Some(column)) = (error["line"].as_i64(), error["column"].as_i64()) {
        place.push_str(&format!(", line {line} column {column} of its `when`"));
    }
    format!(
        "{} is not a valid policy: {place}: {reason}",
        file.display()
    )
}

/// The line of the file where `id = "<rule>"` is, if it is there once.
fn rule_line(text: &str, rule: &str) -> Option<usize> {
    let quoted = format!("\"{rule}\"");
    let mut found = text.lines().enumerate().filter(|(_, line)| {
        let line = line.trim_start();
        line.starts_with("id") && line.contains(&quoted)
    });
    match (found.next(), found.next()) {
        (Some((index, _)), None) => Some(index + 1),
        _ => None,
    }
}

async fn validate(api: &Api, file: &Path) -> anyhow::Result<ExitCode> {
    let text = read_policy(file)?;
    match checked(api, file, &text).await? {
        Ok(summary) => out(&format!(
            "{} is valid: {} rules ({} shadow)",
            file.display(),
            summary["rules"],
            summary["shadow_rules"]
        )),
        Err(message) => {
            note(&format!("portcullis: {message}"));
            Ok(ExitCode::from(1))
        }
    }
}

async fn propose(api: &Api, file: &Path, note_text: &str) -> anyhow::Result<ExitCode> {
    let text = read_policy(file)?;
    let summary = match checked(api, file, &text).await? {
        Ok(summary) => summary,
        Err(message) => {
            note(&format!("portcullis: {message}; nothing was proposed"));
            return Ok(ExitCode::from(1));
        }
    };
    let request = ApiRequest::post(
        "/v1/policy/versions".into(),
        json!({ "text": text, "note": note_text }),
    );
    let version = api.call(&request).await?;
    proposed(&version, &format!("{} rules", summary["rules"]))
}

fn proposed(version: &Value, what: &str) -> anyhow::Result<ExitCode> {
    let number = version["version"].as_i64().unwrap_or_default();
    out(&format!(
        "proposed version {number} ({what}); it is not in force until a second operator approves it: portcullis policy approve {number}"
    ))
}

async fn approve(api: &Api, number: i64) -> anyhow::Result<ExitCode> {
    let request = ApiRequest::post(format!("/v1/policy/versions/{number}/approve"), json!({}));
    let version = api.call(&request).await?;
    let names = operator_names(api).await;
    out(&format!(
        "published version {number}: in force now (publication {}, proposed by {}, approved by {})",
        version["publication"],
        named(&names, &version["proposed_by"]),
        named(&names, &version["approved_by"])
    ))
}

async fn rollback(api: &Api, number: i64, note_text: &str) -> anyhow::Result<ExitCode> {
    let request = ApiRequest::post(
        format!("/v1/policy/versions/{number}/rollback"),
        json!({ "note": note_text }),
    );
    let version = api.call(&request).await?;
    proposed(&version, &format!("a rollback to version {number}"))
}

#[cfg(test)]
mod tests {
    use super::{problem, rule_line, table};
    use serde_json::json;
    use std::path::Path;

    #[test]
    fn a_problem_names_the_rule_its_line_in_the_file_and_the_position_in_its_when() {
        let text = "[thresholds]\nhold = 60\n\n[[rule]]\nid = \"big\"\nwhen = \"amount_usd >=\"\n";
        assert_eq!(rule_line(text, "big"), Some(5));
        assert_eq!(rule_line(text, "other"), None);
        let error = json!({ "rule": "big", "line": 1, "column": 14, "reason": "unexpected end" });
        assert_eq!(
            problem(Path::new("p.toml"), text, &error),
            "p.toml is not a valid policy: rule `big` (line 5), line 1 column 14 of its `when`: unexpected end"
        );
        let whole = json!({ "rule": "policy", "reason": "unknown key `thresholdz`" });
        assert_eq!(
            problem(Path::new("p.toml"), text, &whole),
            "p.toml is not a valid policy: the file as a whole: unknown key `thresholdz`"
        );
    }

    #[test]
    fn a_table_pads_every_column_but_the_last() {
        let rows = [
            ["a".to_owned(), "bb".to_owned(), "c".to_owned()],
            ["aaa".to_owned(), "b".to_owned(), String::new()],
        ];
        assert_eq!(table(&rows), "a    bb  c\naaa  b");
    }
}
