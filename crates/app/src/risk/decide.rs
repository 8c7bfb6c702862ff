//! Synchronous decisions, made in groups: a group commit.
//!
//! Each decision needs its event appended to the log, the engine caught up with the log, and
//! the decision stored, three steps whose cost is mostly the round trips to storage, not the
//! work. Requests that arrive while a group is being decided wait in a queue; one writer task
//! takes the whole queue as the next group the moment the current one is done, which costs one
//! append, one read of the log and one stored batch of decisions however many requests it
//! holds. Under light load a group is one request and nothing waits; under heavy load the
//! groups grow with the load, which is what keeps the latency flat. The writer runs while there
//! is work and ends when the queue is empty; the next request starts another.
//!
//! The writer is a task of its own: a caller that goes away (a closed connection) cannot leave
//! the others of its group without an answer, or the log half-applied.

use super::{Risk, decide_logged, log_entry};
use crate::access::Actor;
use crate::error::{AppError, AppResult};
use crate::ports::NewEvent;
use portcullis_core::contract::{ContractEvent, parse_line};
use portcullis_core::operator::Permission;
use portcullis_engine::{Decision, Verdict};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::sync::oneshot;

/// Requests waiting for a decision, and whether a writer is deciding them.
#[derive(Debug, Default)]
pub(super) struct DecisionQueue {
    state: parking_lot::Mutex<QueueState>,
    /// Groups decided and the requests they held, for metrics (their ratio is the group size).
    groups: AtomicU64,
    grouped_requests: AtomicU64,
}

#[derive(Debug, Default)]
struct QueueState {
    waiting: Vec<Waiting>,
    /// A writer task is running: it takes what waits as soon as its current group is done.
    writer: bool,
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

    /// Decides one event synchronously. An event already decided gets its stored decision.
    pub async fn decide(&self, actor: &Actor, line: &str) -> AppResult<Decision> {
        actor.require(Permission::IngestEvents)?;
        let event =
            parse_line(line).map_err(|reason| AppError::invalid("invalid_event", reason))?;
        if !event.body.asks_for_decision() {
            return Err(AppError::invalid(
                "no_decision",
                format!(
                    "{} events are not decided (send them to POST /v1/events)",
                    event.body.type_name()
                ),
            ));
        }
        let (answer, decision) = oneshot::channel();
        let logged = log_entry(&event, line);
        let start_writer = {
            let mut queue = self.decisions.state.lock();
            queue.waiting.push(Waiting {
                event,
                logged,
                answer,
            });
            !std::mem::replace(&mut queue.writer, true)
        };
        if start_writer {
            let risk = self.clone();
            tokio::spawn(async move { risk.write_decisions().await });
        }
        decision
            .await
            .unwrap_or_else(|_| Err(AppError::Internal("a decision was abandoned".into())))
    }

    /// The writer: decides what waits, a group at a time, until nothing does. The requests that
    /// arrive while a group is decided are the next group, taken the moment it is done.
    async fn write_decisions(&self) {
        let _ends = WriterEnds(&self.decisions);
        loop {
            let group = {
                let mut queue = self.decisions.state.lock();
                if queue.waiting.is_empty() {
                    // Under the same lock a request pushes under: whoever pushes next sees no
                    // writer and starts one.
                    queue.writer = false;
                    return;
                }
                std::mem::take(&mut queue.waiting)
            };
            self.decisions.groups.fetch_add(1, Ordering::Relaxed);
            (self.decisions.grouped_requests).fetch_add(group.len() as u64, Ordering::Relaxed);
            self.decide_group(group).await;
        }
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
        let mut cursor = self.cursor.lock().await;
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
            drop(cursor);
            return self.catch_up().await;
        };
        cursor.ahead_of_storage = false;
        cursor.seq = last;
        cursor.since_checkpoint += events.len() as u64;
        self.checkpoint_if_due(&mut cursor).await?;
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
        let stored = self
            .store
            .decision(event_id)
            .await?
            .ok_or_else(|| AppError::Internal(format!("event {event_id} has no decision")))?;
        Ok(Decision {
            event_id: stored.event_id,
            decision: Verdict::parse(&stored.decision).unwrap_or(Verdict::Hold),
            score: u8::try_from(stored.score).unwrap_or(100),
            reasons: serde_json::from_str(&stored.reasons).unwrap_or_default(),
        })
    }
}

/// Marks the writer gone if it panics: the queue must not believe it still runs, or no request
/// would ever start another. (A writer that ends normally says so under the queue's lock.)
struct WriterEnds<'a>(&'a DecisionQueue);

impl Drop for WriterEnds<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.state.lock().writer = false;
        }
    }
}
