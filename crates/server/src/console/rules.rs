//! The console's rules page: the policy's versions (approve a proposal as the second operator,
//! roll back to an earlier published version), an editor that validates as you type, a
//! backtest of the draft with its before/after table and the decisions that change, the live
//! engine's hits per rule, and the form that proposes the draft. The page's script calls the
//! JSON endpoints here (`x-csrf-token`); the posts are forms. Every action is the API's use
//! case with the signed-in operator as actor, so it is audited under their id and maker-checker
//! holds the same way.

use super::pages::refusal;
use super::session::{ConsoleForm, ConsoleOperator, ScriptOperator};
use super::view::{Names, named};
use crate::center::CENTER_CSP;
use crate::error::ApiResult;
use crate::extract::ApiJson;
use crate::routes::cancel::page_with;
use crate::routes::policy::{BacktestBody, BacktestDto, DraftBody, ValidationDto, validation};
use crate::state::AppState;
use askama::Template;
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use portcullis_app::AppResult;
use portcullis_app::ports::PolicyVersion;
use portcullis_core::operator::Permission;
use portcullis_core::time::UnixMillis;
use serde::Deserialize;

/// One row of the versions table.
struct VersionRow {
    version: i64,
    status: &'static str,
    rollback_of: String,
    proposed: String,
    approved: String,
    note: String,
    can_approve: bool,
    can_rollback: bool,
}

/// One audit entry about the policy.
struct HistoryRow {
    at: String,
    actor: String,
    action: String,
    target: String,
}

/// One row of the live hits.
struct LiveRow {
    rule: String,
    shadow: bool,
    hits: u64,
}

#[derive(Template)]
#[template(path = "console_rules.html")]
struct RulesPage<'a> {
    exchange: &'a str,
    me: &'a str,
    csrf: &'a str,
    in_force: String,
    text: String,
    editing: String,
    versions: Vec<VersionRow>,
    live: Vec<LiveRow>,
    history: Vec<HistoryRow>,
    manage: bool,
    from: String,
    to: String,
}

/// `?edit=N`: start the editor from version N instead of the policy in force.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EditQuery {
    edit: Option<i64>,
}

/// An operator by name (see `view::named`), "(you)" after the one signed in.
fn who(id: &str, me: &str, names: &Names) -> String {
    let name = named(names, id);
    if id == me {
        format!("{name} (you)")
    } else {
        name.to_owned()
    }
}

fn row(v: PolicyVersion, op: &ConsoleOperator, names: &Names, in_force: Option<i64>) -> VersionRow {
    let me = op.actor.id();
    let manage = op.actor.allows(Permission::ManagePolicy);
    let published = v.publication.is_some();
    VersionRow {
        version: v.version,
        status: match (published, in_force == Some(v.version)) {
            (true, true) => "in force",
            (true, false) => "published",
            (false, _) => "proposed",
        },
        rollback_of: v
            .rollback_of
            .map(|r| format!("rollback to {r}"))
            .unwrap_or_default(),
        proposed: format!(
            "{} · {}",
            who(&v.proposed_by, me, names),
            v.proposed_at.to_rfc3339()
        ),
        approved: match (&v.approved_by, v.published_at) {
            (Some(by), Some(at)) => format!("{} · {}", who(by, me, names), at.to_rfc3339()),
            _ => String::new(),
        },
        note: v.note,
        can_approve: manage && !published && v.proposed_by != me,
        can_rollback: manage && published && in_force != Some(v.version),
    }
}

/// `GET /console/rules`.
pub async fn page(
    State(state): State<AppState>,
    op: ConsoleOperator,
    Query(query): Query<EditQuery>,
) -> Response {
    match render(&state, &op, query.edit).await {
        Ok(response) => response,
        Err(error) => refusal(error),
    }
}

