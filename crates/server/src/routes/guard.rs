//! Guarded widening over HTTP: TOTP enrolment and step-up, pending changes (list, show,
//! cancel, hold, release), the freeze, the settings lock, and the withdrawal-address
//! allow-list with the withdrawal check gateways call.

use super::parse_time;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiJson, Operator, OptionalJson};
use crate::guard_dto::{
    AddAddressBody, AddressDto, FreezeBody, FreezeDto, GrantBody, GrantDto, HoldBody, LockBody,
    PendingChangeDto, ProtectionDto, TotpCodeBody, TotpStartDto, WithdrawalCheckBody,
    WithdrawalCheckDto,
};
use crate::state::AppState;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use portcullis_app::ErrorCode;
use portcullis_app::guard::NewAddress;

/// Start enrolling an authenticator app (TOTP). The URI carries the secret: show it once. On an
/// account with a passkey it needs `step_up_grant` (a passkey step-up); the first factor needs none.
#[utoipa::path(
    post, path = "/v1/accounts/{account}/totp", tag = "step-up",
    params(("account" = String, Path, description = "Account id")),
    request_body(content = Option<GrantBody>),
    responses((status = 201, body = TotpStartDto), (status = 403, description = "`forbidden` (the role may not); `step_up_required` (the account has a passkey: send a passkey step-up's grant), `step_up_insufficient`, `invalid_grant`, `grant_spent`, `grant_expired`", body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, description = "A confirmed authenticator app is already enrolled", body = ErrorBody)),
    security(("operator_token" = []))
)]
pub async fn start_totp(
    State(state): State<AppState>,
    Operator(actor): Operator,
    Path(account): Path<String>,
    OptionalJson(body): OptionalJson<GrantBody>,
) -> ApiResult<(StatusCode, Json<TotpStartDto>)> {
    let grant = body.step_up_grant.as_deref();
    let started = state.app.guard.start_totp(&actor, &account, grant).await?;
    let uri = String::from_utf8_lossy(started.provisioning_uri.expose()).into_owned();
    let qr_svg = qr_svg(&uri);
    Ok((
        StatusCode::CREATED,
        Json(TotpStartDto {
            provisioning_uri: uri,
            qr_svg,
        }),
    ))
}

/// The provisioning URI as a QR code (SVG markup) for the authenticator app to scan.
pub fn qr_svg(uri: &str) -> String {
    match qrcode::QrCode::new(uri.as_bytes()) {
        Ok(code) => code
            .render::<qrcode::render::svg::Color<'_>>()
            .min_dimensions(220, 220)
            .build(),
        Err(error) => {
            tracing::warn!(%error, "the provisioning URI does not fit a QR code");
            String::new()
        }
    }
}

