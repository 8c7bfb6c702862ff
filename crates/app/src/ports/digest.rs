//! The daily digest's storage: who asked for one and when each is next due, and the read of
//! an account's events over a period that the digest is made from.

use super::{StoreResult, StoredEvent};
use async_trait::async_trait;
use portcullis_core::time::UnixMillis;

/// An account's daily digest: sent at `hour_utc` every day, next at `next_at`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DigestSubscription {
    pub account: String,
    pub hour_utc: u8,
    pub next_at: UnixMillis,
    pub created_at: UnixMillis,
}

#[async_trait]
pub trait DigestStore: Send + Sync {
    async fn digest_subscription(&self, account: &str) -> StoreResult<Option<DigestSubscription>>;
    /// Subscriptions due at `now` (`next_at <= now`), earliest first, at most `limit`.
    async fn due_digests(
        &self,
        now: UnixMillis,
        limit: u32,
    ) -> StoreResult<Vec<DigestSubscription>>;
    /// The account's logged events with `from <= ts < to`, in log order, at most `limit`.
    async fn account_events_between(
        &self,
        account: &str,
        from: UnixMillis,
        to: UnixMillis,
        limit: u32,
    ) -> StoreResult<Vec<StoredEvent>>;
}
