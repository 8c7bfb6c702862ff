//! The ports the use cases talk through: storage (one trait per aggregate plus one atomic
//! commit), the clock and randomness. Adapters live elsewhere (`portcullis-store` for storage);
//! the use cases never name a backend.
//!
//! Every change is written with [`Store::commit`]: the rows it touches, the audit entries that
//! record it and the events it emits go in one transaction, so a change is never half-written
//! and never happens without its audit entry.

mod console;
mod digest;
mod outbox;
mod partitions;
mod policy;
mod push;
mod write;

pub use crate::guard::model::{
    AccountGuard, Ceremony, CeremonyKind, CustomerSession, FreezeLink, PendingAction,
    PendingChange, SealedBlob, SignInLink, StepUpGrant, StoredPasskey, TotpEnrolment,
    WithdrawalAddress,
};
use async_trait::async_trait;
pub use console::{
    Assignment, ConsoleStore, ConsoleWrite, EnrolmentLink, HeldWithdrawal, OperatorCeremony,
    OperatorPasskey, OperatorSession,
};
pub use digest::{DigestStore, DigestSubscription};
pub use outbox::{
    Channel, ClaimRequest, OutboxEntry, OutboxFilter, OutboxMessage, OutboxStatus, OutboxStore,
};
pub use partitions::{
    EventAcker, EventFeed, EventSource, FactBatch, FactBus, Lease, LeaseStore, StreamEvent,
};
pub use policy::{EventSpan, PolicyStore, PolicyVersion, PolicyWrite};
use portcullis_core::account::Account;
use portcullis_core::audit::{AuditEntry, ChainHead};
use portcullis_core::key::ApiKey;
use portcullis_core::operator::Role;
use portcullis_core::time::UnixMillis;
pub use push::{ChangeBus, Pushed};
use std::net::IpAddr;
pub use write::{ChangeSet, Write};

/// What a storage backend can fail with.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A row that must exist does not.
    #[error("{0} not found")]
    NotFound(String),
    /// A unique value is taken, or the row changed since it was read (optimistic concurrency).
    #[error("conflict: {0}")]
    Conflict(String),
    /// A write tried to change what never changes (a key's `api_key`, account or algorithm);
    /// nothing was written.
    #[error("immutable: {0}")]
    Immutable(String),
    /// The backend failed; the message is for logs, never for API clients.
    #[error("storage backend error: {0}")]
    Backend(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

/// An operator of the exchange (a person or a system) and the hash of their bearer token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operator {
    pub id: String,
    pub name: String,
    pub role: Role,
    /// Lowercase hex SHA-256 of the token; the token itself is never stored.
    pub token_hash: String,
    pub created_at: UnixMillis,
    pub revoked_at: Option<UnixMillis>,
}

/// One generation of an HMAC key's secret, sealed with a master key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedSecret {
    pub key_id: String,
    /// 1 for the first secret, +1 on every rotation.
    pub generation: i64,
    /// Which master key sealed it (so master keys can rotate).
    pub master_key_id: String,
    pub nonce: Vec<u8>,
    /// AEAD ciphertext with its tag.
    pub ciphertext: Vec<u8>,
    pub created_at: UnixMillis,
    /// `None` while current; the end of the rotation overlap once replaced.
    pub valid_until: Option<UnixMillis>,
}

/// An event on its way into the internal event log, already in the contract's JSON form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEvent {
    pub id: String,
    pub ts: UnixMillis,
    pub account: Option<String>,
    pub event_type: String,
    /// One JSON line, exactly as a feed would carry it.
    pub body: String,
}

/// An event as stored, with its position in the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEvent {
    pub seq: i64,
    pub event: NewEvent,
}

/// The latest use of a key, flushed in batches from the verifier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyUsage {
    pub key_id: String,
    pub at: UnixMillis,
    pub ip: Option<IpAddr>,
}

/// A risk decision as stored: the verdict, its reasons and the features the rules saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredDecision {
    pub event_id: String,
    /// Event time of the decided event.
    pub decided_at: UnixMillis,
    pub decision: String,
    pub score: i64,
    /// JSON array of rule ids.
    pub reasons: String,
    /// JSON object of feature values.
    pub features: String,
}

