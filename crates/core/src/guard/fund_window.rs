//! Time-boxed fund moving: `withdraw` or `transfer` granted to a key for a chosen period and,
//! for `withdraw` alone, optionally up to a USD amount (the withdrawal check counts it; no
//! check sees transfers, so a window over `transfer` takes no cap).
//!
//! The scam needs a key that can move funds when the attacker gets to use it, which is rarely
//! the moment the customer widened it. A window that lapses by itself closes the door the
//! customer forgets to close, and a cap bounds what one talked-into change can lose. Lapsing is
//! computed, like a key's liveness: a key's fund-moving scopes stop counting at the window's
//! end whether or not the sweep that tidies the stored key has run, so nothing fails open
//! while a background task is late. Extending a window (a later end, a higher or no cap, or no
//! window at all) is a widening; shortening it or letting it lapse is not.

use crate::scope::{Scope, ScopeSet};
use crate::time::UnixMillis;
use serde::{Deserialize, Serialize};

/// The shortest and longest window a customer may choose: an hour to a month.
pub const MIN_WINDOW_MS: i64 = 3_600_000;
pub const MAX_WINDOW_MS: i64 = 31 * 86_400_000;

/// An amount in US cents: money is counted in whole cents so that the cap never drifts.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct UsdCents(pub u64);

impl UsdCents {
    /// The largest amount accepted anywhere (a trillion dollars): keeps sums far from overflow.
    pub const MAX: UsdCents = UsdCents(100_000_000_000_000);

    /// A USD amount as sent in JSON, rounded up to the cent (a cap is never exceeded by
    /// rounding). `None` for negative, non-finite or absurdly large amounts.
    pub fn from_usd(usd: f64) -> Option<Self> {
        if !usd.is_finite() || usd < 0.0 {
            return None;
        }
        let cents = (usd * 100.0).ceil();
        if cents > Self::MAX.0 as f64 {
            return None;
        }
        // A whole number from 0 to MAX, far below 2^53: the cast is exact.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        Some(UsdCents(cents as u64))
    }

    pub fn as_usd(self) -> f64 {
        self.0 as f64 / 100.0
    }

    pub fn saturating_add(self, other: UsdCents) -> UsdCents {
        UsdCents(self.0.saturating_add(other.0))
    }
}

/// What a customer asks for: a window of `duration_ms` from when the change applies, and an
/// optional cap on what may leave through the key in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct WindowRequest {
    pub duration_ms: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cap: Option<UsdCents>,
}

/// Why a window request is refused whatever the step-up.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WindowError {
    #[error("a fund window lasts from one hour to 31 days")]
    Duration,
    #[error("a fund window's cap must be more than zero and at most a trillion USD")]
    Cap,
    #[error("a fund window needs `withdraw` or `transfer` on the key")]
    NothingToBox,
    /// The cap is counted by the withdrawal check, which transfers never pass through: a cap
    /// over `transfer` would promise a limit that nothing keeps.
    #[error(
        "a fund window's cap counts withdrawals only (transfers are never checked against it): box `transfer` without a cap, or leave it out"
    )]
    CapOnTransfer,
}

impl WindowRequest {
    pub fn validate(&self) -> Result<(), WindowError> {
        if !(MIN_WINDOW_MS..=MAX_WINDOW_MS).contains(&self.duration_ms) {
            return Err(WindowError::Duration);
        }
        if self
            .cap
            .is_some_and(|cap| cap.0 == 0 || cap > UsdCents::MAX)
        {
            return Err(WindowError::Cap);
        }
        Ok(())
    }

    /// The window this request opens when it takes effect at `from`, over the fund-moving
    /// scopes of `scopes`.
    pub fn open(&self, fund_scopes: ScopeSet, from: UnixMillis) -> Result<FundWindow, WindowError> {
        self.validate()?;
        if fund_scopes.is_empty() {
            return Err(WindowError::NothingToBox);
        }
        if self.cap.is_some() && fund_scopes.contains(Scope::Transfer) {
            return Err(WindowError::CapOnTransfer);
        }
        Ok(FundWindow {
            scopes: fund_scopes,
            until: from.plus_millis(self.duration_ms),
            cap: self.cap,
            spent: UsdCents::default(),
        })
    }

    /// The window this request opens at `from` on a key whose window is `current`: what left
    /// under a window still open keeps counting, so that asking for a fresh window is never a
    /// way to reset the cap without the step-up and cool-down a higher cap needs.
    pub fn reopen(
        &self,
        current: Option<&FundWindow>,
        fund_scopes: ScopeSet,
        from: UnixMillis,
    ) -> Result<FundWindow, WindowError> {
        let mut window = self.open(fund_scopes, from)?;
        if let Some(current) = current.filter(|c| c.is_open(from)) {
            window.spent = current.spent;
        }
        Ok(window)
    }
}

