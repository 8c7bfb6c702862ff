//! An account's money movements (`Amounts`): the withdrawals that went ahead and the deposits,
//! of the last 30 days, each kind in time order, in one boxed slice.
//!
//! One list rather than one per kind: 16 bytes of the account state and an allocation fewer
//! (the state is 96 bytes, one of the allocator's size classes; docs/benchmarks.md,
//! 2026-12-07, branch `mem3`). A deposit's time is kept with bit 62 flipped: an event time
//! (a four-digit year, within 2^49 ms of the epoch) has bits 62 and 63 equal, so the two
//! kinds never meet, and each kind reads back its own entries in its own order, as from a list
//! of its own (sums add up in the same order, to the same bits).

use crate::state::{AMOUNT_HORIZON_MS, MAX_AMOUNTS};
use serde::{Deserialize, Serialize};

/// Which money movement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flow {
    Withdrawal,
    Deposit,
}

/// The bit flipped in a deposit's time.
const DEPOSIT: i64 = 1 << 62;

/// A time (a deposit's with bit 62 flipped) and an amount in USD.
type Entry = (i64, f64);

/// See the module documentation.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct Amounts {
    entries: Box<[Entry]>,
}

fn flow_of(stored: i64) -> Flow {
    if (stored >> 62 & 1) == (stored >> 63 & 1) {
        Flow::Withdrawal
    } else {
        Flow::Deposit
    }
}

fn stored_ts(flow: Flow, ts: i64) -> i64 {
    match flow {
        Flow::Withdrawal => ts,
        Flow::Deposit => ts ^ DEPOSIT,
    }
}

impl Amounts {
    /// The `(ts, usd)` of one kind, oldest first.
    pub fn of(&self, flow: Flow) -> impl Iterator<Item = (i64, f64)> + '_ {
        (self.entries.iter())
            .filter(move |(stored, _)| flow_of(*stored) == flow)
            .map(move |&(stored, usd)| (stored_ts(flow, stored), usd))
    }

    /// Sum of one kind's amounts in `[from, to]`.
    pub fn sum_between(&self, flow: Flow, from: i64, to: i64) -> f64 {
        self.of(flow)
            .filter(|(t, _)| (from..=to).contains(t))
            .map(|(_, usd)| usd)
            .sum()
    }

    /// Records an amount of one kind and forgets that kind's past the horizon (or beyond
    /// capacity). Kept as a boxed slice of exactly its entries: money moves seldom, a spare
    /// slot would outweigh the copy.
    pub fn remember(&mut self, flow: Flow, ts: i64, usd: f64) {
        let (mut list, other): (Vec<Entry>, Vec<Entry>) = std::mem::take(&mut self.entries)
            .into_vec()
            .into_iter()
            .partition(|(stored, _)| flow_of(*stored) == flow);
        for entry in &mut list {
            entry.0 = stored_ts(flow, entry.0);
        }
        let at = list.partition_point(|(t, _)| *t <= ts);
        list.insert(at, (ts, usd));
        let newest = list.last().map_or(ts, |(t, _)| *t);
        list.retain(|(t, _)| newest - *t <= AMOUNT_HORIZON_MS);
        if list.len() > MAX_AMOUNTS {
            list.drain(..list.len() - MAX_AMOUNTS);
        }
        let mut entries = other;
        entries.reserve_exact(list.len());
        entries.extend(list.into_iter().map(|(t, usd)| (stored_ts(flow, t), usd)));
        self.entries = entries.into_boxed_slice();
    }

    /// Bytes on the heap.
    pub fn heap_bytes(&self) -> usize {
        std::mem::size_of_val(&*self.entries)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_stay_ordered_and_bounded_per_kind() {
        let mut amounts = Amounts::default();
        amounts.remember(Flow::Withdrawal, 1_000, 1.0);
        amounts.remember(Flow::Deposit, 700, 5.0);
        amounts.remember(Flow::Withdrawal, 500, 2.0);
        amounts.remember(Flow::Deposit, -7, 6.0);
        let of = |amounts: &Amounts, flow| amounts.of(flow).collect::<Vec<_>>();
        assert_eq!(
            of(&amounts, Flow::Withdrawal),
            vec![(500, 2.0), (1_000, 1.0)]
        );
        assert_eq!(of(&amounts, Flow::Deposit), vec![(-7, 6.0), (700, 5.0)]);
        amounts.remember(Flow::Withdrawal, AMOUNT_HORIZON_MS + 600, 3.0);
        assert_eq!(
            of(&amounts, Flow::Withdrawal).len(),
            2,
            "past the horizon is forgotten"
        );
        assert_eq!(of(&amounts, Flow::Deposit).len(), 2, "of its own kind only");
        let sum = amounts.sum_between(Flow::Withdrawal, 0, i64::MAX);
        assert!((sum - 4.0).abs() < 1e-9);
        assert!((amounts.sum_between(Flow::Deposit, -10, 0) - 6.0).abs() < 1e-9);
        for _ in 0..MAX_AMOUNTS {
            amounts.remember(Flow::Deposit, 800, 1.0);
        }
        assert_eq!(of(&amounts, Flow::Deposit).len(), MAX_AMOUNTS);
        assert_eq!(of(&amounts, Flow::Withdrawal).len(), 2);
        assert_eq!(
            amounts.heap_bytes(),
            (MAX_AMOUNTS + 2) * 16,
            "no spare room"
        );
    }
}
