//! The life of a pending change after it is recorded: the risk engine's hold, cancellation by
//! the customer (single-use link) or an operator, holds and releases. Applying the changes
//! whose cool-down has ended is `apply_due`.

use super::stepup::target;
use super::widening::pending_details;
use super::{Guard, token_hash};
use crate::ErrorCode;
use crate::access::{AccountAccess, Actor, ActorKind};
use crate::changes::Change;
use crate::error::{AppError, AppResult};
use crate::ports::{PendingChange, Write};
use portcullis_core::events::{CancelledBy, EventBody, EventContext};
use portcullis_core::guard::cooldown::{self, Transition, TransitionError};
use portcullis_core::guard::{PendingStatus, StepUpMethod};
use portcullis_core::notice::NoticeKind;
use portcullis_core::operator::{Permission, Role};

/// Who the risk engine acts as in the audit trail.
pub(crate) const RISK_ACTOR: &str = "risk-engine";
use portcullis_core::guard::hold::ENGINE_UNAVAILABLE;

impl Guard {
    /// Lets the risk decision on the change's event stop it: `hold` holds it for review,
    /// `block` cancels it. Fails closed: when the engine cannot decide (an error, or no
    /// decision to be found), the change is held with the reason `engine_unavailable`.
    pub(crate) async fn apply_risk_decision(
        &self,
        change: PendingChange,
    ) -> AppResult<PendingChange> {
        let Some(event_id) = change.event_id.clone() else {
            return Ok(change);
        };
        // The catch-up runs as a task of its own, so that a wait cut short by the timeout never
        // cancels it halfway (it goes on, and the decision is stored when it comes).
        let risk = self.risk.clone();
        let catch_up = tokio::spawn(async move { risk.catch_up().await });
        let decision = match tokio::time::timeout(self.settings.decision_timeout, catch_up).await {
            Ok(Ok(Ok(decisions))) => match decisions.get(&event_id) {
                Some(decision) => Some(RiskVerdict {
                    verdict: decision.decision.as_str().to_owned(),
                    reasons: decision.reasons.join(","),
                }),
                None => self.stored_verdict(&event_id).await,
            },
            Ok(Ok(Err(error))) => {
                tracing::error!(change = %change.id, %error, "the risk engine could not decide; the change is held");
                None
            }
            Ok(Err(error)) => {
                tracing::error!(change = %change.id, %error, "the risk engine's task failed; the change is held");
                None
            }
            Err(_) => {
                tracing::error!(change = %change.id, "the risk engine did not decide in time; the change is held");
                None
            }
        };
        match risk_stop(&change, decision.as_ref()) {
            Some(stop) => {
                let system = Actor::system();
                let access = system.access_account(Permission::ReviewChanges, &change.account)?;
                self.move_change(&access, change, stop, "widening.risk_stopped")
                    .await
            }
            None => Ok(change),
        }
    }

    /// The stored decision on `event_id`; `None` when there is none or it cannot be read (the
    /// caller then treats the change as undecided, which holds it).
    async fn stored_verdict(&self, event_id: &str) -> Option<RiskVerdict> {
        match self.store.decision(event_id).await {
            Ok(stored) => stored.map(|stored| RiskVerdict {
                verdict: stored.decision,
                reasons: stored.reasons,
            }),
            Err(error) => {
                tracing::error!(event = %event_id, %error, "cannot read a risk decision");
                None
            }
        }
    }

    /// The account's changes, newest first.
    pub async fn changes_for(&self, actor: &Actor, account: &str) -> AppResult<Vec<PendingChange>> {
        let access = actor.access_account(Permission::ReadKeys, account)?;
        self.account(access.account()).await?;
        Ok(self
            .store
            .pending_for_account(access.account(), 200)
            .await?)
    }

    pub async fn change(&self, actor: &Actor, id: &str) -> AppResult<PendingChange> {
        actor.require(Permission::ReadKeys)?;
        let change = self.existing_change(id).await?;
        actor.access_account(Permission::ReadKeys, &change.account)?;
        Ok(change)
    }

    /// The change a cancel link stands for (to show before the customer confirms).
    pub async fn change_by_cancel_token(&self, token: &str) -> AppResult<PendingChange> {
        self.store
            .pending_by_cancel_token(&token_hash(token))
            .await?
            .ok_or_else(|| {
                AppError::invalid(
                    ErrorCode::InvalidCancelLink,
                    "this cancel link is not valid",
                )
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
                ErrorCode::CancelLinkUsed,
                format!("this change is already {}", change.status.as_str()),
            );
            let customer = Actor::customer(&change.account);
            return Err(self
                .refused(&customer, &change.account, "cancel_link", error)
                .await);
        }
        // The link proves the customer of that one change's account.
        let customer = Actor::customer(&change.account);
        let access = customer.access_account(Permission::ManageKeys, &change.account)?;
        let by = customer.id().to_owned();
        self.move_change(
            &access,
            change,
            Transition::Cancel { by },
            "widening.cancelled",
        )
        .await
    }

