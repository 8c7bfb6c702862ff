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
//! A policy message carries the whole policy. An overrides message carries one operator's
//! change ([`Control::OverridesChanged`]): the overrides it ended and the ones it set, not the
//! whole list. Two operators changing overrides at once on two processes each saw the list
//! without the other's change; as whole lists, the later message would have put back the list
//! without the earlier change (a `force` lost until the next change). As differences, both
//! hold, in the stream's order. Applying any message twice changes nothing more: an override
//! already ended no longer matches, and one already in force is not added again.

use crate::partitions::seal::ControlMessage;
use portcullis_engine::partitioned::Partition;
use portcullis_engine::{Override, Policy};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A message of the control subject (JSON).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "control", rename_all = "snake_case", deny_unknown_fields)]
pub enum Control {
    /// Every override (`crate::guard::engine_overrides`: each for its time range), put in
    /// force at the clock time `at` (milliseconds): force overrides started by then spread.
    /// Written by the version before [`Control::OverridesChanged`]; still read, for a stream
    /// that holds such messages.
    Overrides { overrides: Vec<Override>, at: i64 },
    /// One change to the overrides at the clock time `at` (milliseconds), each override as
    /// `crate::guard::engine_overrides` gives it: those in `ended` (lifted, or replaced by what
    /// is set) end at `at`; those in `set` are put in force; then force overrides started by
    /// `at` spread.
    OverridesChanged {
        ended: Vec<Override>,
        set: Vec<Override>,
        at: i64,
    },
    /// The policy in force: its publication (0: the configured file, reloaded while nothing is
    /// published), version and text.
    Policy {
        publication: i64,
        version: Option<i64>,
        text: String,
    },
}

impl Control {
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
    /// The sealed control messages applied here lately: id -> when sent (see `admit`).
    #[serde(default)]
    pub applied: BTreeMap<String, i64>,
}

/// How long before the newest control message applied here another may have been sent and
/// still be applied: a day, far more than two processes' clocks differ by or than a message
/// waits on the stream, and bounded, so that the ids kept to refuse copies stay few.
pub const CONTROL_HORIZON_MS: i64 = 86_400_000;

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
            applied: BTreeMap::new(),
        }
    }

    /// Whether the sealed message `id`, sent at `sent_at`, may be applied: not a copy of one
    /// applied already, nor sent more than [`CONTROL_HORIZON_MS`] before the newest applied.
    /// Admitting it records it (and forgets the ids gone past the horizon).
    fn admit(&mut self, id: &str, sent_at: i64) -> Result<(), &'static str> {
        let newest = self.applied.values().copied().max().unwrap_or(i64::MIN);
        if sent_at < newest.saturating_sub(CONTROL_HORIZON_MS) {
            return Err("sent more than a day before the newest control message applied");
        }
        if self.applied.contains_key(id) {
            return Err("a copy of a control message applied already");
        }
        self.applied.insert(id.to_owned(), sent_at);
        let floor = newest.max(sent_at).saturating_sub(CONTROL_HORIZON_MS);
        self.applied.retain(|_, sent| *sent >= floor);
        Ok(())
    }

    /// The policy to run, parsed again from its text.
    pub fn parsed_policy(&self) -> Result<Policy, String> {
        Policy::parse(&self.policy).map_err(|e| e.to_string())
    }

    /// Puts the overrides in force in the partition at position `at`, as `Risk::set_overrides`
    /// does at the clock time `now`.
    fn put_overrides(&self, partition: &mut Partition, at: u64, now: i64) {
        let overrides = self.overrides.clone();
        partition.apply_control(at, |engine| {
            engine.set_overrides(overrides);
            engine.spread_forces(now);
        });
    }

    /// Applies a sealed control message at position `at`, unless `admit` refuses it (then the
    /// position passes with nothing changed).
    pub fn apply(&mut self, partition: &mut Partition, at: u64, message: ControlMessage) {
        if let Err(reason) = self.admit(&message.id, message.sent_at) {
            tracing::warn!(position = at, id = %message.id, reason, "a control message not applied");
            partition.apply_control(at, |_| {});
            return;
        }
        self.apply_change(partition, at, message.control);
    }

    /// Applies a change at position `at`. A policy publication older than the one in force is
    /// ignored (as `Risk::put_published` ignores it), so is a reload of the configured file
    /// once a version is published, and a text that does not load (the publisher checked it;
    /// every partition refuses it alike).
    fn apply_change(&mut self, partition: &mut Partition, at: u64, control: Control) {
        match control {
            Control::Overrides { overrides, at: now } => {
                self.overrides = overrides;
                self.put_overrides(partition, at, now);
            }
            Control::OverridesChanged {
                ended,
                set,
                at: now,
            } => {
                change_overrides(&mut self.overrides, &ended, set, now);
                self.put_overrides(partition, at, now);
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
                self.publication = publication;
                self.version = version;
                self.policy = text;
            }
        }
    }
}

