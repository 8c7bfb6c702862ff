//! Synchronous decisions, made in groups: a group commit.
//!
//! Each decision needs its event appended to the log, the engine caught up with the log, and
//! the decision stored, three steps whose cost is mostly the round trips to storage, not the
//! work. Requests that arrive while a group is being decided wait in a queue; the first of them
//! to get the turn takes the whole queue as the next group, which costs one append, one read of
//! the log and one stored batch of decisions however many requests it holds. Under light load a
//! group is one request and nothing waits; under heavy load the groups grow with the load,
//! which is what keeps the latency flat.
//!
//! A group is decided on a task of its own: a caller that goes away (a closed connection)
//! cannot leave the others of its group without an answer, or the log half-applied.

use super::{Risk, decide_logged, log_entry};
use crate::ErrorCode;
use crate::access::Actor;
use crate::error::{AppError, AppResult};
use crate::ports::NewEvent;
use portcullis_core::contract::{ContractEvent, parse_line};
use portcullis_core::operator::Permission;
use portcullis_engine::Decision;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::sync::oneshot;

/// Requests waiting for a decision, and the turn to decide them.
#[derive(Debug, Default)]
pub(super) struct DecisionQueue {
    waiting: parking_lot::Mutex<Vec<Waiting>>,
    turn: Arc<tokio::sync::Mutex<()>>,
    /// Groups decided and the requests they held, for metrics (their ratio is the group size).
    groups: AtomicU64,
    grouped_requests: AtomicU64,
    /// Answers read back from storage because the caller's own catch-up did not make them
    /// (an event logged before, or decided by another catch-up first), for metrics.
    read_back: AtomicU64,
}

/// One request in the queue.
#[derive(Debug)]
struct Waiting {
    event: ContractEvent,
    logged: NewEvent,
    answer: oneshot::Sender<AppResult<Decision>>,
}

impl Risk {
    /// Groups of synchronous decisions made since the start, and the requests they held.
    pub fn decision_groups(&self) -> (u64, u64) {
        let queue = &self.decisions;
        (
            queue.groups.load(Ordering::Relaxed),
            queue.grouped_requests.load(Ordering::Relaxed),
        )
    }

    /// Decisions answered (by `POST /v1/decisions` or ingest) from storage since the start,
    /// rather than from the caller's own catch-up: one query each.
    pub fn decisions_read_back(&self) -> u64 {
        self.decisions.read_back.load(Ordering::Relaxed)
    }

    /// Decides one event synchronously. An event already decided gets its stored decision.
    pub async fn decide(&self, actor: &Actor, line: &str) -> AppResult<Decision> {
        if let Some(stream) = self.stream.get() {
            return self.decide_on_stream(stream, actor, line).await;
        }
        actor.require_operator(Permission::IngestEvents)?;
        let event = parse_line(line)
            .map_err(|reason| AppError::invalid(ErrorCode::InvalidEvent, reason))?;
        refuse_undecided(&event)?;
        let (answer, mut decision) = oneshot::channel();
        let logged = log_entry(&event, line);
        self.decisions.waiting.lock().push(Waiting {
            event,
            logged,
            answer,
        });
        // Whoever waits in the queue also waits for the turn until answered, so a request is
        // never left in the queue with nobody to take it.
        let turn = tokio::select! {
            biased;
            answered = &mut decision => return answered_or_abandoned(answered),
            turn = Arc::clone(&self.decisions.turn).lock_owned() => turn,
        };
        // Requests that are ready to queue do so before the group is cut: a store that commits
        // without ever yielding (the event log's group commit on an SQLite file) runs no other
        // task of its worker thread meanwhile, and the next group would hold one request while
        // the rest of what arrived during the commit waited for a turn each.
        tokio::task::yield_now().await;
        // Empty when an earlier group took this request along.
        let group = std::mem::take(&mut *self.decisions.waiting.lock());
        if !group.is_empty() {
            self.decisions.groups.fetch_add(1, Ordering::Relaxed);
            (self.decisions.grouped_requests).fetch_add(group.len() as u64, Ordering::Relaxed);
            let risk = self.clone();
            tokio::spawn(async move {
                risk.decide_group(group).await;
                drop(turn);
            });
        }
        answered_or_abandoned(decision.await)
    }

    /// Appends the group's events, decides them and answers every request of the group.
    async fn decide_group(&self, group: Vec<Waiting>) {
        let mut events = Vec::with_capacity(group.len());
        let mut logged = Vec::with_capacity(group.len());
        let mut answers = Vec::with_capacity(group.len());
        for waiting in group {
            answers.push((waiting.event.id.clone(), waiting.answer));
            events.push(waiting.event);
            logged.push(waiting.logged);
        }
        let decided = match self.append_and_decide(&events, logged).await {
            Ok(decided) => decided,
            Err(error) => {
                for (_, answer) in answers {
                    // A caller that went away needs no answer.
                    let _ = answer.send(Err(error.clone()));
                }
                return;
            }
        };
        for (id, answer) in answers {
            let _ = answer.send(self.decision_of(&id, &decided).await);
        }
    }

