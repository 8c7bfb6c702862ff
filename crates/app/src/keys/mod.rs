//! The key authority's use cases for API keys: issue, import, change, rotate, revoke, show.
//!
//! Each use case reads in the same order: check the actor's permission, validate the input into
//! domain types, build the change (rows, audit entry, event), commit it atomically, then bring
//! the in-memory verifier up to date so the change is in force before the call returns.

use crate::ErrorCode;
use crate::access::Actor;
use crate::changes::Change;
use crate::error::{AppError, AppResult};
use crate::keyring::MasterKeyring;
use crate::loader::KeyLoader;
use crate::ports::{Clock, Pushed, Store, Write};
use crate::random;
use crate::verifier::{CachedKey, Verifier, VerifyOutcome, VerifyRequest};
use portcullis_core::allowlist::IpAllowList;
use portcullis_core::events::{Effective, EventBody, EventContext, StepUp};
use portcullis_core::guard::fund_window::{self, FundWindow, UsdCents, WindowRequest};
use portcullis_core::guard::widening::only_fund_moving;
use portcullis_core::key::{ApiKey, IdlePolicy, KeyAlgorithm, KeyStatus};
use portcullis_core::operator::Permission;
use portcullis_core::scope::ScopeSet;
use portcullis_core::secret::Secret;
use portcullis_core::time::UnixMillis;
use portcullis_core::verify::Rejection;
use serde_json::json;
use std::sync::Arc;
use terms::{parse_allowlist, parse_scopes, validate_expiry, validate_label};

mod issue;
mod shared_replay;
mod terms;
pub use terms::payload_error_code;

/// Length of generated API keys and HMAC secrets (Binance's format).
pub const GENERATED_TOKEN_LEN: usize = 64;

/// Settings of the key authority.
#[derive(Debug, Clone, Copy)]
pub struct KeyPolicy {
    pub idle: IdlePolicy,
    /// How long a rotated-out HMAC secret stays valid, unless the caller asks for less.
    pub rotation_overlap_ms: i64,
}

impl Default for KeyPolicy {
    fn default() -> Self {
        Self {
            idle: IdlePolicy::default_policy(),
            rotation_overlap_ms: 24 * 3_600_000,
        }
    }
}

/// A request to issue a key.
#[derive(Debug, Clone)]
pub struct NewKey {
    pub account: String,
    pub label: String,
    pub algorithm: KeyAlgorithm,
    /// Required for Ed25519 (hex, base64 or PEM); refused for HMAC.
    pub public_key: Option<String>,
    pub scopes: Vec<String>,
    pub ip_allowlist: Vec<String>,
    pub expires_at: Option<UnixMillis>,
    /// Grant the fund-moving scopes for a while only (and up to an amount), from when they
    /// take effect.
    pub fund_window: Option<WindowRequest>,
    pub step_up: StepUp,
    pub ctx: EventContext,
}

/// An existing exchange key brought under Portcullis (admin only).
#[derive(Debug, Clone)]
pub struct ImportedKey {
    pub account: String,
    pub label: String,
    pub api_key: String,
    pub secret: Secret,
    pub scopes: Vec<String>,
    pub ip_allowlist: Vec<String>,
    pub expires_at: Option<UnixMillis>,
}

/// A change to a key's configuration; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct KeyChange {
    pub label: Option<String>,
    pub scopes: Option<Vec<String>>,
    pub ip_allowlist: Option<Vec<String>>,
    /// `Some(None)` removes the expiry.
    pub expires_at: Option<Option<UnixMillis>>,
    /// `Some(Some(_))` boxes the key's fund-moving scopes in a window from when the change
    /// applies; `Some(None)` makes them permanent again (a widening).
    pub fund_window: Option<Option<WindowRequest>>,
    pub step_up: StepUp,
    pub ctx: EventContext,
    /// When given, the change applies only if the key is still at this version.
    pub expected_version: Option<i64>,
}

