//! The default policy on whole stories: the scam chain in its variants is stopped, ordinary
//! traders, bots and cold-storage moves pass with little friction.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod story;

use portcullis_engine::{Decision, Engine, Outcome, Policy, Verdict};
use story::run_on;

/// Runs a story (lines of `minutes after a fixed start | fields`; the n-th line's id is `e{n}`)
/// and returns the decisions.
fn run(lines: &[&str]) -> Vec<Decision> {
    run_on(
        &mut Engine::new(Policy::default_policy().unwrap()),
        lines,
        0,
    )
}

/// A customer with a few weeks of ordinary history: logins from home, a trading bot.
const HISTORY: &[&str] = &[
    r#"0 | "type":"login","account":"a1","method":"password","success":true,"ctx":{"ip":"198.51.100.23","device_id":"d1","channel":"web"}"#,
    r#"1 | "type":"deposit","account":"a1","asset":"USDT","amount":"5000","amount_usd":5000"#,
    r#"2 | "type":"api_key.created","account":"a1","key_id":"k1","scopes":["read","trade"],"ip_allowlist":["198.51.100.23/32"],"step_up":"totp","ctx":{"ip":"198.51.100.23","device_id":"d1","channel":"web"}"#,
    r#"3 | "type":"api_key.used","account":"a1","key_id":"k1","endpoint":"POST /api/v3/order","count":40,"window_s":60,"ctx":{"ip":"198.51.100.23","channel":"api"}"#,
    r#"4 | "type":"address.added","account":"a1","address":"bc1own","asset":"BTC","network":"BTC","step_up":"passkey","ctx":{"ip":"198.51.100.23","device_id":"d1","channel":"web"}"#,
    r#"5000 | "type":"withdrawal.requested","account":"a1","withdrawal_id":"w0","asset":"BTC","network":"BTC","address":"bc1own","amount":"0.01","amount_usd":600,"ctx":{"ip":"198.51.100.23","device_id":"d1","channel":"web"}"#,
];

fn story<'a>(extra: &[&'a str]) -> Vec<&'a str> {
    HISTORY
        .iter()
        .copied()
        .chain(extra.iter().copied())
        .collect()
}

fn verdicts(decisions: &[Decision]) -> Vec<Verdict> {
    decisions.iter().map(|d| d.decision).collect()
}

#[test]
fn history_itself_passes() {
    let decisions = run(HISTORY);
    assert_eq!(
        verdicts(&decisions),
        vec![Verdict::Allow, Verdict::Allow, Verdict::Allow],
        "{decisions:?}"
    );
}

#[test]
fn widening_during_a_call_to_an_unseen_ip_is_blocked_and_the_drain_fails() {
    let decisions = run(&story(&[
        r#"9000 | "type":"api_key.updated","account":"a1","key_id":"k1","scopes":["read","trade","withdraw"],"ip_allowlist":["203.0.113.7/32"],"step_up":"totp","ctx":{"ip":"198.51.100.23","device_id":"d1","channel":"app","call_active":true}"#,
        r#"9006 | "type":"withdrawal.requested","account":"a1","withdrawal_id":"w9","asset":"USDT","network":"TRX","address":"TQattacker","amount":"4900","amount_usd":4900,"key_id":"k1","ctx":{"ip":"203.0.113.7","channel":"api"}"#,
    ]));
    let escalation = &decisions[3];
    assert!(escalation.decision >= Verdict::Hold, "{escalation:?}");
    assert!(
        escalation
            .reasons
            .contains(&"call_during_escalation".to_owned())
    );
    assert!(
        escalation
            .reasons
            .contains(&"unseen_ip_allowlisted".to_owned())
    );
    let drain = &decisions[4];
    assert_eq!(drain.decision, Verdict::Block, "{drain:?}");
    assert!(
        drain
            .reasons
            .contains(&"key_lacks_withdraw_scope".to_owned()),
        "the held widening never took effect"
    );
}

#[test]
fn a_coached_customer_moving_funds_on_their_own_device_is_stopped() {
    let decisions = run(&story(&[
        r#"9000 | "type":"contact.inbound_call","account":"a1","from":"+442079460018","attestation":"C","duration_s":900"#,
        r#"9005 | "type":"address.added","account":"a1","address":"TQsafe_wallet","asset":"USDT","network":"TRX","step_up":"sms","ctx":{"ip":"198.51.100.23","device_id":"d1","channel":"app","remote_access":true}"#,
        r#"9010 | "type":"withdrawal.requested","account":"a1","withdrawal_id":"w9","asset":"USDT","network":"TRX","address":"TQsafe_wallet","amount":"4900","amount_usd":4900,"ctx":{"ip":"198.51.100.23","device_id":"d1","channel":"app","remote_access":true}"#,
    ]));
    assert!(decisions[3].decision >= Verdict::Hold, "{:?}", decisions[3]);
    assert_eq!(decisions[4].decision, Verdict::Block, "{:?}", decisions[4]);
}

