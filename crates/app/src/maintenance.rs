//! Work the service does on its own schedule: following other processes' key changes, writing
//! uses back, warning about and expiring idle unrestricted keys, and re-wrapping secrets under
//! a new master key.

use crate::access::Actor;
use crate::changes::Change;
use crate::error::AppResult;
use crate::keys::{KeyAuthority, key_details, key_target, replace, successor};
use crate::ports::{ChangeSet, Clock, StoreError, Write};
use portcullis_core::events::{EventBody, EventContext};
use portcullis_core::key::KeyStatus;
use portcullis_core::operator::Permission;
use serde_json::json;

/// What an idle sweep did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SweepReport {
    pub warned: Vec<String>,
    pub expired: Vec<String>,
}

/// What a re-wrap did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RewrapReport {
    pub resealed: usize,
    /// Values kept sealed at rest (TOTP secrets, anti-phishing codes, notice bodies) sealed again, or sealed
    /// for the first time when they were written in plain text before sealing existed.
    pub resealed_at_rest: u64,
    pub active_master_key: String,
}

/// Re-wraps are done in pages of this many secrets (one transaction each).
const REWRAP_PAGE: u32 = 200;

impl KeyAuthority {
    /// Installs changes committed by other processes; see [`crate::loader`].
    pub async fn refresh_verifier(&self, clock: &dyn Clock) -> AppResult<usize> {
        self.loader().refresh(clock.now()).await
    }

    pub async fn flush_usage(&self) -> AppResult<usize> {
        self.loader().flush_usage().await
    }

    /// Warns the owners of unrestricted trading keys that are about to idle-expire, and turns
    /// idle-expired keys into expired ones (an explicit, audited expiry).
    pub async fn sweep_idle(&self, clock: &dyn Clock) -> AppResult<SweepReport> {
        let _one_sweep = self.sweep_lock().lock().await;
        let now = clock.now();
        let policy = self.policy().idle;
        let actor = Actor::system();
        let mut report = SweepReport::default();
        for cached in self.verifier().snapshot() {
            let mut key = cached.key().clone();
            key.last_used_at = key.last_used_at.max(cached.verifiable.last_used_at());
            let status = key.status(now, policy);
            if status == KeyStatus::Active && key.idle_warning_due(now, policy) {
                let Some(deadline) = key.idle_deadline(policy) else {
                    continue;
                };
                let access = actor.access_account(Permission::ManageKeys, &key.account)?;
                let change = Change::new(&access, now)
                    .write(Write::MarkIdleWarned {
                        key_id: key.key_id.clone(),
                        at: now,
                        previous: key.idle_warned_at,
                    })
                    .audit(
                        "api_key.idle_warning",
                        key_target(&key),
                        json!({ "expires_at": deadline.to_rfc3339() }),
                    )
                    .key_event(
                        &access,
                        EventBody::ApiKeyIdleWarning {
                            key_id: key.key_id.clone(),
                            expires_at: deadline,
                        },
                        EventContext::default(),
                    )?;
                match self.store_ref().commit(change.into_set()).await {
                    Ok(()) => report.warned.push(key.key_id.clone()),
                    // Another process's sweep warned the owner first.
                    Err(StoreError::Conflict(_)) => {}
                    Err(error) => return Err(error.into()),
                }
                self.install(&key.key_id, now).await?;
            } else if status == KeyStatus::IdleExpired {
                let Some(deadline) = key.idle_deadline(policy) else {
                    continue;
                };
                let mut after = successor(&key, now);
                after.expires_at = Some(deadline);
                let access = actor.access_account(Permission::ManageKeys, &after.account)?;
                let change = Change::new(&access, now)
                    .write(replace(&key, &after))
                    .audit(
                        "api_key.idle_expired",
                        key_target(&after),
                        key_details(&after),
                    )
                    .key_event(
                        &access,
                        EventBody::ApiKeyIdleExpired {
                            key_id: after.key_id.clone(),
                        },
                        EventContext::default(),
                    )?;
                self.store_ref().commit(change.into_set()).await?;
                self.install(&after.key_id, now).await?;
                report.expired.push(after.key_id);
            }
        }
        Ok(report)
    }

    /// Re-seals every HMAC secret that is not under the active master key, then every value kept
    /// sealed at rest (or still in plain text from before sealing).
    pub async fn rewrap_secrets(
        &self,
        actor: &Actor,
        clock: &dyn Clock,
    ) -> AppResult<RewrapReport> {
        actor.require_operator(Permission::ManageSecrets)?;
        let active = self.keyring().active_id().to_owned();
        let mut resealed = 0;
        loop {
            let page = self
                .store_ref()
                .secrets_not_sealed_by(&active, REWRAP_PAGE)
                .await?;
            if page.is_empty() {
                break;
            }
            let mut change = Change::global(actor, clock.now());
            let mut from = Vec::new();
            for sealed in &page {
                from.push(sealed.master_key_id.clone());
                change = change.write(Write::ResealSecret {
                    secret: self.keyring().reseal(sealed)?,
                    expected_master_key_id: sealed.master_key_id.clone(),
                });
            }
            from.sort();
            from.dedup();
            let change = change.audit(
                "secrets.rewrapped",
                format!("master_key:{active}"),
                json!({ "count": page.len(), "from": from }),
            );
            self.store_ref().commit(change.into_set()).await?;
            resealed += page.len();
        }
        let resealed_at_rest = self.reseal_at_rest(actor, clock, &active).await?;
        Ok(RewrapReport {
            resealed,
            resealed_at_rest,
            active_master_key: active,
        })
    }

    /// Every TOTP secret (kept sealed inside its account's guard document) moved under the
    /// active master key; returns how many. A guard changed meanwhile (a step-up at the same
    /// moment) is read again and tried again.
    async fn reseal_totp_secrets(&self) -> AppResult<u64> {
        let store = self.store_ref();
        let mut after = String::new();
        let mut total = 0;
        loop {
            let page = store.totp_guards_after(&after, REWRAP_PAGE).await?;
            let Some(last) = page.last() else {
                return Ok(total);
            };
            after = last.account.clone();
            for mut guard in page {
                for _attempt in 0..3 {
                    let Some(write) = crate::guard::totp_resealed(self.keyring(), &guard)? else {
                        break;
                    };
                    let set = ChangeSet {
                        writes: vec![write],
                        ..ChangeSet::default()
                    };
                    match store.commit(set).await {
                        Ok(()) => {
                            total += 1;
                            break;
                        }
                        Err(StoreError::Conflict(_)) => match store.guard(&guard.account).await? {
                            Some(fresh) => guard = fresh,
                            None => break,
                        },
                        Err(error) => return Err(error.into()),
                    }
                }
            }
        }
    }

    /// The values the store keeps sealed at rest, moved to the active master key page by page
    /// (the store seals and opens them itself), with one audit entry for the lot.
    async fn reseal_at_rest(
        &self,
        actor: &Actor,
        clock: &dyn Clock,
        active: &str,
    ) -> AppResult<u64> {
        let mut total = self.reseal_totp_secrets().await?;
        loop {
            let sealed = self.store_ref().reseal_at_rest(REWRAP_PAGE).await?;
            if sealed == 0 {
                break;
            }
            total += sealed;
        }
        if total > 0 {
            let change = Change::global(actor, clock.now()).audit(
                "values_at_rest.rewrapped",
                format!("master_key:{active}"),
                json!({ "count": total }),
            );
            self.store_ref().commit(change.into_set()).await?;
        }
        Ok(total)
    }
}
