//! The ports the use cases talk through: storage (one trait per aggregate plus one atomic
//! commit), the clock and randomness. Adapters live elsewhere (`portcullis-store` for storage);
//! the use cases never name a backend.
//!
//! Every change is written with [`Store::commit`]: the rows it touches, the audit entries that
//! record it and the events it emits go in one transaction, so a change is never half-written
//! and never happens without its audit entry.

use async_trait::async_trait;
use portcullis_core::account::Account;
use portcullis_core::audit::{AuditDraft, AuditEntry, ChainHead};
use portcullis_core::key::ApiKey;
use portcullis_core::operator::Role;
use portcullis_core::time::UnixMillis;
use std::net::IpAddr;

/// What a storage backend can fail with.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A row that must exist does not.
    #[error("{0} not found")]
    NotFound(String),
    /// A unique value is taken, or the row changed since it was read (optimistic concurrency).
    #[error("conflict: {0}")]
    Conflict(String),
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

/// One row-level write inside a [`ChangeSet`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Write {
    InsertOperator(Operator),
    RevokeOperator {
        id: String,
        at: UnixMillis,
    },
    InsertAccount(Account),
    /// Replaces the account's fields when its stored version is `expected_version`; stores
    /// `expected_version + 1`.
    UpdateAccount {
        account: Account,
        expected_version: i64,
    },
    /// A new key; `api_key` and `key_id` must be unused.
    InsertKey(ApiKey),
    /// Replaces the key's configuration (never its usage columns) when its stored version is
    /// `expected_version`; stores `expected_version + 1`.
    UpdateKey {
        key: ApiKey,
        expected_version: i64,
    },
    InsertSecret(SealedSecret),
    /// Ends a secret generation's validity (rotation overlap).
    SetSecretValidUntil {
        key_id: String,
        generation: i64,
        valid_until: UnixMillis,
    },
    /// Re-seals a secret under another master key, only if it is still sealed by
    /// `expected_master_key_id`.
    ResealSecret {
        secret: SealedSecret,
        expected_master_key_id: String,
    },
    /// Records a decision; a decision for the same event is kept as it was.
    InsertDecision(StoredDecision),
    /// Replaces the engine's checkpoint of the same name, unless the stored one covers a later
    /// log position (a slow writer never moves a checkpoint back).
    SaveCheckpoint(EngineCheckpoint),
}

/// Everything one change writes, committed atomically.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChangeSet {
    pub writes: Vec<Write>,
    pub audit: Vec<AuditDraft>,
    pub events: Vec<NewEvent>,
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
    /// Records that the owner was warned of idle expiry (telemetry, like usage).
    async fn mark_idle_warned(&self, key_id: &str, at: UnixMillis) -> StoreResult<()>;
}

#[async_trait]
pub trait AuditStore: Send + Sync {
    /// Entries with `seq > after`, in `seq` order, at most `limit`.
    async fn audit_entries(&self, after: i64, limit: u32) -> StoreResult<Vec<AuditEntry>>;
    async fn audit_head(&self) -> StoreResult<Option<ChainHead>>;
}

#[async_trait]
pub trait EventLog: Send + Sync {
    /// Events with `seq > after`, in order, at most `limit`.
    async fn events_after(&self, after: i64, limit: u32) -> StoreResult<Vec<StoredEvent>>;
}

#[async_trait]
pub trait DecisionStore: Send + Sync {
    async fn decision(&self, event_id: &str) -> StoreResult<Option<StoredDecision>>;
    /// The latest checkpoint of the engine `name`.
    async fn checkpoint(&self, name: &str) -> StoreResult<Option<EngineCheckpoint>>;
}

/// The whole storage port.
#[async_trait]
pub trait Store:
    OperatorStore + AccountStore + KeyStore + AuditStore + EventLog + DecisionStore + std::fmt::Debug
{
    /// Applies every write, appends the audit drafts to the chain (in order, after the current
    /// head) and the events to the log, all in one transaction. On any error nothing is written.
    async fn commit(&self, change: ChangeSet) -> StoreResult<()>;

    /// A short name for logs and metrics: `sqlite` or `postgres`.
    fn backend_name(&self) -> &'static str;

    /// Whether the backend answers (readiness).
    async fn ping(&self) -> StoreResult<()>;
}

/// The wall clock, injected so the domain never reads it.
pub trait Clock: Send + Sync + std::fmt::Debug {
    fn now(&self) -> UnixMillis;
}
