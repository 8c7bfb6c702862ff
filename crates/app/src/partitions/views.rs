//! Reading the shared state in a partitioned deployment: the process's own engine stays empty
//! there (the partitions hold the state), but every partition's engine holds the whole entity
//! graph, alerts and marks as of its progress (docs/design/partitioning.md, "The protocol"). So
//! the graph view and the override's `unknown_entity` check are answered by a partition this
//! process works: each one at work registers here a channel its work loop answers between
//! rounds, and the registration goes when the work ends (handed back, failed, or stopped when
//! its lease is lost). The lowest partition registered answers, so two requests to one process
//! read the same partition's view. With none registered there is no view here: the caller
//! refuses rather than answer from an empty engine.

use portcullis_engine::{Engine, EngineStats, EntityKind, GraphView};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::{mpsc, oneshot};

/// Requests a partition's loop may hold before it answers (then the asker waits for room).
const WAITING: usize = 64;

/// A question about the shared state, answered from a partition's engine.
#[derive(Debug)]
pub enum ViewRequest {
    /// `Engine::graph_view` with the marks as they count at `now`.
    Graph {
        kind: EntityKind,
        value: String,
        hops: u8,
        max_nodes: usize,
        now: i64,
        reply: oneshot::Sender<Option<GraphView>>,
    },
    /// `Engine::knows_entity`.
    Knows {
        kind: EntityKind,
        value: String,
        reply: oneshot::Sender<bool>,
    },
    /// `Engine::stats`: the partition's own counters (kept in its checkpoint).
    Stats { reply: oneshot::Sender<EngineStats> },
}

impl ViewRequest {
    /// Answers from `engine` (a partition's). An asker that gave up is no matter.
    pub fn answer(self, engine: &Engine) {
        match self {
            Self::Graph {
                kind,
                value,
                hops,
                max_nodes,
                now,
                reply,
            } => {
                let _ = reply.send(engine.graph_view(kind, &value, hops, max_nodes, now));
            }
            Self::Knows { kind, value, reply } => {
                let _ = reply.send(engine.knows_entity(kind, &value));
            }
            Self::Stats { reply } => {
                let _ = reply.send(engine.stats().clone());
            }
        }
    }
}

/// The partitions at work in this process that answer views, by index.
#[derive(Debug, Default)]
pub struct PartitionViews {
    open: Mutex<BTreeMap<u32, (u64, mpsc::Sender<ViewRequest>)>>,
    /// Tells registrations apart: a partition taken again registers anew, and the earlier
    /// registration's end must not remove the later one.
    next: AtomicU64,
}

/// A partition's place in [`PartitionViews`], removed when dropped (the work loop's end, an
/// abort included).
#[derive(Debug)]
pub struct Registration {
    views: Arc<PartitionViews>,
    partition: u32,
    token: u64,
}

impl Drop for Registration {
    fn drop(&mut self) {
        if let Ok(mut open) = self.views.open.lock()
            && open
                .get(&self.partition)
                .is_some_and(|(t, _)| *t == self.token)
        {
            open.remove(&self.partition);
        }
    }
}

