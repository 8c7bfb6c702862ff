//! Guarded widening, the use cases: step-up (TOTP enrolment and single-use grants), widening
//! through a cancellable cool-down, the freeze and the settings lock, and the withdrawal-address
//! allow-list.
//!
//! Every widening reads in the same order: check the actor's permission; validate the request
//! into domain terms; refuse it if the account is frozen or locked; spend a step-up grant of
//! the required method; record the pending change (with its audit entry and the contract event
//! the risk engine decides on) in one commit; let the risk decision hold it. Narrowing is
//! applied at once through the key authority.

mod addresses;
pub mod model;
mod pending;
mod protect;
mod stepup;
mod widening;

pub use addresses::{NewAddress, WithdrawalCheck};
pub use protect::FreezeReport;
pub use stepup::{IssuedGrant, TotpEnrolmentStart};
pub use widening::{GuardedKey, GuardedOutcome, PendingReceipt};

use crate::error::{AppError, AppResult};
use crate::keyring::MasterKeyring;
use crate::keys::KeyAuthority;
use crate::ports::{AccountGuard, Clock, Store};
use crate::risk::Risk;
use portcullis_core::account::Account;
use portcullis_core::guard::{CooldownPolicy, Enrolment, StepUpPolicy};
use std::sync::Arc;

/// The guard's settings.
#[derive(Debug, Clone)]
pub struct GuardSettings {
    pub cooldowns: CooldownPolicy,
    pub step_up: StepUpPolicy,
    /// How long a step-up grant stays spendable.
    pub grant_ttl_ms: i64,
    /// Where customers reach this service (for cancel links), without a trailing slash.
    pub public_url: String,
    /// The exchange's name, shown in authenticator apps and warnings.
    pub exchange_name: String,
}

impl Default for GuardSettings {
    fn default() -> Self {
        Self {
            cooldowns: CooldownPolicy::default(),
            step_up: StepUpPolicy::default(),
            grant_ttl_ms: 5 * 60_000,
            public_url: "http://127.0.0.1:8080".into(),
            exchange_name: "Portcullis".into(),
        }
    }
}

/// The guarded-widening use cases.
#[derive(Debug, Clone)]
pub struct Guard {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    keys: KeyAuthority,
    keyring: Arc<MasterKeyring>,
    risk: Risk,
    settings: GuardSettings,
}

impl Guard {
    pub fn new(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        keys: KeyAuthority,
        keyring: Arc<MasterKeyring>,
        risk: Risk,
        settings: GuardSettings,
    ) -> Self {
        Self {
            store,
            clock,
            keys,
            keyring,
            risk,
            settings,
        }
    }

    pub fn settings(&self) -> &GuardSettings {
        &self.settings
    }

    async fn account(&self, id: &str) -> AppResult<Account> {
        self.store
            .account(id)
            .await?
            .ok_or_else(|| AppError::NotFound(format!("account {id}")))
    }

    /// The account's guard state, or an empty one (version 0) for an account that has none.
    async fn guard_of(&self, account: &str) -> AppResult<AccountGuard> {
        self.account(account).await?;
        Ok(self
            .store
            .guard(account)
            .await?
            .unwrap_or_else(|| AccountGuard::empty(account)))
    }

    /// What the account has enrolled, as the step-up policy sees it. Passkeys arrive with
    /// WebAuthn; until then only TOTP counts.
    fn enrolment(guard: &AccountGuard) -> Enrolment {
        Enrolment {
            passkeys: 0,
            totp: guard.totp_confirmed(),
        }
    }
}

/// SHA-256 (hex) of a bearer-style token; only hashes are stored.
pub(crate) fn token_hash(token: &str) -> String {
    crate::operators::token_hash(token)
}

pub(crate) fn refusal(code: &'static str, error: impl std::fmt::Display) -> AppError {
    AppError::invalid(code, error.to_string())
}
