//! The entity graph's unit tests (`graph`).

use super::node::{BLOCK, ONE};
use super::*;

#[test]
fn links_join_accounts_through_entities_both_ways() {
    let mut graph = Graph::default();
    let ip = graph.link(
        "a1",
        EntityKind::Ip,
        "203.0.113.7",
        EdgeKind::AllowListed,
        "e1",
        10,
    );
    graph.link(
        "a2",
        EntityKind::Ip,
        "203.0.113.7",
        EdgeKind::ActedFrom,
        "e2",
        20,
    );
    let ip = ip.map(|(slot, _)| graph.distinct_accounts(slot));
    assert_eq!(ip, Some(2));
    let a1 = graph.node(EntityKind::Account, "a1");
    assert_eq!(a1.map(|n| graph.degree(n)), Some(1));
}

#[test]
fn a_widely_used_entity_is_labelled_shared_and_keeps_no_edges() {
    let mut graph = Graph::default();
    for n in 0..=SHARED_AT {
        graph.link(
            &format!("a{n}"),
            EntityKind::Address,
            "hot",
            EdgeKind::WithdrewTo,
            "e",
            1,
        );
    }
    let hot = graph.node(EntityKind::Address, "hot");
    assert!(hot.is_some_and(|n| n.shared() && graph.degree(n) == 0));
    let a0 = graph.node(EntityKind::Account, "a0");
    assert!(a0.is_some_and(|n| graph.degree(n) == 0));
}

#[test]
fn edges_and_nodes_expire_by_kind() {
    let mut graph = Graph::default();
    graph.link(
        "a1",
        EntityKind::Ip,
        "198.51.100.1",
        EdgeKind::ActedFrom,
        "e1",
        0,
    );
    graph.link(
        "a1",
        EntityKind::Address,
        "T1",
        EdgeKind::WithdrewTo,
        "e2",
        0,
    );
    graph.sweep(31 * DAY_MS);
    assert!(graph.node(EntityKind::Ip, "198.51.100.1").is_none());
    assert!(graph.node(EntityKind::Address, "T1").is_some());
}

#[test]
fn an_account_keeps_a_bounded_number_of_edges() {
    let mut graph = Graph::default();
    for n in 0..200_i64 {
        graph.link(
            "a1",
            EntityKind::Device,
            &format!("d{n}"),
            EdgeKind::UsedDevice,
            "e",
            n,
        );
    }
    let a1 = graph.node(EntityKind::Account, "a1");
    assert_eq!(a1.map(|n| graph.degree(n)), Some(MAX_ACCOUNT_EDGES));
}

#[test]
fn a_sweep_reuses_slots_and_keeps_texts_and_a_checkpoint_rebuilds_the_index() {
    let mut graph = Graph::default();
    graph.link(
        "a1",
        EntityKind::Ip,
        "198.51.100.1",
        EdgeKind::ActedFrom,
        "old-event",
        0,
    );
    graph.link(
        "a1",
        EntityKind::Address,
        "T1",
        EdgeKind::WithdrewTo,
        "e2",
        0,
    );
    graph.sweep(31 * DAY_MS);
    assert_eq!(graph.free.len(), 1, "the expired IP's slot is free");
    graph.link(
        "a2",
        EntityKind::Device,
        "d2",
        EdgeKind::UsedDevice,
        "e3",
        31 * DAY_MS,
    );
    assert!(graph.free.is_empty(), "and reused");
    let bytes = postcard::to_allocvec(&graph).unwrap_or_default();
    let restored: Graph = postcard::from_bytes(&bytes).unwrap_or_default();
    let t1 = restored.find(EntityKind::Address, "T1").unwrap_or(u32::MAX);
    assert_eq!(
        restored.at(t1).map(|n| restored.value(n)),
        Some("T1".into())
    );
    let edge = restored.edges(t1).first().copied();
    assert_eq!(edge.as_ref().map(|e| restored.event(e)), Some("e2".into()));
    let a1 = restored.find(EntityKind::Account, "a1").unwrap_or(u32::MAX);
    let from_account = restored.edges(a1).first().copied();
    assert_eq!(from_account.map(|e| (e.to(), e.first_ms())), Some((t1, 0)));
    let d2 = restored.find(EntityKind::Device, "d2").unwrap_or(u32::MAX);
    let owner = restored.edges(d2).first().and_then(|e| restored.at(e.to()));
    assert_eq!(owner.map(|n| restored.value(n)), Some("a2".into()));
    assert!(
        !(restored.text.iter().copied().collect::<Vec<u8>>())
            .windows(3)
            .any(|w| w == b"old"),
        "the arena was compacted"
    );
}

