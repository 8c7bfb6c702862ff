//! The outbox's port: notifications rendered for an official channel, queued in the same
//! commit as the change they announce ([`super::Write::EnqueueNotification`]), then claimed,
//! delivered or given up on by the delivery workers.

use super::StoreResult;
use async_trait::async_trait;
use portcullis_core::time::UnixMillis;

/// An official channel a notification goes out on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Channel {
    Email,
    Webhook,
}

impl Channel {
    pub const fn as_str(self) -> &'static str {
        match self {
            Channel::Email => "email",
            Channel::Webhook => "webhook",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "email" => Some(Channel::Email),
            "webhook" => Some(Channel::Webhook),
            _ => None,
        }
    }
}

/// A rendered notification waiting in the outbox. Immutable once queued; its delivery state
/// lives beside it ([`OutboxEntry`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxMessage {
    /// Also the `Portcullis-Delivery-Id` header and the e-mail's Message-ID, so a receiver can
    /// recognise a message it has seen.
    pub id: String,
    pub account: String,
    pub channel: Channel,
    /// An e-mail address or the webhook URL.
    pub recipient: String,
    /// The e-mail subject; the notice type for webhooks.
    pub subject: String,
    /// The plain-text e-mail body, or the webhook's JSON body exactly as signed and sent.
    pub body_text: String,
    /// The HTML e-mail body (e-mail only).
    pub body_html: Option<String>,
    pub created_at: UnixMillis,
    /// Unique: a second message with the same key is not queued.
    pub dedupe_key: String,
}

/// Where a message is in its delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OutboxStatus {
    /// Waiting for its next attempt (or being attempted under a lease).
    Pending,
    Delivered,
    /// Given up on: a permanent failure or too many attempts. Kept and listed, never retried.
    Dead,
}

impl OutboxStatus {
    pub const fn as_str(self) -> &'static str {
        match self {
            OutboxStatus::Pending => "pending",
            OutboxStatus::Delivered => "delivered",
            OutboxStatus::Dead => "dead",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "pending" => Some(OutboxStatus::Pending),
            "delivered" => Some(OutboxStatus::Delivered),
            "dead" => Some(OutboxStatus::Dead),
            _ => None,
        }
    }
}

/// A queued message with its delivery state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxEntry {
    pub message: OutboxMessage,
    pub status: OutboxStatus,
    /// Attempts started so far (a claim counts as an attempt, so a worker that crashes while
    /// sending still uses one up).
    pub attempts: i64,
    pub next_attempt_at: UnixMillis,
    /// The end of the current claim, while a worker holds it.
    pub lease_until: Option<UnixMillis>,
    pub last_error: Option<String>,
    pub delivered_at: Option<UnixMillis>,
}

/// A claim on due messages: until `until`, no other claim can take them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimRequest {
    pub now: UnixMillis,
    /// Unique per claim; outcomes are recorded only by the holder of the lease.
    pub lease_token: String,
    pub until: UnixMillis,
    pub limit: u32,
    /// A message that has used up its attempts and holds no live lease becomes dead, not due.
    pub max_attempts: i64,
}

/// Which outbox entries to list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OutboxFilter {
    pub account: Option<String>,
    pub status: Option<OutboxStatus>,
}

/// The delivery side of the outbox (messages are queued with [`Write::EnqueueNotification`]).
#[async_trait]
pub trait OutboxStore: Send + Sync {
    /// Leases up to `limit` pending messages that are due (`next_attempt_at <= now`) and not
    /// leased (or whose lease has expired), oldest due first, counting one attempt on each.
    /// Two concurrent claims never return the same message.
    async fn claim_due(&self, claim: &ClaimRequest) -> StoreResult<Vec<OutboxEntry>>;
    /// Records delivery. Idempotent; a message delivered by a worker whose lease had expired is
    /// still delivered.
    async fn mark_delivered(&self, id: &str, at: UnixMillis) -> StoreResult<()>;
    /// Records a failed attempt by the lease holder: due again at `retry_at`, or dead when
    /// `retry_at` is `None`. `Conflict` when the lease is no longer held.
    async fn mark_failed(
        &self,
        id: &str,
        lease_token: &str,
        error: &str,
        retry_at: Option<UnixMillis>,
    ) -> StoreResult<()>;
    /// Entries matching `filter`, newest first, at most `limit`.
    async fn list_outbox(&self, filter: &OutboxFilter, limit: u32)
    -> StoreResult<Vec<OutboxEntry>>;
}
