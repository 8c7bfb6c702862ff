//! TOTP (RFC 6238) as a step-up: codes are checked by `totp-rs`; this module adds what the
//! library leaves to its caller: a time step is accepted once (RFC 6238 section 5.2), and
//! repeated failures lock the method out, for longer each time, so six digits cannot be
//! brute-forced.
//!
//! # How many guesses a day
//!
//! Every [`MAX_FAILURES`] wrong codes in a row lock the method; each lockout of a streak lasts
//! longer than the one before ([`LOCKOUT_LEVELS_MS`]: 15 minutes, 1 hour, 4 hours, then 24 hours
//! for every further one). The level steps down by one only for each full day
//! ([`QUIET_MS`]) after the last lockout ended, or the last failure, with no failure at all. So
//! an attacker guessing as fast as the lockouts allow has at most [`MAX_CHECKS_PER_DAY`] codes
//! checked in any 24 hours (5 + 5 + 5 + 5 in the first 5 h 15 min, then 24 hours locked), and
//! [`MAX_FAILURES`] a day for as long as the attack goes on: about 20 guesses on the first day
//! and 5 on each day after. Each guess matches one of the three codes the skew accepts, a
//! chance of 3 in a million, so about 165 guesses a month succeed with a chance of about 1 in
//! 2,000 (and 5 a day over a year, about 1 in 180): small, not nothing, which is why a widening
//! still waits out its cool-down, announced to the customer. A code for a step already spent is refused as reused and does not count as a
//! failure: it proves the right app, only too late, and it must not help anyone lock the
//! customer out.

use crate::time::UnixMillis;
use serde::{Deserialize, Serialize};
use totp_rs::{Algorithm, Builder, Totp};

/// Authenticator apps agree on SHA-1, six digits and 30-second steps; one step of skew either
/// side absorbs clock drift and typing time.
pub const DIGITS: u8 = 6;
pub const STEP_SECONDS: u64 = 30;
pub const SKEW_STEPS: u16 = 1;
/// Secret length in bytes (RFC 4226 recommends 160 bits).
pub const SECRET_BYTES: usize = 20;
/// Failures in a row before the method locks.
pub const MAX_FAILURES: u32 = 5;
/// How long each lockout of a streak lasts: the first, the second, the third, then every
/// further one.
pub const LOCKOUT_LEVELS_MS: [i64; 4] = [15 * 60_000, 60 * 60_000, 4 * 3_600_000, 24 * 3_600_000];
/// How long the method must stay quiet (no failure, not locked) for the level to step down one.
pub const QUIET_MS: i64 = 24 * 3_600_000;
/// The most codes checked in any 24 hours, whatever the caller does (see the module's docs).
pub const MAX_CHECKS_PER_DAY: u32 = 4 * MAX_FAILURES;

/// What is remembered between checks. Fields added after the first release read as their
/// defaults from older stored documents.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TotpState {
    /// The last accepted time step; that step and every earlier one are spent.
    pub last_step: Option<u64>,
    /// Failures since the last success or lockout.
    pub failures: u32,
    pub locked_until: Option<UnixMillis>,
    /// Lockouts in the current streak (at most the number of levels): the next lockout lasts
    /// `LOCKOUT_LEVELS_MS[level]`, capped at the last.
    #[serde(default)]
    pub level: u32,
    /// When the last wrong code was entered: quiet days are counted from here (or from the end
    /// of the lockout, whichever is later).
    #[serde(default)]
    pub last_failure: Option<UnixMillis>,
}

impl TotpState {
    /// The state as it stands at `now`: the level steps down one for each quiet day, and a
    /// quiet day also forgets a partial run of failures.
    pub fn settled(&self, now: UnixMillis) -> TotpState {
        let quiet_since = self.locked_until.max(self.last_failure);
        let Some(since) = quiet_since else {
            return self.clone();
        };
        let quiet_days = now.millis_since(since).max(0) / QUIET_MS;
        if quiet_days == 0 {
            return self.clone();
        }
        let steps = u32::try_from(quiet_days).unwrap_or(u32::MAX);
        TotpState {
            last_step: self.last_step,
            failures: 0,
            locked_until: None,
            level: self.level.saturating_sub(steps),
            last_failure: None,
        }
    }

    /// How long the next lockout of this streak lasts.
    pub fn next_lockout_ms(&self) -> i64 {
        let last = LOCKOUT_LEVELS_MS.len() - 1;
        let index = usize::try_from(self.level).map_or(last, |level| level.min(last));
        LOCKOUT_LEVELS_MS[index]
    }
}