#[test]
fn an_edge_kept_in_its_node_keeps_its_own_times_when_the_node_is_seen_again() {
    let mut graph = Graph::default();
    let times = |graph: &Graph, slot: u32| -> Vec<(i64, i64)> {
        let edges = graph.edges(slot);
        edges.iter().map(|e| (e.first_ms(), e.last_ms())).collect()
    };
    let ip = "198.51.100.9";
    let link = |graph: &mut Graph, account: &str, ts: i64| {
        graph.link(account, EntityKind::Ip, ip, EdgeKind::ActedFrom, "e", ts)
    };
    let slot = link(&mut graph, "a1", 10_000).map_or(u32::MAX, |(s, _)| s);
    link(&mut graph, "a1", 30_000);
    assert_eq!(
        graph.at(slot).map(|n| n.layout),
        Some(ONE),
        "kept in the node"
    );
    assert_eq!(times(&graph, slot), vec![(10_000, 30_000)]);
    link(&mut graph, "a2", 50_000);
    assert_eq!(graph.at(slot).map(|n| n.layout), Some(BLOCK));
    assert_eq!(
        times(&graph, slot),
        vec![(10_000, 30_000), (50_000, 50_000)]
    );
    // The second account's edge goes: the first keeps its times, not the node's.
    let a2 = graph.find(EntityKind::Account, "a2").unwrap_or(u32::MAX);
    graph.remove_entity_edge(slot, a2, EdgeKind::ActedFrom);
    assert_eq!(times(&graph, slot), vec![(10_000, 30_000)]);
    assert_eq!(graph.at(slot).map(|n| n.layout), Some(BLOCK));
    let node = graph.at(slot).map(|n| (n.first_ms(), n.last_ms()));
    assert_eq!(node, Some((10_000, 50_000)));
    // Seen by it again up to the node's times, it is kept in the node again.
    link(&mut graph, "a1", 50_000);
    assert_eq!(graph.at(slot).map(|n| n.layout), Some(ONE));
    assert_eq!(times(&graph, slot), vec![(10_000, 50_000)]);
    let a1 = graph.find(EntityKind::Account, "a1").unwrap_or(u32::MAX);
    assert_eq!(
        times(&graph, a1),
        vec![(10_000, 50_000)],
        "read from the account"
    );
}

#[test]
fn a_node_with_its_one_edge_or_link_is_18_bytes() {
    assert_eq!(super::node::NODE_BYTES, 18);
    let edge = Edge::of_words(&[to_kind(SLOT_MASK, EdgeKind::Reported), 7, 8, 9]);
    assert_eq!((edge.to(), edge.kind()), (SLOT_MASK, EdgeKind::Reported));
}

#[test]
fn texts_are_read_back_whole_across_the_arenas_pages() {
    let mut graph = Graph::default();
    // Values of 250 bytes (251 with their length, beside the accounts' ids and the events'):
    // the first page of the arena is full before the last of them, which is read back whole.
    let value = |n: usize| format!("{n:0>250}");
    for n in 0..4500 {
        let account = format!("a{n}");
        graph.link(
            &account,
            EntityKind::Device,
            &value(n),
            EdgeKind::UsedDevice,
            "e",
            1,
        );
    }
    assert!(graph.text.len() > TEXT_PAGE, "more than a page");
    for n in 0..4500 {
        let node = graph.node(EntityKind::Device, &value(n));
        assert_eq!(
            node.map(|node| graph.value(node).into_owned()),
            Some(value(n))
        );
    }
}