    /// Cancels on behalf of the customer (the exchange's app or the security center).
    pub async fn cancel(&self, actor: &Actor, id: &str) -> AppResult<PendingChange> {
        actor.require(Permission::ProtectAccounts)?;
        let change = self.existing_change(id).await?;
        let access = actor.access_account(Permission::ProtectAccounts, &change.account)?;
        let by = actor.id().to_owned();
        self.move_change(
            &access,
            change,
            Transition::Cancel { by },
            "widening.cancelled",
        )
        .await
    }

    /// Holds a change for review; it will not apply until released.
    ///
    /// A hold the risk engine made is never replaced by an operator's: an operator's hold is
    /// released by one call, so holding first would let one operator release alone what
    /// needs two (four-eyes).
    pub async fn hold(&self, actor: &Actor, id: &str, reason: &str) -> AppResult<PendingChange> {
        actor.require(Permission::ReviewChanges)?;
        let change = self.existing_change(id).await?;
        let access = actor.access_account(Permission::ReviewChanges, &change.account)?;
        if engine_held(&change.status) {
            return Err(AppError::invalid(
                ErrorCode::ChangeHeld,
                "the risk engine holds this change already: its release takes two operators",
            ));
        }
        let transition = Transition::Hold {
            by: actor.id().to_owned(),
            reason: reason.to_owned(),
        };
        self.move_change(&access, change, transition, "widening.held")
            .await
    }

    /// Releases a held change: the operator's release stands in for the risk decision. It
    /// applies once its cool-down has ended (at once, when that is already past), never earlier.
    ///
    /// A hold the risk engine made needs two operators (four-eyes): the first release records
    /// their approval and leaves the change held; a different operator completes it. The same
    /// operator twice is refused (`second_operator_required`), whichever path they come by.
    pub async fn release(&self, actor: &Actor, id: &str) -> AppResult<PendingChange> {
        actor.require(Permission::ReviewChanges)?;
        let mut change = self.existing_change(id).await?;
        let access = actor.access_account(Permission::ReviewChanges, &change.account)?;
        let engine_hold = engine_held(&change.status);
        if !engine_hold && let Some(stop) = self.missed_risk_stop(&change).await {
            // The engine's decision stops this change but its stop was never recorded: an
            // operator's hold got there between the change's recording and the decision, and
            // one call would release it. The engine's stop is recorded now instead.
            let system = Actor::system();
            let engine = system.access_account(Permission::ReviewChanges, &change.account)?;
            return (self.move_change(&engine, change, stop, "widening.risk_stopped")).await;
        }
        if engine_hold {
            match change.approved_by.as_deref() {
                None => return self.approve_release(&access, change).await,
                Some(first) if first == actor.id() => {
                    return Err(AppError::invalid(
                        ErrorCode::SecondOperatorRequired,
                        "you approved this release already: a hold made by the risk engine needs a second operator to complete it",
                    ));
                }
                Some(_) => {}
            }
        }
        change.released_by = Some(actor.id().to_owned());
        let released = self
            .move_change(&access, change, Transition::Release, "widening.released")
            .await?;
        let now = self.clock.now();
        if !released.status.is_due(released.applies_at, now) {
            return Ok(released);
        }
        match self.apply_one(released, now).await {
            // The background pass applied it first: the answer is what it did.
            Ok(_) | Err(AppError::Conflict(_)) => {}
            Err(error) => return Err(error),
        }
        self.existing_change(id).await
    }

    /// What the engine's stored decision on `change`'s event says to do with it, for a change it
    /// decides (none for one it does not, or that it lets through).
    pub(super) async fn missed_risk_stop(&self, change: &PendingChange) -> Option<Transition> {
        let event_id = change.event_id.as_ref()?;
        let decision = self.stored_verdict(event_id).await;
        risk_stop(change, decision.as_ref())
    }

    /// Records the first operator's approval of releasing an engine hold; the change stays held.
    async fn approve_release(
        &self,
        access: &AccountAccess<'_>,
        change: PendingChange,
    ) -> AppResult<PendingChange> {
        let now = self.clock.now();
        let next = PendingChange {
            approved_by: Some(access.actor().id().to_owned()),
            version: change.version + 1,
            ..change.clone()
        };
        access.covers(&change.account)?;
        let commit = Change::new(access, now)
            .write(update(next.clone(), change.version))
            .audit(
                "widening.release_approved",
                target(&change.account),
                pending_details(&next),
            );
        self.store.commit(commit.into_set()).await?;
        Ok(next)
    }

