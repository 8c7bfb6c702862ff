//! Official-channel notifications: turning a [`Notice`] into outbox writes that a use case
//! commits together with the change it announces, and delivering queued messages.
//!
//! Queueing inside the change's own transaction means nothing is announced that did not happen
//! and nothing happens unannounced. Delivery is at least once: a message is leased while it is
//! sent, a lease left behind by a crashed worker expires and the message is sent again, and the
//! receiver recognises repeats by the message id (`Portcullis-Delivery-Id`, Message-ID).

use crate::error::{AppError, AppResult};
use crate::ports::{
    Channel, ClaimRequest, Clock, OutboxEntry, OutboxFilter, OutboxMessage, Store, StoreError,
    Write,
};
use async_trait::async_trait;
use portcullis_core::account::Account;
use portcullis_core::notice::{Letterhead, Notice, render_email, render_webhook};
use portcullis_core::time::UnixMillis;
use std::sync::Arc;

/// Which official channels exist and how messages are addressed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChannelSettings {
    /// Named in every e-mail ("if an e-mail claiming to be from <exchange> lacks it ...").
    pub exchange_name: String,
    /// Whether e-mail can be sent (an SMTP server is configured).
    pub email: bool,
    /// The exchange's webhook endpoint, when configured.
    pub webhook_url: Option<String>,
    /// Where every e-mail sends the reader to learn how the scam works (`<public_url>/guides`).
    pub guides_url: Option<String>,
}

/// The outbox id for a dedupe key: derived, so a message keeps one id wherever it is built
/// (and queueing it twice is recognisably the same message).
fn message_id(dedupe_key: &str) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, dedupe_key.as_bytes());
    let hex = hex::encode(digest.as_ref());
    format!("ntf_{}", hex.get(..32).unwrap_or(&hex))
}

/// One outbox write per configured channel for `notice` about `account`: e-mail to the
/// account's official address (if it has one and e-mail is configured), and the exchange's
/// webhook (if configured). Append the writes to the change being committed.
/// `notice.account` should be `account.id`: the messages are filed under `account.id`, the
/// webhook body names `notice.account`.
pub fn announce(
    account: &Account,
    notice: &Notice,
    channels: &ChannelSettings,
    now: UnixMillis,
) -> Vec<Write> {
    let mut writes = Vec::new();
    if channels.email
        && let Some(email) = &account.email
    {
        writes.push(email_write(account, email, notice, channels, now, "email"));
    }
    if let Some(url) = &channels.webhook_url {
        let dedupe_key = format!("{}:{}:webhook", account.id, notice.key);
        let id = message_id(&dedupe_key);
        writes.push(Write::EnqueueNotification(OutboxMessage {
            body_text: render_webhook(notice, &id),
            id,
            account: account.id.clone(),
            channel: Channel::Webhook,
            recipient: url.clone(),
            subject: notice.kind.type_name().to_owned(),
            body_html: None,
            created_at: now,
            dedupe_key,
        }));
    }
    writes
}

/// The e-mail telling the address an account had before a change of contact (`former`) about
/// it, under the anti-phishing code it had then, so its owner recognises it as genuine; `None`
/// when there was no address, it stays the same (then [`announce`] reaches it) or e-mail is
/// not configured. The webhook is told once, by [`announce`].
pub fn announce_to_former_address(
    former: &Account,
    current: &Account,
    notice: &Notice,
    channels: &ChannelSettings,
    now: UnixMillis,
) -> Option<Write> {
    let email = former.email.as_ref()?;
    if !channels.email || current.email.as_ref() == Some(email) {
        return None;
    }
    Some(email_write(
        former,
        email,
        notice,
        channels,
        now,
        "email:former",
    ))
}

/// One e-mail to `recipient`, rendered with `account`'s anti-phishing code; `tag` keeps the
/// dedupe keys of different recipients of one notice apart.
fn email_write(
    account: &Account,
    recipient: &str,
    notice: &Notice,
    channels: &ChannelSettings,
    now: UnixMillis,
    tag: &str,
) -> Write {
    let dedupe_key = format!("{}:{}:{tag}", account.id, notice.key);
    let from = Letterhead {
        exchange: &channels.exchange_name,
        guides_url: channels.guides_url.as_deref(),
    };
    let mail = render_email(notice, from, account.anti_phishing_code.as_deref());
    Write::EnqueueNotification(OutboxMessage {
        id: message_id(&dedupe_key),
        account: account.id.clone(),
        channel: Channel::Email,
        recipient: recipient.to_owned(),
        subject: mail.subject,
        body_text: mail.text,
        body_html: Some(mail.html),
        created_at: now,
        dedupe_key,
    })
}

