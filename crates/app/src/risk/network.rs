//! The risk service's side of attacker networks: what confirmations and force overrides marked
//! (queued for the guard, which holds the linked accounts' pending changes), the operators'
//! overrides put in force, and the graph around an entity as the console shows it.

use super::Risk;
use crate::ErrorCode;
use crate::access::Actor;
use crate::error::{AppError, AppResult};
use crate::partitions::ViewRequest;
use portcullis_core::operator::Permission;
use portcullis_engine::Engine;
use std::sync::Arc;

impl Risk {
    /// What confirmations marked since the last call (the guard holds what they link).
    pub fn take_propagations(&self) -> Vec<portcullis_engine::Propagation> {
        self.propagations
            .lock()
            .map(|mut queue| std::mem::take(&mut *queue))
            .unwrap_or_default()
    }

    /// Moves what the engine's confirmations and forces marked to the guard's queue.
    pub(super) fn queue_propagations(&self, engine: &mut Engine) {
        let marked = engine.take_propagations();
        if !marked.is_empty()
            && let Ok(mut queue) = self.propagations.lock()
        {
            queue.extend(marked);
        }
    }

    /// Puts back what a failed hold pass did not get to, ahead of anything newer.
    pub fn requeue_propagations(
        &self,
        left: impl IntoIterator<Item = portcullis_engine::Propagation>,
    ) {
        if let Ok(mut queue) = self.propagations.lock() {
            let newer = std::mem::take(&mut *queue);
            queue.extend(left);
            queue.extend(newer);
        }
    }

    /// The graph around an entity (`Engine::graph_view`), marks as they count at `now`. In a
    /// partitioned deployment, the lowest partition at work in this process answers, with the
    /// shared state as of its progress; with none, 503 `partition_view_unavailable`.
    pub async fn graph_view(
        &self,
        actor: &Actor,
        kind: &str,
        value: &str,
        hops: u8,
        now: portcullis_core::time::UnixMillis,
    ) -> AppResult<portcullis_engine::GraphView> {
        actor.require_operator(Permission::ReviewChanges)?;
        let kind = entity_kind(kind)?;
        if hops > portcullis_engine::MAX_VIEW_HOPS {
            return Err(AppError::invalid(
                ErrorCode::InvalidQuery,
                format!("`hops` must be 0 to {}", portcullis_engine::MAX_VIEW_HOPS),
            ));
        }
        if self.partitioned() {
            let asked = (self.views)
                .ask(|reply| ViewRequest::Graph {
                    kind,
                    value: value.to_owned(),
                    hops,
                    max_nodes: GRAPH_VIEW_NODES,
                    now: now.as_millis(),
                    reply,
                })
                .await;
            let (_, view) = asked.ok_or_else(no_partition_view)?;
            return view.ok_or_else(|| unknown_entity(kind, value));
        }
        let cursor = self.cursor.read().await;
        cursor
            .engine
            .graph_view(kind, value, hops, GRAPH_VIEW_NODES, now.as_millis())
            .ok_or_else(|| unknown_entity(kind, value))
    }
}

impl Risk {
    /// Puts the operators' overrides in force (`Engine::set_overrides`) and spreads the force
    /// overrides that started by `now` at once; what they marked waits for the guard
    /// (`take_propagations`), as a confirmation's does.
    pub async fn set_overrides(
        &self,
        overrides: Vec<portcullis_engine::Override>,
        now: portcullis_core::time::UnixMillis,
    ) {
        let mut cursor = self.cursor.write().await;
        cursor.engine.set_overrides(overrides);
        cursor.engine.spread_forces(now.as_millis());
        self.queue_propagations(&mut cursor.engine);
    }

    /// Whether the graph holds the entity (`kind` and `value` canonical). In a partitioned
    /// deployment a partition at work here answers, as of its progress; with none, 503
    /// `partition_view_unavailable` (an empty engine's "no" would refuse every entity, its
    /// "yes" none, and skipping the check would let any value through).
    pub async fn knows_entity(
        &self,
        kind: portcullis_engine::EntityKind,
        value: &str,
    ) -> AppResult<bool> {
        if self.partitioned() {
            let asked = (self.views)
                .ask(|reply| ViewRequest::Knows {
                    kind,
                    value: value.to_owned(),
                    reply,
                })
                .await;
            return asked.map(|(_, known)| known).ok_or_else(no_partition_view);
        }
        Ok(self.cursor.read().await.engine.knows_entity(kind, value))
    }

    /// The partitions at work in this process, which answer its views of the shared state.
    pub fn partition_views(&self) -> &Arc<crate::partitions::PartitionViews> {
        &self.views
    }
}

/// The most nodes a graph view returns (then `truncated`).
pub const GRAPH_VIEW_NODES: usize = 2_000;

/// An entity kind by name, or `invalid_entity`.
pub(crate) fn entity_kind(kind: &str) -> AppResult<portcullis_engine::EntityKind> {
    portcullis_engine::EntityKind::parse(kind).ok_or_else(|| {
        AppError::invalid(
            ErrorCode::InvalidEntity,
            format!("`{kind}` is not an entity kind (account, address, ip, device, number)"),
        )
    })
}

/// A partitioned deployment's process that works no partition now holds no view of the graph.
fn no_partition_view() -> AppError {
    AppError::invalid(
        ErrorCode::PartitionViewUnavailable,
        "this process works no engine partition now (their leases are held by other processes, or it is starting), so it holds no view of the entity graph: retry, or ask another node",
    )
}

pub(crate) fn unknown_entity(kind: portcullis_engine::EntityKind, value: &str) -> AppError {
    AppError::invalid(
        ErrorCode::UnknownEntity,
        format!("the graph holds no {} `{value}`", kind.as_str()),
    )
}
