//! The entity graph through the engine's public surface: a campaign alert from unrelated
//! accounts, a confirmation's marks with their paths, overrides, the graph view, and two
//! replays of one feed giving the same bytes.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use portcullis_core::contract::parse_line;
use portcullis_engine::{Engine, EntityKind, Outcome, Override, OverrideMode, Policy, Verdict};

const T0: i64 = 1_753_700_000_000;
const MIN: i64 = 60_000;

fn ts(at: i64) -> String {
    portcullis_core::time::UnixMillis(T0 + at).to_rfc3339()
}

/// Three victims allow-list the crew's server and send to its address; a fourth is asked
/// later; the first is confirmed defrauded.
fn feed() -> Vec<String> {
    let mut lines = Vec::new();
    for (n, victim) in ["v1", "v2", "v3"].iter().enumerate() {
        let at = n as i64 * 10 * MIN;
        lines.push(format!(r#"{{"id":"k-{victim}","ts":"{}","type":"api_key.updated","account":"{victim}","key_id":"k{victim}","scopes":["read","withdraw"],"ip_allowlist":["203.0.113.66/32"],"step_up":"totp","ctx":{{"ip":"198.51.100.{n}","device_id":"d-{victim}"}}}}"#, ts(at)));
        lines.push(format!(r#"{{"id":"w-{victim}","ts":"{}","type":"withdrawal.requested","account":"{victim}","withdrawal_id":"w{victim}","asset":"USDT","network":"TRX","address":"TQcrew","amount":"900","amount_usd":900.0,"ctx":{{"ip":"198.51.100.{n}","device_id":"d-{victim}"}}}}"#, ts(at + MIN)));
    }
    lines.push(format!(r#"{{"id":"fc","ts":"{}","type":"fraud.confirmed","account":"v1","withdrawal_ids":["wv1"],"addresses":["TQcrew"],"from":[],"note":"case 1"}}"#, ts(60 * MIN)));
    lines.push(format!(r#"{{"id":"k-v4","ts":"{}","type":"api_key.updated","account":"v4","key_id":"kv4","scopes":["read","withdraw"],"ip_allowlist":["203.0.113.66/32"],"step_up":"totp","ctx":{{"ip":"192.0.2.4","device_id":"d-v4"}}}}"#, ts(70 * MIN)));
    lines.push(format!(r#"{{"id":"w-v4","ts":"{}","type":"withdrawal.requested","account":"v4","withdrawal_id":"wv4","asset":"USDT","network":"TRX","address":"TQcrew","amount":"900","amount_usd":900.0,"ctx":{{"ip":"192.0.2.4","device_id":"d-v4"}}}}"#, ts(71 * MIN)));
    lines
}

fn replay(engine: &mut Engine, lines: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    for line in lines {
        if let Outcome::Decided(decision, features) = engine.process(&parse_line(line).unwrap()) {
            out.push(decision.to_json_line());
            out.push(serde_json::to_string(&features).unwrap());
        }
    }
    out
}

#[test]
fn a_campaign_raises_one_alert_with_its_evidence() {
    let mut engine = Engine::new(Policy::default_policy().unwrap());
    replay(&mut engine, &feed()[..6]);
    let alerts = engine.take_alerts();
    let ids: Vec<&str> = alerts.iter().map(|a| a.kind.as_str()).collect();
    assert!(ids.contains(&"address_campaign"), "{ids:?}");
    assert!(ids.contains(&"allowlisted_ip_campaign"), "{ids:?}");
    let address = alerts
        .iter()
        .find(|a| a.kind.as_str() == "address_campaign")
        .unwrap();
    assert_eq!(address.value, "TQcrew");
    assert_eq!(address.unrelated_accounts, 3);
    let events: Vec<&str> = address
        .evidence
        .iter()
        .map(|e| e.event_id.as_str())
        .collect();
    assert_eq!(events, ["w-v1", "w-v2", "w-v3"]);
    assert_eq!(engine.alert(&address.id).as_ref(), Some(address));
}

#[test]
fn a_confirmation_marks_its_neighbours_with_their_paths() {
    let mut engine = Engine::new(Policy::default_policy().unwrap());
    let out = replay(&mut engine, &feed());
    let propagation = engine.take_propagations();
    assert_eq!(propagation.len(), 1);
    let marked = &propagation[0].marked;
    let v2 = marked.iter().find(|m| m.value == "v2").unwrap();
    assert_eq!(v2.kind, EntityKind::Account);
    assert_eq!(v2.mark.hops, 1);
    assert_eq!(v2.mark.path, ["address:TQcrew", "account:v2"]);
    assert_eq!(v2.mark.confirmation, "fc");
    let server = marked.iter().find(|m| m.value == "203.0.113.66").unwrap();
    assert_eq!(
        server.mark.hops, 1,
        "named by no one: one hop from the account"
    );
    // The next victim's withdrawal to the confirmed address is stopped, with the path kept.
    let last: serde_json::Value = serde_json::from_str(out.last().unwrap()).unwrap();
    assert_eq!(last["network_marked"], true);
    assert_eq!(last["network_path"], "address:TQcrew");
    assert!(out[out.len() - 2].contains("confirmed_fraud_entity"));
}

#[test]
fn suppress_and_force_overrides() {
    let lines = feed();
    let mut engine = Engine::new(Policy::default_policy().unwrap());
    engine.set_overrides(vec![Override {
        kind: EntityKind::Address,
        value: "TQcrew".into(),
        mode: OverrideMode::Suppress,
        from: 0,
        expires_at: None,
    }]);
    let out = replay(&mut engine, &lines);
    let marked = &engine.take_propagations()[0].marked;
    assert!(marked.iter().all(|m| m.value != "TQcrew"));
    let v2 = marked.iter().find(|m| m.value == "v2").unwrap();
    assert_eq!(
        v2.mark.path,
        ["account:v1", "ip:203.0.113.66", "account:v2"],
        "still linked through the server, not through the suppressed address"
    );
    let last: serde_json::Value = serde_json::from_str(out.last().unwrap()).unwrap();
    assert_eq!(last["network_marked"], false);

    let mut engine = Engine::new(Policy::default_policy().unwrap());
    let both = |mode| Override {
        kind: EntityKind::Device,
        value: "d-v4".into(),
        mode,
        from: T0,
        expires_at: Some(T0 + 71 * MIN + 1),
    };
    engine.set_overrides(vec![
        both(OverrideMode::Suppress),
        both(OverrideMode::Force),
    ]);
    let out = replay(&mut engine, &lines);
    let last: serde_json::Value = serde_json::from_str(out.last().unwrap()).unwrap();
    assert_eq!(last["network_hops"], 0);
}

#[test]
fn two_replays_give_the_same_bytes_and_view() {
    let lines = feed();
    let mut first = Engine::new(Policy::default_policy().unwrap());
    let mut second = Engine::new(Policy::default_policy().unwrap());
    assert_eq!(replay(&mut first, &lines), replay(&mut second, &lines));
    assert_eq!(first.network_bytes(), second.network_bytes());
    let view = |e: &Engine| {
        serde_json::to_string(&e.graph_view(EntityKind::Address, "TQcrew", 2, 1000, T0 + 80 * MIN))
            .unwrap()
    };
    assert_eq!(view(&first), view(&second));
    let graph = first
        .graph_view(EntityKind::Address, "TQcrew", 2, 1000, T0 + 80 * MIN)
        .unwrap();
    assert!(graph.nodes.iter().any(|n| n.value == "v3" && n.hops == 1));
    assert!(graph.nodes.iter().any(|n| n.value == "d-v3" && n.hops == 2));
    assert!(!graph.truncated);
    let small = first
        .graph_view(EntityKind::Address, "TQcrew", 3, 3, T0 + 80 * MIN)
        .unwrap();
    assert!(small.truncated && small.nodes.len() == 3);
    assert!(
        first
            .graph_view(EntityKind::Address, "Tnobody", 2, 10, T0)
            .is_none()
    );
    let restored = Engine::from_checkpoint(
        Policy::default_policy().unwrap(),
        &first.checkpoint().unwrap(),
    )
    .unwrap();
    assert_eq!(restored.network_bytes(), first.network_bytes());
    let _ = Verdict::Hold;
}

/// A withdrawal to the crew's address by an account that never touched the forced server.
fn withdrawal(id: &str, account: &str, at: i64) -> String {
    format!(
        r#"{{"id":"{id}","ts":"{}","type":"withdrawal.requested","account":"{account}","withdrawal_id":"{id}","asset":"USDT","network":"TRX","address":"TQcrew","amount":"50","amount_usd":50.0,"ctx":{{"ip":"192.0.2.{}","device_id":"d-{account}"}}}}"#,
        ts(at),
        at % 200
    )
}

fn network_hops(line: &str) -> i64 {
    let features: serde_json::Value = serde_json::from_str(line).unwrap();
    features["network_hops"].as_i64().unwrap()
}

#[test]
fn a_force_spreads_like_a_confirmation_until_it_ends() {
    // The three victims and no confirmation: an operator forces the crew's server at 65 min
    // and lifts it at 75 min.
    let mut lines: Vec<String> = feed()[..6].to_vec();
    lines.push(withdrawal("w-v5", "v5", 72 * MIN));
    lines.push(withdrawal("w-v6", "v6", 80 * MIN));
    let force = |expires_at| Override {
        kind: EntityKind::Ip,
        value: "203.0.113.66".into(),
        mode: OverrideMode::Force,
        from: T0 + 65 * MIN,
        expires_at,
    };

    // A replay that knows the whole range at the start.
    let mut replayed = Engine::new(Policy::default_policy().unwrap());
    replayed.set_overrides(vec![force(Some(T0 + 75 * MIN))]);
    let out = replay(&mut replayed, &lines);
    let propagations = replayed.take_propagations();
    assert_eq!(propagations.len(), 1);
    let marked = &propagations[0].marked;
    let v2 = marked.iter().find(|m| m.value == "v2").unwrap();
    assert_eq!((v2.mark.hops, v2.mark.at), (1, T0 + 65 * MIN));
    let crew = marked.iter().find(|m| m.value == "TQcrew").unwrap();
    assert_eq!(crew.mark.hops, 2);
    assert_eq!(
        crew.mark.expires_at,
        T0 + 75 * MIN,
        "ends with the override"
    );
    assert!(
        crew.mark
            .confirmation
            .starts_with("override:force ip:203.0.113.66")
    );
    let [_, v5, _, v6] = &out[out.len() - 4..] else {
        unreachable!()
    };
    assert_eq!(network_hops(v5), 2, "v5, two hops from the server");
    assert!(v5.contains("ip:203.0.113.66 > account:v"), "{v5}");
    assert_eq!(
        network_hops(v6),
        portcullis_engine::NO_MARK_HOPS,
        "lifted by then"
    );

    // The service: set without an end, spread at once by the clock, lifted at 75 min.
    let mut service = Engine::new(Policy::default_policy().unwrap());
    let mut live = replay(&mut service, &lines[..6]);
    service.set_overrides(vec![force(None)]);
    service.spread_forces(T0 + 65 * MIN);
    let paths = |p: &[portcullis_engine::Propagation]| -> Vec<Vec<String>> {
        p.iter()
            .flat_map(|p| &p.marked)
            .map(|m| m.mark.path.clone())
            .collect()
    };
    // The same marks; their end is not known yet.
    assert_eq!(paths(&service.take_propagations()), paths(&propagations));
    live.extend(replay(&mut service, &lines[6..7]));
    service.set_overrides(vec![force(Some(T0 + 75 * MIN))]);
    live.extend(replay(&mut service, &lines[7..]));
    assert_eq!(live, out, "the service decides as the replay does");
    assert_eq!(service.network_bytes(), replayed.network_bytes());
}

const DAY: i64 = 24 * 60 * MIN;

/// Three customers pay `to` from `first_day`; on day 9 a fourth adds it during a phone call,
/// confirmed by SMS (refused), and a fifth pays it right after: is the fifth's address flagged?
fn flagged_after_a_refusal(to: &str, first_day: i64) -> bool {
    let mut engine = Engine::new(Policy::default_policy().unwrap());
    let pay = |id: &str, account: &str, at: i64| {
        format!(
            r#"{{"id":"{id}","ts":"{}","type":"withdrawal.requested","account":"{account}","withdrawal_id":"w{id}","asset":"XRP","network":"XRP","address":"{to}","amount":"900","amount_usd":450.0,"ctx":{{"ip":"198.51.100.{}","device_id":"d-{account}"}}}}"#,
            ts(at),
            at % 250
        )
    };
    let mut lines = Vec::new();
    for (n, customer) in ["c1", "c2", "c3"].iter().enumerate() {
        lines.push(pay(
            &format!("p{n}"),
            customer,
            (first_day + n as i64) * DAY,
        ));
    }
    lines.push(format!(r#"{{"id":"p4","ts":"{}","type":"address.added","account":"c4","address":"{to}","asset":"XRP","network":"XRP","step_up":"sms","ctx":{{"ip":"192.0.2.4","device_id":"d-c4","call_active":true}}}}"#, ts(9 * DAY)));
    lines.push(pay("p5", "c5", 9 * DAY + 30 * MIN));
    let mut flagged = None;
    for line in &lines {
        if let Outcome::Decided(decision, features) = engine.process(&parse_line(line).unwrap()) {
            if decision.event_id == "p4" {
                assert!(decision.decision >= Verdict::Hold, "{decision:?}");
            }
            if decision.event_id == "p5" {
                flagged = Some(features.address_flagged_elsewhere);
            }
        }
    }
    flagged.unwrap()
}

#[test]
fn a_refusal_does_not_mark_a_destination_many_accounts_used_for_a_week() {
    assert!(
        !flagged_after_a_refusal("rSharedDepositWallet", 0),
        "three customers paid it from nine days before: a shared destination"
    );
    assert!(
        flagged_after_a_refusal("rNewCollectionWallet", 7),
        "first paid two days before the refusal: marked as before"
    );
}
