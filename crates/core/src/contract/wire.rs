//! The fast way in: one flat pass over a line into borrowed fields, then the event built from
//! the fields its `type` uses.
//!
//! The derived `ContractEvent` reader (a `type` tag with the body flattened beside the common
//! fields) buffers every field of the line into an intermediate tree before it can pick the
//! variant; on a replay that was most of the time spent per event. This reader is only ever a
//! shortcut: whenever it is not certain (a field it cannot read, a missing field, a type it does
//! not know, a repeated field), it answers `None` and the line goes through the derived reader,
//! whose result and error message are authoritative. So it can accept a line only when the
//! derived reader would accept it and build the same event (tested on every type and on
//! mutated lines).

use super::model::{Attestation, ContactChannel, ContractEvent, EventBody, LoginMethod};
use crate::allowlist::IpAllowList;
use crate::events::{AppliedBy, CancelledBy, Effective, EventContext, StepUp};
use crate::scope::ScopeSet;
use crate::time::UnixMillis;
use serde::Deserialize;

/// Every field any event type has, as the line wrote it, borrowed from the line (a text with
/// escapes cannot be borrowed: such a line takes the derived way). Unknown fields are
/// skipped, as the derived reader skips them.
#[derive(Debug, Deserialize)]
struct Wire<'a> {
    id: &'a str,
    ts: UnixMillis,
    #[serde(rename = "type")]
    kind: &'a str,
    #[serde(default)]
    account: Option<&'a str>,
    #[serde(default)]
    ctx: EventContext,
    method: Option<LoginMethod>,
    success: Option<bool>,
    key_id: Option<&'a str>,
    scopes: Option<ScopeSet>,
    ip_allowlist: Option<IpAllowList>,
    step_up: Option<StepUp>,
    /// `Some(None)` for a `null`, which the derived reader refuses (absent means `now`).
    #[serde(default, deserialize_with = "present")]
    effective: Option<Option<Effective>>,
    endpoint: Option<&'a str>,
    count: Option<u64>,
    window_s: Option<u64>,
    address: Option<&'a str>,
    asset: Option<&'a str>,
    network: Option<&'a str>,
    withdrawal_id: Option<&'a str>,
    amount: Option<&'a str>,
    amount_usd: Option<f64>,
    channel: Option<ContactChannel>,
    /// A text on contact events (on `fraud.confirmed` a list: that type takes the derived way).
    from: Option<&'a str>,
    claimed: Option<&'a str>,
    contacted_at: Option<UnixMillis>,
    attestation: Option<Attestation>,
    duration_s: Option<u64>,
    market: Option<&'a str>,
    volume_ratio: Option<f64>,
    volatility: Option<f64>,
    previous_valid_until: Option<UnixMillis>,
    expires_at: Option<UnixMillis>,
    event_ref: Option<&'a str>,
    /// Read as text: its values depend on the type.
    by: Option<&'a str>,
}

/// A field that may be absent (`None`) but, when present, is read as it is, `null` included.
fn present<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

/// Reads `line` the fast way; `None` when the derived reader must decide.
pub fn read(line: &str) -> Option<ContractEvent> {
    let wire: Wire<'_> = serde_json::from_str(line).ok()?;
    let body = body(&wire)?;
    Some(ContractEvent {
        id: wire.id.to_owned(),
        ts: wire.ts,
        account: wire.account.map(str::to_owned),
        ctx: wire.ctx,
        body,
    })
}

/// The body `wire.kind` names, from the fields that type uses; `None` when one is missing.
fn body(w: &Wire<'_>) -> Option<EventBody> {
    let text = |field: &Option<&str>| field.map(str::to_owned);
    Some(match w.kind {
        "login" => EventBody::Login {
            method: w.method?,
            success: w.success?,
        },
        "api_key.used" => EventBody::ApiKeyUsed {
            key_id: text(&w.key_id)?,
            endpoint: text(&w.endpoint)?,
            count: w.count?,
            window_s: w.window_s?,
        },
        "api_key.created" | "api_key.updated" => {
            let (key_id, scopes) = (text(&w.key_id)?, w.scopes?);
            let (ip_allowlist, step_up) = (w.ip_allowlist.clone()?, w.step_up?);
            let effective = w.effective.unwrap_or(Some(Effective::Now))?;
            if w.kind == "api_key.created" {
                EventBody::ApiKeyCreated {
                    key_id,
                    scopes,
                    ip_allowlist,
                    step_up,
                    effective,
                }
            } else {
                EventBody::ApiKeyUpdated {
                    key_id,
                    scopes,
                    ip_allowlist,
                    step_up,
                    effective,
                }
            }
        }
        "api_key.deleted" => EventBody::ApiKeyDeleted {
            key_id: text(&w.key_id)?,
        },
        "address.added" => EventBody::AddressAdded {
            address: text(&w.address)?,
            asset: text(&w.asset)?,
            network: text(&w.network)?,
            step_up: w.step_up?,
            effective: w.effective.unwrap_or(Some(Effective::Now))?,
        },
        "withdrawal.requested" => EventBody::WithdrawalRequested {
            withdrawal_id: text(&w.withdrawal_id)?,
            asset: text(&w.asset)?,
            network: text(&w.network)?,
            address: text(&w.address)?,
            amount: text(&w.amount)?,
            amount_usd: w.amount_usd?,
            key_id: text(&w.key_id),
        },
        "deposit" => EventBody::Deposit {
            asset: text(&w.asset)?,
            amount: text(&w.amount)?,
            amount_usd: w.amount_usd?,
        },
        "market.activity" => EventBody::MarketActivity {
            market: text(&w.market)?,
            volume_ratio: w.volume_ratio?,
            volatility: w.volatility?,
        },
        _ => return rare_body(w),
    })
}

/// The types that are seldom on the hot path. `fraud.confirmed` is not read here: its lists
/// default when absent but not when `null`, which this reader cannot tell apart.
fn rare_body(w: &Wire<'_>) -> Option<EventBody> {
    let text = |field: &Option<&str>| field.map(str::to_owned);
    Some(match w.kind {
        "contact.reported" => EventBody::ContactReported {
            channel: w.channel?,
            from: text(&w.from)?,
            claimed: text(&w.claimed)?,
            contacted_at: w.contacted_at?,
        },
        "contact.inbound_call" => EventBody::ContactInboundCall {
            from: text(&w.from)?,
            attestation: w.attestation?,
            duration_s: w.duration_s?,
        },
        "api_key.rotated" => EventBody::ApiKeyRotated {
            key_id: text(&w.key_id)?,
            previous_valid_until: w.previous_valid_until?,
        },
        "api_key.idle_warning" => EventBody::ApiKeyIdleWarning {
            key_id: text(&w.key_id)?,
            expires_at: w.expires_at?,
        },
        "api_key.idle_expired" => EventBody::ApiKeyIdleExpired {
            key_id: text(&w.key_id)?,
        },
        "change.applied" => EventBody::ChangeApplied {
            event_ref: text(&w.event_ref)?,
            by: match w.by? {
                "cooldown" => AppliedBy::Cooldown,
                "customer" => AppliedBy::Customer,
                "operator" => AppliedBy::Operator,
                _ => return None,
            },
        },
        "change.cancelled" => EventBody::ChangeCancelled {
            event_ref: text(&w.event_ref)?,
            by: match w.by? {
                "customer" => CancelledBy::Customer,
                "operator" => CancelledBy::Operator,
                "system" => CancelledBy::System,
                _ => return None,
            },
        },
        _ => return None,
    })
}
