//! Cool-downs: how long a widening waits before it applies, and the life of a pending change.
//!
//! Time is the one defence the scam cannot talk its way past. During the cool-down the change
//! is announced through official channels; the customer can cancel it, an operator or a risk
//! decision can hold it, and only a change still pending when its time comes is applied.

use super::widening::Widening;
use crate::time::UnixMillis;
use serde::{Deserialize, Serialize};

const HOUR_MS: i64 = 3_600_000;

/// How long each kind of widening waits; a change waits for the longest of its widenings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CooldownPolicy {
    pub withdraw_ms: i64,
    pub transfer_ms: i64,
    pub address_ms: i64,
    pub allowlist_ms: i64,
    pub expiry_ms: i64,
    pub protection_off_ms: i64,
    /// A new e-mail address or anti-phishing code.
    #[serde(default = "day_ms")]
    pub contact_ms: i64,
}

const fn day_ms() -> i64 {
    24 * HOUR_MS
}

impl Default for CooldownPolicy {
    /// A day for anything that moves funds or lets the attacker in (scopes, addresses, the
    /// allow-list, protections); an hour for a longer expiry, which only keeps a key alive.
    fn default() -> Self {
        Self {
            withdraw_ms: 24 * HOUR_MS,
            transfer_ms: 24 * HOUR_MS,
            address_ms: 24 * HOUR_MS,
            allowlist_ms: 24 * HOUR_MS,
            expiry_ms: HOUR_MS,
            protection_off_ms: 24 * HOUR_MS,
            contact_ms: day_ms(),
        }
    }
}

impl CooldownPolicy {
    pub fn for_widening(&self, widening: Widening) -> i64 {
        match widening {
            Widening::AddsWithdraw => self.withdraw_ms,
            Widening::AddsTransfer => self.transfer_ms,
            Widening::AddsAddress => self.address_ms,
            Widening::WidensAllowlist => self.allowlist_ms,
            Widening::ExtendsExpiry => self.expiry_ms,
            Widening::DisablesProtection => self.protection_off_ms,
            Widening::ChangesContact => self.contact_ms,
            Widening::ExtendsFundWindow => self.withdraw_ms.max(self.transfer_ms),
        }
    }

    /// When a change made of `widenings`, requested at `now`, applies.
    pub fn applies_at(&self, widenings: &[Widening], now: UnixMillis) -> UnixMillis {
        let wait = widenings
            .iter()
            .map(|w| self.for_widening(*w))
            .max()
            .unwrap_or(0);
        now.plus_millis(wait.max(0))
    }
}

/// Where a pending change stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum PendingStatus {
    /// Waiting for its time.
    Pending,
    /// Stopped by an operator or a risk decision until released; it never applies while held.
    Held {
        by: String,
        reason: String,
    },
    Applied {
        at: UnixMillis,
    },
    Cancelled {
        at: UnixMillis,
        by: String,
    },
    /// Its time came but it could no longer be applied (the key was revoked, say).
    Failed {
        at: UnixMillis,
        reason: String,
    },
}

impl PendingStatus {
    pub const fn as_str(&self) -> &'static str {
        match self {
            PendingStatus::Pending => "pending",
            PendingStatus::Held { .. } => "held",
            PendingStatus::Applied { .. } => "applied",
            PendingStatus::Cancelled { .. } => "cancelled",
            PendingStatus::Failed { .. } => "failed",
        }
    }

    /// Whether the change is still open (pending or held).
    pub const fn is_open(&self) -> bool {
        matches!(self, PendingStatus::Pending | PendingStatus::Held { .. })
    }

    /// Whether it applies now: still pending (not held) and its time has come.
    pub fn is_due(&self, applies_at: UnixMillis, now: UnixMillis) -> bool {
        matches!(self, PendingStatus::Pending) && now >= applies_at
    }
}

/// A request to move a pending change on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transition {
    Cancel { by: String },
    Hold { by: String, reason: String },
    Release,
    Apply,
    Fail { reason: String },
}

/// A transition that the change's state does not allow.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransitionError {
    #[error("the change is already {0}")]
    Closed(&'static str),
    #[error("the change is not held")]
    NotHeld,
    #[error("the change is held and cannot apply until released")]
    IsHeld,
    #[error("the change's cool-down has not ended")]
    NotDue,
}

