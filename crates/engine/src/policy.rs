//! Policies: rules written in CEL over the features, with scores, optional actions and shadow
//! mode, and the thresholds that turn a score into a verdict. A policy is validated completely
//! before it is used; a bad one is refused with the rule id, the position and the reason.

use crate::decision::Verdict;
use crate::features::{FEATURE_NAMES, Features};
use cel::common::ast::Expr;
use cel::{Context, Env, IdedExpr, Program, Value};
use serde::{Deserialize, Serialize};
use std::sync::{Arc, OnceLock};

/// How the reason of a rule that could not be evaluated begins (then its id).
pub const RULE_ERROR_PREFIX: &str = "rule_error:";

/// The policy shipped with Portcullis (documented rule by rule in docs/rules.md).
pub const DEFAULT_POLICY: &str = include_str!("../policy/default.toml");

/// Functions and macros a rule may call (CEL's standard library without the string and
/// regular-expression helpers, which no feature needs).
const ALLOWED_FUNCTIONS: &[&str] = &["size", "has", "int", "double", "min", "max", "@in"];

/// A policy that cannot be used, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("rule `{rule}`{}: {reason}", position.map(|(l, c)| format!(" at {l}:{c}")).unwrap_or_default())]
pub struct PolicyError {
    /// The rule at fault, or `policy` for the file as a whole.
    pub rule: String,
    /// Line and column inside the rule's expression, when the parser knows them.
    pub position: Option<(isize, isize)>,
    pub reason: String,
}

fn policy_error(rule: &str, reason: impl Into<String>) -> PolicyError {
    PolicyError {
        rule: rule.to_owned(),
        position: None,
        reason: reason.into(),
    }
}

/// Scores at or above these give at least that verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Thresholds {
    pub challenge: u8,
    pub hold: u8,
    pub block: u8,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyFile {
    thresholds: Thresholds,
    #[serde(rename = "rule", default)]
    rules: Vec<RuleFile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleFile {
    id: String,
    description: String,
    when: String,
    #[serde(default)]
    score: u8,
    action: Option<String>,
    #[serde(default)]
    shadow: bool,
}

#[derive(Serialize)]
struct PolicyOut<'a> {
    thresholds: Thresholds,
    rule: Vec<RuleOut<'a>>,
}

#[derive(Serialize)]
struct RuleOut<'a> {
    id: &'a str,
    description: &'a str,
    when: &'a str,
    score: u8,
    #[serde(skip_serializing_if = "Option::is_none")]
    action: Option<&'static str>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    shadow: bool,
}

/// One compiled rule.
#[derive(Debug)]
pub struct Rule {
    pub id: String,
    pub description: String,
    pub when: String,
    pub score: u8,
    /// The least verdict the rule imposes when it fires.
    pub action: Option<Verdict>,
    /// Evaluated and counted, never acting.
    pub shadow: bool,
    program: Program,
    /// Skips the program when its first operand is false (`gate`).
    gate: Option<crate::gate::Gate>,
    /// The condition evaluated without the interpreter, when it can be (`plain`).
    plain: Option<crate::plain::Plain>,
}

/// A validated policy.
pub struct Policy {
    pub thresholds: Thresholds,
    pub rules: Vec<Rule>,
    env: Arc<Env>,
}

impl std::fmt::Debug for Policy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Policy")
            .field("thresholds", &self.thresholds)
            .field("rules", &self.rules)
            .finish_non_exhaustive()
    }
}

/// What the rules said about one event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Evaluation {
    pub verdict: Verdict,
    pub score: u8,
    /// Acting rules that fired, in policy order.
    pub reasons: Vec<String>,
    /// Indexes of every rule that fired, shadow rules included.
    pub fired: Vec<usize>,
    /// Indexes of the rules that could not be evaluated (shadow rules included).
    pub errors: Vec<usize>,
}

impl Policy {
    /// Parses, compiles and checks a policy file.
    pub fn parse(text: &str) -> Result<Self, PolicyError> {
        let file: PolicyFile =
            toml::from_str(text).map_err(|e| policy_error("policy", e.to_string()))?;
        let t = file.thresholds;
        if !(0 < t.challenge && t.challenge <= t.hold && t.hold <= t.block && t.block <= 100) {
            return Err(policy_error(
                "policy",
                "thresholds must satisfy 0 < challenge <= hold <= block <= 100",
            ));
        }
        let env = shared_env();
        let samples = samples()?;
        let mut rules: Vec<Rule> = Vec::with_capacity(file.rules.len());
        for rule in file.rules {
            if rules.iter().any(|r| r.id == rule.id) {
                return Err(policy_error(&rule.id, "the id is used twice"));
            }
            rules.push(compile_rule(rule, &env, samples)?);
        }
        Ok(Self {
            thresholds: file.thresholds,
            rules,
            env,
        })
    }

