//! The JSON shapes of the API (requests and responses), with their OpenAPI schemas (the audit
//! trail, events, paging and health in `audit`). Requests
//! refuse unknown fields, so a misspelt field is an error rather than silently ignored.

use portcullis_app::keys::KeyView;
use portcullis_app::ports::Operator as StoredOperator;
use portcullis_core::account::Account;
use portcullis_core::events::{EventContext, StepUp};
use portcullis_core::time::UnixMillis;
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use utoipa::ToSchema;

mod audit;
pub mod formats;
mod fund_window;
pub mod whole;
pub use audit::*;
pub use fund_window::{FundWindowBody, FundWindowDto};

/// `POST /v1/verify`: a gateway asks whether a signed request may pass. Fields borrow from
/// the request body where they can (this endpoint is the hot path).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VerifyBody<'a> {
    /// The public API key the client sent.
    #[serde(borrow)]
    #[schema(value_type = String)]
    pub api_key: Cow<'a, str>,
    /// Hex HMAC-SHA256 (HMAC keys) or base64 Ed25519 (Ed25519 keys).
    #[serde(borrow)]
    #[schema(value_type = String)]
    pub signature: Cow<'a, str>,
    /// The query string followed by the body, exactly as signed; holds `timestamp` and
    /// optionally `recvWindow`.
    #[serde(borrow)]
    #[schema(value_type = String)]
    pub payload: Cow<'a, str>,
    /// The client's IP address.
    #[serde(borrow)]
    #[schema(schema_with = formats::ip_address)]
    pub ip: Cow<'a, str>,
    /// The permission the endpoint needs: `read`, `trade`, `withdraw` or `transfer`.
    #[serde(borrow)]
    #[schema(value_type = String, pattern = "^(read|trade|withdraw|transfer)$")]
    pub scope: Cow<'a, str>,
}

/// The verification answer: `ok` with the key's owner, or a stable `reason`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct VerifyAnswer {
    pub ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_id: Option<String>,
    /// One of `unknown_key`, `revoked`, `expired`, `bad_signature`,
    /// `timestamp_outside_window`, `replayed`, `ip_not_allowed`, `scope_missing`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Where a customer action came from (the event contract's `ctx`).
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ContextBody {
    #[schema(schema_with = formats::optional_ip_address)]
    pub ip: Option<String>,
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]*$"
    )]
    pub device_id: Option<String>,
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]*$"
    )]
    pub user_agent: Option<String>,
    /// `web`, `app`, `api` or `support`.
    #[schema(pattern = "^(web|app|api|support)$")]
    pub channel: Option<String>,
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]*$"
    )]
    pub session_id: Option<String>,
    pub call_active: Option<bool>,
    pub remote_access: Option<bool>,
}

impl TryFrom<ContextBody> for EventContext {
    type Error = crate::error::ApiError;

    /// A context as the API takes it: checked (`EventContext::check`), `invalid_context` when
    /// it is not.
    fn try_from(body: ContextBody) -> Result<Self, Self::Error> {
        let ctx = EventContext {
            ip: body.ip,
            device_id: body.device_id,
            user_agent: body.user_agent,
            channel: body.channel,
            session_id: body.session_id,
            call_active: body.call_active,
            remote_access: body.remote_access,
        };
        ctx.check().map_err(|message| {
            crate::error::ApiError::new(portcullis_app::ErrorCode::InvalidContext, message)
        })?;
        Ok(ctx)
    }
}

/// How the customer confirmed the action: `none`, `email`, `sms`, `totp` or `passkey`.
#[derive(Debug, Clone, Copy, Default, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum StepUpBody {
    #[default]
    None,
    Email,
    Sms,
    Totp,
    Passkey,
}

impl From<StepUpBody> for StepUp {
    fn from(body: StepUpBody) -> Self {
        match body {
            StepUpBody::None => StepUp::None,
            StepUpBody::Email => StepUp::Email,
            StepUpBody::Sms => StepUp::Sms,
            StepUpBody::Totp => StepUp::Totp,
            StepUpBody::Passkey => StepUp::Passkey,
        }
    }
}

