//! `plain` held to the CEL interpreter: every rule of the default policy and conditions that
//! reach each error rule, on random features (NaN, infinities and the policy's thresholds among
//! the doubles).

use crate::features::Features;
use crate::plain::Plain;
use crate::policy::Policy;
use cel::{Context, Env, Program, Value};
use std::sync::Arc;

/// A small deterministic generator (xorshift64*).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn pick<T: Copy>(&mut self, pool: &[T]) -> T {
        pool[usize::try_from(self.below(pool.len() as u64)).unwrap_or(0)]
    }

    fn flag(&mut self) -> bool {
        self.below(2) == 1
    }

    fn int(&mut self) -> i64 {
        const POOL: &[i64] = &[0, 1, 2, 3, 4, 98, 99, 100, -1, i64::MAX, i64::MIN];
        if self.flag() {
            self.pick(POOL)
        } else {
            self.below(8) as i64
        }
    }

    fn double(&mut self) -> f64 {
        const POOL: &[f64] = &[
            0.0,
            -0.0,
            0.5,
            0.9,
            1.0,
            3.0,
            7.0,
            60.0,
            120.0,
            360.0,
            1000.0,
            1440.0,
            1500.0,
            10080.0,
            100000.0,
            1e9,
            -1.0,
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
        ];
        match self.below(3) {
            0 => self.pick(POOL),
            1 => self.below(20_000) as f64 / 8.0,
            _ => {
                let x = self.pick(POOL);
                x + if self.flag() { 1e-9 } else { -1e-9 } * x.abs().max(1.0)
            }
        }
    }

    fn text(&mut self, pool: &[&str]) -> String {
        self.pick(pool).to_owned()
    }
}

const EVENT_TYPES: &[&str] = &[
    "api_key.created",
    "api_key.updated",
    "address.added",
    "withdrawal.requested",
    "login",
    "",
];

fn features(r: &mut Rng) -> Features {
    Features {
        event_type: r.text(EVENT_TYPES),
        amount_usd: r.double(),
        via_api: r.flag(),
        adds_withdraw: r.flag(),
        allowlist_loosened: r.flag(),
        allowlist_removed: r.flag(),
        allowlist_unseen_ips: r.int(),
        escalation: r.flag(),
        step_up: r.text(&["none", "email", "sms", "totp", "passkey", ""]),
        step_up_weak: r.flag(),
        call_active: r.flag(),
        remote_access: r.flag(),
        minutes_since_call: r.double(),
        minutes_since_unverified_call: r.double(),
        minutes_since_remote_access: r.double(),
        days_since_contact_reported: r.double(),
        minutes_since_escalation: r.double(),
        ip_new: r.flag(),
        ip_minutes_known: r.double(),
        device_new: r.flag(),
        fraud_caller_contact: r.flag(),
        key_known: r.flag(),
        key_lacks_withdraw: r.flag(),
        ip_outside_key_allowlist: r.flag(),
        key_minutes_since_widened: r.double(),
        address_new: r.flag(),
        address_minutes_since_added: r.double(),
        address_minutes_known: r.double(),
        address_blocked: r.flag(),
        address_held: r.flag(),
        address_under_review: r.flag(),
        address_fraud: r.flag(),
        address_flagged_elsewhere: r.flag(),
        allowlist_ip_flagged_elsewhere: r.flag(),
        ip_flagged_elsewhere: r.flag(),
        amount_vs_max: r.double(),
        prior_withdrawals_30d: r.int(),
        withdrawn_24h_usd: r.double(),
        deposits_7d_usd: r.double(),
        share_of_deposits: r.double(),
        market_volume_ratio: r.double(),
        market_volatility: r.double(),
        account_age_days: r.double(),
        campaign_accounts: r.int(),
        caller_campaign_accounts: r.int(),
        network_marked: r.flag(),
        network_hops: r.int(),
        account_marked: r.flag(),
        account_network_hops: r.int(),
        network_path: r.text(&["", "address:x"]),
    }
}

/// What the interpreter says: `Some(value)`, or `None` for an error or a value that is not a
/// truth value (a rule that fails).
fn interpreted(program: &Program, env: &Arc<Env>, features: &Features) -> Option<bool> {
    let mut context = Context::with_env(env.clone());
    context.set_variable_resolver(features);
    match program.execute(&context) {
        Ok(Value::Bool(b)) => Some(b),
        _ => None,
    }
}

