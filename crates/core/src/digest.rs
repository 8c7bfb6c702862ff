//! The daily security digest: one message a day, on the customer's official channels, that
//! says what happened to their account in the last 24 hours (keys used and from where,
//! changes, holds, new devices and IPs) with the check-up score.
//!
//! It is sent on quiet days too, with "nothing happened": a customer who stops getting it
//! notices, and a digest that only comes when something is wrong trains nobody to read it.
//! Everything here is pure: the facts are gathered by the caller, and `now` is an argument.

use crate::contract::{ContractEvent, EventBody};
use crate::notice::{Notice, NoticeKind};
use crate::time::UnixMillis;
use std::collections::{BTreeMap, BTreeSet};

pub const DAY_MS: i64 = 86_400_000;
/// How far back a device or IP must be unseen to count as new.
pub const NEW_IF_UNSEEN_FOR_MS: i64 = 30 * DAY_MS;
/// At most this many items of one kind are listed; the rest are counted.
const LISTED: usize = 8;

/// When a digest sent at `hour_utc` is next due after `now`.
pub fn next_due(hour_utc: u8, now: UnixMillis) -> UnixMillis {
    let day_start = now.as_millis().div_euclid(DAY_MS) * DAY_MS;
    let today = day_start + i64::from(hour_utc.min(23)) * 3_600_000;
    UnixMillis(if today > now.as_millis() {
        today
    } else {
        today + DAY_MS
    })
}

/// How one key was used in the period.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyUse {
    pub requests: u64,
    pub ips: BTreeSet<String>,
}

/// What the digest says, gathered for the period `[from, to)`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DigestFacts {
    pub from: UnixMillis,
    pub to: UnixMillis,
    /// Per key (by its label, or id when unlabelled).
    pub key_use: BTreeMap<String, KeyUse>,
    pub logins: u64,
    pub new_ips: BTreeSet<String>,
    pub new_devices: BTreeSet<String>,
    /// Changes made to the account or its keys, in plain words, oldest first.
    pub changes: Vec<String>,
    /// Actions the risk engine held or refused, in plain words.
    pub holds: Vec<String>,
    pub checkup_score: u8,
    /// Pending widenings not in force yet.
    pub pending_widenings: usize,
}

impl DigestFacts {
    /// Tallies key use, logins, and devices and IPs new in the period from the account's
    /// events: `period` are those in `[from, to)`, `before` those of the thirty days before.
    /// `key_name` names a key id the way the customer knows it.
    pub fn tally_events(
        &mut self,
        period: &[ContractEvent],
        before: &[ContractEvent],
        key_name: impl Fn(&str) -> String,
    ) {
        let mut known_ips = BTreeSet::new();
        let mut known_devices = BTreeSet::new();
        for event in before {
            known_ips.extend(event.ctx.ip.clone());
            known_devices.extend(event.ctx.device_id.clone());
        }
        for event in period {
            match &event.body {
                EventBody::ApiKeyUsed { key_id, count, .. } => {
                    let used = self.key_use.entry(key_name(key_id)).or_default();
                    used.requests = used.requests.saturating_add(*count);
                    used.ips.extend(event.ctx.ip.clone());
                }
                EventBody::Login { success: true, .. } => self.logins += 1,
                _ => {}
            }
            if let Some(ip) = &event.ctx.ip
                && known_ips.insert(ip.clone())
            {
                self.new_ips.insert(ip.clone());
            }
            if let Some(device) = &event.ctx.device_id
                && known_devices.insert(device.clone())
            {
                self.new_devices.insert(device.clone());
            }
        }
    }

    /// Whether nothing at all happened in the period.
    pub fn is_quiet(&self) -> bool {
        self.key_use.is_empty()
            && self.logins == 0
            && self.new_ips.is_empty()
            && self.new_devices.is_empty()
            && self.changes.is_empty()
            && self.holds.is_empty()
    }