/// The risk engine's state as of a position in the event log: restarting from it, the engine
/// applies only the log entries after `seq`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineCheckpoint {
    /// Which engine (one name per partition; the single engine is `risk`).
    pub name: String,
    /// The last log position the state includes.
    pub seq: i64,
    /// The engine's own encoding of its state (`Engine::checkpoint`).
    pub state: Vec<u8>,
}

/// An official contact of the exchange as stored (`portcullis_contacts::OfficialEntry` with who
/// added it and when).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredOfficialContact {
    pub entry: portcullis_contacts::OfficialEntry,
    pub created_at: UnixMillis,
    pub created_by: String,
}

/// What a stretch of the event log adds to one reported contact's counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportTally {
    /// The kind the contact was normalised as (`phone`, `email`, `domain`, `url`, `handle`), or
    /// `unreadable` for a value that is not a contact the verifier can read (kept as written).
    pub kind: String,
    pub value: String,
    pub reports: i64,
    pub public_reports: i64,
    pub confirmed_frauds: i64,
    pub first_seen: UnixMillis,
    pub last_seen: UnixMillis,
    /// From the latest report: who the contact claimed to be, and where it came through.
    pub last_claimed: String,
    pub last_channel: String,
}

/// An event a partition did not decide because one engine ignores it
/// (docs/design/partitioning.md, "Ids").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IgnoredEvent {
    pub event_id: String,
    /// `duplicate` (its id was used by an earlier event) or `late` (older than the dedup
    /// horizon behind the newest event).
    pub reason: String,
    /// The event's own time.
    pub event_ts: UnixMillis,
}

/// An operator's override on an entity of the graph (`portcullis_engine::Override`), with who
/// set it and who lifted it. Never deleted: replays need the past ones.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredOverride {
    pub id: String,
    /// `account`, `address`, `ip`, `device` or `number`.
    pub kind: String,
    /// Canonical (`EntityKind::canonical`).
    pub value: String,
    /// `suppress` or `force`.
    pub action: String,
    pub note: String,
    pub set_by: String,
    pub set_at: UnixMillis,
    pub expires_at: Option<UnixMillis>,
    pub lifted_by: Option<String>,
    pub lifted_at: Option<UnixMillis>,
}

/// A campaign alert as stored (`portcullis_engine::Alert`, its evidence as JSON).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredAlert {
    pub id: String,
    pub kind: String,
    pub entity_kind: String,
    pub value: String,
    pub opened_at: UnixMillis,
    pub updated_at: UnixMillis,
    pub unrelated_accounts: i64,
    pub evidence: String,
    pub confirmed_by: Option<String>,
    pub confirmed_at: Option<UnixMillis>,
}

#[async_trait]
pub trait OperatorStore: Send + Sync {
    async fn operator_by_token_hash(&self, token_hash: &str) -> StoreResult<Option<Operator>>;
    async fn operator(&self, id: &str) -> StoreResult<Option<Operator>>;
    async fn list_operators(&self) -> StoreResult<Vec<Operator>>;
}

#[async_trait]
pub trait AccountStore: Send + Sync {
    async fn account(&self, id: &str) -> StoreResult<Option<Account>>;
    /// Accounts ordered by id, starting after `after`.
    async fn list_accounts(&self, after: Option<&str>, limit: u32) -> StoreResult<Vec<Account>>;
}

#[async_trait]
pub trait KeyStore: Send + Sync {
    async fn key(&self, key_id: &str) -> StoreResult<Option<ApiKey>>;
    async fn key_by_api_key(&self, api_key: &str) -> StoreResult<Option<ApiKey>>;
    async fn keys_for_account(&self, account: &str) -> StoreResult<Vec<ApiKey>>;
    /// Keys written after change number `after`, with the largest number returned; lets other
    /// processes follow changes. Every insert or update takes a new number, and numbers grow in
    /// commit order (a commit never becomes visible with a number below one already seen).
    async fn keys_changed_since(&self, after: i64) -> StoreResult<(Vec<ApiKey>, i64)>;
    /// Every secret generation of a key, newest first.
    async fn secrets(&self, key_id: &str) -> StoreResult<Vec<SealedSecret>>;
    /// Secrets not sealed by `master_key_id`, at most `limit` (for re-wrapping).
    async fn secrets_not_sealed_by(
        &self,
        master_key_id: &str,
        limit: u32,
    ) -> StoreResult<Vec<SealedSecret>>;
    /// Stores the latest use of each key, ignoring uses older than what is stored. Usage is
    /// telemetry: it bumps neither the version nor the change number.
    async fn record_key_usage(&self, usage: &[KeyUsage]) -> StoreResult<()>;
    /// A signal each time another process may have committed a key change (and after a lost
    /// connection, when one may have been missed), where the backend can push one; `None`
    /// where it cannot, and polling `keys_changed_since` is all there is.
    async fn watch_key_changes(&self) -> StoreResult<Option<tokio::sync::mpsc::Receiver<()>>> {
        Ok(None)
    }
}

