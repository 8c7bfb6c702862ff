//! Configuration: a TOML file, then `PORTCULLIS_*` environment variables on top, validated into
//! a [`Settings`] the rest of the server can trust.
//!
//! Every key is flat, so each has exactly one environment name (`database_url` is
//! `PORTCULLIS_DATABASE_URL`). Unknown keys in the file and unknown `PORTCULLIS_*` variables are
//! errors: a typo must never silently fall back to a default.

use portcullis_app::guard::GuardSettings;
use portcullis_app::keys::KeyPolicy;
use portcullis_core::key::IdlePolicy;
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

mod contacts;
mod guard;
use contacts::contact_settings;
use guard::guard_settings;

/// Environment variables with the prefix that are not configuration keys.
const NON_CONFIG_VARIABLES: &[&str] = &["PORTCULLIS_CONFIG", "PORTCULLIS_URL", "PORTCULLIS_TOKEN"];
const NON_CONFIG_PREFIXES: &[&str] = &["PORTCULLIS_TEST_", "PORTCULLIS_BENCH_"];

/// A configuration problem, with enough context to fix it.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

/// The configuration file's shape (and the defaults).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub listen: String,
    pub data_dir: PathBuf,
    pub database_url: String,
    pub keyring_file: String,
    pub max_body_bytes: usize,
    pub request_timeout_ms: u64,
    pub idle_expiry_days: u32,
    pub idle_warning_days: u32,
    pub rotation_overlap_hours: u32,
    pub refresh_interval_ms: u64,
    pub usage_flush_interval_ms: u64,
    pub idle_sweep_interval_s: u64,
    pub log_level: String,
    pub log_format: String,
    pub worker_threads: usize,
    pub risk_policy_file: String,
    pub risk_checkpoint_every_events: u64,
    pub risk_checkpoint_interval_s: u64,
    pub max_batch_bytes: usize,
    pub nats_url: String,
    pub nats_stream: String,
    pub nats_subject: String,
    pub nats_consumer: String,
    pub nats_key_subject: String,
    pub engine_partitions: u32,
    pub partition_lease_ms: u64,
    pub partition_resize_from: u32,
    pub decision_wait_ms: u64,
    pub token_cache_ms: u64,
    pub replay_guard_redis_url: String,
    pub public_url: String,
    pub exchange_name: String,
    pub cooldown_withdraw_minutes: u32,
    pub cooldown_transfer_minutes: u32,
    pub cooldown_address_minutes: u32,
    pub cooldown_allowlist_minutes: u32,
    pub cooldown_expiry_minutes: u32,
    pub cooldown_unfreeze_minutes: u32,
    pub cooldown_contact_minutes: u32,
    pub step_up_widen: String,
    pub step_up_unfreeze: String,
    pub step_up_authenticators: String,
    pub step_up_grant_seconds: u32,
    pub smtp_url: crate::notify::Sensitive,
    pub smtp_from: String,
    pub webhook_url: String,
    pub webhook_secret: crate::notify::Sensitive,
    pub webhook_secret_file: String,
    pub notify_interval_ms: u64,
    pub notify_max_attempts: u32,
    pub rate_limit_ip_per_minute: u32,
    pub rate_limit_ip_burst: u32,
    pub rate_limit_account_per_minute: u32,
    pub rate_limit_account_burst: u32,
    /// How long a widening waits for the risk engine's decision before it is held.
    pub risk_decision_timeout_ms: u64,
    /// Comma-separated addresses or CIDR networks of the reverse proxies in front of the
    /// security center, whose `X-Forwarded-For` names the client; empty: believe no header.
    pub trusted_proxies: String,
    /// Reports from accounts at which a contact is answered `known_scam`.
    pub contact_report_threshold: u32,
    /// The region (ISO 3166 alpha-2) national phone numbers are read in; empty: none.
    pub contact_default_region: String,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".into(),
            data_dir: PathBuf::from("data"),
            database_url: String::new(),
            keyring_file: String::new(),
            max_body_bytes: 64 * 1024,
            request_timeout_ms: 10_000,
            idle_expiry_days: 30,
            idle_warning_days: 7,
            rotation_overlap_hours: 24,
            refresh_interval_ms: 1_000,
            usage_flush_interval_ms: 5_000,
            idle_sweep_interval_s: 300,
            log_level: "info".into(),
            log_format: "text".into(),
            worker_threads: 0,
            risk_policy_file: String::new(),
            risk_checkpoint_every_events: 1_000_000,
            risk_checkpoint_interval_s: 60,
            max_batch_bytes: 16 * 1024 * 1024,
            nats_url: String::new(),
            nats_stream: "PORTCULLIS_EVENTS".into(),
            nats_subject: "portcullis.events.>".into(),
            nats_consumer: "portcullis-engine".into(),
            nats_key_subject: "portcullis.keys.changed".into(),
            engine_partitions: 0,
            partition_lease_ms: 5_000,
            partition_resize_from: 0,
            decision_wait_ms: 10_000,
            token_cache_ms: 5_000,
            replay_guard_redis_url: String::new(),
            public_url: String::new(),
            exchange_name: "Portcullis".into(),
            cooldown_withdraw_minutes: 24 * 60,
            cooldown_transfer_minutes: 24 * 60,
            cooldown_address_minutes: 24 * 60,
            cooldown_allowlist_minutes: 24 * 60,
            cooldown_expiry_minutes: 60,
            cooldown_unfreeze_minutes: 24 * 60,
            cooldown_contact_minutes: 24 * 60,
            step_up_widen: "passkey_else_totp".into(),
            step_up_unfreeze: "passkey".into(),
            step_up_authenticators: "passkey_else_totp".into(),
            step_up_grant_seconds: 300,
            smtp_url: crate::notify::Sensitive::default(),
            smtp_from: String::new(),
            webhook_url: String::new(),
            webhook_secret: crate::notify::Sensitive::default(),
            webhook_secret_file: String::new(),
            notify_interval_ms: 1_000,
            notify_max_attempts: 8,
            rate_limit_ip_per_minute: crate::limits::DEFAULT_IP_PER_MINUTE,
            rate_limit_ip_burst: crate::limits::DEFAULT_IP_BURST,
            rate_limit_account_per_minute: crate::limits::DEFAULT_ACCOUNT_PER_MINUTE,
            rate_limit_account_burst: crate::limits::DEFAULT_ACCOUNT_BURST,
            trusted_proxies: String::new(),
            risk_decision_timeout_ms: 5_000,
            contact_report_threshold: 3,
            contact_default_region: String::new(),
        }
    }
}