/// Applies one change to `overrides` (each with its time range): what `ended` names, while in
/// force as named, ends at `at` (as a store lifting it at `at` ends its range); what `set`
/// adds is added unless it is there already.
pub(super) fn change_overrides(
    overrides: &mut Vec<Override>,
    ended: &[Override],
    set: Vec<Override>,
    at: i64,
) {
    for held in overrides.iter_mut() {
        if ended.contains(held) {
            held.expires_at = Some(held.expires_at.map_or(at, |end| end.min(at)));
        }
    }
    for new in set {
        if !overrides.contains(&new) {
            overrides.push(new);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Control, change_overrides};
    use crate::guard::engine_overrides;
    use crate::ports::StoredOverride;
    use portcullis_core::time::UnixMillis;
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
        let decode = |bytes: &[u8]| serde_json::from_slice::<Control>(bytes);
        let encoded = serde_json::to_vec(&message).unwrap();
        assert_eq!(decode(&encoded).unwrap(), message);
        assert_eq!(message.message_id(), None);
        let policy = Control::Policy {
            publication: 3,
            version: Some(2),
            text: "x".into(),
        };
        assert_eq!(policy.message_id().as_deref(), Some("policy-3"));
        assert!(decode(br#"{"control":"other"}"#).is_err());
        assert!(decode(br#"{"id":"evt_1","ts":"2026-01-01T00:00:00Z"}"#).is_err());
    }

    fn row(id: &str, action: &str, set_at: i64, expires_at: Option<i64>) -> StoredOverride {
        StoredOverride {
            id: id.into(),
            kind: "address".into(),
            value: format!("bc1q{id}"),
            action: action.into(),
            note: String::new(),
            set_by: "op_1".into(),
            set_at: UnixMillis(set_at),
            expires_at: expires_at.map(UnixMillis),
            lifted_by: None,
            lifted_at: None,
        }
    }

    /// The store lifting `lifted` and adding `added` at `at`, as the engine takes its rows.
    fn stored_after(
        rows: &[StoredOverride],
        lifted: &[&str],
        added: &[StoredOverride],
        at: i64,
    ) -> Vec<StoredOverride> {
        let mut rows = rows.to_vec();
        for row in rows.iter_mut().filter(|r| lifted.contains(&r.id.as_str())) {
            row.lifted_at = Some(UnixMillis(at));
            row.lifted_by = Some("op_2".into());
        }
        rows.extend_from_slice(added);
        rows
    }

    #[test]
    fn a_change_ends_and_adds_as_the_store_lifts_and_adds() {
        let a = row("a", "force", 1_000, Some(5_000));
        let b = row("b", "suppress", 1_500, None);
        let late = row("late", "force", 1_200, Some(1_800));
        let rows = vec![a.clone(), b.clone(), late.clone()];
        let mut in_force = engine_overrides(&rows);
        // `a` replaced by `c` at 2,000; `late` (already expired) lifted too.
        let c = row("c", "force", 2_000, None);
        let ended = engine_overrides(&[a.clone(), late.clone()]);
        let set = engine_overrides(std::slice::from_ref(&c));
        change_overrides(&mut in_force, &ended, set.clone(), 2_000);
        let stored = stored_after(&rows, &["a", "late"], std::slice::from_ref(&c), 2_000);
        assert_eq!(in_force, engine_overrides(&stored));
        // The same change again changes nothing.
        change_overrides(&mut in_force, &ended, set, 2_500);
        assert_eq!(in_force, engine_overrides(&stored));
    }

    #[test]
    fn two_changes_made_on_the_same_list_both_hold_in_either_order() {
        let rows = vec![row("a", "suppress", 1_000, None)];
        let x = row("x", "force", 2_000, None);
        let y = row("y", "force", 2_001, None);
        let stored = stored_after(&rows, &["a"], &[x.clone(), y.clone()], 2_000);
        let lift_a = (engine_overrides(&rows), engine_overrides(&[x]), 2_000);
        let add_y = (Vec::new(), engine_overrides(&[y]), 2_001);
        for order in [[&lift_a, &add_y], [&add_y, &lift_a]] {
            let mut in_force = engine_overrides(&rows);
            for (ended, set, at) in order {
                change_overrides(&mut in_force, ended, set.clone(), *at);
            }
            let mut expected = engine_overrides(&stored);
            expected.sort_by_key(|o| o.value.clone());
            in_force.sort_by_key(|o| o.value.clone());
            assert_eq!(in_force, expected);
        }
    }

    #[test]
    fn undoing_a_change_the_store_refused_puts_back_what_it_lifted() {
        let a = row("a", "force", 1_000, None);
        let mut in_force = engine_overrides(std::slice::from_ref(&a));
        let c = row("c", "force", 2_000, None);
        let (lifted, added) = (engine_overrides(&[a]), engine_overrides(&[c]));
        change_overrides(&mut in_force, &lifted, added.clone(), 2_000);
        change_overrides(&mut in_force, &added, lifted.clone(), 2_100);
        let live: Vec<&Override> = in_force.iter().filter(|o| o.live_at(3_000)).collect();
        assert_eq!(live, vec![&lifted[0]]);
    }
}
