//! The audit trail, the internal event log, and secret re-wrapping.

use super::page_limit;
use crate::dto::{AuditEntryDto, ChainReportDto, EventDto, Page, RewrapDto};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::Operator;
use crate::state::AppState;
use axum::Json;
use axum::extract::{Query, State};
use portcullis_app::audit::ChainReport;
use portcullis_core::audit::ChainBreak;

fn after_seq(page: &Page) -> Result<i64, ApiError> {
    page.after
        .as_deref()
        .map_or(Ok(0), str::parse)
        .map_err(|_| ApiError::bad_request("invalid_query", "`after` must be a sequence number"))
}

/// Audit entries in order.
#[utoipa::path(
    get, path = "/v1/audit", tag = "audit",
    params(Page),
    responses((status = 200, body = [AuditEntryDto]), (status = 403, body = ErrorBody)),
    security(("operator_token" = []))
)]
pub async fn list(
    State(state): State<AppState>,
    Operator(actor): Operator,
    Query(page): Query<Page>,
) -> ApiResult<Json<Vec<AuditEntryDto>>> {
    let entries = state
        .app
        .audit
        .entries(&actor, after_seq(&page)?, page_limit(page.limit))
        .await?;
    Ok(Json(entries.into_iter().map(AuditEntryDto::from).collect()))
}

/// Check the whole audit chain and name the first entry that was edited, removed or reordered.
#[utoipa::path(
    get, path = "/v1/audit/verify", tag = "audit",
    responses((status = 200, body = ChainReportDto), (status = 403, body = ErrorBody)),
    security(("operator_token" = []))
)]
pub async fn verify(
    State(state): State<AppState>,
    Operator(actor): Operator,
) -> ApiResult<Json<ChainReportDto>> {
    let report = match state.app.audit.verify(&actor).await? {
        ChainReport::Intact { entries } => ChainReportDto {
            intact: true,
            entries: Some(entries),
            first_bad_seq: None,
            problem: None,
            message: format!("{entries} entries, chain intact"),
        },
        ChainReport::Broken(found) => ChainReportDto {
            intact: false,
            entries: None,
            first_bad_seq: Some(found.seq()),
            problem: Some(problem_name(&found).to_owned()),
            message: found.to_string(),
        },
    };
    Ok(Json(report))
}

fn problem_name(found: &ChainBreak) -> &'static str {
    match found {
        ChainBreak::Edited { .. } => "edited",
        ChainBreak::Removed { .. } => "removed",
        ChainBreak::Reordered { .. } => "reordered",
        ChainBreak::Truncated { .. } => "truncated",
        ChainBreak::HeadMismatch { .. } => "head_mismatch",
    }
}

/// The internal event log (key-authority events in the event contract's format).
#[utoipa::path(
    get, path = "/v1/events", tag = "events",
    params(Page),
    responses((status = 200, body = [EventDto]), (status = 403, body = ErrorBody)),
    security(("operator_token" = []))
)]
pub async fn events(
    State(state): State<AppState>,
    Operator(actor): Operator,
    Query(page): Query<Page>,
) -> ApiResult<Json<Vec<EventDto>>> {
    let stored = state
        .app
        .audit
        .events(&actor, after_seq(&page)?, page_limit(page.limit))
        .await?;
    let events = stored
        .into_iter()
        .map(|e| EventDto {
            seq: e.seq,
            event: serde_json::from_str(&e.event.body).unwrap_or(serde_json::Value::Null),
        })
        .collect();
    Ok(Json(events))
}

/// Re-seal every HMAC secret under the active master key (role `admin`).
#[utoipa::path(
    post, path = "/v1/secrets/rewrap", tag = "keys",
    responses((status = 200, body = RewrapDto), (status = 403, body = ErrorBody)),
    security(("operator_token" = []))
)]
pub async fn rewrap(
    State(state): State<AppState>,
    Operator(actor): Operator,
) -> ApiResult<Json<RewrapDto>> {
    let report = state
        .app
        .keys
        .rewrap_secrets(&actor, state.app.clock.as_ref())
        .await?;
    Ok(Json(RewrapDto {
        resealed: report.resealed,
        active_master_key: report.active_master_key,
    }))
}