/// A window in force on a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FundWindow {
    /// The fund-moving scopes that lapse (a subset of the key's scopes).
    pub scopes: ScopeSet,
    /// When they lapse.
    pub until: UnixMillis,
    /// What may leave through the key before then, if capped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cap: Option<UsdCents>,
    /// What has left through it so far (withdrawals the exchange checked and was allowed).
    #[serde(default)]
    pub spent: UsdCents,
}

/// Why a withdrawal through a windowed key is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpendRefusal {
    Lapsed,
    /// The key's window is capped and the exchange did not say how much leaves.
    AmountRequired,
    CapReached,
}

impl FundWindow {
    pub fn is_open(&self, now: UnixMillis) -> bool {
        now < self.until
    }

    /// What is left under the cap, if capped.
    pub fn remaining(&self) -> Option<UsdCents> {
        self.cap
            .map(|cap| UsdCents(cap.0.saturating_sub(self.spent.0)))
    }

    /// The window after `amount` more leaves at `now`, or why it may not.
    pub fn spend(
        &self,
        amount: Option<UsdCents>,
        now: UnixMillis,
    ) -> Result<FundWindow, SpendRefusal> {
        if !self.is_open(now) {
            return Err(SpendRefusal::Lapsed);
        }
        let Some(cap) = self.cap else {
            return Ok(*self);
        };
        let amount = amount.ok_or(SpendRefusal::AmountRequired)?;
        let spent = self.spent.saturating_add(amount);
        if spent > cap {
            return Err(SpendRefusal::CapReached);
        }
        Ok(FundWindow { spent, ..*self })
    }

    /// Whether `after` lets funds move for longer or for more than `self` does.
    pub fn extended_by(&self, after: &FundWindow) -> bool {
        let later = after.until > self.until;
        let looser = match (self.cap, after.cap) {
            (Some(_), None) => true,
            (Some(before), Some(after)) => after > before,
            (None, _) => false,
        };
        let more_scopes = !after.scopes.is_subset_of(self.scopes);
        later || looser || more_scopes
    }
}

/// The scopes of a key with `scopes` and `window` that count at `now`: the window's scopes
/// drop out at its end.
pub fn scopes_at(scopes: ScopeSet, window: Option<&FundWindow>, now: UnixMillis) -> ScopeSet {
    match window {
        Some(window) if !window.is_open(now) => scopes.without(window.scopes),
        _ => scopes,
    }
}

