//! The risk policy's versions under maker-checker (propose, approve by a second operator,
//! roll back), the policy in force, validation of a draft as it is typed, and backtests of a
//! draft over the stored event history.

use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiJson, Operator};
use crate::state::AppState;
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use portcullis_app::ErrorCode;
use portcullis_app::policy::BacktestRange;
use portcullis_app::ports::PolicyVersion;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// A version of the risk policy.
#[derive(Debug, Serialize, ToSchema)]
pub struct PolicyVersionDto {
    pub version: i64,
    /// `proposed` (waiting for a second operator) or `published`.
    pub status: &'static str,
    pub note: String,
    /// The earlier version this one proposes again.
    pub rollback_of: Option<i64>,
    pub proposed_by: String,
    pub proposed_at: String,
    pub approved_by: Option<String>,
    pub published_at: Option<String>,
    /// The order of publication; the highest is in force.
    pub publication: Option<i64>,
    /// The policy file.
    pub text: String,
}

impl From<PolicyVersion> for PolicyVersionDto {
    fn from(v: PolicyVersion) -> Self {
        Self {
            version: v.version,
            status: if v.publication.is_some() {
                "published"
            } else {
                "proposed"
            },
            note: v.note,
            rollback_of: v.rollback_of,
            proposed_by: v.proposed_by,
            proposed_at: v.proposed_at.to_rfc3339(),
            approved_by: v.approved_by,
            published_at: v.published_at.map(|t| t.to_rfc3339()),
            publication: v.publication,
            text: v.text,
        }
    }
}

/// The policy the engine runs.
#[derive(Debug, Serialize, ToSchema)]
pub struct InForceDto {
    /// The published version in force; absent: the configured policy (nothing published).
    pub version: Option<i64>,
    pub publication: i64,
    /// The policy file (for the configured policy, written back from what was loaded).
    pub text: String,
}

/// A draft policy.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DraftBody {
    pub text: String,
    /// Why (kept with the version and in the audit trail), at most 500 characters.
    #[serde(default)]
    pub note: String,
}

/// Where a draft fails.
#[derive(Debug, Serialize, ToSchema)]
pub struct PolicyProblemDto {
    /// The rule at fault, or `policy` for the file as a whole.
    pub rule: String,
    /// Line and column inside the rule's `when`, when known.
    pub line: Option<isize>,
    pub column: Option<isize>,
    pub reason: String,
    /// All of it in one sentence.
    pub message: String,
}

/// Whether a draft loads.
#[derive(Debug, Serialize, ToSchema)]
pub struct ValidationDto {
    pub valid: bool,
    pub rules: usize,
    pub shadow_rules: usize,
    pub error: Option<PolicyProblemDto>,
}

/// A rollback: which published version to propose again.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RollbackBody {
    #[serde(default)]
    pub note: String,
}

/// A backtest: the draft and the events to replay (`from <= ts < to`).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BacktestBody {
    /// The candidate policy file (saved or not).
    pub text: String,
    /// RFC 3339.
    #[schema(format = DateTime)]
    pub from: String,
    /// RFC 3339.
    #[schema(format = DateTime)]
    pub to: String,
    /// The most events to replay, 1 to 1,000,000 (default 200,000); more in the range is
    /// `backtest_too_large`.
    #[schema(minimum = 1, maximum = 1_000_000)]
    #[serde(default, deserialize_with = "crate::dto::whole::optional")]
    pub max_events: Option<u64>,
}

/// The range of the rule statistics.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct StatsQuery {
    /// RFC 3339.
    #[param(format = DateTime)]
    pub from: String,
    /// RFC 3339.
    #[param(format = DateTime)]
    pub to: String,
    /// The most events to count, 1 to 1,000,000 (default 200,000).
    #[param(minimum = 1, maximum = 1_000_000)]
    pub max_events: Option<u64>,
}

/// A backtest's report: `before` (the policy in force) and `after` (the candidate), each with
/// `decided`, `held`, `blocked`, `scam_withdrawals`, `scam_usd`, `scam_usd_stopped`,
/// `legit_withdrawals`, `legit_withdrawals_held`, `legit_withdrawals_blocked` and `rules` (per
/// rule: `rule`, `shadow`, `hits`, `held_or_blocked`, `confirmed`, `scam_usd_stopped`,
/// `legit_withdrawals_stopped`); `events`, `decided`, `confirmed_accounts`, `changed` and
/// `examples` (`event_id`, `account`, `event_type`, `ts`, `amount_usd`, `scam`, `before`,
/// `before_reasons`, `after`, `after_reasons`).
#[derive(Debug, Serialize, ToSchema)]
pub struct BacktestDto {
    /// The version in force compared with; absent: the configured policy.
    pub in_force_version: Option<i64>,
    #[schema(value_type = Object)]
    pub report: portcullis_engine::BacktestReport,
}

