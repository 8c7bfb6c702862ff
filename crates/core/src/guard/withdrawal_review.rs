//! An operator's review of a withdrawal the risk engine held. Releasing it takes two different
//! operators (the first approves, the second completes: a fake "support agent" who has talked
//! one insider round cannot move the money alone); cancelling takes one, at any point before
//! the review is finished; a finished review never changes again. Pure: `now` is an argument.

use crate::time::UnixMillis;

/// Where a review stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReviewState {
    /// One operator approved the release; it waits for a second.
    Approved,
    /// Released by a second operator: the exchange may execute the withdrawal.
    Released,
    /// Cancelled: the exchange must not execute it.
    Cancelled,
}

impl ReviewState {
    pub const fn as_str(self) -> &'static str {
        match self {
            ReviewState::Approved => "approved",
            ReviewState::Released => "released",
            ReviewState::Cancelled => "cancelled",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [Self::Approved, Self::Released, Self::Cancelled]
            .into_iter()
            .find(|state| state.as_str() == text)
    }

    pub const fn is_finished(self) -> bool {
        !matches!(self, ReviewState::Approved)
    }
}

/// The review of one held withdrawal (named by the id of its `withdrawal.requested` event).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WithdrawalReview {
    pub event_id: String,
    pub account: String,
    pub state: ReviewState,
    /// The operator who approved the release first.
    pub approved_by: Option<String>,
    /// The operator (or customer) who released or cancelled it.
    pub resolved_by: Option<String>,
    pub updated_at: UnixMillis,
    /// Starts at 1; each step adds one (optimistic concurrency).
    pub version: i64,
}

/// What an operator asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReviewAction {
    Release,
    Cancel,
}

/// Why a step is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReviewRefusal {
    /// The review is over.
    Finished(ReviewState),
    /// The operator who approved the release cannot also complete it.
    SameOperator,
}

/// The review after `who` asks for `action` on a held withdrawal whose review is `current`.
pub fn next(
    current: Option<&WithdrawalReview>,
    event_id: &str,
    account: &str,
    action: ReviewAction,
    who: &str,
    now: UnixMillis,
) -> Result<WithdrawalReview, ReviewRefusal> {
    let start = WithdrawalReview {
        event_id: event_id.to_owned(),
        account: account.to_owned(),
        state: ReviewState::Approved,
        approved_by: None,
        resolved_by: None,
        updated_at: now,
        version: 0,
    };
    let current = current.unwrap_or(&start);
    if current.version > 0 && current.state.is_finished() {
        return Err(ReviewRefusal::Finished(current.state));
    }
    let mut next = WithdrawalReview {
        updated_at: now,
        version: current.version + 1,
        ..current.clone()
    };
    match (action, current.approved_by.as_deref()) {
        (ReviewAction::Cancel, _) => {
            next.state = ReviewState::Cancelled;
            next.resolved_by = Some(who.to_owned());
        }
        (ReviewAction::Release, None) => {
            next.state = ReviewState::Approved;
            next.approved_by = Some(who.to_owned());
        }
        (ReviewAction::Release, Some(first)) if first == who => {
            return Err(ReviewRefusal::SameOperator);
        }
        (ReviewAction::Release, Some(_)) => {
            next.state = ReviewState::Released;
            next.resolved_by = Some(who.to_owned());
        }
    }
    Ok(next)
}

/// The review after new evidence (a confirmed fraud or a forced mark reaching the account)
/// voids a first operator's approval: the release starts over, so a second operator cannot
/// complete it on the strength of an approval given without that evidence. `None` when there
/// is no approval to void (no review yet, or a finished one).
pub fn void_approval(current: &WithdrawalReview, now: UnixMillis) -> Option<WithdrawalReview> {
    if current.state != ReviewState::Approved || current.approved_by.is_none() {
        return None;
    }
    Some(WithdrawalReview {
        approved_by: None,
        updated_at: now,
        version: current.version + 1,
        ..current.clone()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: UnixMillis = UnixMillis(1_700_000_000_000);

    fn step(
        current: Option<&WithdrawalReview>,
        action: ReviewAction,
        who: &str,
    ) -> Result<WithdrawalReview, ReviewRefusal> {
        next(current, "ev1", "acc_1", action, who, NOW)
    }

    #[test]
    fn a_release_needs_two_different_operators() {
        let approved = step(None, ReviewAction::Release, "op_a").unwrap();
        assert_eq!(approved.state, ReviewState::Approved);
        assert_eq!(approved.approved_by.as_deref(), Some("op_a"));
        assert_eq!(approved.version, 1);
        assert_eq!(
            step(Some(&approved), ReviewAction::Release, "op_a"),
            Err(ReviewRefusal::SameOperator)
        );
        let released = step(Some(&approved), ReviewAction::Release, "op_b").unwrap();
        assert_eq!(released.state, ReviewState::Released);
        assert_eq!(released.approved_by.as_deref(), Some("op_a"));
        assert_eq!(released.resolved_by.as_deref(), Some("op_b"));
        assert_eq!(released.version, 2);
    }

    #[test]
    fn one_operator_cancels_even_after_approving_a_release() {
        let cancelled = step(None, ReviewAction::Cancel, "op_a").unwrap();
        assert_eq!(cancelled.state, ReviewState::Cancelled);
        let approved = step(None, ReviewAction::Release, "op_a").unwrap();
        let cancelled = step(Some(&approved), ReviewAction::Cancel, "op_a").unwrap();
        assert_eq!(cancelled.state, ReviewState::Cancelled);
        assert_eq!(cancelled.resolved_by.as_deref(), Some("op_a"));
    }

    #[test]
    fn a_finished_review_never_changes() {
        let approved = step(None, ReviewAction::Release, "op_a").unwrap();
        let released = step(Some(&approved), ReviewAction::Release, "op_b").unwrap();
        let cancelled = step(None, ReviewAction::Cancel, "op_a").unwrap();
        for action in [ReviewAction::Release, ReviewAction::Cancel] {
            assert_eq!(
                step(Some(&released), action, "op_c"),
                Err(ReviewRefusal::Finished(ReviewState::Released))
            );
            assert_eq!(
                step(Some(&cancelled), action, "op_c"),
                Err(ReviewRefusal::Finished(ReviewState::Cancelled))
            );
        }
    }

    #[test]
    fn states_read_back_from_their_names() {
        for state in [
            ReviewState::Approved,
            ReviewState::Released,
            ReviewState::Cancelled,
        ] {
            assert_eq!(ReviewState::parse(state.as_str()), Some(state));
        }
        assert_eq!(ReviewState::parse("held"), None);
    }

    #[test]
    fn new_evidence_voids_a_first_approval_only() {
        let approved = step(None, ReviewAction::Release, "op_a").unwrap();
        let voided = void_approval(&approved, NOW).unwrap();
        assert_eq!(voided.approved_by, None);
        assert_eq!(voided.version, 2);
        // The approver's second click is a first approval again, not a release.
        let again = step(Some(&voided), ReviewAction::Release, "op_b").unwrap();
        assert_eq!(again.state, ReviewState::Approved);
        assert_eq!(again.approved_by.as_deref(), Some("op_b"));
        assert_eq!(void_approval(&voided, NOW), None);
        let cancelled = step(Some(&approved), ReviewAction::Cancel, "op_b").unwrap();
        assert_eq!(void_approval(&cancelled, NOW), None);
    }
}
