//! The engine partitioned by account (`portcullis_engine::partitioned`) decides exactly what one
//! engine decides, on simulated exchanges whose scam campaigns span partitions: every outcome
//! (decision, score, reasons and the features the rules saw), the counters, the network (graph,
//! alerts, marks) each partition ends with, and the alerts reported; for 1, 2, 3 and 7
//! partitions, under the in-order schedule and under seeded random ones, and with partitions put
//! back from their own checkpoints in the middle of the run.

#![allow(clippy::unwrap_used, clippy::panic)]

use portcullis_core::contract::{ContractEvent, parse_line};
use portcullis_core::partition::partition_of;
use portcullis_engine::partitioned::{Partition, Replay, Schedule};
use portcullis_engine::{Alert, Engine, Outcome, Override, OverrideMode, Policy, Verdict};
use std::collections::{BTreeMap, BTreeSet};

fn policy() -> Policy {
    Policy::default_policy().unwrap()
}

fn feed(accounts: u32, days: u32, seed: u64) -> Vec<ContractEvent> {
    let sim = portcullis_sim::simulate(&portcullis_sim::Config::new(accounts, days, seed)).unwrap();
    (sim.rendered.events.iter())
        .map(|line| parse_line(line).unwrap())
        .collect()
}

/// One engine's run: its outcomes, the engine after it, and the alerts it reported.
struct One {
    outcomes: Vec<Outcome>,
    engine: Engine,
    reported: BTreeMap<String, Alert>,
}

fn single(events: &[ContractEvent]) -> One {
    let mut engine = Engine::new(policy());
    let outcomes = events.iter().map(|e| engine.process(e)).collect();
    let reported = by_id(engine.take_alerts());
    One {
        outcomes,
        engine,
        reported,
    }
}

/// The partitioned outcomes, `batch` events at a time, and the replay.
fn partitioned(
    events: &[ContractEvent],
    count: u32,
    schedule: Schedule,
    batch: usize,
    after_step: &mut dyn FnMut(&mut Partition),
) -> (Vec<Outcome>, Replay) {
    let mut replay = Replay::new(count, schedule, Policy::default_policy).unwrap();
    let mut outcomes = Vec::with_capacity(events.len());
    for chunk in events.chunks(batch) {
        outcomes.extend(replay.run_observed(chunk, after_step));
    }
    (outcomes, replay)
}

/// The contract's decision lines, as `portcullis replay` writes them.
fn lines(outcomes: &[Outcome]) -> Vec<String> {
    (outcomes.iter())
        .filter_map(|o| match o {
            Outcome::Decided(decision, _) => Some(decision.to_json_line()),
            _ => None,
        })
        .collect()
}

/// Fails at the first line that differs (the whole lists are too long to print).
fn assert_lines(got: &[String], expected: &[String], what: &str) {
    let first = got.iter().zip(expected).position(|(a, b)| a != b);
    if let Some(n) = first {
        panic!(
            "{what}: decision {n} is\n  {}\nnot\n  {}",
            got[n], expected[n]
        );
    }
    assert_eq!(got.len(), expected.len(), "{what}: decisions");
}

/// Alerts by id: reported more than once (by different partitions), each is as it is now.
fn by_id(reported: Vec<Alert>) -> BTreeMap<String, Alert> {
    reported.into_iter().map(|a| (a.id.clone(), a)).collect()
}

/// Everything observable agrees with one engine's run.
fn assert_same(one: &One, run: (Vec<Outcome>, Replay), what: &str) {
    let (outcomes, mut replay) = run;
    let (expected, engine) = (&one.outcomes, &one.engine);
    assert_lines(&lines(&outcomes), &lines(expected), what);
    assert!(outcomes == *expected, "{what}: outcomes and features");
    assert_eq!(replay.stats(), *engine.stats(), "{what}: counters");
    assert_eq!(
        replay.tracked_accounts(),
        engine.tracked_accounts(),
        "{what}"
    );
    let network = engine.network_bytes();
    for partition in replay.partitions() {
        let index = partition.index();
        assert!(
            partition.engine().network_bytes() == network,
            "{what}: network of {index}"
        );
        let same = partition.engine().alerts() == engine.alerts();
        assert!(same, "{what}: alerts of {index}");
    }
    // Each alert reported once over the partitions, as one engine reports it.
    let mut reported = Vec::new();
    for partition in replay.partitions_mut() {
        reported.extend(partition.engine_mut().take_alerts());
    }
    assert!(by_id(reported) == one.reported, "{what}: reported alerts");
}

/// How many alerts name accounts of more than one of `count` partitions, and how many
/// events were held or blocked.
fn spread(engine: &Engine, count: u32) -> (usize, u64) {
    let across = (engine.alerts().iter())
        .filter(|alert| {
            let parts: BTreeSet<u32> = (alert.evidence.iter())
                .map(|e| partition_of(&e.account, count))
                .collect();
            parts.len() > 1
        })
        .count();
    let decided = |v: Verdict| {
        engine
            .stats()
            .decisions
            .get(v.as_str())
            .copied()
            .unwrap_or(0)
    };
    (across, decided(Verdict::Hold) + decided(Verdict::Block))
}

