//! Edge cases of the partitioned engine on hand-made feeds (the simulated exchanges are in
//! `portcullis-sim`'s tests): a force override whose first event past its start changes
//! nothing else, followed by a late event.

#![allow(clippy::unwrap_used)]

use portcullis_core::contract::{ContractEvent, parse_line};
use portcullis_core::partition::partition_of;
use portcullis_core::time::UnixMillis;
use portcullis_engine::partitioned::{Replay, Schedule};
use portcullis_engine::{Engine, EntityKind, Outcome, Override, OverrideMode, Policy};

const F: i64 = 1_772_409_600_000;
const MINUTE: i64 = 60_000;

fn at(ms: i64) -> String {
    UnixMillis(ms).to_rfc3339()
}

fn login(id: &str, ms: i64, account: &str, ip: &str) -> String {
    format!(
        r#"{{"id":"{id}","ts":"{}","type":"login","account":"{account}","method":"password","success":true,"ctx":{{"ip":"{ip}","device_id":"d-{account}"}}}}"#,
        at(ms)
    )
}

fn added(id: &str, ms: i64, account: &str, address: &str) -> String {
    format!(
        r#"{{"id":"{id}","ts":"{}","type":"address.added","account":"{account}","address":"{address}","asset":"USDT","network":"TRX","step_up":"passkey","ctx":{{"ip":"198.51.100.9","device_id":"d-{account}"}}}}"#,
        at(ms)
    )
}

fn withdrawal(id: &str, ms: i64, account: &str, address: &str) -> String {
    format!(
        r#"{{"id":"{id}","ts":"{}","type":"withdrawal.requested","account":"{account}","withdrawal_id":"w-{id}","asset":"USDT","network":"TRX","address":"{address}","amount":"900","amount_usd":900.0,"ctx":{{"ip":"198.51.100.9","device_id":"d-{account}","channel":"web"}}}}"#,
        at(ms)
    )
}

#[test]
fn a_force_override_spreads_at_the_first_event_past_its_start_even_if_it_links_nothing() {
    // Two accounts in different partitions of two.
    let x = (0..)
        .map(|n| format!("x{n}"))
        .find(|a| partition_of(a, 2) == 0)
        .unwrap();
    let y = (0..)
        .map(|n| format!("y{n}"))
        .find(|a| partition_of(a, 2) == 1)
        .unwrap();
    let lines = [
        login("e1", F - 30 * MINUTE, &x, "192.0.2.1"),
        // The first event past the override's start: seen before, it links nothing. One engine
        // spreads the force here, when nothing is linked to the address yet.
        login("e2", F + MINUTE, &x, "192.0.2.1"),
        // Six minutes late: links y to the forced address after the spread.
        added("e3", F - 5 * MINUTE, &y, "TQforced"),
        // Past the start, with a link: had the spread waited for it, y would be marked.
        login("e4", F + 2 * MINUTE, &y, "192.0.2.77"),
        withdrawal("e5", F + 3 * MINUTE, &y, "TQelsewhere"),
    ];
    let events: Vec<ContractEvent> = lines.iter().map(|l| parse_line(l).unwrap()).collect();
    let overrides = vec![Override {
        kind: EntityKind::Address,
        value: "TQforced".into(),
        mode: OverrideMode::Force,
        from: F,
        expires_at: None,
    }];
    let mut engine = Engine::new(Policy::default_policy().unwrap());
    engine.set_overrides(overrides.clone());
    let expected: Vec<Outcome> = events.iter().map(|e| engine.process(e)).collect();
    for schedule in [Schedule::InOrder, Schedule::Seeded(3), Schedule::Seeded(4)] {
        let mut replay = Replay::new(2, schedule, Policy::default_policy).unwrap();
        for partition in replay.partitions_mut() {
            partition.engine_mut().set_overrides(overrides.clone());
        }
        assert!(replay.run(&events) == expected, "{schedule:?}");
        for partition in replay.partitions() {
            assert!(partition.engine().network_bytes() == engine.network_bytes());
        }
    }
}
