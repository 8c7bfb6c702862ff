//! Signed webhook delivery: an HTTP(S) POST of the stored JSON body, signed at send time
//! (`Portcullis-Signature`) and labelled with the outbox id (`Portcullis-Delivery-Id`), through
//! ureq with rustls on aws-lc-rs. ureq blocks, so each request runs on tokio's blocking pool.
//!
//! Outcome: any 2xx is delivered; a 4xx other than 408 and 429 is permanent (the receiver
//! rejects this message and always will); everything else (3xx, 408, 429, 5xx, timeouts,
//! connection failures) is transient and retried.

use async_trait::async_trait;
use portcullis_app::notify::SendError;
use portcullis_app::ports::{Clock, OutboxMessage};
use portcullis_core::redact::redact_urls_in;
use portcullis_core::secret::Secret;
use portcullis_core::webhook::{DELIVERY_ID_HEADER, SIGNATURE_HEADER, sign_webhook};
use std::sync::Arc;
use std::time::Duration;

/// Posts webhook messages to their recipient URL.
#[derive(Clone)]
pub struct WebhookSender {
    agent: ureq::Agent,
    /// Redacted in `Debug` by [`Secret`].
    secret: Arc<Secret>,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for WebhookSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookSender")
            .field("secret", &self.secret)
            .finish_non_exhaustive()
    }
}

/// What a receiver's status code means for the message.
pub fn classify_status(status: u16) -> Result<(), SendError> {
    match status {
        200..=299 => Ok(()),
        408 | 429 => Err(SendError::Transient(format!(
            "the receiver answered {status}"
        ))),
        400..=499 => Err(SendError::Permanent(format!(
            "the receiver answered {status}"
        ))),
        _ => Err(SendError::Transient(format!(
            "the receiver answered {status}"
        ))),
    }
}

impl WebhookSender {
    /// A sender signing with `secret`; each request (connect to last byte) is limited to
    /// `timeout`. Redirects are not followed: a signed POST goes where it was configured to.
    pub fn new(secret: Secret, timeout: Duration, clock: Arc<dyn Clock>) -> Self {
        let tls = ureq::tls::TlsConfig::builder()
            .provider(ureq::tls::TlsProvider::Rustls)
            .unversioned_rustls_crypto_provider(Arc::new(
                rustls::crypto::aws_lc_rs::default_provider(),
            ))
            .build();
        let agent = ureq::Agent::config_builder()
            .tls_config(tls)
            .timeout_global(Some(timeout))
            .http_status_as_error(false)
            .max_redirects(0)
            .user_agent(concat!("portcullis/", env!("CARGO_PKG_VERSION")))
            .build()
            .new_agent();
        Self {
            agent,
            secret: Arc::new(secret),
            clock,
        }
    }

    fn post(&self, message: &OutboxMessage) -> Result<(), SendError> {
        let body = message.body_text.as_bytes();
        let signature = sign_webhook(&self.secret, self.clock.now(), body);
        let response = self
            .agent
            .post(&message.recipient)
            .header("Content-Type", "application/json")
            .header(SIGNATURE_HEADER, &signature)
            .header(DELIVERY_ID_HEADER, &message.id)
            .send(body)
            .map_err(|e| {
                // The HTTP client may quote the URL, which can carry a token: never into logs
                // or the outbox's last error.
                let error = redact_urls_in(&e.to_string());
                SendError::Transient(format!("webhook request failed: {error}"))
            })?;
        classify_status(response.status().as_u16())
    }
}

#[async_trait]
impl portcullis_app::notify::Sender for WebhookSender {
    async fn send(&self, message: &OutboxMessage) -> Result<(), SendError> {
        let sender = self.clone();
        let message = message.clone();
        tokio::task::spawn_blocking(move || sender.post(&message))
            .await
            .map_err(|e| SendError::Transient(format!("the webhook task failed: {e}")))?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_codes_decide_the_outcome() {
        for ok in [200, 202, 204, 299] {
            assert_eq!(classify_status(ok), Ok(()));
        }
        for permanent in [400, 401, 403, 404, 410, 422] {
            assert!(matches!(
                classify_status(permanent),
                Err(SendError::Permanent(_))
            ));
        }
        for transient in [301, 408, 429, 500, 502, 503] {
            assert!(matches!(
                classify_status(transient),
                Err(SendError::Transient(_))
            ));
        }
    }
}
