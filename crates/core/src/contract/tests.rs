//! Contract conformance: every event type as the contract writes it, every kind of bad line.

use super::*;
use crate::events::{KeyEvent, StepUp};
use crate::time::UnixMillis;

/// One line of each type, in the contract's own words (the two examples are verbatim).
const EVERY_TYPE: &str = r#"{"id":"l1","ts":"2025-07-28T14:00:00.000Z","type":"login","account":"acc_81","method":"password","success":true,"ctx":{"ip":"198.51.100.23","device_id":"d_81a","channel":"web"}}
{"id":"e0","ts":"2025-07-28T14:01:00.000Z","type":"api_key.created","account":"acc_81","key_id":"k_3","scopes":["read","trade"],"ip_allowlist":[],"step_up":"none"}
{"id":"e1","ts":"2025-07-28T14:03:11.250Z","type":"api_key.updated","account":"acc_81","key_id":"k_3","scopes":["read","trade","withdraw"],"ip_allowlist":["203.0.113.7/32"],"step_up":"totp","ctx":{"ip":"198.51.100.23","device_id":"d_81a","channel":"app","call_active":true}}
{"id":"u1","ts":"2025-07-28T14:04:00.000Z","type":"api_key.used","account":"acc_81","key_id":"k_3","endpoint":"GET /api/v3/account","count":12,"window_s":60,"ctx":{"ip":"203.0.113.7","channel":"api"}}
{"id":"a1","ts":"2025-07-28T14:05:00.000Z","type":"address.added","account":"acc_81","address":"TQ5abc","asset":"USDT","network":"TRX","step_up":"sms","ctx":{"remote_access":true}}
{"id":"e2","ts":"2025-07-28T14:09:40.002Z","type":"withdrawal.requested","account":"acc_81","withdrawal_id":"w_9","asset":"USDT","network":"TRX","address":"TQ5...","amount":"2400","amount_usd":2400.0,"key_id":"k_3","ctx":{"ip":"203.0.113.7","channel":"api"}}
{"id":"d1","ts":"2025-07-28T13:00:00.000Z","type":"deposit","account":"acc_81","asset":"USDT","amount":"2500.5","amount_usd":2500.5}
{"id":"c1","ts":"2025-07-28T15:00:00.000Z","type":"contact.reported","account":"acc_81","channel":"phone","from":"+44 20 7946 0018","claimed":"Binance support","contacted_at":"2025-07-28T13:55:00.000Z"}
{"id":"c2","ts":"2025-07-28T13:56:00.000Z","type":"contact.inbound_call","account":"acc_81","from":"+442079460018","attestation":"C","duration_s":840}
{"id":"m1","ts":"2025-07-28T14:00:00.000Z","type":"market.activity","market":"*","volume_ratio":3.2,"volatility":0.85}
{"id":"f1","ts":"2025-07-29T09:00:00.000Z","type":"fraud.confirmed","account":"acc_81","withdrawal_ids":["w_9"],"addresses":["TQ5..."],"from":["+442079460018"],"note":"confirmed by the customer"}
{"id":"k1","ts":"2025-07-28T14:00:00.000Z","type":"api_key.deleted","account":"acc_81","key_id":"k_3"}
{"id":"p1","ts":"2025-07-28T14:10:00.000Z","type":"address.added","account":"acc_81","address":"TQ5xyz","asset":"USDT","network":"TRX","step_up":"passkey","effective":"pending"}
{"id":"p2","ts":"2025-07-29T14:10:00.000Z","type":"change.applied","account":"acc_81","event_ref":"p1","by":"cooldown"}
{"id":"p3","ts":"2025-07-29T14:11:00.000Z","type":"change.cancelled","account":"acc_81","event_ref":"e1","by":"customer"}"#;

