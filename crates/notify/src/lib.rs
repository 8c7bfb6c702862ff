//! Adapters for the official channels of `portcullis-app`'s notification port: SMTP e-mail
//! ([`smtp::SmtpSender`]) and signed webhooks ([`webhook::WebhookSender`]), and
//! [`OfficialChannels`], the one [`Sender`] that routes each outbox message to its channel.
//!
//! TLS is rustls on aws-lc-rs everywhere; nothing here links OpenSSL.

pub mod smtp;
pub mod webhook;

use async_trait::async_trait;
use portcullis_app::notify::{SendError, Sender};
use portcullis_app::ports::{Channel, OutboxMessage};

/// A channel that cannot be set up as configured.
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    #[error("{0}")]
    Config(String),
}

/// Every configured channel; a message for a channel that is not configured (the
/// configuration changed after it was queued) fails transiently, so it is still sent if the
/// channel comes back before its attempts run out.
#[derive(Debug, Default)]
pub struct OfficialChannels {
    pub email: Option<smtp::SmtpSender>,
    pub webhook: Option<webhook::WebhookSender>,
}

#[async_trait]
impl Sender for OfficialChannels {
    async fn send(&self, message: &OutboxMessage) -> Result<(), SendError> {
        let sender: Option<&dyn Sender> = match message.channel {
            Channel::Email => self.email.as_ref().map(|s| s as &dyn Sender),
            Channel::Webhook => self.webhook.as_ref().map(|s| s as &dyn Sender),
        };
        match sender {
            Some(sender) => sender.send(message).await,
            None => Err(SendError::Transient(format!(
                "no {} channel is configured",
                message.channel.as_str()
            ))),
        }
    }
}
