//! What every handler shares: the use cases, the token cache, the metrics handle, the abuse
//! limits and the counters of what they turned away.

use crate::limits::{RateLimitSettings, RateLimits};
use aws_lc_rs::digest;
use metrics_exporter_prometheus::PrometheusHandle;
use parking_lot::Mutex;
use portcullis_app::{Actor, AppResult, Portcullis};
use portcullis_core::allowlist::IpAllowList;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::{Duration, Instant};

/// How long an authenticated token is trusted without asking storage again, unless configured
/// (`token_cache_ms`). Revocation through this process takes effect at once; through another
/// process, when the revocation is pushed (NATS or PostgreSQL's notifications), else within
/// this time.
const TOKEN_CACHE_TTL: Duration = Duration::from_secs(5);
const TOKEN_CACHE_MAX: usize = 10_000;

/// SHA-256 of an operator token.
type TokenDigest = [u8; 32];

/// Shared handler state: one pointer, so handing it to each request is one atomic increment
/// rather than one per use case.
#[derive(Debug, Clone)]
pub struct AppState(Arc<Shared>);

/// What [`AppState`] points to.
#[derive(Debug)]
pub struct Shared {
    pub app: Portcullis,
    pub metrics: Option<PrometheusHandle>,
    /// Where the risk policy is read from on reload (`None`: the shipped default).
    pub risk_policy_file: Option<std::path::PathBuf>,
    /// Per-IP and per-account rate limits.
    pub limits: Arc<RateLimits>,
    /// Proxies whose `X-Forwarded-For` names the client (empty: believe no header).
    pub trusted_proxies: IpAllowList,
    /// Cancel links that matched no change (counted, not audited: see `routes::cancel`).
    pub forged_cancel_links: AtomicU64,
    /// Freeze links that matched nothing (counted, not audited, as cancel links are).
    pub forged_freeze_links: AtomicU64,
    /// Sign-in links that matched nothing (counted, not audited, as cancel links are).
    pub forged_sign_in_links: AtomicU64,
    /// SHA-256 of a token -> its operator, with when that was last checked against storage.
    tokens: Mutex<HashMap<TokenDigest, (Arc<Actor>, Instant)>>,
    /// How long a cached token is trusted.
    token_ttl: Duration,
}

impl std::ops::Deref for AppState {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.0
    }
}

impl AppState {
    /// With the default rate limits (the CLI's in-process requests).
    pub fn new(app: Portcullis, metrics: Option<PrometheusHandle>) -> Self {
        let limits = RateLimits::new(&RateLimitSettings::default(), app.clock.clone());
        Self::with_policy_file(app, metrics, None, Arc::new(limits))
    }

    pub fn with_policy_file(
        app: Portcullis,
        metrics: Option<PrometheusHandle>,
        risk_policy_file: Option<std::path::PathBuf>,
        limits: Arc<RateLimits>,
    ) -> Self {
        Self::configured(
            app,
            metrics,
            risk_policy_file,
            limits,
            IpAllowList::default(),
            TOKEN_CACHE_TTL,
        )
    }

    /// With every setting of the edge.
    pub fn configured(
        app: Portcullis,
        metrics: Option<PrometheusHandle>,
        risk_policy_file: Option<std::path::PathBuf>,
        limits: Arc<RateLimits>,
        trusted_proxies: IpAllowList,
        token_ttl: Duration,
    ) -> Self {
        Self(Arc::new(Shared {
            app,
            metrics,
            risk_policy_file,
            limits,
            trusted_proxies,
            forged_cancel_links: AtomicU64::new(0),
            forged_freeze_links: AtomicU64::new(0),
            forged_sign_in_links: AtomicU64::new(0),
            tokens: Mutex::new(HashMap::new()),
            token_ttl,
        }))
    }
}

impl Shared {
    /// The operator behind `token`, from the cache or from storage.
    pub async fn authenticate(&self, token: &str) -> AppResult<Arc<Actor>> {
        let mut hash = [0u8; 32];
        hash.copy_from_slice(digest::digest(&digest::SHA256, token.as_bytes()).as_ref());
        if let Some((actor, at)) = self.tokens.lock().get(&hash)
            && at.elapsed() < self.token_ttl
        {
            return Ok(actor.clone());
        }
        let actor = Arc::new(self.app.operators.authenticate(token).await?);
        let mut tokens = self.tokens.lock();
        if tokens.len() >= TOKEN_CACHE_MAX {
            let ttl = self.token_ttl;
            tokens.retain(|_, (_, at)| at.elapsed() < ttl);
        }
        if tokens.len() < TOKEN_CACHE_MAX {
            tokens.insert(hash, (actor.clone(), Instant::now()));
        }
        Ok(actor)
    }

    /// Forgets cached tokens (after an operator is revoked, here or, pushed, elsewhere).
    pub fn forget_tokens(&self) {
        self.tokens.lock().clear();
    }
}