#[test]
fn every_contract_type_parses() {
    let batch = parse_lines(EVERY_TYPE);
    assert_eq!(batch.errors, vec![]);
    let types: Vec<&str> = batch
        .events
        .iter()
        .map(|(_, e)| e.body.type_name())
        .collect();
    assert_eq!(
        types,
        vec![
            "login",
            "api_key.created",
            "api_key.updated",
            "api_key.used",
            "address.added",
            "withdrawal.requested",
            "deposit",
            "contact.reported",
            "contact.inbound_call",
            "market.activity",
            "fraud.confirmed",
            "api_key.deleted",
            "address.added",
            "change.applied",
            "change.cancelled",
        ]
    );
    let (line, withdrawal) = &batch.events[5];
    assert_eq!(*line, 6);
    assert!(withdrawal.body.asks_for_decision());
    assert_eq!(
        withdrawal.ts,
        UnixMillis::parse_rfc3339("2025-07-28T14:09:40.002Z").unwrap()
    );
    match &withdrawal.body {
        EventBody::WithdrawalRequested {
            amount,
            amount_usd,
            key_id,
            ..
        } => {
            assert_eq!(
                (amount.as_str(), *amount_usd, key_id.as_deref()),
                ("2400", 2400.0, Some("k_3"))
            );
        }
        other => panic!("{other:?}"),
    }
    let updated = &batch.events[2].1;
    assert_eq!(updated.ctx.call_active, Some(true));
    assert!(
        matches!(&updated.body, EventBody::ApiKeyUpdated { step_up: StepUp::Totp, scopes, .. } if scopes.names() == ["read", "trade", "withdraw"])
    );
    assert_eq!(
        batch.events[9].1.account, None,
        "market.activity has no account"
    );
    let decisions = batch
        .events
        .iter()
        .filter(|(_, e)| e.body.asks_for_decision())
        .count();
    assert_eq!(
        decisions, 5,
        "created, updated, both address.added, withdrawal.requested"
    );
    assert!(matches!(
        &batch.events[12].1.body,
        EventBody::AddressAdded {
            effective: crate::events::Effective::Pending,
            ..
        }
    ));
    assert!(
        matches!(&batch.events[2].1.body, EventBody::ApiKeyUpdated { effective, .. } if effective.is_now()),
        "absent means now"
    );
    assert!(matches!(
        &batch.events[13].1.body,
        EventBody::ChangeApplied { event_ref, by: crate::events::AppliedBy::Cooldown } if event_ref == "p1"
    ));
}

