//! The contract's event types and the value checks serde cannot express.

use crate::allowlist::IpAllowList;
use crate::events::{AppliedBy, CancelledBy, Effective, EventContext, StepUp};
use crate::scope::ScopeSet;
use crate::time::UnixMillis;
use serde::{Deserialize, Serialize};

/// Earliest and latest timestamps accepted at all (anything else is a broken clock or a
/// unit mistake, such as seconds sent as milliseconds).
const EARLIEST: UnixMillis = UnixMillis(946_684_800_000); // 2000-01-01
const LATEST: UnixMillis = UnixMillis(4_102_444_800_000); // 2100-01-01
/// Upper bound for `amount_usd`: larger values are data errors, not withdrawals.
const MAX_USD: f64 = 1e12;
const MAX_ID_LEN: usize = 200;

/// One event of the feed.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ContractEvent {
    pub id: String,
    pub ts: UnixMillis,
    /// Absent only on `market.activity`.
    #[serde(default)]
    pub account: Option<String>,
    #[serde(default)]
    pub ctx: EventContext,
    #[serde(flatten)]
    pub body: EventBody,
}

/// How a login was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LoginMethod {
    Password,
    Passkey,
    Totp,
    Sms,
    EmailLink,
}

/// Where a reported contact came through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ContactChannel {
    Phone,
    Sms,
    Email,
    Telegram,
    Whatsapp,
    Other,
}

/// STIR/SHAKEN attestation of an inbound call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Attestation {
    A,
    B,
    C,
    #[serde(rename = "none")]
    None,
}

/// The type-specific part of an event: the one model of every event type, read by the parser
/// and the engine and written by the key authority (`events::KeyEvent`), so what Portcullis
/// emits and what it reads cannot drift apart. Serialising writes exactly the contract's
/// fields (`effective` only when `pending`); deriving `Serialize` changes nothing in how a line
/// is read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum EventBody {
    #[serde(rename = "login")]
    Login { method: LoginMethod, success: bool },
    #[serde(rename = "api_key.created")]
    ApiKeyCreated {
        key_id: String,
        scopes: ScopeSet,
        ip_allowlist: IpAllowList,
        step_up: StepUp,
        #[serde(default, skip_serializing_if = "Effective::is_now")]
        effective: Effective,
    },
    #[serde(rename = "api_key.updated")]
    ApiKeyUpdated {
        key_id: String,
        scopes: ScopeSet,
        ip_allowlist: IpAllowList,
        step_up: StepUp,
        #[serde(default, skip_serializing_if = "Effective::is_now")]
        effective: Effective,
    },
    #[serde(rename = "api_key.deleted")]
    ApiKeyDeleted { key_id: String },
    #[serde(rename = "api_key.used")]
    ApiKeyUsed {
        key_id: String,
        endpoint: String,
        count: u64,
        window_s: u64,
    },
    #[serde(rename = "address.added")]
    AddressAdded {
        address: String,
        asset: String,
        network: String,
        step_up: StepUp,
        #[serde(default, skip_serializing_if = "Effective::is_now")]
        effective: Effective,
    },
    #[serde(rename = "withdrawal.requested")]
    WithdrawalRequested {
        withdrawal_id: String,
        asset: String,
        network: String,
        address: String,
        amount: String,
        amount_usd: f64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        key_id: Option<String>,
    },
    #[serde(rename = "deposit")]
    Deposit {
        asset: String,
        amount: String,
        amount_usd: f64,
    },
    #[serde(rename = "contact.reported")]
    ContactReported {
        channel: ContactChannel,
        from: String,
        claimed: String,
        contacted_at: UnixMillis,
    },
    #[serde(rename = "contact.inbound_call")]
    ContactInboundCall {
        from: String,
        attestation: Attestation,
        duration_s: u64,
    },
    #[serde(rename = "market.activity")]
    MarketActivity {
        market: String,
        volume_ratio: f64,
        volatility: f64,
    },
    #[serde(rename = "fraud.confirmed")]
    FraudConfirmed {
        #[serde(default)]
        withdrawal_ids: Vec<String>,
        #[serde(default)]
        addresses: Vec<String>,
        #[serde(default)]
        from: Vec<String>,
        #[serde(default)]
        note: String,
    },
    /// Revision 2: the change of the event `event_ref` is in force from this event's `ts`.
    #[serde(rename = "change.applied")]
    ChangeApplied { event_ref: String, by: AppliedBy },
    /// Revision 2: the change of the event `event_ref` never takes effect.
    #[serde(rename = "change.cancelled")]
    ChangeCancelled { event_ref: String, by: CancelledBy },
    /// Portcullis' own additions (docs/event-contract.md).
    #[serde(rename = "api_key.rotated")]
    ApiKeyRotated {
        key_id: String,
        previous_valid_until: UnixMillis,
    },
    #[serde(rename = "api_key.idle_warning")]
    ApiKeyIdleWarning {
        key_id: String,
        expires_at: UnixMillis,
    },
    #[serde(rename = "api_key.idle_expired")]
    ApiKeyIdleExpired { key_id: String },
}

/// A value the contract does not allow.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct EventError(pub String);

fn fail<T>(message: impl Into<String>) -> Result<T, EventError> {
    Err(EventError(message.into()))
}