/// Confirm the enrolment with a first code from the app.
#[utoipa::path(
    post, path = "/v1/accounts/{account}/totp/confirm", tag = "step-up",
    params(("account" = String, Path, description = "Account id")),
    request_body = TotpCodeBody,
    responses((status = 204), (status = 403, description = "`totp_wrong`, `totp_reused`; `step_up_required` when a passkey was added since an enrolment started without a step-up (start it again with one)", body = ErrorBody), (status = 409, description = "`conflict`: no authenticator app waiting for confirmation", body = ErrorBody), (status = 423, description = "`step_up_locked`", body = ErrorBody), (status = 429, description = "`rate_limited`: too many codes for this account in a short time", body = ErrorBody, headers(("Retry-After" = u64, description = "Seconds to wait before trying again")))),
    security(("operator_token" = []))
)]
pub async fn confirm_totp(
    State(state): State<AppState>,
    Operator(actor): Operator,
    Path(account): Path<String>,
    ApiJson(body): ApiJson<TotpCodeBody>,
) -> ApiResult<StatusCode> {
    state.limits.check_account(&account)?;
    state
        .app
        .guard
        .confirm_totp(&actor, &account, &body.code)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Pass a TOTP step-up: a right code gives a single-use grant for one widening.
#[utoipa::path(
    post, path = "/v1/accounts/{account}/step-up/totp", tag = "step-up",
    params(("account" = String, Path, description = "Account id")),
    request_body = TotpCodeBody,
    responses((status = 201, body = GrantDto), (status = 400, description = "`totp_not_enrolled`", body = ErrorBody), (status = 403, description = "`totp_wrong`, `totp_reused`", body = ErrorBody), (status = 423, description = "`step_up_locked` after repeated wrong codes", body = ErrorBody), (status = 429, description = "`rate_limited`: too many codes for this account in a short time", body = ErrorBody, headers(("Retry-After" = u64, description = "Seconds to wait before trying again")))),
    security(("operator_token" = []))
)]
pub async fn step_up_totp(
    State(state): State<AppState>,
    Operator(actor): Operator,
    Path(account): Path<String>,
    ApiJson(body): ApiJson<TotpCodeBody>,
) -> ApiResult<(StatusCode, Json<GrantDto>)> {
    // Per account, not per IP: the caller is the exchange's backend, one address for all.
    state.limits.check_account(&account)?;
    let grant = state
        .app
        .guard
        .step_up_totp(&actor, &account, &body.code)
        .await?;
    Ok((StatusCode::CREATED, Json(grant.into())))
}

/// An account's pending and past widenings, newest first.
#[utoipa::path(
    get, path = "/v1/accounts/{account}/changes", tag = "changes",
    params(("account" = String, Path, description = "Account id")),
    responses((status = 200, body = [PendingChangeDto]), (status = 404, body = ErrorBody)),
    security(("operator_token" = []))
)]
pub async fn list_changes(
    State(state): State<AppState>,
    Operator(actor): Operator,
    Path(account): Path<String>,
) -> ApiResult<Json<Vec<PendingChangeDto>>> {
    let changes = state.app.guard.changes_for(&actor, &account).await?;
    Ok(Json(
        changes.into_iter().map(PendingChangeDto::from).collect(),
    ))
}

/// One change.
#[utoipa::path(
    get, path = "/v1/changes/{id}", tag = "changes",
    params(("id" = String, Path, description = "Change id")),
    responses((status = 200, body = PendingChangeDto), (status = 404, body = ErrorBody)),
    security(("operator_token" = []))
)]
pub async fn show_change(
    State(state): State<AppState>,
    Operator(actor): Operator,
    Path(id): Path<String>,
) -> ApiResult<Json<PendingChangeDto>> {
    Ok(Json(state.app.guard.change(&actor, &id).await?.into()))
}

/// Cancel a pending change on the customer's behalf.
#[utoipa::path(
    post, path = "/v1/changes/{id}/cancel", tag = "changes",
    params(("id" = String, Path, description = "Change id")),
    responses((status = 200, body = PendingChangeDto), (status = 404, body = ErrorBody), (status = 409, description = "`change_closed`", body = ErrorBody)),
    security(("operator_token" = []))
)]
pub async fn cancel_change(
    State(state): State<AppState>,
    Operator(actor): Operator,
    Path(id): Path<String>,
) -> ApiResult<Json<PendingChangeDto>> {
    Ok(Json(state.app.guard.cancel(&actor, &id).await?.into()))
}

/// Hold a pending change for review (roles `admin`, `analyst`); it will not apply until released.
#[utoipa::path(
    post, path = "/v1/changes/{id}/hold", tag = "changes",
    params(("id" = String, Path, description = "Change id")),
    request_body = HoldBody,
    responses((status = 200, body = PendingChangeDto), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("operator_token" = []))
)]
pub async fn hold_change(
    State(state): State<AppState>,
    Operator(actor): Operator,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<HoldBody>,
) -> ApiResult<Json<PendingChangeDto>> {
    Ok(Json(
        state
            .app
            .guard
            .hold(&actor, &id, &body.reason)
            .await?
            .into(),
    ))
}