#[async_trait]
pub trait AuditStore: Send + Sync {
    /// Entries with `seq > after`, in `seq` order, at most `limit`.
    async fn audit_entries(&self, after: i64, limit: u32) -> StoreResult<Vec<AuditEntry>>;
    /// The newest entries about an account or one of its keys, newest first, at most `limit`.
    async fn audit_for_account(&self, account: &str, limit: u32) -> StoreResult<Vec<AuditEntry>>;
    async fn audit_head(&self) -> StoreResult<Option<ChainHead>>;
}

#[async_trait]
pub trait EventLog: Send + Sync {
    /// Events with `seq > after`, in order, at most `limit`.
    async fn events_after(&self, after: i64, limit: u32) -> StoreResult<Vec<StoredEvent>>;
    /// Appends, in one transaction and in order, every event whose id the log does not hold
    /// yet. Returns, for each event, whether it was appended: `false` when its id was already
    /// logged or came earlier in `events`.
    async fn append_new_events(&self, events: Vec<NewEvent>) -> StoreResult<Vec<bool>> {
        let positions = self
            .append_new_events_then(events, &mut |_| Vec::new())
            .await?;
        Ok(positions.iter().map(Option::is_some).collect())
    }
    /// [`EventLog::append_new_events`], and in the same transaction the decisions `then`
    /// makes of where each event landed (its log position, `None` when not appended): a
    /// caller stores what it decides from the events with them, all or nothing. A decision for
    /// an event that has one already keeps the stored one. Returns the positions.
    async fn append_new_events_then(
        &self,
        events: Vec<NewEvent>,
        then: &mut (dyn FnMut(Vec<Option<i64>>) -> Vec<StoredDecision> + Send),
    ) -> StoreResult<Vec<Option<i64>>>;
}

/// A replay guard shared by every node, for gateways that cannot send one key's requests to
/// one node: each node still keeps its own guard, and a signature it accepts must also be new
/// here.
#[async_trait]
pub trait SharedReplayGuard: Send + Sync + std::fmt::Debug {
    /// Records `key` for `ttl_ms` unless it is recorded already: `Ok(true)` the first time,
    /// `Ok(false)` when it is. `Err` when the guard cannot answer (the caller refuses the
    /// request: fail closed).
    async fn first_use(&self, key: &str, ttl_ms: u64) -> Result<bool, String>;
}

#[async_trait]
pub trait DecisionStore: Send + Sync {
    async fn decision(&self, event_id: &str) -> StoreResult<Option<StoredDecision>>;
    /// Whether a partition recorded the event as ignored (`Write::RecordIgnored`).
    async fn ignored_event(&self, event_id: &str) -> StoreResult<Option<IgnoredEvent>>;
    /// Stored decisions in the order of their events in the log, with the event's log position:
    /// those of events at positions after `after`, at most `limit`.
    async fn decisions_after(
        &self,
        after: i64,
        limit: u32,
    ) -> StoreResult<Vec<(i64, StoredDecision)>>;
    /// The latest checkpoint of the engine `name`.
    async fn checkpoint(&self, name: &str) -> StoreResult<Option<EngineCheckpoint>>;
}

#[async_trait]
pub trait AlertStore: Send + Sync {
    /// Alerts updated before `before` (all when `None`), latest first.
    async fn alerts(&self, before: Option<UnixMillis>, limit: u32)
    -> StoreResult<Vec<StoredAlert>>;
    async fn alert(&self, id: &str) -> StoreResult<Option<StoredAlert>>;
    /// Every override ever set, oldest first.
    async fn overrides(&self) -> StoreResult<Vec<StoredOverride>>;
}

