//! Portcullis' use cases and the ports they depend on.
//!
//! [`Portcullis`] wires the use cases to one store, one clock and one keyring; the HTTP server
//! and the CLI both drive it, so every path through the product runs the same checks.

pub mod access;
pub mod accounts;
pub mod audit;
mod changes;
pub mod clock;
pub mod console;
pub mod contacts;
pub mod error;
mod error_code;
pub mod guard;
pub mod keyring;
pub mod keys;
mod loader;
pub mod maintenance;
pub mod notify;
pub mod operators;
pub mod partitions;
pub mod policy;
pub mod ports;
pub mod push;
pub mod random;
pub mod risk;
pub mod verifier;
mod webauthn;

use std::sync::Arc;

pub use access::{AccountAccess, Actor, ActorKind};
pub use error::{AppError, AppResult, ErrorCode};

/// Every use case, sharing one store, clock, keyring and verifier.
#[derive(Debug, Clone)]
pub struct Portcullis {
    pub store: Arc<dyn ports::Store>,
    pub clock: Arc<dyn ports::Clock>,
    pub keys: keys::KeyAuthority,
    pub accounts: accounts::Accounts,
    pub operators: operators::Operators,
    pub audit: audit::Audit,
    pub risk: risk::Risk,
    pub guard: guard::Guard,
    /// The official channels notices go out on ([`notify::announce`]); none until
    /// [`Portcullis::with_channels`] says otherwise.
    pub channels: notify::ChannelSettings,
    pub outbox: notify::Outbox,
    pub contacts: contacts::Contacts,
    /// The analyst console (operators on passkeys, the queue, cases).
    pub console: console::Console,
    pub policies: policy::Policies,
    /// Where committed key changes and token revocations are announced to other processes.
    pub push: push::Push,
}

impl Portcullis {
    /// Wires the use cases, loads every key into the verifier and starts the risk engine from
    /// its latest checkpoint and the event log after it.
    pub async fn start(
        store: Arc<dyn ports::Store>,
        clock: Arc<dyn ports::Clock>,
        keyring: Arc<keyring::MasterKeyring>,
        policy: keys::KeyPolicy,
        risk_policy: portcullis_engine::Policy,
        guard_settings: guard::GuardSettings,
        checkpoints: risk::CheckpointPolicy,
    ) -> AppResult<Self> {
        let audit_keys = keyring.audit_keys();
        let seed = u64::from_le_bytes(random::bytes()?);
        let verifier = Arc::new(verifier::Verifier::new(policy.idle, seed));
        let push = push::Push::default();
        let keys = keys::KeyAuthority::new(
            store.clone(),
            clock.clone(),
            keyring.clone(),
            verifier,
            policy,
            push.clone(),
        );
        keys.refresh_verifier(clock.as_ref()).await?;
        let risk = risk::Risk::start(store.clone(), risk_policy, checkpoints).await?;
        let contacts = contacts::Contacts::start(
            store.clone(),
            clock.clone(),
            risk.clone(),
            contacts::ContactSettings::default(),
        )
        .await?;
        let console = console::Console::new(
            store.clone(),
            clock.clone(),
            risk.clone(),
            &guard_settings.public_url,
            &guard_settings.exchange_name,
        );
        let guard = guard::Guard::new(
            store.clone(),
            clock.clone(),
            keys.clone(),
            keyring,
            risk.clone(),
            guard_settings,
        );
        let policies = policy::Policies::new(store.clone(), clock.clone(), risk.clone());
        Ok(Self {
            policies,
            guard,
            risk,
            accounts: accounts::Accounts::new(store.clone(), clock.clone()),
            operators: operators::Operators::new(store.clone(), clock.clone(), push.clone()),
            audit: audit::Audit::new(store.clone(), audit_keys, clock.clone()),
            outbox: notify::Outbox::new(store.clone()),
            contacts,
            console,
            keys,
            store,
            clock,
            channels: notify::ChannelSettings::default(),
            push,
        })
    }

    /// Sets how contacts are verified and reports counted, and compiles the registry again
    /// under them.
    pub async fn with_contacts(mut self, settings: contacts::ContactSettings) -> AppResult<Self> {
        self.contacts = self.contacts.with_settings(settings).await?;
        Ok(self)
    }

    /// Verifications also go through `guard`, the replay guard every node shares.
    #[must_use]
    pub fn with_shared_replay(mut self, guard: Arc<dyn ports::SharedReplayGuard>) -> Self {
        self.keys = self.keys.with_shared_replay(guard);
        self
    }

    /// Committed key changes and token revocations are announced on `bus` too, so the other
    /// processes of the deployment apply them at once (the first bus attached stays).
    #[must_use]
    pub fn with_change_bus(self, bus: Arc<dyn ports::ChangeBus>) -> Self {
        if !self.push.attach(bus) {
            tracing::warn!("a change bus is attached already; the second one is ignored");
        }
        self
    }

    /// Sets the official channels the use cases announce on.
    #[must_use]
    pub fn with_channels(mut self, channels: notify::ChannelSettings) -> Self {
        self.guard = self.guard.with_channels(channels.clone());
        self.channels = channels;
        self
    }
}
