//! Guarded widening, the use cases: step-up (TOTP enrolment and single-use grants), widening
//! through a cancellable cool-down, the freeze and the settings lock, and the withdrawal-address
//! allow-list.
//!
//! Every widening reads in the same order: check the actor's permission; validate the request
//! into domain terms; refuse it if the account is frozen or locked; spend a step-up grant of
//! the required method; record the pending change (with its audit entry and the contract event
//! the risk engine decides on) in one commit; let the risk decision hold it. Narrowing is
//! applied at once through the key authority.

mod activity;
mod addresses;
mod apply_due;
mod contact;
mod digest;
mod fund_windows;
mod key_paths;
pub mod model;
mod network;
mod notices;
mod overrides;
mod passkeys;
mod pending;
mod protect;
mod sessions;
mod stepup;
mod widening;
mod withdrawal_alerts;
mod withdrawal_review;

pub use activity::{ACTIVITY_PAGE, ActivityPage, activity_words};
pub use addresses::{NewAddress, WithdrawalCheck, WithdrawalRequest};
pub use contact::AccountOutcome;
pub use notices::{describe, describe_named};
pub use overrides::{NewOverride, engine_overrides};
pub use passkeys::{PasskeyChallenge, relying_party};
pub(crate) use pending::RISK_ACTOR;
pub use protect::{AccountWidening, FreezeReport};
pub(crate) use sessions::usable_link;
pub use sessions::{IssuedLink, OpenedSession, csrf_token};
pub(crate) use stepup::totp_resealed;
pub use stepup::{IssuedGrant, TotpEnrolmentStart};
pub use widening::{GuardedKey, GuardedOutcome, KeyNarrowing, PendingReceipt};
pub use withdrawal_alerts::{ALERTS_POSITION, AlertsPass};
pub use withdrawal_review::describe_withdrawal;

use crate::error::{AppError, AppResult};
use crate::keyring::MasterKeyring;
use crate::keys::KeyAuthority;
use crate::ports::{AccountGuard, Clock, Store};
use crate::risk::Risk;
use portcullis_core::account::Account;
use portcullis_core::guard::{CooldownPolicy, StepUpPolicy};
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
    /// How long a widening waits for the risk engine's decision before it is held as
    /// `engine_unavailable` (the engine goes on deciding; an operator can release the hold).
    pub decision_timeout: std::time::Duration,
}

impl Default for GuardSettings {
    fn default() -> Self {
        Self {
            cooldowns: CooldownPolicy::default(),
            step_up: StepUpPolicy::default(),
            grant_ttl_ms: 5 * 60_000,
            public_url: "http://127.0.0.1:8080".into(),
            exchange_name: "Portcullis".into(),
            decision_timeout: std::time::Duration::from_secs(5),
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
    /// The WebAuthn relying party; `None` when `public_url` cannot host passkeys (logged).
    webauthn: Option<Arc<webauthn_rs::Webauthn>>,
    /// The official channels every change is announced on.
    channels: crate::notify::ChannelSettings,
    /// One fund-window spend at a time in this process, so concurrent checks queue rather
    /// than race for the key's version (other processes still meet the version check).
    spending: Arc<tokio::sync::Mutex<()>>,
    /// One pass at a time over what confirmations marked (`hold_marked`): a pass takes the
    /// whole queue, so a second one running beside it would find it empty and go on (to apply
    /// what is due) while the first is still holding; it waits for the first instead.
    holding: Arc<tokio::sync::Mutex<()>>,
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
        let webauthn = match passkeys::relying_party(&settings.public_url, &settings.exchange_name)
        {
            Ok(webauthn) => Some(Arc::new(webauthn)),
            Err(reason) => {
                tracing::warn!(%reason, "passkeys are disabled");
                None
            }
        };
        Self {
            store,
            clock,
            keys,
            keyring,
            risk,
            settings,
            webauthn,
            channels: crate::notify::ChannelSettings::default(),
            spending: Arc::default(),
            holding: Arc::default(),
        }
    }

    /// Announces on `channels` from now on.
    #[must_use]
    pub fn with_channels(mut self, channels: crate::notify::ChannelSettings) -> Self {
        self.channels = channels;
        self
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
}

/// SHA-256 (hex) of a bearer-style token; only hashes are stored.
pub(crate) fn token_hash(token: &str) -> String {
    crate::operators::token_hash(token)
}

pub(crate) fn refusal(code: crate::ErrorCode, error: impl std::fmt::Display) -> AppError {
    AppError::invalid(code, error.to_string())
}

/// A change the account's protections refuse: `account_protected` (frozen, locked), or
/// `not_frozen` for an unfreeze of an account that is not frozen (nothing protects it: the
/// request is at odds with the account's state, not stopped by a protection).
pub(crate) fn protection_refusal(error: portcullis_core::guard::ProtectionError) -> AppError {
    match error {
        portcullis_core::guard::ProtectionError::NotFrozen => {
            refusal(crate::ErrorCode::NotFrozen, error)
        }
        other => refusal(crate::ErrorCode::AccountProtected, other),
    }
}

impl Guard {
    /// Records a refused request in the audit trail (what was asked, the stable code and the
    /// reason), then hands the refusal back. Nothing else is written. If even the audit entry
    /// cannot be written, the refusal still stands and the failure is logged.
    pub(crate) async fn refused(
        &self,
        actor: &crate::Actor,
        account: &str,
        what: &str,
        error: AppError,
    ) -> AppError {
        if let AppError::Invalid { code, message } = &error {
            let details = serde_json::json!({ "request": what, "code": code, "reason": message });
            let change = crate::changes::Change::global(actor, self.clock.now()).audit(
                "request.refused",
                format!("account:{account}"),
                details,
            );
            if let Err(audit_error) = self.store.commit(change.into_set()).await {
                tracing::warn!(%audit_error, "could not audit a refused request");
            }
        }
        error
    }
}

/// The label of the key `change` is about, when it is one of `keys`.
pub fn key_label<'a>(
    change: &crate::ports::PendingChange,
    keys: &'a [crate::keys::KeyView],
) -> Option<&'a str> {
    let crate::ports::PendingAction::KeyChange { key_id, .. } = &change.action else {
        return None;
    };
    keys.iter()
        .find(|k| &k.key.key_id == key_id)
        .map(|k| k.key.label.as_str())
}