#[test]
fn bad_lines_are_reported_by_number_and_the_rest_is_kept() {
    let lines = [
        r#"{"id":"ok1","ts":"2025-07-28T14:00:00.000Z","type":"login","account":"a","method":"passkey","success":false}"#,
        r#"{"id":"x","ts":"2025-07-28T14:00:00.000Z","type":"teleport","account":"a"}"#,
        r#"not json"#,
        r#"{"id":"x","ts":"yesterday","type":"login","account":"a","method":"password","success":true}"#,
        r#"{"id":"x","ts":"2025-07-28T14:00:00.000Z","type":"login","method":"password","success":true}"#,
        r#"{"id":"x","ts":"2025-07-28T14:00:00.000Z","type":"deposit","account":"a","asset":"BTC","amount":"-1","amount_usd":5}"#,
        r#"{"id":"x","ts":"2025-07-28T14:00:00.000Z","type":"deposit","account":"a","asset":"BTC","amount":"1e9","amount_usd":5}"#,
        r#"{"id":"x","ts":"2025-07-28T14:00:00.000Z","type":"deposit","account":"a","asset":"BTC","amount":"1","amount_usd":1e15}"#,
        r#"{"id":"x","ts":"2025-07-28T14:00:00.000Z","type":"api_key.used","account":"a","key_id":"k","endpoint":"GET /","count":0,"window_s":60}"#,
        r#"{"id":"x","ts":"2025-07-28T14:00:00.000Z","type":"api_key.created","account":"a","key_id":"k","scopes":["root"],"ip_allowlist":[],"step_up":"none"}"#,
        r#"{"id":"x","ts":"2025-07-28T14:00:00.000Z","type":"api_key.created","account":"a","key_id":"k","scopes":["read"],"ip_allowlist":["10.0.0/8"],"step_up":"none"}"#,
        r#"{"id":"","ts":"2025-07-28T14:00:00.000Z","type":"login","account":"a","method":"password","success":true}"#,
        r#"{"id":"x","ts":"1970-01-01T00:00:00.000Z","type":"login","account":"a","method":"password","success":true}"#,
        r#"{"id":"x","ts":"2025-07-28T14:00:00.000Z","type":"withdrawal.requested","account":"a","withdrawal_id":"w","asset":"USDT","network":"TRX","address":"T","amount":"5"}"#,
        "",
        r#"{"id":"ok2","ts":"2025-07-28T14:00:00.000Z","type":"login","account":"a","method":"email_link","success":true,"extra_field":"ignored"}"#,
    ];
    let batch = parse_lines(&lines.join("\n"));
    let accepted: Vec<usize> = batch.events.iter().map(|(line, _)| *line).collect();
    assert_eq!(accepted, vec![1, 16]);
    let refused: Vec<usize> = batch.errors.iter().map(|e| e.line).collect();
    assert_eq!(refused, (2..=14).collect::<Vec<_>>());
    let reason = |line: usize| {
        batch
            .errors
            .iter()
            .find(|e| e.line == line)
            .unwrap()
            .reason
            .clone()
    };
    assert!(reason(2).contains("teleport"), "{}", reason(2));
    assert!(reason(4).contains("RFC 3339"), "{}", reason(4));
    assert!(reason(5).contains("account"), "{}", reason(5));
    assert!(reason(6).contains("amount"), "{}", reason(6));
    assert!(reason(8).contains("amount_usd"), "{}", reason(8));
    assert!(reason(9).contains("count"), "{}", reason(9));
    assert!(reason(10).contains("root"), "{}", reason(10));
    assert!(reason(11).contains("CIDR"), "{}", reason(11));
    assert!(reason(14).contains("amount_usd"), "{}", reason(14));
    assert!(
        !reason(3).contains("at line"),
        "positions come from the line number"
    );
}

#[test]
fn revision_two_lines_are_checked_like_the_rest() {
    let lines = [
        r#"{"id":"x1","ts":"2025-07-28T14:00:00.000Z","type":"change.applied","account":"a","by":"cooldown"}"#,
        r#"{"id":"x2","ts":"2025-07-28T14:00:00.000Z","type":"change.applied","account":"a","event_ref":"e1","by":"system"}"#,
        r#"{"id":"x3","ts":"2025-07-28T14:00:00.000Z","type":"change.cancelled","account":"a","event_ref":"e1","by":"cooldown"}"#,
        r#"{"id":"x4","ts":"2025-07-28T14:00:00.000Z","type":"address.added","account":"a","address":"T","asset":"USDT","network":"TRX","step_up":"none","effective":"later"}"#,
        r#"{"id":"x5","ts":"2025-07-28T14:00:00.000Z","type":"change.cancelled","account":"a","event_ref":"","by":"system"}"#,
        r#"{"id":"x6","ts":"2025-07-28T14:00:00.000Z","type":"change.applied","event_ref":"e1","by":"operator"}"#,
        r#"{"id":"ok","ts":"2025-07-28T14:00:00.000Z","type":"change.cancelled","account":"a","event_ref":"e1","by":"system"}"#,
    ];
    let batch = parse_lines(&lines.join("\n"));
    let refused: Vec<usize> = batch.errors.iter().map(|e| e.line).collect();
    assert_eq!(refused, (1..=6).collect::<Vec<_>>(), "{:?}", batch.errors);
    assert_eq!(batch.events.len(), 1);
    assert!(!batch.events[0].1.body.asks_for_decision());
    for line in lines {
        assert!(fast_agrees(line), "{line}");
    }
}

