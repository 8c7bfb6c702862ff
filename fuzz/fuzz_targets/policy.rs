//! The policy loader (TOML, then each rule's CEL compiled, its names and functions checked and
//! its condition type-checked on sample features) on any text and on any one-rule policy: it
//! refuses with a reason and never panics. For every rule it accepts, and for the shipped
//! policy, the gates (the hand-written reading of a condition's first `&&` operand, which skips
//! the program when that operand is false) must give exactly the evaluation the programs alone
//! give, on any features.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use portcullis_engine::{Features, Policy};
use serde_json::Value;
use std::sync::OnceLock;

const HEADER: &str = "[thresholds]\nchallenge = 30\nhold = 60\nblock = 85\n";
const ACTIONS: [&str; 5] = ["allow", "challenge", "hold", "block", "wait"];
const EVENT_TYPES: [&str; 5] = [
    "withdrawal.requested",
    "api_key.created",
    "api_key.updated",
    "address.added",
    "login",
];
const STEP_UPS: [&str; 4] = ["totp", "passkey", "none", ""];

#[derive(Debug, Arbitrary)]
enum Input {
    /// Any text as a whole policy file.
    File(String),
    /// One rule whose condition is any text, evaluated on features made of `values`.
    Rule {
        when: String,
        score: u8,
        action: Option<u8>,
        shadow: bool,
        values: Vec<i16>,
    },
}

/// Features with every field taken from `values` in turn (flags from the low bit, counts as
/// they are, amounts halved so that fractions occur), so that gates open and shut.
fn features(values: &[i16]) -> Features {
    let mut json = serde_json::to_value(Features::default()).unwrap_or(Value::Null);
    let mut next = values.iter().copied().cycle();
    if let (Some(fields), false) = (json.as_object_mut(), values.is_empty()) {
        for (name, value) in fields.iter_mut() {
            let v = next.next().unwrap_or(0);
            *value = match (&*value, name.as_str()) {
                (_, "event_type") => EVENT_TYPES[usize::from(v.unsigned_abs()) % 5].into(),
                (_, "step_up") => STEP_UPS[usize::from(v.unsigned_abs()) % 4].into(),
                (Value::Bool(_), _) => (v & 1 == 1).into(),
                (Value::Number(n), _) if n.is_f64() => (f64::from(v) / 2.0).into(),
                (Value::Number(_), _) => i64::from(v).into(),
                (other, _) => other.clone(),
            };
        }
    }
    serde_json::from_value(json).unwrap_or_default()
}

/// The gates change nothing: the same verdict, score, reasons, fired rules and errors.
fn gates_agree(policy: &Policy, features: &Features) {
    assert_eq!(
        policy.evaluate(features),
        policy.evaluate_ungated(features),
        "{features:?}"
    );
}

fn shipped() -> &'static Policy {
    static SHIPPED: OnceLock<Policy> = OnceLock::new();
    SHIPPED.get_or_init(|| Policy::default_policy().unwrap())
}

fuzz_target!(|input: Input| {
    match input {
        Input::File(text) => {
            if let Ok(policy) = Policy::parse(&text) {
                gates_agree(&policy, &features(&[1, 0, 3]));
            }
        }
        Input::Rule { when, score, action, shadow, values } => {
            // A JSON string is a TOML basic string (but for DEL, which TOML refuses: then the
            // file is refused, which is fine).
            let when = serde_json::to_string(&when).unwrap_or_default();
            let action = action
                .map(|a| format!("action = \"{}\"\n", ACTIONS[usize::from(a) % 5]))
                .unwrap_or_default();
            let text = format!(
                "{HEADER}[[rule]]\nid = \"fuzzed\"\ndescription = \"x\"\nwhen = {when}\n\
                 score = {score}\n{action}shadow = {shadow}\n"
            );
            let features = features(&values);
            if let Ok(policy) = Policy::parse(&text) {
                gates_agree(&policy, &features);
            }
            gates_agree(shipped(), &features);
        }
    }
});
