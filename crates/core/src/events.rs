//! The key authority's own events, in the wire format of the event contract
//! (`shared/spec/events.md`), so the risk engine consumes them exactly like an exchange's feed.
//! Their bodies are the contract's own model ([`EventBody`]): one type per event, written here
//! and read by the parser.
//!
//! The key authority emits `api_key.created`, `api_key.updated`, `api_key.deleted`,
//! `address.added`, `change.applied` and `change.cancelled` (the contract's types), and
//! `api_key.rotated`, `api_key.idle_warning` and `api_key.idle_expired` (additions: the
//! contract allows additive types), documented in docs/event-contract.md.

pub use crate::contract::EventBody;
use crate::time::UnixMillis;
use serde::{Deserialize, Serialize};

/// Where an action came from, as the contract's `ctx` object. Fields an exchange adds beyond
/// these are ignored, so a richer feed never breaks ingest.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventContext {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub call_active: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remote_access: Option<bool>,
}

/// The channels of the contract's `ctx`.
pub const CHANNELS: &[&str] = &["web", "app", "api", "support"];
/// The longest `ctx` text (device, user agent, session), in characters.
pub const MAX_CONTEXT_TEXT: usize = 200;

impl EventContext {
    pub fn is_empty(&self) -> bool {
        self == &Self::default()
    }

    /// Checks a context an operator sends through the API (with a change, a freeze, a sign-in
    /// link; a feed's contexts are taken as the exchange wrote them): an IP address that
    /// parses, one of the contract's channels, texts of 1 to 200 printable characters.
    pub fn check(&self) -> Result<(), &'static str> {
        if let Some(ip) = &self.ip
            && ip.parse::<std::net::IpAddr>().is_err()
        {
            return Err("`ctx.ip` must be an IPv4 or IPv6 address");
        }
        if let Some(channel) = &self.channel
            && !CHANNELS.contains(&channel.as_str())
        {
            return Err("`ctx.channel` must be web, app, api or support");
        }
        let texts = [&self.device_id, &self.user_agent, &self.session_id];
        for text in texts.into_iter().flatten() {
            let chars = text.chars().count();
            if chars == 0 || chars > MAX_CONTEXT_TEXT || text.chars().any(char::is_control) {
                return Err("`ctx` texts must be 1 to 200 printable characters");
            }
        }
        Ok(())
    }
}

/// How the customer confirmed an action (the contract's `step_up`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StepUp {
    #[default]
    None,
    Email,
    Sms,
    Totp,
    Passkey,
}

/// Whether a change is in force when its event is decided (the contract's revision 2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Effective {
    /// In force as soon as it is decided (the default when the field is absent).
    #[default]
    Now,
    /// Waits for a `change.applied` or `change.cancelled` that names its event.
    Pending,
}

impl Effective {
    pub fn is_now(&self) -> bool {
        *self == Effective::Now
    }
}

/// Who or what put a waiting change in force (`change.applied`'s `by`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AppliedBy {
    /// Its cool-down ended.
    Cooldown,
    Customer,
    /// An operator released a hold.
    Operator,
}

/// Who or what stopped a waiting change (`change.cancelled`'s `by`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CancelledBy {
    Customer,
    Operator,
    /// Portcullis itself: the risk engine blocked it, or it could no longer apply.
    System,
}

/// One event with the contract's common fields.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KeyEvent {
    pub id: String,
    pub ts: UnixMillis,
    pub account: String,
    #[serde(flatten)]
    pub body: EventBody,
    #[serde(default, skip_serializing_if = "EventContext::is_empty")]
    pub ctx: EventContext,
}

impl KeyEvent {
    /// The event as one JSON line of the contract.
    pub fn to_json_line(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::allowlist::IpAllowList;
    use crate::scope::ScopeSet;

    #[test]
    fn serialises_exactly_like_the_contract_example() {
        let event = KeyEvent {
            id: "e1".into(),
            ts: UnixMillis::parse_rfc3339("2025-07-28T14:03:11.250Z").unwrap(),
            account: "acc_81".into(),
            body: EventBody::ApiKeyUpdated {
                key_id: "k_3".into(),
                scopes: ScopeSet::parse(["read", "trade", "withdraw"]).unwrap(),
                ip_allowlist: IpAllowList::parse(["203.0.113.7/32"]).unwrap(),
                step_up: StepUp::Totp,
                effective: Effective::Now,
            },
            ctx: EventContext {
                ip: Some("198.51.100.23".into()),
                device_id: Some("d_81a".into()),
                channel: Some("app".into()),
                call_active: Some(true),
                ..EventContext::default()
            },
        };
        let line = event.to_json_line();
        let value: serde_json::Value = serde_json::from_str(&line).unwrap();
        let expected: serde_json::Value = serde_json::from_str(
            r#"{"id":"e1","ts":"2025-07-28T14:03:11.250Z","type":"api_key.updated","account":"acc_81","key_id":"k_3","scopes":["read","trade","withdraw"],"ip_allowlist":["203.0.113.7/32"],"step_up":"totp","ctx":{"ip":"198.51.100.23","device_id":"d_81a","channel":"app","call_active":true}}"#,
        )
        .unwrap();
        assert_eq!(value, expected);
        let back: KeyEvent = serde_json::from_str(&line).unwrap();
        assert_eq!(back, event);
    }
}
