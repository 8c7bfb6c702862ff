//! The API key as the key authority sees it: who owns it, what it may do, from where, until
//! when, and whether it is still alive.
//!
//! Liveness is computed, never stored as a flag: a key is revoked from its revocation time,
//! expired from its expiry time, and idle-expired when it carries `trade` or `withdraw` without
//! an IP allow-list and has not been used for the configured idle period. The same function
//! answers for the verifier, the sweeper and the API, so they can never disagree.

use crate::allowlist::IpAllowList;
use crate::guard::fund_window::{self, FundWindow};
use crate::scope::{Scope, ScopeSet};
use crate::signing::Ed25519PublicKey;
use crate::time::UnixMillis;
use std::net::IpAddr;

/// How requests made with the key are signed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyAlgorithm {
    /// Binance-style hex HMAC-SHA256; Portcullis holds the secret, encrypted.
    HmacSha256,
    /// Base64 Ed25519; the customer holds the private key, Portcullis only the public one.
    Ed25519,
}

impl KeyAlgorithm {
    pub const fn as_str(self) -> &'static str {
        match self {
            KeyAlgorithm::HmacSha256 => "hmac-sha256",
            KeyAlgorithm::Ed25519 => "ed25519",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "hmac-sha256" | "hmac" => Some(KeyAlgorithm::HmacSha256),
            "ed25519" => Some(KeyAlgorithm::Ed25519),
            _ => None,
        }
    }
}

/// The idle-expiry rule for risky unrestricted keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdlePolicy {
    /// A key with `trade` or `withdraw` and no allow-list dies after this long without use.
    pub idle_expiry_ms: i64,
    /// The owner is warned this long before that happens.
    pub warn_before_ms: i64,
}

impl IdlePolicy {
    pub const DAY_MS: i64 = 86_400_000;

    /// Thirty days, warned seven days ahead: between the 14 and 90 days exchanges use.
    pub const fn default_policy() -> Self {
        Self {
            idle_expiry_ms: 30 * Self::DAY_MS,
            warn_before_ms: 7 * Self::DAY_MS,
        }
    }
}

impl Default for IdlePolicy {
    fn default() -> Self {
        Self::default_policy()
    }
}

/// Whether a key may be used at a given instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyStatus {
    Active,
    Revoked,
    /// Past the expiry its owner chose.
    Expired,
    /// Unused for the idle period while carrying `trade`/`withdraw` without an allow-list.
    IdleExpired,
}

impl KeyStatus {
    pub const fn as_str(self) -> &'static str {
        match self {
            KeyStatus::Active => "active",
            KeyStatus::Revoked => "revoked",
            KeyStatus::Expired => "expired",
            KeyStatus::IdleExpired => "idle_expired",
        }
    }
}

/// One API key (never its secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKey {
    /// Internal identifier used in events, audit entries and URLs.
    pub key_id: String,
    /// The public identifier clients send with each request (Binance's `X-MBX-APIKEY`).
    pub api_key: String,
    pub account: String,
    pub label: String,
    pub algorithm: KeyAlgorithm,
    /// Present exactly for Ed25519 keys.
    pub public_key: Option<Ed25519PublicKey>,
    pub scopes: ScopeSet,
    pub ip_allowlist: IpAllowList,
    pub created_at: UnixMillis,
    pub updated_at: UnixMillis,
    pub expires_at: Option<UnixMillis>,
    pub last_used_at: Option<UnixMillis>,
    pub last_used_ip: Option<IpAddr>,
    pub revoked_at: Option<UnixMillis>,
    /// When the owner was warned that idle expiry is near (cleared by use).
    pub idle_warned_at: Option<UnixMillis>,
    /// The fund-moving scopes granted only for a while (and up to an amount), if any.
    pub fund_window: Option<FundWindow>,
    /// Optimistic-concurrency counter, bumped on every stored change.
    pub version: i64,
}

impl ApiKey {
    /// The scopes that count at `now`: a lapsed fund window's scopes no longer do, whether or
    /// not the stored key has been tidied yet.
    pub fn scopes_at(&self, now: UnixMillis) -> ScopeSet {
        fund_window::scopes_at(self.scopes, self.fund_window.as_ref(), now)
    }

    /// Whether the idle-expiry rule applies to this key as it is now configured.
    pub fn idle_expiry_applies(&self) -> bool {
        (self.scopes.contains(Scope::Trade) || self.scopes.contains(Scope::Withdraw))
            && self.ip_allowlist.is_unrestricted()
    }

    /// The last sign of life: creation, configuration change or use, whichever is latest.
    pub fn last_activity(&self) -> UnixMillis {
        self.last_activity_with(self.last_used_at)
    }

    fn last_activity_with(&self, last_used: Option<UnixMillis>) -> UnixMillis {
        let used = last_used.unwrap_or(self.created_at);
        self.created_at.max(self.updated_at).max(used)
    }

