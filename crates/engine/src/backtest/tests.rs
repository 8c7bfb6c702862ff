use super::*;
use portcullis_core::contract::parse_line;

const HEADER: &str = "[thresholds]\nchallenge = 30\nhold = 60\nblock = 85\n";

fn policy(rules: &str) -> Policy {
    Policy::parse(&format!("{HEADER}{rules}")).unwrap()
}

fn rule(id: &str, when: &str, score: u8, shadow: bool) -> String {
    format!(
        "[[rule]]\nid = \"{id}\"\ndescription = \"x\"\nwhen = \"{when}\"\nscore = {score}\nshadow = {shadow}\n"
    )
}

fn subject(id: &str, usd: Option<f64>, scam: bool) -> Subject {
    Subject {
        event_id: id.into(),
        account: "acc".into(),
        event_type: if usd.is_some() {
            "withdrawal.requested"
        } else {
            "address.added"
        },
        ts: 0,
        withdrawal_usd: usd,
        scam,
        confirmed: scam,
    }
}

fn judged(verdict: Verdict, fired: &[&str]) -> Judgement {
    Judgement {
        verdict,
        reasons: fired.iter().map(|s| (*s).to_owned()).collect(),
        fired: fired.iter().map(|s| (*s).to_owned()).collect(),
    }
}

#[test]
fn one_side_counts_scam_usd_stopped_legit_friction_and_each_rule() {
    let p = policy(
        &(rule("big", "amount_usd >= 1000.0", 60, false)
            + &rule("watch", "amount_usd >= 1.0", 10, true)),
    );
    let mut side = SideFigures::for_policy(&p);
    side.record(
        &subject("e1", Some(1500.0), true),
        &judged(Verdict::Hold, &["big", "watch"]),
    );
    side.record(
        &subject("e2", Some(200.0), true),
        &judged(Verdict::Allow, &["watch"]),
    );
    side.record(
        &subject("e3", Some(2000.0), false),
        &judged(Verdict::Block, &["big", "watch"]),
    );
    side.record(
        &subject("e4", Some(50.0), false),
        &judged(Verdict::Hold, &[]),
    );
    side.record(
        &subject("e5", None, false),
        &judged(Verdict::Challenge, &["unknown_rule"]),
    );
    assert_eq!((side.decided, side.held, side.blocked), (5, 2, 1));
    assert_eq!(
        (side.scam_withdrawals, side.scam_usd, side.scam_usd_stopped),
        (2, 1700.0, 1500.0)
    );
    assert_eq!(
        (
            side.legit_withdrawals,
            side.legit_withdrawals_held,
            side.legit_withdrawals_blocked
        ),
        (2, 1, 1)
    );
    let big = &side.rules[0];
    assert_eq!(
        (
            big.rule.as_str(),
            big.shadow,
            big.hits,
            big.held_or_blocked,
            big.confirmed
        ),
        ("big", false, 2, 2, 1)
    );
    assert_eq!(
        (big.scam_usd_stopped, big.legit_withdrawals_stopped),
        (1500.0, 1)
    );
    let watch = &side.rules[1];
    assert_eq!(
        (
            watch.shadow,
            watch.hits,
            watch.held_or_blocked,
            watch.confirmed
        ),
        (true, 3, 2, 2)
    );
    assert_eq!(
        side.rules.len(),
        2,
        "a rule the policy does not have is not counted"
    );
}

#[test]
fn a_report_counts_every_changed_verdict_and_keeps_the_first_examples() {
    let p = policy(&rule("big", "amount_usd >= 1000.0", 60, false));
    let mut report = BacktestReport::new(&p, &p, 3);
    for n in 0..(MAX_EXAMPLES + 5) {
        let s = subject(&format!("e{n}"), Some(10.0), false);
        report.record(
            &s,
            &judged(Verdict::Allow, &[]),
            &judged(Verdict::Hold, &["big"]),
        );
    }
    report.record(
        &subject("same", Some(1.0), false),
        &judged(Verdict::Allow, &[]),
        &judged(Verdict::Allow, &[]),
    );
    assert_eq!(
        (report.decided, report.changed),
        (MAX_EXAMPLES as u64 + 6, MAX_EXAMPLES as u64 + 5)
    );
    assert_eq!(report.examples.len(), MAX_EXAMPLES);
    assert_eq!(report.examples[0].event_id, "e0");
    assert_eq!(
        (report.examples[0].before, report.examples[0].after),
        (Verdict::Allow, Verdict::Hold)
    );
    assert_eq!(report.examples[0].after_reasons, vec!["big".to_owned()]);
    assert_eq!(report.confirmed_accounts, 3);
}

