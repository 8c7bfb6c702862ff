//! The guard's part of the configuration: cool-downs, step-up requirements, the public URL the
//! links point at, and how long a widening waits for the risk engine's decision.

use super::{Config, ConfigError};
use portcullis_app::guard::GuardSettings;
use portcullis_core::guard::stepup::Requirement;
use portcullis_core::guard::{CooldownPolicy, StepUpPolicy};
use std::net::SocketAddr;

/// The guard's settings: cool-downs at most 30 days (a longer one is a typo, and would hold a
/// customer's own change for a month), step-up requirements by name, the public URL.
pub(super) fn guard_settings(
    config: &Config,
    listen: SocketAddr,
) -> Result<GuardSettings, ConfigError> {
    let minutes = |name: &str, value: u32| {
        if value > 30 * 24 * 60 {
            Err(ConfigError::Invalid(format!(
                "{name} must be at most 43200 (30 days)"
            )))
        } else {
            Ok(i64::from(value) * 60_000)
        }
    };
    let requirement = |name: &str, value: &str| match value {
        "passkey_else_totp" => Ok(Requirement::PasskeyElseTotp),
        "passkey" => Ok(Requirement::Passkey),
        _ => Err(ConfigError::Invalid(format!(
            "{name} must be \"passkey_else_totp\" or \"passkey\" (e-mail and SMS codes never suffice)"
        ))),
    };
    if !(30..=3600).contains(&config.step_up_grant_seconds) {
        return Err(ConfigError::Invalid(
            "step_up_grant_seconds must be between 30 and 3600".into(),
        ));
    }
    let public_url = if config.public_url.is_empty() {
        // A loopback service is reached as `localhost`: browsers accept it as a WebAuthn relying
        // party (an IP address they refuse), so passkeys work out of the box locally.
        if listen.ip().is_loopback() {
            format!("http://localhost:{}", listen.port())
        } else {
            format!("http://{listen}")
        }
    } else if config.public_url.starts_with("https://") || config.public_url.starts_with("http://")
    {
        config.public_url.trim_end_matches('/').to_owned()
    } else {
        return Err(ConfigError::Invalid(
            "public_url must start with https:// (or http:// for local use)".into(),
        ));
    };
    if config.exchange_name.trim().is_empty() || config.exchange_name.chars().count() > 60 {
        return Err(ConfigError::Invalid(
            "exchange_name must be 1 to 60 characters".into(),
        ));
    }
    Ok(GuardSettings {
        cooldowns: CooldownPolicy {
            withdraw_ms: minutes(
                "cooldown_withdraw_minutes",
                config.cooldown_withdraw_minutes,
            )?,
            transfer_ms: minutes(
                "cooldown_transfer_minutes",
                config.cooldown_transfer_minutes,
            )?,
            address_ms: minutes("cooldown_address_minutes", config.cooldown_address_minutes)?,
            allowlist_ms: minutes(
                "cooldown_allowlist_minutes",
                config.cooldown_allowlist_minutes,
            )?,
            expiry_ms: minutes("cooldown_expiry_minutes", config.cooldown_expiry_minutes)?,
            protection_off_ms: minutes(
                "cooldown_unfreeze_minutes",
                config.cooldown_unfreeze_minutes,
            )?,
            contact_ms: minutes("cooldown_contact_minutes", config.cooldown_contact_minutes)?,
        },
        step_up: StepUpPolicy {
            widen: requirement("step_up_widen", &config.step_up_widen)?,
            unfreeze: requirement("step_up_unfreeze", &config.step_up_unfreeze)?,
            manage_authenticators: requirement(
                "step_up_authenticators",
                &config.step_up_authenticators,
            )?,
        },
        grant_ttl_ms: i64::from(config.step_up_grant_seconds) * 1000,
        public_url,
        exchange_name: config.exchange_name.trim().to_owned(),
        decision_timeout: decision_timeout(config.risk_decision_timeout_ms)?,
    })
}

fn decision_timeout(ms: u64) -> Result<std::time::Duration, ConfigError> {
    if !(1..=60_000).contains(&ms) {
        return Err(ConfigError::Invalid(
            "risk_decision_timeout_ms must be between 1 and 60000".into(),
        ));
    }
    Ok(std::time::Duration::from_millis(ms))
}
