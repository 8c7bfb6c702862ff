//! The tamper-evident audit chain: every security-relevant change is an entry carrying the hash
//! of the entry before it, so editing, removing or reordering any entry breaks the chain at
//! that point.
//!
//! Hashes cover length-prefixed fields (never a re-serialisation of JSON), so SQLite and
//! PostgreSQL produce the same hashes for the same entries.

use crate::time::UnixMillis;
use aws_lc_rs::digest;
use std::fmt;

/// The `prev_hash` of the first entry.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// An entry about to be appended: everything but its position and hashes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditDraft {
    pub at: UnixMillis,
    /// Who did it: `operator:<id>`, `cli:local`, `system`.
    pub actor: String,
    /// What was done, e.g. `api_key.created`.
    pub action: String,
    /// What it was done to, e.g. `key:k_01...`.
    pub target: String,
    /// A JSON object with the details, stored verbatim.
    pub details: String,
}

/// A sealed entry as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    pub seq: i64,
    pub at: UnixMillis,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub details: String,
    pub prev_hash: String,
    pub hash: String,
}

impl AuditDraft {
    /// Places the draft at `seq` after an entry whose hash is `prev_hash`.
    pub fn seal(self, seq: i64, prev_hash: &str) -> AuditEntry {
        let hash = entry_hash(seq, prev_hash, &self);
        AuditEntry {
            seq,
            at: self.at,
            actor: self.actor,
            action: self.action,
            target: self.target,
            details: self.details,
            prev_hash: prev_hash.to_owned(),
            hash,
        }
    }
}

impl AuditEntry {
    fn recomputed_hash(&self) -> String {
        let draft = AuditDraft {
            at: self.at,
            actor: self.actor.clone(),
            action: self.action.clone(),
            target: self.target.clone(),
            details: self.details.clone(),
        };
        entry_hash(self.seq, &self.prev_hash, &draft)
    }
}

fn entry_hash(seq: i64, prev_hash: &str, draft: &AuditDraft) -> String {
    let mut ctx = digest::Context::new(&digest::SHA256);
    ctx.update(b"portcullis-audit-v1");
    ctx.update(&seq.to_be_bytes());
    ctx.update(&draft.at.as_millis().to_be_bytes());
    for field in [
        prev_hash,
        &draft.actor,
        &draft.action,
        &draft.target,
        &draft.details,
    ] {
        ctx.update(&(field.len() as u64).to_be_bytes());
        ctx.update(field.as_bytes());
    }
    hex::encode(ctx.finish().as_ref())
}

/// The last entry of a chain, kept apart from the entries so that cutting off the newest
/// entries is also detected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainHead {
    pub seq: i64,
    pub hash: String,
}

/// How the chain is broken, at the first entry where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChainBreak {
    /// The entry's contents no longer match its own hash.
    Edited { seq: i64 },
    /// Entries are missing before this one.
    Removed { first_missing_seq: i64 },
    /// The entry does not link to the entry stored before it: moved, or its predecessor was
    /// replaced together with its hash.
    Reordered { seq: i64 },
    /// The newest entries were cut off: the chain ends before the recorded head.
    Truncated { last_seq: i64, head_seq: i64 },
    /// The head does not match the last entry.
    HeadMismatch { seq: i64 },
}

impl ChainBreak {
    /// The sequence number of the first entry found wrong.
    pub fn seq(&self) -> i64 {
        match *self {
            ChainBreak::Edited { seq }
            | ChainBreak::Reordered { seq }
            | ChainBreak::HeadMismatch { seq } => seq,
            ChainBreak::Removed { first_missing_seq } => first_missing_seq,
            ChainBreak::Truncated { last_seq, .. } => last_seq + 1,
        }
    }
}

impl fmt::Display for ChainBreak {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChainBreak::Edited { seq } => write!(f, "entry {seq} was edited"),
            ChainBreak::Removed { first_missing_seq } => {
                write!(f, "entry {first_missing_seq} was removed")
            }
            ChainBreak::Reordered { seq } => write!(
                f,
                "entry {seq} does not follow the entry before it (reordered or replaced)"
            ),
            ChainBreak::Truncated { last_seq, head_seq } => write!(
                f,
                "entries after {last_seq} were removed (the head records entry {head_seq})"
            ),
            ChainBreak::HeadMismatch { seq } => {
                write!(f, "entry {seq} differs from the recorded chain head")
            }
        }
    }
}

