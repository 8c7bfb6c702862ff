//! Applying the pending changes whose cool-down has ended: each one's risk decision read
//! again first, then its effect (a key's new terms, an address, the guard document), the
//! change closed, audited and announced in one commit.

use super::Guard;
use super::pending::update;
use super::stepup::{put, target};
use super::widening::pending_details;
use crate::ErrorCode;
use crate::access::{AccountAccess, Actor};
use crate::changes::Change;
use crate::error::{AppError, AppResult};
use crate::ports::{AccountGuard, PendingAction, PendingChange, WithdrawalAddress, Write};
use portcullis_core::events::{AppliedBy, EventBody, EventContext};
use portcullis_core::guard::PendingStatus;
use portcullis_core::guard::cooldown::{self, Transition};
use portcullis_core::guard::fund_window::fitted;
use portcullis_core::guard::widening::{self, KeyTerms};
use portcullis_core::notice::NoticeKind;
use portcullis_core::operator::Permission;
use portcullis_core::time::UnixMillis;

/// How many due changes one pass applies.
const APPLY_BATCH: u32 = 100;

impl Guard {
    /// Applies every change whose cool-down has ended; returns how many applied. A change
    /// that can no longer apply (its key was revoked) is marked failed, with the reason.
    pub async fn apply_due(&self) -> AppResult<usize> {
        // What confirmations marked is held before anything due applies.
        self.hold_marked().await?;
        let now = self.clock.now();
        let mut applied = 0;
        for change in self.store.due_pending(now, APPLY_BATCH).await? {
            let id = change.id.clone();
            match self.apply_one(change, now).await {
                Ok(true) => applied += 1,
                Ok(false) => {}
                Err(AppError::Conflict(detail)) => {
                    tracing::info!(change = %id, %detail, "pending change changed meanwhile; retried next pass");
                }
                Err(error) => return Err(error),
            }
        }
        Ok(applied)
    }

    /// Applies one due change; `false` when it was held or failed instead. The risk decision
    /// is read again first: a change applies only with a stored decision that lets it, or an
    /// operator's release.
    pub(super) async fn apply_one(
        &self,
        change: PendingChange,
        now: UnixMillis,
    ) -> AppResult<bool> {
        let system = Actor::system();
        let actor = system.access_account(Permission::ManageKeys, &change.account)?;
        let applied =
            match cooldown::transition(&change.status, change.applies_at, Transition::Apply, now) {
                Ok(status) => status,
                Err(error) => return Err(AppError::Conflict(error.to_string())),
            };
        if change.released_by.is_none()
            && let Some(stop) = self.missed_risk_stop(&change).await
        {
            self.move_change(&actor, change, stop, "widening.risk_stopped")
                .await?;
            return Ok(false);
        }
        // The protections are checked again at the end of the cool-down, as when it began.
        let guard = self.guard_of(&change.account).await?;
        let allowed = match change.action {
            PendingAction::Unfreeze => guard.protection.allows_unfreeze(now),
            _ => guard.protection.allows_widening(now),
        };
        // The protections just read must still be the account's when the change commits: the
        // commit rewrites the guard document at the version read (unchanged), so a freeze or
        // a lock committed meanwhile makes it a conflict (retried next pass, and refused
        // then), and a freeze that read the account before this commit is retried by the
        // freeze itself. Without it a freeze landing between this read and the commit left
        // the account frozen with a key the change had just widened.
        let unchanged = put(guard.clone(), guard.version);
        let result = match allowed {
            Err(error) => Err(super::protection_refusal(error)),
            Ok(()) => match &change.action {
                PendingAction::KeyChange { .. } => {
                    (self.apply_key_change(&actor, &change, applied, unchanged, now)).await
                }
                PendingAction::AddAddress { .. } => {
                    (self.apply_address(&actor, &change, applied, unchanged, now)).await
                }
                PendingAction::Unfreeze | PendingAction::RemoveTotp => {
                    self.apply_guard_edit(&actor, &change, applied, guard, now)
                        .await
                }
                PendingAction::ContactChange { .. } => {
                    (self.apply_contact_change(&actor, &change, applied, unchanged, now)).await
                }
            },
        };
        match result {
            Err(AppError::Invalid { message, .. }) | Err(AppError::NotFound(message)) => {
                let fail = Transition::Fail { reason: message };
                self.move_change(&actor, change, fail, "widening.failed")
                    .await
                    .map(|_| false)
            }
            other => other.map(|()| true),
        }
    }

