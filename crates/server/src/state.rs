//! What every handler shares: the use cases, the token cache and the metrics handle.

use metrics_exporter_prometheus::PrometheusHandle;
use parking_lot::Mutex;
use portcullis_app::operators::token_hash;
use portcullis_app::{Actor, AppResult, Portcullis};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long an authenticated token is trusted without asking storage again. Revocation through
/// this process takes effect at once; through another process, within this time.
const TOKEN_CACHE_TTL: Duration = Duration::from_secs(5);
const TOKEN_CACHE_MAX: usize = 10_000;

/// Shared handler state.
#[derive(Debug, Clone)]
pub struct AppState {
    pub app: Portcullis,
    pub metrics: Option<PrometheusHandle>,
    tokens: Arc<Mutex<HashMap<String, (Actor, Instant)>>>,
}

impl AppState {
    pub fn new(app: Portcullis, metrics: Option<PrometheusHandle>) -> Self {
        Self {
            app,
            metrics,
            tokens: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// The operator behind `token`, from the cache or from storage.
    pub async fn authenticate(&self, token: &str) -> AppResult<Actor> {
        let hash = token_hash(token);
        if let Some((actor, at)) = self.tokens.lock().get(&hash)
            && at.elapsed() < TOKEN_CACHE_TTL
        {
            return Ok(actor.clone());
        }
        let actor = self.app.operators.authenticate(token).await?;
        let mut tokens = self.tokens.lock();
        if tokens.len() >= TOKEN_CACHE_MAX {
            tokens.retain(|_, (_, at)| at.elapsed() < TOKEN_CACHE_TTL);
        }
        if tokens.len() < TOKEN_CACHE_MAX {
            tokens.insert(hash, (actor.clone(), Instant::now()));
        }
        Ok(actor)
    }

    /// Forgets cached tokens (after an operator is revoked).
    pub fn forget_tokens(&self) {
        self.tokens.lock().clear();
    }
}