/// Why a send failed, and so whether trying again can help.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// The receiver refused the message for good (a bad address, a 4xx answer).
    #[error("permanent: {0}")]
    Permanent(String),
    /// Worth retrying (a timeout, a 5xx answer, a server not reachable).
    #[error("transient: {0}")]
    Transient(String),
}

/// Sends one message on its channel (adapters in `portcullis-notify`).
#[async_trait]
pub trait Sender: Send + Sync + std::fmt::Debug {
    async fn send(&self, message: &OutboxMessage) -> Result<(), SendError>;
}

/// How often and how long delivery is retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts before a message is dead (at least 1).
    pub max_attempts: i64,
    /// The wait after the first failure; each later failure doubles it ...
    pub base_delay_ms: i64,
    /// ... up to this.
    pub max_delay_ms: i64,
    /// How long a claimed batch is reserved for its worker; must exceed the time to send a
    /// whole batch, or another worker may send the same message meanwhile.
    pub lease_ms: i64,
    /// Messages claimed at once.
    pub batch: u32,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 8,
            base_delay_ms: 30_000,
            max_delay_ms: 3_600_000,
            lease_ms: 300_000,
            batch: 10,
        }
    }
}

impl RetryPolicy {
    /// When to try again after attempt number `attempt` (1-based) failed at `now`, or `None`
    /// when that was the last attempt. Deterministic: no jitter, so tests and operators can
    /// predict it exactly.
    pub fn retry_at(&self, attempt: i64, now: UnixMillis) -> Option<UnixMillis> {
        if attempt >= self.max_attempts {
            return None;
        }
        let doublings = u32::try_from(attempt.saturating_sub(1).clamp(0, 62)).unwrap_or(62);
        let delay = self
            .base_delay_ms
            .saturating_mul(2_i64.saturating_pow(doublings))
            .min(self.max_delay_ms);
        Some(now.plus_millis(delay))
    }
}

/// What one delivery round did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeliveryReport {
    pub delivered: u64,
    /// Failed and scheduled again.
    pub failed: u64,
    /// Failed for the last time (or permanently).
    pub dead: u64,
    /// Outcomes not recorded because the lease had passed to another worker.
    pub lost_leases: u64,
}

/// The delivery use case: claims due messages, sends each, records the outcome.
#[derive(Debug, Clone)]
pub struct Delivery {
    store: Arc<dyn Store>,
    sender: Arc<dyn Sender>,
    clock: Arc<dyn Clock>,
    policy: RetryPolicy,
}

impl Delivery {
    pub fn new(
        store: Arc<dyn Store>,
        sender: Arc<dyn Sender>,
        clock: Arc<dyn Clock>,
        policy: RetryPolicy,
    ) -> Self {
        Self {
            store,
            sender,
            clock,
            policy,
        }
    }

    /// One round: one claimed batch, sent one message after another.
    pub async fn deliver_due(&self) -> AppResult<DeliveryReport> {
        let now = self.clock.now();
        let claim = ClaimRequest {
            now,
            lease_token: crate::random::identifier("lease")?,
            until: now.plus_millis(self.policy.lease_ms),
            limit: self.policy.batch,
            max_attempts: self.policy.max_attempts,
        };
        let claimed = self.store.claim_due(&claim).await?;
        let mut report = DeliveryReport::default();
        for entry in claimed {
            self.deliver_one(&entry, &claim.lease_token, &mut report)
                .await?;
        }
        Ok(report)
    }

    /// Rounds until nothing is due (a full batch suggests more is waiting).
    pub async fn deliver_all_due(&self) -> AppResult<DeliveryReport> {
        let mut total = DeliveryReport::default();
        loop {
            let round = self.deliver_due().await?;
            total.delivered += round.delivered;
            total.failed += round.failed;
            total.dead += round.dead;
            total.lost_leases += round.lost_leases;
            let handled = round.delivered + round.failed + round.dead + round.lost_leases;
            if handled < u64::from(self.policy.batch) {
                return Ok(total);
            }
        }
    }

    async fn deliver_one(
        &self,
        entry: &OutboxEntry,
        lease_token: &str,
        report: &mut DeliveryReport,
    ) -> AppResult<()> {
        let message = &entry.message;
        let outcome = self.sender.send(message).await;
        let now = self.clock.now();
        let (error, retry_at) = match outcome {
            Ok(()) => {
                self.store.mark_delivered(&message.id, now).await?;
                report.delivered += 1;
                return Ok(());
            }
            Err(SendError::Permanent(error)) => (error, None),
            Err(SendError::Transient(error)) => (error, self.policy.retry_at(entry.attempts, now)),
        };
        tracing::warn!(id = %message.id, channel = message.channel.as_str(), attempt = entry.attempts, %error, dead = retry_at.is_none(), "notification not delivered");
        match self
            .store
            .mark_failed(&message.id, lease_token, &error, retry_at)
            .await
        {
            Ok(()) if retry_at.is_some() => report.failed += 1,
            Ok(()) => report.dead += 1,
            Err(StoreError::Conflict(_)) => report.lost_leases += 1,
            Err(other) => return Err(AppError::from(other)),
        }
        Ok(())
    }
}

