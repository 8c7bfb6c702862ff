//! The analyst console's storage: operators' enrolment links, passkeys, WebAuthn ceremonies and
//! sessions (only hashes of tokens are kept), the queue's assignments, and the reads the queue
//! and the case view are made of.

use super::{PendingChange, StoreResult, StoredDecision, StoredEvent};
use async_trait::async_trait;
use portcullis_core::guard::WithdrawalReview;
use portcullis_core::time::UnixMillis;

/// A single-use link an operator enrols a passkey from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnrolmentLink {
    /// SHA-256 (hex) of the link's token.
    pub token_hash: String,
    pub operator: String,
    pub created_by: String,
    pub created_at: UnixMillis,
    pub expires_at: UnixMillis,
    pub used_at: Option<UnixMillis>,
}

/// An operator's passkey (webauthn-rs' serialised credential: public key and counter only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperatorPasskey {
    pub credential_id: String,
    pub operator: String,
    pub passkey: String,
    pub created_at: UnixMillis,
    pub last_used_at: Option<UnixMillis>,
}

/// An operator's WebAuthn ceremony in flight: `registration` (enrolment) or `authentication`
/// (sign-in), answered once before it expires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperatorCeremony {
    pub id: String,
    pub operator: String,
    pub kind: String,
    pub state: String,
    pub expires_at: UnixMillis,
    pub used_at: Option<UnixMillis>,
}

/// An operator's console session: ends at `expires_at`, or after idling too long since
/// `last_seen_at`, or when revoked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperatorSession {
    /// SHA-256 (hex) of the cookie's token.
    pub token_hash: String,
    pub operator: String,
    pub created_at: UnixMillis,
    pub last_seen_at: UnixMillis,
    pub expires_at: UnixMillis,
    pub revoked_at: Option<UnixMillis>,
}

/// Who works a queue item (`alert:<id>`, `change:<id>`, `withdrawal:<event id>`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assignment {
    pub item: String,
    pub assignee: String,
    pub assigned_by: String,
    pub assigned_at: UnixMillis,
}

/// A held withdrawal: a `withdrawal.requested` event the engine decided to hold, with the
/// operators' review of it when one started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldWithdrawal {
    pub event: StoredEvent,
    pub decision: StoredDecision,
    pub review: Option<WithdrawalReview>,
}

/// The console's writes, inside [`super::Write::Console`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConsoleWrite {
    InsertEnrolmentLink(EnrolmentLink),
    /// Uses an enrolment link: a conflict when it already was.
    SpendEnrolmentLink {
        token_hash: String,
        at: UnixMillis,
    },
    InsertPasskey(OperatorPasskey),
    /// The credential's new state (signature counter) after a sign-in.
    UpdatePasskey {
        credential_id: String,
        passkey: String,
        at: UnixMillis,
    },
    InsertCeremony(OperatorCeremony),
    /// Marks a ceremony answered: a conflict when it already was.
    SpendCeremony {
        id: String,
        at: UnixMillis,
    },
    InsertSession(OperatorSession),
    /// Moves a live session's `last_seen_at` on (its idle timeout starts again).
    TouchSession {
        token_hash: String,
        at: UnixMillis,
    },
    RevokeSession {
        token_hash: String,
        at: UnixMillis,
    },
    /// Assigns a queue item (replacing any assignment it had).
    Assign(Assignment),
    Unassign {
        item: String,
    },
    /// Writes a withdrawal's review: inserts it when `previous_version` is `None`, else
    /// replaces the row still at that version; a conflict when someone got there first.
    PutWithdrawalReview {
        review: WithdrawalReview,
        previous_version: Option<i64>,
    },
}

#[async_trait]
pub trait ConsoleStore: Send + Sync {
    async fn enrolment_link(&self, token_hash: &str) -> StoreResult<Option<EnrolmentLink>>;
    async fn operator_passkeys(&self, operator: &str) -> StoreResult<Vec<OperatorPasskey>>;
    async fn operator_ceremony(&self, id: &str) -> StoreResult<Option<OperatorCeremony>>;
    async fn operator_session(&self, token_hash: &str) -> StoreResult<Option<OperatorSession>>;
    /// The assignments of `items` (those that have one).
    async fn assignments(&self, items: &[String]) -> StoreResult<Vec<Assignment>>;
    /// Pending and held changes of every account, oldest first, at most `limit`.
    async fn open_changes(&self, limit: u32) -> StoreResult<Vec<PendingChange>>;
    /// Held withdrawals whose review is not finished (none yet, or one approval), of
    /// `account` or of every account, newest first, at most `limit`.
    async fn held_withdrawals(
        &self,
        account: Option<&str>,
        limit: u32,
    ) -> StoreResult<Vec<HeldWithdrawal>>;
    /// The held withdrawal decided for event `event_id`, whatever its review: `None` when that
    /// event is not a withdrawal the engine held.
    async fn held_withdrawal(&self, event_id: &str) -> StoreResult<Option<HeldWithdrawal>>;
    /// The account's latest events (newest first, at most `limit`) with their decisions.
    async fn account_history(
        &self,
        account: &str,
        limit: u32,
    ) -> StoreResult<Vec<(StoredEvent, Option<StoredDecision>)>>;
}
