//! `Queues` across simulated processes, on a simulated exchange's feed, decide what one engine decides: partitions fed the
//! stream in chunks of random sizes, the bus delivered late and in bursts, steps taken in a
//! seeded random order, and partitions put back from their own checkpoints mid-run (reading
//! the stream and the bus again from where the checkpoint says). What a partition knows of the
//! others beyond their reports (`Others`) is what lets them go without waiting for every
//! message; these runs are where an inference too bold would decide on missing facts.

#![allow(clippy::unwrap_used, clippy::panic, clippy::cast_possible_truncation)]

use super::tests::{Item, default_in_force, one_engine, stream, test_seal};
use super::*;

/// A seeded xorshift: the schedule is the test's, reproducible from the seed.
struct Dice(u64);

impl Dice {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        usize::try_from(self.0 % n as u64).unwrap()
    }
}

fn lines(accounts: u32, days: u32, seed: u64) -> Vec<Item> {
    let config = portcullis_sim::Config::new(accounts, days, seed);
    let events = portcullis_sim::simulate(&config).unwrap().rendered.events;
    events.into_iter().map(Item::Event).collect()
}

/// A partition as a process holds it: its queues, and how far it read the stream and the bus.
struct Node {
    queues: Queues,
    stream_at: usize,
    bus_at: usize,
    published: u64,
}

impl Node {
    fn new(queues: Queues) -> Self {
        let (stream_at, bus_at) = (queues.stream_from() as usize - 1, 0);
        let published = queues.complete_own();
        let mut node = Self {
            queues,
            stream_at,
            bus_at,
            published,
        };
        node.bus_at = node.queues.bus_read_from() as usize - 1;
        node
    }
}

/// `count` partitions over `lines` under the schedule `seed` picks; every decision stored.
fn partitioned(lines: &[Item], count: u32, seed: u64) -> BTreeMap<String, StoredDecision> {
    let stream = stream(lines, count);
    let mut bus: Vec<FactBatch> = Vec::new();
    let mut nodes: Vec<Node> = (0..count)
        .map(|p| {
            let (policy, in_force) = default_in_force();
            Node::new(Queues::new(policy, in_force, p, count))
        })
        .collect();
    let mut dice = Dice(seed);
    let seal = test_seal();
    let mut decided = BTreeMap::new();
    let delivered = |nodes: &[Node], bus: &[FactBatch]| {
        (nodes.iter()).all(|n| n.stream_at == stream.len() && n.bus_at == bus.len())
    };
    while !delivered(&nodes, &bus) {
        let p = dice.below(count as usize);
        let node = &mut nodes[p];
        match dice.below(5) {
            0 | 1 if node.stream_at < stream.len() => {
                let upto = (node.stream_at + 1 + dice.below(40)).min(stream.len());
                let refused = node
                    .queues
                    .take_events(stream[node.stream_at..upto].to_vec(), &seal);
                assert!(refused.is_empty(), "{refused:?}");
                node.stream_at = upto;
            }
            2 if node.bus_at < bus.len() => {
                let upto = (node.bus_at + 1 + dice.below(4)).min(bus.len());
                for batch in &bus[node.bus_at..upto] {
                    node.queues.take_facts(batch.clone()).unwrap();
                }
                node.bus_at = upto;
            }
            3 if dice.below(60) == 0 => {
                // Put back from its own checkpoint, reading again from where it says.
                let bytes = node.queues.checkpoint().unwrap();
                let queues = Queues::from_checkpoint(&bytes, default_in_force()).unwrap();
                *node = Node::new(queues);
            }
            _ => round(node, p as u32, &mut bus, &mut decided),
        }
    }
    // Everything delivered: rounds and deliveries until nothing moves.
    loop {
        let (messages, decisions) = (bus.len(), decided.len());
        for (p, node) in nodes.iter_mut().enumerate() {
            for batch in &bus[node.bus_at..] {
                node.queues.take_facts(batch.clone()).unwrap();
            }
            node.bus_at = bus.len();
            round(node, p as u32, &mut bus, &mut decided);
        }
        if bus.len() == messages && decided.len() == decisions {
            return decided;
        }
    }
}

/// What the runner does in a round: step, keep the decisions, publish facts and progress.
fn round(
    node: &mut Node,
    partition: u32,
    bus: &mut Vec<FactBatch>,
    decided: &mut BTreeMap<String, StoredDecision>,
) {
    let stepped = node.queues.step();
    for stored in stepped.decisions {
        let id = stored.event_id.clone();
        if let Some(earlier) = decided.insert(id, stored.clone()) {
            assert_eq!(earlier, stored, "decided twice, differently");
        }
    }
    let complete = node.queues.complete_own();
    if complete > node.published || !stepped.facts.is_empty() {
        bus.push(FactBatch {
            seq: bus.len() as u64 + 1,
            partition,
            facts: stepped.facts,
            complete_through: complete,
        });
        node.published = complete;
    }
}

#[test]
fn partitions_fed_at_random_decide_what_one_engine_decides() {
    let lines = lines(300, 10, 5);
    let expected = one_engine(&lines);
    assert!(expected.len() > 200, "{} decisions", expected.len());
    for (count, seed) in [(2, 11), (3, 12), (4, 13), (3, 14)] {
        let got = partitioned(&lines, count, seed);
        for (id, decision) in &expected {
            assert_eq!(
                got.get(id),
                Some(decision),
                "{count} partitions, seed {seed}: {id}"
            );
        }
        assert_eq!(got.len(), expected.len(), "{count} partitions, seed {seed}");
    }
}

#[test]
fn another_partition_is_complete_up_to_its_next_event_but_not_where_a_restart_did_not_look() {
    // Read again from position 11 after a restart: partition 1 reported 5, and what it had
    // between 6 and 10 was not read again.
    let mut others = Others::new(2, 10);
    let mut complete = vec![0, 5];
    others.read(1, 14, &complete);
    assert_eq!(others.complete_through(1, 5, 20), 5, "blind before 11");
    complete[1] = 10;
    others.reported(1, 10);
    assert_eq!(
        others.complete_through(1, 10, 20),
        13,
        "up to its next event"
    );
    complete[1] = 14;
    others.reported(1, 14);
    assert_eq!(
        others.complete_through(1, 14, 22),
        22,
        "nothing of its own read after 14"
    );
    others.read(1, 25, &complete);
    assert_eq!(others.complete_through(1, 14, 30), 24, "its event at 25");
    assert_eq!(
        others.complete_through(1, 40, 30),
        40,
        "its report ahead of the reading"
    );
}
