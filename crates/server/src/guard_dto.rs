//! JSON shapes of the guarded-widening API (step-up, pending changes, protections, addresses)
//! and their OpenAPI schemas.

use crate::dto::ContextBody;
use portcullis_app::guard::{
    FreezeReport, IssuedGrant, PendingReceipt, WithdrawalCheck, WithdrawalRequest,
};
use portcullis_app::ports::{PendingAction, PendingChange, WithdrawalAddress};
use portcullis_core::guard::{PendingStatus, Protection};
use portcullis_core::time::UnixMillis;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A code from the customer's authenticator app.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TotpCodeBody {
    pub code: String,
}

/// A TOTP enrolment just started; the URI (with the secret) is shown this once.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TotpStartDto {
    /// `otpauth://totp/...` with the secret.
    pub provisioning_uri: String,
    /// The same URI as a QR code, SVG markup, for the authenticator app to scan.
    pub qr_svg: String,
}

/// A passed step-up: spend `grant` once, before `expires_at`, as `step_up_grant`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct GrantDto {
    pub grant: String,
    /// `passkey` or `totp`.
    pub method: String,
    pub expires_at: String,
}

impl From<IssuedGrant> for GrantDto {
    fn from(grant: IssuedGrant) -> Self {
        Self {
            grant: String::from_utf8_lossy(grant.token.expose()).into_owned(),
            method: grant.method.as_str().to_owned(),
            expires_at: grant.expires_at.to_rfc3339(),
        }
    }
}

/// A widening waiting out its cool-down (or closed).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PendingChangeDto {
    pub id: String,
    pub account: String,
    /// `key_change`, `add_address`, `unfreeze`, `remove_totp` or `contact_change`.
    pub kind: String,
    /// What the change does, in the stored form.
    #[schema(value_type = Object)]
    pub action: serde_json::Value,
    /// Stable names: `adds_withdraw`, `adds_transfer`, `widens_allowlist`, `extends_expiry`,
    /// `extends_fund_window`,
    /// `adds_address`, `disables_protection`, `changes_contact`.
    pub widenings: Vec<String>,
    /// `pending`, `held`, `applied`, `cancelled` or `failed`.
    pub status: String,
    /// Who held, cancelled, or why it failed.
    pub status_detail: Option<String>,
    pub requested_at: String,
    pub applies_at: String,
    pub requested_by: String,
    pub step_up: String,
    /// The event the risk engine decided on when the change was requested.
    pub event_id: Option<String>,
    /// A hold made by the risk engine needs two operators to release (four-eyes): the first
    /// one's approval is recorded here while the change stays held, until a different operator
    /// completes the release.
    pub release_approved_by: Option<String>,
    /// The operator whose release let it apply.
    pub released_by: Option<String>,
    /// The single-use cancel link: only in the response that created the change.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cancel_url: Option<String>,
}

impl From<PendingChange> for PendingChangeDto {
    fn from(change: PendingChange) -> Self {
        let status_detail = match &change.status {
            PendingStatus::Pending => None,
            PendingStatus::Held { by, reason } => Some(format!("held by {by}: {reason}")),
            PendingStatus::Applied { at } => Some(format!("applied at {}", at.to_rfc3339())),
            PendingStatus::Cancelled { at, by } => {
                Some(format!("cancelled by {by} at {}", at.to_rfc3339()))
            }
            PendingStatus::Failed { reason, .. } => Some(reason.clone()),
        };
        Self {
            release_approved_by: change.approved_by.clone(),
            released_by: change.released_by.clone(),
            kind: change.action.kind().to_owned(),
            action: action_json(&change.action),
            widenings: change
                .widenings
                .iter()
                .map(|w| w.as_str().to_owned())
                .collect(),
            status: change.status.as_str().to_owned(),
            status_detail,
            requested_at: change.requested_at.to_rfc3339(),
            applies_at: change.applies_at.to_rfc3339(),
            step_up: change.step_up.as_str().to_owned(),
            id: change.id,
            account: change.account,
            requested_by: change.requested_by,
            event_id: change.event_id,
            cancel_url: None,
        }
    }
}

/// The action without secrets: a new anti-phishing code shows as `"new"` or `"cleared"`.
fn action_json(action: &PendingAction) -> serde_json::Value {
    action.public_json()
}

impl From<PendingReceipt> for PendingChangeDto {
    fn from(receipt: PendingReceipt) -> Self {
        let mut dto = PendingChangeDto::from(receipt.change);
        dto.cancel_url = Some(String::from_utf8_lossy(receipt.cancel_url.expose()).into_owned());
        dto
    }
}

