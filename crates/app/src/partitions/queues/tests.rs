//! Partitions fed one stream in one process, their fact bus simulated: operators' changes on
//! the control subject and the id check give exactly what one engine gives when it takes the
//! same changes at the same places of the feed (`Risk::set_overrides`, `Engine::set_policy`,
//! `Engine::process`), also for partitions put back from their checkpoints midway.

use super::{Control, InForce, Queues};
use crate::partitions::{ControlMessage, ControlSeal};
use crate::ports::{FactBatch, StoredDecision, StreamEvent};
use portcullis_core::contract::{ContractEvent, parse_line};
use portcullis_core::partition::{event_partition, partition_of};
use portcullis_core::time::UnixMillis;
use portcullis_engine::{Engine, EntityKind, Outcome, Override, OverrideMode, Policy};
use std::collections::BTreeMap;

const N: u32 = 2;
const F: i64 = 1_772_409_600_000;
const MINUTE: i64 = 60_000;

/// What the stream holds at one position.
#[derive(Clone)]
pub(super) enum Item {
    Event(String),
    /// An operator's change, sealed by a serve process when the stream is made.
    Control(Control),
    /// These bytes on the control subject.
    Sealed(Vec<u8>),
}

/// The keyring's control keys of the serve processes in these tests.
pub(super) fn test_seal() -> ControlSeal {
    ControlSeal::derive("test", &[("test", &[7u8; 32])]).unwrap()
}

/// `control` as a serve process puts it on the control subject, sent at `sent_at`.
fn sealed(control: Control, sent_at: i64) -> Vec<u8> {
    test_seal().seal(&ControlMessage::new(control, sent_at).unwrap())
}

/// When a control message of the feed was sent: at its change's time.
fn sent_at(control: &Control) -> i64 {
    match control {
        Control::Overrides { at, .. } | Control::OverridesChanged { at, .. } => *at,
        Control::Policy { .. } => F,
    }
}

fn at(ms: i64) -> String {
    UnixMillis(ms).to_rfc3339()
}

fn account(prefix: &str, partition: u32) -> String {
    (0..)
        .map(|n| format!("{prefix}{n}"))
        .find(|a| partition_of(a, N) == partition)
        .unwrap_or_default()
}

fn login(id: &str, ms: i64, account: &str, ip: &str) -> Item {
    Item::Event(format!(
        r#"{{"id":"{id}","ts":"{}","type":"login","account":"{account}","method":"password","success":true,"ctx":{{"ip":"{ip}","device_id":"d-{account}"}}}}"#,
        at(ms)
    ))
}

fn withdrawal(id: &str, ms: i64, account: &str, address: &str) -> Item {
    Item::Event(format!(
        r#"{{"id":"{id}","ts":"{}","type":"withdrawal.requested","account":"{account}","withdrawal_id":"w-{id}","asset":"USDT","network":"TRX","address":"{address}","amount":"900","amount_usd":900.0,"ctx":{{"ip":"198.51.100.9","device_id":"d-{account}","channel":"web"}}}}"#,
        at(ms)
    ))
}

fn forced(address: &str, from: i64) -> Override {
    Override {
        kind: EntityKind::Address,
        value: address.into(),
        mode: OverrideMode::Force,
        from,
        expires_at: None,
    }
}

/// An operator forcing `address` at `from`.
fn force(address: &str, from: i64) -> Control {
    Control::OverridesChanged {
        ended: Vec::new(),
        set: vec![forced(address, from)],
        at: from,
    }
}

/// The default policy with every withdrawal blocked.
fn strict_policy() -> String {
    format!(
        "{}\n[[rule]]\nid = \"every_withdrawal\"\ndescription = \"Test: every withdrawal.\"\nwhen = \"event_type == 'withdrawal.requested'\"\naction = \"block\"\nscore = 100\n",
        portcullis_engine::DEFAULT_POLICY
    )
}

pub(super) fn default_in_force() -> (Policy, InForce) {
    let policy = Policy::default_policy().unwrap();
    let in_force = InForce::new(0, None, &policy, Vec::new());
    (policy, in_force)
}

