//! Operators' review of withdrawals the risk engine held (`POST /v1/withdrawals/{event}/release`
//! and `/cancel`, and the console's buttons). A release needs two different operators, a cancel
//! one (`portcullis_core::guard::withdrawal_review`); each step is audited, and a finished
//! review is announced to the customer and, through the signed webhook, to the exchange, which
//! executes or drops the withdrawal it kept pending.

use super::Guard;
use super::stepup::target;
use super::withdrawal_alerts::withdrawal_notice;
use crate::ErrorCode;
use crate::access::Actor;
use crate::changes::Change;
use crate::error::{AppError, AppResult};
use crate::notify::announce;
use crate::ports::{ConsoleWrite, HeldWithdrawal, Write};
use portcullis_core::contract::parse_line;
use portcullis_core::guard::withdrawal_review::{self, ReviewAction, ReviewRefusal};
use portcullis_core::guard::{ReviewState, WithdrawalReview};
use portcullis_core::notice::NoticeKind;
use portcullis_core::operator::Permission;
use serde_json::json;

impl Guard {
    /// The first operator's approval of releasing a held withdrawal, or the second operator's
    /// release (never the same operator's).
    pub async fn release_withdrawal(
        &self,
        actor: &Actor,
        event_id: &str,
    ) -> AppResult<WithdrawalReview> {
        self.review_withdrawal(actor, event_id, ReviewAction::Release)
            .await
    }

    /// Cancels a held withdrawal: the exchange must not send it.
    pub async fn cancel_withdrawal(
        &self,
        actor: &Actor,
        event_id: &str,
    ) -> AppResult<WithdrawalReview> {
        self.review_withdrawal(actor, event_id, ReviewAction::Cancel)
            .await
    }

    /// A held withdrawal and its review so far.
    pub async fn held_withdrawal(
        &self,
        actor: &Actor,
        event_id: &str,
    ) -> AppResult<HeldWithdrawal> {
        actor.require(Permission::ReadEvents)?;
        let held = self.existing_hold(event_id).await?;
        actor.access_account(Permission::ReadEvents, held_account(&held)?)?;
        Ok(held)
    }

    async fn review_withdrawal(
        &self,
        actor: &Actor,
        event_id: &str,
        action: ReviewAction,
    ) -> AppResult<WithdrawalReview> {
        // Cancelling protects the customer, so it takes what freezing takes; releasing lets
        // money go, so it takes a reviewer.
        let permission = match action {
            ReviewAction::Release => Permission::ReviewChanges,
            ReviewAction::Cancel => Permission::ProtectAccounts,
        };
        actor.require(permission)?;
        let held = self.existing_hold(event_id).await?;
        let account = held_account(&held)?.to_owned();
        let access = actor.access_account(permission, &account)?;
        if action == ReviewAction::Release {
            self.refuse_while_frozen(&account).await?;
        }
        let now = self.clock.now();
        let review = withdrawal_review::next(
            held.review.as_ref(),
            event_id,
            &account,
            action,
            actor.id(),
            now,
        )
        .map_err(refusal)?;
        let audit = match review.state {
            ReviewState::Approved => "withdrawal.release_approved",
            ReviewState::Released => "withdrawal.released",
            ReviewState::Cancelled => "withdrawal.cancelled",
        };
        let mut commit = Change::new(&access, now)
            .write(Write::Console(ConsoleWrite::PutWithdrawalReview {
                review: review.clone(),
                previous_version: held.review.as_ref().map(|r| r.version),
            }))
            .audit(audit, target(&account), review_details(&held, &review));
        let kind = match review.state {
            ReviewState::Approved => None,
            ReviewState::Released => Some(NoticeKind::WithdrawalReleased),
            ReviewState::Cancelled => Some(NoticeKind::WithdrawalCancelled),
        };
        // Accounts the exchange has not registered with Portcullis have no channel.
        if let Some(kind) = kind
            && let Some(customer) = self.store.account(&account).await?
            && let Ok(event) = parse_line(&held.event.event.body)
        {
            let mut notice = withdrawal_notice(&event, kind, now);
            notice.occurred_at = now;
            for write in announce(&customer, &notice, &self.channels, now) {
                commit = commit.write(write);
            }
        }
        self.store.commit(commit.into_set()).await?;
        Ok(review)
    }

