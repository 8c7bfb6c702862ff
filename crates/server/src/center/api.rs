//! The JSON the security center's script calls: WebAuthn ceremonies, TOTP step-up and the key
//! change they authorise. Each call carries the session cookie and the anti-CSRF header.

use super::session::{Customer, ScriptCustomer};
use crate::dto::FundWindowBody;
use crate::error::{ApiError, ApiResult};
use crate::extract::ApiJson;
use crate::guard_dto::{GrantDto, PendingChangeDto, TotpCodeBody};
use crate::state::AppState;
use axum::Json;
use axum::extract::{Path, State};
use portcullis_app::guard::{AccountWidening, GuardedOutcome, NewAddress, PasskeyChallenge};
use portcullis_app::keys::KeyChange;
use portcullis_core::guard::StepUpMethod;
use serde::Deserialize;
use serde_json::{Value, json};

fn challenge(c: PasskeyChallenge) -> Json<Value> {
    Json(json!({ "ceremony_id": c.ceremony_id, "options": c.options }))
}

/// The browser's answer to a WebAuthn challenge.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Answer {
    ceremony_id: String,
    credential: Value,
    #[serde(default)]
    label: String,
}

/// An optional step-up grant (adding a passkey once something is enrolled needs one).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MaybeGrant {
    step_up_grant: Option<String>,
}

pub async fn start_registration(
    State(state): State<AppState>,
    ScriptCustomer(customer): ScriptCustomer,
    ApiJson(body): ApiJson<MaybeGrant>,
) -> ApiResult<Json<Value>> {
    let grant = body.step_up_grant.as_deref();
    let started = state
        .app
        .guard
        .start_passkey_registration(&customer.actor, &customer.account, grant)
        .await?;
    Ok(challenge(started))
}

pub async fn finish_registration(
    State(state): State<AppState>,
    ScriptCustomer(customer): ScriptCustomer,
    ApiJson(body): ApiJson<Answer>,
) -> ApiResult<Json<Value>> {
    let guard = &state.app.guard;
    let passkey = guard
        .finish_passkey_registration(
            &customer.actor,
            &customer.account,
            &body.ceremony_id,
            &body.credential,
            &body.label,
        )
        .await?;
    Ok(Json(
        json!({ "credential_id": passkey.credential_id, "label": passkey.label }),
    ))
}

pub async fn start_step_up(
    State(state): State<AppState>,
    ScriptCustomer(customer): ScriptCustomer,
) -> ApiResult<Json<Value>> {
    Ok(challenge(
        state
            .app
            .guard
            .start_passkey_step_up(&customer.actor, &customer.account)
            .await?,
    ))
}

pub async fn finish_step_up(
    State(state): State<AppState>,
    ScriptCustomer(customer): ScriptCustomer,
    ApiJson(body): ApiJson<Answer>,
) -> ApiResult<Json<GrantDto>> {
    let grant = state
        .app
        .guard
        .finish_passkey_step_up(
            &customer.actor,
            &customer.account,
            &body.ceremony_id,
            &body.credential,
        )
        .await?;
    Ok(Json(grant.into()))
}

pub async fn totp_step_up(
    State(state): State<AppState>,
    ScriptCustomer(customer): ScriptCustomer,
    ApiJson(body): ApiJson<TotpCodeBody>,
) -> ApiResult<Json<GrantDto>> {
    let grant = state
        .app
        .guard
        .step_up_totp(&customer.actor, &customer.account, &body.code)
        .await?;
    Ok(Json(grant.into()))
}

/// A key change from the widen page.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChangeBody {
    scopes: Vec<String>,
    ip_allowlist: Vec<String>,
    step_up_grant: Option<String>,
    /// Absent: the key's time box as it is; an object: withdraw/transfer for that long (and up
    /// to that much); `null`: until removed.
    #[serde(default, deserialize_with = "crate::dto::present_or_null")]
    fund_window: Option<Option<FundWindowBody>>,
}

impl ChangeBody {
    fn key_change(&self, customer: &Customer) -> ApiResult<KeyChange> {
        Ok(KeyChange {
            scopes: Some(self.scopes.clone()),
            ip_allowlist: Some(self.ip_allowlist.clone()),
            fund_window: FundWindowBody::field(self.fund_window)?,
            ctx: customer.ctx.clone(),
            ..KeyChange::default()
        })
    }
}

/// What the page's script is told before it asks for a step-up: the method to use, or `null`
/// when the change applies at once and needs none.
pub(super) fn step_up_needed(method: Option<StepUpMethod>) -> Json<Value> {
    Json(json!({ "step_up": method.map(StepUpMethod::as_str) }))
}