/// Per-rule statistics of the policy in force over a range (replayed), and the live engine's
/// hits per rule since this process started.
#[derive(Debug, Serialize, ToSchema)]
pub struct RuleStatsDto {
    pub in_force_version: Option<i64>,
    /// The in-force side of a backtest (`SideFigures`: totals and `rules`).
    #[schema(value_type = Object)]
    pub replayed: portcullis_engine::SideFigures,
    pub events: u64,
    pub confirmed_accounts: u64,
    /// Rule id to hits (shadow rules included) since this process started.
    #[schema(value_type = Object)]
    pub live_hits: std::collections::BTreeMap<String, u64>,
}

fn time(field: &'static str, text: &str) -> Result<portcullis_core::time::UnixMillis, ApiError> {
    super::parse_time(field, Some(text))?
        .ok_or_else(|| ApiError::new(ErrorCode::InvalidTimestamp, format!("`{field}` is missing")))
}

/// The policy in force.
#[utoipa::path(
    get, path = "/v1/policy", tag = "risk",
    responses((status = 200, body = InForceDto), (status = 403, body = ErrorBody)),
    security(("operator_token" = []))
)]
pub async fn in_force(
    State(state): State<AppState>,
    Operator(actor): Operator,
) -> ApiResult<Json<InForceDto>> {
    let in_force = state.app.policies.in_force(&actor).await?;
    Ok(Json(InForceDto {
        version: in_force.version,
        publication: in_force.publication,
        text: in_force.text.to_string(),
    }))
}

/// Checks a draft as a proposal would be checked (for an editor that validates as you type).
/// A draft that does not load is `valid: false` with the rule, position and reason.
#[utoipa::path(
    post, path = "/v1/policy/validate", tag = "risk", request_body = DraftBody,
    responses((status = 200, body = ValidationDto), (status = 403, body = ErrorBody)),
    security(("operator_token" = []))
)]
pub async fn validate(
    State(state): State<AppState>,
    Operator(actor): Operator,
    ApiJson(body): ApiJson<DraftBody>,
) -> ApiResult<Json<ValidationDto>> {
    Ok(Json(validation(
        state.app.policies.validate(&actor, &body.text)?,
    )))
}

/// The answer of a validation (also the console's).
pub fn validation(
    checked: Result<portcullis_app::policy::PolicySummary, portcullis_engine::PolicyError>,
) -> ValidationDto {
    match checked {
        Ok(summary) => ValidationDto {
            valid: true,
            rules: summary.rules,
            shadow_rules: summary.shadow_rules,
            error: None,
        },
        Err(error) => ValidationDto {
            valid: false,
            rules: 0,
            shadow_rules: 0,
            error: Some(PolicyProblemDto {
                message: error.to_string(),
                line: error.position.map(|(line, _)| line),
                column: error.position.map(|(_, column)| column),
                rule: error.rule,
                reason: error.reason,
            }),
        },
    }
}

/// The policy's versions, newest first (at most 200).
#[utoipa::path(
    get, path = "/v1/policy/versions", tag = "risk",
    responses((status = 200, body = Vec<PolicyVersionDto>), (status = 403, body = ErrorBody)),
    security(("operator_token" = []))
)]
pub async fn versions(
    State(state): State<AppState>,
    Operator(actor): Operator,
) -> ApiResult<Json<Vec<PolicyVersionDto>>> {
    let versions = state.app.policies.versions(&actor).await?;
    Ok(Json(
        versions.into_iter().map(PolicyVersionDto::from).collect(),
    ))
}

/// One version.
#[utoipa::path(
    get, path = "/v1/policy/versions/{version}", tag = "risk",
    params(("version" = i64, Path, description = "The version number")),
    responses((status = 200, body = PolicyVersionDto), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("operator_token" = []))
)]
pub async fn version(
    State(state): State<AppState>,
    Operator(actor): Operator,
    Path(version): Path<i64>,
) -> ApiResult<Json<PolicyVersionDto>> {
    Ok(Json(
        state.app.policies.version(&actor, version).await?.into(),
    ))
}

/// Proposes a draft as a new version (`manage_policy`, admins). Not in force until a second
/// operator approves it.
#[utoipa::path(
    post, path = "/v1/policy/versions", tag = "risk", request_body = DraftBody,
    responses((status = 201, body = PolicyVersionDto), (status = 400, description = "`invalid_policy`, `invalid_note`", body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("operator_token" = []))
)]
pub async fn propose(
    State(state): State<AppState>,
    Operator(actor): Operator,
    ApiJson(body): ApiJson<DraftBody>,
) -> ApiResult<(StatusCode, Json<PolicyVersionDto>)> {
    let version = state
        .app
        .policies
        .propose(&actor, &body.text, &body.note)
        .await?;
    Ok((StatusCode::CREATED, Json(version.into())))
}

