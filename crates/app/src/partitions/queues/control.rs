//! Changes from operators that every partition applies at one position of the event stream:
//! the overrides in force and the policy version in force. They travel on the control subject
//! of the event stream (`<prefix>.control`, beside the partitions' subjects), so they have a
//! place in its one total order, and every partition applies them there as a shared change
//! (rule 1 of docs/design/partitioning.md) with what one engine does with them
//! (`Engine::set_overrides` then `Engine::spread_forces` at the time the override was set, as
//! `Risk::set_overrides`; `Engine::set_policy`, as `Risk::put_published`). What is in force is
//! in the partition's checkpoint ([`InForce`]), so a partition restarted from it holds exactly
//! what it held at its resume position, and applies the later messages at theirs.
//!
//! Each message carries the whole of what it puts in force (every override with its time range,
//! the policy's text), never a difference: applying it twice, or after a restart, changes
//! nothing more.

use portcullis_engine::partitioned::Partition;
use portcullis_engine::{Override, Policy};
use serde::{Deserialize, Serialize};

/// A message of the control subject (JSON).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "control", rename_all = "snake_case", deny_unknown_fields)]
pub enum Control {
    /// Every override (`crate::guard::engine_overrides`: each for its time range), put in
    /// force at the clock time `at` (milliseconds): force overrides started by then spread.
    Overrides { overrides: Vec<Override>, at: i64 },
    /// The policy in force: its publication (0: the configured file, reloaded while nothing is
    /// published), version and text.
    Policy {
        publication: i64,
        version: Option<i64>,
        text: String,
    },
}

impl Control {
    pub fn encode(&self) -> Vec<u8> {
        // A value of plain fields: serialising it cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, String> {
        serde_json::from_slice(bytes).map_err(|e| e.to_string())
    }

    /// The stream's message id: a publication once (every process's refresh pass puts a
    /// publication it has not seen on the stream; the stream keeps one). Overrides have none:
    /// each change is its own message.
    pub fn message_id(&self) -> Option<String> {
        match self {
            Control::Policy { publication, .. } if *publication > 0 => {
                Some(format!("policy-{publication}"))
            }
            _ => None,
        }
    }
}

/// What a partition has in force from operators; written in its checkpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InForce {
    /// The publication of the policy in force (0: the configured file).
    pub publication: i64,
    pub version: Option<i64>,
    pub policy: String,
    pub overrides: Vec<Override>,
}

impl InForce {
    /// The policy as text (what a partition starts with) and the overrides.
    pub fn new(
        publication: i64,
        version: Option<i64>,
        policy: &Policy,
        overrides: Vec<Override>,
    ) -> Self {
        Self {
            publication,
            version,
            policy: policy.to_toml(),
            overrides,
        }
    }

    /// The policy to run, parsed again from its text.
    pub fn parsed_policy(&self) -> Result<Policy, String> {
        Policy::parse(&self.policy).map_err(|e| e.to_string())
    }

    /// Applies a control message at position `at`. A policy publication older than the one in
    /// force is ignored (as `Risk::put_published` ignores it), so is a reload of the configured
    /// file once a version is published, and a text that does not load (the publisher checked
    /// it; every partition refuses it alike).
    pub fn apply(&mut self, partition: &mut Partition, at: u64, control: Control) {
        match control {
            Control::Overrides { overrides, at: now } => {
                self.overrides = overrides.clone();
                partition.apply_control(at, |engine| {
                    engine.set_overrides(overrides);
                    engine.spread_forces(now);
                });
            }
            Control::Policy {
                publication,
                version,
                text,
            } => {
                let newer =
                    publication > self.publication || (publication == 0 && self.publication == 0);
                let policy = match Policy::parse(&text) {
                    Ok(policy) if newer => Some(policy),
                    Ok(_) => None,
                    Err(error) => {
                        tracing::error!(position = at, %error, "a policy on the control subject does not load; the one in force stays");
                        None
                    }
                };
                let Some(policy) = policy else {
                    partition.apply_control(at, |_| {});
                    return;
                };
                tracing::info!(
                    partition = partition.index(),
                    position = at,
                    publication,
                    version,
                    "risk policy put in force at its position"
                );
                partition.apply_control(at, |engine| engine.set_policy(policy));
                *self = Self {
                    publication,
                    version,
                    policy: text,
                    overrides: std::mem::take(&mut self.overrides),
                };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Control;
    use portcullis_engine::{EntityKind, Override, OverrideMode};

    #[test]
    fn a_control_message_reads_back_and_another_shape_does_not() {
        let message = Control::Overrides {
            overrides: vec![Override {
                kind: EntityKind::Address,
                value: "bc1qforced".into(),
                mode: OverrideMode::Force,
                from: 1_000,
                expires_at: Some(2_000),
            }],
            at: 1_500,
        };
        assert_eq!(Control::decode(&message.encode()), Ok(message.clone()));
        assert_eq!(message.message_id(), None);
        let policy = Control::Policy {
            publication: 3,
            version: Some(2),
            text: "x".into(),
        };
        assert_eq!(policy.message_id().as_deref(), Some("policy-3"));
        assert!(Control::decode(br#"{"control":"other"}"#).is_err());
        assert!(Control::decode(br#"{"id":"evt_1","ts":"2026-01-01T00:00:00Z"}"#).is_err());
    }
}
