//! What an analyst sees of the graph around one entity: the nodes within a few hops, the edges
//! between them, and each node's mark and override. Bounded in hops and nodes; the order is
//! the breadth-first order from the entity, ties by id, so one state gives one view.

use crate::engine::Engine;
use crate::entities::{Mark, OverrideMode};
use crate::graph::{EntityKind, NodeId};
use serde::Serialize;
use std::borrow::Cow;
use std::collections::{BTreeMap, VecDeque};

/// The most hops a view reaches.
pub const MAX_VIEW_HOPS: u8 = 3;

/// One node of a view.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ViewNode {
    pub kind: EntityKind,
    pub value: String,
    pub hops: u8,
    pub first_seen: i64,
    pub last_seen: i64,
    /// Shared infrastructure: linked to too many accounts to mean anything, not crossed.
    pub shared: bool,
    pub mark: Option<Mark>,
    #[serde(rename = "override")]
    pub override_mode: Option<OverrideMode>,
    /// The open campaign alert on it, if any.
    pub alert: Option<String>,
}

/// One edge of a view: always between an account and an entity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ViewEdge {
    pub account: String,
    pub kind: EntityKind,
    pub value: String,
    pub link: String,
    pub first_seen: i64,
    pub last_seen: i64,
    pub event_id: String,
}

/// The graph around an entity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GraphView {
    pub nodes: Vec<ViewNode>,
    pub edges: Vec<ViewEdge>,
    /// Some nodes were left out to keep to the limit.
    pub truncated: bool,
}

impl Engine {
    /// The graph within `hops` (at most [`MAX_VIEW_HOPS`]) of the entity `kind:value`, at
    /// most `max_nodes` nodes, marks as they count at `now`; `None` for an entity the graph
    /// does not hold (no event named it, or it expired).
    pub fn graph_view(
        &self,
        kind: EntityKind,
        value: &str,
        hops: u8,
        max_nodes: usize,
        now: i64,
    ) -> Option<GraphView> {
        let network = &self.global.network;
        let graph = &network.graph;
        let value = kind.canonical(value)?;
        let start = graph.find(kind, &value)?;
        let hops = hops.min(MAX_VIEW_HOPS);
        let mut order: BTreeMap<u32, u8> = BTreeMap::new();
        let mut nodes = Vec::new();
        let mut truncated = false;
        let mut queue = VecDeque::from([(start, 0_u8)]);
        order.insert(start, 0);
        while let Some((slot, depth)) = queue.pop_front() {
            let Some(node) = graph.at(slot) else {
                continue;
            };
            let id = NodeId::of(node.kind(), &graph.value(node));
            nodes.push(ViewNode {
                kind: node.kind(),
                value: graph.value(node).into_owned(),
                hops: depth,
                first_seen: node.first_ms(),
                last_seen: node.last_ms(),
                shared: node.shared(),
                mark: network.mark_on(id, now),
                override_mode: network.override_on(id, now).map(|o| o.mode),
                alert: network.alerts.open_on(id, now).map(|a| a.id.clone()),
            });
            if depth >= hops || node.shared() {
                continue;
            }
            // Neighbours in the order of their kind and value, so that the view does not
            // depend on where the graph happens to keep them.
            let mut next: Vec<(EntityKind, Cow<'_, str>, u32)> = graph
                .edges(slot)
                .iter()
                .filter_map(|e| graph.at(e.to()).map(|n| (n.kind(), graph.value(n), e.to())))
                .collect();
            next.sort_unstable();
            next.dedup();
            for (_, _, to) in next {
                if order.contains_key(&to) {
                    continue;
                }
                if order.len() >= max_nodes {
                    truncated = true;
                    break;
                }
                order.insert(to, depth + 1);
                queue.push_back((to, depth + 1));
            }
        }
        let edges = view_edges(self, &order);
        Some(GraphView {
            nodes,
            edges,
            truncated,
        })
    }
}

/// The edges between the view's nodes, from the accounts' side, in a stable order.
fn view_edges(engine: &Engine, included: &BTreeMap<u32, u8>) -> Vec<ViewEdge> {
    let graph = &engine.global.network.graph;
    let mut edges = Vec::new();
    for slot in included.keys() {
        let Some(node) = graph.at(*slot).filter(|n| n.kind() == EntityKind::Account) else {
            continue;
        };
        for edge in graph
            .edges(*slot)
            .iter()
            .filter(|e| included.contains_key(&e.to()))
        {
            let Some(entity) = graph.at(edge.to()) else {
                continue;
            };
            edges.push(ViewEdge {
                account: graph.value(node).into_owned(),
                kind: entity.kind(),
                value: graph.value(entity).into_owned(),
                link: edge.kind().as_str().to_owned(),
                first_seen: edge.first_ms(),
                last_seen: edge.last_ms(),
                event_id: graph.event(edge).into_owned(),
            });
        }
    }
    edges.sort_by(|a, b| {
        (&a.account, a.kind, &a.value, &a.link).cmp(&(&b.account, b.kind, &b.value, &b.link))
    });
    edges
}

impl Engine {
    /// Campaign alerts opened or grown since the last call, in the order they changed.
    pub fn take_alerts(&mut self) -> Vec<crate::Alert> {
        self.global.network.alerts.take_changed()
    }

    /// What confirmations marked since the last call.
    pub fn take_propagations(&mut self) -> Vec<crate::Propagation> {
        std::mem::take(&mut self.global.network.propagations)
    }

    /// The alert with this id, while the engine remembers it.
    pub fn alert(&self, id: &str) -> Option<crate::Alert> {
        self.global.network.alerts.by_id(id).map(|(_, a)| a.clone())
    }

    /// Every alert the engine remembers, by id.
    pub fn alerts(&self) -> Vec<crate::Alert> {
        let mut alerts: Vec<crate::Alert> = self
            .global
            .network
            .alerts
            .by_entity
            .values()
            .cloned()
            .collect();
        alerts.sort_by(|a, b| a.id.cmp(&b.id));
        alerts
    }

    /// Puts the operators' overrides in force (replacing the previous set). Values are
    /// canonicalised; ones that are not valid for their kind are skipped.
    pub fn set_overrides(&mut self, overrides: Vec<crate::Override>) {
        let network = &mut self.global.network;
        network.overrides.clear();
        for mut item in overrides {
            let Some(value) = item.kind.canonical(&item.value) else {
                continue;
            };
            item.value = value;
            let id = NodeId::of(item.kind, &item.value);
            network.overrides.entry(id).or_default().push(item);
        }
        network.overrides_changed();
    }

    /// Spreads the force overrides that started by `now` (the service's clock) at once, rather
    /// than at the next event (`Network::spread_forces_due`).
    pub fn spread_forces(&mut self, now: i64) {
        self.global.network.spread_forces_due(now);
    }

    /// Whether the graph holds the entity.
    pub fn knows_entity(&self, kind: EntityKind, value: &str) -> bool {
        kind.canonical(value)
            .is_some_and(|v| self.global.network.graph.node(kind, &v).is_some())
    }

    /// The network (graph, alerts, marks) as bytes: equal for two replays of one feed.
    pub fn network_bytes(&self) -> Vec<u8> {
        postcard::to_allocvec(&self.global.network).unwrap_or_default()
    }
}