    /// The digest as a notice for `account`, keyed by its period so it is sent once.
    pub fn notice(&self, account: &str, now: UnixMillis) -> Notice {
        let summary = if self.is_quiet() {
            format!(
                "nothing happened in the last 24 hours; check-up score {}/100",
                self.checkup_score
            )
        } else {
            format!(
                "{} key(s) used, {} change(s), {} hold(s); check-up score {}/100",
                self.key_use.len(),
                self.changes.len(),
                self.holds.len(),
                self.checkup_score
            )
        };
        Notice {
            kind: NoticeKind::DailyDigest,
            key: format!("digest:{}", self.from.as_millis()),
            account: account.to_owned(),
            occurred_at: now,
            summary,
            details: self.details(),
            takes_effect_at: None,
            cancel_url: None,
            freeze_url: None,
        }
    }

    fn details(&self) -> Vec<(String, String)> {
        let mut details = vec![(
            "Period".to_owned(),
            format!("{} to {}", self.from.to_rfc3339(), self.to.to_rfc3339()),
        )];
        let keys: Vec<String> = (self.key_use.iter())
            .map(|(name, used)| {
                let from: Vec<&str> = used.ips.iter().map(String::as_str).collect();
                format!(
                    "{name}: {} request(s) from {}",
                    used.requests,
                    or_none(&from)
                )
            })
            .collect();
        details.push(("Keys used".into(), listed(&keys)));
        details.push(("Sign-ins".into(), self.logins.to_string()));
        details.push(("New IP addresses".into(), listed_set(&self.new_ips)));
        details.push(("New devices".into(), listed_set(&self.new_devices)));
        details.push(("Changes".into(), listed(&self.changes)));
        details.push(("Held or refused".into(), listed(&self.holds)));
        if self.pending_widenings > 0 {
            details.push((
                "Waiting to take effect".into(),
                format!(
                    "{} change(s) that widen your account: cancel any you did not make",
                    self.pending_widenings
                ),
            ));
        }
        details.push((
            "Check-up score".into(),
            format!("{}/100", self.checkup_score),
        ));
        details.push((
            "If anything here is not you".into(),
            "freeze your account in the security center at once, then revoke your keys".into(),
        ));
        details
    }
}

/// What an audit action means to the customer, for actions they should hear about (`None`
/// for bookkeeping: refusals, step-ups, spends, ceremonies).
pub fn describe_action(action: &str) -> Option<&'static str> {
    Some(match action {
        "account.updated" => "account details changed",
        "account.frozen" => "account frozen",
        "account.unfrozen" => "account unfrozen",
        "account.settings_locked" => "security settings locked",
        "address.removed" => "withdrawal address removed",
        "api_key.created" => "API key created",
        "api_key.imported" => "API key added by the exchange",
        "api_key.updated" => "API key changed",
        "api_key.revoked" => "API key revoked",
        "api_key.rotated" => "API key given a new secret",
        "api_key.idle_expired" => "unused API key switched off",
        "api_key.fund_window_lapsed" => "a key's time-limited withdrawals ended",
        "passkey.added" => "passkey added",
        "passkey.removed" => "passkey removed",
        "totp.enrolled" => "authenticator app set up",
        "widening.requested" => "change requested (waiting out its cool-down)",
        "widening.applied" => "change took effect",
        "widening.cancelled" => "change cancelled",
        "widening.held" | "widening.risk_stopped" => "change put on hold",
        "widening.released" => "held change released by the exchange",
        "digest.subscribed" => "daily digest switched on or moved",
        "digest.unsubscribed" => "daily digest switched off",
        _ => return None,
    })
}

/// An event type as the customer would say it.
pub fn describe_event_type(event_type: &str) -> &'static str {
    match event_type {
        "withdrawal.requested" => "a withdrawal",
        "api_key.created" => "a new API key",
        "api_key.updated" => "an API key change",
        "address.added" => "a new withdrawal address",
        "login" => "a sign-in",
        _ => "an action",
    }
}

