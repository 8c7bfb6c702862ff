//! What the case page shows of a change, a linked entity and a timeline entry, as text, with
//! operators by name.

use crate::state::AppState;
use portcullis_app::Actor;
use portcullis_app::console::TimelineEntry;
use portcullis_app::guard::describe;
use portcullis_app::ports::{HeldWithdrawal, PendingChange};
use portcullis_core::guard::PendingStatus;
use portcullis_engine::{GraphView, OverrideMode};
use std::collections::{HashMap, HashSet};

/// Operator ids to names (every operator, revoked ones included).
pub type Names = HashMap<String, String>;

/// An operator by name (the page escapes it), or the id itself when no operator has it
/// (`cli:local`, `system`, `risk-engine`).
pub fn named<'a>(names: &'a Names, id: &'a str) -> &'a str {
    names.get(id).map_or(id, String::as_str)
}

pub struct ChangeRow {
    pub id: String,
    pub what: String,
    pub status: &'static str,
    pub reason: String,
    pub applies_at: String,
    pub held: bool,
    pub approved_by: Option<String>,
    pub release_label: &'static str,
}

pub fn change_row(change: &PendingChange, names: &Names) -> ChangeRow {
    let (reason, engine_hold) = match &change.status {
        PendingStatus::Held { by, reason } => (
            format!("held by {}: {reason}", named(names, by)),
            by == "risk-engine",
        ),
        PendingStatus::Cancelled { by, .. } => {
            (format!("cancelled by {}", named(names, by)), false)
        }
        PendingStatus::Failed { reason, .. } => (reason.clone(), false),
        _ => (String::new(), false),
    };
    let release_label = match (engine_hold, &change.approved_by) {
        (true, None) => "Approve release (1 of 2)",
        (true, Some(_)) => "Complete release (2 of 2)",
        _ => "Release",
    };
    ChangeRow {
        id: change.id.clone(),
        what: describe(change).join("; "),
        status: change.status.as_str(),
        reason,
        applies_at: change.applies_at.to_rfc3339(),
        held: matches!(change.status, PendingStatus::Held { .. }),
        approved_by: (change.approved_by.as_deref()).map(|by| named(names, by).to_owned()),
        release_label,
    }
}

/// A held withdrawal on the case page, with the label of its release button.
pub struct WithdrawalRow {
    pub event_id: String,
    pub what: String,
    pub requested_at: String,
    pub reasons: String,
    pub approved_by: Option<String>,
    pub release_label: &'static str,
}

pub fn withdrawal_row(held: &HeldWithdrawal, names: &Names) -> WithdrawalRow {
    let reasons: Vec<String> = serde_json::from_str(&held.decision.reasons).unwrap_or_default();
    let approved_by = (held.review.as_ref())
        .and_then(|r| r.approved_by.as_deref())
        .map(|by| named(names, by).to_owned());
    WithdrawalRow {
        event_id: held.event.event.id.clone(),
        what: portcullis_app::guard::describe_withdrawal(held),
        requested_at: held.event.event.ts.to_rfc3339(),
        reasons: reasons.join(", "),
        release_label: if approved_by.is_some() {
            "Complete release (2 of 2)"
        } else {
            "Approve release (1 of 2)"
        },
        approved_by,
    }
}

pub struct LinkRow {
    pub kind: &'static str,
    pub value: String,
    pub hops: u8,
    pub shared: bool,
    /// The confirmed-fraud mark's path, from the confirmed entity to this one.
    pub mark: Option<String>,
    pub alert: Option<String>,
    pub alert_open: bool,
    pub override_mode: &'static str,
}

/// The alerts on the graph's nodes that are not confirmed yet.
pub async fn open_alerts(
    state: &AppState,
    actor: &Actor,
    graph: Option<&GraphView>,
) -> HashSet<String> {
    let mut open = HashSet::new();
    let mut ids = Vec::new();
    for node in graph.map(|g| g.nodes.as_slice()).unwrap_or_default() {
        ids.extend(node.alert.clone());
    }
    for id in ids {
        if let Ok(alert) = state.app.guard.alert(actor, &id).await
            && alert.confirmed_at.is_none()
        {
            open.insert(id);
        }
    }
    open
}

/// The entities the account links to (not the account itself), nearest first.
pub fn link_rows(graph: Option<&GraphView>, account: &str, open: &HashSet<String>) -> Vec<LinkRow> {
    let Some(graph) = graph else {
        return Vec::new();
    };
    let mut rows: Vec<LinkRow> = graph
        .nodes
        .iter()
        .filter(|n| !(n.hops == 0 && n.value == account))
        .map(|n| LinkRow {
            kind: n.kind.as_str(),
            value: n.value.clone(),
            hops: n.hops,
            shared: n.shared,
            mark: n
                .mark
                .as_ref()
                .map(|m| format!("{} (confirmation {})", m.path_text(), m.confirmation)),
            alert_open: n.alert.as_ref().is_some_and(|a| open.contains(a)),
            alert: n.alert.clone(),
            override_mode: match n.override_mode {
                Some(OverrideMode::Suppress) => "suppressed",
                Some(OverrideMode::Force) => "forced",
                None => "",
            },
        })
        .collect();
    rows.sort_by(|a, b| a.hops.cmp(&b.hops).then(a.value.cmp(&b.value)));
    rows
}

pub struct TimelineRow {
    pub at: String,
    pub source: &'static str,
    pub what: String,
    pub actor: String,
    /// The verdict, score, reasons and the feature values (pretty JSON).
    pub decision: Option<(String, i64, String, String)>,
    pub detail: String,
}

fn pretty(json: &str) -> String {
    serde_json::from_str::<serde_json::Value>(json)
        .and_then(|v| serde_json::to_string_pretty(&v))
        .unwrap_or_else(|_| json.to_owned())
}

pub fn timeline_row(entry: TimelineEntry, names: &Names) -> TimelineRow {
    TimelineRow {
        at: entry.at.to_rfc3339(),
        source: entry.source,
        what: entry.what,
        actor: (entry.actor.as_deref())
            .map(|actor| named(names, actor).to_owned())
            .unwrap_or_default(),
        decision: entry.decision.map(|d| {
            let reasons: Vec<String> = serde_json::from_str(&d.reasons).unwrap_or_default();
            (d.decision, d.score, reasons.join(", "), pretty(&d.features))
        }),
        detail: entry.detail,
    }
}
