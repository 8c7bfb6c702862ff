//! The risk engine as a service: events are stored in the event log first (so an accepted event
//! survives a crash, and an id is applied once), then the engine catches up with the log in its
//! order and every decision is stored with its reasons and the features it saw.
//!
//! The key authority's own events are in the same log, so they reach the engine by the same
//! path.
//!
//! Checkpoints: the engine's state is saved with the log position it covers (every
//! `every_events` applied events, on request from a timer, and at shutdown), after the
//! decisions of those events are stored. At start the latest checkpoint is loaded and only the
//! log after its position is replayed; without one (or with one this version cannot read) the
//! whole log is. The log stays the source of truth: a crash between checkpoints loses nothing,
//! the next start just replays a little more, and decisions re-derived for events already
//! decided are identical and kept as stored. While a checkpoint is serialised, queries that
//! only read the engine (the graph view, `knows_entity`, the counters, the policy in force) go
//! on; what changes it waits (`engine_lock` says how, and why not simply an `RwLock`).
//!
//! Synchronous decisions are made in groups (see [`decide`]): concurrent requests share one
//! append and one catch-up.

use crate::ErrorCode;
mod checkpoint;
mod decide;
mod engine_lock;
mod network;
mod policy;
mod stream;

pub use network::GRAPH_VIEW_NODES;
pub(crate) use network::{entity_kind, unknown_entity};
pub use policy::InForce;
pub(crate) use policy::published as published_policy;
pub use stream::StreamIngest;

use crate::access::Actor;
use crate::error::{AppError, AppResult};
use crate::ports::{ChangeSet, NewEvent, Store, StoredDecision, Write};
pub(crate) use checkpoint::off_the_workers;
use checkpoint::restore_latest;
use engine_lock::{Cursor, EngineLock, Exclusive};
use portcullis_core::contract::{ContractEvent, LineError, parse_line, parse_lines};
use portcullis_core::operator::Permission;
use portcullis_engine::{Decision, Engine, Outcome, Policy, Verdict};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Log entries read per step while catching up.
const CATCH_UP_PAGE: u32 = 1_000;
/// The most decisions one page of [`Risk::decisions_after`] returns.
const DECISION_PAGE: u32 = 1_000;
/// The name of the single engine's checkpoint (a partitioned deployment names one per
/// partition).
pub const CHECKPOINT_NAME: &str = "risk";

/// When checkpoints are written besides on request (timer, shutdown).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckpointPolicy {
    /// After this many applied events; 0: only on request.
    pub every_events: u64,
    /// Whether this engine follows the event log. `false` in a partitioned deployment
    /// (`crate::partitions`), where the partitions decide and log: this engine then stays
    /// empty, never replays the log nor writes a decision or the `risk` checkpoint.
    pub follow_log: bool,
}

impl Default for CheckpointPolicy {
    fn default() -> Self {
        Self {
            // A restart replays at most this many events (about a second's work), and a
            // checkpoint, which holds ingest and decisions while it is serialised, comes
            // rarely under load.
            every_events: 1_000_000,
            follow_log: true,
        }
    }
}

/// How the engine came up.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StartReport {
    /// The log position of the checkpoint it started from, if any.
    pub checkpoint_seq: Option<i64>,
    /// Log entries replayed at start (after the checkpoint, or all of them).
    pub replayed: u64,
}

/// What a batch did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IngestReport {
    pub accepted: usize,
    pub duplicates: usize,
    pub rejected: Vec<LineError>,
    /// Decisions for the batch's deciding events, in batch order.
    pub decisions: Vec<Decision>,
}

/// The risk use cases.
#[derive(Debug, Clone)]
pub struct Risk {
    store: Arc<dyn Store>,
    /// The engine: read by queries, changed by one writer at a time (`engine_lock`).
    cursor: Arc<EngineLock>,
    /// Lines refused at ingest (malformed, unknown type, bad values), for metrics.
    refused_lines: Arc<AtomicU64>,
    checkpoints: CheckpointPolicy,
    checkpoints_written: Arc<AtomicU64>,
    started: StartReport,
    decisions: Arc<decide::DecisionQueue>,
    /// What confirmations marked, for the guard to hold (`Guard::hold_marked`).
    propagations: Arc<std::sync::Mutex<Vec<portcullis_engine::Propagation>>>,
    /// In a partitioned deployment, where ingest goes instead of this engine (`stream`).
    /// Shared by every clone (the guard's and the policy use cases' too), so that each of them
    /// publishes operators' changes to the stream once it is set.
    stream: Arc<std::sync::OnceLock<StreamIngest>>,
    #[cfg(feature = "test-hooks")]
    serialising_hook: Arc<checkpoint::SerialisingHook>,
    /// In a partitioned deployment, the partitions at work here that answer the views of the
    /// shared state (the graph) this engine, empty there, cannot.
    views: Arc<crate::partitions::PartitionViews>,
}