/// `POST /v1/accounts/{account}/keys`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateKeyBody {
    /// At most 100 printable characters (trimmed).
    #[schema(pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]*$")]
    #[serde(default)]
    pub label: String,
    /// `hmac-sha256` (default; Portcullis generates the secret) or `ed25519`.
    #[schema(pattern = "^(hmac-sha256|ed25519)$")]
    #[serde(default)]
    pub algorithm: Option<String>,
    /// Ed25519 only: the customer's public key (hex, base64 or PEM).
    pub public_key: Option<String>,
    #[schema(schema_with = formats::scopes)]
    pub scopes: Vec<String>,
    /// CIDRs or bare addresses, IPv4 or IPv6; empty = unrestricted.
    #[schema(schema_with = formats::ip_allowlist)]
    #[serde(default)]
    pub ip_allowlist: Vec<String>,
    /// RFC 3339.
    #[schema(format = DateTime)]
    pub expires_at: Option<String>,
    /// Informational (monitor mode); widening is proven by `step_up_grant`, not by this claim.
    #[serde(default)]
    pub step_up: StepUpBody,
    /// A grant from a passed step-up; needed when the key asks for `withdraw` or `transfer`.
    pub step_up_grant: Option<String>,
    /// Grant `withdraw`/`transfer` for a while only (and up to an amount), from when they take
    /// effect after the cool-down.
    pub fund_window: Option<FundWindowBody>,
    #[serde(default)]
    pub ctx: ContextBody,
}

/// `POST /v1/keys/import` (admin): bring an existing HMAC key under Portcullis.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ImportKeyBody {
    #[schema(pattern = "^[A-Za-z0-9_.:-]{1,64}$")]
    pub account: String,
    /// At most 100 printable characters (trimmed).
    #[schema(pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]*$")]
    #[serde(default)]
    pub label: String,
    /// 16 to 128 printable ASCII characters.
    #[schema(pattern = "^[\\x21-\\x7e]{16,128}$")]
    pub api_key: String,
    /// 16 to 512 printable ASCII characters.
    #[schema(pattern = "^[\\x20-\\x7e]{16,512}$")]
    pub secret: String,
    #[schema(schema_with = formats::scopes)]
    pub scopes: Vec<String>,
    #[schema(schema_with = formats::ip_allowlist)]
    #[serde(default)]
    pub ip_allowlist: Vec<String>,
    #[schema(format = DateTime)]
    pub expires_at: Option<String>,
}

/// `PATCH /v1/keys/{key_id}`: absent fields stay as they are.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateKeyBody {
    /// At most 100 printable characters (trimmed).
    #[schema(pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]*$")]
    pub label: Option<String>,
    /// The full set after the change.
    #[schema(schema_with = formats::scopes)]
    pub scopes: Option<Vec<String>>,
    /// The full list after the change; `[]` removes the restriction.
    #[schema(schema_with = formats::ip_allowlist)]
    pub ip_allowlist: Option<Vec<String>>,
    /// RFC 3339; `null` removes the expiry.
    #[serde(default, deserialize_with = "present_or_null")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub expires_at: Option<Option<String>>,
    /// Box the key's `withdraw`/`transfer` in a window from when the change applies; `null`
    /// makes them permanent again (a widening, like a later end or a higher cap).
    #[serde(default, deserialize_with = "present_or_null")]
    #[schema(value_type = Option<FundWindowBody>)]
    pub fund_window: Option<Option<FundWindowBody>>,
    /// Apply only if the key is still at this version.
    #[serde(default, deserialize_with = "whole::optional")]
    pub expected_version: Option<i64>,
    /// Informational (monitor mode); widening is proven by `step_up_grant`, not by this claim.
    #[serde(default)]
    pub step_up: StepUpBody,
    /// A grant from a passed step-up; needed when the change widens the key.
    pub step_up_grant: Option<String>,
    #[serde(default)]
    pub ctx: ContextBody,
    /// Never changes: a request that sends it is refused with `immutable_field` (issue a new
    /// key instead). Not in the document, which offers only what can change.
    #[schema(ignore)]
    pub api_key: Option<serde::de::IgnoredAny>,
    /// Never changes: a request that sends it is refused with `immutable_field`.
    #[schema(ignore)]
    pub account: Option<serde::de::IgnoredAny>,
    /// Never changes: a request that sends it is refused with `immutable_field`.
    #[schema(ignore)]
    pub algorithm: Option<serde::de::IgnoredAny>,
}

