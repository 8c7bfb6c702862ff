//! The entity graph's edge: campaign alerts (list, read, confirm) and the graph around one
//! entity, for analysts and the console (roles `analyst` and `admin`).

use crate::error::{ApiResult, ErrorBody};
use crate::extract::{ApiJson, Operator};
use crate::state::AppState;
use axum::Json;
use axum::extract::{Path, Query, State};
use portcullis_app::ports::StoredAlert;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// A campaign alert with its evidence.
#[derive(Debug, Serialize, ToSchema)]
pub struct AlertDto {
    pub id: String,
    /// `number_campaign`, `address_campaign`, `allowlisted_ip_campaign` or `device_campaign`.
    pub kind: String,
    /// `address`, `ip`, `device` or `number`.
    pub entity_kind: String,
    pub value: String,
    pub opened_at: String,
    pub updated_at: String,
    /// Accounts linked to it, a household (accounts sharing a long-used device or IP) once.
    pub unrelated_accounts: i64,
    /// Each account with the event that linked it and when (`ts`: milliseconds since the epoch).
    #[schema(value_type = Vec<Object>)]
    pub evidence: serde_json::Value,
    pub confirmed_by: Option<String>,
    pub confirmed_at: Option<String>,
}

impl From<StoredAlert> for AlertDto {
    fn from(a: StoredAlert) -> Self {
        Self {
            id: a.id,
            kind: a.kind,
            entity_kind: a.entity_kind,
            value: a.value,
            opened_at: a.opened_at.to_rfc3339(),
            updated_at: a.updated_at.to_rfc3339(),
            unrelated_accounts: a.unrelated_accounts,
            evidence: serde_json::from_str(&a.evidence).unwrap_or_default(),
            confirmed_by: a.confirmed_by,
            confirmed_at: a.confirmed_at.map(|t| t.to_rfc3339()),
        }
    }
}

/// Paging of alerts, latest update first.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AlertPage {
    /// Alerts updated before this time (RFC 3339): the last `updated_at` of the previous page.
    #[param(format = DateTime)]
    pub before: Option<String>,
    /// At most this many (default 100, at most 1000).
    pub limit: Option<u32>,
}

/// An operator's confirmation.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConfirmBody {
    /// Why (kept in the audit trail).
    #[serde(default)]
    pub note: String,
}

/// How far a graph view reaches.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct GraphQuery {
    /// Hops from the entity, 0 to 3 (default 2).
    #[param(minimum = 0, maximum = 3)]
    pub hops: Option<u8>,
}

/// Campaign alerts, latest update first.
#[utoipa::path(
    get, path = "/v1/alerts", tag = "network", params(AlertPage),
    responses((status = 200, body = Vec<AlertDto>), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("operator_token" = []))
)]
pub async fn list(
    State(state): State<AppState>,
    Operator(actor): Operator,
    Query(page): Query<AlertPage>,
) -> ApiResult<Json<Vec<AlertDto>>> {
    let before = super::parse_time("before", page.before.as_deref())?;
    let alerts = (state.app.guard)
        .alerts(&actor, before, super::page_limit(page.limit))
        .await?;
    Ok(Json(alerts.into_iter().map(AlertDto::from).collect()))
}

/// One campaign alert with its evidence.
#[utoipa::path(
    get, path = "/v1/alerts/{id}", tag = "network",
    params(("id" = String, Path, description = "The alert's id")),
    responses((status = 200, body = AlertDto), (status = 403, body = ErrorBody), (status = 404, description = "`unknown_alert`", body = ErrorBody)),
    security(("operator_token" = []))
)]
pub async fn show(
    State(state): State<AppState>,
    Operator(actor): Operator,
    Path(id): Path<String>,
) -> ApiResult<Json<AlertDto>> {
    Ok(Json(state.app.guard.alert(&actor, &id).await?.into()))
}

/// Confirm a campaign: logged as a `fraud.confirmed` naming the alert; the engine marks its
/// entity and neighbours, and the pending changes of the accounts it links are held with the
/// path as the reason.
#[utoipa::path(
    post, path = "/v1/alerts/{id}/confirm", tag = "network",
    params(("id" = String, Path, description = "The alert's id")),
    request_body = ConfirmBody,
    responses((status = 200, body = AlertDto), (status = 403, body = ErrorBody), (status = 404, description = "`unknown_alert`", body = ErrorBody), (status = 409, description = "`alert_confirmed`", body = ErrorBody)),
    security(("operator_token" = []))
)]
pub async fn confirm(
    State(state): State<AppState>,
    Operator(actor): Operator,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<ConfirmBody>,
) -> ApiResult<Json<AlertDto>> {
    let alert = state
        .app
        .guard
        .confirm_alert(&actor, &id, &body.note)
        .await?;
    Ok(Json(alert.into()))
}

/// The graph around one entity: nodes (with their confirmed-fraud mark, override and open
/// alert) and edges, at most 2,000 nodes (then `truncated: true`). With `engine_partitions`,
/// the graph of the lowest partition this process works, as of its progress.
#[utoipa::path(
    get, path = "/v1/graph/{kind}/{value}", tag = "network",
    params(
        ("kind" = inline(crate::dto::formats::EntityKindName), Path, description = "`account`, `address`, `ip`, `device` or `number`"),
        ("value" = String, Path, description = "The entity's value (canonicalised: an address's case, an IP's notation, a number's digits)"),
        GraphQuery,
    ),
    responses((status = 200, body = Object), (status = 400, description = "`invalid_entity`, `invalid_query`", body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, description = "`unknown_entity`", body = ErrorBody), (status = 503, description = "`partition_view_unavailable` (`engine_partitions`: this process works no partition now, so it holds no view of the graph)", body = ErrorBody)),
    security(("operator_token" = []))
)]
pub async fn graph(
    State(state): State<AppState>,
    Operator(actor): Operator,
    Path((kind, value)): Path<(String, String)>,
    Query(query): Query<GraphQuery>,
) -> ApiResult<Json<portcullis_engine::GraphView>> {
    let view = (state.app.guard)
        .graph(&actor, &kind, &value, query.hops.unwrap_or(2))
        .await?;
    Ok(Json(view))
}