    async fn apply_key_change(
        &self,
        access: &AccountAccess<'_>,
        change: &PendingChange,
        status: PendingStatus,
        unchanged: Write,
        now: UnixMillis,
    ) -> AppResult<()> {
        let PendingAction::KeyChange {
            key_id,
            label,
            add_scopes,
            remove_scopes,
            ip_allowlist,
            expires_at,
            fund_window,
        } = &change.action
        else {
            return Err(AppError::Internal("not a key change".into()));
        };
        let before = self
            .keys
            .changeable_key(key_id, now)
            .await
            .map_err(|e| match e {
                AppError::Conflict(message) => AppError::invalid(ErrorCode::KeyNotLive, message),
                other => other,
            })?;
        let mut after = crate::keys::successor(&before, now);
        after.scopes = before.scopes.union(*add_scopes).without(*remove_scopes);
        if let Some(list) = ip_allowlist {
            after.ip_allowlist = list.clone();
        }
        if let Some(expiry) = expires_at {
            after.expires_at = *expiry;
        }
        if let Some(label) = label {
            after.label = label.clone();
        }
        if let Some(request) = fund_window {
            after.fund_window = crate::keys::open_window(&before, after.scopes, *request, now)?;
        }
        after.fund_window = fitted(after.fund_window, after.scopes);
        widening::check_terms(&KeyTerms::of(&after))
            .map_err(|e| AppError::invalid(ErrorCode::WithdrawNeedsAllowlist, e.to_string()))?;
        let write = crate::keys::replace(&before, &after);
        let commit = self
            .closing(access, change, status, write, "widening.applied", now)
            .await?
            .write(unchanged);
        self.keys.commit_and_install(commit, key_id, now).await
    }

    async fn apply_address(
        &self,
        access: &AccountAccess<'_>,
        change: &PendingChange,
        status: PendingStatus,
        unchanged: Write,
        now: UnixMillis,
    ) -> AppResult<()> {
        let PendingAction::AddAddress {
            address,
            asset,
            network,
            label,
        } = &change.action
        else {
            return Err(AppError::Internal("not an address".into()));
        };
        let write = Write::PutAddress(WithdrawalAddress {
            account: change.account.clone(),
            network: network.clone(),
            address: address.clone(),
            asset: asset.clone(),
            label: label.clone(),
            requested_at: change.requested_at,
            usable_from: now,
        });
        let commit = self
            .closing(access, change, status, write, "widening.applied", now)
            .await?
            .write(unchanged);
        Ok(self.store.commit(commit.into_set()).await?)
    }

    /// Applies a change to the account's guard document (lifting the freeze, removing the
    /// authenticator app), audited as `action`.
    async fn apply_guard_edit(
        &self,
        access: &AccountAccess<'_>,
        change: &PendingChange,
        status: PendingStatus,
        guard: AccountGuard,
        now: UnixMillis,
    ) -> AppResult<()> {
        let mut next = guard.clone();
        let action = match change.action {
            PendingAction::RemoveTotp => {
                next.totp = None;
                "totp.removed"
            }
            _ => {
                next.protection = guard.protection.unfrozen();
                "account.unfrozen"
            }
        };
        let write = put(next, guard.version);
        let commit = self
            .closing(access, change, status, write, action, now)
            .await?;
        Ok(self.store.commit(commit.into_set()).await?)
    }

    /// The commit that applies a change: its effect (`write`), the change closed with `status`,
    /// the audit entry and the announcement.
    async fn closing(
        &self,
        access: &AccountAccess<'_>,
        change: &PendingChange,
        status: PendingStatus,
        write: Write,
        action: &str,
        now: UnixMillis,
    ) -> AppResult<Change> {
        let closed = PendingChange {
            status,
            version: change.version + 1,
            ..change.clone()
        };
        access.covers(&change.account)?;
        let mut commit = Change::new(access, now)
            .write(write)
            .write(update(closed.clone(), change.version))
            .audit(action, target(&change.account), pending_details(&closed));
        if let Some(event_ref) = &change.event_id {
            let by = match change.released_by {
                Some(_) => AppliedBy::Operator,
                None => AppliedBy::Cooldown,
            };
            let applied = EventBody::ChangeApplied {
                event_ref: event_ref.clone(),
                by,
            };
            commit = commit.key_event(access, applied, EventContext::default())?;
        }
        let notice = self
            .named_change_notice(NoticeKind::WideningApplied, &closed, now)
            .await?;
        self.announced(commit, &notice, now).await
    }
}
