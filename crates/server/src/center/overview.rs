//! The security center's overview page: the freeze button, where notices go, the check-up,
//! pending changes (a held one explained in plain words), withdrawals on hold (cancellable), keys, authenticators, addresses,
//! past changes, activity a page at a time, and the settings lock.

use super::CENTER_CSP;
use super::pages::{refusal, step_up_method};
use super::session::Customer;
use crate::routes::cancel::page_with;
use crate::state::AppState;
use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use portcullis_app::guard::{activity_words, describe_named, key_label};
use portcullis_app::keys::KeyView;
use portcullis_app::ports::PendingChange;
use portcullis_core::guard::checkup::Finding;
use portcullis_core::guard::{PendingStatus, hold};
use portcullis_core::key::KeyStatus;
use portcullis_core::time::UnixMillis;
use serde::Deserialize;

/// A check-up finding with the button that fixes it.
struct FindingRow {
    id: &'static str,
    fix: String,
    /// The key's or change's id the button acts on (empty for the account).
    target: String,
    /// Which button: `authenticators`, `cancel`, `remove_withdraw`, `restrict` or `revoke`.
    action: &'static str,
}

fn finding_row(finding: &Finding) -> FindingRow {
    let action = match finding.id {
        "pending_widening" => "cancel",
        "withdraw_key" => "remove_withdraw",
        "unrestricted_key" => "restrict",
        "old_key" | "stale_key" | "unused_key" => "revoke",
        _ => "authenticators",
    };
    FindingRow {
        id: finding.id,
        fix: finding.fix.clone(),
        target: finding.target.clone().unwrap_or_default(),
        action,
    }
}

#[derive(Clone)]
struct ChangeRow {
    id: String,
    status: &'static str,
    /// The status as the customer reads it.
    state: &'static str,
    open: bool,
    held: bool,
    summary: String,
    applies_at: String,
    /// When and by whom a closed change was closed, or why it failed.
    detail: String,
    /// When it closed (RFC 3339), for a closed change.
    closed_at: Option<String>,
    /// A held change: what was seen, in plain words.
    seen: Vec<&'static str>,
    /// A held change: whether a person (not the automatic check) put it on hold.
    held_by_staff: bool,
}

/// A withdrawal on hold, as the customer reads it.
struct HeldRow {
    event_id: String,
    summary: String,
    requested_at: String,
    /// One reviewer at the exchange approved releasing it; a second one completes it.
    being_released: bool,
}

fn held_row(held: &portcullis_app::ports::HeldWithdrawal) -> HeldRow {
    HeldRow {
        event_id: held.event.event.id.clone(),
        summary: portcullis_app::guard::describe_withdrawal(held),
        requested_at: held.event.event.ts.to_rfc3339(),
        being_released: held.review.is_some(),
    }
}

struct KeyRow {
    key_id: String,
    label: String,
    scopes: String,
    allowlist: String,
    created: String,
    /// When it was last used (RFC 3339), and from where.
    last_used: Option<String>,
    last_ip: Option<String>,
    status: &'static str,
    active: bool,
}

#[derive(Template)]
#[template(path = "center_overview.html")]
struct OverviewPage<'a> {
    exchange: &'a str,
    account: &'a str,
    anti_phishing_code: Option<String>,
    email: Option<String>,
    csrf: &'a str,
    frozen: bool,
    /// (RFC 3339, the day spelled out)
    locked_until: Option<(String, String)>,
    score: u8,
    findings: Vec<FindingRow>,
    changes: Vec<ChangeRow>,
    /// Withdrawals on hold, which the customer may cancel.
    held_withdrawals: Vec<HeldRow>,
    /// Closed changes (applied, cancelled, failed), newest first.
    history: Vec<ChangeRow>,
    keys: Vec<KeyRow>,
    /// (credential id, label, added at)
    passkeys: Vec<(String, String, String)>,
    totp: bool,
    addresses: Vec<String>,
    /// The step-up the page's forms use: `passkey`, `totp` or `none`.
    method: &'static str,
    /// (when, what, by whom)
    activity: Vec<(String, &'static str, &'static str)>,
    activity_page: u32,
    activity_more: bool,
    /// A change just applied at once.
    applied: bool,
    /// The daily digest's hour (`HH:00`, UTC), when it is on.
    digest_at: Option<String>,
}

/// Who did something, as the customer should read it.
fn actor_name(actor: &str) -> &'static str {
    if actor.starts_with("customer:") {
        "you"
    } else if actor.starts_with("op_") || actor == "cli:local" {
        "the exchange"
    } else if actor == "risk-engine" {
        "the automatic scam check"
    } else {
        "Portcullis"
    }
}