/// Reading the outbox: what was sent to whom, what is waiting, what was given up on.
#[derive(Debug, Clone)]
pub struct Outbox {
    store: Arc<dyn Store>,
}

impl Outbox {
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self { store }
    }

    /// Entries matching `filter`, newest first; readers of the audit trail may see them.
    pub async fn list(
        &self,
        actor: &crate::access::Actor,
        filter: &OutboxFilter,
        limit: u32,
    ) -> AppResult<Vec<OutboxEntry>> {
        actor.require_operator(portcullis_core::operator::Permission::ReadAudit)?;
        Ok(self
            .store
            .list_outbox(filter, limit.clamp(1, 1_000))
            .await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn account() -> Account {
        Account {
            id: "acc_81".into(),
            display_name: "Ada".into(),
            email: Some("ada@example.com".into()),
            phone: None,
            anti_phishing_code: Some("Blue42".into()),
            created_at: UnixMillis(0),
            updated_at: UnixMillis(0),
            version: 1,
        }
    }

    fn notice() -> Notice {
        Notice {
            kind: portcullis_core::notice::NoticeKind::WideningPending,
            key: "chg_1".into(),
            account: "acc_81".into(),
            occurred_at: UnixMillis(1_000),
            summary: "API key 'grid bot': add withdraw".into(),
            details: vec![],
            takes_effect_at: Some(UnixMillis(90_000)),
            cancel_url: Some("https://ex.example/c/1".into()),
            freeze_url: None,
        }
    }

    fn messages(writes: Vec<Write>) -> Vec<OutboxMessage> {
        writes
            .into_iter()
            .map(|w| match w {
                Write::EnqueueNotification(m) => m,
                other => panic!("unexpected {other:?}"),
            })
            .collect()
    }

    #[test]
    fn one_message_per_configured_channel() {
        let both = ChannelSettings {
            exchange_name: "Exemplar".into(),
            email: true,
            webhook_url: Some("https://hooks.example/p".into()),
            guides_url: Some("https://ex.example/guides".into()),
        };
        let sent = messages(announce(&account(), &notice(), &both, UnixMillis(5)));
        assert_eq!(sent.len(), 2);
        assert_eq!(sent[0].channel, Channel::Email);
        assert_eq!(sent[0].recipient, "ada@example.com");
        assert!(sent[0].body_text.contains("Blue42"));
        assert!(sent[0].body_html.as_deref().unwrap().contains("Blue42"));
        assert_eq!(sent[1].channel, Channel::Webhook);
        assert_eq!(sent[1].recipient, "https://hooks.example/p");
        let body: serde_json::Value = serde_json::from_str(&sent[1].body_text).unwrap();
        assert_eq!(body["id"], sent[1].id.as_str());
        assert_ne!(sent[0].id, sent[1].id);
        assert_ne!(sent[0].dedupe_key, sent[1].dedupe_key);
        // The same notice announced again yields the same messages (deduplicated in the store).
        assert_eq!(
            sent,
            messages(announce(&account(), &notice(), &both, UnixMillis(5)))
        );

        let no_mail = Account {
            email: None,
            ..account()
        };
        assert_eq!(
            messages(announce(&no_mail, &notice(), &both, UnixMillis(5))).len(),
            1
        );
        let none = ChannelSettings {
            exchange_name: "Exemplar".into(),
            email: false,
            webhook_url: None,
            guides_url: None,
        };
        assert!(announce(&account(), &notice(), &none, UnixMillis(5)).is_empty());
    }

    #[test]
    fn backoff_doubles_up_to_the_cap_then_gives_up() {
        let policy = RetryPolicy {
            max_attempts: 6,
            base_delay_ms: 1_000,
            max_delay_ms: 5_000,
            ..RetryPolicy::default()
        };
        let now = UnixMillis(10_000);
        let waits: Vec<_> = (1..=6)
            .map(|attempt| policy.retry_at(attempt, now).map(|t| t.millis_since(now)))
            .collect();
        assert_eq!(
            waits,
            vec![
                Some(1_000),
                Some(2_000),
                Some(4_000),
                Some(5_000),
                Some(5_000),
                None
            ]
        );
        let huge = RetryPolicy {
            max_attempts: i64::MAX,
            ..policy
        };
        assert_eq!(
            huge.retry_at(200, now).map(|t| t.millis_since(now)),
            Some(5_000)
        );
    }
}