/// A key as just issued: the secret is in here once and never again.
#[derive(Debug)]
pub struct IssuedKey {
    pub key: ApiKey,
    pub secret: Option<Secret>,
}

/// A key with what is computed about it.
#[derive(Debug, Clone)]
pub struct KeyView {
    pub key: ApiKey,
    pub status: KeyStatus,
    pub idle_deadline: Option<UnixMillis>,
    /// When the view was taken: what "now" meant for `status` and the fund window.
    pub at: UnixMillis,
}

/// The API-key use cases.
#[derive(Debug, Clone)]
pub struct KeyAuthority {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    keyring: Arc<MasterKeyring>,
    verifier: Arc<Verifier>,
    policy: KeyPolicy,
    /// The replay guard every node shares, when configured ([`KeyAuthority::verify_shared`]).
    shared_replay: Option<Arc<dyn crate::ports::SharedReplayGuard>>,
    /// Where committed key changes are announced to the other processes.
    push: crate::push::Push,
    /// One idle sweep at a time in this process: two side by side (the background task's and
    /// an operator's) would both find a key unwarned and warn its owner twice.
    sweeping: Arc<tokio::sync::Mutex<()>>,
}

impl KeyAuthority {
    pub fn new(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        keyring: Arc<MasterKeyring>,
        verifier: Arc<Verifier>,
        policy: KeyPolicy,
        push: crate::push::Push,
    ) -> Self {
        Self {
            store,
            clock,
            keyring,
            verifier,
            policy,
            shared_replay: None,
            push,
            sweeping: Arc::default(),
        }
    }

    /// Held for the length of an idle sweep ([`Self::sweep_idle`]).
    pub(crate) fn sweep_lock(&self) -> &tokio::sync::Mutex<()> {
        &self.sweeping
    }

    pub fn verifier(&self) -> &Arc<Verifier> {
        &self.verifier
    }

    pub fn policy(&self) -> KeyPolicy {
        self.policy
    }

    pub(crate) fn store_ref(&self) -> &dyn Store {
        self.store.as_ref()
    }

    pub(crate) fn keyring(&self) -> &MasterKeyring {
        &self.keyring
    }