/// Validated settings.
#[derive(Debug, Clone)]
pub struct Settings {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub database_url: String,
    pub keyring_file: PathBuf,
    pub max_body_bytes: usize,
    pub request_timeout: Duration,
    pub key_policy: KeyPolicy,
    pub refresh_interval: Duration,
    pub usage_flush_interval: Duration,
    pub idle_sweep_interval: Duration,
    pub log_level: String,
    pub log_json: bool,
    /// Threads serving requests; 0 means one per core.
    pub worker_threads: usize,
    /// A risk policy file; `None` runs the default policy.
    pub risk_policy_file: Option<PathBuf>,
    /// When the risk engine checkpoints by itself (every so many applied events).
    pub risk_checkpoints: portcullis_app::risk::CheckpointPolicy,
    /// How often the engine checkpoints if it applied anything; `None`: not on a timer.
    pub risk_checkpoint_interval: Option<Duration>,
    /// Largest event batch accepted by `POST /v1/events`.
    pub max_batch_bytes: usize,
    /// The JetStream event feed, when configured.
    pub nats: Option<crate::nats::NatsSettings>,
    /// The risk engine partitioned across processes (`engine_partitions` > 0), on the NATS
    /// stream and PostgreSQL; `None`: one engine per process over the event log.
    pub partitions: Option<PartitionConfig>,
    /// The Redis of the replay guard every node shares, when configured.
    pub replay_guard_redis_url: Option<String>,
    /// How long an authenticated operator token is trusted without asking storage again.
    pub token_cache: Duration,
    /// Step-up, cool-downs and the links in announcements.
    pub guard: GuardSettings,
    /// Official-channel notifications (channels, senders, retry policy).
    pub notify: crate::notify::NotifySettings,
    /// Per-IP and per-account rate limits on the public and customer endpoints.
    pub rate_limits: crate::limits::RateLimitSettings,
    /// Reverse proxies whose `X-Forwarded-For` is believed (`client`).
    pub trusted_proxies: portcullis_core::allowlist::IpAllowList,
    /// Contact verification: the report threshold and the region of national numbers.
    pub contacts: portcullis_app::contacts::ContactSettings,
}