/// Release a held change; it applies at the end of its cool-down, never earlier.
#[utoipa::path(
    post, path = "/v1/changes/{id}/release", tag = "changes",
    params(("id" = String, Path, description = "Change id")),
    responses((status = 200, body = PendingChangeDto), (status = 404, body = ErrorBody), (status = 409, description = "`change_not_held`, `change_closed`", body = ErrorBody)),
    security(("operator_token" = []))
)]
pub async fn release_change(
    State(state): State<AppState>,
    Operator(actor): Operator,
    Path(id): Path<String>,
) -> ApiResult<Json<PendingChangeDto>> {
    Ok(Json(state.app.guard.release(&actor, &id).await?.into()))
}

/// The account's protections (freeze, settings lock).
#[utoipa::path(
    get, path = "/v1/accounts/{account}/protection", tag = "protection",
    params(("account" = String, Path, description = "Account id")),
    responses((status = 200, body = ProtectionDto), (status = 404, body = ErrorBody)),
    security(("operator_token" = []))
)]
pub async fn protection(
    State(state): State<AppState>,
    Operator(actor): Operator,
    Path(account): Path<String>,
) -> ApiResult<Json<ProtectionDto>> {
    Ok(Json(
        state.app.guard.protection(&actor, &account).await?.into(),
    ))
}

/// Freeze the account at once: every key loses `withdraw` and `transfer`, every pending
/// widening is cancelled. No step-up: the panic button must always work.
#[utoipa::path(
    post, path = "/v1/accounts/{account}/freeze", tag = "protection",
    params(("account" = String, Path, description = "Account id")),
    request_body(content = Option<FreezeBody>),
    responses((status = 200, body = FreezeDto), (status = 404, body = ErrorBody)),
    security(("operator_token" = []))
)]
pub async fn freeze(
    State(state): State<AppState>,
    Operator(actor): Operator,
    Path(account): Path<String>,
    OptionalJson(body): OptionalJson<FreezeBody>,
) -> ApiResult<Json<FreezeDto>> {
    let report = state
        .app
        .guard
        .freeze(&actor, &account, body.ctx.try_into()?)
        .await?;
    Ok(Json(report.into()))
}

/// Ask to lift the freeze: needs a passkey grant, then waits out its own cool-down.
#[utoipa::path(
    post, path = "/v1/accounts/{account}/unfreeze", tag = "protection",
    params(("account" = String, Path, description = "Account id")),
    request_body = GrantBody,
    responses((status = 202, body = PendingChangeDto), (status = 403, description = "`step_up_required`, `step_up_not_enrolled`, ...", body = ErrorBody), (status = 409, description = "`not_frozen`: the account is not frozen", body = ErrorBody), (status = 423, description = "`account_protected`: the settings are locked", body = ErrorBody)),
    security(("operator_token" = []))
)]
pub async fn unfreeze(
    State(state): State<AppState>,
    Operator(actor): Operator,
    Path(account): Path<String>,
    OptionalJson(body): OptionalJson<GrantBody>,
) -> ApiResult<(StatusCode, Json<PendingChangeDto>)> {
    let receipt = state
        .app
        .guard
        .request_unfreeze(&actor, &account, body.step_up_grant.as_deref())
        .await?;
    Ok((StatusCode::ACCEPTED, Json(receipt.into())))
}

/// Lock every widening until a date; the date can only ever move later.
#[utoipa::path(
    post, path = "/v1/accounts/{account}/settings-lock", tag = "protection",
    params(("account" = String, Path, description = "Account id")),
    request_body = LockBody,
    responses((status = 200, body = ProtectionDto), (status = 400, description = "`invalid_lock`", body = ErrorBody), (status = 409, description = "`lock_cannot_shorten`", body = ErrorBody)),
    security(("operator_token" = []))
)]
pub async fn lock_settings(
    State(state): State<AppState>,
    Operator(actor): Operator,
    Path(account): Path<String>,
    ApiJson(body): ApiJson<LockBody>,
) -> ApiResult<Json<ProtectionDto>> {
    let until = parse_time("until", Some(&body.until))?
        .ok_or_else(|| ApiError::new(ErrorCode::InvalidTimestamp, "`until` is required"))?;
    let protection = state
        .app
        .guard
        .lock_settings(&actor, &account, until)
        .await?;
    Ok(Json(protection.into()))
}