    pub(crate) fn loader(&self) -> KeyLoader<'_> {
        KeyLoader {
            store: self.store.as_ref(),
            keyring: &self.keyring,
            verifier: &self.verifier,
        }
    }

    pub(crate) async fn update_key(
        &self,
        actor: &Actor,
        key_id: &str,
        change: KeyChange,
    ) -> AppResult<ApiKey> {
        actor.require(Permission::ManageKeys)?;
        let now = self.clock.now();
        let (before, after) = self.preview_update(key_id, &change, now).await?;
        let access = actor.access_account(Permission::ManageKeys, &before.account)?;
        let details = json!({
            "before": key_details(&before),
            "after": key_details(&after),
        });
        let event = EventBody::ApiKeyUpdated {
            key_id: after.key_id.clone(),
            scopes: after.scopes,
            ip_allowlist: after.ip_allowlist.clone(),
            step_up: change.step_up,
            effective: Effective::Now,
        };
        let commit = Change::new(&access, now)
            .write(replace(&before, &after))
            .audit("api_key.updated", key_target(&after), details)
            .key_event(&access, event, change.ctx)?;
        self.store.commit(commit.into_set()).await?;
        self.install(key_id, now).await?;
        Ok(after)
    }

    /// The key as it is and as `change` would leave it, validated, without writing anything.
    pub(crate) async fn preview_update(
        &self,
        key_id: &str,
        change: &KeyChange,
        now: UnixMillis,
    ) -> AppResult<(ApiKey, ApiKey)> {
        let before = self.live_key(key_id, now).await?;
        if let Some(expected) = change.expected_version
            && expected != before.version
        {
            return Err(AppError::Conflict(format!(
                "key {key_id} is at version {}, not {expected}",
                before.version
            )));
        }
        let mut after = successor(&before, now);
        if let Some(label) = &change.label {
            after.label = validate_label(label.clone())?;
        }
        if let Some(scopes) = &change.scopes {
            after.scopes = parse_scopes(scopes)?;
        }
        if let Some(entries) = &change.ip_allowlist {
            after.ip_allowlist = parse_allowlist(entries)?;
        }
        if let Some(expiry) = change.expires_at {
            after.expires_at = validate_expiry(expiry, now)?;
        }
        if let Some(request) = change.fund_window {
            after.fund_window = open_window(&before, after.scopes, request, now)?;
        }
        after.fund_window = fund_window::fitted(after.fund_window, after.scopes);
        Ok((before, after))
    }

    pub(crate) fn preview_scopes(&self, names: &[String]) -> AppResult<ScopeSet> {
        parse_scopes(names)
    }

    pub(crate) fn preview_allowlist(&self, entries: &[String]) -> AppResult<IpAllowList> {
        parse_allowlist(entries)
    }

    /// A key that can still be changed (for changes applied later, such as a cool-down's end).
    pub(crate) async fn changeable_key(&self, key_id: &str, now: UnixMillis) -> AppResult<ApiKey> {
        self.live_key(key_id, now).await
    }

    /// Commits a change that rewrites `key_id`, then puts the key as stored in force.
    pub(crate) async fn commit_and_install(
        &self,
        change: Change,
        key_id: &str,
        now: UnixMillis,
    ) -> AppResult<()> {
        self.store.commit(change.into_set()).await?;
        self.install(key_id, now).await
    }

    /// Puts the key as stored in force here after a commit that changed it (made by this use
    /// case or another), and tells the other processes to look.
    pub(crate) async fn install(&self, key_id: &str, now: UnixMillis) -> AppResult<()> {
        self.push.committed(Pushed::Keys);
        self.loader().install(key_id, now).await
    }

    /// Revokes a key at once; revoking a revoked key changes nothing and is not an error.
    pub(crate) async fn revoke_key(
        &self,
        actor: &Actor,
        key_id: &str,
        ctx: EventContext,
    ) -> AppResult<ApiKey> {
        actor.require(Permission::ManageKeys)?;
        let now = self.clock.now();
        let before = self.existing_key(key_id).await?;
        let access = actor.access_account(Permission::ManageKeys, &before.account)?;
        if before.revoked_at.is_some() {
            return Ok(before);
        }
        let mut after = successor(&before, now);
        after.revoked_at = Some(now);
        let commit = Change::new(&access, now)
            .write(replace(&before, &after))
            .audit("api_key.revoked", key_target(&after), key_details(&after))
            .key_event(
                &access,
                EventBody::ApiKeyDeleted {
                    key_id: after.key_id.clone(),
                },
                ctx,
            )?;
        self.store.commit(commit.into_set()).await?;
        self.install(key_id, now).await?;
        Ok(after)
    }

    /// Builds the change that issues a new HMAC secret, uncommitted; the previous secret keeps
    /// working until the overlap ends.
    pub(crate) async fn rotate_change(
        &self,
        actor: &Actor,
        key_id: &str,
        overlap_ms: Option<i64>,
        now: UnixMillis,
    ) -> AppResult<(Change, IssuedKey)> {
        self.owned(actor, Permission::ManageKeys, key_id).await?;
        let before = self.live_key(key_id, now).await?;
        let access = actor.access_account(Permission::ManageKeys, &before.account)?;
        if before.algorithm != KeyAlgorithm::HmacSha256 {
            return Err(AppError::invalid(
                ErrorCode::RotationUnsupported,
                "only HMAC keys have a secret to rotate; for Ed25519, issue a key with the new public key",
            ));
        }
        let overlap = overlap_ms.unwrap_or(self.policy.rotation_overlap_ms);
        if !(0..=30 * IdlePolicy::DAY_MS).contains(&overlap) {
            return Err(AppError::invalid(
                ErrorCode::InvalidOverlap,
                "the rotation overlap must be between 0 and 30 days",
            ));
        }
        let current = self
            .store
            .secrets(key_id)
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| AppError::Internal(format!("HMAC key {key_id} has no secret")))?;
        let valid_until = now.plus_millis(overlap);
        let secret = Secret::new(random::alphanumeric(GENERATED_TOKEN_LEN)?.into_bytes());
        let sealed = self
            .keyring
            .seal(key_id, current.generation + 1, &secret, now)?;
        let after = successor(&before, now);
        let details = json!({ "generation": sealed.generation, "previous_valid_until": valid_until.to_rfc3339() });
        let commit = Change::new(&access, now)
            .write(Write::SetSecretValidUntil {
                key_id: key_id.to_owned(),
                generation: current.generation,
                valid_until,
            })
            .write(Write::InsertSecret(sealed))
            .write(replace(&before, &after))
            .audit("api_key.rotated", key_target(&after), details)
            .key_event(
                &access,
                EventBody::ApiKeyRotated {
                    key_id: key_id.to_owned(),
                    previous_valid_until: valid_until,
                },
                EventContext::default(),
            )?;
        let issued = IssuedKey {
            key: after,
            secret: Some(secret),
        };
        Ok((commit, issued))
    }

    /// Answers a gateway: may this signed request pass? Malformed freshness parameters are
    /// input errors; every other refusal is an outcome with a stable reason.
    pub fn verify_request(
        &self,
        actor: &Actor,
        request: &VerifyRequest<'_>,
    ) -> AppResult<VerifyOutcome> {
        self.verify_request_with(actor, request, |verdict| match verdict {
            Ok(cached) => VerifyOutcome::Accepted(Arc::clone(cached)),
            Err(reason) => VerifyOutcome::Rejected(reason),
        })
    }

    /// [`KeyAuthority::verify_request`], handing the verdict to `answer` while the key is
    /// borrowed (see [`crate::verifier::Verifier::verify_with`]).
    pub fn verify_request_with<R>(
        &self,
        actor: &Actor,
        request: &VerifyRequest<'_>,
        answer: impl FnOnce(Result<&Arc<CachedKey>, Rejection>) -> R,
    ) -> AppResult<R> {
        actor.require(Permission::VerifyRequests)?;
        self.verifier
            .verify_with(request, self.clock.now(), answer)
            .map_err(|error| AppError::invalid(payload_error_code(&error), error.to_string()))
    }

    pub async fn key(&self, actor: &Actor, key_id: &str) -> AppResult<KeyView> {
        actor.require(Permission::ReadKeys)?;
        let key = self.existing_key(key_id).await?;
        actor.access_account(Permission::ReadKeys, &key.account)?;
        Ok(self.view(key))
    }

    pub async fn keys_for_account(&self, actor: &Actor, account: &str) -> AppResult<Vec<KeyView>> {
        actor.access_account(Permission::ReadKeys, account)?;
        self.account_exists(account).await?;
        let keys = self.store.keys_for_account(account).await?;
        Ok(keys.into_iter().map(|key| self.view(key)).collect())
    }

    fn view(&self, mut key: ApiKey) -> KeyView {
        // Uses seen by this process but not yet written back count too.
        if let Some(cached) = self.verifier.get(&key.api_key)
            && cached.verifiable.last_used_at() > key.last_used_at
        {
            key.last_used_at = cached.verifiable.last_used_at();
            key.last_used_ip = cached.last_ip().or(key.last_used_ip);
        }
        let now = self.clock.now();
        KeyView {
            status: key.status(now, self.policy.idle),
            idle_deadline: key.idle_deadline(self.policy.idle),
            key,
            at: now,
        }
    }

    /// An account that does not exist is not found (an actor check is `Actor::require_account`).
    async fn account_exists(&self, account: &str) -> AppResult<()> {
        match self.store.account(account).await? {
            Some(_) => Ok(()),
            None => Err(AppError::NotFound(format!("account {account}"))),
        }
    }

    /// Checks that `actor` may do what `permission` covers on the key's account before
    /// anything else about the key or the request is looked at: a customer who names another
    /// account's key learns only that it is not found, not whether it is live or what a change
    /// to it would meet.
    pub(crate) async fn owned(
        &self,
        actor: &Actor,
        permission: Permission,
        key_id: &str,
    ) -> AppResult<()> {
        actor.require(permission)?;
        let key = self.existing_key(key_id).await?;
        actor.access_account(permission, &key.account).map(|_| ())
    }

    pub(crate) async fn existing_key(&self, key_id: &str) -> AppResult<ApiKey> {
        self.store
            .key(key_id)
            .await?
            .ok_or_else(|| AppError::NotFound(format!("key {key_id}")))
    }

    /// A key that can still be changed: revoked and expired keys are final.
    async fn live_key(&self, key_id: &str, now: UnixMillis) -> AppResult<ApiKey> {
        let key = self.existing_key(key_id).await?;
        let last_use = self
            .verifier
            .get(&key.api_key)
            .and_then(|c| c.verifiable.last_used_at());
        match key.status_with_last_use(now, self.policy.idle, last_use) {
            KeyStatus::Active => Ok(key),
            status => Err(AppError::Conflict(format!(
                "key {key_id} is {} and cannot be changed",
                status.as_str()
            ))),
        }
    }
}