/// One engine over the items, taking a control message as the single engine's service does.
pub(super) fn one_engine(items: &[Item]) -> BTreeMap<String, StoredDecision> {
    let mut engine = Engine::new(Policy::default_policy().unwrap());
    let mut decided = BTreeMap::new();
    // What the store holds, as the engine takes it (`engine_overrides`).
    let mut stored: Vec<Override> = Vec::new();
    for item in items {
        let opened;
        let item = match item {
            Item::Sealed(bytes) => {
                opened = Item::Control(test_seal().open(bytes).unwrap().control);
                &opened
            }
            item => item,
        };
        match item {
            Item::Event(line) => {
                let event = parse_line(line).unwrap();
                if let Outcome::Decided(decision, features) = engine.process(&event) {
                    let stored = crate::risk::stored_decision(&event, &decision, &features);
                    decided.insert(event.id.clone(), stored);
                }
            }
            Item::Control(Control::Overrides { overrides, at }) => {
                stored.clone_from(overrides);
                engine.set_overrides(stored.clone());
                engine.spread_forces(*at);
            }
            Item::Control(Control::OverridesChanged { ended, set, at }) => {
                super::control::change_overrides(&mut stored, ended, set.clone(), *at);
                engine.set_overrides(stored.clone());
                engine.spread_forces(*at);
            }
            Item::Control(Control::Policy { text, .. }) => {
                engine.set_policy(Policy::parse(text).unwrap());
            }
            Item::Sealed(_) => unreachable!("opened above"),
        }
    }
    decided
}

/// The stream of `items` for `count` partitions.
pub(super) fn stream(items: &[Item], count: u32) -> Vec<StreamEvent> {
    (items.iter().enumerate())
        .map(|(index, item)| {
            let position = index as u64 + 1;
            match item {
                Item::Event(line) => {
                    let event: ContractEvent = parse_line(line).unwrap();
                    StreamEvent {
                        position,
                        subject_partition: event_partition(&event, count),
                        control: false,
                        body: line.clone().into_bytes(),
                    }
                }
                Item::Control(control) => StreamEvent {
                    position,
                    subject_partition: None,
                    control: true,
                    body: sealed(control.clone(), sent_at(control)),
                },
                Item::Sealed(bytes) => StreamEvent {
                    position,
                    subject_partition: None,
                    control: true,
                    body: bytes.clone(),
                },
            }
        })
        .collect()
}

/// `N` partitions and their bus.
struct Cluster {
    parts: Vec<Queues>,
    bus: Vec<FactBatch>,
    decided: BTreeMap<String, StoredDecision>,
    /// The ignored events recorded (the first reason recorded for each).
    ignored: BTreeMap<String, String>,
}

impl Cluster {
    fn new() -> Self {
        let parts = (0..N)
            .map(|p| {
                let (policy, in_force) = default_in_force();
                Queues::new(policy, in_force, p, N)
            })
            .collect();
        Self {
            parts,
            bus: Vec::new(),
            decided: BTreeMap::new(),
            ignored: BTreeMap::new(),
        }
    }

    /// Feeds partition `p` the stream from where it reads, the bus from where it reads, and
    /// runs every partition until nothing moves.
    fn run(&mut self, stream: &[StreamEvent], upto: usize) {
        for p in 0..self.parts.len() {
            self.feed(p, stream, upto);
        }
        for _ in 0..1_000 {
            let before = self.progress();
            for p in 0..self.parts.len() {
                let stepped = self.parts[p].step();
                for ignored in stepped.ignored {
                    self.ignored
                        .entry(ignored.event_id)
                        .or_insert(ignored.reason);
                }
                for decision in stepped.decisions {
                    let previous = self.decided.insert(decision.event_id.clone(), decision);
                    assert!(previous.is_none(), "a decision made twice");
                }
                let batch = FactBatch {
                    seq: self.bus.len() as u64 + 1,
                    partition: u32::try_from(p).unwrap(),
                    facts: stepped.facts,
                    complete_through: self.parts[p].complete_own(),
                };
                self.bus.push(batch.clone());
                for queues in &mut self.parts {
                    queues.take_facts(batch.clone()).unwrap();
                }
            }
            if self.progress() == before {
                return;
            }
        }
        panic!("the partitions do not settle");
    }

