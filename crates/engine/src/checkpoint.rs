//! The engine's state as bytes, and back: what a restart loads instead of replaying the whole
//! event log.
//!
//! The encoding is postcard (serde's compact binary form: integers as varints, no field names)
//! behind a magic and a format version. Binary because a checkpoint holds every tracked
//! account (hundreds of bytes each as JSON, a third of that here) and is written while the
//! engine waits; serde because the state types already describe themselves, so a new field is
//! one derive away. The policy is not part of it: it comes from the configuration at start, as
//! after a policy reload, which also keeps the state.
//!
//! A checkpoint from another format version is refused (the caller then replays the log from
//! the start), never half-read.

use crate::decision::Verdict;
use crate::dedup::{HashTable, SeenIds};
use crate::engine::{Engine, EngineStats};
use crate::policy::Policy;
use crate::state::{AccountState, Global};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

const MAGIC: &[u8; 4] = b"PCK\x01";
/// Bumped whenever a state type changes shape.
const FORMAT: u16 = 10;
/// Older formats this engine still reads: format 9 is format 10 without an address under
/// review (`AddressStatus::UnderReview`, a variant added last), so its bytes read the same.
const READS_TOO: &[u16] = &[9];

/// A checkpoint that cannot be loaded, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("engine checkpoint refused: {0}")]
pub struct CheckpointError(pub String);

#[derive(Serialize, Deserialize)]
struct Stats {
    events: u64,
    duplicates: u64,
    late: u64,
    decisions: Vec<(String, u64)>,
    rule_hits: Vec<(String, u64)>,
    rule_errors: Vec<(String, u64)>,
    changes: [u64; 3],
}

#[derive(Serialize)]
struct StateRef<'a> {
    accounts: &'a HashTable<Box<AccountState>>,
    global: &'a Global,
    seen_ids: &'a SeenIds,
    stats: Stats,
}

#[derive(Deserialize)]
struct State {
    accounts: HashTable<Box<AccountState>>,
    global: Global,
    seen_ids: SeenIds,
    stats: Stats,
}

fn sorted<K: AsRef<str>>(map: &HashMap<K, u64>) -> Vec<(String, u64)> {
    let mut pairs: Vec<(String, u64)> = map
        .iter()
        .map(|(k, v)| (k.as_ref().to_owned(), *v))
        .collect();
    pairs.sort();
    pairs
}

impl Engine {
    /// The whole state (accounts, shared facts, recent ids, counters) as bytes.
    pub fn checkpoint(&self) -> Result<Vec<u8>, CheckpointError> {
        let state = StateRef {
            accounts: &self.accounts,
            global: &self.global,
            seen_ids: &self.seen_ids,
            stats: Stats {
                events: self.stats.events,
                duplicates: self.stats.duplicates,
                late: self.stats.late,
                decisions: sorted(&self.stats.decisions),
                rule_hits: sorted(&self.stats.rule_hits),
                rule_errors: sorted(&self.stats.rule_errors),
                changes: [
                    self.stats.changes_applied,
                    self.stats.changes_cancelled,
                    self.stats.changes_unmatched,
                ],
            },
        };
        let mut bytes = MAGIC.to_vec();
        bytes.extend_from_slice(&FORMAT.to_le_bytes());
        postcard::to_extend(&state, bytes).map_err(|e| CheckpointError(e.to_string()))
    }

    /// An engine with `policy` and the state of `bytes` (from [`Engine::checkpoint`]).
    pub fn from_checkpoint(policy: Policy, bytes: &[u8]) -> Result<Self, CheckpointError> {
        let mut engine = Engine::new(policy);
        engine.restore(bytes)?;
        Ok(engine)
    }

    /// Replaces the state with the one in `bytes`; on error the engine is left as it was.
    pub fn restore(&mut self, bytes: &[u8]) -> Result<(), CheckpointError> {
        let body = bytes
            .strip_prefix(MAGIC.as_slice())
            .ok_or_else(|| CheckpointError("not an engine checkpoint".into()))?;
        let (version, body) = body
            .split_first_chunk::<2>()
            .ok_or_else(|| CheckpointError("truncated".into()))?;
        let version = u16::from_le_bytes(*version);
        if version != FORMAT && !READS_TOO.contains(&version) {
            return Err(CheckpointError(format!(
                "format {version} (this engine reads {FORMAT} and {READS_TOO:?})"
            )));
        }
        let state: State =
            postcard::from_bytes(body).map_err(|e| CheckpointError(e.to_string()))?;
        let decisions = state
            .stats
            .decisions
            .into_iter()
            .filter_map(|(name, n)| Some((Verdict::parse(&name)?.as_str(), n)))
            .collect();
        self.accounts = state.accounts;
        let overrides = std::mem::take(&mut self.global.network.overrides);
        self.global = state.global;
        self.global.network.overrides = overrides;
        self.global.network.overrides_changed();
        self.seen_ids = state.seen_ids;
        self.stats = EngineStats {
            events: state.stats.events,
            duplicates: state.stats.duplicates,
            late: state.stats.late,
            decisions,
            rule_hits: state.stats.rule_hits.into_iter().collect(),
            rule_errors: state.stats.rule_errors.into_iter().collect(),
            changes_applied: state.stats.changes[0],
            changes_cancelled: state.stats.changes[1],
            changes_unmatched: state.stats.changes[2],
        };
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_checkpoint_of_the_format_before_the_18_byte_graph_nodes_is_refused() {
        // Format 8 held the entity graph's nodes as 24-byte records, an entity's one edge
        // naming its event's place and a block its length, and an account's IPs and devices,
        // withdrawals and deposits as four lists: read as format 9's, they would be other nodes
        // and other lists, so it is refused whole and the log replayed instead.
        let engine = Engine::new(Policy::default_policy().unwrap());
        let mut bytes = engine.checkpoint().unwrap();
        bytes[MAGIC.len()..MAGIC.len() + 2].copy_from_slice(&8u16.to_le_bytes());
        let refused =
            Engine::from_checkpoint(Policy::default_policy().unwrap(), &bytes).map(|_| ());
        assert_eq!(
            refused,
            Err(CheckpointError(
                "format 8 (this engine reads 10 and [9])".into()
            ))
        );
    }

    #[test]
    fn a_checkpoint_of_format_9_is_read() {
        // Format 10 only added a variant after the others (an address under review): the
        // bytes of a format 9 state, which never holds it, are the same state in format 10.
        let mut engine = Engine::new(Policy::default_policy().unwrap());
        let line = r#"{"id":"e1","ts":"2025-07-28T10:00:00Z","type":"address.added","account":"a1","address":"TQx","asset":"USDT","network":"TRX","step_up":"totp","ctx":{"ip":"198.51.100.1"}}"#;
        let batch = portcullis_core::contract::parse_lines(line);
        engine.process(&batch.events[0].1);
        let mut bytes = engine.checkpoint().unwrap();
        bytes[MAGIC.len()..MAGIC.len() + 2].copy_from_slice(&9u16.to_le_bytes());
        let restored = Engine::from_checkpoint(Policy::default_policy().unwrap(), &bytes).unwrap();
        assert_eq!(restored.tracked_accounts(), 1);
        assert_eq!(
            restored.checkpoint().unwrap()[6..],
            engine.checkpoint().unwrap()[6..]
        );
    }
}
