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

use super::{Risk, log_entry};
use crate::access::Actor;
use crate::error::{AppError, AppResult};
use crate::ports::NewEvent;
use portcullis_core::contract::parse_line;
use portcullis_core::operator::Permission;
use portcullis_engine::{Decision, Verdict};
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
}

/// One request in the queue.
#[derive(Debug)]
struct Waiting {
    event: NewEvent,
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
        let (answer, mut decision) = oneshot::channel();
        self.decisions.waiting.lock().push(Waiting {
            event: log_entry(&event, line),
            answer,
        });
        // Whoever waits in the queue also waits for the turn until answered, so a request is
        // never left in the queue with nobody to take it.
        let turn = tokio::select! {
            biased;
            answered = &mut decision => return answered_or_abandoned(answered),
            turn = Arc::clone(&self.decisions.turn).lock_owned() => turn,
        };
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

    /// Appends the group's events, catches up and answers every request of the group.
    async fn decide_group(&self, group: Vec<Waiting>) {
        let (events, answers): (Vec<NewEvent>, Vec<_>) = group
            .into_iter()
            .map(|waiting| {
                let id = waiting.event.id.clone();
                (waiting.event, (id, waiting.answer))
            })
            .unzip();
        let decided = match self.append_and_catch_up(events).await {
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

    async fn append_and_catch_up(
        &self,
        events: Vec<NewEvent>,
    ) -> AppResult<HashMap<String, Decision>> {
        // An id already logged is no error: its stored (or about to be made) decision answers.
        self.store.append_new_events(events).await?;
        self.catch_up().await
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

fn answered_or_abandoned(
    answered: Result<AppResult<Decision>, oneshot::error::RecvError>,
) -> AppResult<Decision> {
    answered.unwrap_or_else(|_| Err(AppError::Internal("a decision was abandoned".into())))
}