impl Risk {
    /// Starts an engine with `policy` from the latest checkpoint (or empty) and replays the
    /// event log after it.
    pub async fn start(
        store: Arc<dyn Store>,
        policy: Policy,
        checkpoints: CheckpointPolicy,
    ) -> AppResult<Self> {
        // The newest published version wins over the configured policy.
        let (policy, in_force) = match policy::published(store.as_ref()).await? {
            Some(published) => published,
            None => {
                let in_force = InForce::configured(&policy);
                (policy, in_force)
            }
        };
        let mut engine = Engine::new(policy);
        // Before the replay: each override counts for the events of its time range.
        engine.set_overrides(crate::guard::engine_overrides(&store.overrides().await?));
        let seq = restore_latest(store.as_ref(), &mut engine).await?;
        let mut risk = Self {
            store,
            cursor: Arc::new(EngineLock::new(Cursor {
                engine,
                seq,
                checkpoint_seq: seq,
                since_checkpoint: 0,
                ahead_of_storage: false,
                in_force,
            })),
            refused_lines: Arc::new(AtomicU64::new(0)),
            checkpoints,
            checkpoints_written: Arc::new(AtomicU64::new(0)),
            started: StartReport::default(),
            decisions: Arc::default(),
            propagations: Arc::default(),
            stream: Arc::default(),
            #[cfg(feature = "test-hooks")]
            serialising_hook: Arc::default(),
            views: Arc::default(),
        };
        let before = risk.cursor.read().await.engine.stats().events;
        risk.catch_up().await?;
        let replayed = risk.cursor.read().await.engine.stats().events - before;
        risk.started = StartReport {
            checkpoint_seq: (seq > 0).then_some(seq),
            replayed,
        };
        tracing::info!(checkpoint_seq = seq, replayed, "risk engine started");
        Ok(risk)
    }

    /// Sends ingest to the stream of a partitioned deployment from now on.
    /// Once set it stays: a second call changes nothing.
    pub fn with_stream(self, stream: StreamIngest) -> Self {
        let _ = self.stream.set(stream);
        self
    }

    /// How the engine came up.
    pub fn start_report(&self) -> StartReport {
        self.started
    }

    /// Checkpoints written since the start.
    pub fn checkpoints_written(&self) -> u64 {
        self.checkpoints_written.load(Ordering::Relaxed)
    }

    /// As [`Risk::ingest`], from raw bytes: a line that is not UTF-8 is refused on its own,
    /// as the contract says of any bad line, and the rest of the batch goes ahead.
    pub async fn ingest_bytes(&self, actor: &Actor, bytes: &[u8]) -> AppResult<IngestReport> {
        if let Ok(text) = std::str::from_utf8(bytes) {
            return self.ingest(actor, text).await;
        }
        let (text, not_utf8) = portcullis_core::contract::utf8_lines(bytes);
        let mut report = self.ingest(actor, &text).await?;
        self.refused_lines
            .fetch_add(not_utf8.len() as u64, Ordering::Relaxed);
        report.rejected.extend(not_utf8);
        report.rejected.sort_by_key(|error| error.line);
        Ok(report)
    }

    /// Stores every valid line, then decides what asks for a decision.
    pub async fn ingest(&self, actor: &Actor, text: &str) -> AppResult<IngestReport> {
        actor.require_operator(Permission::IngestEvents)?;
        if let Some(stream) = self.stream.get() {
            let report = self.ingest_to_stream(stream, text).await?;
            (self.refused_lines).fetch_add(report.rejected.len() as u64, Ordering::Relaxed);
            return Ok(report);
        }
        let batch = parse_lines(text);
        self.refused_lines
            .fetch_add(batch.errors.len() as u64, Ordering::Relaxed);
        let mut report = IngestReport {
            rejected: batch.errors,
            ..IngestReport::default()
        };
        // Indexed once: looking each line up from the start would make a batch quadratic.
        let raw_lines: Vec<&str> = text.lines().collect();
        let logged = batch
            .events
            .iter()
            .map(|(line, event)| {
                log_entry(event, raw_lines.get(line - 1).copied().unwrap_or_default())
            })
            .collect();
        let appended = self.store.append_new_events(logged).await?;
        let mut deciding = Vec::new();
        for ((_, event), new) in batch.events.iter().zip(appended) {
            if !new {
                report.duplicates += 1;
                continue;
            }
            report.accepted += 1;
            if event.body.asks_for_decision() {
                deciding.push(event.id.as_str());
            }
        }
        let decided = self.catch_up().await?;
        for id in deciding {
            report.decisions.push(self.decision_of(id, &decided).await?);
        }
        Ok(report)
    }

