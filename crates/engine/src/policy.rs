//! Policies: rules written in CEL over the features, with scores, optional actions and shadow
//! mode, and the thresholds that turn a score into a verdict. A policy is validated completely
//! before it is used; a bad one is refused with the rule id, the position and the reason.

use crate::decision::Verdict;
use crate::features::{FEATURE_NAMES, Features};
use cel::{Context, Env, Program, Value};
use serde::Deserialize;
use std::sync::Arc;

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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
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
        let env = Arc::new(Env::stdlib());
        let mut rules: Vec<Rule> = Vec::with_capacity(file.rules.len());
        for rule in file.rules {
            if rules.iter().any(|r| r.id == rule.id) {
                return Err(policy_error(&rule.id, "the id is used twice"));
            }
            rules.push(compile_rule(rule, &env)?);
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

    /// Evaluates every rule on `features`. A rule that fails at run time (it cannot with
    /// validated features, but a policy is data) counts as not fired.
    pub fn evaluate(&self, features: &Features) -> Evaluation {
        let mut context = Context::with_env(self.env.clone());
        context.set_variable_resolver(features);
        let mut score: u32 = 0;
        let mut least = Verdict::Allow;
        let mut reasons = Vec::new();
        let mut fired = Vec::new();
        for (index, rule) in self.rules.iter().enumerate() {
            if rule.program.execute(&context) != Ok(Value::Bool(true)) {
                continue;
            }
            fired.push(index);
            if rule.shadow {
                continue;
            }
            score += u32::from(rule.score);
            least = least.max(rule.action.unwrap_or(Verdict::Allow));
            reasons.push(rule.id.clone());
        }
        let score = u8::try_from(score.min(100)).unwrap_or(100);
        Evaluation {
            verdict: least.max(self.verdict_for(score)),
            score,
            reasons,
            fired,
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

fn compile_rule(rule: RuleFile, env: &Env) -> Result<Rule, PolicyError> {
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
    let sample = Features::default();
    let mut context = Context::with_env(Arc::new(Env::stdlib()));
    context.set_variable_resolver(&sample);
    let checked = program.execute(&context);
    drop(context);
    match checked {
        Ok(Value::Bool(_)) => {}
        Ok(other) => {
            return Err(policy_error(
                &id,
                format!("`when` must be true or false, not {other:?}"),
            ));
        }
        Err(e) => {
            return Err(policy_error(
                &id,
                format!("`when` cannot be evaluated: {e}"),
            ));
        }
    }
    Ok(Rule {
        id,
        description: rule.description,
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