impl PartitionViews {
    /// Registers `partition`'s loop: it answers what arrives on the receiver.
    pub fn register(
        self: &Arc<Self>,
        partition: u32,
    ) -> (Registration, mpsc::Receiver<ViewRequest>) {
        let (sender, receiver) = mpsc::channel(WAITING);
        let token = self.next.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut open) = self.open.lock() {
            open.insert(partition, (token, sender));
        }
        let registration = Registration {
            views: self.clone(),
            partition,
            token,
        };
        (registration, receiver)
    }

    /// The partitions registered now, lowest first.
    pub fn registered(&self) -> Vec<u32> {
        (self.open.lock())
            .map(|open| open.keys().copied().collect())
            .unwrap_or_default()
    }

    /// Asks the lowest partition registered; `None` when none is, or when each one asked
    /// ended before it answered (then the next lowest is asked).
    pub(crate) async fn ask<T>(
        &self,
        request: impl Fn(oneshot::Sender<T>) -> ViewRequest,
    ) -> Option<(u32, T)> {
        for (partition, sender) in self.senders() {
            if let Some(answer) = Self::ask_one(&sender, &request).await {
                return Some((partition, answer));
            }
        }
        None
    }

    /// Asks every partition registered, lowest first; one that ended before it answered is
    /// left out (its work, and its figures, are another process's now or soon).
    pub(crate) async fn ask_each<T>(
        &self,
        request: impl Fn(oneshot::Sender<T>) -> ViewRequest,
    ) -> Vec<(u32, T)> {
        let mut answers = Vec::new();
        for (partition, sender) in self.senders() {
            if let Some(answer) = Self::ask_one(&sender, &request).await {
                answers.push((partition, answer));
            }
        }
        answers
    }

    fn senders(&self) -> Vec<(u32, mpsc::Sender<ViewRequest>)> {
        (self.open.lock())
            .map(|open| (open.iter()).map(|(p, (_, s))| (*p, s.clone())).collect())
            .unwrap_or_default()
    }

    async fn ask_one<T>(
        sender: &mpsc::Sender<ViewRequest>,
        request: &impl Fn(oneshot::Sender<T>) -> ViewRequest,
    ) -> Option<T> {
        let (reply, answer) = oneshot::channel();
        sender.send(request(reply)).await.ok()?;
        answer.await.ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use portcullis_engine::Policy;

    fn knows(value: &str) -> impl Fn(oneshot::Sender<bool>) -> ViewRequest {
        move |reply| ViewRequest::Knows {
            kind: EntityKind::Ip,
            value: value.to_owned(),
            reply,
        }
    }

    #[tokio::test]
    async fn the_lowest_partition_at_work_answers_and_none_when_none_is() {
        let views = Arc::new(PartitionViews::default());
        assert_eq!(views.ask(knows("10.0.0.1")).await, None);
        let (two, mut asked_two) = views.register(2);
        let (one, asked_one) = views.register(1);
        assert_eq!(views.registered(), vec![1, 2]);
        // Partition 1's loop ended without answering: partition 2 answers.
        drop(asked_one);
        let engine = Engine::new(Policy::default_policy().unwrap());
        let answering = tokio::spawn(async move {
            if let Some(request) = asked_two.recv().await {
                request.answer(&engine);
            }
        });
        assert_eq!(views.ask(knows("10.0.0.1")).await, Some((2, false)));
        answering.await.unwrap();
        drop(one);
        assert_eq!(views.registered(), vec![2]);
        // Partition 2 taken again: the first registration's end leaves the second.
        let (again, _asked) = views.register(2);
        drop(two);
        assert_eq!(views.registered(), vec![2]);
        drop(again);
        assert_eq!(views.ask(knows("10.0.0.1")).await, None);
    }

    #[tokio::test]
    async fn each_partition_at_work_gives_its_counters() {
        let views = Arc::new(PartitionViews::default());
        assert!(
            views
                .ask_each(|reply| ViewRequest::Stats { reply })
                .await
                .is_empty()
        );
        let mut loops = Vec::new();
        let mut registrations = Vec::new();
        for partition in [3, 1] {
            let (registration, mut asked) = views.register(partition);
            registrations.push(registration);
            let mut engine = Engine::new(Policy::default_policy().unwrap());
            for n in 0..partition {
                let line = format!(
                    r#"{{"id":"p{partition}-{n}","ts":"2026-12-07T10:00:0{n}Z","type":"login","account":"acc_{partition}","method":"password","success":true,"ctx":{{"ip":"192.0.2.{partition}"}}}}"#
                );
                engine.process(&portcullis_core::contract::parse_line(&line).unwrap());
            }
            loops.push(tokio::spawn(async move {
                if let Some(request) = asked.recv().await {
                    request.answer(&engine);
                }
            }));
        }
        // A third whose loop ended: left out.
        let (_gone, ended) = views.register(2);
        drop(ended);
        let answers = views.ask_each(|reply| ViewRequest::Stats { reply }).await;
        let events: Vec<(u32, u64)> = answers.iter().map(|(p, s)| (*p, s.events)).collect();
        assert_eq!(events, vec![(1, 1), (3, 3)]);
        for answering in loops {
            answering.await.unwrap();
        }
    }
}
