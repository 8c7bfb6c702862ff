//! The notification outbox: what was announced to whom, what waits, what was given up on.

use super::page_limit;
use crate::dto::{OutboxEntryDto, OutboxQuery};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::Operator;
use crate::state::AppState;
use axum::Json;
use axum::extract::{Query, State};
use portcullis_app::ErrorCode;
use portcullis_app::ports::{OutboxFilter, OutboxStatus};

/// Notifications, newest first, optionally for one account or in one state.
#[utoipa::path(
    get, path = "/v1/outbox", tag = "audit",
    params(OutboxQuery),
    responses((status = 200, body = [OutboxEntryDto]), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("operator_token" = []))
)]
pub async fn list(
    State(state): State<AppState>,
    Operator(actor): Operator,
    Query(query): Query<OutboxQuery>,
) -> ApiResult<Json<Vec<OutboxEntryDto>>> {
    let status = query
        .status
        .as_deref()
        .map(|text| {
            OutboxStatus::parse(text).ok_or_else(|| {
                ApiError::new(
                    ErrorCode::InvalidQuery,
                    "`status` must be pending, delivered or dead",
                )
            })
        })
        .transpose()?;
    let filter = OutboxFilter {
        account: query.account,
        status,
    };
    let entries = state
        .app
        .outbox
        .list(&actor, &filter, page_limit(query.limit))
        .await?;
    Ok(Json(
        entries.into_iter().map(OutboxEntryDto::from).collect(),
    ))
}
