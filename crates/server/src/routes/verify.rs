//! `POST /v1/verify`: signed-request verification for gateways.

use crate::dto::{VerifyAnswer, VerifyBody};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{JsonBytes, Operator, parse_json};
use crate::state::AppState;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use portcullis_app::ErrorCode;
use portcullis_app::verifier::VerifyRequest;
use portcullis_core::key::ApiKey;
use portcullis_core::scope::Scope;
use portcullis_core::verify::Rejection;
use serde::Serialize;
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
        (status = 503, description = "`replay_guard_unavailable`: the shared replay guard (`replay_guard_redis_url`) did not answer; the request is refused", body = ErrorBody),
    ),
    security(("operator_token" = []))
)]
pub async fn verify(
    State(state): State<AppState>,
    Operator(actor): Operator,
    JsonBytes(bytes): JsonBytes,
) -> ApiResult<Response> {
    let body: VerifyBody<'_> = parse_json(&bytes)?;
    let ip: IpAddr = body.ip.parse().map_err(|_| {
        ApiError::new(
            ErrorCode::InvalidIp,
            format!("`{}` is not an IPv4 or IPv6 address", body.ip),
        )
    })?;
    let scope: Scope = body
        .scope
        .parse()
        .map_err(|e: portcullis_core::scope::ScopeError| {
            ApiError::new(ErrorCode::UnknownScope, e.to_string())
        })?;
    let request = VerifyRequest {
        api_key: &body.api_key,
        signature: &body.signature,
        payload: &body.payload,
        ip,
        scope,
    };
    if state.app.keys.has_shared_replay() {
        // Through the replay guard every node shares (a network round trip per acceptance).
        let verdict = state.app.keys.verify_shared(&actor, &request).await?;
        let body = match verdict {
            Ok(key) => Bytes::from(accepted_body(key.key())?),
            Err(reason) => Bytes::from_static(rejected_body(reason).as_bytes()),
        };
        return Ok(([(header::CONTENT_TYPE, JSON)], body).into_response());
    }
    // The answers are written directly: a rejection is one of eight fixed bodies, and an
    // acceptance borrows the key's names instead of copying them into an owned answer.
    let body =
        state
            .app
            .keys
            .verify_request_with(&actor, &request, |verdict| match verdict {
                Ok(key) => accepted_body(key.key()).map(Bytes::from),
                Err(reason) => Ok(Bytes::from_static(rejected_body(reason).as_bytes())),
            })??;
    Ok(([(header::CONTENT_TYPE, JSON)], body).into_response())
}

const JSON: HeaderValue = HeaderValue::from_static("application/json");

/// [`VerifyAnswer`] for an accepted request, borrowing the key's names.
#[derive(Serialize)]
struct Accepted<'a> {
    ok: bool,
    account: &'a str,
    key_id: &'a str,
}

fn accepted_body(key: &ApiKey) -> ApiResult<Vec<u8>> {
    let mut body = Vec::with_capacity(40 + key.account.len() + key.key_id.len());
    let answer = Accepted {
        ok: true,
        account: &key.account,
        key_id: &key.key_id,
    };
    serde_json::to_writer(&mut body, &answer).map_err(|e| {
        ApiError::from(portcullis_app::AppError::Internal(format!(
            "verify answer: {e}"
        )))
    })?;
    Ok(body)
}

/// [`VerifyAnswer`] for each rejection, serialised once (a test checks them against it).
const fn rejected_body(reason: Rejection) -> &'static str {
    match reason {
        Rejection::UnknownKey => r#"{"ok":false,"reason":"unknown_key"}"#,
        Rejection::Revoked => r#"{"ok":false,"reason":"revoked"}"#,
        Rejection::Expired => r#"{"ok":false,"reason":"expired"}"#,
        Rejection::BadSignature => r#"{"ok":false,"reason":"bad_signature"}"#,
        Rejection::TimestampOutsideWindow => r#"{"ok":false,"reason":"timestamp_outside_window"}"#,
        Rejection::Replayed => r#"{"ok":false,"reason":"replayed"}"#,
        Rejection::IpNotAllowed => r#"{"ok":false,"reason":"ip_not_allowed"}"#,
        Rejection::ScopeMissing => r#"{"ok":false,"reason":"scope_missing"}"#,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_answers_are_the_documented_answers() {
        for reason in Rejection::ALL {
            let documented = VerifyAnswer {
                ok: false,
                account: None,
                key_id: None,
                reason: Some(reason.as_str().to_owned()),
            };
            assert_eq!(
                rejected_body(reason),
                serde_json::to_string(&documented).unwrap()
            );
        }
        use portcullis_core::time::UnixMillis;
        let key = ApiKey {
            key_id: "k_1".into(),
            api_key: "pk".into(),
            account: "acc_\"quoted\"".into(),
            label: String::new(),
            algorithm: portcullis_core::key::KeyAlgorithm::HmacSha256,
            public_key: None,
            scopes: portcullis_core::scope::ScopeSet::default(),
            ip_allowlist: portcullis_core::allowlist::IpAllowList::unrestricted(),
            created_at: UnixMillis(0),
            updated_at: UnixMillis(0),
            expires_at: None,
            last_used_at: None,
            last_used_ip: None,
            revoked_at: None,
            idle_warned_at: None,
            fund_window: None,
            version: 1,
        };
        let documented = VerifyAnswer {
            ok: true,
            account: Some(key.account.clone()),
            key_id: Some(key.key_id.clone()),
            reason: None,
        };
        assert_eq!(
            accepted_body(&key).unwrap(),
            serde_json::to_vec(&documented).unwrap()
        );
    }
}
