//! The ports of the partitioned risk engine (`crate::partitions`): partition leases in the
//! database, the event stream a partition reads, and the bus that carries facts and progress
//! between partitions.

use super::StoreResult;
use async_trait::async_trait;
use portcullis_core::time::UnixMillis;
use std::sync::Arc;
use tokio::sync::mpsc;

/// Who owns a partition, under which epoch, until when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub partition: u32,
    pub owner: String,
    pub epoch: i64,
    pub expires_at: UnixMillis,
}

/// Partition leases. Every time is the caller's (its clock port), so a test moves it.
#[async_trait]
pub trait LeaseStore: Send + Sync {
    /// Records that `node` is alive until `expires_at`; returns the nodes alive at `now`
    /// (this one included).
    async fn heartbeat(
        &self,
        node: &str,
        now: UnixMillis,
        expires_at: UnixMillis,
    ) -> StoreResult<Vec<String>>;
    /// Every lease row.
    async fn leases(&self) -> StoreResult<Vec<Lease>>;
    /// Takes `partition` for `node` until `expires_at` if nobody holds it at `now` (no row, or
    /// its lease expired, or released): returns the new epoch, one more than the last.
    async fn acquire(
        &self,
        partition: u32,
        node: &str,
        now: UnixMillis,
        expires_at: UnixMillis,
    ) -> StoreResult<Option<i64>>;
    /// Extends the lease if `node` still holds it with `epoch`; `false` when another took it.
    async fn renew(
        &self,
        partition: u32,
        node: &str,
        epoch: i64,
        expires_at: UnixMillis,
    ) -> StoreResult<bool>;
    /// Lets the lease go at once (it expires now), if still held with `epoch`.
    async fn release(&self, partition: u32, node: &str, epoch: i64) -> StoreResult<()>;
}

/// An event as the stream holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamEvent {
    /// The stream sequence: the event's position.
    pub position: u64,
    /// The partition its subject names; `None` for the global subject (and the control one).
    pub subject_partition: Option<u32>,
    /// On the control subject: a change from operators (overrides, a policy version) that
    /// every partition applies at this position, not a contract event.
    pub control: bool,
    pub body: Vec<u8>,
}

/// A partition's reading of the event stream: every event from a position on, in position
/// order, in batches; the receiver's end closes on a failure (the reader starts over from its
/// checkpoint).
pub struct EventFeed {
    pub batches: mpsc::Receiver<Vec<StreamEvent>>,
    pub acker: Arc<dyn EventAcker>,
}

impl std::fmt::Debug for EventFeed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EventFeed")
    }
}

/// Acknowledges what a partition stored, so the stream does not deliver it again.
#[async_trait]
pub trait EventAcker: Send + Sync {
    async fn ack_through(&self, position: u64) -> Result<(), String>;
}

/// Where a partition reads events.
#[async_trait]
pub trait EventSource: Send + Sync {
    /// Partition `partition`'s reading, in layout `generation`, from position `from` (its
    /// consumer, one per generation and partition, made again to start there: the checkpoint,
    /// not the stream's memory of acknowledgements, is the truth). Fails when the stream no
    /// longer holds position `from`.
    async fn open(&self, partition: u32, generation: i64, from: u64) -> Result<EventFeed, String>;
    /// Puts events on the stream, each on its partition's subject (`None`: the global one),
    /// with its id as the message id (a repeat is dropped); returns for each whether the
    /// stream already held it.
    async fn publish(
        &self,
        events: Vec<(Option<u32>, String, String)>,
    ) -> Result<Vec<bool>, String>;
    /// Puts a control message on the stream's control subject (`id`, when given, is its
    /// message id: a repeat within the stream's window is dropped); returns once the stream
    /// stored it.
    async fn publish_control(&self, id: Option<&str>, body: Vec<u8>) -> Result<(), String>;
}

/// One message of the fact bus: facts a partition made (encoded, `Fact::encode`) and how far
/// it is complete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FactBatch {
    /// The bus's sequence of the message (set when read; ignored when published).
    pub seq: u64,
    pub partition: u32,
    pub facts: Vec<Vec<u8>>,
    /// The partition is complete through this position (docs/design/partitioning.md).
    pub complete_through: u64,
}

/// The bus between partitions. A partition's messages are read in the order it published
/// them.
#[async_trait]
pub trait FactBus: Send + Sync {
    /// Every partition's messages of layout `generation` from bus sequence `from_seq` on
    /// (another generation's partitions are other partitions: theirs are never read); the
    /// receiver's end closes on a failure.
    async fn read(
        &self,
        generation: i64,
        from_seq: u64,
    ) -> Result<mpsc::Receiver<FactBatch>, String>;
    /// Publishes and waits until the bus has stored it. `after` is the progress the
    /// partition published before: a message covers the positions after it up to its
    /// `complete_through`, which names it (the same range always carries the same facts, so the
    /// bus may drop a repeat).
    async fn publish(&self, generation: i64, after: u64, batch: &FactBatch) -> Result<(), String>;
}