impl EventBody {
    /// The contract's name for the type.
    pub fn type_name(&self) -> &'static str {
        match self {
            EventBody::Login { .. } => "login",
            EventBody::ApiKeyCreated { .. } => "api_key.created",
            EventBody::ApiKeyUpdated { .. } => "api_key.updated",
            EventBody::ApiKeyDeleted { .. } => "api_key.deleted",
            EventBody::ApiKeyUsed { .. } => "api_key.used",
            EventBody::AddressAdded { .. } => "address.added",
            EventBody::WithdrawalRequested { .. } => "withdrawal.requested",
            EventBody::Deposit { .. } => "deposit",
            EventBody::ContactReported { .. } => "contact.reported",
            EventBody::ContactInboundCall { .. } => "contact.inbound_call",
            EventBody::MarketActivity { .. } => "market.activity",
            EventBody::FraudConfirmed { .. } => "fraud.confirmed",
            EventBody::ChangeApplied { .. } => "change.applied",
            EventBody::ChangeCancelled { .. } => "change.cancelled",
            EventBody::ApiKeyRotated { .. } => "api_key.rotated",
            EventBody::ApiKeyIdleWarning { .. } => "api_key.idle_warning",
            EventBody::ApiKeyIdleExpired { .. } => "api_key.idle_expired",
        }
    }

    /// Whether the contract asks for a decision on this type.
    pub fn asks_for_decision(&self) -> bool {
        matches!(
            self,
            EventBody::ApiKeyCreated { .. }
                | EventBody::ApiKeyUpdated { .. }
                | EventBody::AddressAdded { .. }
                | EventBody::WithdrawalRequested { .. }
        )
    }
}

impl ContractEvent {
    /// Checks what serde cannot: identifiers, times, amounts and counts.
    pub fn validate(&self) -> Result<(), EventError> {
        check_id("id", &self.id)?;
        check_time("ts", self.ts)?;
        match (&self.account, &self.body) {
            (None, EventBody::MarketActivity { .. }) => {}
            (None, body) => return fail(format!("`account` is required on {}", body.type_name())),
            (Some(account), _) => check_id("account", account)?,
        }
        match &self.body {
            EventBody::ApiKeyCreated { key_id, .. }
            | EventBody::ApiKeyUpdated { key_id, .. }
            | EventBody::ApiKeyDeleted { key_id }
            | EventBody::ApiKeyRotated { key_id, .. }
            | EventBody::ApiKeyIdleWarning { key_id, .. }
            | EventBody::ApiKeyIdleExpired { key_id } => check_id("key_id", key_id),
            EventBody::ChangeApplied { event_ref, .. }
            | EventBody::ChangeCancelled { event_ref, .. } => check_id("event_ref", event_ref),
            EventBody::ApiKeyUsed {
                key_id,
                count,
                window_s,
                ..
            } => {
                check_id("key_id", key_id)?;
                if *count < 1 || *window_s < 1 {
                    return fail("`count` and `window_s` must be at least 1");
                }
                Ok(())
            }
            EventBody::WithdrawalRequested {
                withdrawal_id,
                address,
                amount,
                amount_usd,
                key_id,
                ..
            } => {
                check_id("withdrawal_id", withdrawal_id)?;
                check_text("address", address)?;
                if let Some(key_id) = key_id {
                    check_id("key_id", key_id)?;
                }
                check_amounts(amount, *amount_usd)
            }
            EventBody::Deposit {
                amount, amount_usd, ..
            } => check_amounts(amount, *amount_usd),
            EventBody::AddressAdded { address, .. } => check_text("address", address),
            EventBody::ContactReported {
                from, contacted_at, ..
            } => {
                check_text("from", from)?;
                check_time("contacted_at", *contacted_at)
            }
            EventBody::ContactInboundCall { from, .. } => check_text("from", from),
            EventBody::MarketActivity {
                market,
                volume_ratio,
                volatility,
            } => {
                check_text("market", market)?;
                if !(volume_ratio.is_finite()
                    && *volume_ratio >= 0.0
                    && volatility.is_finite()
                    && *volatility >= 0.0)
                {
                    return fail("`volume_ratio` and `volatility` must be finite and not negative");
                }
                Ok(())
            }
            EventBody::Login { .. } | EventBody::FraudConfirmed { .. } => Ok(()),
        }
    }
}

fn check_id(field: &str, value: &str) -> Result<(), EventError> {
    if value.is_empty() || value.len() > MAX_ID_LEN || value.chars().any(char::is_control) {
        return fail(format!(
            "`{field}` must be 1 to {MAX_ID_LEN} printable characters"
        ));
    }
    Ok(())
}

fn check_text(field: &str, value: &str) -> Result<(), EventError> {
    if value.trim().is_empty() || value.len() > 1024 {
        return fail(format!(
            "`{field}` must be non-empty text of at most 1024 bytes"
        ));
    }
    Ok(())
}

fn check_time(field: &str, at: UnixMillis) -> Result<(), EventError> {
    if at < EARLIEST || at > LATEST {
        return fail(format!("`{field}` {at} is outside 2000..2100"));
    }
    Ok(())
}

/// `amount` is a decimal string (digits, one optional point), `amount_usd` a finite number;
/// neither may be negative or absurdly large.
fn check_amounts(amount: &str, amount_usd: f64) -> Result<(), EventError> {
    let (whole, fraction) = amount.split_once('.').unwrap_or((amount, ""));
    let digits_only = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty()
        || whole.len() > 30
        || fraction.len() > 30
        || !digits_only(whole)
        || !digits_only(fraction)
        || amount.ends_with('.')
    {
        return fail(format!(
            "`amount` must be a non-negative decimal string like \"2400.50\", not {amount:?}"
        ));
    }
    if !(amount_usd.is_finite() && (0.0..=MAX_USD).contains(&amount_usd)) {
        return fail(format!(
            "`amount_usd` must be between 0 and {MAX_USD}, not {amount_usd}"
        ));
    }
    Ok(())
}