impl UpdateKeyBody {
    /// The fields sent that a key never changes.
    pub fn immutable_fields(&self) -> Vec<&'static str> {
        [
            ("api_key", self.api_key.is_some()),
            ("account", self.account.is_some()),
            ("algorithm", self.algorithm.is_some()),
        ]
        .into_iter()
        .filter_map(|(name, sent)| sent.then_some(name))
        .collect()
    }
}

/// `POST /v1/keys/{key_id}/revoke`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RevokeKeyBody {
    #[serde(default)]
    pub ctx: ContextBody,
}

/// `POST /v1/keys/{key_id}/rotate`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateKeyBody {
    /// How long the previous secret stays valid (default from configuration).
    #[serde(default, deserialize_with = "whole::optional")]
    pub overlap_seconds: Option<i64>,
    /// A step-up grant of the customer's: needed to rotate a key that can withdraw or
    /// transfer when the customer has an authenticator.
    pub step_up_grant: Option<String>,
}

/// A field that is present (as a value or `null`) reads as `Some`, so `null` survives: for
/// fields where `null` means "remove" and absence means "leave as it is".
pub(crate) fn present_or_null<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

/// An API key as shown to operators: never its secret.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct KeyDto {
    pub key_id: String,
    pub api_key: String,
    pub account: String,
    pub label: String,
    pub algorithm: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub public_key: Option<String>,
    pub scopes: Vec<String>,
    pub ip_allowlist: Vec<String>,
    /// `active`, `revoked`, `expired` or `idle_expired`.
    pub status: String,
    pub created_at: String,
    pub updated_at: String,
    pub expires_at: Option<String>,
    /// When idle expiry will end the key if it stays unused (unrestricted trading keys only).
    pub idle_expires_at: Option<String>,
    pub last_used_at: Option<String>,
    pub last_used_ip: Option<String>,
    pub revoked_at: Option<String>,
    /// Present when `withdraw`/`transfer` are granted for a while only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fund_window: Option<FundWindowDto>,
    pub version: i64,
}

impl From<KeyView> for KeyDto {
    fn from(view: KeyView) -> Self {
        let key = view.key;
        let scopes = key.scopes_at(view.at);
        KeyDto {
            status: view.status.as_str().to_owned(),
            idle_expires_at: view.idle_deadline.map(UnixMillis::to_rfc3339),
            key_id: key.key_id,
            api_key: key.api_key,
            account: key.account,
            label: key.label,
            algorithm: key.algorithm.as_str().to_owned(),
            public_key: key.public_key.map(|k| k.to_hex()),
            scopes: scopes.names().into_iter().map(str::to_owned).collect(),
            fund_window: key.fund_window.map(|w| FundWindowDto::of(&w, view.at)),
            ip_allowlist: key.ip_allowlist.entries(),
            created_at: key.created_at.to_rfc3339(),
            updated_at: key.updated_at.to_rfc3339(),
            expires_at: key.expires_at.map(UnixMillis::to_rfc3339),
            last_used_at: key.last_used_at.map(UnixMillis::to_rfc3339),
            last_used_ip: key.last_used_ip.map(|ip| ip.to_string()),
            revoked_at: key.revoked_at.map(UnixMillis::to_rfc3339),
            version: key.version,
        }
    }
}

/// A key just issued or rotated: the only response that ever carries its secret.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct IssuedKeyDto {
    pub key: KeyDto,
    /// The HMAC secret, shown this once; absent for Ed25519 keys.
    pub secret: Option<String>,
    /// The fund-moving scopes still waiting out their cool-down, when the key asked for any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending: Option<crate::guard_dto::PendingChangeDto>,
}

