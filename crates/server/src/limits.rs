//! Abuse limits: per-IP and per-account rate limits on the endpoints that cost a write or a
//! guess and that anyone can call (cancel links, security-center sign-in links) or that confirm
//! or change something for a customer (step-ups in the operator API and the security center,
//! the security center's posts).
//!
//! Each limit is a GCRA bucket (`governor`) per key: a burst, refilled at a steady rate. A
//! refusal is 429 `rate_limited` with `Retry-After`. The time source is the app's [`Clock`], so
//! tests drive the limits with the same manual clock as everything else.
//!
//! The per-IP key is the connection's peer address (the server knows no trusted proxies yet, so
//! behind a proxy every customer shares the proxy's bucket: raise `rate_limit_ip_*` there). An
//! IPv6 client is keyed by its /64, which one subscriber usually holds whole. A request without
//! a peer address (the CLI's in-process requests) has no per-IP limit.
//!
//! Buckets are forgotten once they are full again ([`RateLimits::retain_recent`], run by the
//! background tasks), so memory follows the keys active in the last refill period, not every
//! key ever seen.

use crate::config::ConfigError;
use crate::error::ApiError;
use crate::state::AppState;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use governor::clock::Clock as LimiterClock;
use governor::middleware::NoOpMiddleware;
use governor::nanos::Nanos;
use governor::state::keyed::DashMapStateStore;
use governor::{Quota, RateLimiter};
use portcullis_app::ports::Clock;
use std::net::{IpAddr, Ipv6Addr};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Validated limits: a burst and a steady rate per key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimitSettings {
    pub per_ip: Quota,
    pub per_account: Quota,
}

impl Default for RateLimitSettings {
    fn default() -> Self {
        Self {
            per_ip: quota(DEFAULT_IP_PER_MINUTE, DEFAULT_IP_BURST),
            per_account: quota(DEFAULT_ACCOUNT_PER_MINUTE, DEFAULT_ACCOUNT_BURST),
        }
    }
}

// The defaults. A person clicks a cancel link or goes through a widening with a handful of
// requests; a bot forging links or spraying sessions sends thousands.
pub const DEFAULT_IP_PER_MINUTE: u32 = 60;
pub const DEFAULT_IP_BURST: u32 = 30;
pub const DEFAULT_ACCOUNT_PER_MINUTE: u32 = 30;
pub const DEFAULT_ACCOUNT_BURST: u32 = 20;

/// The configuration keys of the limits.
#[derive(Debug, Clone, Copy)]
pub struct LimitKeys {
    pub ip_per_minute: u32,
    pub ip_burst: u32,
    pub account_per_minute: u32,
    pub account_burst: u32,
}

/// Checks the configured limits.
pub fn settle(keys: &LimitKeys) -> Result<RateLimitSettings, ConfigError> {
    let one = |name: &str, per_minute: u32, burst: u32| {
        if (1..=1_000_000).contains(&per_minute) && (1..=100_000).contains(&burst) {
            Ok(quota(per_minute, burst))
        } else {
            Err(ConfigError::Invalid(format!(
                "rate_limit_{name}_per_minute must be 1..1000000 and rate_limit_{name}_burst 1..100000"
            )))
        }
    };
    Ok(RateLimitSettings {
        per_ip: one("ip", keys.ip_per_minute, keys.ip_burst)?,
        per_account: one("account", keys.account_per_minute, keys.account_burst)?,
    })
}

/// `burst` requests at once, then one every `60 s / per_minute` (zeros read as one).
const fn quota(per_minute: u32, burst: u32) -> Quota {
    const fn at_least_one(n: u32) -> NonZeroU32 {
        match NonZeroU32::new(n) {
            Some(n) => n,
            None => NonZeroU32::MIN,
        }
    }
    Quota::per_minute(at_least_one(per_minute)).allow_burst(at_least_one(burst))
}

/// The app's clock as the limiters' time source.
#[derive(Debug, Clone)]
struct AppClock(Arc<dyn Clock>);

impl LimiterClock for AppClock {
    type Instant = Nanos;

    fn now(&self) -> Nanos {
        // Milliseconds since 1970 fit in u64 nanoseconds until the year 2554.
        let millis = u64::try_from(self.0.now().as_millis()).unwrap_or(0);
        Nanos::new(millis.saturating_mul(1_000_000))
    }
}

type Keyed<K> = RateLimiter<K, DashMapStateStore<K>, AppClock, NoOpMiddleware<Nanos>>;

/// The limiters of one server, with counts of what they refused.
pub struct RateLimits {
    by_ip: Keyed<IpAddr>,
    by_account: Keyed<String>,
    clock: AppClock,
    refused_ip: AtomicU64,
    refused_account: AtomicU64,
}

impl std::fmt::Debug for RateLimits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimits")
            .field("tracked_ips", &self.by_ip.len())
            .field("tracked_accounts", &self.by_account.len())
            .finish_non_exhaustive()
    }
}

impl RateLimits {
    pub fn new(settings: &RateLimitSettings, clock: Arc<dyn Clock>) -> Self {
        let clock = AppClock(clock);
        Self {
            by_ip: RateLimiter::dashmap_with_clock(settings.per_ip, clock.clone()),
            by_account: RateLimiter::dashmap_with_clock(settings.per_account, clock.clone()),
            clock,
            refused_ip: AtomicU64::new(0),
            refused_account: AtomicU64::new(0),
        }
    }

