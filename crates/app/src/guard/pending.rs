//! The life of a pending change after it is recorded: the risk engine's hold, cancellation by
//! the customer (single-use link) or an operator, holds and releases, and applying the changes
//! whose cool-down has ended.

use super::notices::change_notice;
use super::stepup::{put, target};
use super::widening::pending_details;
use super::{Guard, token_hash};
use crate::access::Actor;
use crate::changes::Change;
use crate::error::{AppError, AppResult};
use crate::ports::{AccountGuard, PendingAction, PendingChange, WithdrawalAddress, Write};
use portcullis_core::guard::cooldown::{self, Transition, TransitionError};
use portcullis_core::guard::widening::{self, KeyTerms};
use portcullis_core::guard::{PendingStatus, StepUpMethod};
use portcullis_core::notice::NoticeKind;
use portcullis_core::operator::Permission;
use portcullis_core::time::UnixMillis;

/// Who the risk engine acts as in the audit trail.
const RISK_ACTOR: &str = "risk-engine";
/// How many due changes one pass applies.
const APPLY_BATCH: u32 = 100;

impl Guard {
    /// Lets the risk decision on the change's event stop it: `hold` holds it for review,
    /// `block` cancels it. Without a decision (the engine is behind) it stays pending.
    pub(crate) async fn apply_risk_decision(
        &self,
        change: PendingChange,
    ) -> AppResult<PendingChange> {
        let Some(event_id) = change.event_id.clone() else {
            return Ok(change);
        };
        let decisions = self.risk.catch_up().await?;
        let decision = match decisions.get(&event_id) {
            Some(decision) => (
                decision.decision.as_str().to_owned(),
                decision.reasons.join(","),
            ),
            None => match self.store.decision(&event_id).await? {
                Some(stored) => (stored.decision, stored.reasons),
                None => return Ok(change),
            },
        };
        // A challenge asks for a phishing-resistant confirmation: a passkey grant already is
        // one; anything weaker waits for review.
        let transition = match decision.0.as_str() {
            "hold" => Transition::Hold {
                by: RISK_ACTOR.into(),
                reason: decision.1,
            },
            "challenge" if change.step_up != StepUpMethod::Passkey => Transition::Hold {
                by: RISK_ACTOR.into(),
                reason: format!("challenge without a passkey: {}", decision.1),
            },
            "block" => Transition::Cancel {
                by: RISK_ACTOR.into(),
            },
            _ => return Ok(change),
        };
        self.move_change(
            &Actor::system(),
            change,
            transition,
            "widening.risk_stopped",
        )
        .await
    }

    /// The account's changes, newest first.
    pub async fn changes_for(&self, actor: &Actor, account: &str) -> AppResult<Vec<PendingChange>> {
        actor.require(Permission::ReadKeys)?;
        self.account(account).await?;
        Ok(self.store.pending_for_account(account, 200).await?)
    }

    pub async fn change(&self, actor: &Actor, id: &str) -> AppResult<PendingChange> {
        actor.require(Permission::ReadKeys)?;
        self.existing_change(id).await
    }

    /// The change a cancel link stands for (to show before the customer confirms).
    pub async fn change_by_cancel_token(&self, token: &str) -> AppResult<PendingChange> {
        self.store
            .pending_by_cancel_token(&token_hash(token))
            .await?
            .ok_or_else(|| {
                AppError::invalid("invalid_cancel_link", "this cancel link is not valid")
            })
    }

    /// Cancels through the single-use link from an announcement; needs no other credential,
    /// because the link only ever makes an account safer.
    pub async fn cancel_by_token(&self, token: &str) -> AppResult<PendingChange> {
        // A forged or mistyped link names no account and changes nothing, so it is not
        // audited: anyone can send them by the thousand, and each audit entry is a write under
        // the chain's lock. The edge counts them instead (`invalid_cancel_link`).
        let change = self.change_by_cancel_token(token).await?;
        if !change.status.is_open() {
            let error = AppError::invalid(
                "cancel_link_used",
                format!("this change is already {}", change.status.as_str()),
            );
            let actor = Actor::system_as(&format!("customer:{}", change.account));
            return Err(self
                .refused(&actor, &change.account, "cancel_link", error)
                .await);
        }
        let by = format!("customer:{}", change.account);
        let actor = Actor::system_as(&by);
        self.move_change(
            &actor,
            change,
            Transition::Cancel { by },
            "widening.cancelled",
        )
        .await
    }