/// `window` as it fits a key with `scopes`: its scopes limited to the key's, and gone when
/// nothing is left to box.
pub fn fitted(window: Option<FundWindow>, scopes: ScopeSet) -> Option<FundWindow> {
    let window = window?;
    let boxed = window.scopes.intersection(scopes);
    (!boxed.is_empty()).then_some(FundWindow {
        scopes: boxed,
        ..window
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: i64 = 3_600_000;

    fn withdraw() -> ScopeSet {
        ScopeSet::parse(["withdraw"]).unwrap()
    }

    fn window(hours: i64, cap_usd: Option<f64>) -> FundWindow {
        WindowRequest {
            duration_ms: hours * HOUR,
            cap: cap_usd.map(|usd| UsdCents::from_usd(usd).unwrap()),
        }
        .open(withdraw(), UnixMillis(0))
        .unwrap()
    }

    #[test]
    fn amounts_round_up_to_the_cent_and_refuse_nonsense() {
        assert_eq!(UsdCents::from_usd(12.341), Some(UsdCents(1235)));
        assert_eq!(UsdCents::from_usd(0.0), Some(UsdCents(0)));
        assert_eq!(UsdCents::from_usd(-1.0), None);
        assert_eq!(UsdCents::from_usd(f64::NAN), None);
        assert_eq!(UsdCents::from_usd(1e13), None);
    }

    #[test]
    fn requests_outside_an_hour_to_a_month_or_with_a_zero_cap_are_refused() {
        let request = |ms, cap| WindowRequest {
            duration_ms: ms,
            cap,
        };
        assert_eq!(
            request(HOUR - 1, None).validate(),
            Err(WindowError::Duration)
        );
        assert_eq!(
            request(MAX_WINDOW_MS + 1, None).validate(),
            Err(WindowError::Duration)
        );
        assert_eq!(
            request(HOUR, Some(UsdCents(0))).validate(),
            Err(WindowError::Cap)
        );
        assert_eq!(
            request(HOUR, None).open(ScopeSet::EMPTY, UnixMillis(0)),
            Err(WindowError::NothingToBox)
        );
    }

    #[test]
    fn the_scopes_lapse_at_the_end_whether_or_not_anything_ran() {
        let scopes = ScopeSet::parse(["read", "withdraw"]).unwrap();
        let open = window(6, None);
        assert_eq!(
            scopes_at(scopes, Some(&open), UnixMillis(6 * HOUR - 1)),
            scopes
        );
        assert_eq!(
            scopes_at(scopes, Some(&open), UnixMillis(6 * HOUR)),
            ScopeSet::parse(["read"]).unwrap()
        );
        assert_eq!(scopes_at(scopes, None, UnixMillis(i64::MAX)), scopes);
    }

    #[test]
    fn the_cap_counts_every_cent_and_needs_the_amount() {
        let capped = window(6, Some(500.0));
        let now = UnixMillis(HOUR);
        assert_eq!(capped.spend(None, now), Err(SpendRefusal::AmountRequired));
        let after = capped.spend(UsdCents::from_usd(499.99), now).unwrap();
        assert_eq!(after.remaining(), Some(UsdCents(1)));
        assert!(after.spend(Some(UsdCents(1)), now).is_ok());
        assert_eq!(
            after.spend(Some(UsdCents(2)), now),
            Err(SpendRefusal::CapReached)
        );
        assert_eq!(
            capped.spend(Some(UsdCents(1)), UnixMillis(6 * HOUR)),
            Err(SpendRefusal::Lapsed)
        );
        let uncapped = window(6, None);
        assert_eq!(uncapped.spend(None, now), Ok(uncapped));
    }

    #[test]
    fn later_higher_or_wider_extends_and_shorter_or_lower_does_not() {
        let base = window(6, Some(500.0));
        assert!(base.extended_by(&window(7, Some(500.0))));
        assert!(base.extended_by(&window(6, Some(501.0))));
        assert!(base.extended_by(&window(6, None)));
        let wider = FundWindow {
            scopes: ScopeSet::parse(["withdraw", "transfer"]).unwrap(),
            ..base
        };
        assert!(base.extended_by(&wider));
        assert!(!base.extended_by(&window(5, Some(100.0))));
        assert!(!window(6, None).extended_by(&window(6, Some(100.0))));
    }

    #[test]
    fn a_fresh_window_keeps_counting_what_left_under_the_open_one() {
        let spent = window(6, Some(500.0))
            .spend(UsdCents::from_usd(400.0), UnixMillis(HOUR))
            .unwrap();
        let request = WindowRequest {
            duration_ms: 2 * HOUR,
            cap: UsdCents::from_usd(500.0),
        };
        let fresh = request
            .reopen(Some(&spent), withdraw(), UnixMillis(2 * HOUR))
            .unwrap();
        assert_eq!(fresh.remaining(), UsdCents::from_usd(100.0));
        let after_lapse = request
            .reopen(Some(&spent), withdraw(), UnixMillis(6 * HOUR))
            .unwrap();
        assert_eq!(after_lapse.remaining(), UsdCents::from_usd(500.0));
    }

    #[test]
    fn a_cap_boxes_withdraw_only() {
        let capped = WindowRequest {
            duration_ms: 6 * HOUR,
            cap: UsdCents::from_usd(500.0),
        };
        for scopes in [["transfer"].as_slice(), &["withdraw", "transfer"]] {
            let scopes = ScopeSet::parse(scopes.iter().copied()).unwrap();
            assert_eq!(
                capped.open(scopes, UnixMillis(0)),
                Err(WindowError::CapOnTransfer)
            );
        }
        let uncapped = WindowRequest {
            cap: None,
            ..capped
        };
        let transfer = ScopeSet::parse(["transfer"]).unwrap();
        assert!(uncapped.open(transfer, UnixMillis(0)).is_ok());
        assert!(capped.open(withdraw(), UnixMillis(0)).is_ok());
    }

    #[test]
    fn a_window_fits_the_scopes_the_key_keeps() {
        let both = FundWindow {
            scopes: ScopeSet::parse(["withdraw", "transfer"]).unwrap(),
            ..window(6, None)
        };
        let fitted_to_withdraw = fitted(Some(both), withdraw()).unwrap();
        assert_eq!(fitted_to_withdraw.scopes, withdraw());
        assert_eq!(fitted(Some(both), ScopeSet::parse(["read"]).unwrap()), None);
    }
}
