//! Operators: create (token shown once), list, revoke. Role `admin`.

use crate::dto::{CreateOperatorBody, NewOperatorDto, OperatorDto};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiJson, Operator};
use crate::state::AppState;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use portcullis_app::ErrorCode;
use portcullis_core::operator::Role;

/// Create an operator; the token is in this response only.
#[utoipa::path(
    post, path = "/v1/operators", tag = "operators",
    request_body = CreateOperatorBody,
    responses((status = 201, body = NewOperatorDto), (status = 400, description = "`invalid_role`, `invalid_name`", body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("operator_token" = []))
)]
pub async fn create(
    State(state): State<AppState>,
    Operator(actor): Operator,
    ApiJson(body): ApiJson<CreateOperatorBody>,
) -> ApiResult<(StatusCode, Json<NewOperatorDto>)> {
    let role: Role = body
        .role
        .parse()
        .map_err(|e: portcullis_core::operator::RoleError| {
            ApiError::new(ErrorCode::InvalidRole, e.to_string())
        })?;
    let created = state.app.operators.create(&actor, &body.name, role).await?;
    let dto = NewOperatorDto {
        token: String::from_utf8_lossy(created.token.expose()).into_owned(),
        operator: created.operator.into(),
    };
    Ok((StatusCode::CREATED, Json(dto)))
}

/// List operators.
#[utoipa::path(
    get, path = "/v1/operators", tag = "operators",
    responses((status = 200, body = [OperatorDto]), (status = 403, body = ErrorBody)),
    security(("operator_token" = []))
)]
pub async fn list(
    State(state): State<AppState>,
    Operator(actor): Operator,
) -> ApiResult<Json<Vec<OperatorDto>>> {
    let operators = state.app.operators.list(&actor).await?;
    Ok(Json(operators.into_iter().map(OperatorDto::from).collect()))
}

/// Revoke an operator's token, effective immediately.
#[utoipa::path(
    post, path = "/v1/operators/{id}/revoke", tag = "operators",
    params(("id" = String, Path, description = "Operator id")),
    responses((status = 200, body = OperatorDto), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("operator_token" = []))
)]
pub async fn revoke(
    State(state): State<AppState>,
    Operator(actor): Operator,
    Path(id): Path<String>,
) -> ApiResult<Json<OperatorDto>> {
    let operator = state.app.operators.revoke(&actor, &id).await?;
    state.forget_tokens();
    Ok(Json(operator.into()))
}
