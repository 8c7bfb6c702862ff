//! A held withdrawal puts its address under review for the same account's next sends: the
//! crew's second send to the "safe wallet" minutes after the first was held waits with it,
//! where it used to be only challenged (docs/rules.md, "An address under review").

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod story;

use portcullis_engine::{Decision, Engine, Policy, Verdict};
use story::run_on as run_from;

/// A customer of some weeks, an ordinary call (attested), a wallet added during it and a
/// first send to it during the call: held by the call's context.
fn story(sends: &[(i64, &str, u32)]) -> Vec<String> {
    let ctx = r#""ctx":{"ip":"198.51.100.23","device_id":"d1","channel":"app"}"#;
    let mut lines = vec![
        format!(r#"0 | "type":"login","account":"a1","method":"password","success":true,{ctx}"#),
        r#"1 | "type":"deposit","account":"a1","asset":"USDT","amount":"9000","amount_usd":9000"#
            .to_owned(),
        format!(
            r#"4 | "type":"address.added","account":"a1","address":"bc1own","asset":"BTC","network":"BTC","step_up":"passkey",{ctx}"#
        ),
        format!(
            r#"5000 | "type":"withdrawal.requested","account":"a1","withdrawal_id":"w0","asset":"BTC","network":"BTC","address":"bc1own","amount":"0.01","amount_usd":600,{ctx}"#
        ),
        r#"9000 | "type":"contact.inbound_call","account":"a1","from":"+442079460018","attestation":"A","duration_s":600"#
            .to_owned(),
        format!(
            r#"9005 | "type":"address.added","account":"a1","address":"TQsafe","asset":"USDT","network":"TRX","step_up":"passkey",{ctx}"#
        ),
        format!(
            r#"9010 | "type":"withdrawal.requested","account":"a1","withdrawal_id":"w1","asset":"USDT","network":"TRX","address":"TQsafe","amount":"4000","amount_usd":4000,{ctx}"#
        ),
    ];
    for (n, (minute, address, usd)) in sends.iter().enumerate() {
        lines.push(format!(
            r#"{minute} | "type":"withdrawal.requested","account":"a1","withdrawal_id":"w{}","asset":"USDT","network":"TRX","address":"{address}","amount":"{usd}","amount_usd":{usd},{ctx}"#,
            n + 2
        ));
    }
    lines
}

fn run_on(engine: &mut Engine, lines: &[String]) -> Vec<Decision> {
    run_from(engine, lines, 0)
}

fn has(decision: &Decision, reason: &str) -> bool {
    decision.reasons.iter().any(|r| r == reason)
}

fn default_engine() -> Engine {
    Engine::new(Policy::default_policy().unwrap())
}

#[test]
fn a_second_send_to_an_address_whose_first_send_is_held_waits_with_it() {
    // Three hours after the call (its two-hour window over), 2,500 USD more to the same wallet.
    let decisions = run_on(&mut default_engine(), &story(&[(9190, "TQsafe", 2500)]));
    let (first, second) = (&decisions[3], &decisions[4]);
    assert_eq!(first.decision, Verdict::Hold, "{first:?}");
    assert!(has(second, "address_under_review"), "{second:?}");
    assert_eq!(second.decision, Verdict::Hold, "{second:?}");
    // Without the rule, the same send is only the fresh-wallet shape: a challenge.
    let default = include_str!("../policy/default.toml");
    let at = default.find("id = \"address_under_review\"").unwrap();
    let start = default[..at].rfind("[[rule]]").unwrap();
    let end = at + default[at..].find("[[rule]]").unwrap();
    let without = format!("{}{}", &default[..start], &default[end..]);
    let mut engine = Engine::new(Policy::parse(&without).unwrap());
    let decisions = run_on(&mut engine, &story(&[(9190, "TQsafe", 2500)]));
    assert_eq!(
        decisions[4].decision,
        Verdict::Challenge,
        "{:?}",
        decisions[4]
    );
}

#[test]
fn the_review_covers_only_that_address_and_ends_after_a_day() {
    let decisions = run_on(
        &mut default_engine(),
        &story(&[
            // Another destination, the customer's own old wallet: not under review.
            (9190, "bc1own", 300),
            // Two days after the held send: the review is over.
            (9010 + 2 * 1440, "TQsafe", 2500),
        ]),
    );
    for later in &decisions[4..] {
        assert!(!has(later, "address_under_review"), "{later:?}");
        assert!(later.decision <= Verdict::Challenge, "{later:?}");
    }
}

#[test]
fn an_allowed_send_puts_nothing_under_review_and_the_review_survives_a_checkpoint() {
    // No call: the first send to the new wallet is a challenge and goes ahead.
    let quiet: Vec<String> = story(&[(9190, "TQsafe", 2500)])
        .into_iter()
        .filter(|line| !line.contains("inbound_call"))
        .collect();
    let decisions = run_on(&mut default_engine(), &quiet);
    assert!(
        decisions[3].decision <= Verdict::Challenge,
        "{:?}",
        decisions[3]
    );
    assert!(
        !has(&decisions[4], "address_under_review"),
        "{:?}",
        decisions[4]
    );
    // Held, checkpointed, restored: the next send is still under review.
    let lines = story(&[]);
    let mut engine = default_engine();
    run_on(&mut engine, &lines);
    let bytes = engine.checkpoint().unwrap();
    let mut restored = Engine::from_checkpoint(Policy::default_policy().unwrap(), &bytes).unwrap();
    let next = r#"9190 | "type":"withdrawal.requested","account":"a1","withdrawal_id":"w9","asset":"USDT","network":"TRX","address":"TQsafe","amount":"2500","amount_usd":2500,"ctx":{"ip":"198.51.100.23","device_id":"d1","channel":"app"}"#;
    let decisions = run_from(&mut restored, &[next], 100);
    assert!(
        has(&decisions[0], "address_under_review"),
        "{:?}",
        decisions[0]
    );
}