/// Everything the security center's overview shows, for one account.
#[derive(Debug)]
pub struct Overview {
    pub account: Account,
    pub protection: portcullis_core::guard::Protection,
    pub totp: bool,
    pub passkeys: Vec<crate::ports::StoredPasskey>,
    pub keys: Vec<crate::keys::KeyView>,
    pub changes: Vec<crate::ports::PendingChange>,
    pub addresses: Vec<crate::ports::WithdrawalAddress>,
    /// Withdrawals the risk engine held whose review is not finished: the customer may
    /// cancel them.
    pub held_withdrawals: Vec<crate::ports::HeldWithdrawal>,
    pub checkup: portcullis_core::guard::checkup::Checkup,
    /// Security activity: audit entries about the account or its keys, newest first, a page.
    pub activity: ActivityPage,
}

impl Guard {
    /// The security center's overview of `account`.
    pub async fn overview(
        &self,
        actor: &crate::Actor,
        account: &str,
        activity_page: u32,
    ) -> AppResult<Overview> {
        actor.access_account(portcullis_core::operator::Permission::ReadKeys, account)?;
        let now = self.clock.now();
        let page = activity_page.min(activity::ACTIVITY_PAGES - 1);
        let guard = self.guard_of(account).await?;
        let keys = self.keys.keys_for_account(actor, account).await?;
        let live: Vec<_> = keys
            .iter()
            .filter(|k| k.status == portcullis_core::key::KeyStatus::Active)
            .map(|k| k.key.clone())
            .collect();
        let passkeys = self.store.passkeys(account).await?;
        let changes = self.store.pending_for_account(account, 20).await?;
        let open: Vec<_> = changes
            .iter()
            .filter(|c| c.status.is_open())
            .map(|c| portcullis_core::guard::checkup::OpenWidening {
                change_id: c.id.clone(),
                what: describe_named(c, key_label(c, &keys)).join("; "),
            })
            .collect();
        let checkup = portcullis_core::guard::checkup::checkup(
            passkeys.len(),
            guard.totp_confirmed(),
            &live,
            &open,
            now,
        );
        Ok(Overview {
            account: self.account(account).await?,
            protection: guard.protection.clone(),
            totp: guard.totp_confirmed(),
            passkeys,
            keys,
            changes,
            addresses: self.store.addresses(account).await?,
            held_withdrawals: self.store.held_withdrawals(Some(account), 20).await?,
            activity: ActivityPage::cut(
                self.store
                    .audit_for_account(account, (page + 1) * ACTIVITY_PAGE + 1)
                    .await?,
                page,
            ),
            checkup,
        })
    }
}
