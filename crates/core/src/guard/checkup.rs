//! The security check-up in the customer's security center: a score out of 100 and the
//! concrete fixes that would raise it, from what the account has and how its keys look.

use crate::key::ApiKey;
use crate::scope::Scope;
use crate::time::UnixMillis;

const DAY_MS: i64 = 86_400_000;
/// Keys older than this should be rotated or replaced.
pub const OLD_KEY_DAYS: i64 = 90;
/// Keys unused this long are probably forgotten.
pub const STALE_KEY_DAYS: i64 = 30;
/// A key never used this long after it was made is probably not needed.
pub const UNUSED_KEY_DAYS: i64 = 7;

/// One thing to fix, with how much it costs the score.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// Stable id: `no_passkey`, `pending_widening`, `withdraw_key`, `unrestricted_key`,
    /// `old_key`, `stale_key`, `unused_key`.
    pub id: &'static str,
    pub penalty: u8,
    /// What to do, for the customer.
    pub fix: String,
    /// What the fix acts on: the key's id, or the pending change's; `None` for the account.
    pub target: Option<String>,
}

/// A change waiting to widen the account (pending or held), as the check-up weighs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenWidening {
    pub change_id: String,
    /// What it would do, in the customer's words.
    pub what: String,
}

/// The result of a check-up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkup {
    pub score: u8,
    pub findings: Vec<Finding>,
}

/// Checks an account: `keys` are its live keys, `open` its changes still waiting to widen it
/// (the score is never full while one is: it is exactly what a scammer asks for).
pub fn checkup(
    passkeys: usize,
    totp: bool,
    keys: &[ApiKey],
    open: &[OpenWidening],
    now: UnixMillis,
) -> Checkup {
    let mut findings = Vec::new();
    for change in open {
        findings.push(Finding {
            id: "pending_widening",
            penalty: 30,
            fix: format!(
                "A change is waiting to widen your account ({}): cancel it unless you made it yourself, with nobody guiding you.",
                change.what
            ),
            target: Some(change.change_id.clone()),
        });
    }
    if passkeys == 0 {
        let fix = if totp {
            "Add a passkey: unlike a one-time code, nobody can talk you into reading it out."
        } else {
            "Add a passkey (or at least an authenticator app): without one you cannot confirm changes safely."
        };
        findings.push(Finding {
            id: "no_passkey",
            penalty: if totp { 25 } else { 40 },
            fix: fix.into(),
            target: None,
        });
    }
    for key in keys {
        key_findings(key, now, &mut findings);
    }
    let lost: u32 = findings.iter().map(|f| u32::from(f.penalty)).sum();
    Checkup {
        score: u8::try_from(100u32.saturating_sub(lost)).unwrap_or(0),
        findings,
    }
}

