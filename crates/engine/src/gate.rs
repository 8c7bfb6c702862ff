//! A rule's gate: most rules read `A && ...` where `A` compares one feature with a literal
//! (`event_type == 'withdrawal.requested'`, `escalation`, `campaign_accounts >= 3`). When `A` is
//! false the rule cannot fire, and in CEL `false && x` is false whatever `x` is (an error
//! included), so the engine skips the rule's program then: the same result without building a
//! CEL value per feature. Only a first operand of a top-level `&&` chain is a gate (no `||` or
//! `?:` at the top level, where `&&` would bind tighter), and only a comparison whose literal
//! has the feature's own type (so that CEL would not have refused it).

use crate::features::{Features, Reader, Scalar};

/// How a gate (or a plain condition, `plain`) compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cmp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl Cmp {
    /// Whether two values in this order pass the comparison.
    pub(crate) fn holds(self, order: std::cmp::Ordering) -> bool {
        match self {
            Cmp::Eq => order.is_eq(),
            Cmp::Ne => order.is_ne(),
            Cmp::Lt => order.is_lt(),
            Cmp::Le => order.is_le(),
            Cmp::Gt => order.is_gt(),
            Cmp::Ge => order.is_ge(),
        }
    }
}

/// What a gate compares the feature with.
#[derive(Debug, Clone, PartialEq)]
enum Literal {
    /// The feature alone: a flag.
    True,
    Int(i64),
    Float(f64),
    Text(String),
}

/// See the module documentation.
#[derive(Debug)]
pub(crate) struct Gate {
    /// The feature's reader, found once when the policy is loaded.
    feature: Reader,
    cmp: Cmp,
    literal: Literal,
}

impl Gate {
    /// The gate of a rule's condition, if it has one.
    pub fn of(when: &str) -> Option<Self> {
        let first = first_operand(when)?;
        let operators = [
            ("==", Cmp::Eq),
            ("!=", Cmp::Ne),
            ("<=", Cmp::Le),
            (">=", Cmp::Ge),
            ("<", Cmp::Lt),
            (">", Cmp::Gt),
        ];
        let Some((at, op, cmp)) = operators
            .iter()
            .find_map(|(op, cmp)| first.find(op).map(|at| (at, *op, *cmp)))
        else {
            return Some(Gate {
                feature: Features::reader(first)?,
                cmp: Cmp::Eq,
                literal: Literal::True,
            });
        };
        let (feature, literal) = (first[..at].trim(), first[at + op.len()..].trim());
        Some(Gate {
            feature: Features::reader(feature)?,
            cmp,
            literal: literal_of(literal)?,
        })
    }

    /// Whether the gate is shut for these features: the rule cannot fire. `false` when it
    /// cannot tell (a feature or literal of another type: CEL decides).
    pub fn shut(&self, features: &Features) -> bool {
        let order = match (&self.literal, (self.feature)(features)) {
            (Literal::True, Scalar::Bool(b)) => return !b,
            (Literal::Int(n), Scalar::Int(v)) => v.partial_cmp(n),
            (Literal::Float(x), Scalar::Float(v)) => v.partial_cmp(x),
            (Literal::Text(t), Scalar::Text(v)) if matches!(self.cmp, Cmp::Eq | Cmp::Ne) => {
                Some(v.cmp(t.as_str()))
            }
            _ => return false,
        };
        let Some(order) = order else {
            // NaN: `==` is false in CEL, `!=` true, and an ordering an error, which does not
            // shut the gate (`error && false` is false, `error && true` an error: CEL decides).
            return self.cmp == Cmp::Eq;
        };
        !self.cmp.holds(order)
    }
}

/// The text before the first `&&` at the top level, when the condition is such a chain.
fn first_operand(when: &str) -> Option<&str> {
    let bytes = when.as_bytes();
    let (mut depth, mut quote, mut first) = (0_i32, None::<u8>, None);
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        match quote {
            Some(_) if b == b'\\' => i += 1,
            Some(q) if b == q => quote = None,
            Some(_) => {}
            None => match b {
                b'\'' | b'"' => quote = Some(b),
                b'(' | b'[' | b'{' => depth += 1,
                b')' | b']' | b'}' => depth -= 1,
                b'?' if depth == 0 => return None,
                b'|' if depth == 0 && bytes.get(i + 1) == Some(&b'|') => return None,
                b'&' if depth == 0 && bytes.get(i + 1) == Some(&b'&') && first.is_none() => {
                    first = Some(i);
                }
                _ => {}
            },
        }
        i += 1;
    }
    first.map(|at| when[..at].trim())
}

fn literal_of(text: &str) -> Option<Literal> {
    let quoted = |q: char| text.strip_prefix(q).and_then(|t| t.strip_suffix(q));
    if let Some(inner) = quoted('\'').or_else(|| quoted('"')) {
        // Escapes would need CEL's rules: leave such a rule to CEL.
        return (!inner.contains(['\\', '\'', '"'])).then(|| Literal::Text(inner.to_owned()));
    }
    if text.contains(['.', 'e', 'E']) {
        return text
            .parse()
            .ok()
            .filter(|x: &f64| x.is_finite())
            .map(Literal::Float);
    }
    text.parse().ok().map(Literal::Int)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn features() -> Features {
        Features {
            event_type: "withdrawal.requested".into(),
            escalation: true,
            campaign_accounts: 2,
            minutes_since_escalation: 30.0,
            ..Features::default()
        }
    }

    #[test]
    fn a_false_first_operand_shuts_the_gate_and_only_then() {
        let f = features();
        let shut = |when: &str| Gate::of(when).is_some_and(|g| g.shut(&f));
        assert!(shut("event_type == 'address.added' && escalation"));
        assert!(!shut("event_type == 'withdrawal.requested' && escalation"));
        assert!(shut("network_marked && network_hops == 0"));
        assert!(!shut("escalation && device_new"));
        assert!(shut("campaign_accounts >= 3 && (escalation || ip_new)"));
        assert!(!shut("minutes_since_escalation <= 1440.0 && escalation"));
        assert!(shut("event_type != 'withdrawal.requested' && escalation"));
    }

    #[test]
    fn a_nan_shuts_only_an_equality() {
        let f = Features {
            amount_usd: f64::NAN,
            ..features()
        };
        let shut = |when: &str| Gate::of(when).is_some_and(|g| g.shut(&f));
        assert!(shut("amount_usd == 1.0 && escalation"));
        assert!(!shut("amount_usd != 1.0 && escalation"));
        // An ordering with NaN is an error in CEL: `error && true` fails, the rule acts.
        assert!(!shut("amount_usd < 1.0 && escalation"));
        assert!(!shut("amount_usd >= 1.0 && escalation"));
    }

    #[test]
    fn no_gate_where_cel_must_decide() {
        for when in [
            "address_fraud",
            "network_marked || escalation",
            "network_marked && escalation || ip_new",
            "(event_type == 'address.added' || escalation) && ip_new",
            "campaign_accounts >= 3.0 && escalation",
            "network_marked ? escalation && ip_new : false",
            "event_type == 'a\\'b' && escalation",
        ] {
            let gate = Gate::of(when);
            assert!(
                gate.as_ref().is_none_or(|g| !g.shut(&features())),
                "{when}: {gate:?}"
            );
        }
        assert!(Gate::of("network_marked || escalation").is_none());
        assert!(Gate::of("address_fraud").is_none());
    }
}