    /// Validates `text` as a policy and, only if it is valid, puts it in force; the engine keeps
    /// its state. Returns the number of rules now in force. Refused once a version was
    /// published (`policy_version_in_force`): the configured file is then only the starting
    /// version.
    pub async fn replace_policy(&self, actor: &Actor, text: &str) -> AppResult<usize> {
        actor.require_operator(Permission::ManagePolicy)?;
        let policy = Policy::parse(text)
            .map_err(|e| AppError::invalid(ErrorCode::InvalidPolicy, e.to_string()))?;
        self.refuse_when_published().await?;
        let rules = policy.rules.len();
        if self.partitioned() {
            let control = crate::partitions::Control::Policy {
                publication: 0,
                version: None,
                text: policy.to_toml(),
            };
            self.announce(&control, "the policy file was not reloaded")
                .await?;
        }
        let mut cursor = self.cursor.write().await;
        // A publication that landed since the check above wins.
        if cursor.in_force.publication > 0 {
            return Err(policy::published_in_force());
        }
        cursor.in_force = InForce::configured(&policy);
        cursor.engine.set_policy(policy);
        drop(cursor);
        tracing::info!(rules, "risk policy replaced");
        Ok(rules)
    }

    /// Lines refused at ingest since the start.
    pub fn refused_lines(&self) -> u64 {
        self.refused_lines.load(Ordering::Relaxed)
    }

    /// Counters of the engine: events, duplicates, decisions by verdict, hits per rule. In a
    /// partitioned deployment, those of the partitions at work in this process, summed (each
    /// event and decision belongs to one partition, so the processes' figures add up; they
    /// move with a lease), the id check's once (every partition checks every id).
    pub async fn stats(&self) -> portcullis_engine::EngineStats {
        if !self.partitioned() {
            return self.cursor.read().await.engine.stats().clone();
        }
        let answers = (self.views)
            .ask_each(|reply| crate::partitions::ViewRequest::Stats { reply })
            .await;
        let mut total = portcullis_engine::EngineStats::default();
        if let Some((_, lowest)) = answers.first() {
            total.duplicates = lowest.duplicates;
            total.late = lowest.late;
        }
        for (_, stats) in &answers {
            total.add_partition(stats);
        }
        total
    }

    /// A stored decision with the features it saw.
    pub async fn decision(&self, actor: &Actor, event_id: &str) -> AppResult<StoredDecision> {
        actor.require_operator(Permission::ReadEvents)?;
        self.store
            .decision(event_id)
            .await?
            .ok_or_else(|| AppError::NotFound(format!("decision for event {event_id}")))
    }

    /// Stored decisions in event-log order with each event's log position, after the position
    /// `after` (at most `limit`, 1 to 1,000): the pages of `portcullis decisions export`.
    pub async fn decisions_after(
        &self,
        actor: &Actor,
        after: i64,
        limit: u32,
    ) -> AppResult<Vec<(i64, StoredDecision)>> {
        actor.require_operator(Permission::ReadEvents)?;
        Ok(self
            .store
            .decisions_after(after, limit.clamp(1, DECISION_PAGE))
            .await?)
    }

    /// Applies every logged event the engine has not seen, in log order, and stores the
    /// decisions (a decision already stored is kept). Returns the new decisions by event id.
    pub async fn catch_up(&self) -> AppResult<HashMap<String, Decision>> {
        let cursor = self.cursor.write().await;
        self.catch_up_holding(cursor).await
    }

