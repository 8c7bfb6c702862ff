//! Passkeys and the security center's sign-in links, for the exchange's backend.

use crate::error::{ApiResult, ErrorBody};
use crate::extract::{Operator, OptionalJson};
use crate::state::AppState;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A registered passkey (its public key stays inside Portcullis).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PasskeyDto {
    pub credential_id: String,
    pub label: String,
    pub created_at: String,
    pub last_used_at: Option<String>,
}

/// A single-use link that signs the customer in to the security center.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SignInLinkDto {
    /// Send the customer's browser here (redirect) right after your own login.
    pub url: String,
    pub expires_at: String,
}

/// `POST /v1/accounts/{account}/sign-in-links`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignInLinkBody {
    /// What your own login knew: `channel`, `device_id`, `user_agent`, `session_id`,
    /// `call_active` (your app saw a phone call in progress), `remote_access`. The session
    /// stamps it on the events of what the customer does in the security center; `ip` is
    /// ignored (the customer's address comes from their own connection).
    #[serde(default)]
    pub ctx: crate::dto::ContextBody,
}

/// An account's passkeys.
#[utoipa::path(
    get, path = "/v1/accounts/{account}/passkeys", tag = "step-up",
    params(("account" = String, Path, description = "Account id")),
    responses((status = 200, body = [PasskeyDto]), (status = 404, body = ErrorBody)),
    security(("operator_token" = []))
)]
pub async fn list(
    State(state): State<AppState>,
    Operator(actor): Operator,
    Path(account): Path<String>,
) -> ApiResult<Json<Vec<PasskeyDto>>> {
    let passkeys = state.app.guard.passkeys(&actor, &account).await?;
    Ok(Json(
        passkeys
            .into_iter()
            .map(|p| PasskeyDto {
                credential_id: p.credential_id,
                label: p.label,
                created_at: p.created_at.to_rfc3339(),
                last_used_at: p.last_used_at.map(|t| t.to_rfc3339()),
            })
            .collect(),
    ))
}

/// Mint a single-use sign-in link to the security center (valid for five minutes). Call it
/// after your own login and redirect the customer's browser to `url`.
#[utoipa::path(
    post, path = "/v1/accounts/{account}/sign-in-links", tag = "accounts",
    params(("account" = String, Path, description = "Account id")),
    request_body(content = Option<SignInLinkBody>),
    responses((status = 201, body = SignInLinkDto), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("operator_token" = []))
)]
pub async fn sign_in_link(
    State(state): State<AppState>,
    Operator(actor): Operator,
    Path(account): Path<String>,
    OptionalJson(body): OptionalJson<SignInLinkBody>,
) -> ApiResult<(StatusCode, Json<SignInLinkDto>)> {
    let ctx = body.ctx.try_into()?;
    let link = state.app.guard.sign_in_link(&actor, &account, ctx).await?;
    let dto = SignInLinkDto {
        url: String::from_utf8_lossy(link.url.expose()).into_owned(),
        expires_at: link.expires_at.to_rfc3339(),
    };
    Ok((StatusCode::CREATED, Json(dto)))
}