    /// Appends the group's events. When they all land right after what the engine has applied
    /// (nobody appended in between, no id was logged before), the engine decides them in the
    /// same transaction, from the events at hand: one transaction per group, and no reading back
    /// what was just written. Otherwise the catch-up applies the log as it is.
    async fn append_and_decide(
        &self,
        events: &[ContractEvent],
        logged: Vec<NewEvent>,
    ) -> AppResult<HashMap<String, Decision>> {
        let mut cursor = self.cursor.write().await;
        if cursor.ahead_of_storage {
            self.rewind(&mut cursor).await?;
        }
        let after = cursor.seq;
        let mut decided = HashMap::new();
        let mut applied = None;
        let stored = {
            let cursor = &mut *cursor;
            let mut then = |positions: Vec<Option<i64>>| {
                let next_in_log = positions
                    .iter()
                    .zip(after + 1..)
                    .all(|(position, next)| *position == Some(next));
                if !next_in_log {
                    return Vec::new();
                }
                // Until the transaction commits, the engine is ahead of storage.
                cursor.ahead_of_storage = true;
                applied = positions.last().copied().flatten();
                events
                    .iter()
                    .filter_map(|event| decide_logged(&mut cursor.engine, event, &mut decided))
                    .collect()
            };
            self.store.append_new_events_then(logged, &mut then).await
        };
        if let Err(error) = stored {
            if cursor.ahead_of_storage
                && let Err(rewind) = self.rewind(&mut cursor).await
            {
                tracing::warn!(%rewind, "rewinding the risk engine failed; the next catch-up retries");
            }
            return Err(error.into());
        }
        let Some(last) = applied else {
            // Another writer (an ingest) appended between the engine's position and this
            // group's events: the engine applies the log up to and with them, still held. Let
            // go in between, a catch-up already waiting for the engine (that ingest's) would
            // apply this group's events first, and every decision of the group would then be
            // read back from storage, one query each, while the next group waits for its turn:
            // on PostgreSQL, beside ingest, the decisions fell behind their rate that way.
            return self.catch_up_holding(cursor).await;
        };
        cursor.ahead_of_storage = false;
        cursor.seq = last;
        cursor.since_checkpoint += events.len() as u64;
        let (cursor, snapshot) = self.checkpoint_if_due(cursor).await?;
        drop(cursor);
        if let Some(snapshot) = snapshot {
            self.write_due_checkpoint(snapshot).await;
        }
        Ok(decided)
    }

    /// The decision for an event that is in the log: made by this caller's catch-up, or
    /// stored by an earlier one (the background catch-up, another group) that applied it first.
    pub(super) async fn decision_of(
        &self,
        event_id: &str,
        decided: &HashMap<String, Decision>,
    ) -> AppResult<Decision> {
        if let Some(decision) = decided.get(event_id) {
            return Ok(decision.clone());
        }
        self.decisions.read_back.fetch_add(1, Ordering::Relaxed);
        // Logged with no decision: the id is an earlier event's, of a type not decided.
        let stored =
            (self.store.decision(event_id).await?).ok_or_else(|| ignored(event_id, "duplicate"))?;
        Ok(super::answer_from_stored(stored))
    }
}

fn answered_or_abandoned(
    answered: Result<AppResult<Decision>, oneshot::error::RecvError>,
) -> AppResult<Decision> {
    answered.unwrap_or_else(|_| Err(AppError::Internal("a decision was abandoned".into())))
}

/// `event_ignored`: `event_id` was not decided and will not be, for `reason` (`duplicate`:
/// its id is an earlier event's that was not decided; `late`: older than the dedup horizon).
pub(super) fn ignored(event_id: &str, reason: &str) -> AppError {
    let why = match reason {
        "late" => "it is older than the dedup horizon behind the newest event",
        "duplicate" => "its id is an earlier event's, which was not decided",
        _ => "its id is an earlier event's, or it is older than the dedup horizon",
    };
    AppError::invalid(
        ErrorCode::EventIgnored,
        format!(
            "event {event_id} was not decided and will not be: {why} (send it again with a new id)"
        ),
    )
}

/// `no_decision` for an event of a type that is not decided.
pub(super) fn refuse_undecided(event: &portcullis_core::contract::ContractEvent) -> AppResult<()> {
    if event.body.asks_for_decision() {
        return Ok(());
    }
    Err(AppError::invalid(
        ErrorCode::NoDecision,
        format!(
            "{} events are not decided (send them to POST /v1/events)",
            event.body.type_name()
        ),
    ))
}
