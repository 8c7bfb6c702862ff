//! E-mail through SMTP with lettre: rustls with aws-lc-rs for TLS (no OpenSSL), a multipart
//! message with the plain-text and HTML bodies, and a Message-ID derived from the outbox id so
//! a repeated delivery is recognisably the same message.
//!
//! The server URL picks the security: `smtp://host:port` is plain SMTP (loopback relays and
//! tests), `smtp://host:port?tls=required` upgrades with STARTTLS, `smtps://host:port` is TLS
//! from the first byte; `user:password@` adds authentication (refused over plain SMTP, where the
//! password would cross the network in clear).

use crate::NotifyError;
use async_trait::async_trait;
use lettre::message::{Mailbox, MultiPart};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use portcullis_app::notify::SendError;
use portcullis_app::ports::OutboxMessage;
use portcullis_core::redact::redact_url_credentials;
use std::time::Duration;

/// SMTP replies that mean the recipient cannot ever receive the message (RFC 5321: mailbox
/// unavailable, not local, syntax of the mailbox). Other permanent-looking replies, such as a
/// refused login, are configuration problems an operator can fix, so they are retried.
const RECIPIENT_REFUSED: [u16; 3] = [550, 551, 553];

/// Sends e-mail through one SMTP server.
pub struct SmtpSender {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    /// The right-hand side of generated Message-IDs: the sender's own domain.
    domain: String,
    /// The server URL without credentials (for logs).
    server: String,
}

impl std::fmt::Debug for SmtpSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpSender")
            .field("server", &self.server)
            .field("from", &self.from.to_string())
            .finish_non_exhaustive()
    }
}

/// Plain `smtp://` with credentials and no `tls=required`: the login would cross the network
/// in clear text.
fn sends_password_in_clear(url: &str) -> bool {
    let Some(rest) = url.strip_prefix("smtp://") else {
        return false;
    };
    let (authority, query) = rest.split_once('?').unwrap_or((rest, ""));
    let authority = authority.split('/').next().unwrap_or_default();
    authority.contains('@') && !query.split('&').any(|pair| pair == "tls=required")
}

impl SmtpSender {
    /// A sender for the server at `url`, sending as `from` (`Name <address>` or an address).
    pub fn new(url: &str, from: &str, timeout: Duration) -> Result<Self, NotifyError> {
        if sends_password_in_clear(url) {
            return Err(NotifyError::Config(format!(
                "smtp_url {} would send its password unencrypted: use smtps:// or add ?tls=required",
                redact_url_credentials(url)
            )));
        }
        let from: Mailbox = from.parse().map_err(|e| {
            NotifyError::Config(format!("smtp_from {from:?} is not an address: {e}"))
        })?;
        let domain = from.email.domain().to_owned();
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
            .map_err(|e| {
                NotifyError::Config(format!(
                    "smtp_url {} is not usable: {e}",
                    redact_url_credentials(url)
                ))
            })?
            .timeout(Some(timeout))
            .build();
        Ok(Self {
            transport,
            from,
            domain,
            server: redact_url_credentials(url),
        })
    }

    fn build(&self, message: &OutboxMessage) -> Result<Message, SendError> {
        let to: Mailbox = message.recipient.parse().map_err(|e| {
            SendError::Permanent(format!(
                "recipient {:?} is not an address: {e}",
                message.recipient
            ))
        })?;
        let builder = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(message.subject.clone())
            .message_id(Some(format!("<{}@{}>", message.id, self.domain)));
        let built = match &message.body_html {
            Some(html) => builder.multipart(MultiPart::alternative_plain_html(
                message.body_text.clone(),
                html.clone(),
            )),
            None => builder.body(message.body_text.clone()),
        };
        built.map_err(|e| SendError::Permanent(format!("the message cannot be built: {e}")))
    }
}

fn classify(error: &lettre::transport::smtp::Error) -> SendError {
    let code = error.status().map(u16::from);
    match code {
        Some(code) if RECIPIENT_REFUSED.contains(&code) => {
            SendError::Permanent(format!("the SMTP server refused the recipient: {error}"))
        }
        _ => SendError::Transient(format!("SMTP: {error}")),
    }
}

#[async_trait]
impl portcullis_app::notify::Sender for SmtpSender {
    async fn send(&self, message: &OutboxMessage) -> Result<(), SendError> {
        let email = self.build(message)?;
        self.transport
            .send(email)
            .await
            .map(|_| ())
            .map_err(|e| classify(&e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use portcullis_app::ports::Channel;
    use portcullis_core::time::UnixMillis;

    fn message(recipient: &str) -> OutboxMessage {
        OutboxMessage {
            id: "ntf_0123".into(),
            account: "acc_1".into(),
            channel: Channel::Email,
            recipient: recipient.into(),
            subject: "[Exemplar] A change".into(),
            body_text: "Your anti-phishing code: Blue42".into(),
            body_html: Some("<p>Your anti-phishing code: Blue42</p>".into()),
            created_at: UnixMillis(0),
            dedupe_key: "k".into(),
        }
    }

    #[test]
    fn builds_a_multipart_message_with_a_derived_message_id() {
        let sender = SmtpSender::new(
            "smtp://127.0.0.1:2525",
            "Exemplar Security <security@exemplar.example>",
            Duration::from_secs(5),
        )
        .unwrap();
        let raw = String::from_utf8(
            sender
                .build(&message("ada@example.com"))
                .unwrap()
                .formatted(),
        )
        .unwrap();
        assert!(
            raw.contains("Message-ID: <ntf_0123@exemplar.example>"),
            "{raw}"
        );
        assert!(raw.contains("multipart/alternative"));
        assert!(raw.contains("To: ada@example.com"));
        assert!(matches!(
            sender.build(&message("not an address")),
            Err(SendError::Permanent(_))
        ));
    }

    #[test]
    fn bad_settings_are_explained_without_the_password() {
        let error = SmtpSender::new("smtp://127.0.0.1:25", "nobody", Duration::from_secs(1))
            .unwrap_err()
            .to_string();
        assert!(error.contains("smtp_from"), "{error}");
        let error = SmtpSender::new(
            "ftp://user:hunter2@mail.example",
            "a@b.example",
            Duration::from_secs(1),
        )
        .unwrap_err()
        .to_string();
        assert!(
            error.contains("smtp_url") && !error.contains("hunter2"),
            "{error}"
        );
        let sender = SmtpSender::new(
            "smtps://user:hunter2@mail.example:465",
            "a@b.example",
            Duration::from_secs(1),
        )
        .unwrap();
        assert!(!format!("{sender:?}").contains("hunter2"));
        SmtpSender::new(
            "smtp://user:hunter2@mail.example:587?tls=required",
            "a@b.example",
            Duration::from_secs(1),
        )
        .unwrap();
        let error = SmtpSender::new(
            "smtp://user:hunter2@mail.example:587",
            "a@b.example",
            Duration::from_secs(1),
        )
        .unwrap_err()
        .to_string();
        assert!(
            error.contains("unencrypted") && !error.contains("hunter2"),
            "{error}"
        );
        SmtpSender::new("smtp://127.0.0.1:25", "a@b.example", Duration::from_secs(1)).unwrap();
    }
}