#[test]
fn oversized_lines_are_refused() {
    let line = format!(
        r#"{{"id":"x","ts":"2025-07-28T14:00:00.000Z","type":"login","account":"a","method":"password","success":true,"pad":"{}"}}"#,
        "a".repeat(MAX_LINE_BYTES)
    );
    assert!(parse_line(&line).unwrap_err().contains("longer"));
}

/// Every type the key authority emits, as the lines it wrote before its events and the
/// parser's became one model: byte for byte, field order included.
const EMITTED: &[&str] = &[
    r#"{"id":"e1","ts":"2026-01-01T00:00:00.000Z","account":"acc_1","type":"api_key.created","key_id":"k_1","scopes":["read","trade"],"ip_allowlist":[],"step_up":"none"}"#,
    r#"{"id":"e2","ts":"2026-01-01T00:00:00.000Z","account":"acc_1","type":"api_key.created","key_id":"k_1","scopes":["read","withdraw"],"ip_allowlist":["203.0.113.7/32"],"step_up":"passkey","effective":"pending","ctx":{"ip":"198.51.100.23","device_id":"d_1","channel":"web","call_active":true}}"#,
    r#"{"id":"e3","ts":"2026-01-01T00:00:00.000Z","account":"acc_1","type":"api_key.updated","key_id":"k_1","scopes":["read","trade","withdraw"],"ip_allowlist":["203.0.113.7/32"],"step_up":"totp","effective":"pending"}"#,
    r#"{"id":"e4","ts":"2026-01-01T00:00:00.000Z","account":"acc_1","type":"api_key.updated","key_id":"k_1","scopes":["read"],"ip_allowlist":[],"step_up":"none"}"#,
    r#"{"id":"e5","ts":"2026-01-01T00:00:00.000Z","account":"acc_1","type":"api_key.deleted","key_id":"k_1"}"#,
    r#"{"id":"e6","ts":"2026-01-01T00:00:00.000Z","account":"acc_1","type":"address.added","address":"0xabc","asset":"ETH","network":"ethereum","step_up":"totp","effective":"pending"}"#,
    r#"{"id":"e7","ts":"2026-01-02T00:00:00.000Z","account":"acc_1","type":"change.applied","event_ref":"e6","by":"cooldown"}"#,
    r#"{"id":"e8","ts":"2026-01-02T00:00:00.000Z","account":"acc_1","type":"change.applied","event_ref":"e3","by":"operator"}"#,
    r#"{"id":"e9","ts":"2026-01-02T00:00:00.000Z","account":"acc_1","type":"change.cancelled","event_ref":"e2","by":"customer"}"#,
    r#"{"id":"e10","ts":"2026-01-02T00:00:00.000Z","account":"acc_1","type":"change.cancelled","event_ref":"e2","by":"system"}"#,
    r#"{"id":"e11","ts":"2026-01-01T00:00:00.000Z","account":"acc_1","type":"api_key.rotated","key_id":"k_1","previous_valid_until":"2026-01-02T00:00:00.000Z"}"#,
    r#"{"id":"e12","ts":"2026-01-01T00:00:00.000Z","account":"acc_1","type":"api_key.idle_warning","key_id":"k_1","expires_at":"2026-01-08T00:00:00.000Z"}"#,
    r#"{"id":"e13","ts":"2026-01-01T00:00:00.000Z","account":"acc_1","type":"api_key.idle_expired","key_id":"k_1"}"#,
];

#[test]
fn what_the_key_authority_emits_is_what_the_parser_reads_byte_for_byte() {
    let mut types = std::collections::BTreeSet::new();
    for line in EMITTED {
        // Emitted -> parsed: the contract's reader takes it, values checked.
        let parsed = parse_line(line).unwrap_or_else(|e| panic!("{line}: {e}"));
        types.insert(parsed.body.type_name());
        // Parsed -> emitted again: the same bytes, so the one model writes what it reads.
        let emitted = KeyEvent {
            id: parsed.id.clone(),
            ts: parsed.ts,
            account: parsed.account.clone().unwrap(),
            body: parsed.body.clone(),
            ctx: parsed.ctx.clone(),
        };
        assert_eq!(emitted.to_json_line(), *line);
        // And the envelope reads back as itself.
        let back: KeyEvent = serde_json::from_str(line).unwrap();
        assert_eq!(back, emitted);
    }
    assert_eq!(
        types.len(),
        9,
        "every type the key authority emits: {types:?}"
    );
}

