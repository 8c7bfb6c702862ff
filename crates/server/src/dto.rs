//! The JSON shapes of the API (requests and responses), with their OpenAPI schemas. Requests
//! refuse unknown fields, so a misspelt field is an error rather than silently ignored.

use portcullis_app::keys::KeyView;
use portcullis_app::ports::Operator as StoredOperator;
use portcullis_core::account::Account;
use portcullis_core::audit::{AuditEntry, SignedHead};
use portcullis_core::events::{EventContext, StepUp};
use portcullis_core::time::UnixMillis;
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use utoipa::ToSchema;

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
    #[schema(value_type = String)]
    pub ip: Cow<'a, str>,
    /// The permission the endpoint needs: `read`, `trade`, `withdraw` or `transfer`.
    #[serde(borrow)]
    #[schema(value_type = String)]
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
    pub ip: Option<String>,
    pub device_id: Option<String>,
    pub user_agent: Option<String>,
    /// `web`, `app`, `api` or `support`.
    pub channel: Option<String>,
    pub session_id: Option<String>,
    pub call_active: Option<bool>,
    pub remote_access: Option<bool>,
}

impl From<ContextBody> for EventContext {
    fn from(body: ContextBody) -> Self {
        EventContext {
            ip: body.ip,
            device_id: body.device_id,
            user_agent: body.user_agent,
            channel: body.channel,
            session_id: body.session_id,
            call_active: body.call_active,
            remote_access: body.remote_access,
        }
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
    #[serde(default)]
    pub label: String,
    /// `hmac-sha256` (default; Portcullis generates the secret) or `ed25519`.
    #[serde(default)]
    pub algorithm: Option<String>,
    /// Ed25519 only: the customer's public key (hex, base64 or PEM).
    pub public_key: Option<String>,
    pub scopes: Vec<String>,
    /// CIDRs or bare addresses, IPv4 or IPv6; empty = unrestricted.
    #[serde(default)]
    pub ip_allowlist: Vec<String>,
    /// RFC 3339.
    pub expires_at: Option<String>,
    /// Informational (monitor mode); widening is proven by `step_up_grant`, not by this claim.
    #[serde(default)]
    pub step_up: StepUpBody,
    /// A grant from a passed step-up; needed when the key asks for `withdraw` or `transfer`.
    pub step_up_grant: Option<String>,
    #[serde(default)]
    pub ctx: ContextBody,
}

/// `POST /v1/keys/import` (admin): bring an existing HMAC key under Portcullis.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ImportKeyBody {
    pub account: String,
    #[serde(default)]
    pub label: String,
    pub api_key: String,
    pub secret: String,
    pub scopes: Vec<String>,
    #[serde(default)]
    pub ip_allowlist: Vec<String>,
    pub expires_at: Option<String>,
}

/// `PATCH /v1/keys/{key_id}`: absent fields stay as they are.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateKeyBody {
    pub label: Option<String>,
    /// The full set after the change.
    pub scopes: Option<Vec<String>>,
    /// The full list after the change; `[]` removes the restriction.
    pub ip_allowlist: Option<Vec<String>>,
    /// RFC 3339; `null` removes the expiry.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub expires_at: Option<Option<String>>,
    /// Apply only if the key is still at this version.
    pub expected_version: Option<i64>,
    /// Informational (monitor mode); widening is proven by `step_up_grant`, not by this claim.
    #[serde(default)]
    pub step_up: StepUpBody,
    /// A grant from a passed step-up; needed when the change widens the key.
    pub step_up_grant: Option<String>,
    #[serde(default)]
    pub ctx: ContextBody,
    /// Never changes: a request that sends it is refused with `immutable_field` (issue a new
    /// key instead).
    #[schema(value_type = Option<String>)]
    pub api_key: Option<serde::de::IgnoredAny>,
    /// Never changes: a request that sends it is refused with `immutable_field`.
    #[schema(value_type = Option<String>)]
    pub account: Option<serde::de::IgnoredAny>,
    /// Never changes: a request that sends it is refused with `immutable_field`.
    #[schema(value_type = Option<String>)]
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
    pub overlap_seconds: Option<i64>,
    /// A step-up grant of the customer's: needed to rotate a key that can withdraw or
    /// transfer when the customer has an authenticator.
    pub step_up_grant: Option<String>,
}