/// The account's withdrawal-address allow-list.
#[utoipa::path(
    get, path = "/v1/accounts/{account}/addresses", tag = "addresses",
    params(("account" = String, Path, description = "Account id")),
    responses((status = 200, body = [AddressDto]), (status = 404, body = ErrorBody)),
    security(("operator_token" = []))
)]
pub async fn list_addresses(
    State(state): State<AppState>,
    Operator(actor): Operator,
    Path(account): Path<String>,
) -> ApiResult<Json<Vec<AddressDto>>> {
    let addresses = state.app.guard.addresses(&actor, &account).await?;
    Ok(Json(addresses.into_iter().map(AddressDto::from).collect()))
}

/// Ask to allow-list a withdrawal address: step-up, then a cool-down.
#[utoipa::path(
    post, path = "/v1/accounts/{account}/addresses", tag = "addresses",
    params(("account" = String, Path, description = "Account id")),
    request_body = AddAddressBody,
    responses((status = 202, body = PendingChangeDto), (status = 400, description = "`invalid_address`", body = ErrorBody), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody), (status = 423, body = ErrorBody)),
    security(("operator_token" = []))
)]
pub async fn add_address(
    State(state): State<AppState>,
    Operator(actor): Operator,
    Path(account): Path<String>,
    ApiJson(body): ApiJson<AddAddressBody>,
) -> ApiResult<(StatusCode, Json<PendingChangeDto>)> {
    let request = NewAddress {
        address: body.address,
        asset: body.asset,
        network: body.network,
        label: body.label,
        ctx: body.ctx.try_into()?,
    };
    let receipt = state
        .app
        .guard
        .add_address(&actor, &account, request, body.step_up_grant.as_deref())
        .await?;
    Ok((StatusCode::ACCEPTED, Json(receipt.into())))
}

/// Remove an address from the allow-list, at once.
#[utoipa::path(
    delete, path = "/v1/accounts/{account}/addresses/{network}/{address}", tag = "addresses",
    params(
        ("account" = String, Path, description = "Account id"),
        ("network" = String, Path, description = "Network, e.g. TRX"),
        ("address" = String, Path, description = "The address"),
    ),
    responses((status = 204), (status = 404, body = ErrorBody)),
    security(("operator_token" = []))
)]
pub async fn remove_address(
    State(state): State<AppState>,
    Operator(actor): Operator,
    Path((account, network, address)): Path<(String, String, String)>,
) -> ApiResult<StatusCode> {
    state
        .app
        .guard
        .remove_address(&actor, &account, &network, &address)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// May this API withdrawal proceed? (role `integration`): only to an allow-listed address
/// whose cool-down has passed, and never from a frozen account.
#[utoipa::path(
    post, path = "/v1/withdrawals/check", tag = "addresses",
    request_body = WithdrawalCheckBody,
    responses(
        (status = 200, body = WithdrawalCheckDto),
        (status = 400, description = "`invalid_amount`", body = ErrorBody),
        (status = 404, description = "The account, or the key named, is not found", body = ErrorBody),
        (status = 409, description = "The key kept changing while the check counted the amount", body = ErrorBody),
    ),
    security(("operator_token" = []))
)]
pub async fn check_withdrawal(
    State(state): State<AppState>,
    Operator(actor): Operator,
    ApiJson(body): ApiJson<WithdrawalCheckBody>,
) -> ApiResult<Json<WithdrawalCheckDto>> {
    let check = state
        .app
        .guard
        .check_withdrawal(&actor, &body.into())
        .await?;
    Ok(Json(check.into()))
}