    /// Voids the first approval of every held withdrawal of `account` whose release one
    /// operator has approved, with `reason` (the network path) in the audit: the evidence
    /// arrived after that approval, so the release starts over with it in view instead of
    /// being completed by one more operator. Returns how many approvals it voided.
    pub(super) async fn void_release_approvals(
        &self,
        account: &str,
        reason: &str,
    ) -> AppResult<usize> {
        let system = Actor::system();
        let access = system.access_account(Permission::ReviewChanges, account)?;
        let mut voided = 0;
        for held in self.store.held_withdrawals(Some(account), 200).await? {
            let now = self.clock.now();
            let Some(current) = held.review.as_ref() else {
                continue;
            };
            let Some(review) = withdrawal_review::void_approval(current, now) else {
                continue;
            };
            let mut details = review_details(&held, &review);
            details["voided_approval_of"] = json!(current.approved_by);
            details["reason"] = json!(reason);
            // A concurrent review step makes this commit fail on the version: the caller
            // requeues the propagation and the next pass voids it again (fail closed).
            let commit = Change::new(&access, now)
                .write(Write::Console(ConsoleWrite::PutWithdrawalReview {
                    review,
                    previous_version: Some(current.version),
                }))
                .audit(
                    "withdrawal.release_approval_voided",
                    target(account),
                    details,
                );
            self.store.commit(commit.into_set()).await?;
            voided += 1;
        }
        Ok(voided)
    }

    /// A frozen account moves no money: its held withdrawals wait for the unfreeze (and its
    /// cool-down) like everything else that could drain it.
    async fn refuse_while_frozen(&self, account: &str) -> AppResult<()> {
        let frozen = self
            .store
            .guard(account)
            .await?
            .is_some_and(|guard| guard.protection.is_frozen());
        if frozen {
            return Err(AppError::invalid(
                ErrorCode::AccountProtected,
                "the account is frozen: its held withdrawals cannot be released until it is unfrozen (cancelling still works)",
            ));
        }
        Ok(())
    }

    async fn existing_hold(&self, event_id: &str) -> AppResult<HeldWithdrawal> {
        self.store
            .held_withdrawal(event_id)
            .await?
            .ok_or_else(|| AppError::NotFound(format!("held withdrawal {event_id}")))
    }
}

/// A held withdrawal in one line: `40 USDT (about 40.00 USD) to TQ... on TRX`.
pub fn describe_withdrawal(held: &HeldWithdrawal) -> String {
    let body: serde_json::Value = serde_json::from_str(&held.event.event.body).unwrap_or_default();
    let text = |key: &str| body[key].as_str().unwrap_or("").to_owned();
    format!(
        "{} {} (about {:.2} USD) to {} on {}",
        text("amount"),
        text("asset"),
        body["amount_usd"].as_f64().unwrap_or(0.0),
        text("address"),
        text("network")
    )
}

fn held_account(held: &HeldWithdrawal) -> AppResult<&str> {
    held.event
        .event
        .account
        .as_deref()
        .ok_or_else(|| AppError::Internal("a held withdrawal without an account".into()))
}

fn refusal(refused: ReviewRefusal) -> AppError {
    match refused {
        ReviewRefusal::Finished(state) => AppError::Conflict(format!(
            "this withdrawal's review is over: it was {}",
            state.as_str()
        )),
        ReviewRefusal::SameOperator => AppError::invalid(
            ErrorCode::SecondOperatorRequired,
            "you approved this release already: a withdrawal the risk engine held needs a second operator to release it",
        ),
    }
}

fn review_details(held: &HeldWithdrawal, review: &WithdrawalReview) -> serde_json::Value {
    let body: serde_json::Value =
        serde_json::from_str(&held.event.event.body).unwrap_or(serde_json::Value::Null);
    json!({
        "event_id": review.event_id,
        "withdrawal_id": body["withdrawal_id"],
        "amount_usd": body["amount_usd"],
        "state": review.state.as_str(),
        "approved_by": review.approved_by,
        "resolved_by": review.resolved_by,
        "held_for": held.decision.reasons,
    })
}
