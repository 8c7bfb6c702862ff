//! Notification settings: the configuration keys for the official channels (SMTP e-mail and
//! the exchange's webhook), validated into [`NotifySettings`], and the senders built from them.
//! The delivery loop itself is in `tasks`.

use crate::config::ConfigError;
use portcullis_app::notify::{ChannelSettings, RetryPolicy};
use portcullis_app::ports::Clock;
use portcullis_core::secret::Secret;
use portcullis_notify::smtp::SmtpSender;
use portcullis_notify::webhook::WebhookSender;
use portcullis_notify::{NotifyError, OfficialChannels};
use serde::Deserialize;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// How long one SMTP conversation or one webhook request may take.
const SEND_TIMEOUT: Duration = Duration::from_secs(15);
/// The shortest webhook secret accepted (128 bits of a random hex or base64 string).
const MIN_SECRET_BYTES: usize = 16;

/// A configuration value that must not appear in logs (a secret, a URL with a password):
/// `Debug` shows only whether it is set.
#[derive(Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Sensitive(String);

impl Sensitive {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Sensitive {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.0.is_empty() {
            f.write_str("\"\"")
        } else {
            f.write_str("\"[redacted]\"")
        }
    }
}

/// The notification keys of the configuration file, as read.
#[derive(Debug, Clone)]
pub struct NotifyKeys<'a> {
    pub exchange_name: &'a str,
    /// The service's public address (settled), for the guides link in every e-mail.
    pub public_url: &'a str,
    pub smtp_url: &'a Sensitive,
    pub smtp_from: &'a str,
    pub webhook_url: &'a str,
    pub webhook_secret: &'a Sensitive,
    pub webhook_secret_file: &'a str,
    pub notify_interval_ms: u64,
    pub notify_max_attempts: u32,
}

/// Where e-mail goes out.
#[derive(Clone)]
pub struct SmtpSettings {
    pub url: Sensitive,
    pub from: String,
}

impl std::fmt::Debug for SmtpSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpSettings")
            .field(
                "url",
                &portcullis_core::redact::redact_url_credentials(self.url.expose()),
            )
            .field("from", &self.from)
            .finish()
    }
}

/// Validated notification settings.
#[derive(Debug, Clone)]
pub struct NotifySettings {
    /// What the use cases announce on.
    pub channels: ChannelSettings,
    pub smtp: Option<SmtpSettings>,
    /// The webhook signing secret (redacted in `Debug`).
    pub webhook_secret: Option<Secret>,
    /// How often the outbox is checked for due messages.
    pub interval: Duration,
    pub retry: RetryPolicy,
}

impl NotifySettings {
    /// Whether any channel is configured (and so whether the delivery loop runs).
    pub fn enabled(&self) -> bool {
        self.smtp.is_some() || self.webhook_secret.is_some()
    }

    /// The senders for the configured channels.
    pub fn senders(&self, clock: Arc<dyn Clock>) -> Result<OfficialChannels, NotifyError> {
        let email = self
            .smtp
            .as_ref()
            .map(|smtp| SmtpSender::new(smtp.url.expose(), &smtp.from, SEND_TIMEOUT))
            .transpose()?;
        let webhook = self
            .webhook_secret
            .clone()
            .map(|secret| WebhookSender::new(secret, SEND_TIMEOUT, clock));
        Ok(OfficialChannels { email, webhook })
    }
}

fn read_secret_file(path: &Path) -> Result<String, ConfigError> {
    std::fs::read_to_string(path)
        .map(|text| text.trim_end_matches(['\r', '\n']).to_owned())
        .map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })
}

fn webhook_secret(keys: &NotifyKeys<'_>) -> Result<Secret, ConfigError> {
    let invalid = |msg: &str| ConfigError::Invalid(msg.to_owned());
    let secret = match (
        keys.webhook_secret.expose().is_empty(),
        keys.webhook_secret_file.is_empty(),
    ) {
        (false, true) => keys.webhook_secret.expose().to_owned(),
        (true, false) => read_secret_file(Path::new(keys.webhook_secret_file))?,
        (false, false) => {
            return Err(invalid(
                "set webhook_secret or webhook_secret_file, not both",
            ));
        }
        (true, true) => {
            return Err(invalid(
                "webhook_url needs webhook_secret or webhook_secret_file (the key receivers verify signatures with)",
            ));
        }
    };
    if secret.len() < MIN_SECRET_BYTES {
        return Err(invalid("the webhook secret must be at least 16 bytes"));
    }
    Ok(Secret::new(secret.into_bytes()))
}

/// Checks the notification keys.
pub fn settle(keys: &NotifyKeys<'_>) -> Result<NotifySettings, ConfigError> {
    let invalid = |msg: String| ConfigError::Invalid(msg);
    if keys.notify_interval_ms == 0 {
        return Err(invalid(
            "notify_interval_ms must be greater than zero".into(),
        ));
    }
    if !(1..=100).contains(&keys.notify_max_attempts) {
        return Err(invalid(
            "notify_max_attempts must be between 1 and 100".into(),
        ));
    }
    let smtp = if keys.smtp_url.expose().is_empty() {
        None
    } else {
        if keys.smtp_from.is_empty() {
            return Err(invalid(
                "smtp_url needs smtp_from (the address notices are sent from)".into(),
            ));
        }
        // Built once here so a bad URL or address stops the start with its reason.
        SmtpSender::new(keys.smtp_url.expose(), keys.smtp_from, SEND_TIMEOUT)
            .map_err(|e| invalid(e.to_string()))?;
        Some(SmtpSettings {
            url: keys.smtp_url.clone(),
            from: keys.smtp_from.to_owned(),
        })
    };
    let webhook_secret = if keys.webhook_url.is_empty() {
        None
    } else {
        if !(keys.webhook_url.starts_with("https://") || keys.webhook_url.starts_with("http://")) {
            return Err(invalid(format!(
                "webhook_url {:?} must be an http:// or https:// URL",
                keys.webhook_url
            )));
        }
        Some(webhook_secret(keys)?)
    };
    if (smtp.is_some() || webhook_secret.is_some()) && keys.exchange_name.trim().is_empty() {
        return Err(invalid(
            "exchange_name must be set when notifications are on (every e-mail names the exchange)"
                .into(),
        ));
    }
    Ok(NotifySettings {
        channels: ChannelSettings {
            exchange_name: keys.exchange_name.to_owned(),
            email: smtp.is_some(),
            webhook_url: webhook_secret.as_ref().map(|_| keys.webhook_url.to_owned()),
            guides_url: Some(format!("{}/guides", keys.public_url)),
        },
        smtp,
        webhook_secret,
        interval: Duration::from_millis(keys.notify_interval_ms),
        retry: RetryPolicy {
            max_attempts: i64::from(keys.notify_max_attempts),
            ..RetryPolicy::default()
        },
    })
}
