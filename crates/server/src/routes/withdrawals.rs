//! Held withdrawals over HTTP: their review (`GET`), the release that takes two different
//! operators and the cancel that takes one. The exchange learns the outcome from the
//! `withdrawal.released` / `withdrawal.cancelled` webhook, or by reading the review.

use crate::error::{ApiResult, ErrorBody};
use crate::extract::Operator;
use crate::state::AppState;
use axum::Json;
use axum::extract::{Path, State};
use portcullis_app::ports::HeldWithdrawal;
use portcullis_core::guard::{ReviewState, WithdrawalReview};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Where the review of a held withdrawal stands.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct WithdrawalReviewDto {
    /// The id of the `withdrawal.requested` event the engine held.
    pub event_id: String,
    pub account: String,
    /// `held` (nobody acted yet), `approved` (one operator approved the release; a second
    /// completes it), `released` (the exchange may send it) or `cancelled` (it must not).
    pub state: String,
    pub approved_by: Option<String>,
    /// Who released or cancelled it.
    pub resolved_by: Option<String>,
    /// When the review last moved (RFC 3339); absent while nobody acted.
    pub updated_at: Option<String>,
}

impl WithdrawalReviewDto {
    fn of_review(review: WithdrawalReview) -> Self {
        Self {
            event_id: review.event_id,
            account: review.account,
            // An approval voided by new evidence leaves the review where nobody acted yet.
            state: if review.state == ReviewState::Approved && review.approved_by.is_none() {
                "held".to_owned()
            } else {
                review.state.as_str().to_owned()
            },
            approved_by: review.approved_by,
            resolved_by: review.resolved_by,
            updated_at: Some(review.updated_at.to_rfc3339()),
        }
    }

    fn of_hold(held: HeldWithdrawal) -> Self {
        match held.review {
            Some(review) => Self::of_review(review),
            None => Self {
                event_id: held.event.event.id,
                account: held.event.event.account.unwrap_or_default(),
                state: "held".to_owned(),
                approved_by: None,
                resolved_by: None,
                updated_at: None,
            },
        }
    }
}

/// The review of a withdrawal the risk engine held.
#[utoipa::path(
    get, path = "/v1/withdrawals/{event_id}/review", tag = "withdrawals",
    params(("event_id" = String, Path, description = "The id of the held `withdrawal.requested` event")),
    responses((status = 200, body = WithdrawalReviewDto), (status = 403, body = ErrorBody), (status = 404, description = "No withdrawal the engine held has that event id", body = ErrorBody)),
    security(("operator_token" = []))
)]
pub async fn review(
    State(state): State<AppState>,
    Operator(actor): Operator,
    Path(event_id): Path<String>,
) -> ApiResult<Json<WithdrawalReviewDto>> {
    let held = state.app.guard.held_withdrawal(&actor, &event_id).await?;
    Ok(Json(WithdrawalReviewDto::of_hold(held)))
}

/// Release a held withdrawal. The engine made the hold, so it takes two different operators:
/// the first call approves (`approved`), a second operator's call releases (`released`).
#[utoipa::path(
    post, path = "/v1/withdrawals/{event_id}/release", tag = "withdrawals",
    params(("event_id" = String, Path, description = "The id of the held `withdrawal.requested` event")),
    responses((status = 200, body = WithdrawalReviewDto), (status = 403, description = "`forbidden`, `second_operator_required`", body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, description = "The review is over (released or cancelled)", body = ErrorBody)),
    security(("operator_token" = []))
)]
pub async fn release(
    State(state): State<AppState>,
    Operator(actor): Operator,
    Path(event_id): Path<String>,
) -> ApiResult<Json<WithdrawalReviewDto>> {
    let review = state
        .app
        .guard
        .release_withdrawal(&actor, &event_id)
        .await?;
    Ok(Json(WithdrawalReviewDto::of_review(review)))
}

/// Cancel a held withdrawal: the exchange must not send it. One operator is enough, at any
/// point before the review is over.
#[utoipa::path(
    post, path = "/v1/withdrawals/{event_id}/cancel", tag = "withdrawals",
    params(("event_id" = String, Path, description = "The id of the held `withdrawal.requested` event")),
    responses((status = 200, body = WithdrawalReviewDto), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, description = "The review is over (released or cancelled)", body = ErrorBody)),
    security(("operator_token" = []))
)]
pub async fn cancel(
    State(state): State<AppState>,
    Operator(actor): Operator,
    Path(event_id): Path<String>,
) -> ApiResult<Json<WithdrawalReviewDto>> {
    let review = state.app.guard.cancel_withdrawal(&actor, &event_id).await?;
    Ok(Json(WithdrawalReviewDto::of_review(review)))
}