fn withdrawal(id: &str, minute: i64, account: &str, usd: f64) -> String {
    let ts = 1_767_225_600_000 + minute * 60_000;
    let ts = portcullis_core::time::UnixMillis(ts).to_rfc3339();
    format!(
        r#"{{"id":"{id}","ts":"{ts}","type":"withdrawal.requested","account":"{account}","withdrawal_id":"w_{id}","asset":"USDT","network":"TRX","address":"TQ5abc","amount":"{usd}","amount_usd":{usd},"ctx":{{"ip":"198.51.100.7","channel":"app"}}}}"#
    )
}

fn confirmation(id: &str, minute: i64, account: &str, withdrawals: &[&str]) -> String {
    let ts = portcullis_core::time::UnixMillis(1_767_225_600_000 + minute * 60_000).to_rfc3339();
    let ids: Vec<String> = withdrawals.iter().map(|w| format!("\"{w}\"")).collect();
    format!(
        r#"{{"id":"{id}","ts":"{ts}","type":"fraud.confirmed","account":"{account}","withdrawal_ids":[{}],"note":"x"}}"#,
        ids.join(",")
    )
}

#[test]
fn confirmations_name_accounts_and_single_withdrawals() {
    let mut confirmed = Confirmed::default();
    confirmed.observe(&parse_line(&confirmation("c1", 0, "victim", &["w_x"])).unwrap());
    confirmed.observe(&parse_line(&withdrawal("x", 1, "other", 5.0)).unwrap());
    assert!(confirmed.account("victim") && !confirmed.account("other"));
    assert_eq!(confirmed.accounts(), 1);
    let listed = parse_line(&withdrawal("x", 1, "other", 5.0)).unwrap();
    assert_eq!(confirmed.scam_withdrawal(&listed), Some((true, 5.0)));
    let plain = parse_line(&withdrawal("y", 1, "other", 5.0)).unwrap();
    assert_eq!(confirmed.scam_withdrawal(&plain), Some((false, 5.0)));
}

#[test]
fn both_policies_decide_the_same_feed_and_the_changes_are_listed() {
    let lines = [
        withdrawal("a", 0, "victim", 700.0),
        withdrawal("b", 1, "victim", 1500.0),
        withdrawal("c", 2, "honest", 800.0),
        withdrawal("d", 3, "honest", 100.0),
        confirmation("conf", 4, "victim", &[]),
    ];
    let events: Vec<_> = lines.iter().map(|l| parse_line(l).unwrap()).collect();
    let mut confirmed = Confirmed::default();
    events.iter().for_each(|e| confirmed.observe(e));
    let current = policy(&rule("big", "amount_usd >= 1000.0", 60, false));
    let candidate = policy(
        &(rule("big", "amount_usd >= 500.0", 60, false)
            + &rule("any", "amount_usd > 0.0", 5, true)),
    );
    let mut backtest = Backtest::new(current, candidate, Vec::new(), confirmed);
    events.iter().for_each(|e| backtest.apply(e));
    let report = backtest.finish();
    assert_eq!(
        (report.events, report.decided, report.confirmed_accounts),
        (5, 4, 1)
    );
    assert_eq!(
        (report.before.scam_usd, report.before.scam_usd_stopped),
        (2200.0, 1500.0)
    );
    assert_eq!(report.after.scam_usd_stopped, 2200.0);
    assert_eq!(
        (
            report.before.legit_withdrawals,
            report.before.legit_withdrawals_held
        ),
        (2, 0)
    );
    assert_eq!(report.after.legit_withdrawals_held, 1);
    let changed: Vec<_> = report
        .examples
        .iter()
        .map(|c| (c.event_id.as_str(), c.scam))
        .collect();
    assert_eq!(changed, vec![("a", true), ("c", false)]);
    assert_eq!(report.changed, 2);
    let any = &report.after.rules[1];
    assert_eq!(
        (any.rule.as_str(), any.shadow, any.hits, any.confirmed),
        ("any", true, 4, 2)
    );
    assert!(
        report.examples[0].after_reasons == vec!["big".to_owned()],
        "shadow rules never act"
    );
}
