//! Force overrides spread as confirmations do. When the event time (or, in the service, the
//! clock at the moment an operator sets one) first reaches a force override's start, the
//! entity's neighbours one and two hops out are marked, with the override as the confirmation
//! and marks that end when it ends. In event time and once per override, so a replay with the
//! same overrides marks the same things at the same times. The marks live apart from
//! confirmations' (`Network::forced_marks`): lifting an override cuts its own marks short and
//! no one else's.

use crate::entities::{Network, Override, OverrideMode, Propagation, Step};
use crate::graph::NodeId;
use std::collections::{BTreeMap, VecDeque};

/// The confirmation a force override's marks name: the override and its start.
fn force_confirmation(o: &Override) -> String {
    format!(
        "override:force {}:{} from {}",
        o.kind.as_str(),
        o.value,
        o.from
    )
}

impl Network {
    /// After the overrides changed: when the next unspread force override starts, and the
    /// marks of overrides since lifted or shortened cut to their end.
    pub(crate) fn overrides_changed(&mut self) {
        let mut next: Option<i64> = None;
        for o in forces(&self.overrides) {
            if !self.forced.contains(&spread_key(o)) {
                next = Some(next.map_or(o.from, |at| at.min(o.from)));
            } else if let Some(end) = o.expires_at {
                let confirmation = force_confirmation(o);
                for mark in self.forced_marks.values_mut() {
                    if mark.confirmation == confirmation {
                        mark.expires_at = mark.expires_at.min(end);
                    }
                }
            }
        }
        self.next_force_at = next;
    }

    /// Whether a force override starts after `after` and by `upto`.
    pub(crate) fn force_starts_within(&self, after: i64, upto: i64) -> bool {
        forces(&self.overrides).any(|o| after < o.from && o.from <= upto)
    }

    /// Whether `spread_forces_due(ts)` would spread anything.
    pub(crate) fn forces_due(&self, ts: i64) -> bool {
        self.next_force_at.is_some_and(|at| at <= ts)
    }

    /// Spreads every force override that started by `ts` and was not spread yet, oldest first;
    /// what each marked is queued for the service (`take_propagations`) like a confirmation's.
    pub(crate) fn spread_forces_due(&mut self, ts: i64) {
        if !self.forces_due(ts) {
            return;
        }
        let mut due: Vec<Override> = forces(&self.overrides)
            .filter(|o| o.from <= ts && !self.forced.contains(&spread_key(o)))
            .cloned()
            .collect();
        due.sort_by(|a, b| (a.from, a.kind, &a.value).cmp(&(b.from, b.kind, &b.value)));
        for o in due {
            self.forced.insert(spread_key(&o));
            let id = NodeId::of(o.kind, &o.value);
            let until = o.expires_at.unwrap_or(i64::MAX);
            if until <= o.from {
                continue;
            }
            let confirmation = force_confirmation(&o);
            let label = format!("{}:{}", o.kind.as_str(), o.value);
            let queue: VecDeque<Step> = VecDeque::from([(id, o.kind, o.value, vec![label], 0)]);
            let marked = self.spread(&confirmation, queue, o.from, until, true);
            self.propagations.push(Propagation {
                confirmation,
                ts: o.from,
                marked,
            });
        }
        self.overrides_changed();
    }
}

/// The force overrides among `overrides`.
fn forces(overrides: &BTreeMap<NodeId, Vec<Override>>) -> impl Iterator<Item = &Override> {
    overrides
        .values()
        .flatten()
        .filter(|o| o.mode == OverrideMode::Force)
}

/// How `Network::forced` knows a force override: its entity and start.
fn spread_key(o: &Override) -> (NodeId, i64) {
    (NodeId::of(o.kind, &o.value), o.from)
}
