//! The shared replay guard on Redis: `SET key 1 NX PX ttl` answers whether a signature is new
//! to every node at once. One multiplexed connection, opened on first use and again after a
//! failure; every call is bounded in time, and a guard that does not answer is an error, which
//! the verification turns into a refusal (fail closed).

use async_trait::async_trait;
use portcullis_app::ports::SharedReplayGuard;
use portcullis_core::redact::{redact_url_credentials, redact_urls_in};
use redis::aio::MultiplexedConnection;
use std::time::Duration;
use tokio::sync::Mutex;

/// The longest a verification waits for Redis before it refuses.
const TIMEOUT: Duration = Duration::from_millis(250);

/// See the module documentation.
pub struct RedisReplayGuard {
    client: redis::Client,
    /// For messages: the URL without its credentials.
    shown_url: String,
    connection: Mutex<Option<MultiplexedConnection>>,
}

impl std::fmt::Debug for RedisReplayGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisReplayGuard")
            .field("url", &self.shown_url)
            .finish_non_exhaustive()
    }
}

impl RedisReplayGuard {
    /// Reads the URL; connects on first use (a Redis that is down at start refuses requests
    /// until it is back, instead of stopping the service).
    pub fn new(url: &str) -> Result<Self, String> {
        let shown_url = redact_url_credentials(url);
        let client = redis::Client::open(url).map_err(|e| {
            format!(
                "replay_guard_redis_url {shown_url}: {}",
                redact_urls_in(&e.to_string())
            )
        })?;
        Ok(Self {
            client,
            shown_url,
            connection: Mutex::new(None),
        })
    }

    async fn set_nx(&self, key: &str, ttl_ms: u64) -> Result<bool, String> {
        let mut slot = self.connection.lock().await;
        let mut connection = match slot.as_ref() {
            Some(connection) => connection.clone(),
            None => {
                let fresh = self
                    .client
                    .get_multiplexed_async_connection()
                    .await
                    .map_err(|e| e.to_string())?;
                *slot = Some(fresh.clone());
                fresh
            }
        };
        drop(slot);
        let reply: Option<String> = redis::cmd("SET")
            .arg(key)
            .arg(1)
            .arg("NX")
            .arg("PX")
            .arg(ttl_ms.max(1))
            .query_async(&mut connection)
            .await
            .map_err(|e| e.to_string())?;
        Ok(reply.is_some())
    }
}

#[async_trait]
impl SharedReplayGuard for RedisReplayGuard {
    async fn first_use(&self, key: &str, ttl_ms: u64) -> Result<bool, String> {
        let answer = match tokio::time::timeout(TIMEOUT, self.set_nx(key, ttl_ms)).await {
            Ok(answer) => answer,
            Err(_) => Err(format!("no answer within {} ms", TIMEOUT.as_millis())),
        };
        if answer.is_err() {
            // Open a new connection next time.
            *self.connection.lock().await = None;
        }
        answer.map_err(|e| format!("Redis at {}: {}", self.shown_url, redact_urls_in(&e)))
    }
}