#[test]
fn moving_savings_to_cold_storage_passes_with_little_friction() {
    let decisions = run(&story(&[
        r#"9000 | "type":"address.added","account":"a1","address":"bc1cold","asset":"BTC","network":"BTC","step_up":"passkey","ctx":{"ip":"198.51.100.23","device_id":"d1","channel":"web"}"#,
        r#"12000 | "type":"withdrawal.requested","account":"a1","withdrawal_id":"w1","asset":"BTC","network":"BTC","address":"bc1cold","amount":"0.07","amount_usd":4500,"ctx":{"ip":"198.51.100.23","device_id":"d1","channel":"web"}"#,
    ]));
    assert_eq!(decisions[3].decision, Verdict::Allow, "{:?}", decisions[3]);
    assert!(
        decisions[4].decision <= Verdict::Challenge,
        "{:?}",
        decisions[4]
    );
}

#[test]
fn a_trader_enabling_withdrawals_with_a_passkey_from_home_passes() {
    let decisions = run(&story(&[
        r#"9000 | "type":"api_key.updated","account":"a1","key_id":"k1","scopes":["read","trade","withdraw"],"ip_allowlist":["198.51.100.23/32"],"step_up":"passkey","ctx":{"ip":"198.51.100.23","device_id":"d1","channel":"web"}"#,
    ]));
    assert_eq!(decisions[3].decision, Verdict::Allow, "{:?}", decisions[3]);
}

#[test]
fn confirmed_fraud_addresses_are_blocked_for_everyone() {
    let decisions = run(&[
        r#"0 | "type":"fraud.confirmed","account":"victim","withdrawal_ids":["w1"],"addresses":["TQshared"],"from":["+442079460018"],"note":"x""#,
        r#"5 | "type":"address.added","account":"a2","address":"TQshared","asset":"USDT","network":"TRX","step_up":"passkey""#,
    ]);
    assert_eq!(decisions[0].decision, Verdict::Block);
    assert_eq!(decisions[0].reasons[0], "confirmed_fraud_address");
}

#[test]
fn duplicates_are_ignored_and_decisions_serialise_like_the_contract() {
    let mut engine = Engine::new(Policy::default_policy().unwrap());
    let line = r#"{"id":"e2","ts":"2025-07-28T14:09:40.002Z","type":"withdrawal.requested","account":"acc_81","withdrawal_id":"w_9","asset":"USDT","network":"TRX","address":"TQ5...","amount":"2400","amount_usd":2400.0,"key_id":"k_3","ctx":{"ip":"203.0.113.7","channel":"api"}}"#;
    let event = portcullis_core::contract::parse_line(line).unwrap();
    let Outcome::Decided(decision, _) = engine.process(&event) else {
        panic!("a withdrawal asks for a decision")
    };
    let json: serde_json::Value = serde_json::from_str(&decision.to_json_line()).unwrap();
    assert_eq!(json["event_id"], "e2");
    assert!(["allow", "challenge", "hold", "block"].contains(&json["decision"].as_str().unwrap()));
    assert!(json["score"].as_u64().unwrap() <= 100 && json["reasons"].is_array());
    assert_eq!(engine.process(&event), Outcome::Duplicate);
    assert_eq!(engine.stats().duplicates, 1);
}

#[test]
fn every_default_rule_is_documented() {
    let docs = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/rules.md"))
        .unwrap();
    for rule in &Policy::default_policy().unwrap().rules {
        assert!(
            docs.contains(&format!("### `{}`", rule.id)),
            "docs/rules.md lacks rule {}",
            rule.id
        );
    }
    for feature in portcullis_engine::FEATURE_NAMES {
        assert!(
            docs.contains(&format!("`{feature}`")),
            "docs/rules.md lacks feature {feature}"
        );
    }
}

/// A crew's number calls the customer, and is named in a confirmed fraud soon after.
const CREW_CALL: &str = r#"8000 | "type":"contact.inbound_call","account":"a1","from":"+44 20 7946 0018","attestation":"B","duration_s":60"#;
const CREW_CONFIRMED: &str = r#"8500 | "type":"fraud.confirmed","account":"victim","withdrawal_ids":["w1"],"addresses":["TQother"],"from":["00442079460018"],"note":"campaign""#;