    /// Takes one request from the peer's bucket, or refuses with how long to wait.
    pub fn check_ip(&self, peer: IpAddr) -> Result<(), ApiError> {
        self.by_ip.check_key(&ip_key(peer)).map_err(|not_until| {
            self.refused_ip.fetch_add(1, Ordering::Relaxed);
            refusal(not_until.wait_time_from(self.clock.now()))
        })
    }

    /// Takes one request from the account's bucket, or refuses with how long to wait.
    pub fn check_account(&self, account: &str) -> Result<(), ApiError> {
        // Owned only on this path; the key type must own its text to outlive the request.
        self.by_account
            .check_key(&account.to_owned())
            .map_err(|not_until| {
                self.refused_account.fetch_add(1, Ordering::Relaxed);
                refusal(not_until.wait_time_from(self.clock.now()))
            })
    }

    /// Forgets every bucket that is full again (indistinguishable from a new one).
    pub fn retain_recent(&self) {
        self.by_ip.retain_recent();
        self.by_ip.shrink_to_fit();
        self.by_account.retain_recent();
        self.by_account.shrink_to_fit();
    }

    /// Buckets held: (IPs, accounts).
    pub fn tracked(&self) -> (usize, usize) {
        (self.by_ip.len(), self.by_account.len())
    }

    /// Requests refused since the start: (per IP, per account).
    pub fn refused(&self) -> (u64, u64) {
        (
            self.refused_ip.load(Ordering::Relaxed),
            self.refused_account.load(Ordering::Relaxed),
        )
    }
}

/// The bucket an address draws from: an IPv4 address (also when written IPv4-mapped), or an
/// IPv6 /64.
fn ip_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(Ipv6Addr::from_bits(v6.to_bits() & !u128::from(u64::MAX))),
        },
    }
}

/// 429 with the whole seconds to wait (at least one).
fn refusal(wait: Duration) -> ApiError {
    let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    ApiError::rate_limited(seconds.max(1))
}

/// An extractor that takes one request from the peer address's bucket before anything else is
/// looked at; put it first in a handler's arguments.
#[derive(Debug, Clone, Copy)]
pub struct PerIp;

impl FromRequestParts<AppState> for PerIp {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        if let Some(client) = crate::client::client_ip_of(parts, &state.trusted_proxies) {
            state.limits.check_ip(client)?;
        }
        Ok(PerIp)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use portcullis_app::clock::ManualClock;
    use portcullis_core::time::UnixMillis;

    fn limits(per_minute: u32, burst: u32) -> (RateLimits, Arc<ManualClock>) {
        let clock = Arc::new(ManualClock::new(UnixMillis(1_767_225_600_000)));
        let settings = settle(&LimitKeys {
            ip_per_minute: per_minute,
            ip_burst: burst,
            account_per_minute: per_minute,
            account_burst: burst,
        })
        .unwrap();
        (RateLimits::new(&settings, clock.clone()), clock)
    }

    #[test]
    fn a_burst_then_one_per_period_with_the_wait_announced() {
        let (limits, clock) = limits(6, 3);
        for _ in 0..3 {
            limits.check_account("acc_1").unwrap();
        }
        let refused = limits.check_account("acc_1").unwrap_err();
        assert_eq!(refused.status.as_u16(), 429);
        assert_eq!(refused.code.as_str(), "rate_limited");
        assert_eq!(refused.retry_after, Some(10));
        // Other accounts have buckets of their own.
        limits.check_account("acc_2").unwrap();
        clock.advance(9_999);
        assert!(limits.check_account("acc_1").is_err());
        clock.advance(1);
        limits.check_account("acc_1").unwrap();
        assert!(limits.check_account("acc_1").is_err());
        assert_eq!(limits.refused(), (0, 3));
    }

    #[test]
    fn an_ipv6_slash_64_is_one_client_and_a_mapped_ipv4_is_its_ipv4() {
        let (limits, _clock) = limits(1, 1);
        limits.check_ip("2001:db8:1:2::1".parse().unwrap()).unwrap();
        assert!(
            limits
                .check_ip("2001:db8:1:2::ffff".parse().unwrap())
                .is_err()
        );
        limits.check_ip("2001:db8:1:3::1".parse().unwrap()).unwrap();
        limits.check_ip("203.0.113.9".parse().unwrap()).unwrap();
        assert!(
            limits
                .check_ip("::ffff:203.0.113.9".parse().unwrap())
                .is_err()
        );
    }

    #[test]
    fn full_buckets_are_forgotten() {
        let (limits, clock) = limits(60, 2);
        for n in 0..100u8 {
            limits.check_ip(IpAddr::from([198, 51, 100, n])).unwrap();
        }
        limits.check_account("acc_1").unwrap();
        assert_eq!(limits.tracked(), (100, 1));
        limits.retain_recent();
        assert_eq!(limits.tracked(), (100, 1), "not yet refilled");
        // Refilled after one period (1 s); governor keeps a bucket one period more.
        clock.advance(2_000);
        limits.retain_recent();
        assert_eq!(limits.tracked(), (0, 0));
    }

    #[test]
    fn limits_out_of_range_are_refused() {
        let keys = |ip_per_minute, ip_burst| LimitKeys {
            ip_per_minute,
            ip_burst,
            account_per_minute: 10,
            account_burst: 5,
        };
        assert!(settle(&keys(0, 5)).is_err());
        assert!(settle(&keys(10, 0)).is_err());
        assert!(settle(&keys(2_000_000, 5)).is_err());
        assert!(settle(&keys(10, 5)).is_ok());
    }
}
