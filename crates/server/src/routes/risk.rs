//! The risk engine's edge: batch ingest of the event feed, synchronous decisions, and the stored
//! decision with the features it saw.

use crate::dto::{
    DecisionDto, IngestReportDto, LineErrorDto, LoggedDecisionDto, Page, PolicyReloadDto,
    StoredDecisionDto,
};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{JsonBytes, Operator};
use crate::routes::audit::after_seq;
use crate::routes::page_limit;
use crate::state::AppState;
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use portcullis_app::ErrorCode;

fn utf8(bytes: &[u8]) -> Result<&str, ApiError> {
    std::str::from_utf8(bytes).map_err(|e| {
        ApiError::new(
            ErrorCode::InvalidUtf8,
            format!("the body is not valid UTF-8 (byte {})", e.valid_up_to()),
        )
    })
}

/// Send a batch of events (JSON Lines, the event contract). Bad lines are reported with their
/// number and reason; every other line is stored and applied; ids seen before are ignored. An
/// empty body is refused (`invalid_body`). In a partitioned deployment (`engine_partitions`)
/// the lines are published to their partitions' subjects instead, `duplicates` counts ids the
/// stream already held, and `decisions` is empty (the owners decide; `POST /v1/decisions`
/// waits for one).
#[utoipa::path(
    post, path = "/v1/events", tag = "risk",
    request_body(content = inline(crate::dto::formats::EventLines), content_type = "application/x-ndjson", description = "One event per line"),
    responses((status = 200, body = IngestReportDto), (status = 400, description = "`invalid_body` (an empty body), `invalid_utf8`, ...", body = ErrorBody), (status = 413, body = ErrorBody)),
    security(("operator_token" = []))
)]
pub async fn ingest(
    State(state): State<AppState>,
    Operator(actor): Operator,
    body: Bytes,
) -> ApiResult<Json<IngestReportDto>> {
    // A missing body is a mistake, not an empty batch: answering 200 would tell a feeder that
    // what it meant to send was stored.
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::new(
            ErrorCode::InvalidBody,
            "the body is empty: send one event per line (JSON Lines)",
        ));
    }
    let report = state.app.risk.ingest_bytes(&actor, &body).await?;
    Ok(Json(IngestReportDto {
        accepted: report.accepted,
        duplicates: report.duplicates,
        rejected: report
            .rejected
            .into_iter()
            .map(|e| LineErrorDto {
                line: e.line,
                reason: e.reason,
            })
            .collect(),
        decisions: report
            .decisions
            .into_iter()
            .map(DecisionDto::from)
            .collect(),
    }))
}

/// Decide one event now (the contract's decision shape). Sending the same event again returns
/// the same decision. In a partitioned deployment the event is published to its partition's
/// subject and answered once the partition's owner has stored its decision.
#[utoipa::path(
    post, path = "/v1/decisions", tag = "risk",
    request_body(content = inline(crate::dto::formats::DecidingEvent), description = "One event of a deciding type"),
    responses((status = 200, body = DecisionDto), (status = 400, description = "`invalid_event`, `no_decision`", body = ErrorBody), (status = 409, description = "`event_ignored`: the event was not decided and will not be (its id is an earlier event's that was not decided; with `engine_partitions` set, also an event older than the dedup horizon)", body = ErrorBody), (status = 504, description = "`decision_timeout`: with `engine_partitions` set, the owner of the event's partition stored no decision within 10 s (the event is on the stream and will be decided)", body = ErrorBody)),
    security(("operator_token" = []))
)]
pub async fn decide(
    State(state): State<AppState>,
    Operator(actor): Operator,
    JsonBytes(body): JsonBytes,
) -> ApiResult<Json<DecisionDto>> {
    let decision = state.app.risk.decide(&actor, utf8(&body)?).await?;
    Ok(Json(decision.into()))
}

/// Stored decisions in the order of their events in the log, a page at a time (`after` the
/// last `seq` of the page before). `portcullis decisions export` reads them this way.
#[utoipa::path(
    get, path = "/v1/decisions", tag = "risk",
    params(Page),
    responses((status = 200, body = [LoggedDecisionDto]), (status = 400, description = "`invalid_query`", body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("operator_token" = []))
)]
pub async fn list(
    State(state): State<AppState>,
    Operator(actor): Operator,
    Query(page): Query<Page>,
) -> ApiResult<Json<Vec<LoggedDecisionDto>>> {
    let stored = state
        .app
        .risk
        .decisions_after(&actor, after_seq(&page)?, page_limit(page.limit))
        .await?;
    let decisions = stored
        .into_iter()
        .map(|(seq, d)| LoggedDecisionDto {
            seq,
            event_id: d.event_id,
            decision: d.decision,
            score: d.score,
            reasons: serde_json::from_str(&d.reasons).unwrap_or_default(),
        })
        .collect();
    Ok(Json(decisions))
}

/// A stored decision with its reasons and the feature values the rules saw.
#[utoipa::path(
    get, path = "/v1/decisions/{event_id}", tag = "risk",
    params(("event_id" = String, Path, description = "The decided event's id")),
    responses((status = 200, body = StoredDecisionDto), (status = 404, body = ErrorBody)),
    security(("operator_token" = []))
)]
pub async fn show(
    State(state): State<AppState>,
    Operator(actor): Operator,
    Path(event_id): Path<String>,
) -> ApiResult<Json<StoredDecisionDto>> {
    let stored = state.app.risk.decision(&actor, &event_id).await?;
    Ok(Json(StoredDecisionDto {
        event_id: stored.event_id,
        decision: stored.decision,
        score: stored.score,
        reasons: serde_json::from_str(&stored.reasons).unwrap_or_default(),
        features: serde_json::from_str(&stored.features).unwrap_or(serde_json::Value::Null),
        decided_at: stored.decided_at.to_rfc3339(),
    }))
}

/// Re-read the configured policy file and put it in force without a restart (role `admin`);
/// refused once a policy version was published (`policy_version_in_force`).
/// A bad file is refused with the rule, position and reason; the running policy stays.
#[utoipa::path(
    post, path = "/v1/policy/reload", tag = "risk",
    responses((status = 200, body = PolicyReloadDto), (status = 400, description = "`invalid_policy`", body = ErrorBody), (status = 403, body = ErrorBody), (status = 409, description = "`policy_version_in_force`", body = ErrorBody), (status = 503, description = "`stream_unavailable` (`engine_partitions`: the event stream did not take the policy; it was not reloaded)", body = ErrorBody)),
    security(("operator_token" = []))
)]
pub async fn reload_policy(
    State(state): State<AppState>,
    Operator(actor): Operator,
) -> ApiResult<Json<PolicyReloadDto>> {
    actor.require(portcullis_core::operator::Permission::ManagePolicy)?;
    let text = crate::risk_policy_text(state.risk_policy_file.as_deref())?;
    let rules = state.app.risk.replace_policy(&actor, &text).await?;
    Ok(Json(PolicyReloadDto { rules }))
}
