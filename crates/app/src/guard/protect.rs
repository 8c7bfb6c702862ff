//! The freeze and the settings lock.
//!
//! Freezing is one step with no step-up: a customer who realises mid-call that they are being
//! scammed must be able to stop everything at once. Lifting the freeze is a widening.

use super::notices::account_notice;
use super::pending::{cancelled_event, update};
use super::stepup::{put, target};
use super::widening::{PendingReceipt, WideningRequest};
use super::{Guard, refusal};
use crate::ErrorCode;
use crate::access::{AccountAccess, Actor};
use crate::changes::Change;
use crate::error::{AppError, AppResult};
use crate::ports::{PendingAction, PendingChange, Write};
use portcullis_core::events::{Effective, EventBody, EventContext, StepUp};
use portcullis_core::guard::stepup::Action;
use portcullis_core::guard::widening::FUND_MOVING;
use portcullis_core::guard::{PendingStatus, Protection, StepUpMethod, Widening};
use portcullis_core::key::KeyStatus;
use portcullis_core::notice::NoticeKind;
use portcullis_core::operator::Permission;
use portcullis_core::scope::ScopeSet;
use portcullis_core::time::UnixMillis;
use serde_json::json;

/// How many times a freeze is tried when the account changed under it.
const FREEZE_ATTEMPTS: u32 = 5;

/// What a freeze did.
#[derive(Debug, Clone)]
pub struct FreezeReport {
    pub protection: Protection,
    /// Keys whose `withdraw`/`transfer` were suspended.
    pub keys_narrowed: Vec<String>,
    /// Pending widenings cancelled.
    pub changes_cancelled: Vec<String>,
}

/// A widening of the account itself that the security center asks for with one button.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccountWidening {
    /// Lifting the freeze.
    Unfreeze,
    /// Removing the authenticator app.
    RemoveTotp,
}

impl AccountWidening {
    /// From the security center's path segment: `unfreeze` or `remove-totp`.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "unfreeze" => Some(Self::Unfreeze),
            "remove-totp" => Some(Self::RemoveTotp),
            _ => None,
        }
    }
}

impl Guard {
    pub async fn protection(&self, actor: &Actor, account: &str) -> AppResult<Protection> {
        let access = actor.access_account(Permission::ReadKeys, account)?;
        Ok(self.guard_of(access.account()).await?.protection)
    }

    /// Freezes the account: every key loses `withdraw` and `transfer`, every open widening is
    /// cancelled, and no widening is accepted until the freeze is lifted. All in one commit.
    pub async fn freeze(
        &self,
        actor: &Actor,
        account: &str,
        ctx: EventContext,
    ) -> AppResult<FreezeReport> {
        let access = actor.access_account(Permission::ProtectAccounts, account)?;
        self.freeze_with(&access, ctx, None).await
    }

