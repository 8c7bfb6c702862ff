//! Operators: create (token shown once), list, revoke, and the single-use link an operator
//! enrols a console passkey from. Role `admin`.

use crate::dto::{CreateOperatorBody, NewOperatorDto, OperatorDto};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiJson, Operator};
use crate::state::AppState;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use portcullis_app::ErrorCode;
use portcullis_core::operator::Role;
use serde::Serialize;
use utoipa::ToSchema;

/// Create an operator; the token is in this response only.
#[utoipa::path(
    post, path = "/v1/operators", tag = "operators",
    request_body = CreateOperatorBody,
    responses((status = 201, body = NewOperatorDto), (status = 400, description = "`invalid_role`, `invalid_name`", body = ErrorBody), (status = 403, body = ErrorBody), (status = 409, description = "`conflict`: the name is taken", body = ErrorBody)),
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
    responses((status = 200, body = OperatorDto), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, description = "`conflict`: the last live admin token is never revoked", body = ErrorBody)),
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

/// A single-use link that enrols a passkey for the analyst console.
#[derive(Debug, Serialize, ToSchema)]
pub struct EnrolmentLinkDto {
    pub operator: OperatorDto,
    /// Give it to the operator (it works once, for an hour): it opens the console's
    /// enrolment page, which registers a passkey and signs them in.
    pub url: String,
    pub expires_at: String,
}

/// Mint a single-use, expiring link that enrols a console passkey for an operator (by id or
/// name; admins and analysts only). Only the link's hash is stored.
#[utoipa::path(
    post, path = "/v1/operators/{id}/enrol-link", tag = "operators",
    params(("id" = String, Path, description = "Operator id or name")),
    responses((status = 201, body = EnrolmentLinkDto), (status = 400, description = "`invalid_request`: an integration operator", body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("operator_token" = []))
)]
pub async fn enrol_link(
    State(state): State<AppState>,
    Operator(actor): Operator,
    Path(id): Path<String>,
) -> ApiResult<(StatusCode, Json<EnrolmentLinkDto>)> {
    let issued = state.app.console.enrolment_link(&actor, &id).await?;
    let dto = EnrolmentLinkDto {
        operator: issued.operator.into(),
        url: String::from_utf8_lossy(issued.url.expose()).into_owned(),
        expires_at: issued.expires_at.to_rfc3339(),
    };
    Ok((StatusCode::CREATED, Json(dto)))
}
