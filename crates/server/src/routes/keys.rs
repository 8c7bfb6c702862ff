//! API keys: issue, import, list, show, change, rotate, revoke.

use super::parse_time;
use crate::dto::{
    CreateKeyBody, FundWindowBody, ImportKeyBody, IssuedKeyDto, KeyDto, RevokeKeyBody,
    RotateKeyBody, UpdateKeyBody,
};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiJson, Operator, OptionalJson};
use crate::guard_dto::PendingChangeDto;
use crate::state::AppState;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use portcullis_app::ErrorCode;
use portcullis_app::guard::GuardedOutcome;
use portcullis_app::keys::{ImportedKey, IssuedKey, KeyChange, KeyView, NewKey};
use portcullis_core::key::{KeyAlgorithm, KeyStatus};
use portcullis_core::secret::Secret;

fn issued(state: &AppState, issued: IssuedKey) -> IssuedKeyDto {
    let view = KeyView {
        status: KeyStatus::Active,
        idle_deadline: issued.key.idle_deadline(state.app.keys.policy().idle),
        at: issued.key.updated_at,
        key: issued.key,
    };
    IssuedKeyDto {
        key: view.into(),
        secret: issued
            .secret
            .map(|s| String::from_utf8_lossy(s.expose()).into_owned()),
        pending: None,
    }
}

/// Issue a key for an account. HMAC secrets are in this response and nowhere else, ever.
/// `withdraw` and `transfer` are widenings: they need `step_up_grant`, and are added when their
/// cool-down ends (see `pending`); the key is usable at once with its other scopes.
#[utoipa::path(
    post, path = "/v1/accounts/{account}/keys", tag = "keys",
    params(("account" = String, Path, description = "Account id")),
    request_body = CreateKeyBody,
    responses(
        (status = 201, body = IssuedKeyDto),
        (status = 400, description = "`unknown_scope`, `invalid_cidr`, `invalid_public_key`, `invalid_label`, `invalid_expiry`, `invalid_algorithm`, `withdraw_needs_allowlist`", body = ErrorBody),
        (status = 403, description = "`step_up_required` and the other step-up refusals", body = ErrorBody),
        (status = 423, description = "`account_protected`: frozen or settings locked", body = ErrorBody),
        (status = 404, description = "No such account", body = ErrorBody),
    ),
    security(("operator_token" = []))
)]
pub async fn create(
    State(state): State<AppState>,
    Operator(actor): Operator,
    Path(account): Path<String>,
    ApiJson(body): ApiJson<CreateKeyBody>,
) -> ApiResult<(StatusCode, Json<IssuedKeyDto>)> {
    let algorithm = match body.algorithm.as_deref() {
        None => KeyAlgorithm::HmacSha256,
        Some(name) => KeyAlgorithm::parse(name).ok_or_else(|| {
            ApiError::new(
                ErrorCode::InvalidAlgorithm,
                "`algorithm` must be `hmac-sha256` or `ed25519`",
            )
        })?,
    };
    let request = NewKey {
        account,
        label: body.label,
        algorithm,
        public_key: body.public_key,
        scopes: body.scopes,
        ip_allowlist: body.ip_allowlist,
        expires_at: parse_time("expires_at", body.expires_at.as_deref())?,
        fund_window: body
            .fund_window
            .map(FundWindowBody::into_request)
            .transpose()?,
        step_up: body.step_up.into(),
        ctx: body.ctx.try_into()?,
    };
    let created = state
        .app
        .guard
        .create_key(&actor, request, body.step_up_grant.as_deref())
        .await?;
    let mut dto = issued(&state, created.issued);
    dto.pending = created.pending.map(PendingChangeDto::from);
    Ok((StatusCode::CREATED, Json(dto)))
}

/// Import an existing HMAC key (role `admin`), so an exchange can migrate without reissuing.
#[utoipa::path(
    post, path = "/v1/keys/import", tag = "keys",
    request_body = ImportKeyBody,
    responses((status = 201, body = KeyDto), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, description = "`not_found`: no such account", body = ErrorBody), (status = 409, body = ErrorBody), (status = 423, body = ErrorBody)),
    security(("operator_token" = []))
)]
pub async fn import(
    State(state): State<AppState>,
    Operator(actor): Operator,
    ApiJson(body): ApiJson<ImportKeyBody>,
) -> ApiResult<(StatusCode, Json<KeyDto>)> {
    let request = ImportedKey {
        account: body.account,
        label: body.label,
        api_key: body.api_key,
        secret: Secret::new(body.secret.into_bytes()),
        scopes: body.scopes,
        ip_allowlist: body.ip_allowlist,
        expires_at: parse_time("expires_at", body.expires_at.as_deref())?,
    };
    let key = state.app.guard.import_key(&actor, request).await?;
    let view = state.app.keys.key(&actor, &key.key_id).await?;
    Ok((StatusCode::CREATED, Json(view.into())))
}

/// List an account's keys.
#[utoipa::path(
    get, path = "/v1/accounts/{account}/keys", tag = "keys",
    params(("account" = String, Path, description = "Account id")),
    responses((status = 200, body = [KeyDto]), (status = 404, body = ErrorBody)),
    security(("operator_token" = []))
)]
pub async fn list(
    State(state): State<AppState>,
    Operator(actor): Operator,
    Path(account): Path<String>,
) -> ApiResult<Json<Vec<KeyDto>>> {
    let keys = state.app.keys.keys_for_account(&actor, &account).await?;
    Ok(Json(keys.into_iter().map(KeyDto::from).collect()))
}