fn double_option<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
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
    pub version: i64,
}

impl From<KeyView> for KeyDto {
    fn from(view: KeyView) -> Self {
        let key = view.key;
        KeyDto {
            status: view.status.as_str().to_owned(),
            idle_expires_at: view.idle_deadline.map(UnixMillis::to_rfc3339),
            key_id: key.key_id,
            api_key: key.api_key,
            account: key.account,
            label: key.label,
            algorithm: key.algorithm.as_str().to_owned(),
            public_key: key.public_key.map(|k| k.to_hex()),
            scopes: key.scopes.names().into_iter().map(str::to_owned).collect(),
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
    pub id: String,
    pub display_name: Option<String>,
    pub email: Option<String>,
    /// E.164, e.g. `+14155550123`.
    pub phone: Option<String>,
    pub anti_phishing_code: Option<String>,
}

/// `PATCH /v1/accounts/{account}`: absent fields stay, empty strings clear. A new `email` or
/// `anti_phishing_code` is a widening and needs `step_up_grant`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateAccountBody {
    pub display_name: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
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
    pub name: String,
    /// `admin`, `analyst` or `integration`.
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

/// One audit entry.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AuditEntryDto {
    pub seq: i64,
    pub at: String,
    pub actor: String,
    pub action: String,
    pub target: String,
    /// The details as recorded (a JSON object).
    #[schema(value_type = Object)]
    pub details: serde_json::Value,
    pub prev_hash: String,
    /// HMAC-SHA256 under `mac_key_id` (hex); for a legacy entry, its SHA-256.
    pub hash: String,
    /// The audit key that sealed the entry; absent for a legacy entry, written before the
    /// chain was keyed.
    pub mac_key_id: Option<String>,
}

impl From<AuditEntry> for AuditEntryDto {
    fn from(entry: AuditEntry) -> Self {
        AuditEntryDto {
            details: serde_json::from_str(&entry.details)
                .unwrap_or(serde_json::Value::String(entry.details.clone())),
            seq: entry.seq,
            at: entry.at.to_rfc3339(),
            actor: entry.actor,
            action: entry.action,
            target: entry.target,
            prev_hash: entry.prev_hash,
            hash: entry.hash,
            mac_key_id: entry.mac_key_id,
        }
    }
}

/// The result of `GET` or `POST /v1/audit/verify`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ChainReportDto {
    pub intact: bool,
    /// Entries verified (when intact).
    pub entries: Option<i64>,
    /// How many of them are legacy: unkeyed, written before the chain was keyed (when intact).
    pub legacy_entries: Option<i64>,
    /// The first entry found wrong (when broken).
    pub first_bad_seq: Option<i64>,
    /// `edited`, `unknown_key`, `unkeyed`, `removed`, `reordered`, `truncated`,
    /// `head_mismatch`, `truncated_below_head` or `rewritten_since_head`.
    pub problem: Option<String>,
    pub message: String,
}

/// A signed audit head (`GET /v1/audit/head`): what `portcullis audit head --out` writes, to be
/// kept outside the database and given back to `POST /v1/audit/verify`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AuditHeadDto {
    /// `portcullis-audit-head-v1`.
    pub format: String,
    /// The last entry's sequence number.
    pub seq: i64,
    /// Its MAC (hex).
    pub hash: String,
    /// When it was written (RFC 3339).
    pub entry_at: String,
    /// When the head was exported (RFC 3339).
    pub exported_at: String,
    /// The Ed25519 key that signed it (`<master key id>:audit-head-v1`).
    pub signing_key_id: String,
    /// Its public key (hex).
    pub public_key: String,
    /// Ed25519 signature (hex).
    pub signature: String,
}

impl From<SignedHead> for AuditHeadDto {
    fn from(head: SignedHead) -> Self {
        AuditHeadDto {
            format: head.format,
            seq: head.seq,
            hash: head.hash,
            entry_at: head.entry_at.to_rfc3339(),
            exported_at: head.exported_at.to_rfc3339(),
            signing_key_id: head.signing_key_id,
            public_key: head.public_key,
            signature: head.signature,
        }
    }
}

/// One event of the internal event log, in the contract's format.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct EventDto {
    pub seq: i64,
    #[schema(value_type = Object)]
    pub event: serde_json::Value,
}

