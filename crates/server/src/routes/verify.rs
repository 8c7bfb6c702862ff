//! `POST /v1/verify`: signed-request verification for gateways.

use crate::dto::{VerifyAnswer, VerifyBody};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{JsonBytes, Operator, parse_json};
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use portcullis_app::verifier::{VerifyOutcome, VerifyRequest};
use portcullis_core::scope::Scope;
use std::net::IpAddr;

/// Verify a signed request (role `integration`).
#[utoipa::path(
    post, path = "/v1/verify", tag = "verify",
    request_body = VerifyBody<'_>,
    responses(
        (status = 200, description = "The verdict: `ok`, or a stable `reason`", body = VerifyAnswer),
        (status = 400, description = "Malformed request: `invalid_json`, `invalid_ip`, `unknown_scope`, `missing_timestamp`, `invalid_timestamp`, `recv_window_out_of_range`, `duplicate_parameter`", body = ErrorBody),
        (status = 401, description = "No valid operator token", body = ErrorBody),
        (status = 403, description = "The operator's role may not verify", body = ErrorBody),
    ),
    security(("operator_token" = []))
)]
pub async fn verify(
    State(state): State<AppState>,
    Operator(actor): Operator,
    JsonBytes(bytes): JsonBytes,
) -> ApiResult<Json<VerifyAnswer>> {
    let body: VerifyBody<'_> = parse_json(&bytes)?;
    let ip: IpAddr = body.ip.parse().map_err(|_| {
        ApiError::bad_request(
            "invalid_ip",
            format!("`{}` is not an IPv4 or IPv6 address", body.ip),
        )
    })?;
    let scope: Scope = body
        .scope
        .parse()
        .map_err(|e: portcullis_core::scope::ScopeError| {
            ApiError::bad_request("unknown_scope", e.to_string())
        })?;
    let request = VerifyRequest {
        api_key: &body.api_key,
        signature: &body.signature,
        payload: &body.payload,
        ip,
        scope,
    };
    let answer = match state.app.keys.verify_request(&actor, &request)? {
        VerifyOutcome::Accepted(key) => VerifyAnswer {
            ok: true,
            account: Some(key.key().account.clone()),
            key_id: Some(key.key().key_id.clone()),
            reason: None,
        },
        VerifyOutcome::Rejected(reason) => VerifyAnswer {
            ok: false,
            account: None,
            key_id: None,
            reason: Some(reason.as_str().to_owned()),
        },
    };
    Ok(Json(answer))
}
