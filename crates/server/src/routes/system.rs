//! Liveness, readiness, metrics and the OpenAPI document.

use crate::dto::HealthDto;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::Operator;
use crate::metrics::{
    render_abuse_metrics, render_engine_metrics, render_partition_metrics, render_verifier_metrics,
};
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use portcullis_app::ErrorCode;
use portcullis_core::operator::Permission;

/// Liveness: the process answers.
#[utoipa::path(get, path = "/healthz", tag = "system", responses((status = 200, body = HealthDto)))]
pub async fn healthz() -> Json<HealthDto> {
    Json(HealthDto {
        status: "ok".into(),
        backend: None,
    })
}

/// Readiness: the database answers.
#[utoipa::path(get, path = "/readyz", tag = "system", responses((status = 200, body = HealthDto), (status = 503, body = ErrorBody)))]
pub async fn readyz(State(state): State<AppState>) -> ApiResult<Json<HealthDto>> {
    let backend = state.app.store.backend_name().to_owned();
    state.app.store.ping().await.map_err(|e| {
        tracing::warn!(error = %e, "readiness check failed");
        ApiError::new(ErrorCode::NotReady, "the database does not answer")
    })?;
    Ok(Json(HealthDto {
        status: "ready".into(),
        backend: Some(backend),
    }))
}

/// Prometheus metrics (any operator role: they name keys and client IPs).
#[utoipa::path(
    get, path = "/metrics", tag = "system",
    responses((status = 200, description = "Prometheus text format", content_type = "text/plain"), (status = 401, body = ErrorBody)),
    security(("operator_token" = []))
)]
pub async fn metrics(
    State(state): State<AppState>,
    Operator(actor): Operator,
) -> ApiResult<impl IntoResponse> {
    actor
        .require(Permission::ReadKeys)
        .map_err(ApiError::from)?;
    let mut text = state
        .metrics
        .as_ref()
        .map(|h| h.render())
        .unwrap_or_default();
    render_verifier_metrics(&mut text, &state.app.keys.verifier().stats());
    render_abuse_metrics(&mut text, &state);
    render_engine_metrics(
        &mut text,
        &state.app.risk.stats().await,
        state.app.risk.refused_lines(),
        &state.app.risk,
    );
    render_partition_metrics(&mut text, &state.app.risk);
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text))
}

/// The OpenAPI 3.1 document of this API.
#[utoipa::path(get, path = "/openapi.json", tag = "system", responses((status = 200, description = "OpenAPI 3.1 JSON")))]
pub async fn openapi() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/json")],
        crate::openapi::document_json(),
    )
}