#[test]
fn an_emitted_event_built_in_code_parses_to_the_same_body() {
    let emitted = KeyEvent {
        id: "evt_1".into(),
        ts: UnixMillis::parse_rfc3339("2026-01-01T00:00:00Z").unwrap(),
        account: "acc_1".into(),
        body: EventBody::ApiKeyRotated {
            key_id: "k_1".into(),
            previous_valid_until: UnixMillis::parse_rfc3339("2026-01-02T00:00:00Z").unwrap(),
        },
        ctx: Default::default(),
    };
    let parsed = parse_line(&emitted.to_json_line()).unwrap();
    assert_eq!(parsed.body, emitted.body);
    assert_eq!(parsed.account.as_deref(), Some("acc_1"));
}

/// Each fast reader either declines a line or builds exactly what the derived reader builds.
fn fast_agrees(line: &str) -> bool {
    let derived = serde_json::from_str::<ContractEvent>(line).ok();
    [super::flat::read(line), super::wire::read(line)]
        .into_iter()
        .all(|fast| fast.is_none() || fast == derived)
}

#[test]
fn the_byte_scanner_takes_the_hot_types_in_any_spacing() {
    for line in EVERY_TYPE.lines() {
        let derived: ContractEvent = serde_json::from_str(line).unwrap();
        let hot = matches!(derived.body.type_name(), "login" | "api_key.used");
        assert_eq!(super::flat::read(line).is_some(), hot, "{line}");
        let value: serde_json::Value = serde_json::from_str(line).unwrap();
        let pretty = serde_json::to_string_pretty(&value).unwrap();
        assert_eq!(super::flat::read(&pretty).is_some(), hot, "{pretty}");
        assert!(fast_agrees(&pretty), "{pretty}");
        assert!(fast_agrees(&format!(" {line}\t ")));
    }
    let odd = [
        r#"{"id":"x","ts":"2025-07-28T14:00:00.000Z","type":"login","account":"a","method":"password","success":true,"count":1}"#,
        r#"{"id":"x","ts":"2025-07-28T14:00:00.000Z","type":"login","account":"a","method":"password","success":true}x"#,
        r#"{"id":"x","ts":"2025-07-28T14:00:00.000Z","type":"login","account":"a","method":"password","success":true,}"#,
        r#"{"id":"x","ts":"2025-07-28T14:00:00.000Z","type":"login","account":"a","method":"password","success":truex}"#,
        r#"{"id":"x","ts":"2025-07-28T14:00:00.000Z","type":"api_key.used","account":"a","key_id":"k","endpoint":"GET","count":012,"window_s":1}"#,
        r#"{"id":"x","ts":"2025-07-28T14:00:00.000Z","type":"api_key.used","account":"a","key_id":"k","endpoint":"GET","count":99999999999999999999,"window_s":1}"#,
        r#"{"id":"x","ts":"2025-07-28T14:00:00.000Z","type":"api_key.used","account":"a","key_id":"k","endpoint":"G	T","count":1,"window_s":1}"#,
        r#"{"id":"x","ts":"2025-07-28T14:00:00.000Z","type":"api_key.used","account":"a","key_id":"k","endpoint":"GET","count":1,"window_s":1,"ctx":{"ip":"1.2.3.4","ip":"1.2.3.5"}}"#,
        r#"{"id":"x","ts":"2025-07-28T14:00:00.000Z","type":"api_key.used","account":"a","key_id":"k","endpoint":"GET","count":1,"window_s":1,"ctx":{}}"#,
        r#"{"id":"x","ts":"2025-07-28T14:00:00.000Z","type":"api_key.used","account":"a","key_id":"k","endpoint":"GET","count":1,"window_s":1,"ctx":{"call_active":false,"remote_access":true}}"#,
        r#"{"id":"x","ts":"2025-07-28T14:00:00+02:00","type":"login","account":"a","method":"sms","success":false}"#,
        r#"{"id":"x","ts":"2025-07-28T14:00:00.000Z","type":"login","account":"a","method":"fax","success":false}"#,
        r#"{"id":"x","ts":"2025-07-28T14:00:00.000Z","type":"login","method":"totp","success":false}"#,
    ];
    for line in odd {
        assert!(fast_agrees(line), "{line}");
    }
}