    /// Where each partition stands, and what it knows of the others: nothing moved when this
    /// stays.
    fn progress(&self) -> Vec<(u64, (u64, u64), Vec<u64>)> {
        (self.parts.iter())
            .map(|q| {
                (
                    q.complete_own(),
                    q.partition().through(),
                    q.complete.clone(),
                )
            })
            .collect()
    }

    fn feed(&mut self, p: usize, stream: &[StreamEvent], upto: usize) {
        let from = usize::try_from(self.parts[p].stream_from()).unwrap();
        let events = stream[from - 1..upto].to_vec();
        assert!(self.parts[p].take_events(events, &test_seal()).is_empty());
    }

    /// Partition `p` put back from its checkpoint (with `current` as "what is in force now",
    /// which the checkpoint must not need), reading the bus again from where it says.
    fn restart(&mut self, p: usize, current: (Policy, InForce)) {
        let bytes = self.parts[p].checkpoint().unwrap();
        let mut queues = Queues::from_checkpoint(&bytes, current).unwrap();
        let from = usize::try_from(queues.bus_read_from()).unwrap();
        for batch in self.bus.iter().skip(from.saturating_sub(1)) {
            queues.take_facts(batch.clone()).unwrap();
        }
        self.parts[p] = queues;
    }
}

/// A feed where an operator forces an address and then publishes a policy, with withdrawals
/// of both partitions' accounts before and after each.
fn operated_feed() -> Vec<Item> {
    let (x, y) = (account("x", 0), account("y", 1));
    let strict = Control::Policy {
        publication: 1,
        version: Some(1),
        text: strict_policy(),
    };
    vec![
        login("e1", F - 30 * MINUTE, &x, "192.0.2.1"),
        login("e2", F - 29 * MINUTE, &y, "192.0.2.2"),
        withdrawal("e3", F - 20 * MINUTE, &y, "TQforced"),
        withdrawal("e4", F - 19 * MINUTE, &x, "TQforced"),
        Item::Control(force("TQforced", F - 10 * MINUTE)),
        withdrawal("e5", F - 9 * MINUTE, &y, "TQforced"),
        withdrawal("e6", F - 8 * MINUTE, &x, "TQother"),
        Item::Control(strict),
        withdrawal("e7", F - 7 * MINUTE, &x, "TQother"),
        login("e8", F - 6 * MINUTE, &y, "192.0.2.2"),
        withdrawal("e9", F - 5 * MINUTE, &y, "TQelsewhere"),
    ]
}

#[test]
fn overrides_and_policies_on_the_control_subject_act_where_one_engine_takes_them() {
    let items = operated_feed();
    let expected = one_engine(&items);
    // The changes matter: without them the same withdrawals are decided otherwise.
    let plain: Vec<Item> = (items.iter())
        .filter(|item| matches!(item, Item::Event(_)))
        .cloned()
        .collect();
    let unchanged = one_engine(&plain);
    for id in ["e5", "e7", "e9"] {
        assert_ne!(expected[id].decision, unchanged[id].decision, "{id}");
    }
    assert_eq!(expected["e3"], unchanged["e3"], "before the override");

    let stream = stream(&items, N);
    let mut cluster = Cluster::new();
    cluster.run(&stream, stream.len());
    assert_eq!(cluster.decided, expected);
    for queues in &cluster.parts {
        assert_eq!(queues.in_force().publication, 1);
        assert_eq!(queues.in_force().overrides.len(), 1);
    }
    // The reports are partition 0's to make; taken, the shared states are the same bytes.
    let reported: Vec<usize> = (cluster.parts.iter_mut())
        .map(|q| {
            let engine = q.partition_mut().engine_mut();
            engine.take_alerts();
            engine.take_propagations().len()
        })
        .collect();
    assert_eq!(reported, [1, 0], "the force's propagation is reported once");
    assert_eq!(
        cluster.parts[0].partition().engine().network_bytes(),
        cluster.parts[1].partition().engine().network_bytes()
    );
}

/// Runs the items through partitions that restart from their checkpoints after a position,
/// for every position (told that nothing is in force now: a checkpoint that relied on it would
/// decide otherwise); every run decides as one engine. Returns the runs.
fn restarted_anywhere(items: &[Item]) -> Vec<Cluster> {
    restarted_anywhere_against(items, &one_engine(items))
}

