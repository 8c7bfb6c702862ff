//! Ingest in a partitioned deployment (`crate::partitions`): `POST /v1/events` and
//! `POST /v1/decisions` put the events on the stream, each on its account's partition subject
//! (the owner decides, whichever process it runs in), and a synchronous decision is answered
//! once its owner has stored it (bounded: `decision_timeout`). Operators' changes (overrides,
//! policy versions) go on the stream's control subject ([`Risk::announce`]), for every
//! partition to apply at their position.

use super::{IngestReport, Risk};
use crate::ErrorCode;
use crate::access::Actor;
use crate::error::{AppError, AppResult};
use crate::ports::EventSource;
use portcullis_core::contract::{ContractEvent, parse_line, parse_lines};
use portcullis_core::operator::Permission;
use portcullis_core::partition::event_partition;
use portcullis_engine::Decision;
use std::sync::Arc;
use std::time::Duration;

/// How often a waiting decision looks for its stored row.
const POLL: Duration = Duration::from_millis(5);
/// Every this many polls it also looks whether the owner ignored the event.
const IGNORED_EVERY: u64 = 4;

/// The stream ingest goes to.
#[derive(Clone)]
pub struct StreamIngest {
    pub events: Arc<dyn EventSource>,
    pub partitions: u32,
    /// How long `POST /v1/decisions` waits for the owner's stored decision.
    pub wait: Duration,
    /// The figures of the partitions this process works (`/metrics`).
    pub gauges: Arc<crate::partitions::PartitionGauges>,
    /// Seals control messages (the keyring's control keys), so partitions apply them.
    pub seal: Arc<crate::partitions::ControlSeal>,
    /// When a control message is sent (its `sent_at`).
    pub clock: Arc<dyn crate::ports::Clock>,
}

impl std::fmt::Debug for StreamIngest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamIngest")
            .field("partitions", &self.partitions)
            .field("wait", &self.wait)
            .finish_non_exhaustive()
    }
}

impl StreamIngest {
    /// Publishes the events (with their lines as received); returns for each whether the
    /// stream held it already.
    async fn publish(&self, events: &[(&ContractEvent, &str)]) -> AppResult<Vec<bool>> {
        let messages = (events.iter())
            .map(|(event, line)| {
                let partition = event_partition(event, self.partitions);
                (partition, event.id.clone(), line.trim().to_owned())
            })
            .collect();
        (self.events.publish(messages).await)
            .map_err(|e| AppError::Internal(format!("publishing events to NATS: {e}")))
    }
}

impl Risk {
    /// `Risk::ingest` on the stream: the valid lines are published (the stream drops an id it
    /// holds already: a duplicate); decisions are made by the partitions' owners, so the report
    /// carries none (`POST /v1/decisions` waits for one).
    pub(super) async fn ingest_to_stream(
        &self,
        stream: &StreamIngest,
        text: &str,
    ) -> AppResult<IngestReport> {
        let batch = parse_lines(text);
        let raw_lines: Vec<&str> = text.lines().collect();
        let events: Vec<(&ContractEvent, &str)> = (batch.events.iter())
            .map(|(line, event)| (event, raw_lines.get(line - 1).copied().unwrap_or_default()))
            .collect();
        let held = stream.publish(&events).await?;
        let duplicates = held.iter().filter(|held| **held).count();
        Ok(IngestReport {
            accepted: held.len() - duplicates,
            duplicates,
            rejected: batch.errors,
            decisions: Vec::new(),
        })
    }

    /// `Risk::decide` on the stream: published, then answered with what the owner stored.
    pub(super) async fn decide_on_stream(
        &self,
        stream: &StreamIngest,
        actor: &Actor,
        line: &str,
    ) -> AppResult<Decision> {
        actor.require_operator(Permission::IngestEvents)?;
        let event = parse_line(line)
            .map_err(|reason| AppError::invalid(ErrorCode::InvalidEvent, reason))?;
        super::decide::refuse_undecided(&event)?;
        stream.publish(&[(&event, line)]).await?;
        let deadline = tokio::time::Instant::now() + stream.wait;
        let mut poll = 0u64;
        loop {
            poll += 1;
            if let Some(decision) = self.stored_decision(&event.id).await? {
                return Ok(decision);
            }
            // Less often: an event ignored is the rare case.
            if poll.is_multiple_of(IGNORED_EVERY)
                && let Some(ignored) = self.store.ignored_event(&event.id).await?
            {
                // A duplicate's first event may have been decided in the same commit.
                if let Some(decision) = self.stored_decision(&event.id).await? {
                    return Ok(decision);
                }
                return Err(super::decide::ignored(&event.id, &ignored.reason));
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(AppError::invalid(
                    ErrorCode::DecisionTimeout,
                    format!(
                        "the owner of the event's partition stored no decision within {} ms; the event is on the stream and will be decided: ask GET /v1/decisions/{} later",
                        stream.wait.as_millis(),
                        event.id
                    ),
                ));
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// The decision stored for `event_id`, if there is one.
    async fn stored_decision(&self, event_id: &str) -> AppResult<Option<Decision>> {
        Ok((self.store.decision(event_id).await?).map(super::answer_from_stored))
    }
}

impl Risk {
    /// Whether the partitions decide (`engine_partitions`): this process's engine is idle.
    pub fn partitioned(&self) -> bool {
        self.stream.get().is_some()
    }

    /// In a partitioned deployment, the keys that seal and open control messages.
    pub fn control_seal(&self) -> Option<Arc<crate::partitions::ControlSeal>> {
        self.stream.get().map(|stream| stream.seal.clone())
    }

    /// In a partitioned deployment, the figures of the partitions this process works.
    pub fn partition_gauges(&self) -> Option<Arc<crate::partitions::PartitionGauges>> {
        self.stream.get().map(|stream| stream.gauges.clone())
    }

    /// In a partitioned deployment, puts an operator's change on the stream's control subject
    /// and returns once the stream stored it; nothing otherwise. `what` says what failed to
    /// the operator (`stream_unavailable`), the transport's detail goes to the log.
    pub(crate) async fn announce(
        &self,
        control: &crate::partitions::Control,
        what: &str,
    ) -> AppResult<()> {
        let Some(stream) = self.stream.get() else {
            return Ok(());
        };
        let id = control.message_id();
        let sent_at = stream.clock.now().as_millis();
        let message = crate::partitions::ControlMessage::new(control.clone(), sent_at)?;
        match stream
            .events
            .publish_control(id.as_deref(), stream.seal.seal(&message))
            .await
        {
            Ok(()) => Ok(()),
            Err(error) => {
                let error = portcullis_core::redact::redact_urls_in(&error);
                tracing::error!(%error, "an operator's change not put on the event stream");
                Err(AppError::invalid(
                    ErrorCode::StreamUnavailable,
                    format!(
                        "the event stream (NATS) did not take the change, so no engine partition would apply it: {what}"
                    ),
                ))
            }
        }
    }
}