    /// [`Risk::catch_up`] with the engine already held by the caller; lets it go once the log
    /// is applied. A group of synchronous decisions that must catch up calls this without
    /// letting go in between (see `decide`).
    async fn catch_up_holding(
        &self,
        mut cursor: Exclusive<'_>,
    ) -> AppResult<HashMap<String, Decision>> {
        if !self.checkpoints.follow_log {
            return Ok(HashMap::new());
        }
        if cursor.ahead_of_storage {
            self.rewind(&mut cursor).await?;
        }
        let mut decided = HashMap::new();
        let mut snapshot = None;
        loop {
            let page = self.store.events_after(cursor.seq, CATCH_UP_PAGE).await?;
            let Some(last) = page.last() else { break };
            let last_seq = last.seq;
            let mut writes = Vec::new();
            for stored in &page {
                let Ok(event) = parse_line(&stored.event.body) else {
                    tracing::warn!(seq = stored.seq, "a logged event no longer parses; skipped");
                    continue;
                };
                writes.extend(
                    decide_logged(&mut cursor.engine, &event, &mut decided)
                        .map(Write::InsertDecision),
                );
            }
            writes.extend(cursor.engine.take_alerts().into_iter().map(stored_alert));
            self.queue_propagations(&mut cursor.engine);
            if !writes.is_empty() {
                // Set until the commit returns: an error, or this future dropped mid-commit,
                // leaves it set and the next catch-up rewinds first.
                cursor.ahead_of_storage = true;
                let stored = self
                    .store
                    .commit(ChangeSet {
                        writes,
                        ..ChangeSet::default()
                    })
                    .await;
                if let Err(error) = stored {
                    self.rewind(&mut cursor).await?;
                    return Err(error.into());
                }
            }
            cursor.ahead_of_storage = false;
            cursor.seq = last_seq;
            cursor.since_checkpoint += page.len() as u64;
            let due;
            (cursor, due) = self.checkpoint_if_due(cursor).await?;
            snapshot = due.or(snapshot);
            // A short page was the end of the log when it was read: asking again would cost
            // every synchronous decision a second query. (What was appended since is caught
            // up by the request that appended it, which starts its catch-up after its append.)
            if page.len() < CATCH_UP_PAGE as usize {
                break;
            }
        }
        drop(cursor);
        if let Some(snapshot) = snapshot {
            self.write_due_checkpoint(snapshot).await;
        }
        Ok(decided)
    }
}

/// An alert as the store keeps it.
pub(crate) fn stored_alert(alert: portcullis_engine::Alert) -> Write {
    Write::PutAlert(crate::ports::StoredAlert {
        id: alert.id,
        kind: alert.kind.as_str().to_owned(),
        entity_kind: alert.entity_kind.as_str().to_owned(),
        value: alert.value,
        opened_at: portcullis_core::time::UnixMillis(alert.opened_at),
        updated_at: portcullis_core::time::UnixMillis(alert.updated_at),
        unrelated_accounts: i64::from(alert.unrelated_accounts),
        evidence: serde_json::to_string(&alert.evidence).unwrap_or_else(|_| "[]".into()),
        confirmed_by: None,
        confirmed_at: None,
    })
}

/// How an event enters the log: its line as received, trimmed.
pub(crate) fn log_entry(event: &ContractEvent, raw: &str) -> NewEvent {
    NewEvent {
        id: event.id.clone(),
        ts: event.ts,
        account: event.account.clone(),
        event_type: event.body.type_name().to_owned(),
        body: raw.trim().to_owned(),
    }
}

/// Applies a logged event and, when it is decided, returns the decision's write and keeps the
/// decision in `decided`. The log refuses a known id, so every entry is new: no seen-id set,
/// no horizon.
fn decide_logged(
    engine: &mut Engine,
    event: &ContractEvent,
    decided: &mut HashMap<String, Decision>,
) -> Option<StoredDecision> {
    let Outcome::Decided(decision, features) = engine.process_unique(event) else {
        return None;
    };
    let stored = stored_decision(event, &decision, &features);
    decided.insert(decision.event_id.clone(), decision);
    Some(stored)
}

/// A decision as the store keeps it; a rule that could not be evaluated is logged.
pub(crate) fn stored_decision(
    event: &ContractEvent,
    decision: &Decision,
    features: &portcullis_engine::Features,
) -> StoredDecision {
    for reason in &decision.reasons {
        if let Some(rule) = reason.strip_prefix(portcullis_engine::RULE_ERROR_PREFIX) {
            tracing::error!(event = %event.id, %rule, "a rule could not be evaluated; it acted as if it fired");
        }
    }
    StoredDecision {
        event_id: decision.event_id.clone(),
        decided_at: event.ts,
        decision: decision.decision.as_str().to_owned(),
        score: i64::from(decision.score),
        reasons: serde_json::to_string(&decision.reasons).unwrap_or_else(|_| "[]".into()),
        features: serde_json::to_string(features).unwrap_or_else(|_| "{}".into()),
    }
}

/// A stored decision as the engine answers it. A row this process cannot read back (a verdict
/// or reasons written by something else) answers `block`: a gateway acting on it fails closed.
pub(crate) fn answer_from_stored(stored: StoredDecision) -> Decision {
    Decision {
        event_id: stored.event_id,
        decision: Verdict::parse(&stored.decision).unwrap_or(Verdict::Block),
        score: u8::try_from(stored.score).unwrap_or(u8::MAX),
        reasons: serde_json::from_str(&stored.reasons).unwrap_or_default(),
    }
}
