//! TOTP (RFC 6238) as a step-up: codes are checked by `totp-rs`; this module adds what the
//! library leaves to its caller: a time step is accepted once (RFC 6238 section 5.2), and
//! repeated failures lock the method out so six digits cannot be brute-forced.

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
/// How long a lockout lasts.
pub const LOCKOUT_MS: i64 = 15 * 60_000;

/// What is remembered between checks.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TotpState {
    /// The last accepted time step; that step and every earlier one are spent.
    pub last_step: Option<u64>,
    /// Failures since the last success.
    pub failures: u32,
    pub locked_until: Option<UnixMillis>,
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
    if let Some(until) = state.locked_until
        && now < until
    {
        return (state.clone(), Err(TotpError::LockedOut(until)));
    }
    let seconds = u64::try_from(now.as_millis() / 1000).unwrap_or(0);
    let code: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    match totp.check(&code, seconds) {
        Some(step) if state.last_step.is_some_and(|last| step <= last) => {
            (failed(state, now), Err(TotpError::Reused))
        }
        Some(step) => {
            let next = TotpState {
                last_step: Some(step),
                failures: 0,
                locked_until: None,
            };
            (next, Ok(step))
        }
        None => {
            let next = failed(state, now);
            let error = match next.locked_until {
                Some(until) => TotpError::LockedOut(until),
                None => TotpError::Wrong,
            };
            (next, Err(error))
        }
    }
}

fn failed(state: &TotpState, now: UnixMillis) -> TotpState {
    let failures = state.failures.saturating_add(1);
    TotpState {
        last_step: state.last_step,
        failures: if failures >= MAX_FAILURES {
            0
        } else {
            failures
        },
        locked_until: (failures >= MAX_FAILURES).then(|| now.plus_millis(LOCKOUT_MS)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"12345678901234567890";

    fn app() -> Totp {
        generator(SECRET, "Example Exchange", "acc_81").unwrap()
    }

    fn code_at(seconds: i64) -> String {
        app().generate(u64::try_from(seconds).unwrap()).to_string()
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
    fn five_wrong_codes_lock_the_method_even_for_the_right_code() {
        let now = UnixMillis::from_secs(2_000_000_000);
        let mut state = TotpState::default();
        for attempt in 1..MAX_FAILURES {
            let (next, result) = check(&app(), &state, "000000", now);
            assert_eq!(result, Err(TotpError::Wrong), "attempt {attempt}");
            state = next;
        }
        let (locked, result) = check(&app(), &state, "000000", now);
        let until = now.plus_millis(LOCKOUT_MS);
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
    fn the_uri_names_the_issuer_and_account() {
        let uri = provisioning_uri(&app()).unwrap();
        assert!(uri.starts_with("otpauth://totp/"), "{uri}");
        assert!(uri.contains("issuer=Example%20Exchange"), "{uri}");
        assert!(uri.contains("acc_81"), "{uri}");
    }
}