/// `POST /security/api/keys/{id}/check`: the change validated, nothing written.
pub async fn check_key_change(
    State(state): State<AppState>,
    ScriptCustomer(customer): ScriptCustomer,
    Path(key_id): Path<String>,
    ApiJson(body): ApiJson<ChangeBody>,
) -> ApiResult<Json<Value>> {
    let change = body.key_change(&customer)?;
    let method = state
        .app
        .guard
        .check_key_change(&customer.actor, &key_id, &change)
        .await?;
    Ok(step_up_needed(method))
}

pub async fn change_key(
    State(state): State<AppState>,
    ScriptCustomer(customer): ScriptCustomer,
    Path(key_id): Path<String>,
    ApiJson(body): ApiJson<ChangeBody>,
) -> ApiResult<Json<Value>> {
    let change = body.key_change(&customer)?;
    let outcome = state
        .app
        .guard
        .change_key(
            &customer.actor,
            &key_id,
            change,
            body.step_up_grant.as_deref(),
        )
        .await?;
    Ok(Json(match outcome {
        GuardedOutcome::Applied(key) => json!({ "applied": true, "key_id": key.key_id }),
        GuardedOutcome::Pending(receipt) => {
            json!({ "applied": false, "pending": PendingChangeDto::from(receipt.change) })
        }
    }))
}

fn account_widening(what: &str) -> ApiResult<AccountWidening> {
    AccountWidening::parse(what).ok_or_else(ApiError::not_found)
}

/// `POST /security/api/account/{what}/check`: the step-up lifting the freeze
/// (`unfreeze`) or removing the authenticator app (`remove-totp`) takes.
pub async fn check_account(
    State(state): State<AppState>,
    ScriptCustomer(customer): ScriptCustomer,
    Path(what): Path<String>,
) -> ApiResult<Json<Value>> {
    let what = account_widening(&what)?;
    let method = state
        .app
        .guard
        .check_account_widening(&customer.actor, &customer.account, what)
        .await?;
    Ok(step_up_needed(Some(method)))
}

/// `POST /security/api/account/{what}`: the step-up's grant spent, the change waits out its
/// cool-down.
pub async fn widen_account(
    State(state): State<AppState>,
    ScriptCustomer(customer): ScriptCustomer,
    Path(what): Path<String>,
    ApiJson(body): ApiJson<MaybeGrant>,
) -> ApiResult<Json<PendingChangeDto>> {
    let what = account_widening(&what)?;
    let grant = body.step_up_grant.as_deref();
    let receipt = state
        .app
        .guard
        .request_account_widening(&customer.actor, &customer.account, what, grant)
        .await?;
    Ok(Json(receipt.change.into()))
}

/// Removes a passkey (behind a step-up).
pub async fn remove_passkey(
    State(state): State<AppState>,
    ScriptCustomer(customer): ScriptCustomer,
    Path(credential_id): Path<String>,
    ApiJson(body): ApiJson<MaybeGrant>,
) -> ApiResult<Json<Value>> {
    let grant = body.step_up_grant.as_deref();
    state
        .app
        .guard
        .remove_passkey(&customer.actor, &customer.account, &credential_id, grant)
        .await?;
    Ok(Json(json!({ "removed": credential_id })))
}

/// An address to allow-list, with the grant of its step-up.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddressBody {
    address: String,
    asset: String,
    network: String,
    #[serde(default)]
    label: String,
    step_up_grant: Option<String>,
}

impl AddressBody {
    fn request(&self, customer: &Customer) -> NewAddress {
        NewAddress {
            address: self.address.clone(),
            asset: self.asset.clone(),
            network: self.network.clone(),
            label: self.label.clone(),
            ctx: customer.ctx.clone(),
        }
    }
}

/// `POST /security/api/addresses/check`: the address validated, nothing written.
pub async fn check_address(
    State(state): State<AppState>,
    ScriptCustomer(customer): ScriptCustomer,
    ApiJson(body): ApiJson<AddressBody>,
) -> ApiResult<Json<Value>> {
    let request = body.request(&customer);
    let method = state
        .app
        .guard
        .check_address(&customer.actor, &customer.account, &request)
        .await?;
    Ok(step_up_needed(Some(method)))
}

pub async fn add_address(
    State(state): State<AppState>,
    ScriptCustomer(customer): ScriptCustomer,
    ApiJson(body): ApiJson<AddressBody>,
) -> ApiResult<Json<PendingChangeDto>> {
    let request = body.request(&customer);
    let grant = body.step_up_grant.as_deref();
    let receipt = state
        .app
        .guard
        .add_address(&customer.actor, &customer.account, request, grant)
        .await?;
    Ok(Json(receipt.change.into()))
}
