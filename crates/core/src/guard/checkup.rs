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

/// One thing to fix, with how much it costs the score.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// Stable id: `no_passkey`, `withdraw_key`, `old_key`, `unrestricted_key`, `stale_key`.
    pub id: &'static str,
    pub penalty: u8,
    /// What to do, for the customer.
    pub fix: String,
}

/// The result of a check-up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkup {
    pub score: u8,
    pub findings: Vec<Finding>,
}

/// Checks an account: `keys` are its live keys.
pub fn checkup(passkeys: usize, totp: bool, keys: &[ApiKey], now: UnixMillis) -> Checkup {
    let mut findings = Vec::new();
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
        });
    }
    for key in keys {
        let name = if key.label.is_empty() {
            key.key_id.clone()
        } else {
            format!("'{}'", key.label)
        };
        if key.scopes.contains(Scope::Withdraw) {
            findings.push(Finding { id: "withdraw_key", penalty: 15, fix: format!("Key {name} can withdraw: remove `withdraw` unless a bot of yours really needs it.") });
        }
        if key.ip_allowlist.is_unrestricted() {
            findings.push(Finding {
                id: "unrestricted_key",
                penalty: 10,
                fix: format!("Key {name} works from any IP address: restrict it to your servers."),
            });
        }
        if now.millis_since(key.created_at) > OLD_KEY_DAYS * DAY_MS {
            findings.push(Finding {
                id: "old_key",
                penalty: 5,
                fix: format!("Key {name} is older than {OLD_KEY_DAYS} days: rotate it."),
            });
        }
        let last = key.last_used_at.unwrap_or(key.created_at);
        if now.millis_since(last) > STALE_KEY_DAYS * DAY_MS {
            findings.push(Finding { id: "stale_key", penalty: 5, fix: format!("Key {name} has not been used for {STALE_KEY_DAYS} days: revoke it if you no longer need it.") });
        }
    }
    let lost: u32 = findings.iter().map(|f| u32::from(f.penalty)).sum();
    Checkup {
        score: u8::try_from(100u32.saturating_sub(lost)).unwrap_or(0),
        findings,
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
        let result = checkup(0, true, &keys, NOW);
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
        assert_eq!(checkup(0, false, &keys, NOW).score, 0);
    }
}