    pub fn default_policy() -> Result<Self, PolicyError> {
        Self::parse(DEFAULT_POLICY)
    }

    /// The policy written back as a policy file: [`Policy::parse`] of it gives the same
    /// thresholds and rules (comments and layout of the original are not kept).
    pub fn to_toml(&self) -> String {
        let rules = self.rules.iter().map(|rule| RuleOut {
            id: &rule.id,
            description: &rule.description,
            when: &rule.when,
            score: rule.score,
            action: rule.action.map(Verdict::as_str),
            shadow: rule.shadow,
        });
        let file = PolicyOut {
            thresholds: self.thresholds,
            rule: rules.collect(),
        };
        toml::to_string(&file).unwrap_or_default()
    }

    /// Evaluates every rule on `features`. A rule that fails at run time (the load-time check
    /// makes that unlikely, but a policy is data) fails closed: it acts as if it fired, and its
    /// reason is `rule_error:<id>`.
    pub fn evaluate(&self, features: &Features) -> Evaluation {
        self.evaluate_gated(features, true)
    }

    /// [`Policy::evaluate`] with every gate left open and no plain form: each rule's program
    /// decides. For the fuzz target (`cargo fuzz` builds with `--cfg fuzzing`), which holds the
    /// gates and the plain forms to giving the same evaluation as the programs alone.
    #[cfg(fuzzing)]
    pub fn evaluate_ungated(&self, features: &Features) -> Evaluation {
        self.evaluate_gated(features, false)
    }

    fn evaluate_gated(&self, features: &Features, gated: bool) -> Evaluation {
        // Made for the first rule the interpreter evaluates: with every rule plain, never.
        let mut context: Option<Context<'_, '_>> = None;
        let mut score: u32 = 0;
        let mut least = Verdict::Allow;
        let mut reasons = Vec::new();
        let mut fired = Vec::new();
        let mut errors = Vec::new();
        for (index, rule) in self.rules.iter().enumerate() {
            let holds = match &rule.plain {
                Some(plain) if gated => plain.holds(features).ok(),
                _ => {
                    if gated && rule.gate.as_ref().is_some_and(|gate| gate.shut(features)) {
                        continue;
                    }
                    let context = context.get_or_insert_with(|| {
                        let mut context = Context::with_env(self.env.clone());
                        context.set_variable_resolver(features);
                        context
                    });
                    match rule.program.execute(context) {
                        Ok(Value::Bool(b)) => Some(b),
                        Ok(_) | Err(_) => None,
                    }
                }
            };
            let reason = match holds {
                Some(true) => {
                    fired.push(index);
                    rule.id.clone()
                }
                Some(false) => continue,
                None => {
                    errors.push(index);
                    format!("{RULE_ERROR_PREFIX}{}", rule.id)
                }
            };
            if rule.shadow {
                continue;
            }
            score += u32::from(rule.score);
            least = least.max(rule.action.unwrap_or(Verdict::Allow));
            reasons.push(reason);
        }
        let score = u8::try_from(score.min(100)).unwrap_or(100);
        Evaluation {
            verdict: least.max(self.verdict_for(score)),
            score,
            reasons,
            fired,
            errors,
        }
    }

    fn verdict_for(&self, score: u8) -> Verdict {
        let t = self.thresholds;
        match score {
            s if s >= t.block => Verdict::Block,
            s if s >= t.hold => Verdict::Hold,
            s if s >= t.challenge => Verdict::Challenge,
            _ => Verdict::Allow,
        }
    }
}

/// The event types a rule is evaluated on: those that ask for a decision.
const DECIDING_TYPES: &[&str] = &[
    "api_key.created",
    "api_key.updated",
    "address.added",
    "withdrawal.requested",
];