impl Config {
    /// Reads `path` (if given) and applies the environment `vars` on top.
    pub fn load(
        path: Option<&Path>,
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let mut table = match path {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: path.to_owned(),
                    source,
                })?;
                text.parse::<toml::Table>().map_err(|e| {
                    let what = crate::config_errors::syntax_error(&text, &e);
                    ConfigError::Invalid(format!("{}: {what}", path.display()))
                })?
            }
            None => toml::Table::new(),
        };
        for (name, value) in vars {
            let Some(key) = name.strip_prefix("PORTCULLIS_") else {
                continue;
            };
            if NON_CONFIG_VARIABLES.contains(&name.as_str())
                || NON_CONFIG_PREFIXES.iter().any(|p| name.starts_with(p))
            {
                continue;
            }
            table.insert(key.to_ascii_lowercase(), env_value(&value));
        }
        Config::deserialize(toml::Value::Table(table.clone())).map_err(|e| {
            let what = crate::config_errors::scrubbed(&e.to_string(), &table);
            ConfigError::Invalid(format!("{what} (file keys and PORTCULLIS_* variables share one list: see `portcullis config example`)"))
        })
    }

    /// Checks values and fills in derived paths.
    pub fn settle(self) -> Result<Settings, ConfigError> {
        let invalid = |msg: String| ConfigError::Invalid(msg);
        let listen = self.listen.parse().map_err(|_| {
            invalid(format!(
                "listen = {:?} is not an address like 127.0.0.1:8080",
                self.listen
            ))
        })?;
        if !(1..=60).contains(&self.idle_warning_days)
            || self.idle_warning_days >= self.idle_expiry_days
        {
            return Err(invalid(
                "idle_warning_days must be at least 1 and less than idle_expiry_days".into(),
            ));
        }
        if !(1..=365).contains(&self.idle_expiry_days) {
            return Err(invalid(
                "idle_expiry_days must be between 1 and 365 (exchanges use 14 to 90)".into(),
            ));
        }
        if self.rotation_overlap_hours > 720 {
            return Err(invalid(
                "rotation_overlap_hours must be at most 720 (30 days)".into(),
            ));
        }
        if !(1024..=16 * 1024 * 1024).contains(&self.max_body_bytes) {
            return Err(invalid(
                "max_body_bytes must be between 1 KiB and 16 MiB".into(),
            ));
        }
        if !(1024..=1024 * 1024 * 1024).contains(&self.max_batch_bytes) {
            return Err(invalid(
                "max_batch_bytes must be between 1 KiB and 1 GiB".into(),
            ));
        }
        if self.worker_threads > 1024 {
            return Err(invalid(
                "worker_threads must be at most 1024 (0 = one per core)".into(),
            ));
        }
        if !matches!(self.log_format.as_str(), "text" | "json") {
            return Err(invalid("log_format must be \"text\" or \"json\"".into()));
        }
        for (name, value) in [
            ("request_timeout_ms", self.request_timeout_ms),
            ("refresh_interval_ms", self.refresh_interval_ms),
            ("usage_flush_interval_ms", self.usage_flush_interval_ms),
            ("idle_sweep_interval_s", self.idle_sweep_interval_s),
        ] {
            if value == 0 {
                return Err(invalid(format!("{name} must be greater than zero")));
            }
        }
        let partitions = partition_config(&self)?;
        let guard = guard_settings(&self, listen)?;
        let notify = crate::notify::settle(&crate::notify::NotifyKeys {
            exchange_name: &self.exchange_name,
            public_url: &guard.public_url,
            smtp_url: &self.smtp_url,
            smtp_from: &self.smtp_from,
            webhook_url: &self.webhook_url,
            webhook_secret: &self.webhook_secret,
            webhook_secret_file: &self.webhook_secret_file,
            notify_interval_ms: self.notify_interval_ms,
            notify_max_attempts: self.notify_max_attempts,
        })?;
        let rate_limits = crate::limits::settle(&crate::limits::LimitKeys {
            ip_per_minute: self.rate_limit_ip_per_minute,
            ip_burst: self.rate_limit_ip_burst,
            account_per_minute: self.rate_limit_account_per_minute,
            account_burst: self.rate_limit_account_burst,
        })?;
        let proxies = self
            .trusted_proxies
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty());
        let trusted_proxies = portcullis_core::allowlist::IpAllowList::parse(proxies)
            .map_err(|e| invalid(format!("trusted_proxies: {e}")))?;
        let database_url = if self.database_url.is_empty() {
            format!(
                "sqlite://{}?mode=rwc",
                self.data_dir.join("portcullis.db").display()
            )
        } else {
            self.database_url
        };
        let keyring_file = if self.keyring_file.is_empty() {
            self.data_dir.join("master-keys.toml")
        } else {
            PathBuf::from(self.keyring_file)
        };
        let day_ms = IdlePolicy::DAY_MS;
        let contacts =
            contact_settings(self.contact_report_threshold, &self.contact_default_region)?;
        Ok(Settings {
            listen,
            data_dir: self.data_dir,
            database_url,
            keyring_file,
            max_body_bytes: self.max_body_bytes,
            request_timeout: Duration::from_millis(self.request_timeout_ms),
            key_policy: KeyPolicy {
                idle: IdlePolicy {
                    idle_expiry_ms: i64::from(self.idle_expiry_days) * day_ms,
                    warn_before_ms: i64::from(self.idle_warning_days) * day_ms,
                },
                rotation_overlap_ms: i64::from(self.rotation_overlap_hours) * 3_600_000,
            },
            refresh_interval: Duration::from_millis(self.refresh_interval_ms),
            usage_flush_interval: Duration::from_millis(self.usage_flush_interval_ms),
            idle_sweep_interval: Duration::from_secs(self.idle_sweep_interval_s),
            log_level: self.log_level,
            log_json: self.log_format == "json",
            worker_threads: self.worker_threads,
            risk_policy_file: (!self.risk_policy_file.is_empty())
                .then(|| PathBuf::from(self.risk_policy_file)),
            risk_checkpoints: portcullis_app::risk::CheckpointPolicy {
                every_events: self.risk_checkpoint_every_events,
                follow_log: partitions.is_none(),
            },
            risk_checkpoint_interval: (self.risk_checkpoint_interval_s > 0)
                .then(|| Duration::from_secs(self.risk_checkpoint_interval_s)),
            max_batch_bytes: self.max_batch_bytes,
            guard,
            partitions,
            nats: (!self.nats_url.is_empty()).then_some(crate::nats::NatsSettings {
                url: self.nats_url,
                stream: self.nats_stream,
                subject: self.nats_subject,
                consumer: self.nats_consumer,
                key_subject: (!self.nats_key_subject.is_empty()).then_some(self.nats_key_subject),
            }),
            token_cache: Duration::from_millis(self.token_cache_ms),
            replay_guard_redis_url: (!self.replay_guard_redis_url.is_empty())
                .then_some(self.replay_guard_redis_url),
            notify,
            rate_limits,
            trusted_proxies,
            contacts,
        })
    }
}