    /// The freeze, with `extra` (spending the freeze link that asked for it) in its commit.
    /// The panic button must not fail because something else changed the account between its
    /// reads and its commit (a due change applying, a step-up): it reads everything again and
    /// tries again, a few times.
    pub(crate) async fn freeze_with(
        &self,
        access: &AccountAccess<'_>,
        ctx: EventContext,
        extra: Option<Write>,
    ) -> AppResult<FreezeReport> {
        let mut attempt = 1;
        loop {
            match self.freeze_once(access, ctx.clone(), extra.clone()).await {
                Err(AppError::Conflict(detail)) if attempt < FREEZE_ATTEMPTS => {
                    tracing::info!(account = %access.account(), %detail, "the account changed while it was frozen; freezing again");
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    async fn freeze_once(
        &self,
        access: &AccountAccess<'_>,
        ctx: EventContext,
        extra: Option<Write>,
    ) -> AppResult<FreezeReport> {
        let (actor, account) = (access.actor(), access.account());
        let now = self.clock.now();
        let guard = self.guard_of(account).await?;
        let mut next = guard.clone();
        next.protection = guard.protection.frozen(now);
        let mut change = Change::new(access, now).write(put(next.clone(), guard.version));
        if let Some(write) = extra {
            change = change.write(write);
        }
        let fund_moving =
            ScopeSet::parse(FUND_MOVING.iter().map(|s| s.as_str())).unwrap_or_default();
        let mut keys_narrowed = Vec::new();
        for key in self.store.keys_for_account(account).await? {
            let live = key.status(now, self.keys.policy().idle) == KeyStatus::Active;
            if !live || key.scopes.without(fund_moving) == key.scopes {
                continue;
            }
            let mut after = crate::keys::successor(&key, now);
            after.scopes = key.scopes.without(fund_moving);
            let event = EventBody::ApiKeyUpdated {
                key_id: key.key_id.clone(),
                scopes: after.scopes,
                ip_allowlist: after.ip_allowlist.clone(),
                step_up: StepUp::None,
                effective: Effective::Now,
            };
            change = change.write(crate::keys::replace(&key, &after)).key_event(
                access,
                event,
                ctx.clone(),
            )?;
            keys_narrowed.push(key.key_id);
        }
        let mut changes_cancelled = Vec::new();
        for open in self.store.pending_for_account(account, 1_000).await? {
            if !open.status.is_open() {
                continue;
            }
            let cancelled = PendingChange {
                status: PendingStatus::Cancelled {
                    at: now,
                    by: actor.id().to_owned(),
                },
                version: open.version + 1,
                ..open.clone()
            };
            changes_cancelled.push(open.id.clone());
            if let Some(event) = cancelled_event(actor, &cancelled) {
                change = change.key_event(access, event, EventContext::default())?;
            }
            change = change.write(update(cancelled, open.version));
        }
        let details =
            json!({ "keys_narrowed": keys_narrowed, "changes_cancelled": changes_cancelled });
        let change = change.audit("account.frozen", target(account), details);
        let summary = "Your account is frozen: no API key can withdraw or transfer, and pending changes were cancelled";
        let notice = account_notice(
            NoticeKind::AccountFrozen,
            account,
            &format!("freeze:{}", now.as_millis()),
            summary,
            now,
        );
        let change = self.announced(change, &notice, now).await?;
        self.store.commit(change.into_set()).await?;
        for key_id in &keys_narrowed {
            self.keys.install(key_id, now).await?;
        }
        Ok(FreezeReport {
            protection: next.protection,
            keys_narrowed,
            changes_cancelled,
        })
    }

    /// The step-up `what` takes, or why it cannot be asked for (lifting a freeze that is not
    /// there, removing an app that is not enrolled, a lock, no passkey). Writes nothing.
    pub async fn check_account_widening(
        &self,
        actor: &Actor,
        account: &str,
        what: AccountWidening,
    ) -> AppResult<StepUpMethod> {
        match what {
            AccountWidening::Unfreeze => {
                actor.access_account(Permission::ManageKeys, account)?;
                let now = self.clock.now();
                self.step_up_needed(account, Action::Unfreeze, now).await
            }
            AccountWidening::RemoveTotp => self.check_totp_removal(actor, account).await,
        }
    }

    /// Asks for `what`: a step-up, then a cool-down.
    pub async fn request_account_widening(
        &self,
        actor: &Actor,
        account: &str,
        what: AccountWidening,
        grant: Option<&str>,
    ) -> AppResult<PendingReceipt> {
        match what {
            AccountWidening::Unfreeze => self.request_unfreeze(actor, account, grant).await,
            AccountWidening::RemoveTotp => self.request_totp_removal(actor, account, grant).await,
        }
    }

    /// Asks to lift the freeze: a passkey step-up, then its own cool-down.
    pub async fn request_unfreeze(
        &self,
        actor: &Actor,
        account: &str,
        grant: Option<&str>,
    ) -> AppResult<PendingReceipt> {
        let access = actor.access_account(Permission::ManageKeys, account)?;
        let now = self.clock.now();
        let request = WideningRequest {
            account,
            action: PendingAction::Unfreeze,
            widenings: vec![Widening::DisablesProtection],
            grant,
            event: None,
            ctx: EventContext::default(),
            account_edit: None,
        };
        self.request_widening(&access, request, now).await
    }

    /// Checks a settings lock until `until` without writing it, so that the customer confirms
    /// only a date that would be taken.
    pub async fn check_lock(
        &self,
        actor: &Actor,
        account: &str,
        until: UnixMillis,
    ) -> AppResult<()> {
        actor.access_account(Permission::ManageKeys, account)?;
        let guard = self.guard_of(account).await?;
        locked(&guard.protection, until, self.clock.now()).map(|_| ())
    }

    /// Locks every widening until `until`. Only ever extends: nobody, operators included, can
    /// bring the date forward.
    pub async fn lock_settings(
        &self,
        actor: &Actor,
        account: &str,
        until: UnixMillis,
    ) -> AppResult<Protection> {
        let access = actor.access_account(Permission::ManageKeys, account)?;
        let now = self.clock.now();
        let guard = self.guard_of(account).await?;
        let protection = locked(&guard.protection, until, now)?;
        let mut next = guard.clone();
        next.protection = protection.clone();
        let change = Change::new(&access, now)
            .write(put(next, guard.version))
            .audit(
                "account.settings_locked",
                target(account),
                json!({ "until": until.to_rfc3339() }),
            );
        let summary = format!(
            "Your settings are locked: no change can widen your account before {} (UTC)",
            until.spelled_day()
        );
        let key = format!("lock:{}", until.as_millis());
        let notice = account_notice(NoticeKind::SettingsLocked, account, &key, &summary, now);
        let change = self.announced(change, &notice, now).await?;
        self.store.commit(change.into_set()).await?;
        Ok(protection)
    }
}

/// `protection` locked until `until`, or why it cannot be.
fn locked(protection: &Protection, until: UnixMillis, now: UnixMillis) -> AppResult<Protection> {
    protection.with_lock(until, now).map_err(|e| match e {
        portcullis_core::guard::ProtectionError::CannotShorten(_) => {
            refusal(ErrorCode::LockCannotShorten, e)
        }
        other => refusal(ErrorCode::InvalidLock, other),
    })
}