    /// When idle expiry will strike if nothing happens, for keys it applies to.
    pub fn idle_deadline(&self, policy: IdlePolicy) -> Option<UnixMillis> {
        self.idle_deadline_with(policy, self.last_used_at)
    }

    fn idle_deadline_with(
        &self,
        policy: IdlePolicy,
        last_used: Option<UnixMillis>,
    ) -> Option<UnixMillis> {
        self.idle_expiry_applies().then(|| {
            self.last_activity_with(last_used)
                .plus_millis(policy.idle_expiry_ms)
        })
    }

    pub fn status(&self, now: UnixMillis, policy: IdlePolicy) -> KeyStatus {
        self.status_with_last_use(now, policy, self.last_used_at)
    }

    /// Liveness when the latest use is known to be `last_used` (which may be newer than the
    /// stored `last_used_at`, for uses not yet written back).
    pub fn status_with_last_use(
        &self,
        now: UnixMillis,
        policy: IdlePolicy,
        last_used: Option<UnixMillis>,
    ) -> KeyStatus {
        if self.revoked_at.is_some_and(|at| at <= now) {
            return KeyStatus::Revoked;
        }
        if self.expires_at.is_some_and(|at| at <= now) {
            return KeyStatus::Expired;
        }
        let last_used = last_used.max(self.last_used_at);
        if self
            .idle_deadline_with(policy, last_used)
            .is_some_and(|at| at <= now)
        {
            return KeyStatus::IdleExpired;
        }
        KeyStatus::Active
    }

    /// Whether the owner should now be warned of coming idle expiry (once per idle stretch).
    pub fn idle_warning_due(&self, now: UnixMillis, policy: IdlePolicy) -> bool {
        let Some(deadline) = self.idle_deadline(policy) else {
            return false;
        };
        let already_warned = self
            .idle_warned_at
            .is_some_and(|warned| warned >= self.last_activity());
        self.status(now, policy) == KeyStatus::Active
            && !already_warned
            && now >= deadline.plus_millis(-policy.warn_before_ms)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub fn sample_key(scopes: &[&str], allowlist: &[&str]) -> ApiKey {
        ApiKey {
            key_id: "k_1".into(),
            api_key: "pk_test".into(),
            account: "acc_1".into(),
            label: "bot".into(),
            algorithm: KeyAlgorithm::HmacSha256,
            public_key: None,
            scopes: ScopeSet::parse(scopes).unwrap(),
            ip_allowlist: IpAllowList::parse(allowlist).unwrap(),
            created_at: UnixMillis(0),
            updated_at: UnixMillis(0),
            expires_at: None,
            last_used_at: None,
            last_used_ip: None,
            revoked_at: None,
            idle_warned_at: None,
            fund_window: None,
            version: 1,
        }
    }

    const DAY: i64 = IdlePolicy::DAY_MS;

    #[test]
    fn unrestricted_trading_keys_die_when_idle() {
        let policy = IdlePolicy::default_policy();
        let key = sample_key(&["read", "trade"], &[]);
        assert_eq!(key.status(UnixMillis(29 * DAY), policy), KeyStatus::Active);
        assert_eq!(
            key.status(UnixMillis(30 * DAY), policy),
            KeyStatus::IdleExpired
        );
    }

    #[test]
    fn restricted_or_read_only_keys_never_idle_expire() {
        let policy = IdlePolicy::default_policy();
        let far = UnixMillis(3650 * DAY);
        assert_eq!(
            sample_key(&["read"], &[]).status(far, policy),
            KeyStatus::Active
        );
        let restricted = sample_key(&["trade", "withdraw"], &["203.0.113.7"]);
        assert_eq!(restricted.status(far, policy), KeyStatus::Active);
    }

    #[test]
    fn use_resets_the_idle_clock_and_the_warning() {
        let policy = IdlePolicy::default_policy();
        let mut key = sample_key(&["trade"], &[]);
        assert!(!key.idle_warning_due(UnixMillis(22 * DAY), policy));
        assert!(key.idle_warning_due(UnixMillis(23 * DAY), policy));
        key.idle_warned_at = Some(UnixMillis(23 * DAY));
        assert!(!key.idle_warning_due(UnixMillis(24 * DAY), policy));
        key.last_used_at = Some(UnixMillis(25 * DAY));
        assert_eq!(key.status(UnixMillis(40 * DAY), policy), KeyStatus::Active);
        assert!(key.idle_warning_due(UnixMillis(48 * DAY), policy));
    }

    #[test]
    fn revocation_and_expiry_win_over_everything() {
        let policy = IdlePolicy::default_policy();
        let mut key = sample_key(&["read"], &[]);
        key.expires_at = Some(UnixMillis(100));
        assert_eq!(key.status(UnixMillis(100), policy), KeyStatus::Expired);
        key.revoked_at = Some(UnixMillis(50));
        assert_eq!(key.status(UnixMillis(60), policy), KeyStatus::Revoked);
    }
}