fn or_none(items: &[&str]) -> String {
    match items {
        [] => "an unknown address".into(),
        _ => items.join(", "),
    }
}

fn listed(items: &[String]) -> String {
    match items.len() {
        0 => "none".into(),
        n if n <= LISTED => items.join("; "),
        n => format!("{}; and {} more", items[..LISTED].join("; "), n - LISTED),
    }
}

fn listed_set(items: &BTreeSet<String>) -> String {
    listed(&items.iter().cloned().collect::<Vec<_>>())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::parse_line;

    fn event(line: &str) -> ContractEvent {
        parse_line(line).unwrap()
    }

    #[test]
    fn the_next_digest_is_at_the_chosen_hour_strictly_after_now() {
        let midnight = UnixMillis(20 * DAY_MS);
        assert_eq!(
            next_due(7, midnight),
            UnixMillis(20 * DAY_MS + 7 * 3_600_000)
        );
        let at_seven = UnixMillis(20 * DAY_MS + 7 * 3_600_000);
        assert_eq!(
            next_due(7, at_seven),
            UnixMillis(21 * DAY_MS + 7 * 3_600_000)
        );
        assert_eq!(next_due(0, at_seven), UnixMillis(21 * DAY_MS));
    }

    #[test]
    fn key_use_is_summed_and_new_ips_and_devices_are_those_unseen_before() {
        let before = [event(
            r#"{"id":"e0","ts":"2026-01-01T00:00:00Z","type":"login","account":"a","method":"password","success":true,"ctx":{"ip":"203.0.113.7","device_id":"d-home"}}"#,
        )];
        let period = [
            event(
                r#"{"id":"e1","ts":"2026-01-02T00:00:00Z","type":"api_key.used","account":"a","key_id":"k1","endpoint":"/api/v3/order","count":40,"window_s":60,"ctx":{"ip":"203.0.113.7"}}"#,
            ),
            event(
                r#"{"id":"e2","ts":"2026-01-02T00:01:00Z","type":"api_key.used","account":"a","key_id":"k1","endpoint":"/api/v3/order","count":2,"window_s":60,"ctx":{"ip":"198.51.100.9"}}"#,
            ),
            event(
                r#"{"id":"e3","ts":"2026-01-02T01:00:00Z","type":"login","account":"a","method":"password","success":true,"ctx":{"ip":"198.51.100.9","device_id":"d-new"}}"#,
            ),
        ];
        let mut facts = DigestFacts::default();
        facts.tally_events(&period, &before, |id| format!("'bot' ({id})"));
        let used = &facts.key_use["'bot' (k1)"];
        assert_eq!(used.requests, 42);
        assert_eq!(used.ips.len(), 2);
        assert_eq!(facts.logins, 1);
        assert_eq!(facts.new_ips, BTreeSet::from(["198.51.100.9".to_owned()]));
        assert_eq!(facts.new_devices, BTreeSet::from(["d-new".to_owned()]));
        assert!(!facts.is_quiet());
    }

    #[test]
    fn a_quiet_day_still_makes_a_digest_that_says_so() {
        let facts = DigestFacts {
            from: UnixMillis(0),
            to: UnixMillis(DAY_MS),
            checkup_score: 85,
            ..DigestFacts::default()
        };
        let notice = facts.notice("acc_1", UnixMillis(DAY_MS));
        assert!(facts.is_quiet());
        assert!(
            notice.summary.starts_with("nothing happened"),
            "{}",
            notice.summary
        );
        assert_eq!(notice.key, "digest:0");
        assert!(
            notice
                .details
                .iter()
                .any(|(k, v)| k == "Check-up score" && v == "85/100")
        );
    }

    #[test]
    fn long_lists_are_cut_and_counted() {
        let items: Vec<String> = (0..11).map(|i| format!("item {i}")).collect();
        let text = listed(&items);
        assert!(text.ends_with("and 3 more"), "{text}");
        assert!(!text.contains("item 8"), "{text}");
    }
}