#[async_trait]
pub trait GuardStore: Send + Sync {
    async fn guard(&self, account: &str) -> StoreResult<Option<AccountGuard>>;
    /// Guards with a TOTP enrolment, by account after `after`, in account order (for re-wrapping
    /// their secrets under a new master key).
    async fn totp_guards_after(&self, after: &str, limit: u32) -> StoreResult<Vec<AccountGuard>>;
    async fn pending_change(&self, id: &str) -> StoreResult<Option<PendingChange>>;
    async fn pending_by_cancel_token(&self, token_hash: &str)
    -> StoreResult<Option<PendingChange>>;
    /// The account's changes, newest first, at most `limit`.
    async fn pending_for_account(
        &self,
        account: &str,
        limit: u32,
    ) -> StoreResult<Vec<PendingChange>>;
    /// Changes still `pending` (not held) whose time has come, oldest first.
    async fn due_pending(&self, now: UnixMillis, limit: u32) -> StoreResult<Vec<PendingChange>>;
    async fn grant(&self, token_hash: &str) -> StoreResult<Option<StepUpGrant>>;
    async fn addresses(&self, account: &str) -> StoreResult<Vec<WithdrawalAddress>>;
    async fn passkeys(&self, account: &str) -> StoreResult<Vec<StoredPasskey>>;
    async fn ceremony(&self, id: &str) -> StoreResult<Option<Ceremony>>;
    async fn sign_in_link(&self, token_hash: &str) -> StoreResult<Option<SignInLink>>;
    async fn freeze_link(&self, token_hash: &str) -> StoreResult<Option<FreezeLink>>;
    async fn customer_session(&self, token_hash: &str) -> StoreResult<Option<CustomerSession>>;
}

/// The official-contact registry and the report counts.
#[async_trait]
pub trait ContactStore: Send + Sync {
    /// Every official contact, oldest first.
    async fn official_contacts(&self) -> StoreResult<Vec<StoredOfficialContact>>;
    /// Reported contacts, most recently reported first, at most `limit`.
    async fn contact_reports(&self, limit: u32) -> StoreResult<Vec<ReportTally>>;
    /// Contacts named by a confirmed fraud, or reported from accounts at least `threshold`
    /// times.
    async fn scam_contacts(&self, threshold: i64) -> StoreResult<Vec<ReportTally>>;
    /// The last event-log position the report counts include.
    async fn contact_report_cursor(&self) -> StoreResult<i64>;
    /// The `contact.reported` and `fraud.confirmed` entries after `after`, at most `limit`, in
    /// order, and the position they reach: the last one's when `limit` were returned, else the
    /// end of the log as it was read (so a pass over a log of other events moves on too).
    async fn report_events_after(
        &self,
        after: i64,
        limit: u32,
    ) -> StoreResult<(Vec<StoredEvent>, i64)>;
}

/// The whole storage port.
#[async_trait]
pub trait Store:
    OperatorStore
    + AccountStore
    + KeyStore
    + AuditStore
    + EventLog
    + DecisionStore
    + AlertStore
    + GuardStore
    + OutboxStore
    + ContactStore
    + DigestStore
    + ConsoleStore
    + PolicyStore
    + LeaseStore
    + std::fmt::Debug
{
    /// Applies every write, appends the audit drafts to the chain (in order, after the current
    /// head) and the events to the log, all in one transaction. On any error nothing is written.
    async fn commit(&self, change: ChangeSet) -> StoreResult<()>;

    /// A short name for logs and metrics: `sqlite` or `postgres`.
    fn backend_name(&self) -> &'static str;

    /// Whether the backend answers (readiness).
    async fn ping(&self) -> StoreResult<()>;

    /// Seals again under the active master key up to `limit` values kept sealed at rest under
    /// another key, or still in plain text from before they were sealed (anti-phishing codes,
    /// notice bodies); returns how many. The adapter seals and opens these values itself, so
    /// use cases only ever see them in plain text.
    async fn reseal_at_rest(&self, limit: u32) -> StoreResult<u64>;
}

/// The wall clock, injected so the domain never reads it.
pub trait Clock: Send + Sync + std::fmt::Debug {
    fn now(&self) -> UnixMillis;
}