/// The next version of a stored key, changed at `now` (the caller sets what changes).
pub(crate) fn successor(before: &ApiKey, now: UnixMillis) -> ApiKey {
    let mut after = before.clone();
    after.updated_at = now;
    after.version = before.version + 1;
    after
}

/// The write that replaces `before` with `after`, if nobody changed it in between.
pub(crate) fn replace(before: &ApiKey, after: &ApiKey) -> Write {
    Write::UpdateKey {
        key: after.clone(),
        expected_version: before.version,
    }
}

/// The window `request` gives a key that was `before` and will have `scopes`, opening at
/// `from` (`None`: no window, the fund-moving scopes are permanent).
pub(crate) fn open_window(
    before: &ApiKey,
    scopes: ScopeSet,
    request: Option<WindowRequest>,
    from: UnixMillis,
) -> AppResult<Option<FundWindow>> {
    let Some(request) = request else {
        return Ok(None);
    };
    request
        .reopen(before.fund_window.as_ref(), only_fund_moving(scopes), from)
        .map(Some)
        .map_err(|e| AppError::invalid(ErrorCode::InvalidFundWindow, e.to_string()))
}

pub(crate) fn key_target(key: &ApiKey) -> String {
    format!("key:{}", key.key_id)
}

/// What the audit trail records about a key (never a secret).
pub(crate) fn key_details(key: &ApiKey) -> serde_json::Value {
    json!({
        "account": key.account,
        "label": key.label,
        "algorithm": key.algorithm.as_str(),
        "scopes": key.scopes.names(),
        "ip_allowlist": key.ip_allowlist.entries(),
        "expires_at": key.expires_at.map(UnixMillis::to_rfc3339),
        "fund_window": key.fund_window.as_ref().map(window_details),
        "revoked_at": key.revoked_at.map(UnixMillis::to_rfc3339),
        "version": key.version,
    })
}

/// A fund window as the audit trail and the API show it.
pub fn window_details(window: &FundWindow) -> serde_json::Value {
    json!({
        "scopes": window.scopes.names(),
        "until": window.until.to_rfc3339(),
        "cap_usd": window.cap.map(UsdCents::as_usd),
        "spent_usd": window.spent.as_usd(),
    })
}