#[test]
fn partitions_decide_exactly_what_one_engine_decides() {
    for seed in [1, 2, 3] {
        let events = feed(1_500, 14, seed);
        let one = single(&events);
        let (across, refused) = spread(&one.engine, 7);
        assert!(
            across > 0 && refused > 0,
            "seed {seed}: campaigns must span partitions ({across} alerts, {refused} refusals)"
        );
        for count in [1, 2, 3, 7] {
            let run = partitioned(&events, count, Schedule::InOrder, 4_096, &mut |_| {});
            assert_same(&one, run, &format!("seed {seed}, {count} partitions"));
        }
    }
}

#[test]
fn the_result_does_not_depend_on_the_schedule() {
    let events = feed(1_000, 10, 4);
    let one = single(&events);
    for (count, schedule) in [(2, 11), (3, 12), (7, 13), (7, 14)] {
        let run = partitioned(
            &events,
            count,
            Schedule::Seeded(schedule),
            20_000,
            &mut |_| {},
        );
        assert_same(
            &one,
            run,
            &format!("{count} partitions, schedule {schedule}"),
        );
    }
}

#[test]
fn partitions_put_back_from_their_checkpoints_mid_run_change_nothing() {
    let events = feed(1_000, 10, 5);
    let one = single(&events);
    let mut steps = 0_u64;
    let mut restored = 0_u64;
    let mut round_trip = |partition: &mut Partition| {
        steps += 1;
        if steps.is_multiple_of(997) {
            let bytes = partition.checkpoint().unwrap();
            let back = Partition::from_checkpoint(policy(), &bytes).unwrap();
            assert_eq!(
                (back.index(), back.count(), back.through()),
                (partition.index(), partition.count(), partition.through())
            );
            *partition = back;
            restored += 1;
        }
    };
    let run = partitioned(&events, 3, Schedule::Seeded(21), 50_000, &mut round_trip);
    assert!(restored > 10, "{restored} partitions put back");
    // Reports not taken before a checkpoint are not in it (as for one engine): compare the rest.
    let (outcomes, replay) = run;
    assert_lines(&lines(&outcomes), &lines(&one.outcomes), "put back");
    assert!(outcomes == one.outcomes);
    let network = one.engine.network_bytes();
    assert!(
        replay
            .partitions()
            .iter()
            .all(|p| p.engine().network_bytes() == network)
    );
}

#[test]
fn force_overrides_spread_where_one_engine_spreads_them() {
    let events = feed(1_000, 10, 6);
    // Two campaigns' entities, forced from three hours before their alerts opened, and one
    // suppressed: the forces spread at the first event past their start, wherever it is.
    let alerts = single(&events).engine.alerts();
    assert!(alerts.len() >= 3, "{} alerts", alerts.len());
    let overrides: Vec<Override> = (alerts.iter().take(3).enumerate())
        .map(|(n, alert)| Override {
            kind: alert.entity_kind,
            value: alert.value.clone(),
            mode: if n == 2 {
                OverrideMode::Suppress
            } else {
                OverrideMode::Force
            },
            from: alert.opened_at - 3 * 3_600_000,
            expires_at: None,
        })
        .collect();
    let mut engine = Engine::new(policy());
    engine.set_overrides(overrides.clone());
    let expected: Vec<Outcome> = events.iter().map(|e| engine.process(e)).collect();
    let propagations = engine.take_propagations();
    assert!(propagations.len() >= 2, "the forces spread");
    for (count, schedule) in [(3, Schedule::InOrder), (7, Schedule::Seeded(31))] {
        let mut replay = Replay::new(count, schedule, Policy::default_policy).unwrap();
        for partition in replay.partitions_mut() {
            partition.engine_mut().set_overrides(overrides.clone());
        }
        let outcomes: Vec<Outcome> = (events.chunks(30_000))
            .flat_map(|chunk| replay.run(chunk))
            .collect();
        let what = format!("{count} partitions");
        assert_lines(&lines(&outcomes), &lines(&expected), &what);
        assert!(outcomes == expected, "{what}: outcomes and features");
        let network = engine.network_bytes();
        let mut reported = Vec::new();
        for partition in replay.partitions_mut() {
            assert!(
                partition.engine().network_bytes() == network,
                "{what}: network"
            );
            reported.extend(partition.engine_mut().take_propagations());
        }
        reported.sort_by(|a, b| (a.ts, &a.confirmation).cmp(&(b.ts, &b.confirmation)));
        assert_eq!(reported, propagations, "{what}: each spread reported once");
    }
}