fn change_row(change: &PendingChange, keys: &[KeyView]) -> ChangeRow {
    let (state, detail, closed_at) = match &change.status {
        PendingStatus::Pending => ("Waiting", String::new(), None),
        PendingStatus::Held { .. } => ("On hold for review", String::new(), None),
        PendingStatus::Applied { at } => ("Applied", String::new(), Some(at.to_rfc3339())),
        PendingStatus::Cancelled { at, by } => (
            "Cancelled",
            format!("cancelled by {}", actor_name(by)),
            Some(at.to_rfc3339()),
        ),
        PendingStatus::Failed { at, reason } => (
            "Not applied",
            format!("not applied: {reason}"),
            Some(at.to_rfc3339()),
        ),
    };
    let (seen, held_by_staff) = match &change.status {
        PendingStatus::Held { by, reason } => {
            (hold::seen(reason), actor_name(by) == "the exchange")
        }
        _ => (Vec::new(), false),
    };
    ChangeRow {
        id: change.id.clone(),
        status: change.status.as_str(),
        state,
        open: change.status.is_open(),
        held: matches!(change.status, PendingStatus::Held { .. }),
        summary: describe_named(change, key_label(change, keys)).join("; "),
        applies_at: change.applies_at.to_rfc3339(),
        detail,
        closed_at,
        seen,
        held_by_staff,
    }
}

fn key_row(view: &KeyView) -> KeyRow {
    let key = &view.key;
    let allow = key.ip_allowlist.entries();
    KeyRow {
        key_id: key.key_id.clone(),
        label: key.label.clone(),
        scopes: key.scopes.names().join(", "),
        allowlist: if allow.is_empty() {
            "any address".into()
        } else {
            allow.join(", ")
        },
        created: key.created_at.to_rfc3339(),
        last_used: key.last_used_at.map(UnixMillis::to_rfc3339),
        last_ip: key.last_used_ip.map(|ip| ip.to_string()),
        status: view.status.as_str(),
        active: view.status == KeyStatus::Active,
    }
}

/// The overview's query: which page of activity, and what just happened.
#[derive(Debug, Default, Deserialize)]
pub struct OverviewQuery {
    #[serde(default)]
    activity: u32,
    /// Set after a change that applied at once (a narrowing).
    #[serde(default)]
    applied: Option<u8>,
}

pub async fn overview(
    State(state): State<AppState>,
    customer: Customer,
    Query(query): Query<OverviewQuery>,
) -> Response {
    let overview = match state
        .app
        .guard
        .overview(&customer.actor, &customer.account, query.activity)
        .await
    {
        Ok(overview) => overview,
        Err(error) => return refusal(&state, error),
    };
    let digest = match state
        .app
        .guard
        .digest(&customer.actor, &customer.account)
        .await
    {
        Ok(digest) => digest,
        Err(error) => return refusal(&state, error),
    };
    let rows: Vec<ChangeRow> = overview
        .changes
        .iter()
        .map(|c| change_row(c, &overview.keys))
        .collect();
    let template = OverviewPage {
        exchange: &state.app.guard.settings().exchange_name,
        account: &customer.account,
        anti_phishing_code: overview.account.anti_phishing_code.clone(),
        email: overview.account.email.clone(),
        csrf: &customer.csrf,
        frozen: overview.protection.is_frozen(),
        locked_until: overview
            .protection
            .lock_in_force(state.app.clock.now())
            .map(|until| (until.to_rfc3339(), until.spelled_day())),
        score: overview.checkup.score,
        findings: overview.checkup.findings.iter().map(finding_row).collect(),
        changes: rows.iter().filter(|r| r.open).cloned().collect(),
        held_withdrawals: overview.held_withdrawals.iter().map(held_row).collect(),
        history: rows.into_iter().filter(|r| !r.open).collect(),
        keys: overview.keys.iter().map(key_row).collect(),
        passkeys: overview
            .passkeys
            .iter()
            .map(|p| {
                let label = if p.label.is_empty() {
                    "passkey".to_owned()
                } else {
                    p.label.clone()
                };
                (p.credential_id.clone(), label, p.created_at.to_rfc3339())
            })
            .collect(),
        method: step_up_method(&overview),
        activity: overview
            .activity
            .entries
            .iter()
            .map(|e| {
                (
                    e.at.to_rfc3339(),
                    activity_words(&e.action),
                    actor_name(&e.actor),
                )
            })
            .collect(),
        activity_page: overview.activity.page,
        activity_more: overview.activity.more,
        applied: query.applied.is_some(),
        digest_at: digest.map(|d| format!("{:02}:00", d.hour_utc)),
        totp: overview.totp,
        addresses: overview
            .addresses
            .iter()
            .map(|a| format!("{} · {} on {} ({})", a.label, a.address, a.network, a.asset))
            .collect(),
    };
    page_with(StatusCode::OK, &template, CENTER_CSP)
}