/// The status after `transition` at `now`. A release never shortens the cool-down: a change
/// held past its time applies on the next pass after release, not before its `applies_at`.
pub fn transition(
    status: &PendingStatus,
    applies_at: UnixMillis,
    transition: Transition,
    now: UnixMillis,
) -> Result<PendingStatus, TransitionError> {
    if !status.is_open() {
        return Err(TransitionError::Closed(status.as_str()));
    }
    match transition {
        Transition::Cancel { by } => Ok(PendingStatus::Cancelled { at: now, by }),
        Transition::Hold { by, reason } => Ok(PendingStatus::Held { by, reason }),
        Transition::Release => match status {
            PendingStatus::Held { .. } => Ok(PendingStatus::Pending),
            _ => Err(TransitionError::NotHeld),
        },
        Transition::Apply => match status {
            PendingStatus::Held { .. } => Err(TransitionError::IsHeld),
            _ if now < applies_at => Err(TransitionError::NotDue),
            _ => Ok(PendingStatus::Applied { at: now }),
        },
        Transition::Fail { reason } => Ok(PendingStatus::Failed { at: now, reason }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: UnixMillis = UnixMillis(1_753_711_391_250);

    #[test]
    fn a_change_waits_for_its_longest_widening() {
        let policy = CooldownPolicy::default();
        assert_eq!(
            policy.applies_at(&[Widening::ExtendsExpiry], T0),
            T0.plus_millis(HOUR_MS)
        );
        assert_eq!(
            policy.applies_at(&[Widening::ExtendsExpiry, Widening::AddsWithdraw], T0),
            T0.plus_millis(24 * HOUR_MS)
        );
        assert_eq!(policy.applies_at(&[], T0), T0);
    }

    #[test]
    fn a_contact_change_waits_a_day_by_default_and_its_own_setting() {
        let policy = CooldownPolicy::default();
        assert_eq!(
            policy.applies_at(&[Widening::ChangesContact], T0),
            T0.plus_millis(24 * HOUR_MS)
        );
        let quick = CooldownPolicy {
            contact_ms: 5_000,
            ..policy
        };
        assert_eq!(
            quick.applies_at(&[Widening::ChangesContact], T0),
            T0.plus_millis(5_000)
        );
        // A policy stored before the setting existed reads back with the default.
        let mut old = serde_json::to_value(policy).unwrap();
        old.as_object_mut().unwrap().remove("contact_ms");
        let read: CooldownPolicy = serde_json::from_value(old).unwrap();
        assert_eq!(read.contact_ms, 24 * HOUR_MS);
    }

    #[test]
    fn due_exactly_at_the_end_of_the_cooldown_never_before() {
        let at = T0.plus_millis(24 * HOUR_MS);
        let pending = PendingStatus::Pending;
        assert!(!pending.is_due(at, at.plus_millis(-1)));
        assert!(pending.is_due(at, at));
        assert_eq!(
            transition(&pending, at, Transition::Apply, at.plus_millis(-1)),
            Err(TransitionError::NotDue)
        );
        assert_eq!(
            transition(&pending, at, Transition::Apply, at),
            Ok(PendingStatus::Applied { at })
        );
    }

    #[test]
    fn held_changes_never_apply_until_released() {
        let at = T0;
        let held = transition(
            &PendingStatus::Pending,
            at,
            Transition::Hold {
                by: "risk".into(),
                reason: "call_during_escalation".into(),
            },
            T0,
        )
        .unwrap();
        assert!(!held.is_due(at, T0.plus_millis(HOUR_MS * 48)));
        assert_eq!(
            transition(&held, at, Transition::Apply, T0.plus_millis(HOUR_MS)),
            Err(TransitionError::IsHeld)
        );
        let released = transition(&held, at, Transition::Release, T0).unwrap();
        assert_eq!(released, PendingStatus::Pending);
        assert_eq!(
            transition(&PendingStatus::Pending, at, Transition::Release, T0),
            Err(TransitionError::NotHeld)
        );
    }

    #[test]
    fn closed_changes_stay_closed() {
        let cancelled = PendingStatus::Cancelled {
            at: T0,
            by: "customer".into(),
        };
        for t in [
            Transition::Apply,
            Transition::Release,
            Transition::Cancel { by: "x".into() },
        ] {
            assert_eq!(
                transition(&cancelled, T0, t, T0.plus_millis(HOUR_MS * 100)),
                Err(TransitionError::Closed("cancelled"))
            );
        }
        let applied = PendingStatus::Applied { at: T0 };
        assert_eq!(
            transition(&applied, T0, Transition::Cancel { by: "x".into() }, T0),
            Err(TransitionError::Closed("applied"))
        );
    }
}