/// What one live key would need fixed.
fn key_findings(key: &ApiKey, now: UnixMillis, findings: &mut Vec<Finding>) {
    let name = if key.label.is_empty() {
        key.key_id.clone()
    } else {
        format!("'{}'", key.label)
    };
    let mut found = |id: &'static str, penalty: u8, fix: String| {
        findings.push(Finding {
            id,
            penalty,
            fix,
            target: Some(key.key_id.clone()),
        });
    };
    // `withdraw` for a while (a time-boxed grant, or a key that expires) is the safe way to
    // give it; for ever is what the check-up asks about.
    let boxed = key
        .fund_window
        .as_ref()
        .is_some_and(|window| window.scopes.contains(Scope::Withdraw));
    if key.scopes.contains(Scope::Withdraw) && key.expires_at.is_none() && !boxed {
        found(
            "withdraw_key",
            15,
            format!(
                "Key {name} can withdraw and never expires: remove `withdraw` unless a bot of yours really needs it."
            ),
        );
    }
    if key.ip_allowlist.is_unrestricted() {
        found(
            "unrestricted_key",
            10,
            format!("Key {name} works from any IP address: restrict it to your servers."),
        );
    }
    if now.millis_since(key.created_at) > OLD_KEY_DAYS * DAY_MS {
        found(
            "old_key",
            5,
            format!("Key {name} is older than {OLD_KEY_DAYS} days: replace it with a new one."),
        );
    }
    match key.last_used_at {
        None if now.millis_since(key.created_at) > UNUSED_KEY_DAYS * DAY_MS => {
            found(
                "unused_key",
                5,
                format!("Key {name} has never been used: revoke it if you do not need it."),
            );
        }
        Some(last) if now.millis_since(last) > STALE_KEY_DAYS * DAY_MS => {
            found(
                "stale_key",
                5,
                format!(
                    "Key {name} has not been used for {STALE_KEY_DAYS} days: revoke it if you no longer need it."
                ),
            );
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::allowlist::IpAllowList;
    use crate::key::KeyAlgorithm;
    use crate::scope::ScopeSet;

    const NOW: UnixMillis = UnixMillis(1_767_225_600_000);

    fn key(scopes: &[&str], allow: &[&str], age_days: i64) -> ApiKey {
        let created = NOW.plus_millis(-age_days * DAY_MS);
        ApiKey {
            key_id: "k1".into(),
            api_key: "a".into(),
            account: "acc".into(),
            label: "bot".into(),
            algorithm: KeyAlgorithm::HmacSha256,
            public_key: None,
            scopes: ScopeSet::parse(scopes.iter().copied()).unwrap(),
            ip_allowlist: IpAllowList::parse(allow.iter().copied()).unwrap(),
            created_at: created,
            updated_at: created,
            expires_at: None,
            last_used_at: Some(NOW),
            last_used_ip: None,
            revoked_at: None,
            idle_warned_at: None,
            fund_window: None,
            version: 1,
        }
    }

    #[test]
    fn a_passkey_and_tight_keys_score_full_marks() {
        let result = checkup(
            1,
            false,
            &[key(&["read", "trade"], &["203.0.113.7"], 10)],
            &[],
            NOW,
        );
        assert_eq!(
            result,
            Checkup {
                score: 100,
                findings: vec![]
            }
        );
    }

    #[test]
    fn each_weakness_is_named_with_its_fix() {
        let keys = [key(&["read", "withdraw"], &[], 120)];
        let result = checkup(0, true, &keys, &[], NOW);
        let ids: Vec<&str> = result.findings.iter().map(|f| f.id).collect();
        assert_eq!(
            ids,
            ["no_passkey", "withdraw_key", "unrestricted_key", "old_key"]
        );
        assert_eq!(result.score, 100 - 25 - 15 - 10 - 5);
        assert!(result.findings[1].fix.contains("'bot'"));
    }

    #[test]
    fn the_score_never_goes_below_zero() {
        let keys: Vec<ApiKey> = (0..10).map(|_| key(&["withdraw"], &[], 200)).collect();
        assert_eq!(checkup(0, false, &keys, &[], NOW).score, 0);
    }

    #[test]
    fn a_pending_widening_is_never_full_marks() {
        let keys = [key(&["read"], &["203.0.113.7"], 1)];
        let open = [OpenWidening {
            change_id: "chg_1".into(),
            what: "allow withdrawals".into(),
        }];
        let result = checkup(1, false, &keys, &open, NOW);
        assert!(result.score < 100);
        assert_eq!(result.findings[0].id, "pending_widening");
        assert_eq!(result.findings[0].target.as_deref(), Some("chg_1"));
    }

    #[test]
    fn withdraw_with_an_expiry_and_unused_keys() {
        let mut expiring = key(&["read", "withdraw"], &["203.0.113.7"], 10);
        expiring.expires_at = Some(NOW.plus_millis(DAY_MS));
        expiring.last_used_at = None;
        let ids: Vec<&str> = checkup(1, false, &[expiring], &[], NOW)
            .findings
            .iter()
            .map(|f| f.id)
            .collect();
        assert_eq!(
            ids,
            ["unused_key"],
            "an expiring withdraw key is fine; never used is not"
        );
        let mut boxed = key(&["read", "withdraw"], &["203.0.113.7"], 1);
        boxed.fund_window = Some(crate::guard::fund_window::FundWindow {
            scopes: ScopeSet::parse(["withdraw"]).unwrap(),
            until: NOW.plus_millis(DAY_MS),
            cap: None,
            spent: Default::default(),
        });
        assert!(
            checkup(1, false, &[boxed], &[], NOW).findings.is_empty(),
            "a time-boxed withdraw is the safe default"
        );
    }
}