    /// Cancels on behalf of the customer (the exchange's app or the security center).
    pub async fn cancel(&self, actor: &Actor, id: &str) -> AppResult<PendingChange> {
        actor.require(Permission::ManageKeys)?;
        let change = self.existing_change(id).await?;
        actor.require_account(&change.account)?;
        let by = actor.id.clone();
        self.move_change(
            actor,
            change,
            Transition::Cancel { by },
            "widening.cancelled",
        )
        .await
    }

    /// Holds a change for review; it will not apply until released.
    pub async fn hold(&self, actor: &Actor, id: &str, reason: &str) -> AppResult<PendingChange> {
        actor.require(Permission::ReviewChanges)?;
        let change = self.existing_change(id).await?;
        let transition = Transition::Hold {
            by: actor.id.clone(),
            reason: reason.to_owned(),
        };
        self.move_change(actor, change, transition, "widening.held")
            .await
    }

    /// Releases a held change; it applies once its cool-down has ended, never earlier.
    pub async fn release(&self, actor: &Actor, id: &str) -> AppResult<PendingChange> {
        actor.require(Permission::ReviewChanges)?;
        let change = self.existing_change(id).await?;
        self.move_change(actor, change, Transition::Release, "widening.released")
            .await
    }

    /// Applies every change whose cool-down has ended; returns how many applied. A change
    /// that can no longer apply (its key was revoked) is marked failed, with the reason.
    pub async fn apply_due(&self) -> AppResult<usize> {
        let now = self.clock.now();
        let mut applied = 0;
        for change in self.store.due_pending(now, APPLY_BATCH).await? {
            let id = change.id.clone();
            match self.apply_one(change, now).await {
                Ok(()) => applied += 1,
                Err(AppError::Conflict(detail)) => {
                    tracing::info!(change = %id, %detail, "pending change changed meanwhile; retried next pass");
                }
                Err(error) => return Err(error),
            }
        }
        Ok(applied)
    }

    async fn apply_one(&self, change: PendingChange, now: UnixMillis) -> AppResult<()> {
        let actor = Actor::system();
        let applied =
            match cooldown::transition(&change.status, change.applies_at, Transition::Apply, now) {
                Ok(status) => status,
                Err(error) => return Err(AppError::Conflict(error.to_string())),
            };
        // The protections are checked again at the end of the cool-down, as when it began.
        let guard = self.guard_of(&change.account).await?;
        let allowed = match change.action {
            PendingAction::Unfreeze => guard.protection.allows_unfreeze(now),
            _ => guard.protection.allows_widening(now),
        };
        let result = match allowed {
            Err(error) => Err(AppError::invalid("account_protected", error.to_string())),
            Ok(()) => match &change.action {
                PendingAction::KeyChange { .. } => {
                    self.apply_key_change(&actor, &change, applied, now).await
                }
                PendingAction::AddAddress { .. } => {
                    self.apply_address(&actor, &change, applied, now).await
                }
                PendingAction::Unfreeze => {
                    self.apply_unfreeze(&actor, &change, applied, guard, now)
                        .await
                }
            },
        };
        match result {
            Err(AppError::Invalid { message, .. }) | Err(AppError::NotFound(message)) => {
                let fail = Transition::Fail { reason: message };
                self.move_change(&actor, change, fail, "widening.failed")
                    .await
                    .map(|_| ())
            }
            other => other,
        }
    }