/// Features of the type an event of `event_type` has, with every flag `flag` and every number
/// 0 or 1: between the two, each `&&` and `||` is evaluated past its first operand.
fn sample(event_type: &str, flag: bool) -> Result<Features, serde_json::Error> {
    let mut json = serde_json::to_value(Features::default())?;
    if let Some(fields) = json.as_object_mut() {
        for value in fields.values_mut() {
            let replacement = match &*value {
                serde_json::Value::Bool(_) => serde_json::Value::Bool(flag),
                serde_json::Value::Number(n) if n.is_f64() => {
                    serde_json::json!(f64::from(u8::from(flag)))
                }
                serde_json::Value::Number(_) => serde_json::json!(i64::from(flag)),
                other => other.clone(),
            };
            *value = replacement;
        }
        fields.insert("event_type".into(), event_type.into());
        fields.insert("step_up".into(), "totp".into());
    }
    serde_json::from_value(json)
}

/// The sample features every rule is checked on: both samples of each deciding event type.
type Samples = Vec<(&'static str, Features)>;

/// The CEL environment every policy compiles and runs in: the standard library, never changed
/// after it is made, so one copy serves every policy (a policy load, which the policy fuzz
/// target makes for every input, no longer builds it anew).
fn shared_env() -> Arc<Env> {
    static ENV: OnceLock<Arc<Env>> = OnceLock::new();
    Arc::clone(ENV.get_or_init(|| Arc::new(Env::stdlib())))
}

/// The sample features, made once: they depend only on the feature set, which is compiled in.
fn samples() -> Result<&'static Samples, PolicyError> {
    static SAMPLES: OnceLock<Result<Samples, PolicyError>> = OnceLock::new();
    SAMPLES
        .get_or_init(|| {
            let mut samples = Vec::with_capacity(DECIDING_TYPES.len() * 2);
            for event_type in DECIDING_TYPES {
                for flag in [false, true] {
                    let features = sample(event_type, flag)
                        .map_err(|e| policy_error("policy", format!("no sample features: {e}")))?;
                    samples.push((*event_type, features));
                }
            }
            Ok(samples)
        })
        .as_ref()
        .map_err(Clone::clone)
}

/// Checks a rule against the features of every event type it can see: the whole condition must
/// be true or false, and every part of it must evaluate (a name that does not resolve, an
/// operator on the wrong types), not only the parts before the first `&&` that is false.
fn type_check(
    id: &str,
    program: &Program,
    env: &Arc<Env>,
    samples: &Samples,
) -> Result<(), PolicyError> {
    let mut parts = Vec::new();
    parts_of(program.expression(), &mut parts);
    for (event_type, features) in samples {
        let mut context = Context::with_env(env.clone());
        context.set_variable_resolver(features);
        match program.execute(&context) {
            Ok(Value::Bool(_)) => {}
            Ok(other) => {
                return Err(policy_error(
                    id,
                    format!("`when` must be true or false, not {other:?}"),
                ));
            }
            Err(e) => {
                return Err(policy_error(
                    id,
                    format!("`when` cannot be evaluated on {event_type}: {e}"),
                ));
            }
        }
        for part in &parts {
            context.resolve(part).map_err(|e| {
                policy_error(
                    id,
                    format!("part of `when` cannot be evaluated on {event_type}: {e}"),
                )
            })?;
        }
    }
    Ok(())
}

/// Every sub-expression of `expression`, itself included. A comprehension (`all`, `exists`)
/// counts as one part: its inner parts name variables that exist only inside it.
fn parts_of<'e>(expression: &'e IdedExpr, parts: &mut Vec<&'e IdedExpr>) {
    parts.push(expression);
    match &expression.expr {
        Expr::Call(call) => {
            if let Some(target) = &call.target {
                parts_of(target, parts);
            }
            for argument in &call.args {
                parts_of(argument, parts);
            }
        }
        Expr::List(list) => {
            for element in &list.elements {
                parts_of(element, parts);
            }
        }
        _ => {}
    }
}