/// Show one key.
#[utoipa::path(
    get, path = "/v1/keys/{key_id}", tag = "keys",
    params(("key_id" = String, Path, description = "Key id")),
    responses((status = 200, body = KeyDto), (status = 404, body = ErrorBody)),
    security(("operator_token" = []))
)]
pub async fn show(
    State(state): State<AppState>,
    Operator(actor): Operator,
    Path(key_id): Path<String>,
) -> ApiResult<Json<KeyDto>> {
    Ok(Json(state.app.keys.key(&actor, &key_id).await?.into()))
}

/// Change a key's label, scopes, allow-list or expiry. A change that widens nothing applies at
/// once (200). A widening (adding `withdraw`/`transfer`, a wider or removed allow-list, a later
/// expiry) needs `step_up_grant` and becomes a pending change (202) that applies when its
/// cool-down ends unless cancelled or held.
#[utoipa::path(
    patch, path = "/v1/keys/{key_id}", tag = "keys",
    params(("key_id" = String, Path, description = "Key id")),
    request_body = UpdateKeyBody,
    responses(
        (status = 200, body = KeyDto),
        (status = 202, description = "A widening, now pending", body = PendingChangeDto),
        (status = 400, description = "Invalid input; `immutable_field` when the body tries to change `api_key`, `account` or `algorithm`", body = ErrorBody),
        (status = 403, description = "`step_up_required` and the other step-up refusals", body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "Version mismatch, or the key is revoked or expired", body = ErrorBody),
        (status = 423, description = "`account_protected`: frozen or settings locked", body = ErrorBody),
    ),
    security(("operator_token" = []))
)]
pub async fn update(
    State(state): State<AppState>,
    Operator(actor): Operator,
    Path(key_id): Path<String>,
    ApiJson(body): ApiJson<UpdateKeyBody>,
) -> ApiResult<Response> {
    let immutable = body.immutable_fields();
    if !immutable.is_empty() {
        return Err(ApiError::new(
            ErrorCode::ImmutableField,
            format!(
                "{} of a key never change{}; issue a new key instead",
                immutable.join(", "),
                if immutable.len() == 1 { "s" } else { "" }
            ),
        ));
    }
    let expires_at = match body.expires_at {
        None => None,
        Some(None) => Some(None),
        Some(Some(text)) => Some(parse_time("expires_at", Some(&text))?),
    };
    let change = KeyChange {
        label: body.label,
        scopes: body.scopes,
        ip_allowlist: body.ip_allowlist,
        expires_at,
        fund_window: FundWindowBody::field(body.fund_window)?,
        step_up: body.step_up.into(),
        ctx: body.ctx.try_into()?,
        expected_version: body.expected_version,
    };
    let grant = body.step_up_grant.as_deref();
    match state
        .app
        .guard
        .change_key(&actor, &key_id, change, grant)
        .await?
    {
        GuardedOutcome::Applied(key) => {
            let view: KeyDto = state.app.keys.key(&actor, &key.key_id).await?.into();
            Ok(Json(view).into_response())
        }
        GuardedOutcome::Pending(receipt) => {
            let dto = PendingChangeDto::from(receipt);
            Ok((StatusCode::ACCEPTED, Json(dto)).into_response())
        }
    }
}

/// Revoke a key, effective immediately.
#[utoipa::path(
    post, path = "/v1/keys/{key_id}/revoke", tag = "keys",
    params(("key_id" = String, Path, description = "Key id")),
    request_body(content = Option<RevokeKeyBody>),
    responses((status = 200, body = KeyDto), (status = 404, body = ErrorBody)),
    security(("operator_token" = []))
)]
pub async fn revoke(
    State(state): State<AppState>,
    Operator(actor): Operator,
    Path(key_id): Path<String>,
    OptionalJson(body): OptionalJson<RevokeKeyBody>,
) -> ApiResult<Json<KeyDto>> {
    let ctx = body.ctx;
    let key = state
        .app
        .guard
        .revoke_key(&actor, &key_id, ctx.try_into()?)
        .await?;
    Ok(Json(state.app.keys.key(&actor, &key.key_id).await?.into()))
}

/// Rotate an HMAC key's secret; the previous secret stays valid for the overlap.
#[utoipa::path(
    post, path = "/v1/keys/{key_id}/rotate", tag = "keys",
    params(("key_id" = String, Path, description = "Key id")),
    request_body(content = Option<RotateKeyBody>),
    responses((status = 200, body = IssuedKeyDto), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 423, body = ErrorBody)),
    security(("operator_token" = []))
)]
pub async fn rotate(
    State(state): State<AppState>,
    Operator(actor): Operator,
    Path(key_id): Path<String>,
    OptionalJson(body): OptionalJson<RotateKeyBody>,
) -> ApiResult<Json<IssuedKeyDto>> {
    let overlap_ms = body.overlap_seconds.map(|s| s.saturating_mul(1000));
    let grant = body.step_up_grant.as_deref();
    let rotated = state
        .app
        .guard
        .rotate_key(&actor, &key_id, overlap_ms, grant)
        .await?;
    Ok(Json(issued(&state, rotated)))
}