    /// Moves a change through `transition`, audited, in one commit.
    pub(crate) async fn move_change(
        &self,
        access: &AccountAccess<'_>,
        change: PendingChange,
        transition: Transition,
        action: &str,
    ) -> AppResult<PendingChange> {
        let now = self.clock.now();
        let held_again = matches!(transition, Transition::Hold { .. });
        let status = cooldown::transition(&change.status, change.applies_at, transition, now)
            .map_err(transition_error)?;
        let next = PendingChange {
            status,
            version: change.version + 1,
            approved_by: if held_again {
                None
            } else {
                change.approved_by.clone()
            },
            ..change.clone()
        };
        access.covers(&change.account)?;
        let mut commit = Change::new(access, now)
            .write(update(next.clone(), change.version))
            .audit(action, target(&change.account), pending_details(&next));
        if let Some(cancelled) = cancelled_event(access.actor(), &next) {
            commit = commit.key_event(access, cancelled, EventContext::default())?;
        }
        let kind = match next.status {
            PendingStatus::Cancelled { .. } => Some(NoticeKind::WideningCancelled),
            PendingStatus::Held { .. } => Some(NoticeKind::WideningHeld),
            _ => None,
        };
        let commit = match kind {
            // A hold's announcement carries the panic button: a held change is where a fake
            // support caller offers to "release" it.
            Some(NoticeKind::WideningHeld) => {
                let notice = self
                    .named_change_notice(NoticeKind::WideningHeld, &next, now)
                    .await?;
                self.announced_with_freeze_link(commit, notice, now).await?
            }
            Some(kind) => {
                let notice = self.named_change_notice(kind, &next, now).await?;
                self.announced(commit, &notice, now).await?
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

/// A risk decision as stored: the verdict and its reasons, comma-separated.
struct RiskVerdict {
    verdict: String,
    reasons: String,
}

/// How the risk decision stops a change, if it does. No decision at all stops it too: a
/// widening never applies without the engine's say (or an operator's release).
fn risk_stop(change: &PendingChange, decision: Option<&RiskVerdict>) -> Option<Transition> {
    let hold = |reason: String| Transition::Hold {
        by: RISK_ACTOR.into(),
        reason,
    };
    let Some(decision) = decision else {
        return Some(hold(ENGINE_UNAVAILABLE.into()));
    };
    match decision.verdict.as_str() {
        "hold" => Some(hold(decision.reasons.clone())),
        // A challenge asks for a phishing-resistant confirmation: a passkey grant already is
        // one; anything weaker waits for review.
        "challenge" if change.step_up != StepUpMethod::Passkey => Some(hold(format!(
            "challenge without a passkey: {}",
            decision.reasons
        ))),
        "block" => Some(Transition::Cancel {
            by: RISK_ACTOR.into(),
        }),
        _ => None,
    }
}

/// The `change.cancelled` event for a change that just closed without applying.
pub(crate) fn cancelled_event(actor: &Actor, closed: &PendingChange) -> Option<EventBody> {
    let event_ref = closed.event_id.clone()?;
    let by = match &closed.status {
        PendingStatus::Cancelled { by, .. } => cancelled_by(actor, by),
        PendingStatus::Failed { .. } => CancelledBy::System,
        _ => return None,
    };
    Some(EventBody::ChangeCancelled { event_ref, by })
}

/// Whether the risk engine holds the change (a release then takes two operators).
pub(super) fn engine_held(status: &PendingStatus) -> bool {
    matches!(status, PendingStatus::Held { by, .. } if by == RISK_ACTOR)
}

/// Who the contract says cancelled: the service itself; the customer (by link, in the security
/// center, or through the exchange's own app acting for them); or an operator.
fn cancelled_by(actor: &Actor, by: &str) -> CancelledBy {
    let customer = matches!(
        actor.kind(),
        ActorKind::Customer { .. }
            | ActorKind::Operator {
                role: Role::Integration
            }
    );
    if by == RISK_ACTOR || by == "system" {
        CancelledBy::System
    } else if customer || by.starts_with("customer:") {
        CancelledBy::Customer
    } else {
        CancelledBy::Operator
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
        TransitionError::Closed(_) => ErrorCode::ChangeClosed,
        TransitionError::NotHeld => ErrorCode::ChangeNotHeld,
        TransitionError::IsHeld => ErrorCode::ChangeHeld,
        TransitionError::NotDue => ErrorCode::ChangeNotDue,
    };
    AppError::invalid(code, error.to_string())
}