#[test]
fn a_confirmed_fraud_number_puts_other_customers_it_called_on_hold() {
    let decisions = run(&story(&[
        CREW_CALL,
        CREW_CONFIRMED,
        r#"9000 | "type":"address.added","account":"a1","address":"bc1new","asset":"BTC","network":"BTC","step_up":"passkey","ctx":{"ip":"198.51.100.23","device_id":"d1"}"#,
    ]));
    let decision = decisions.last().unwrap();
    assert!(decision.decision >= Verdict::Hold, "{decision:?}");
    assert!(
        decision
            .reasons
            .contains(&"called_by_confirmed_fraud_number".to_owned())
    );
}

#[test]
fn late_events_update_windows_by_their_own_time() {
    // The call record arrives after the widening it preceded (up to ten minutes late is allowed).
    let decisions = run(&story(&[
        r#"9000 | "type":"address.added","account":"a1","address":"TQnew","asset":"USDT","network":"TRX","step_up":"passkey","ctx":{"ip":"198.51.100.23","device_id":"d1"}"#,
        r#"8995 | "type":"contact.inbound_call","account":"a1","from":"+15550100","attestation":"C","duration_s":600"#,
        r#"9020 | "type":"withdrawal.requested","account":"a1","withdrawal_id":"w1","asset":"USDT","network":"TRX","address":"TQnew","amount":"4000","amount_usd":4000,"ctx":{"ip":"198.51.100.23","device_id":"d1"}"#,
    ]));
    let withdrawal = &decisions[4];
    assert!(
        withdrawal
            .reasons
            .contains(&"call_before_withdrawal".to_owned()),
        "{withdrawal:?}"
    );
    assert!(
        withdrawal
            .reasons
            .contains(&"escalation_cooldown".to_owned()),
        "{withdrawal:?}"
    );
    assert!(withdrawal.decision >= Verdict::Hold, "{withdrawal:?}");
}