#[test]
fn the_fast_reader_takes_every_hot_type_and_agrees_with_the_derived_one() {
    for line in EVERY_TYPE.lines() {
        let derived: ContractEvent = serde_json::from_str(line).unwrap();
        let fast = super::wire::read(line);
        if derived.body.type_name() == "fraud.confirmed" {
            assert_eq!(fast, None, "fraud.confirmed takes the derived way");
        } else {
            assert_eq!(fast.as_ref(), Some(&derived), "{line}");
        }
    }
}

#[test]
fn the_fast_reader_never_accepts_what_the_derived_one_reads_differently() {
    let replacements = [
        serde_json::Value::Null,
        serde_json::json!(0),
        serde_json::json!(-1),
        serde_json::json!(1.5),
        serde_json::json!("x"),
        serde_json::json!(["read"]),
        serde_json::json!({}),
        serde_json::json!(true),
    ];
    let mut checked = 0;
    for line in EVERY_TYPE.lines() {
        let value: serde_json::Value = serde_json::from_str(line).unwrap();
        let fields: Vec<String> = value.as_object().unwrap().keys().cloned().collect();
        let names = fields.iter().cloned().chain(
            [
                "method",
                "success",
                "from",
                "channel",
                "count",
                "scopes",
                "note",
                "effective",
                "by",
                "event_ref",
            ]
            .map(String::from),
        );
        for field in names {
            let mut without = value.clone();
            without.as_object_mut().unwrap().remove(&field);
            assert!(fast_agrees(&without.to_string()), "{without}");
            for replacement in &replacements {
                let mut changed = value.clone();
                changed[&field] = replacement.clone();
                assert!(fast_agrees(&changed.to_string()), "{changed}");
                checked += 1;
            }
        }
        // A repeated field, escapes and an unknown field.
        let text = line.trim_end_matches('}');
        for extra in [
            r#","id":"again"}"#,
            r#","type":"login"}"#,
            r#","zzz":{"a":[1]}}"#,
        ] {
            assert!(fast_agrees(&format!("{text}{extra}")), "{text}{extra}");
        }
        assert!(fast_agrees(&line.replace("acc_81", r"acc\u005f81")));
    }
    assert!(checked > 500);
}

#[test]
fn deeply_nested_lines_are_refused_and_ordinary_ones_are_not() {
    let nested = |depth: usize| {
        format!(
            r#"{{"id":"n","ts":"2025-07-28T14:00:00.000Z","type":"login","account":"a","method":"password","success":true,"extra":{}1{}}}"#,
            "[".repeat(depth),
            "]".repeat(depth)
        )
    };
    assert!(parse_line(&nested(MAX_DEPTH - 1)).is_ok());
    let refused = parse_line(&nested(127)).unwrap_err();
    assert!(refused.contains("nested"), "{refused}");
    // Brackets inside texts are not nesting.
    let texts = format!(
        r#"{{"id":"t","ts":"2025-07-28T14:00:00.000Z","type":"contact.reported","account":"a","channel":"other","from":"{}","claimed":"x\"[{{","contacted_at":"2025-07-28T13:00:00.000Z"}}"#,
        "[{".repeat(200)
    );
    assert!(parse_line(&texts).is_ok(), "{texts}");
}