/// The partitioned engine's settings
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartitionConfig {
    /// `N`: an account's partition is `FNV-1a-32(account) mod N`.
    pub partitions: u32,
    /// A partition lease lapses this long after its last renewal.
    pub lease_ms: u64,
    /// A partition checkpoints after this many of its own events (`risk_checkpoint_every_events`).
    pub checkpoint_every_events: u64,
    /// How long `POST /v1/decisions` waits for the owner's stored decision.
    pub decision_wait_ms: u64,
    /// `partition_resize_from`: the operator confirms that the partitions stored were made
    /// with this count, to be rebuilt with `partitions` (docs/scaling.md).
    pub resize_from: Option<u32>,
}

/// `engine_partitions` and what it needs: the event stream on NATS (whose subjects are a
/// literal prefix and `.>`, the partitions' subjects under it) and PostgreSQL (the leases,
/// and one store every process shares).
fn partition_config(config: &Config) -> Result<Option<PartitionConfig>, ConfigError> {
    if config.engine_partitions == 0 {
        return Ok(None);
    }
    let invalid = ConfigError::Invalid;
    if config.engine_partitions > 1_024 {
        return Err(invalid(
            "engine_partitions must be at most 1024 (0 = one engine per process)".into(),
        ));
    }
    if config.nats_url.is_empty() {
        return Err(invalid(
            "engine_partitions needs nats_url: the partitions read their events from the NATS JetStream stream".into(),
        ));
    }
    let postgres = ["postgres://", "postgresql://"];
    if !postgres
        .iter()
        .any(|scheme| config.database_url.starts_with(scheme))
    {
        return Err(invalid(
            "engine_partitions needs database_url on PostgreSQL: the processes share the partition leases, the event log and the decisions".into(),
        ));
    }
    let prefix_fine = config
        .nats_subject
        .strip_suffix(".>")
        .is_some_and(|prefix| !prefix.is_empty() && !prefix.contains(['*', '>', ' ']));
    if !prefix_fine {
        return Err(invalid(
            "engine_partitions needs nats_subject as a literal prefix then `.>` (e.g. portcullis.events.>): partition p is <prefix>.p".into(),
        ));
    }
    if !(300..=600_000).contains(&config.partition_lease_ms) {
        return Err(invalid(
            "partition_lease_ms must be between 300 and 600000".into(),
        ));
    }
    if config.partition_resize_from > 1_024 {
        return Err(invalid(
            "partition_resize_from must be at most 1024 (0 = no change of engine_partitions confirmed)".into(),
        ));
    }
    if !(100..=600_000).contains(&config.decision_wait_ms) {
        return Err(invalid(
            "decision_wait_ms must be between 100 and 600000".into(),
        ));
    }
    Ok(Some(PartitionConfig {
        partitions: config.engine_partitions,
        lease_ms: config.partition_lease_ms,
        checkpoint_every_events: config.risk_checkpoint_every_events,
        decision_wait_ms: config.decision_wait_ms,
        resize_from: Some(config.partition_resize_from).filter(|&from| from > 0),
    }))
}

/// An environment value as TOML: numbers and booleans keep their type, anything else is text.
fn env_value(raw: &str) -> toml::Value {
    if let Ok(number) = raw.parse::<i64>() {
        return toml::Value::Integer(number);
    }
    match raw {
        "true" => toml::Value::Boolean(true),
        "false" => toml::Value::Boolean(false),
        _ => toml::Value::String(raw.to_owned()),
    }
}

/// The commented example printed by `portcullis config example`.
pub const EXAMPLE: &str = include_str!("../config_example.toml");

#[cfg(test)]
mod tests;
