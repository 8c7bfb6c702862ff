//! The JSON shapes of the operators' side of the API: the audit trail and its signed head, the
//! event log, paging, health, and maintenance results.

use portcullis_core::audit::{AuditEntry, SignedHead};
use portcullis_core::time::UnixMillis;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

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
    /// Return items after this sequence number: the `seq` of the last item of the previous
    /// page (absent: from the start).
    #[param(value_type = Option<i64>)]
    pub after: Option<String>,
    /// At most this many (default 100, at most 1000).
    pub limit: Option<u32>,
}

/// A page of accounts, in the order of their ids.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AccountPage {
    /// Return accounts whose id sorts after this one: the last id of the previous page.
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
    /// TOTP secrets, anti-phishing codes and notice bodies sealed again (or sealed for the first time, when
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

/// A stored decision as the contract writes it, with its event's position in the log (page on
/// with `after`).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct LoggedDecisionDto {
    /// The decided event's position in the event log.
    pub seq: i64,
    pub event_id: String,
    /// `allow`, `challenge`, `hold` or `block`.
    pub decision: String,
    /// 0 to 100.
    pub score: i64,
    /// Ids of the rules that decided (docs/rules.md).
    pub reasons: Vec<String>,
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
    #[param(pattern = "^(pending|delivered|dead)$")]
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