/// Why a code was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TotpError {
    #[error("wrong code")]
    Wrong,
    #[error("this code was already used; wait for the next one")]
    Reused,
    #[error("too many wrong codes; try again after {}", .0.to_rfc3339())]
    LockedOut(UnixMillis),
    #[error("the TOTP secret is not usable: {0}")]
    BadSecret(String),
}

/// The generator for `secret` (raw bytes), with the account shown in the app.
pub fn generator(secret: &[u8], issuer: &str, account: &str) -> Result<Totp, TotpError> {
    Builder::new()
        .with_algorithm(Algorithm::SHA1)
        .with_digits(DIGITS)
        .with_step_duration(STEP_SECONDS)
        .with_skew(SKEW_STEPS)
        .with_secret(secret.to_vec())
        .with_issuer(Some(issuer.replace(':', " ")))
        .with_account_name(account.replace(':', " "))
        .build()
        .map_err(|e| TotpError::BadSecret(e.to_string()))
}

/// The `otpauth://` URI an authenticator app scans.
pub fn provisioning_uri(totp: &Totp) -> Result<String, TotpError> {
    totp.to_url()
        .map_err(|e| TotpError::BadSecret(e.to_string()))
}

/// Checks `code` at `now` and returns the state to store, whatever the outcome: a failure must
/// be recorded as surely as a success.
pub fn check(
    totp: &Totp,
    state: &TotpState,
    code: &str,
    now: UnixMillis,
) -> (TotpState, Result<u64, TotpError>) {
    let state = state.settled(now);
    if let Some(until) = state.locked_until
        && now < until
    {
        return (state, Err(TotpError::LockedOut(until)));
    }
    let seconds = u64::try_from(now.as_millis() / 1000).unwrap_or(0);
    let code: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    match totp.check(&code, seconds) {
        // The right app, too late: not a guess, so not a failure.
        Some(step) if state.last_step.is_some_and(|last| step <= last) => {
            (state, Err(TotpError::Reused))
        }
        Some(step) => {
            let next = TotpState {
                last_step: Some(step),
                failures: 0,
                // A lockout that has ended stays recorded: quiet days count from its end.
                ..state
            };
            (next, Ok(step))
        }
        None => {
            let next = failed(state, now);
            let error = match next.locked_until {
                Some(until) if now < until => TotpError::LockedOut(until),
                _ => TotpError::Wrong,
            };
            (next, Err(error))
        }
    }
}

