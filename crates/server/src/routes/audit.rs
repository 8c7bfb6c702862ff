//! The audit trail (entries, verification, signed heads), the internal event log, and secret
//! re-wrapping.

use super::page_limit;
use crate::dto::{AuditEntryDto, AuditHeadDto, ChainReportDto, EventDto, Page, RewrapDto};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiJson, Operator};
use crate::state::AppState;
use axum::Json;
use axum::extract::{Query, State};
use portcullis_app::ErrorCode;
use portcullis_app::audit::ChainReport;
use portcullis_core::audit::SignedHead;

pub(crate) fn after_seq(page: &Page) -> Result<i64, ApiError> {
    page.after
        .as_deref()
        .map_or(Ok(0), str::parse)
        .map_err(|_| ApiError::new(ErrorCode::InvalidQuery, "`after` must be a sequence number"))
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

/// Check the whole audit chain and name the first entry that was edited, removed, reordered
/// or sealed without the audit key. Not bound by the request timeout: it reads the whole chain.
#[utoipa::path(
    get, path = "/v1/audit/verify", tag = "audit",
    responses((status = 200, body = ChainReportDto), (status = 403, body = ErrorBody)),
    security(("operator_token" = []))
)]
pub async fn verify(
    State(state): State<AppState>,
    Operator(actor): Operator,
) -> ApiResult<Json<ChainReportDto>> {
    let report = state.app.audit.verify(&actor, None).await?;
    Ok(Json(report_dto(report)))
}

/// Check the whole audit chain, and that it still extends a head exported earlier (the body,
/// as `GET /v1/audit/head` returned it): a chain cut below that head, or rewritten at it, is
/// broken even if the database's own head was moved back. Not bound by the request timeout.
#[utoipa::path(
    post, path = "/v1/audit/verify", tag = "audit",
    request_body = AuditHeadDto,
    responses(
        (status = 200, body = ChainReportDto),
        (status = 400, description = "`bad_audit_head`: the head file is malformed, signed by an unknown key, or its signature does not verify", body = ErrorBody),
        (status = 403, body = ErrorBody)
    ),
    security(("operator_token" = []))
)]
pub async fn verify_since(
    State(state): State<AppState>,
    Operator(actor): Operator,
    ApiJson(body): ApiJson<serde_json::Value>,
) -> ApiResult<Json<ChainReportDto>> {
    let head = SignedHead::parse(&body.to_string())
        .map_err(|e| ApiError::new(ErrorCode::BadAuditHead, e.to_string()))?;
    let report = state.app.audit.verify(&actor, Some(&head)).await?;
    Ok(Json(report_dto(report)))
}

fn report_dto(report: ChainReport) -> ChainReportDto {
    match report {
        ChainReport::Intact(summary) => ChainReportDto {
            intact: true,
            entries: Some(summary.entries),
            legacy_entries: Some(summary.legacy),
            first_bad_seq: None,
            problem: None,
            message: if summary.legacy > 0 {
                format!(
                    "{} entries ({} legacy, unkeyed), chain intact",
                    summary.entries, summary.legacy
                )
            } else {
                format!("{} entries, chain intact", summary.entries)
            },
        },
        ChainReport::Broken(found) => ChainReportDto {
            intact: false,
            entries: None,
            legacy_entries: None,
            first_bad_seq: Some(found.seq()),
            problem: Some(found.name().to_owned()),
            message: found.to_string(),
        },
    }
}

/// The chain's current head, signed with the audit head key (Ed25519), to keep outside the
/// database and check later chains against (`POST /v1/audit/verify`).
#[utoipa::path(
    get, path = "/v1/audit/head", tag = "audit",
    responses(
        (status = 200, body = AuditHeadDto),
        (status = 403, body = ErrorBody),
        (status = 409, description = "The chain is empty, or its head entry does not verify", body = ErrorBody)
    ),
    security(("operator_token" = []))
)]
pub async fn head(
    State(state): State<AppState>,
    Operator(actor): Operator,
) -> ApiResult<Json<AuditHeadDto>> {
    let head = state.app.audit.export_head(&actor).await?;
    Ok(Json(head.into()))
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

/// Re-seal every HMAC secret, anti-phishing code and queued notice under the active master key
/// (role `admin`).
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
        resealed_at_rest: report.resealed_at_rest,
        active_master_key: report.active_master_key,
    }))
}