/// The ordinary history of `HISTORY`, lived by another customer at home on their own network.
fn history_of(account: &str, ip: &str) -> Vec<String> {
    HISTORY
        .iter()
        .map(|line| {
            line.replace(r#""a1""#, &format!(r#""{account}""#))
                .replace("198.51.100.23", ip)
                .replace(r#""d1""#, &format!(r#""d_{account}""#))
        })
        .collect()
}

#[test]
fn a_campaign_is_recognised_at_its_next_victim_before_anyone_confirms_it() {
    let mut lines = HISTORY.iter().map(ToString::to_string).collect::<Vec<_>>();
    lines.extend(history_of("a2", "192.0.2.44"));
    lines.extend(history_of("a3", "192.0.2.77"));
    lines.extend([
        // The first victim widens during a call: held, and its drain blocked.
        r#"9000 | "type":"api_key.updated","account":"a1","key_id":"k1","scopes":["read","trade","withdraw"],"ip_allowlist":["203.0.113.7/32"],"step_up":"totp","ctx":{"ip":"198.51.100.23","device_id":"d1","channel":"app","call_active":true}"#.to_owned(),
        r#"9006 | "type":"withdrawal.requested","account":"a1","withdrawal_id":"w9","asset":"USDT","network":"TRX","address":"TQcollector","amount":"4900","amount_usd":4900,"key_id":"k1","ctx":{"ip":"203.0.113.7","channel":"api"}"#.to_owned(),
        // The next victim's app saw no call: the same server and address give them away.
        r#"9100 | "type":"api_key.updated","account":"a2","key_id":"k1","scopes":["read","trade","withdraw"],"ip_allowlist":["203.0.113.7/32"],"step_up":"totp","ctx":{"ip":"192.0.2.44","device_id":"d_a2","channel":"app"}"#.to_owned(),
        r#"9104 | "type":"address.added","account":"a2","address":"TQcollector","asset":"USDT","network":"TRX","step_up":"totp","ctx":{"ip":"192.0.2.44","device_id":"d_a2","channel":"app"}"#.to_owned(),
        r#"9106 | "type":"withdrawal.requested","account":"a2","withdrawal_id":"w10","asset":"USDT","network":"TRX","address":"TQcollector","amount":"3000","amount_usd":3000,"ctx":{"ip":"192.0.2.44","device_id":"d_a2","channel":"app"}"#.to_owned(),
        // A third customer does the same things with their own server and address: no link.
        r#"9200 | "type":"api_key.updated","account":"a3","key_id":"k1","scopes":["read","trade","withdraw"],"ip_allowlist":["192.0.2.200/32"],"step_up":"totp","ctx":{"ip":"192.0.2.77","device_id":"d_a3","channel":"app"}"#.to_owned(),
        r#"9204 | "type":"address.added","account":"a3","address":"TQown","asset":"USDT","network":"TRX","step_up":"totp","ctx":{"ip":"192.0.2.77","device_id":"d_a3","channel":"app"}"#.to_owned(),
    ]);
    // In time order, as a feed is (the histories interleave).
    lines.sort_by_key(|line| {
        line.split_once('|')
            .map(|(m, _)| m.trim().parse::<i64>().unwrap())
    });
    let decisions = run(&lines.iter().map(String::as_str).collect::<Vec<_>>());
    let by_reason = |n: usize, reason: &str| decisions[n].reasons.iter().any(|r| r == reason);
    let first = 9; // three histories of three decisions each
    assert!(
        decisions[first].decision >= Verdict::Hold,
        "{:?}",
        decisions[first]
    );
    assert_eq!(decisions[first + 1].decision, Verdict::Block);
    let (key, address, drain) = (first + 2, first + 3, first + 4);
    assert!(
        decisions[key].decision >= Verdict::Hold,
        "{:?}",
        decisions[key]
    );
    assert!(by_reason(key, "allowlisted_ip_flagged_elsewhere"));
    assert!(
        by_reason(address, "address_flagged_elsewhere"),
        "{:?}",
        decisions[address]
    );
    assert!(
        decisions[drain].decision >= Verdict::Hold,
        "{:?}",
        decisions[drain]
    );
    assert!(by_reason(drain, "address_flagged_elsewhere"));
    // Allow-listing a server it never used still counts against the third customer's key
    // change on its own; nothing links it, or its new address, to the campaign.
    for unlinked in [first + 5, first + 6] {
        assert!(
            !decisions[unlinked]
                .reasons
                .iter()
                .any(|r| r.ends_with("_elsewhere")),
            "{:?}",
            decisions[unlinked]
        );
    }
    assert!(decisions[first + 6].decision <= Verdict::Challenge);
}

// --- Revision 2: changes that take effect later ---------------------------------------------

const WIDEN_PENDING: &str = r#"9000 | "type":"api_key.updated","account":"a1","key_id":"k1","scopes":["read","trade","withdraw"],"ip_allowlist":["198.51.100.23/32"],"step_up":"passkey","effective":"pending","ctx":{"ip":"198.51.100.23","device_id":"d1","channel":"web"}"#;

fn has(decision: &Decision, reason: &str) -> bool {
    decision.reasons.iter().any(|r| r == reason)
}

#[test]
fn a_pending_widening_is_not_in_force_until_it_applies() {
    let decisions = run(&story(&[
        WIDEN_PENDING,
        r#"9030 | "type":"withdrawal.requested","account":"a1","withdrawal_id":"w1","asset":"USDT","network":"TRX","address":"TQnew","amount":"900","amount_usd":900,"key_id":"k1","ctx":{"ip":"198.51.100.23","channel":"api"}"#,
    ]));
    assert_eq!(decisions[3].decision, Verdict::Allow, "{:?}", decisions[3]);
    assert_eq!(decisions[4].decision, Verdict::Block, "{:?}", decisions[4]);
    assert!(has(&decisions[4], "key_lacks_withdraw_scope"));
}

#[test]
fn a_key_drained_within_a_day_after_its_cooldown_is_held() {
    // The widening allow-lists the crew's server and applies after its one-day cool-down; the
    // drain comes from that server half an hour later.
    let widen = WIDEN_PENDING.replace("198.51.100.23/32", "203.0.113.7/32");
    // The customer had reported a fake support call two days before: the widening's context.
    let reported = r#"7000 | "type":"contact.reported","account":"a1","channel":"phone","from":"+15550100","claimed":"exchange support","contacted_at":"2025-07-28T00:00:00Z""#;
    let drain = r#"10470 | "type":"withdrawal.requested","account":"a1","withdrawal_id":"w1","asset":"USDT","network":"TRX","address":"TQnew","amount":"4000","amount_usd":4000,"key_id":"k1","ctx":{"ip":"203.0.113.7","channel":"api"}"#;
    let decisions = run(&story(&[
        reported,
        &widen,
        r#"10440 | "type":"change.applied","account":"a1","event_ref":"e7","by":"cooldown""#,
        drain,
    ]));
    let drained = &decisions[4];
    assert!(drained.decision >= Verdict::Hold, "{drained:?}");
    assert!(has(drained, "escalation_cooldown") && has(drained, "key_widened_then_drained"));
    // Counted from the request instead (revision 1), the day would be over.
    let now_line = widen.replace(r#","effective":"pending""#, "");
    let decisions = run(&story(&[reported, &now_line, drain]));
    assert!(
        !has(&decisions[4], "escalation_cooldown"),
        "{:?}",
        decisions[4]
    );
}

#[test]
fn a_cancelled_allowlisting_never_counts() {
    let decisions = run(&story(&[
        r#"9000 | "type":"api_key.updated","account":"a1","key_id":"k1","scopes":["read","trade","withdraw"],"ip_allowlist":["198.51.100.23/32","203.0.113.7/32"],"step_up":"passkey","effective":"pending","ctx":{"ip":"198.51.100.23","device_id":"d1","channel":"web"}"#,
        r#"9100 | "type":"change.cancelled","account":"a1","event_ref":"e6","by":"customer""#,
        r#"10600 | "type":"change.applied","account":"a1","event_ref":"e6","by":"cooldown""#,
        r#"10610 | "type":"withdrawal.requested","account":"a1","withdrawal_id":"w1","asset":"USDT","network":"TRX","address":"TQnew","amount":"900","amount_usd":900,"key_id":"k1","ctx":{"ip":"203.0.113.7","channel":"api"}"#,
    ]));
    let drain = &decisions[4];
    assert_eq!(drain.decision, Verdict::Block, "{drain:?}");
    assert!(has(drain, "key_lacks_withdraw_scope") && has(drain, "ip_outside_key_allowlist"));
    assert!(!has(drain, "escalation_cooldown"), "nothing took effect");
}

#[test]
fn a_released_hold_lets_later_withdrawals_through() {
    let mut engine = Engine::new(Policy::default_policy().unwrap());
    let decisions = run_on(
        &mut engine,
        &story(&[
            r#"9000 | "type":"address.added","account":"a1","address":"bc1new","asset":"BTC","network":"BTC","step_up":"sms","ctx":{"ip":"198.51.100.23","device_id":"d1","channel":"app","call_active":true}"#,
            r#"9010 | "type":"withdrawal.requested","account":"a1","withdrawal_id":"w1","asset":"BTC","network":"BTC","address":"bc1new","amount":"0.01","amount_usd":600,"ctx":{"ip":"198.51.100.23","device_id":"d1","channel":"web"}"#,
            r#"9500 | "type":"change.applied","account":"a1","event_ref":"e6","by":"operator""#,
            r#"13000 | "type":"withdrawal.requested","account":"a1","withdrawal_id":"w2","asset":"BTC","network":"BTC","address":"bc1new","amount":"0.01","amount_usd":600,"ctx":{"ip":"198.51.100.23","device_id":"d1","channel":"web"}"#,
        ]),
        0,
    );
    assert_eq!(decisions[3].decision, Verdict::Hold, "{:?}", decisions[3]);
    assert_eq!(
        decisions[4].decision,
        Verdict::Block,
        "held: not usable yet"
    );
    assert_eq!(decisions[5].decision, Verdict::Allow, "{:?}", decisions[5]);
    assert_eq!(engine.stats().changes_applied, 1);
}

#[test]
fn closing_an_unknown_closed_or_blocked_change_changes_nothing() {
    let mut engine = Engine::new(Policy::default_policy().unwrap());
    let decisions = run_on(
        &mut engine,
        &story(&[
            r#"8990 | "type":"fraud.confirmed","account":"v","addresses":["TQbad"]"#,
            r#"9000 | "type":"address.added","account":"a1","address":"TQbad","asset":"USDT","network":"TRX","step_up":"passkey","effective":"pending""#,
            r#"9001 | "type":"change.applied","account":"a1","event_ref":"e7","by":"operator""#,
            r#"9002 | "type":"change.applied","account":"a1","event_ref":"no_such_event","by":"cooldown""#,
            r#"9003 | "type":"change.cancelled","account":"a1","event_ref":"e5","by":"system""#,
            r#"9010 | "type":"withdrawal.requested","account":"a1","withdrawal_id":"w1","asset":"USDT","network":"TRX","address":"TQbad","amount":"10","amount_usd":10"#,
        ]),
        0,
    );
    assert_eq!(decisions[3].decision, Verdict::Block);
    assert_eq!(decisions[4].decision, Verdict::Block, "{:?}", decisions[4]);
    assert!(has(&decisions[4], "blocked_address"));
    let stats = engine.stats();
    assert_eq!((stats.changes_applied, stats.changes_unmatched), (0, 3));
}

#[test]
fn a_waiting_change_survives_a_checkpoint() {
    let mut engine = Engine::new(Policy::default_policy().unwrap());
    run_on(&mut engine, &story(&[WIDEN_PENDING]), 0);
    let mut restored = Engine::from_checkpoint(
        Policy::default_policy().unwrap(),
        &engine.checkpoint().unwrap(),
    )
    .unwrap();
    let decisions = run_on(
        &mut restored,
        &[
            r#"10440 | "type":"change.applied","account":"a1","event_ref":"e6","by":"cooldown""#,
            r#"13000 | "type":"withdrawal.requested","account":"a1","withdrawal_id":"w1","asset":"BTC","network":"BTC","address":"bc1own","amount":"0.01","amount_usd":600,"key_id":"k1","ctx":{"ip":"198.51.100.23","channel":"api"}"#,
        ],
        7,
    );
    assert!(
        decisions[0].decision <= Verdict::Challenge,
        "{:?}",
        decisions[0]
    );
    assert_eq!(restored.stats().changes_applied, 1);
}

#[test]
fn a_case_variant_of_a_confirmed_fraud_address_is_the_same_address() {
    let decisions = run(&[
        r#"0 | "type":"fraud.confirmed","account":"victim","addresses":["0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed","BC1QW508D6QEJXTDG4Y5R3ZARVARY0C5XW7KV8F3T4"]"#,
        r#"5 | "type":"withdrawal.requested","account":"a2","withdrawal_id":"w1","asset":"USDT","network":"ETH","address":"0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed","amount":"100","amount_usd":100"#,
        r#"6 | "type":"address.added","account":"a3","address":"0X5AAEB6053F3E94C9B9A09F33669435E7EF1BEAED","asset":"USDT","network":"BSC","step_up":"passkey""#,
        r#"7 | "type":"withdrawal.requested","account":"a4","withdrawal_id":"w2","asset":"BTC","network":"BTC","address":"bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4","amount":"0.1","amount_usd":6000"#,
    ]);
    for decision in &decisions {
        assert_eq!(decision.decision, Verdict::Block, "{decision:?}");
        assert!(has(decision, "confirmed_fraud_address"), "{decision:?}");
    }
}

/// The bot already runs on a new server; its owner, with a passkey and no call, lets its key
/// withdraw from there (a widening that goes ahead).
const BOT_SERVER: &str = r#"14990 | "type":"api_key.used","account":"a1","key_id":"k1","endpoint":"GET /api/v3/account","count":1,"window_s":60,"ctx":{"ip":"203.0.113.50","channel":"api"}"#;
const BOT_MOVED: &str = r#"15000 | "type":"api_key.updated","account":"a1","key_id":"k1","scopes":["read","trade","withdraw"],"ip_allowlist":["203.0.113.50/32"],"step_up":"passkey","ctx":{"ip":"198.51.100.23","device_id":"d1","channel":"web"}"#;

#[test]
fn a_bot_moved_to_a_new_server_keeps_paying_its_old_wallet() {
    let payouts = [
        r#"15060 | "type":"withdrawal.requested","account":"a1","withdrawal_id":"w1","asset":"BTC","network":"BTC","address":"bc1own","amount":"0.01","amount_usd":600,"key_id":"k1","ctx":{"ip":"203.0.113.50","channel":"api"}"#,
        r#"15070 | "type":"withdrawal.requested","account":"a1","withdrawal_id":"w2","asset":"BTC","network":"BTC","address":"bc1fresh","amount":"0.01","amount_usd":600,"key_id":"k1","ctx":{"ip":"203.0.113.50","channel":"api"}"#,
    ];
    let decisions = run(&story(&[BOT_SERVER, BOT_MOVED, payouts[0], payouts[1]]));
    let (to_own, to_fresh) = (&decisions[4], &decisions[5]);
    // Its wallet of ten days: the shape of a drain, not its destination.
    assert!(!has(to_own, "key_widened_then_drained"), "{to_own:?}");
    assert!(to_own.decision <= Verdict::Challenge, "{to_own:?}");
    // A wallet the feed never showed, after a widening nobody talked them into: the shape.
    assert!(!has(to_fresh, "key_widened_then_drained"), "{to_fresh:?}");
    assert!(to_fresh.decision <= Verdict::Challenge, "{to_fresh:?}");
    // The same widening half an hour into a call: the crew draining to its own address.
    let called = r#"14970 | "type":"contact.inbound_call","account":"a1","from":"+15550100","attestation":"B","duration_s":600"#;
    let decisions = run(&story(&[
        called, BOT_SERVER, BOT_MOVED, payouts[0], payouts[1],
    ]));
    let to_fresh = &decisions[5];
    assert!(has(to_fresh, "key_widened_then_drained"), "{to_fresh:?}");
    assert!(to_fresh.decision >= Verdict::Hold, "{to_fresh:?}");
}

#[test]
fn a_crew_number_counts_while_a_call_is_recent() {
    let decisions = run(&story(&[
        CREW_CALL,
        CREW_CONFIRMED,
        // Three days later, with no call since: they hung up then, and this is their own wallet.
        r#"12320 | "type":"address.added","account":"a1","address":"bc1later","asset":"BTC","network":"BTC","step_up":"passkey","ctx":{"ip":"198.51.100.23","device_id":"d1"}"#,
        // A new call, from any number: the campaign may be at work again.
        r#"12400 | "type":"contact.inbound_call","account":"a1","from":"+15550100","attestation":"B","duration_s":300"#,
        r#"12410 | "type":"address.added","account":"a1","address":"bc1during","asset":"BTC","network":"BTC","step_up":"passkey","ctx":{"ip":"198.51.100.23","device_id":"d1"}"#,
    ]));
    let (later, during) = (&decisions[3], &decisions[4]);
    assert!(!has(later, "called_by_confirmed_fraud_number"), "{later:?}");
    assert!(later.decision <= Verdict::Challenge, "{later:?}");
    assert!(
        has(during, "called_by_confirmed_fraud_number"),
        "{during:?}"
    );
    assert!(during.decision >= Verdict::Hold, "{during:?}");
}

#[test]
fn a_refused_payout_spares_a_wallet_used_before_the_widening_not_the_crews() {
    let decisions = run(&story(&[
        r#"14000 | "type":"deposit","account":"a1","asset":"USDT","amount":"5000","amount_usd":5000"#,
        BOT_SERVER,
        BOT_MOVED,
        r#"15010 | "type":"contact.inbound_call","account":"a1","from":"+15550100","attestation":"C","duration_s":300"#,
        // Everything around it says drain: blocked, but the wallet is ten days old.
        r#"15020 | "type":"withdrawal.requested","account":"a1","withdrawal_id":"w1","asset":"BTC","network":"BTC","address":"bc1own","amount":"0.08","amount_usd":4900,"key_id":"k1","ctx":{"ip":"203.0.113.50","channel":"api"}"#,
        r#"15030 | "type":"withdrawal.requested","account":"a1","withdrawal_id":"w2","asset":"BTC","network":"BTC","address":"bc1own","amount":"0.001","amount_usd":60,"ctx":{"ip":"198.51.100.23","device_id":"d1","channel":"web"}"#,
        // The crew's address, met after the widening: blocked, and stays blocked.
        r#"15040 | "type":"withdrawal.requested","account":"a1","withdrawal_id":"w3","asset":"USDT","network":"TRX","address":"TQcrew","amount":"4000","amount_usd":4000,"key_id":"k1","ctx":{"ip":"203.0.113.50","channel":"api"}"#,
        r#"20000 | "type":"withdrawal.requested","account":"a1","withdrawal_id":"w4","asset":"USDT","network":"TRX","address":"TQcrew","amount":"60","amount_usd":60,"ctx":{"ip":"198.51.100.23","device_id":"d1","channel":"web"}"#,
    ]));
    let [refused, own_after, crew, crew_after] =
        [&decisions[4], &decisions[5], &decisions[6], &decisions[7]];
    assert_eq!(refused.decision, Verdict::Block, "{refused:?}");
    assert!(!has(own_after, "blocked_address"), "{own_after:?}");
    assert_eq!(crew.decision, Verdict::Block, "{crew:?}");
    assert!(has(crew_after, "blocked_address"), "{crew_after:?}");
}

/// `k1` can withdraw from the customer's home address from day 6 on (a widening two days
/// before the lines of the tests below).
const K1_WITHDRAWS: &str = r#"9000 | "type":"api_key.updated","account":"a1","key_id":"k1","scopes":["read","trade","withdraw"],"ip_allowlist":["198.51.100.23/32","203.0.113.50/32"],"step_up":"passkey","ctx":{"ip":"198.51.100.23","device_id":"d1","channel":"web"}"#;

#[test]
fn a_whole_internet_beside_the_old_server_widens_the_key() {
    let decisions = run(&story(&[
        K1_WITHDRAWS,
        // Two days later: the same list, and `0.0.0.0/0` beside it. Nothing is unseen (the
        // account's addresses are all in it), and the old list is still within the new one.
        r#"12000 | "type":"api_key.updated","account":"a1","key_id":"k1","scopes":["read","trade","withdraw"],"ip_allowlist":["198.51.100.23/32","0.0.0.0/0"],"step_up":"passkey","ctx":{"ip":"198.51.100.23","device_id":"d1","channel":"web"}"#,
        r#"12030 | "type":"withdrawal.requested","account":"a1","withdrawal_id":"w1","asset":"USDT","network":"TRX","address":"TQnew","amount":"4000","amount_usd":4000,"key_id":"k1","ctx":{"ip":"192.0.2.99","channel":"api"}"#,
    ]));
    let (opened, drained) = (&decisions[4], &decisions[5]);
    assert!(has(opened, "ip_restriction_dropped"), "{opened:?}");
    // The key was widened half an hour before: the drain's shape, from anywhere.
    assert!(has(drained, "escalation_cooldown"), "{drained:?}");
    assert!(drained.decision >= Verdict::Hold, "{drained:?}");
}

#[test]
fn an_allowlist_narrowed_or_moved_host_for_host_is_not_loosened() {
    let decisions = run(&story(&[
        K1_WITHDRAWS,
        // The second server leaves the list: narrower, not wider.
        r#"12000 | "type":"api_key.updated","account":"a1","key_id":"k1","scopes":["read","trade","withdraw"],"ip_allowlist":["198.51.100.23/32"],"step_up":"passkey","ctx":{"ip":"198.51.100.23","device_id":"d1","channel":"web"}"#,
        r#"12010 | "type":"withdrawal.requested","account":"a1","withdrawal_id":"w1","asset":"BTC","network":"BTC","address":"bc1own","amount":"0.001","amount_usd":100,"ctx":{"ip":"198.51.100.23","device_id":"d1","channel":"web"}"#,
        // The bot moves to a server the account never used: a change of place, judged as one.
        r#"15000 | "type":"api_key.updated","account":"a1","key_id":"k1","scopes":["read","trade","withdraw"],"ip_allowlist":["192.0.2.80/32"],"step_up":"passkey","ctx":{"ip":"198.51.100.23","device_id":"d1","channel":"web"}"#,
    ]));
    let (narrowed, payout, moved) = (&decisions[4], &decisions[5], &decisions[6]);
    assert!(!has(narrowed, "ip_restriction_dropped"), "{narrowed:?}");
    assert_eq!(narrowed.decision, Verdict::Allow, "{narrowed:?}");
    assert!(!has(payout, "escalation_cooldown"), "{payout:?}");
    assert!(!has(moved, "ip_restriction_dropped"), "{moved:?}");
    assert!(has(moved, "unseen_ip_allowlisted"), "{moved:?}");
}

/// The shape of a customer moving savings to a wallet they just added, with no call, remote
/// tool or report: nothing tells a coached victim from them but what a miss would cost.
fn first_send(policy: &str, address: &str, usd: u32) -> Vec<Decision> {
    let added = r#"9000 | "type":"address.added","account":"a1","address":"TQnew","asset":"USDT","network":"TRX","step_up":"passkey","ctx":{"ip":"198.51.100.23","device_id":"d1","channel":"app"}"#;
    let send = format!(
        r#"9020 | "type":"withdrawal.requested","account":"a1","withdrawal_id":"w1","asset":"USDT","network":"TRX","address":"{address}","amount":"{usd}","amount_usd":{usd},"ctx":{{"ip":"198.51.100.23","device_id":"d1","channel":"app"}}"#
    );
    run_on(
        &mut Engine::new(Policy::parse(policy).unwrap()),
        &story(&[added, &send]),
        0,
    )
}

#[test]
fn a_large_first_send_to_a_just_added_address_is_held_once_the_rule_acts() {
    let default = include_str!("../policy/default.toml");
    // The rule ships in shadow: the default policy leaves the shape a challenge.
    let shadowed = first_send(default, "TQnew", 250_000);
    assert_eq!(
        shadowed[4].decision,
        Verdict::Challenge,
        "{:?}",
        shadowed[4]
    );
    // Switched on, as an exchange that weighs a miss by its amount would run it.
    let rule = default
        .find("id = \"large_first_send\"")
        .expect("the rule is in the policy");
    let shadow = rule + default[rule..].find("shadow = true").unwrap();
    let acting = format!(
        "{}{}",
        &default[..shadow],
        &default[shadow + "shadow = true".len()..]
    );
    let large = first_send(&acting, "TQnew", 250_000);
    assert!(has(&large[4], "large_first_send"), "{:?}", large[4]);
    assert_eq!(large[4].decision, Verdict::Hold, "{:?}", large[4]);
    // The same shape with an everyday amount: a challenge, the warning is the protection.
    let small = first_send(&acting, "TQnew", 4_500);
    assert!(!has(&small[4], "large_first_send"), "{:?}", small[4]);
    assert!(small[4].decision <= Verdict::Challenge, "{:?}", small[4]);
    // The same amount to the wallet the customer has used for days: where to, not how much.
    let known = first_send(&acting, "bc1own", 250_000);
    assert!(!has(&known[4], "large_first_send"), "{:?}", known[4]);
    assert!(known[4].decision <= Verdict::Challenge, "{:?}", known[4]);
}
