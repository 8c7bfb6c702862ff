//! The evaluation report: one self-contained HTML page (no scripts, no external files) with
//! the headline figures, a table per tactic, habit and rule, and the charts inline as SVG.

use super::charts::{Chart, ChartError, svg};
use super::summary::Summary;
use askama::Template;

struct TacticRow {
    name: String,
    decided: u64,
    withdrawals: u64,
    withdrawals_stopped: u64,
    usd: String,
    usd_stopped: String,
    share: String,
    changes_stopped: u64,
}

struct RuleRow {
    rule: String,
    fired_scam: u64,
    fired_legit: u64,
    adds_usd: String,
    adds_legit: i64,
}

#[derive(Template)]
#[template(path = "report.html")]
struct Report {
    title: String,
    events: u64,
    decided: u64,
    refused: u64,
    scam_stopped: String,
    scam_usd_stopped: String,
    scam_usd: String,
    friction: String,
    legit_stopped: u64,
    legit_withdrawals: u64,
    legit_challenged: u64,
    changes: u64,
    changes_stopped: u64,
    changes_challenged: u64,
    incidents: u64,
    incidents_stopped: u64,
    minutes_median: String,
    minutes_p90: String,
    scam_rows: Vec<TacticRow>,
    legit_rows: Vec<TacticRow>,
    rule_rows: Vec<RuleRow>,
    scam_chart: String,
    legit_chart: String,
    rules_chart: String,
}

/// The no-font note holds only our own paths, but it goes in as markup: escape it anyway.
fn escape_note(text: &str) -> String {
    askama::filters::escape(text, askama::filters::Html)
        .map(|escaped| escaped.to_string())
        .unwrap_or_default()
}

fn usd(value: f64) -> String {
    format!("{value:.0}")
}

fn percent(value: f64) -> String {
    format!("{:.2}%", value * 100.0)
}

fn minutes(value: Option<f64>) -> String {
    value.map_or_else(|| "-".into(), |m| format!("{m:.0}"))
}

fn rows(summary: &Summary, label: &str) -> Vec<TacticRow> {
    summary
        .tactics
        .iter()
        .filter(|t| t.label == label)
        .map(|t| TacticRow {
            name: t.tactic.clone(),
            decided: t.decided,
            withdrawals: t.withdrawals,
            withdrawals_stopped: t.withdrawals_stopped,
            usd: usd(t.usd),
            usd_stopped: usd(t.usd_stopped),
            share: if label == "scam" {
                percent(if t.usd > 0.0 {
                    t.usd_stopped / t.usd
                } else {
                    0.0
                })
            } else {
                percent(if t.withdrawals > 0 {
                    t.withdrawals_stopped as f64 / t.withdrawals as f64
                } else {
                    0.0
                })
            },
            changes_stopped: t.changes_stopped,
        })
        .collect()
}

/// The page. `title` names what was evaluated (the file names); it is escaped like every value.
pub fn report_html(title: &str, summary: &Summary, charts: &[Chart]) -> Result<String, ChartError> {
    let chart = |name: &str| -> Result<String, ChartError> {
        match charts.iter().find(|c| c.name == name).map(svg) {
            None => Ok(String::new()),
            Some(Ok(svg)) => Ok(svg),
            // Without a font the figures are all in the tables; say why the chart is missing.
            Some(Err(error @ ChartError::NoFont(_))) => Ok(format!(
                "<p class=\"note\">{}</p>",
                escape_note(&error.to_string())
            )),
            Some(Err(error)) => Err(error),
        }
    };
    let report = Report {
        title: title.to_owned(),
        events: summary.events,
        decided: summary.decided,
        refused: summary.refused_lines,
        scam_stopped: percent(summary.scam.stopped_share),
        scam_usd_stopped: usd(summary.scam.usd_stopped),
        scam_usd: usd(summary.scam.usd),
        friction: percent(summary.legit.friction),
        legit_stopped: summary.legit.withdrawals_held + summary.legit.withdrawals_blocked,
        legit_withdrawals: summary.legit.withdrawals,
        legit_challenged: summary.legit.withdrawals_challenged,
        changes: summary.legit.changes,
        changes_stopped: summary.legit.changes_held_or_blocked,
        changes_challenged: summary.legit.changes_challenged,
        incidents: summary.scam.incidents,
        incidents_stopped: summary.scam.incidents_stopped,
        minutes_median: minutes(summary.scam.minutes_to_stop_median),
        minutes_p90: minutes(summary.scam.minutes_to_stop_p90),
        scam_rows: rows(summary, "scam"),
        legit_rows: rows(summary, "legit"),
        rule_rows: summary
            .rules
            .iter()
            .map(|r| RuleRow {
                rule: r.rule.clone(),
                fired_scam: r.fired_scam,
                fired_legit: r.fired_legit,
                adds_usd: usd(r.adds_scam_usd_stopped),
                adds_legit: r.adds_legit_withdrawals_stopped,
            })
            .collect(),
        scam_chart: chart("scam_usd_by_tactic")?,
        legit_chart: chart("legit_withdrawals_by_habit")?,
        rules_chart: chart("scam_usd_added_by_rule")?,
    };
    report
        .render()
        .map_err(|e| ChartError::Draw("report", e.to_string()))
}