/// Approves and publishes a proposed version: it is in force at once (other processes on the
/// same database at their next refresh). The proposer cannot approve their own version.
#[utoipa::path(
    post, path = "/v1/policy/versions/{version}/approve", tag = "risk",
    params(("version" = i64, Path, description = "The version number")),
    responses((status = 200, body = PolicyVersionDto), (status = 400, description = "`invalid_policy`", body = ErrorBody), (status = 403, description = "`policy_self_approval`, `forbidden`", body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, description = "`policy_published`, `conflict`", body = ErrorBody), (status = 503, description = "`stream_unavailable` (`engine_partitions`: published, but the event stream did not take it yet; every node's refresh pass puts it there)", body = ErrorBody)),
    security(("operator_token" = []))
)]
pub async fn approve(
    State(state): State<AppState>,
    Operator(actor): Operator,
    Path(version): Path<i64>,
) -> ApiResult<Json<PolicyVersionDto>> {
    Ok(Json(
        state.app.policies.approve(&actor, version).await?.into(),
    ))
}

/// Proposes an earlier published version again (a rollback); published when a second
/// operator approves the new version.
#[utoipa::path(
    post, path = "/v1/policy/versions/{version}/rollback", tag = "risk",
    params(("version" = i64, Path, description = "The earlier published version")),
    request_body = RollbackBody,
    responses((status = 201, body = PolicyVersionDto), (status = 400, description = "`invalid_policy` (never published), `invalid_note`", body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, description = "`conflict`: the version in force", body = ErrorBody)),
    security(("operator_token" = []))
)]
pub async fn rollback(
    State(state): State<AppState>,
    Operator(actor): Operator,
    Path(version): Path<i64>,
    ApiJson(body): ApiJson<RollbackBody>,
) -> ApiResult<(StatusCode, Json<PolicyVersionDto>)> {
    let proposed = (state.app.policies)
        .propose_rollback(&actor, version, &body.note)
        .await?;
    Ok((StatusCode::CREATED, Json(proposed.into())))
}

/// Replays the stored events of a time range through the policy in force and the draft, and
/// reports both side by side with the decisions that change. One at a time per process.
#[utoipa::path(
    post, path = "/v1/policy/backtest", tag = "risk", request_body = BacktestBody,
    responses((status = 200, body = BacktestDto), (status = 400, description = "`invalid_policy`, `invalid_query`, `invalid_timestamp`, `backtest_too_large`", body = ErrorBody), (status = 403, body = ErrorBody), (status = 409, description = "`backtest_busy`", body = ErrorBody)),
    security(("operator_token" = []))
)]
pub async fn backtest(
    State(state): State<AppState>,
    Operator(actor): Operator,
    ApiJson(body): ApiJson<BacktestBody>,
) -> ApiResult<Json<BacktestDto>> {
    run_backtest(&state, &actor, body).await.map(Json)
}

/// A backtest as asked (also the console's).
pub async fn run_backtest(
    state: &AppState,
    actor: &portcullis_app::Actor,
    body: BacktestBody,
) -> ApiResult<BacktestDto> {
    let range = BacktestRange {
        from: time("from", &body.from)?,
        to: time("to", &body.to)?,
        max_events: body.max_events,
    };
    let outcome = state
        .app
        .policies
        .backtest(actor, &body.text, range)
        .await?;
    Ok(BacktestDto {
        in_force_version: outcome.in_force_version,
        report: outcome.report,
    })
}

/// Per-rule statistics of the policy in force: the range replayed (hits, shadow rules
/// included, decisions held or blocked, hits on accounts later confirmed as fraud), and the
/// live engine's hits since this process started.
#[utoipa::path(
    get, path = "/v1/policy/stats", tag = "risk", params(StatsQuery),
    responses((status = 200, body = RuleStatsDto), (status = 400, description = "`invalid_query`, `invalid_timestamp`, `backtest_too_large`", body = ErrorBody), (status = 403, body = ErrorBody), (status = 409, description = "`backtest_busy`", body = ErrorBody)),
    security(("operator_token" = []))
)]
pub async fn stats(
    State(state): State<AppState>,
    Operator(actor): Operator,
    Query(query): Query<StatsQuery>,
) -> ApiResult<Json<RuleStatsDto>> {
    let range = BacktestRange {
        from: time("from", &query.from)?,
        to: time("to", &query.to)?,
        max_events: query.max_events,
    };
    let outcome = state.app.policies.rule_stats(&actor, range).await?;
    let live = state.app.risk.stats().await.rule_hits.into_iter().collect();
    Ok(Json(RuleStatsDto {
        in_force_version: outcome.in_force_version,
        events: outcome.report.events,
        confirmed_accounts: outcome.report.confirmed_accounts,
        replayed: outcome.report.before,
        live_hits: live,
    }))
}
