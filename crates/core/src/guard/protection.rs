//! Account-wide protections the customer controls: the freeze and the settings lock.
//!
//! A freeze is the panic button: one step, immediate, suspends every fund-moving scope and
//! cancels every pending widening; lifting it is itself a widening (step-up and cool-down).
//! The settings lock (Kraken's Global Settings Lock) forbids any widening until a date the
//! customer picks; nobody can bring that date forward, operators included, because a scammer
//! who reaches support must not be able to talk them into it either.

use crate::time::UnixMillis;
use serde::{Deserialize, Serialize};

/// Longest settings lock accepted: long enough for any holiday, short enough that a typo in
/// the year does not lock an account for a decade.
pub const MAX_LOCK_MS: i64 = 366 * 86_400_000;

/// The account's protections as stored.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Protection {
    /// Set while the account is frozen.
    pub frozen_at: Option<UnixMillis>,
    /// No widening before this instant.
    pub locked_until: Option<UnixMillis>,
}

/// Why a widening (or a change to the protections) is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtectionError {
    #[error("the account is frozen: unfreeze it first (that takes a passkey and a cool-down)")]
    Frozen,
    #[error("the account's settings are locked until {}", .0.to_rfc3339())]
    Locked(UnixMillis),
    #[error("a settings lock can only be extended, never shortened (locked until {})", .0.to_rfc3339())]
    CannotShorten(UnixMillis),
    #[error("a settings lock must end in the future and at most a year ahead")]
    LockOutOfRange,
    #[error("the account is not frozen")]
    NotFrozen,
}

impl Protection {
    pub fn is_frozen(&self) -> bool {
        self.frozen_at.is_some()
    }

    /// Whether the lock is in force at `now`.
    pub fn lock_in_force(&self, now: UnixMillis) -> Option<UnixMillis> {
        self.locked_until.filter(|until| now < *until)
    }

    /// Whether any widening may be requested at `now`.
    pub fn allows_widening(&self, now: UnixMillis) -> Result<(), ProtectionError> {
        if self.is_frozen() {
            return Err(ProtectionError::Frozen);
        }
        if let Some(until) = self.lock_in_force(now) {
            return Err(ProtectionError::Locked(until));
        }
        Ok(())
    }

    /// Lifting a freeze is refused during a lock too: the lock forbids every widening.
    pub fn allows_unfreeze(&self, now: UnixMillis) -> Result<(), ProtectionError> {
        if !self.is_frozen() {
            return Err(ProtectionError::NotFrozen);
        }
        match self.lock_in_force(now) {
            Some(until) => Err(ProtectionError::Locked(until)),
            None => Ok(()),
        }
    }

    /// The protections with a lock until `until`, which may only move later.
    pub fn with_lock(&self, until: UnixMillis, now: UnixMillis) -> Result<Self, ProtectionError> {
        if until <= now || until.millis_since(now) > MAX_LOCK_MS {
            return Err(ProtectionError::LockOutOfRange);
        }
        if let Some(current) = self.lock_in_force(now)
            && until < current
        {
            return Err(ProtectionError::CannotShorten(current));
        }
        Ok(Self {
            locked_until: Some(until),
            ..self.clone()
        })
    }

    pub fn frozen(&self, now: UnixMillis) -> Self {
        Self {
            frozen_at: Some(self.frozen_at.unwrap_or(now)),
            ..self.clone()
        }
    }

    pub fn unfrozen(&self) -> Self {
        Self {
            frozen_at: None,
            ..self.clone()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: UnixMillis = UnixMillis(1_753_711_391_250);
    const DAY: i64 = 86_400_000;

    #[test]
    fn frozen_or_locked_accounts_refuse_widening() {
        let open = Protection::default();
        assert!(open.allows_widening(NOW).is_ok());
        assert_eq!(
            open.frozen(NOW).allows_widening(NOW),
            Err(ProtectionError::Frozen)
        );
        let locked = open.with_lock(NOW.plus_millis(DAY), NOW).unwrap();
        assert_eq!(
            locked.allows_widening(NOW.plus_millis(DAY - 1)),
            Err(ProtectionError::Locked(NOW.plus_millis(DAY)))
        );
        assert!(locked.allows_widening(NOW.plus_millis(DAY)).is_ok());
    }

    #[test]
    fn a_lock_only_ever_moves_later() {
        let locked = Protection::default()
            .with_lock(NOW.plus_millis(10 * DAY), NOW)
            .unwrap();
        assert_eq!(
            locked.with_lock(NOW.plus_millis(5 * DAY), NOW),
            Err(ProtectionError::CannotShorten(NOW.plus_millis(10 * DAY)))
        );
        assert!(locked.with_lock(NOW.plus_millis(11 * DAY), NOW).is_ok());
        // Once it has run out, any new lock is fine.
        let later = NOW.plus_millis(10 * DAY);
        assert!(locked.with_lock(later.plus_millis(DAY), later).is_ok());
    }

    #[test]
    fn locks_must_be_in_range() {
        let p = Protection::default();
        assert_eq!(p.with_lock(NOW, NOW), Err(ProtectionError::LockOutOfRange));
        assert_eq!(
            p.with_lock(NOW.plus_millis(MAX_LOCK_MS + 1), NOW),
            Err(ProtectionError::LockOutOfRange)
        );
    }

    #[test]
    fn unfreeze_needs_a_freeze_and_no_lock() {
        let p = Protection::default();
        assert_eq!(p.allows_unfreeze(NOW), Err(ProtectionError::NotFrozen));
        let frozen = p.frozen(NOW);
        assert!(frozen.allows_unfreeze(NOW).is_ok());
        let locked = frozen.with_lock(NOW.plus_millis(DAY), NOW).unwrap();
        assert!(matches!(
            locked.allows_unfreeze(NOW),
            Err(ProtectionError::Locked(_))
        ));
        // Freezing twice keeps the first time.
        assert_eq!(frozen.frozen(NOW.plus_millis(5)).frozen_at, Some(NOW));
    }
}