fn compile_rule(rule: RuleFile, env: &Arc<Env>, samples: &Samples) -> Result<Rule, PolicyError> {
    let id = rule.id;
    if id.is_empty()
        || id.len() > 64
        || !id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    {
        return Err(policy_error(
            &id,
            "a rule id is 1 to 64 characters of a-z, 0-9 and _",
        ));
    }
    if rule.score > 100 {
        return Err(policy_error(&id, "score must be between 0 and 100"));
    }
    let action = match rule.action.as_deref() {
        None => None,
        Some(name) => Some(Verdict::parse(name).ok_or_else(|| {
            policy_error(
                &id,
                format!("unknown action `{name}` (allow, challenge, hold or block)"),
            )
        })?),
    };
    if rule.score == 0 && action.is_none() {
        return Err(policy_error(
            &id,
            "a rule needs a score, an action, or both",
        ));
    }
    let program = env.compile(&rule.when).map_err(|errors| {
        let first = errors.errors.first();
        PolicyError {
            rule: id.clone(),
            position: first.map(|e| e.pos),
            reason: first.map_or_else(|| errors.to_string(), |e| e.msg.clone()),
        }
    })?;
    let references = program.references();
    if let Some(unknown) = references
        .variables()
        .into_iter()
        .find(|v| !FEATURE_NAMES.contains(v))
    {
        return Err(policy_error(
            &id,
            format!("unknown feature `{unknown}` (see docs/rules.md for the list)"),
        ));
    }
    if let Some(function) = references
        .functions()
        .into_iter()
        .find(|f| !is_operator(f) && !ALLOWED_FUNCTIONS.contains(f))
    {
        return Err(policy_error(
            &id,
            format!("function `{function}` is not available to rules"),
        ));
    }
    type_check(&id, &program, env, samples)?;
    Ok(Rule {
        id,
        description: rule.description,
        gate: crate::gate::Gate::of(&rule.when),
        plain: crate::plain::Plain::of(program.expression()),
        when: rule.when,
        score: rule.score,
        action,
        shadow: rule.shadow,
        program,
    })
}