/// `POST /v1/accounts`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateAccountBody {
    /// 1 to 64 letters, digits, `_`, `-`, `.` or `:`.
    #[schema(pattern = "^[A-Za-z0-9_.:-]{1,64}$")]
    pub id: String,
    #[schema(max_length = 200)]
    pub display_name: Option<String>,
    /// At most 254 characters, no spaces, a dotted domain after the last `@`.
    #[schema(
        max_length = 254,
        pattern = "^[^\\s\\x00-\\x1f\\x7f-\\x9f]+@[^\\s@.\\x00-\\x1f\\x7f-\\x9f][^\\s@\\x00-\\x1f\\x7f-\\x9f]*\\.[^\\s@\\x00-\\x1f\\x7f-\\x9f]*[^\\s@.\\x00-\\x1f\\x7f-\\x9f]$"
    )]
    pub email: Option<String>,
    /// E.164, e.g. `+14155550123`.
    #[schema(pattern = "^\\+[1-9][0-9]{7,14}$")]
    pub phone: Option<String>,
    /// 4 to 20 letters or digits, shown in every message the exchange sends.
    #[schema(pattern = "^[A-Za-z0-9]{4,20}$")]
    pub anti_phishing_code: Option<String>,
}

/// `PATCH /v1/accounts/{account}`: absent fields stay, empty strings clear. A new `email` or
/// `anti_phishing_code` is a widening and needs `step_up_grant`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateAccountBody {
    #[schema(max_length = 200)]
    pub display_name: Option<String>,
    /// As at creation; `""` clears it.
    #[schema(
        max_length = 254,
        pattern = "^$|^[^\\s\\x00-\\x1f\\x7f-\\x9f]+@[^\\s@.\\x00-\\x1f\\x7f-\\x9f][^\\s@\\x00-\\x1f\\x7f-\\x9f]*\\.[^\\s@\\x00-\\x1f\\x7f-\\x9f]*[^\\s@.\\x00-\\x1f\\x7f-\\x9f]$"
    )]
    pub email: Option<String>,
    /// E.164; `""` clears it.
    #[schema(pattern = "^$|^\\+[1-9][0-9]{7,14}$")]
    pub phone: Option<String>,
    /// 4 to 20 letters or digits; `""` clears it.
    #[schema(pattern = "^$|^[A-Za-z0-9]{4,20}$")]
    pub anti_phishing_code: Option<String>,
    /// A step-up grant (`psu_...`) of this account, spent by a contact change.
    pub step_up_grant: Option<String>,
}

/// An account.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AccountDto {
    pub id: String,
    pub display_name: String,
    pub email: Option<String>,
    pub phone: Option<String>,
    /// Whether an anti-phishing code is set (the code itself is shown only to its owner).
    pub anti_phishing_code_set: bool,
    pub created_at: String,
    pub updated_at: String,
    pub version: i64,
}

impl From<Account> for AccountDto {
    fn from(account: Account) -> Self {
        AccountDto {
            anti_phishing_code_set: account.anti_phishing_code.is_some(),
            id: account.id,
            display_name: account.display_name,
            email: account.email,
            phone: account.phone,
            created_at: account.created_at.to_rfc3339(),
            updated_at: account.updated_at.to_rfc3339(),
            version: account.version,
        }
    }
}

/// `POST /v1/operators`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateOperatorBody {
    /// 1 to 64 letters, digits, `_`, `-`, `.` or `:`.
    #[schema(pattern = "^[A-Za-z0-9_.:-]{1,64}$")]
    pub name: String,
    /// `admin`, `analyst` or `integration`.
    #[schema(pattern = "^(admin|analyst|integration)$")]
    pub role: String,
}

/// An operator (never its token).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct OperatorDto {
    pub id: String,
    pub name: String,
    pub role: String,
    pub created_at: String,
    pub revoked_at: Option<String>,
}

impl From<StoredOperator> for OperatorDto {
    fn from(operator: StoredOperator) -> Self {
        OperatorDto {
            id: operator.id,
            name: operator.name,
            role: operator.role.as_str().to_owned(),
            created_at: operator.created_at.to_rfc3339(),
            revoked_at: operator.revoked_at.map(UnixMillis::to_rfc3339),
        }
    }
}

/// A new operator with its bearer token, shown this once.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct NewOperatorDto {
    pub operator: OperatorDto,
    pub token: String,
}