async fn render(state: &AppState, op: &ConsoleOperator, edit: Option<i64>) -> AppResult<Response> {
    let policies = &state.app.policies;
    let in_force = policies.in_force(&op.actor).await?;
    let versions = policies.versions(&op.actor).await?;
    let names = state.app.console.operator_names(&op.actor).await?;
    let (text, editing) = match edit {
        Some(n) => (
            policies.version(&op.actor, n).await?.text,
            format!("version {n}"),
        ),
        None => (in_force.text.to_string(), "the policy in force".to_owned()),
    };
    let manage = op.actor.allows(Permission::ManagePolicy);
    let shadow: std::collections::HashSet<String> =
        portcullis_engine::Policy::parse(&in_force.text)
            .map(|p| {
                p.rules
                    .iter()
                    .filter(|r| r.shadow)
                    .map(|r| r.id.clone())
                    .collect()
            })
            .unwrap_or_default();
    let mut live: Vec<LiveRow> = (state.app.risk.stats().await.rule_hits.into_iter())
        .map(|(rule, hits)| LiveRow {
            shadow: shadow.contains(&rule),
            rule,
            hits,
        })
        .collect();
    live.sort_by(|a, b| b.hits.cmp(&a.hits).then_with(|| a.rule.cmp(&b.rule)));
    // The audit trail is shown to those who may read it (analysts and admins).
    let history = match policies.history(&op.actor).await {
        Ok(entries) => entries,
        Err(portcullis_app::AppError::Forbidden) => Vec::new(),
        Err(error) => return Err(error),
    };
    let me = op.actor.id();
    let history = (history.into_iter())
        .map(|e| HistoryRow {
            at: e.at.to_rfc3339(),
            actor: who(&e.actor, me, &names),
            action: e.action,
            target: e.target,
        })
        .collect();
    let now = state.app.clock.now();
    let page = RulesPage {
        history,
        exchange: &state.app.guard.settings().exchange_name,
        me: &op.operator.name,
        csrf: &op.csrf,
        in_force: match in_force.version {
            Some(v) => format!("version {v}"),
            None => "the configured policy (no version published yet)".to_owned(),
        },
        text,
        editing,
        versions: (versions.into_iter())
            .map(|v| row(v, op, &names, in_force.version))
            .collect(),
        live,
        manage,
        from: UnixMillis(now.as_millis() - 30 * 86_400_000).to_rfc3339(),
        to: UnixMillis(now.as_millis() + 60_000).to_rfc3339(),
    };
    Ok(page_with(StatusCode::OK, &page, CENTER_CSP))
}

/// `POST /console/api/policy/validate`: as `POST /v1/policy/validate`.
pub async fn validate(
    State(state): State<AppState>,
    ScriptOperator(op): ScriptOperator,
    ApiJson(body): ApiJson<DraftBody>,
) -> ApiResult<Json<ValidationDto>> {
    Ok(Json(validation(
        state.app.policies.validate(&op.actor, &body.text)?,
    )))
}

/// `POST /console/api/policy/backtest`: as `POST /v1/policy/backtest`.
pub async fn backtest(
    State(state): State<AppState>,
    ScriptOperator(op): ScriptOperator,
    ApiJson(body): ApiJson<BacktestBody>,
) -> ApiResult<Json<BacktestDto>> {
    crate::routes::policy::run_backtest(&state, &op.actor, body)
        .await
        .map(Json)
}

#[derive(Debug, Deserialize)]
pub struct ProposeForm {
    csrf: String,
    text: String,
    #[serde(default)]
    note: String,
}

#[derive(Debug, Deserialize)]
pub struct VersionForm {
    csrf: String,
    #[serde(default)]
    note: String,
}

csrf_forms!(ProposeForm, VersionForm);

fn back<T>(result: AppResult<T>) -> Response {
    match result {
        Ok(_) => Redirect::to("/console/rules").into_response(),
        Err(error) => refusal(error),
    }
}

/// `POST /console/rules/propose`.
pub async fn propose(
    State(state): State<AppState>,
    ConsoleForm { operator, form }: ConsoleForm<ProposeForm>,
) -> Response {
    // A textarea posts CRLF line ends; the policy is kept as typed otherwise.
    let text = form.text.replace("\r\n", "\n");
    back(
        state
            .app
            .policies
            .propose(&operator.actor, &text, &form.note)
            .await,
    )
}

/// `POST /console/rules/versions/{n}/approve`: the second operator publishes.
pub async fn approve(
    State(state): State<AppState>,
    Path(version): Path<i64>,
    ConsoleForm { operator, .. }: ConsoleForm<VersionForm>,
) -> Response {
    back(state.app.policies.approve(&operator.actor, version).await)
}

/// `POST /console/rules/versions/{n}/rollback`: proposes version N again.
pub async fn rollback(
    State(state): State<AppState>,
    Path(version): Path<i64>,
    ConsoleForm { operator, form }: ConsoleForm<VersionForm>,
) -> Response {
    back(
        (state.app.policies)
            .propose_rollback(&operator.actor, version, &form.note)
            .await,
    )
}

#[cfg(test)]
mod tests {
    use super::{Names, who};

    #[test]
    fn an_operator_is_named_and_an_id_no_operator_has_is_shown_as_is() {
        let names: Names = [("op_1".to_owned(), "ada".to_owned())].into();
        assert_eq!(who("op_1", "op_2", &names), "ada");
        assert_eq!(who("op_1", "op_1", &names), "ada (you)");
        assert_eq!(who("cli:local", "op_1", &names), "cli:local");
    }
}