#[test]
fn a_line_that_is_not_utf8_is_refused_alone() {
    let mut bytes = br#"{"id":"ok1","ts":"2025-07-28T14:00:00.000Z","type":"login","account":"a","method":"password","success":true}"#.to_vec();
    bytes.extend_from_slice(b"\n{\"id\":\"bad\xff\"}\n");
    bytes.extend_from_slice(br#"{"id":"ok2","ts":"2025-07-28T14:00:00.000Z","type":"login","account":"a","method":"password","success":true}"#);
    let (text, errors) = utf8_lines(&bytes);
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].line, 2);
    assert!(errors[0].reason.contains("UTF-8"));
    let batch = parse_lines(&text);
    let accepted: Vec<usize> = batch.events.iter().map(|(line, _)| *line).collect();
    assert_eq!(accepted, vec![1, 3], "the other lines keep their numbers");
    assert!(batch.errors.is_empty());
}

/// Lines for the reusing reader: every type, and the two hot types with each combination of
/// context fields (texts of several lengths, so that a string is reused shorter and longer),
/// without an account, with values `validate` refuses, and lines no reader takes.
fn lines_to_reuse() -> Vec<String> {
    let mut lines: Vec<String> = EVERY_TYPE.lines().map(str::to_owned).collect();
    let context = [
        r#""ip":"203.0.113.7""#,
        r#""device_id":"d_a_rather_long_device_identifier""#,
        r#""user_agent":"ua/1""#,
        r#""channel":"api""#,
        r#""session_id":"s""#,
        r#""call_active":true"#,
        r#""remote_access":false"#,
    ];
    let hot = [
        r#""type":"login","account":"acc_81","method":"totp","success":false"#,
        r#""type":"api_key.used","account":"acc_2","key_id":"k_30","endpoint":"POST /api/v3/order","count":3,"window_s":60"#,
        r#""type":"api_key.used","key_id":"k","endpoint":"GET","count":1,"window_s":1"#,
        r#""type":"api_key.used","account":"a","key_id":"k","endpoint":"GET","count":0,"window_s":1"#,
        r#""type":"login","account":"a b","method":"sms","success":true"#,
    ];
    for (n, body) in (0u32..).zip(hot) {
        for subset in 0..(1u32 << context.len()) {
            if subset % 5 != n % 5 && subset != 0 && subset != 127 {
                continue;
            }
            let fields: Vec<&str> = (0..context.len())
                .filter(|bit| subset & (1 << bit) != 0)
                .map(|bit| context[bit])
                .collect();
            let ctx = match fields.is_empty() {
                true => String::new(),
                false => format!(r#","ctx":{{{}}}"#, fields.join(",")),
            };
            let id = "x".repeat(1 + subset as usize % 30);
            lines.push(format!(
                r#"{{"id":"{id}","ts":"2025-07-28T14:00:00.000Z",{body}{ctx}}}"#
            ));
        }
    }
    lines.push("not json".into());
    lines.push(format!(
        r#"{{"id":"{}","ts":"2025-07-28T14:00:00.000Z","type":"login","account":"a","method":"sms","success":true}}"#,
        "y".repeat(MAX_LINE_BYTES)
    ));
    lines
}

#[test]
fn reading_into_one_event_reads_what_parse_line_reads_whatever_came_before() {
    let lines = lines_to_reuse();
    assert!(lines.len() > 100, "{}", lines.len());
    let expected: Vec<Result<ContractEvent, String>> =
        lines.iter().map(|line| parse_line(line)).collect();
    assert!(expected.iter().filter(|e| e.is_err()).count() > 10);
    // Every line after every other, then all in order and in reverse.
    for (first, line) in lines.iter().enumerate() {
        for (second, want) in lines.iter().zip(&expected) {
            let mut buffer = EventBuffer::default();
            let _ = buffer.parse(line);
            assert_eq!(buffer.parse(second).cloned(), *want, "{first}: {second}");
        }
    }
    let mut buffer = EventBuffer::default();
    let in_order = lines.iter().zip(&expected);
    for (line, want) in in_order.clone().chain(in_order.rev()) {
        assert_eq!(buffer.parse(line).cloned(), *want, "{line}");
    }
}
