//! Overrides on entities of the graph: set (`suppress` by reviewers, `force` by roles with
//! `force_links`), lift, list.

use crate::error::{ApiResult, ErrorBody};
use crate::extract::{ApiJson, Operator};
use crate::state::AppState;
use axum::Json;
use axum::extract::{Path, Query, State};
use portcullis_app::guard::NewOverride;
use portcullis_app::ports::StoredOverride;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// An override on an entity.
#[derive(Debug, Serialize, ToSchema)]
pub struct OverrideDto {
    pub id: String,
    /// `account`, `address`, `ip`, `device` or `number`.
    pub kind: String,
    /// Canonical.
    pub value: String,
    /// `suppress` or `force`.
    pub action: String,
    pub note: String,
    pub set_by: String,
    pub set_at: String,
    pub expires_at: Option<String>,
    pub lifted_by: Option<String>,
    pub lifted_at: Option<String>,
}

impl From<StoredOverride> for OverrideDto {
    fn from(o: StoredOverride) -> Self {
        Self {
            id: o.id,
            kind: o.kind,
            value: o.value,
            action: o.action,
            note: o.note,
            set_by: o.set_by,
            set_at: o.set_at.to_rfc3339(),
            expires_at: o.expires_at.map(|t| t.to_rfc3339()),
            lifted_by: o.lifted_by,
            lifted_at: o.lifted_at.map(|t| t.to_rfc3339()),
        }
    }
}

/// What to override.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OverrideBody {
    /// `suppress` (a known-good link: not propagated through, not a campaign signal) or
    /// `force` (counts as confirmed fraud; needs `force_links`, admins).
    #[schema(pattern = "^(suppress|force)$")]
    pub action: String,
    /// RFC 3339; absent: until lifted.
    #[schema(format = DateTime)]
    pub expires_at: Option<String>,
    /// Why (kept with it and in the audit trail), at most 500 characters.
    #[serde(default)]
    pub note: String,
}

/// Which overrides to lift.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct LiftQuery {
    /// `suppress` or `force`; absent: both.
    #[param(pattern = "^(suppress|force)$")]
    pub action: Option<String>,
}

/// Which overrides to list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// Also the lifted and expired ones.
    pub all: Option<bool>,
}

/// Puts an override on an entity the graph holds; one of the same action in force is lifted.
#[utoipa::path(
    post, path = "/v1/graph/{kind}/{value}/override", tag = "network",
    params(
        ("kind" = inline(crate::dto::formats::EntityKindName), Path, description = "`account`, `address`, `ip`, `device` or `number`"),
        ("value" = String, Path, description = "The entity's value (canonicalised)"),
    ),
    request_body = OverrideBody,
    responses((status = 201, body = OverrideDto), (status = 400, description = "`invalid_entity`, `invalid_override`, `invalid_expiry`, `invalid_timestamp`", body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, description = "`unknown_entity`", body = ErrorBody), (status = 503, description = "`stream_unavailable` (`engine_partitions`: the event stream did not take the change; nothing was stored), `partition_view_unavailable` (`engine_partitions`: this process works no partition now, so it cannot check the entity; nothing was stored)", body = ErrorBody)),
    security(("operator_token" = []))
)]
pub async fn set(
    State(state): State<AppState>,
    Operator(actor): Operator,
    Path((kind, value)): Path<(String, String)>,
    ApiJson(body): ApiJson<OverrideBody>,
) -> ApiResult<(axum::http::StatusCode, Json<OverrideDto>)> {
    let new = NewOverride {
        action: body.action,
        expires_at: super::parse_time("expires_at", body.expires_at.as_deref())?,
        note: body.note,
    };
    let stored = (state.app.guard)
        .set_override(&actor, &kind, &value, new)
        .await?;
    Ok((axum::http::StatusCode::CREATED, Json(stored.into())))
}

/// Lifts the overrides in force on an entity.
#[utoipa::path(
    delete, path = "/v1/graph/{kind}/{value}/override", tag = "network",
    params(
        ("kind" = inline(crate::dto::formats::EntityKindName), Path, description = "`account`, `address`, `ip`, `device` or `number`"),
        ("value" = String, Path, description = "The entity's value (canonicalised)"),
        LiftQuery,
    ),
    responses((status = 200, body = Vec<OverrideDto>), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, description = "`not_found`: none in force", body = ErrorBody), (status = 409, body = ErrorBody), (status = 503, description = "`stream_unavailable` (`engine_partitions`: the event stream did not take the change; nothing was stored)", body = ErrorBody)),
    security(("operator_token" = []))
)]
pub async fn lift(
    State(state): State<AppState>,
    Operator(actor): Operator,
    Path((kind, value)): Path<(String, String)>,
    Query(query): Query<LiftQuery>,
) -> ApiResult<Json<Vec<OverrideDto>>> {
    let lifted = (state.app.guard)
        .lift_override(&actor, &kind, &value, query.action.as_deref())
        .await?;
    Ok(Json(lifted.into_iter().map(OverrideDto::from).collect()))
}

/// The overrides in force (or all, with `all=true`), oldest first.
#[utoipa::path(
    get, path = "/v1/overrides", tag = "network", params(ListQuery),
    responses((status = 200, body = Vec<OverrideDto>), (status = 403, body = ErrorBody)),
    security(("operator_token" = []))
)]
pub async fn list(
    State(state): State<AppState>,
    Operator(actor): Operator,
    Query(query): Query<ListQuery>,
) -> ApiResult<Json<Vec<OverrideDto>>> {
    let rows = (state.app.guard)
        .overrides(&actor, query.all.unwrap_or(false))
        .await?;
    Ok(Json(rows.into_iter().map(OverrideDto::from).collect()))
}
