//! What one change writes: the row-level writes, the audit drafts that record them and the
//! events they emit, handed to [`super::Store::commit`] as one [`ChangeSet`] and committed in
//! one transaction.

use super::{
    AccountGuard, Ceremony, ConsoleWrite, CustomerSession, DigestSubscription, EngineCheckpoint,
    FreezeLink, IgnoredEvent, NewEvent, Operator, OutboxMessage, PendingChange, PolicyWrite,
    ReportTally, SealedSecret, SignInLink, StepUpGrant, StoredAlert, StoredDecision,
    StoredOfficialContact, StoredOverride, StoredPasskey, WithdrawalAddress,
};
use portcullis_core::account::Account;
use portcullis_core::audit::AuditDraft;
use portcullis_core::key::ApiKey;
use portcullis_core::time::UnixMillis;

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
    /// `expected_version`; stores `expected_version + 1`. `api_key`, `account` and `algorithm`
    /// never change: a write that would change them fails with [`StoreError::Immutable`]
    /// rather than being applied without them.
    UpdateKey {
        key: ApiKey,
        expected_version: i64,
    },
    /// Records that the key's owner was warned of idle expiry. Telemetry, like usage: bumps
    /// neither the version nor the change number. In the same commit as the warning's audit
    /// entry and event, so a crash cannot leave a warning sent but not recorded (and repeated).
    /// `previous` is the warning the sweep saw (none: never warned): if another process warned
    /// since, the whole commit is a conflict, so the owner is not warned twice.
    MarkIdleWarned {
        key_id: String,
        at: UnixMillis,
        previous: Option<UnixMillis>,
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
    /// Stores an account's guard state when its stored version is `expected_version` (0: the
    /// account has none yet); stores `expected_version + 1`.
    PutGuard {
        guard: AccountGuard,
        expected_version: i64,
    },
    InsertPending(PendingChange),
    /// Replaces a pending change when its stored version is `expected_version`.
    UpdatePending {
        change: PendingChange,
        expected_version: i64,
    },
    InsertGrant(StepUpGrant),
    /// Spends a grant: fails with a conflict when it was already spent.
    SpendGrant {
        token_hash: String,
        at: UnixMillis,
    },
    /// Adds an address to an account's allow-list (or refreshes it).
    PutAddress(WithdrawalAddress),
    RemoveAddress {
        account: String,
        network: String,
        address: String,
    },
    InsertPasskey(StoredPasskey),
    /// Stores the credential's new state (signature counter) after a use.
    UpdatePasskey {
        credential_id: String,
        passkey: String,
        last_used_at: UnixMillis,
    },
    RemovePasskey {
        account: String,
        credential_id: String,
    },
    InsertCeremony(Ceremony),
    /// Marks a ceremony answered: fails with a conflict when it already was.
    SpendCeremony {
        id: String,
        at: UnixMillis,
    },
    InsertSignInLink(SignInLink),
    /// Uses a sign-in link: fails with a conflict when it already was.
    SpendSignInLink {
        token_hash: String,
        at: UnixMillis,
    },
    InsertFreezeLink(FreezeLink),
    /// Uses a freeze link: fails with a conflict when it already was.
    SpendFreezeLink {
        token_hash: String,
        at: UnixMillis,
    },
    InsertSession(CustomerSession),
    RevokeSession {
        token_hash: String,
        at: UnixMillis,
    },
    /// Queues a notification; one whose dedupe key is already queued is kept as it was (so
    /// announcing the same thing twice sends it once).
    EnqueueNotification(OutboxMessage),
    /// Replaces the engine's checkpoint of the same name, unless the stored one covers a later
    /// log position (a slow writer never moves a checkpoint back).
    SaveCheckpoint(EngineCheckpoint),
    /// Fails the whole commit (`Conflict`) unless `owner` holds the partition's lease with
    /// `epoch`, and keeps the lease row locked until the commit ends: a partition's owner
    /// that lost its lease stores nothing.
    /// It also fails unless the partition layout stored (`risk.layout`) is still `generation`:
    /// a process of a layout changed since stores nothing.
    HoldsLease {
        partition: u32,
        owner: String,
        epoch: i64,
        generation: i64,
    },
    /// Moves the partition layout to `generation` with `partitions` partitions, unless it is
    /// there or past it already: the record `risk.layout` replaced, the other generations'
    /// partition checkpoints and the lease rows of partitions past the count deleted, in one
    /// commit.
    Relayout {
        generation: i64,
        partitions: u32,
    },
    /// Logs an event unless its id is logged already (a partition redoing a batch).
    LogEventOnce(NewEvent),
    /// Records an event a partition did not decide because one engine ignores it; a record for
    /// the same event is kept as it was.
    RecordIgnored(IgnoredEvent),
    /// A new official contact; a conflict when its kind and value are already listed.
    InsertOfficialContact(StoredOfficialContact),
    /// Removes an official contact: not found when there is none with this id.
    RemoveOfficialContact {
        id: String,
    },
    /// Adds the tallies of the event log's entries after `from_seq` up to `to_seq` to the
    /// report counts and moves the projector's position to `to_seq`: a conflict, and nothing
    /// written, when the position is no longer `from_seq` (another process counted them).
    ApplyContactReports {
        from_seq: i64,
        to_seq: i64,
        tallies: Vec<ReportTally>,
    },
    /// Stores a campaign alert as the engine last saw it (its confirmation is kept).
    PutAlert(StoredAlert),
    /// Marks an alert confirmed: fails with a conflict when it already was.
    ConfirmAlert {
        id: String,
        by: String,
        at: UnixMillis,
    },
    /// Stores a new override on a graph entity.
    PutOverride(StoredOverride),
    /// Lifts an override: fails with a conflict when it was lifted already.
    LiftOverride {
        id: String,
        by: String,
        at: UnixMillis,
    },
    /// Starts or moves an account's daily digest.
    PutDigest(DigestSubscription),
    /// Moves a digest on after sending it: a conflict, and nothing written, when its `next_at`
    /// is no longer `sent_for` (another process sent it).
    AdvanceDigest {
        account: String,
        sent_for: UnixMillis,
        next_at: UnixMillis,
    },
    RemoveDigest {
        account: String,
    },
    /// The analyst console's rows (operators' sign-in, the queue's assignments).
    Console(ConsoleWrite),
    /// The risk policy's versions (proposals and publications).
    Policy(PolicyWrite),
}

/// Everything one change writes, committed atomically.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChangeSet {
    pub writes: Vec<Write>,
    pub audit: Vec<AuditDraft>,
    pub events: Vec<NewEvent>,
}