/// CEL's operators appear as functions named like `_&&_` or `!_`.
fn is_operator(name: &str) -> bool {
    name.starts_with('_') || name.ends_with('_') || name.starts_with('!') || name.starts_with('@')
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str = "[thresholds]\nchallenge = 30\nhold = 60\nblock = 85\n";

    fn with_rule(rule: &str) -> Result<Policy, PolicyError> {
        Policy::parse(&format!("{HEADER}[[rule]]\n{rule}"))
    }

    #[test]
    fn a_policy_written_back_reads_the_same() {
        let policy = Policy::default_policy().unwrap();
        let again = Policy::parse(&policy.to_toml()).unwrap();
        assert_eq!(again.thresholds, policy.thresholds);
        let shape = |p: &Policy| {
            p.rules
                .iter()
                .map(|r| {
                    (
                        r.id.clone(),
                        r.description.clone(),
                        r.when.clone(),
                        r.score,
                        r.action,
                        r.shadow,
                    )
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(shape(&again), shape(&policy));
        assert!(
            policy.rules.iter().any(|r| r.shadow)
                && policy.rules.iter().any(|r| r.action.is_some())
        );
    }

    #[test]
    fn the_default_policy_is_valid() {
        let policy = Policy::default_policy().unwrap();
        assert!(policy.rules.len() >= 10);
    }

    #[test]
    fn bad_rules_are_refused_with_their_id_and_reason() {
        let syntax = with_rule(
            "id = \"broken\"\ndescription = \"x\"\nwhen = \"call_active &&\"\nscore = 10\n",
        )
        .unwrap_err();
        assert_eq!(syntax.rule, "broken");
        assert!(syntax.position.is_some(), "{syntax}");
        let unknown =
            with_rule("id = \"typo\"\ndescription = \"x\"\nwhen = \"call_activ\"\nscore = 10\n")
                .unwrap_err();
        assert!(unknown.reason.contains("call_activ"), "{unknown}");
        let not_bool = with_rule(
            "id = \"num\"\ndescription = \"x\"\nwhen = \"amount_usd + 1.0\"\nscore = 10\n",
        )
        .unwrap_err();
        assert!(not_bool.reason.contains("true or false"), "{not_bool}");
        let action =
            with_rule("id = \"act\"\ndescription = \"x\"\nwhen = \"true\"\naction = \"nuke\"\n")
                .unwrap_err();
        assert!(action.reason.contains("nuke"));
        let nothing =
            with_rule("id = \"idle\"\ndescription = \"x\"\nwhen = \"true\"\n").unwrap_err();
        assert!(nothing.reason.contains("score"));
        let field =
            with_rule("id = \"f\"\ndescription = \"x\"\nwhen = \"true\"\nscore = 1\nweight = 2\n")
                .unwrap_err();
        assert_eq!(field.rule, "policy");
        let twice = Policy::parse(&format!("{HEADER}[[rule]]\nid = \"a\"\ndescription = \"x\"\nwhen = \"true\"\nscore = 1\n[[rule]]\nid = \"a\"\ndescription = \"y\"\nwhen = \"true\"\nscore = 1\n")).unwrap_err();
        assert!(twice.reason.contains("twice"));
    }

    #[test]
    fn every_part_of_a_condition_is_type_checked_at_load() {
        for when in [
            // Behind an `&&` whose first operand is false on most samples.
            "event_type == 'withdrawal.requested' && amount_usd > 'a lot'",
            // Behind an `||` whose first operand is true on some samples.
            "call_active || step_up + 1 > 0",
            // An operand that is not a truth value.
            "via_api && amount_usd",
            // Seen by an event type only.
            "event_type == 'address.added' && address_minutes_since_added > true",
        ] {
            let refused = with_rule(&format!(
                "id = \"t\"\ndescription = \"x\"\nwhen = \"{when}\"\nscore = 10\n"
            ));
            let error = refused.expect_err(when);
            assert_eq!(error.rule, "t");
            assert!(error.reason.contains("evaluated"), "{when}: {error}");
        }
    }

    #[test]
    fn every_feature_name_resolves_and_every_feature_has_a_name() {
        let features = Features::default();
        for name in FEATURE_NAMES {
            assert!(
                cel::context::VariableResolver::resolve(&features, name).is_some(),
                "{name}"
            );
        }
        let fields = serde_json::to_value(&features).unwrap();
        for field in fields.as_object().unwrap().keys() {
            assert!(FEATURE_NAMES.contains(&field.as_str()), "{field}");
        }
        assert_eq!(fields.as_object().unwrap().len(), FEATURE_NAMES.len());
    }

    #[test]
    fn a_rule_that_fails_at_run_time_acts_and_says_so() {
        let policy = Policy::parse(&format!(
            "{HEADER}[[rule]]\nid = \"div\"\ndescription = \"x\"\nwhen = \"1 / (prior_withdrawals_30d - 2) > 0\"\nscore = 60\n"
        ))
        .unwrap();
        let fine = policy.evaluate(&Features::default());
        assert_eq!((fine.verdict, fine.errors.len()), (Verdict::Allow, 0));
        let failing = policy.evaluate(&Features {
            prior_withdrawals_30d: 2,
            ..Features::default()
        });
        assert_eq!(failing.errors, vec![0]);
        assert_eq!(failing.reasons, vec!["rule_error:div".to_owned()]);
        assert_eq!((failing.verdict, failing.score), (Verdict::Hold, 60));
    }

    #[test]
    fn scores_add_up_actions_set_a_floor_and_shadow_rules_only_count() {
        let policy = Policy::parse(&format!(
            "{HEADER}[[rule]]\nid = \"a\"\ndescription = \"x\"\nwhen = \"call_active\"\nscore = 40\n\
             [[rule]]\nid = \"b\"\ndescription = \"x\"\nwhen = \"ip_new\"\nscore = 30\n\
             [[rule]]\nid = \"c\"\ndescription = \"x\"\nwhen = \"address_fraud\"\naction = \"block\"\n\
             [[rule]]\nid = \"s\"\ndescription = \"x\"\nwhen = \"call_active\"\nscore = 90\nshadow = true\n"
        ))
        .unwrap();
        let quiet = policy.evaluate(&Features::default());
        assert_eq!(
            (quiet.verdict, quiet.score, quiet.reasons.len()),
            (Verdict::Allow, 0, 0)
        );
        let call = Features {
            call_active: true,
            ..Features::default()
        };
        let one = policy.evaluate(&call);
        assert_eq!(
            (one.verdict, one.score, one.reasons.clone()),
            (Verdict::Challenge, 40, vec!["a".to_owned()])
        );
        assert_eq!(
            one.fired,
            vec![0, 3],
            "the shadow rule fired but did not act"
        );
        let both = policy.evaluate(&Features {
            ip_new: true,
            ..call
        });
        assert_eq!((both.verdict, both.score), (Verdict::Hold, 70));
        let fraud = policy.evaluate(&Features {
            address_fraud: true,
            ..Features::default()
        });
        assert_eq!((fraud.verdict, fraud.score), (Verdict::Block, 0));
    }
}