/// Paging parameters.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct Page {
    /// Return items after this position (a sequence number or an id).
    pub after: Option<String>,
    /// At most this many (default 100, at most 1000).
    pub limit: Option<u32>,
}

/// Health and readiness.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct HealthDto {
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backend: Option<String>,
}

/// `POST /v1/secrets/rewrap` result.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct RewrapDto {
    /// HMAC secrets sealed again under the active master key.
    pub resealed: usize,
    /// Anti-phishing codes and notice bodies sealed again (or sealed for the first time, when
    /// they were stored in plain text before they were sealed at rest).
    pub resealed_at_rest: u64,
    pub active_master_key: String,
}

/// A decision, as the contract writes it.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct DecisionDto {
    pub event_id: String,
    /// `allow`, `challenge`, `hold` or `block`.
    pub decision: String,
    /// 0 to 100.
    pub score: u8,
    /// Ids of the rules that decided (docs/rules.md).
    pub reasons: Vec<String>,
}

impl From<portcullis_engine::Decision> for DecisionDto {
    fn from(decision: portcullis_engine::Decision) -> Self {
        DecisionDto {
            event_id: decision.event_id,
            decision: decision.decision.as_str().to_owned(),
            score: decision.score,
            reasons: decision.reasons,
        }
    }
}

/// A refused line of a batch.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct LineErrorDto {
    /// 1-based line number in the batch.
    pub line: usize,
    pub reason: String,
}

/// The result of `POST /v1/events`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct IngestReportDto {
    pub accepted: usize,
    /// Lines whose id was already processed (ignored).
    pub duplicates: usize,
    pub rejected: Vec<LineErrorDto>,
    /// Decisions for the batch's deciding events, in batch order.
    pub decisions: Vec<DecisionDto>,
}

/// A stored decision with what the rules saw.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct StoredDecisionDto {
    pub event_id: String,
    pub decision: String,
    pub score: i64,
    pub reasons: Vec<String>,
    /// Feature values at the time of the decision.
    #[schema(value_type = Object)]
    pub features: serde_json::Value,
    /// Event time of the decided event.
    pub decided_at: String,
}

/// The result of `POST /v1/policy/reload`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PolicyReloadDto {
    /// Rules now in force.
    pub rules: usize,
}

/// `GET /v1/outbox` filters.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct OutboxQuery {
    /// Only this account's messages.
    pub account: Option<String>,
    /// `pending`, `delivered` or `dead`.
    pub status: Option<String>,
    /// At most this many (default 100, at most 1000).
    pub limit: Option<u32>,
}

/// A notification in the outbox and where its delivery stands (bodies are not included).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct OutboxEntryDto {
    /// Also the `Portcullis-Delivery-Id` header and the e-mail's Message-ID.
    pub id: String,
    pub account: String,
    /// `email` or `webhook`.
    pub channel: String,
    /// The e-mail address or webhook URL (with any credentials in it shown as `***`).
    pub recipient: String,
    pub subject: String,
    /// `pending`, `delivered` or `dead`.
    pub status: String,
    pub attempts: i64,
    pub created_at: String,
    pub next_attempt_at: String,
    pub delivered_at: Option<String>,
    pub last_error: Option<String>,
}

impl From<portcullis_app::ports::OutboxEntry> for OutboxEntryDto {
    fn from(entry: portcullis_app::ports::OutboxEntry) -> Self {
        let message = entry.message;
        OutboxEntryDto {
            id: message.id,
            account: message.account,
            channel: message.channel.as_str().to_owned(),
            // A webhook URL may carry credentials (`user:pass@`, `?token=`); addresses do not.
            recipient: match message.channel {
                portcullis_app::ports::Channel::Webhook => {
                    portcullis_core::redact::redact_url_credentials(&message.recipient)
                }
                portcullis_app::ports::Channel::Email => message.recipient,
            },
            subject: message.subject,
            status: entry.status.as_str().to_owned(),
            attempts: entry.attempts,
            created_at: message.created_at.to_rfc3339(),
            next_attempt_at: entry.next_attempt_at.to_rfc3339(),
            delivered_at: entry.delivered_at.map(UnixMillis::to_rfc3339),
            last_error: entry.last_error,
        }
    }
}
