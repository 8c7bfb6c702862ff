//! Risk policies as stored versions (maker-checker: one operator proposes, another publishes),
//! and the reads of the event log a backtest replays.

use super::{StoreResult, StoredEvent};
use async_trait::async_trait;
use portcullis_core::audit::AuditEntry;
use portcullis_core::time::UnixMillis;

/// One proposed version of the risk policy; published once a second operator approved it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyVersion {
    /// 1, 2, ... in the order proposed.
    pub version: i64,
    /// The policy file, as proposed.
    pub text: String,
    pub note: String,
    /// The earlier version this one proposes again (a rollback).
    pub rollback_of: Option<i64>,
    pub proposed_by: String,
    pub proposed_at: UnixMillis,
    pub approved_by: Option<String>,
    pub published_at: Option<UnixMillis>,
    /// The order of publication (1, 2, ...): the published version with the highest is in
    /// force. `None` while only proposed.
    pub publication: Option<i64>,
}

/// The policy writes, inside [`super::Write::Policy`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PolicyWrite {
    /// A new version: a conflict when its number is taken.
    Propose(PolicyVersion),
    /// Publishes a proposed version as publication `publication`: a conflict when it was
    /// published already or the publication number is taken (another process published).
    Publish {
        version: i64,
        approved_by: String,
        at: UnixMillis,
        publication: i64,
    },
}

/// The stored events whose time falls in a range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct EventSpan {
    pub count: i64,
    /// The log positions of the first and last of them (0 when there are none).
    pub first_seq: i64,
    pub last_seq: i64,
}

#[async_trait]
pub trait PolicyStore: Send + Sync {
    /// Versions, newest first, at most `limit`.
    async fn policy_versions(&self, limit: u32) -> StoreResult<Vec<PolicyVersion>>;
    async fn policy_version(&self, version: i64) -> StoreResult<Option<PolicyVersion>>;
    /// The highest version number (0: none).
    async fn latest_policy_version(&self) -> StoreResult<i64>;
    /// The version in force: the published one with the highest publication number.
    async fn published_policy(&self) -> StoreResult<Option<PolicyVersion>>;
    /// The highest publication number (0: nothing published): cheap, for processes that
    /// check whether another one published.
    async fn latest_publication(&self) -> StoreResult<i64>;
    /// The newest audit entries about the policy (targets `policy:...`), newest first.
    async fn policy_audit(&self, limit: u32) -> StoreResult<Vec<AuditEntry>>;
    /// How many events have `from <= ts < to`, and where they are in the log.
    async fn event_span(&self, from: UnixMillis, to: UnixMillis) -> StoreResult<EventSpan>;
    /// Events with `from <= ts < to` and `after < seq <= upto`, in log order, at most `limit`.
    async fn events_between(
        &self,
        from: UnixMillis,
        to: UnixMillis,
        after: i64,
        upto: i64,
        limit: u32,
    ) -> StoreResult<Vec<StoredEvent>>;
}