/// One more wrong code: the [`MAX_FAILURES`]th in a row locks the method for the streak's
/// current level and raises the level for the next lockout.
fn failed(state: TotpState, now: UnixMillis) -> TotpState {
    let failures = state.failures.saturating_add(1);
    if failures < MAX_FAILURES {
        return TotpState {
            failures,
            last_failure: Some(now),
            ..state
        };
    }
    let top = u32::try_from(LOCKOUT_LEVELS_MS.len() - 1).unwrap_or(u32::MAX);
    TotpState {
        failures: 0,
        locked_until: Some(now.plus_millis(state.next_lockout_ms())),
        level: state.level.saturating_add(1).min(top),
        last_failure: Some(now),
        ..state
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"12345678901234567890";
    const MINUTE: i64 = 60_000;
    const HOUR: i64 = 60 * MINUTE;
    const DAY: i64 = 24 * HOUR;

    fn app() -> Totp {
        generator(SECRET, "Example Exchange", "acc_81").unwrap()
    }

    fn code_at(seconds: i64) -> String {
        app().generate(u64::try_from(seconds).unwrap()).to_string()
    }

    /// A code that is wrong at `now` (none of the steps the skew accepts).
    fn wrong_at(now: UnixMillis) -> String {
        let seconds = now.as_millis() / 1000;
        let accepted = [
            code_at(seconds - 30),
            code_at(seconds),
            code_at(seconds + 30),
        ];
        ["000000", "111111", "222222", "333333"]
            .into_iter()
            .find(|guess| !accepted.iter().any(|code| code == guess))
            .unwrap()
            .to_owned()
    }

    /// Enters [`MAX_FAILURES`] wrong codes at `now`; returns the state and the last answer.
    fn fail_a_run(state: TotpState, now: UnixMillis) -> (TotpState, Result<u64, TotpError>) {
        let mut state = state;
        let mut last = Ok(0);
        for _ in 0..MAX_FAILURES {
            let (next, result) = check(&app(), &state, &wrong_at(now), now);
            state = next;
            last = result;
        }
        (state, last)
    }

    #[test]
    fn a_code_is_accepted_once() {
        let now = UnixMillis::from_secs(1_111_111_111);
        let code = code_at(1_111_111_111);
        let (state, ok) = check(&app(), &TotpState::default(), &code, now);
        assert!(ok.is_ok());
        let (_, again) = check(&app(), &state, &code, now.plus_millis(2_000));
        assert_eq!(again, Err(TotpError::Reused));
        // The previous step (inside the skew) is spent too.
        let earlier = code_at(1_111_111_111 - 30);
        let (_, old) = check(&app(), &state, &earlier, now);
        assert_eq!(old, Err(TotpError::Reused));
        // The next step is fine.
        let next = code_at(1_111_111_111 + 30);
        let (_, fine) = check(&app(), &state, &next, now.plus_millis(30_000));
        assert!(fine.is_ok());
    }

    #[test]
    fn a_reused_code_is_not_a_failure() {
        let now = UnixMillis::from_secs(1_111_111_111);
        let code = code_at(1_111_111_111);
        let (mut state, ok) = check(&app(), &TotpState::default(), &code, now);
        assert!(ok.is_ok());
        let (next, _) = check(&app(), &state, &wrong_at(now), now);
        assert_eq!(next.failures, 1);
        state = next;
        // However often the spent code is sent again, the count of failures stays where it was
        // and the method never locks.
        for _ in 0..(2 * MAX_FAILURES) {
            let (next, result) = check(&app(), &state, &code, now.plus_millis(1_000));
            assert_eq!(result, Err(TotpError::Reused));
            assert_eq!(next, state);
            state = next;
        }
        assert_eq!(state.failures, 1);
        assert_eq!(state.locked_until, None);
    }

    #[test]
    fn five_wrong_codes_lock_the_method_even_for_the_right_code() {
        let now = UnixMillis::from_secs(2_000_000_000);
        let mut state = TotpState::default();
        for attempt in 1..MAX_FAILURES {
            let (next, result) = check(&app(), &state, &wrong_at(now), now);
            assert_eq!(result, Err(TotpError::Wrong), "attempt {attempt}");
            state = next;
        }
        let (locked, result) = check(&app(), &state, &wrong_at(now), now);
        let until = now.plus_millis(LOCKOUT_LEVELS_MS[0]);
        assert_eq!(result, Err(TotpError::LockedOut(until)));
        let right = code_at(2_000_000_000);
        let (_, refused) = check(&app(), &locked, &right, now.plus_millis(1_000));
        assert_eq!(refused, Err(TotpError::LockedOut(until)));
        let later = until.plus_millis(1);
        let fresh = code_at(later.as_millis() / 1000);
        let (_, accepted) = check(&app(), &locked, &fresh, later);
        assert!(accepted.is_ok());
    }

    #[test]
    fn each_lockout_of_a_streak_lasts_longer_up_to_a_day() {
        let mut now = UnixMillis::from_secs(2_000_000_000);
        let mut state = TotpState::default();
        for (n, expected) in [15 * MINUTE, HOUR, 4 * HOUR, DAY, DAY, DAY]
            .into_iter()
            .enumerate()
        {
            let (next, last) = fail_a_run(state, now);
            let until = now.plus_millis(expected);
            assert_eq!(last, Err(TotpError::LockedOut(until)), "lockout {}", n + 1);
            assert_eq!(next.locked_until, Some(until));
            state = next;
            // One millisecond early is still locked, and is no failure.
            let early = until.plus_millis(-1);
            let (same, refused) = check(&app(), &state, &wrong_at(early), early);
            assert_eq!(refused, Err(TotpError::LockedOut(until)));
            assert_eq!(same, state);
            now = until;
        }
    }

    #[test]
    fn a_success_does_not_reset_the_level_but_quiet_days_step_it_down() {
        let mut now = UnixMillis::from_secs(2_000_000_000);
        let mut state = TotpState::default();
        for _ in 0..3 {
            let (next, _) = fail_a_run(state, now);
            now = next.locked_until.unwrap();
            state = next;
        }
        assert_eq!(state.next_lockout_ms(), DAY);
        // The right code at the end of the lockout passes, and the level stays.
        let (passed, ok) = check(&app(), &state, &code_at(now.as_millis() / 1000), now);
        assert!(ok.is_ok());
        assert_eq!(passed.next_lockout_ms(), DAY);
        // Almost a quiet day later: still the top level.
        let almost = now.plus_millis(QUIET_MS - 1);
        assert_eq!(passed.settled(almost).next_lockout_ms(), DAY);
        // A quiet day steps it down one level, two quiet days two.
        let one_day = now.plus_millis(QUIET_MS);
        assert_eq!(passed.settled(one_day).next_lockout_ms(), 4 * HOUR);
        let two_days = now.plus_millis(2 * QUIET_MS);
        assert_eq!(passed.settled(two_days).next_lockout_ms(), HOUR);
        let (after, last) = fail_a_run(passed, two_days);
        assert_eq!(last, Err(TotpError::LockedOut(two_days.plus_millis(HOUR))));
        assert_eq!(after.next_lockout_ms(), 4 * HOUR);
    }

    #[test]
    fn a_quiet_day_forgets_a_partial_run_of_failures() {
        let now = UnixMillis::from_secs(2_000_000_000);
        let mut state = TotpState::default();
        for _ in 1..MAX_FAILURES {
            state = check(&app(), &state, &wrong_at(now), now).0;
        }
        let later = now.plus_millis(QUIET_MS);
        let (next, result) = check(&app(), &state, &wrong_at(later), later);
        assert_eq!(result, Err(TotpError::Wrong));
        assert_eq!(next.failures, 1);
    }

    /// Codes an attacker gets checked per day, over `days`, guessing as soon as the method
    /// lets them and waiting `pause_ms` more after each lockout ends. Also asserts the bound
    /// over every sliding 24 hours, not only calendar days.
    fn checks_per_day(days: i64, pause_ms: i64) -> Vec<u32> {
        let start = UnixMillis::from_secs(2_000_000_000);
        let end = start.plus_millis(days * DAY);
        let mut per_day = vec![0u32; usize::try_from(days).unwrap()];
        let mut state = TotpState::default();
        let mut now = start;
        let mut checked_at = Vec::new();
        while now < end {
            let before = state.settled(now);
            if let Some(until) = before.locked_until.filter(|until| now < *until) {
                now = until.plus_millis(pause_ms);
                continue;
            }
            let (next, result) = check(&app(), &state, &wrong_at(now), now);
            assert!(matches!(
                result,
                Err(TotpError::Wrong | TotpError::LockedOut(_))
            ));
            let day = usize::try_from(now.millis_since(start) / DAY).unwrap();
            per_day[day] += 1;
            checked_at.push(now);
            state = next;
            now = now.plus_millis(1_000);
        }
        for (n, first) in checked_at.iter().enumerate() {
            let within_a_day = checked_at[n..]
                .iter()
                .take_while(|at| at.millis_since(*first) < DAY)
                .count();
            assert!(
                within_a_day <= usize::try_from(MAX_CHECKS_PER_DAY).unwrap(),
                "{within_a_day} codes checked in the 24 hours from {first:?} (pause {pause_ms})"
            );
        }
        per_day
    }

    #[test]
    fn an_attacker_gets_at_most_the_stated_number_of_guesses_a_day() {
        // As fast as allowed: 20 on the first day, then one run a day.
        let eager = checks_per_day(10, 0);
        assert_eq!(eager[0], MAX_CHECKS_PER_DAY, "{eager:?}");
        assert!(eager[1..].iter().all(|n| *n <= MAX_FAILURES), "{eager:?}");
        // Waiting out a quiet day after each lockout to bring the level down does not help.
        for pause in [HOUR, QUIET_MS, QUIET_MS + HOUR, 2 * QUIET_MS] {
            let patient = checks_per_day(20, pause);
            assert!(
                patient.iter().all(|n| *n <= MAX_CHECKS_PER_DAY),
                "pause {pause}: {patient:?}"
            );
            let total: u32 = patient.iter().sum();
            assert!(
                total <= 20 * MAX_CHECKS_PER_DAY / 2,
                "pause {pause}: {total}"
            );
        }
    }

    #[test]
    fn a_document_stored_before_escalation_still_reads() {
        let old = r#"{"last_step":56666666,"failures":3,"locked_until":null}"#;
        let state: TotpState = serde_json::from_str(old).unwrap();
        assert_eq!(state.last_step, Some(56_666_666));
        assert_eq!(state.failures, 3);
        assert_eq!(state.level, 0);
        assert_eq!(state.last_failure, None);
        assert_eq!(state.next_lockout_ms(), LOCKOUT_LEVELS_MS[0]);
    }

    #[test]
    fn the_uri_names_the_issuer_and_account() {
        let uri = provisioning_uri(&app()).unwrap();
        assert!(uri.starts_with("otpauth://totp/"), "{uri}");
        assert!(uri.contains("issuer=Example%20Exchange"), "{uri}");
        assert!(uri.contains("acc_81"), "{uri}");
    }
}