/// `POST /v1/changes/{id}/hold`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HoldBody {
    pub reason: String,
}

/// A step-up grant for a request that needs one.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GrantBody {
    pub step_up_grant: Option<String>,
}

/// `POST /v1/accounts/{account}/freeze`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FreezeBody {
    #[serde(default)]
    pub ctx: ContextBody,
}

/// `POST /v1/accounts/{account}/settings-lock`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LockBody {
    /// RFC 3339; no widening is accepted before it. Can only move later.
    #[schema(format = DateTime)]
    pub until: String,
}

/// An account's protections.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ProtectionDto {
    pub frozen: bool,
    pub frozen_at: Option<String>,
    /// Present while a settings lock is set (it may already have run out).
    pub locked_until: Option<String>,
}

impl From<Protection> for ProtectionDto {
    fn from(p: Protection) -> Self {
        Self {
            frozen: p.is_frozen(),
            frozen_at: p.frozen_at.map(UnixMillis::to_rfc3339),
            locked_until: p.locked_until.map(UnixMillis::to_rfc3339),
        }
    }
}

/// What a freeze did.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct FreezeDto {
    pub protection: ProtectionDto,
    pub keys_narrowed: Vec<String>,
    pub changes_cancelled: Vec<String>,
}

impl From<FreezeReport> for FreezeDto {
    fn from(report: FreezeReport) -> Self {
        Self {
            protection: report.protection.into(),
            keys_narrowed: report.keys_narrowed,
            changes_cancelled: report.changes_cancelled,
        }
    }
}

/// `POST /v1/accounts/{account}/addresses`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddAddressBody {
    /// 1 to 128 printable characters (trimmed).
    #[schema(
        max_length = 128,
        pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]*[^\\s\\x00-\\x1f\\x7f-\\x9f][^\\x00-\\x1f\\x7f-\\x9f]*$"
    )]
    pub address: String,
    #[schema(
        max_length = 128,
        pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]*[^\\s\\x00-\\x1f\\x7f-\\x9f][^\\x00-\\x1f\\x7f-\\x9f]*$"
    )]
    pub asset: String,
    #[schema(
        max_length = 128,
        pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]*[^\\s\\x00-\\x1f\\x7f-\\x9f][^\\x00-\\x1f\\x7f-\\x9f]*$"
    )]
    pub network: String,
    #[schema(max_length = 128, pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]*$")]
    #[serde(default)]
    pub label: String,
    pub step_up_grant: Option<String>,
    #[serde(default)]
    pub ctx: ContextBody,
}

/// An allow-listed withdrawal address.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AddressDto {
    pub address: String,
    pub asset: String,
    pub network: String,
    pub label: String,
    pub requested_at: String,
    pub usable_from: String,
}

impl From<WithdrawalAddress> for AddressDto {
    fn from(a: WithdrawalAddress) -> Self {
        Self {
            address: a.address,
            asset: a.asset,
            network: a.network,
            label: a.label,
            requested_at: a.requested_at.to_rfc3339(),
            usable_from: a.usable_from.to_rfc3339(),
        }
    }
}

/// `POST /v1/withdrawals/check`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WithdrawalCheckBody {
    pub account: String,
    pub network: String,
    pub address: String,
    /// The key the withdrawal comes through (API withdrawals): then the key must be able to
    /// withdraw now, and a capped fund window must have room for `amount_usd`, which the
    /// check counts against it when it answers `allowed`.
    pub key_id: Option<String>,
    /// The withdrawal's value in USD; required for a key whose fund window is capped.
    pub amount_usd: Option<f64>,
}

impl From<WithdrawalCheckBody> for WithdrawalRequest {
    fn from(body: WithdrawalCheckBody) -> Self {
        Self {
            account: body.account,
            network: body.network,
            address: body.address,
            key_id: body.key_id,
            amount_usd: body.amount_usd,
        }
    }
}

/// May this API withdrawal proceed?
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct WithdrawalCheckDto {
    pub allowed: bool,
    /// When refused: `account_frozen`, `address_not_allowlisted`; for the key named,
    /// `key_not_active`, `key_cannot_withdraw`, `fund_window_lapsed`, `amount_required` or
    /// `fund_window_cap_reached`.
    pub reason: Option<String>,
}

impl From<WithdrawalCheck> for WithdrawalCheckDto {
    fn from(check: WithdrawalCheck) -> Self {
        Self {
            allowed: check.allowed,
            reason: check.reason.map(str::to_owned),
        }
    }
}