/// `restarted_anywhere`, each run deciding `expected`.
fn restarted_anywhere_against(
    items: &[Item],
    expected: &BTreeMap<String, StoredDecision>,
) -> Vec<Cluster> {
    let stream = stream(items, N);
    (0..stream.len())
        .map(|cut| {
            let mut cluster = Cluster::new();
            cluster.run(&stream, cut);
            for p in 0..N as usize {
                cluster.restart(p, default_in_force());
            }
            cluster.run(&stream, stream.len());
            assert_eq!(&cluster.decided, expected, "restarted after position {cut}");
            cluster
        })
        .collect()
}

#[test]
fn partitions_put_back_from_checkpoints_after_the_changes_decide_the_same() {
    assert!(restarted_anywhere(&operated_feed()).len() > 10);
}

#[test]
fn two_operators_forcing_at_once_on_two_processes_both_hold() {
    let (x, y) = (account("x", 0), account("y", 1));
    // Each process saw no override when its operator forced an address.
    let items = vec![
        login("e1", F - 30 * MINUTE, &x, "192.0.2.1"),
        login("e2", F - 29 * MINUTE, &y, "192.0.2.2"),
        Item::Control(force("TQone", F - 10 * MINUTE)),
        Item::Control(force("TQtwo", F - 10 * MINUTE + 1)),
        withdrawal("e3", F - 9 * MINUTE, &y, "TQone"),
        withdrawal("e4", F - 8 * MINUTE, &x, "TQtwo"),
    ];
    let expected = one_engine(&items);
    let unforced = one_engine(&[
        items[0].clone(),
        items[1].clone(),
        items[4].clone(),
        items[5].clone(),
    ]);
    for id in ["e3", "e4"] {
        assert_ne!(expected[id].decision, unforced[id].decision, "{id}: forced");
    }
    let stream = stream(&items, N);
    let mut cluster = Cluster::new();
    cluster.run(&stream, stream.len());
    assert_eq!(cluster.decided, expected);
    for queues in &cluster.parts {
        assert_eq!(queues.in_force().overrides.len(), 2);
    }
}

#[test]
fn a_whole_list_of_overrides_from_the_version_before_is_still_applied() {
    let (x, y) = (account("x", 0), account("y", 1));
    let whole = Control::Overrides {
        overrides: vec![forced("TQold", F - 10 * MINUTE)],
        at: F - 10 * MINUTE,
    };
    let items = vec![
        login("e1", F - 30 * MINUTE, &x, "192.0.2.1"),
        Item::Control(whole),
        withdrawal("e2", F - 9 * MINUTE, &y, "TQold"),
    ];
    let expected = one_engine(&items);
    let unforced = one_engine(&[items[0].clone(), items[2].clone()]);
    assert_ne!(expected["e2"].decision, unforced["e2"].decision);
    for cluster in restarted_anywhere(&items) {
        assert_eq!(cluster.parts[1].in_force().overrides.len(), 1);
    }
}

#[test]
fn a_resent_id_and_a_late_event_are_ignored_as_one_engine_ignores_them() {
    let (x, y) = (account("x", 0), account("y", 1));
    let items = vec![
        withdrawal("w1", F, &x, "TQa"),
        login("l1", F + MINUTE, &y, "192.0.2.2"),
        // w1 again much later (long past any message-id window): a duplicate.
        withdrawal("w1", F + 2 * MINUTE, &x, "TQb"),
        // The id of another partition's event, on this partition.
        withdrawal("l1", F + 3 * MINUTE, &x, "TQc"),
        withdrawal("w2", F + 60 * MINUTE, &y, "TQd"),
        // Older than the dedup horizon behind the newest: late.
        withdrawal("w3", F + 30 * MINUTE, &x, "TQe"),
        withdrawal("w4", F + 61 * MINUTE, &x, "TQf"),
    ];
    let expected = one_engine(&items);
    assert_eq!(
        expected.keys().collect::<Vec<_>>(),
        ["w1", "w2", "w4"],
        "one engine decides the first w1 only, and not the late w3"
    );
    for cluster in restarted_anywhere(&items) {
        for queues in &cluster.parts {
            let stats = queues.partition().engine().stats();
            assert_eq!((stats.duplicates, stats.late), (2, 1));
        }
        // Each is recorded by its owner, whenever the partitions restarted.
        assert_eq!(
            cluster.ignored.keys().collect::<Vec<_>>(),
            ["l1", "w1", "w3"]
        );
    }
    let stream = stream(&items, N);
    let mut cluster = Cluster::new();
    cluster.run(&stream, stream.len());
    let reasons: Vec<(&str, &str)> = (cluster.ignored.iter())
        .map(|(id, why)| (id.as_str(), why.as_str()))
        .collect();
    assert_eq!(
        reasons,
        [("l1", "duplicate"), ("w1", "duplicate"), ("w3", "late")]
    );
}