/// Conditions beyond the default policy's: each way an error arises and passes (NaN in an
/// ordering, on either side of `&&` and `||`, under `!` and `?:`), equality of each type,
/// arithmetic, string literals with escapes.
const EXTRA: &[&str] = &[
    "amount_usd < market_volatility",
    "amount_usd < market_volatility && via_api",
    "via_api && amount_usd < market_volatility",
    "amount_usd <= 1440.0 || escalation",
    "escalation || amount_usd >= 1440.0",
    "(amount_usd > 1.0 || via_api) && (deposits_7d_usd < 3.0 || ip_new)",
    "!(amount_vs_max >= 3.0)",
    "via_api ? amount_usd <= 2.0 : share_of_deposits > 0.9",
    "amount_usd > 1.0 ? via_api : escalation",
    "amount_usd == deposits_7d_usd || amount_usd != share_of_deposits",
    "amount_usd + 60.0 >= minutes_since_call - 1.0",
    "via_api == escalation && ip_new != device_new",
    "network_hops != 99 || campaign_accounts < 3 && prior_withdrawals_30d >= 2",
    "allowlist_unseen_ips > 0 && allowlist_unseen_ips <= 3",
    "event_type != 'login' && step_up == \"sms\"",
    "event_type == 'withdrawal.requested' && network_path == ''",
    "step_up == 'a\\'b' || true && !false",
    "false || amount_usd > amount_usd",
];

/// Conditions with a part `plain` leaves to the interpreter.
const NOT_PLAIN: &[&str] = &[
    "size(event_type) > 0",
    "prior_withdrawals_30d == 2.0",
    "campaign_accounts + 1 > 3",
    "-amount_usd < 0.0",
    "amount_usd * 2.0 > 1.0",
    "event_type in ['login']",
    "event_type < 'z'",
    "via_api < escalation",
    "amount_usd",
];

#[test]
fn plain_conditions_evaluate_as_the_interpreter_does() {
    let env = Arc::new(Env::stdlib());
    let policy = Policy::default_policy().unwrap();
    let conditions: Vec<&str> = (policy.rules.iter().map(|r| r.when.as_str()))
        .chain(EXTRA.iter().copied())
        .collect();
    let mut compiled = Vec::new();
    for when in &conditions {
        let program = env.compile(when).unwrap();
        let plain = Plain::of(program.expression());
        compiled.push((when, program, plain));
    }
    let plain_rules = compiled[..policy.rules.len()]
        .iter()
        .filter(|(_, _, plain)| plain.is_some())
        .count();
    assert!(
        plain_rules * 10 >= policy.rules.len() * 9,
        "{plain_rules} of {} default rules are plain",
        policy.rules.len()
    );
    for (when, _, plain) in &compiled[policy.rules.len()..] {
        assert!(plain.is_some(), "{when}");
    }
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let (mut errors, mut fired) = (0, 0);
    for _ in 0..6_000 {
        let features = features(&mut rng);
        for (when, program, plain) in &compiled {
            let Some(plain) = plain else { continue };
            let expected = interpreted(program, &env, &features);
            assert_eq!(
                plain.holds(&features).ok(),
                expected,
                "{when}: {features:?}"
            );
            errors += usize::from(expected.is_none());
            fired += usize::from(expected == Some(true));
        }
    }
    assert!(
        errors > 1_000 && fired > 10_000,
        "{errors} errors, {fired} fired"
    );
}

#[test]
fn other_conditions_are_left_to_the_interpreter() {
    let env = Env::stdlib();
    for when in NOT_PLAIN {
        let program = env.compile(when).unwrap();
        assert!(Plain::of(program.expression()).is_none(), "{when}");
    }
}

#[test]
fn a_nan_in_an_ordering_fails_the_rule_as_in_cel() {
    let policy = Policy::parse(
        "[thresholds]\nchallenge = 30\nhold = 60\nblock = 85\n[[rule]]\nid = \"nan\"\n\
         description = \"x\"\nwhen = \"amount_usd < 1.0 && call_active\"\nscore = 10\n",
    )
    .unwrap();
    let nan = Features {
        amount_usd: f64::NAN,
        call_active: true,
        ..Features::default()
    };
    assert_eq!(policy.evaluate(&nan).errors, vec![0]);
    let quiet = Features {
        call_active: false,
        ..nan
    };
    assert_eq!(policy.evaluate(&quiet).errors, Vec::<usize>::new());
}