/// Incremental verifier: feed entries in `seq` order, then `finish` with the recorded head.
#[derive(Debug)]
pub struct ChainVerifier {
    expected_seq: i64,
    expected_prev: String,
}

impl Default for ChainVerifier {
    fn default() -> Self {
        Self {
            expected_seq: 1,
            expected_prev: GENESIS_HASH.to_owned(),
        }
    }
}

impl ChainVerifier {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn check(&mut self, entry: &AuditEntry) -> Result<(), ChainBreak> {
        if entry.seq > self.expected_seq {
            return Err(ChainBreak::Removed {
                first_missing_seq: self.expected_seq,
            });
        }
        if entry.seq < self.expected_seq {
            return Err(ChainBreak::Reordered { seq: entry.seq });
        }
        if entry.recomputed_hash() != entry.hash {
            return Err(ChainBreak::Edited { seq: entry.seq });
        }
        if entry.prev_hash != self.expected_prev {
            return Err(ChainBreak::Reordered { seq: entry.seq });
        }
        self.expected_seq += 1;
        self.expected_prev.clone_from(&entry.hash);
        Ok(())
    }

    /// Number of entries verified so far.
    pub fn verified(&self) -> i64 {
        self.expected_seq - 1
    }

    pub fn finish(self, head: Option<&ChainHead>) -> Result<i64, ChainBreak> {
        let last_seq = self.verified();
        match head {
            None if last_seq == 0 => Ok(0),
            None => Err(ChainBreak::HeadMismatch { seq: last_seq }),
            Some(head) if head.seq > last_seq => Err(ChainBreak::Truncated {
                last_seq,
                head_seq: head.seq,
            }),
            Some(head) if head.seq < last_seq || head.hash != self.expected_prev => {
                Err(ChainBreak::HeadMismatch { seq: last_seq })
            }
            Some(_) => Ok(last_seq),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(n: i64) -> (Vec<AuditEntry>, ChainHead) {
        let mut prev = GENESIS_HASH.to_owned();
        let entries: Vec<_> = (1..=n)
            .map(|seq| {
                let entry = AuditDraft {
                    at: UnixMillis(seq * 1000),
                    actor: "operator:op_1".into(),
                    action: "api_key.created".into(),
                    target: format!("key:k_{seq}"),
                    details: r#"{"scopes":["read"]}"#.into(),
                }
                .seal(seq, &prev);
                prev.clone_from(&entry.hash);
                entry
            })
            .collect();
        let head = ChainHead { seq: n, hash: prev };
        (entries, head)
    }

    fn verify(entries: &[AuditEntry], head: &ChainHead) -> Result<i64, ChainBreak> {
        let mut verifier = ChainVerifier::new();
        for entry in entries {
            verifier.check(entry)?;
        }
        verifier.finish(Some(head))
    }

    #[test]
    fn intact_chain_verifies() {
        let (entries, head) = chain(5);
        assert_eq!(verify(&entries, &head), Ok(5));
    }

    #[test]
    fn finds_the_edited_entry() {
        let (mut entries, head) = chain(5);
        entries[2].details = r#"{"scopes":["read","withdraw"]}"#.into();
        assert_eq!(verify(&entries, &head), Err(ChainBreak::Edited { seq: 3 }));
    }

    #[test]
    fn finds_the_removed_entry() {
        let (mut entries, head) = chain(5);
        entries.remove(1);
        let found = verify(&entries, &head).unwrap_err();
        assert_eq!(
            found,
            ChainBreak::Removed {
                first_missing_seq: 2
            }
        );
    }

    #[test]
    fn finds_swapped_entries() {
        let (mut entries, head) = chain(5);
        let (a, b) = (entries[1].clone(), entries[2].clone());
        entries[1] = AuditEntry { seq: 2, ..b };
        entries[2] = AuditEntry { seq: 3, ..a };
        assert_eq!(verify(&entries, &head).unwrap_err().seq(), 2);
    }

    #[test]
    fn finds_a_cut_off_tail() {
        let (mut entries, head) = chain(5);
        entries.truncate(3);
        assert_eq!(verify(&entries, &head).unwrap_err().seq(), 4);
    }
}