    async fn apply_key_change(
        &self,
        actor: &Actor,
        change: &PendingChange,
        status: PendingStatus,
        now: UnixMillis,
    ) -> AppResult<()> {
        let PendingAction::KeyChange {
            key_id,
            label,
            add_scopes,
            remove_scopes,
            ip_allowlist,
            expires_at,
        } = &change.action
        else {
            return Err(AppError::Internal("not a key change".into()));
        };
        let before = self
            .keys
            .changeable_key(key_id, now)
            .await
            .map_err(|e| match e {
                AppError::Conflict(message) => AppError::invalid("key_not_live", message),
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
        let terms = KeyTerms {
            scopes: after.scopes,
            ip_allowlist: after.ip_allowlist.clone(),
            expires_at: after.expires_at,
        };
        widening::check_terms(&terms)
            .map_err(|e| AppError::invalid("withdraw_needs_allowlist", e.to_string()))?;
        let write = crate::keys::replace(&before, &after);
        let commit = self
            .closing(actor, change, status, write, "widening.applied", now)
            .await?;
        self.keys.commit_and_install(commit, key_id, now).await
    }

    async fn apply_address(
        &self,
        actor: &Actor,
        change: &PendingChange,
        status: PendingStatus,
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
            .closing(actor, change, status, write, "widening.applied", now)
            .await?;
        Ok(self.store.commit(commit.into_set()).await?)
    }

    async fn apply_unfreeze(
        &self,
        actor: &Actor,
        change: &PendingChange,
        status: PendingStatus,
        guard: AccountGuard,
        now: UnixMillis,
    ) -> AppResult<()> {
        let mut next = guard.clone();
        next.protection = guard.protection.unfrozen();
        let write = put(next, guard.version);
        let commit = self
            .closing(actor, change, status, write, "account.unfrozen", now)
            .await?;
        Ok(self.store.commit(commit.into_set()).await?)
    }

    /// The commit that applies a change: its effect (`write`), the change closed with `status`,
    /// the audit entry and the announcement.
    async fn closing(
        &self,
        actor: &Actor,
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
        let commit = Change::new(actor, now)
            .write(write)
            .write(update(closed.clone(), change.version))
            .audit(action, target(&change.account), pending_details(&closed));
        let notice = change_notice(NoticeKind::WideningApplied, &closed, now);
        self.announced(commit, &notice, now).await
    }

    /// Moves a change through `transition`, audited, in one commit.
    pub(crate) async fn move_change(
        &self,
        actor: &Actor,
        change: PendingChange,
        transition: Transition,
        action: &str,
    ) -> AppResult<PendingChange> {
        let now = self.clock.now();
        let status = cooldown::transition(&change.status, change.applies_at, transition, now)
            .map_err(transition_error)?;
        let next = PendingChange {
            status,
            version: change.version + 1,
            ..change.clone()
        };
        let commit = Change::new(actor, now)
            .write(update(next.clone(), change.version))
            .audit(action, target(&change.account), pending_details(&next));
        let kind = match next.status {
            PendingStatus::Cancelled { .. } => Some(NoticeKind::WideningCancelled),
            PendingStatus::Held { .. } => Some(NoticeKind::WideningHeld),
            _ => None,
        };
        let commit = match kind {
            Some(kind) => {
                self.announced(commit, &change_notice(kind, &next, now), now)
                    .await?
            }
            None => commit,
        };
        self.store.commit(commit.into_set()).await?;
        Ok(next)
    }

    async fn existing_change(&self, id: &str) -> AppResult<PendingChange> {
        self.store
            .pending_change(id)
            .await?
            .ok_or_else(|| AppError::NotFound(format!("change {id}")))
    }
}

pub(crate) fn update(change: PendingChange, expected_version: i64) -> Write {
    Write::UpdatePending {
        change,
        expected_version,
    }
}

fn transition_error(error: TransitionError) -> AppError {
    let code = match error {
        TransitionError::Closed(_) => "change_closed",
        TransitionError::NotHeld => "change_not_held",
        TransitionError::IsHeld => "change_held",
        TransitionError::NotDue => "change_not_due",
    };
    AppError::invalid(code, error.to_string())
}