/// A feed where `changes` stand between a force of `TQcrew` and a withdrawal to it.
fn crew_feed(changes: Vec<Item>) -> Vec<Item> {
    let (x, y) = (account("x", 0), account("y", 1));
    let mut items = vec![
        login("e1", F - 30 * MINUTE, &x, "192.0.2.1"),
        login("e2", F - 29 * MINUTE, &y, "192.0.2.2"),
    ];
    items.extend(changes);
    items.push(withdrawal("e3", F - 5 * MINUTE, &y, "TQcrew"));
    items.push(withdrawal("e4", F - 4 * MINUTE, &x, "TQcrew"));
    items
}

/// The lift of a force of the crew's address set at `from`, at `at`.
fn lift_crew(from: i64, at: i64) -> Control {
    Control::OverridesChanged {
        ended: vec![forced("TQcrew", from)],
        set: Vec::new(),
        at,
    }
}

#[test]
fn a_control_message_not_sealed_by_a_serve_process_changes_nothing() {
    let (from, at) = (F - 20 * MINUTE, F - 10 * MINUTE);
    let impostor = ControlSeal::derive("test", &[("test", &[8u8; 32])]).unwrap();
    let forged = impostor.seal(&ControlMessage::new(lift_crew(from, at), at).unwrap());
    let unsealed = serde_json::to_vec(&lift_crew(from, at)).unwrap();
    let other = String::from_utf8(sealed(force("TQother", at), at)).unwrap();
    let tampered = other.replace("TQother", "TQcrew").into_bytes();
    let refused = [forged, unsealed, tampered];
    for bytes in &refused {
        assert!(test_seal().open(bytes).is_err());
    }
    let forced_then = |after: Vec<Item>| {
        let mut changes = vec![Item::Control(force("TQcrew", from))];
        changes.extend(after);
        crew_feed(changes)
    };
    // Sealed by a serve process, the lift would change the decisions.
    let honest = one_engine(&forced_then(vec![Item::Control(lift_crew(from, at))]));
    let expected = one_engine(&forced_then(Vec::new()));
    assert_ne!(honest["e3"].decision, expected["e3"].decision);
    let items = forced_then(refused.into_iter().map(Item::Sealed).collect());
    let stream = stream(&items, N);
    let mut cluster = Cluster::new();
    cluster.run(&stream, stream.len());
    assert_eq!(cluster.decided, expected);
    for queues in &cluster.parts {
        assert_eq!(queues.in_force().overrides, [forced("TQcrew", from)]);
    }
}

#[test]
fn a_copy_of_an_applied_control_message_put_on_the_stream_again_is_not_applied() {
    let at = F - 20 * MINUTE;
    let force_message = sealed(force("TQcrew", at), at);
    let lift = lift_crew(at, at + MINUTE);
    let applied = vec![Item::Sealed(force_message.clone()), Item::Control(lift)];
    let expected = one_engine(&crew_feed(applied.clone()));
    // Applied again, the copy would force the address once more.
    let mut copied = applied;
    copied.push(Item::Sealed(force_message));
    assert_ne!(
        one_engine(&crew_feed(copied.clone()))["e3"].decision,
        expected["e3"].decision
    );
    // A message sent more than the horizon before the newest applied one is refused too.
    let stale = ControlMessage::new(force("TQcrew", at), at - super::CONTROL_HORIZON_MS - 1);
    copied.push(Item::Sealed(test_seal().seal(&stale.unwrap())));
    for cluster in restarted_anywhere_against(&crew_feed(copied), &expected) {
        for queues in &cluster.parts {
            assert_eq!(queues.in_force().applied.len(), 2);
        }
    }
}
