//! Verifying a chain as it streams past: entries in `seq` order, each checked against its seal
//! and its predecessor, then the end against the database's head and, if one is given, an
//! exported head kept outside the database (the only thing that reveals newest entries cut
//! off together with the database's head).

use super::{AuditEntry, AuditKeys, ChainHead, ExportedHead, GENESIS_HASH};
use std::fmt;

/// How the chain is broken, at the first entry where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChainBreak {
    /// The entry no longer matches its seal: edited, or re-sealed without the audit key.
    Edited { seq: i64 },
    /// The entry is sealed by an audit key the keyring does not hold.
    UnknownKey { seq: i64, key_id: String },
    /// An unkeyed entry where the chain is keyed: forged, or a keyed entry downgraded.
    Unkeyed { seq: i64, legacy_until: i64 },
    /// Entries are missing before this one.
    Removed { first_missing_seq: i64 },
    /// The entry does not link to the entry stored before it: moved, or its predecessor was
    /// replaced together with its hash.
    Reordered { seq: i64 },
    /// The newest entries were cut off: the chain ends before the recorded head.
    Truncated { last_seq: i64, head_seq: i64 },
    /// The head does not match the last entry.
    HeadMismatch { seq: i64 },
    /// The chain ends before the entry an exported head records.
    TruncatedBelowHead { last_seq: i64, head_seq: i64 },
    /// The entry an exported head records is no longer the one stored at its place.
    RewrittenSinceHead { seq: i64 },
}

impl ChainBreak {
    /// The sequence number of the first entry found wrong.
    pub fn seq(&self) -> i64 {
        match *self {
            ChainBreak::Edited { seq }
            | ChainBreak::UnknownKey { seq, .. }
            | ChainBreak::Unkeyed { seq, .. }
            | ChainBreak::Reordered { seq }
            | ChainBreak::HeadMismatch { seq }
            | ChainBreak::RewrittenSinceHead { seq } => seq,
            ChainBreak::Removed { first_missing_seq } => first_missing_seq,
            ChainBreak::Truncated { last_seq, .. }
            | ChainBreak::TruncatedBelowHead { last_seq, .. } => last_seq + 1,
        }
    }

    /// A stable name for the kind of break.
    pub fn name(&self) -> &'static str {
        match self {
            ChainBreak::Edited { .. } => "edited",
            ChainBreak::UnknownKey { .. } => "unknown_key",
            ChainBreak::Unkeyed { .. } => "unkeyed",
            ChainBreak::Removed { .. } => "removed",
            ChainBreak::Reordered { .. } => "reordered",
            ChainBreak::Truncated { .. } => "truncated",
            ChainBreak::HeadMismatch { .. } => "head_mismatch",
            ChainBreak::TruncatedBelowHead { .. } => "truncated_below_head",
            ChainBreak::RewrittenSinceHead { .. } => "rewritten_since_head",
        }
    }
}

impl fmt::Display for ChainBreak {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChainBreak::Edited { seq } => write!(
                f,
                "entry {seq} does not match its seal: edited, or re-sealed without the audit key"
            ),
            ChainBreak::UnknownKey { seq, key_id } => write!(
                f,
                "entry {seq} is sealed by audit key `{key_id}`, which the keyring does not hold"
            ),
            ChainBreak::Unkeyed { seq, legacy_until } => write!(
                f,
                "entry {seq} is unkeyed, but only entries up to {legacy_until} may be \
                 (forged, or a keyed entry downgraded)"
            ),
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
            ChainBreak::TruncatedBelowHead { last_seq, head_seq } => write!(
                f,
                "the chain ends at entry {last_seq}, but the exported head records entry \
                 {head_seq}: entries after {last_seq} were removed"
            ),
            ChainBreak::RewrittenSinceHead { seq } => write!(
                f,
                "entry {seq} no longer matches the exported head: the chain was rewritten \
                 since the head was exported"
            ),
        }
    }
}

/// How an entry is sealed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seal {
    /// By an audit key of the keyring.
    Keyed,
    /// By a legacy hash, at a position where that is still allowed.
    Legacy,
}

/// Checks one entry's own seal (not its links): its MAC under the key it names, or, at or
/// before `legacy_until`, its legacy hash.
pub fn check_seal(
    keys: &AuditKeys,
    legacy_until: i64,
    entry: &AuditEntry,
) -> Result<Seal, ChainBreak> {
    let seq = entry.seq;
    let Some(key_id) = &entry.mac_key_id else {
        if seq > legacy_until {
            return Err(ChainBreak::Unkeyed { seq, legacy_until });
        }
        if entry.recomputed_legacy_hash() != entry.hash {
            return Err(ChainBreak::Edited { seq });
        }
        return Ok(Seal::Legacy);
    };
    match keys.mac_matches(key_id, &entry.keyed_content(key_id), &entry.hash) {
        None => Err(ChainBreak::UnknownKey {
            seq,
            key_id: key_id.clone(),
        }),
        Some(false) => Err(ChainBreak::Edited { seq }),
        Some(true) => Ok(Seal::Keyed),
    }
}

/// What an intact chain holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChainSummary {
    pub entries: i64,
    /// How many of them are legacy (unkeyed, written before the chain was keyed).
    pub legacy: i64,
}

/// Incremental verifier: feed the entries the head covers in `seq` order, then `finish`.
#[derive(Debug)]
pub struct ChainVerifier<'k> {
    keys: &'k AuditKeys,
    head: Option<ChainHead>,
    anchor: Option<(i64, String)>,
    expected_seq: i64,
    expected_prev: String,
    legacy: i64,
}

impl<'k> ChainVerifier<'k> {
    /// A verifier of the chain up to `head`, the database's record of its last entry (read
    /// before the entries, so entries appended while verifying are left out).
    pub fn new(keys: &'k AuditKeys, head: Option<ChainHead>) -> Self {
        Self {
            keys,
            head,
            anchor: None,
            expected_seq: 1,
            expected_prev: GENESIS_HASH.to_owned(),
            legacy: 0,
        }
    }

    /// Also requires the chain to extend `exported` (an exported head already checked).
    pub fn extending(mut self, exported: &ExportedHead) -> Self {
        self.anchor = Some((exported.seq, exported.hash.clone()));
        self
    }

    /// Whether the entry at `seq` is one this verifier is to check (at or before the head).
    pub fn covers(&self, seq: i64) -> bool {
        self.head.as_ref().is_some_and(|head| seq <= head.seq)
    }

    pub fn check(&mut self, entry: &AuditEntry) -> Result<(), ChainBreak> {
        let seq = entry.seq;
        if seq > self.expected_seq {
            return Err(ChainBreak::Removed {
                first_missing_seq: self.expected_seq,
            });
        }
        if seq < self.expected_seq {
            return Err(ChainBreak::Reordered { seq });
        }
        self.check_seal(entry)?;
        if entry.prev_hash != self.expected_prev {
            return Err(ChainBreak::Reordered { seq });
        }
        if let Some((anchor_seq, anchor_hash)) = &self.anchor
            && *anchor_seq == seq
            && *anchor_hash != entry.hash
        {
            return Err(ChainBreak::RewrittenSinceHead { seq });
        }
        self.expected_seq += 1;
        self.expected_prev.clone_from(&entry.hash);
        Ok(())
    }

    fn check_seal(&mut self, entry: &AuditEntry) -> Result<(), ChainBreak> {
        let legacy_until = self.head.as_ref().map_or(0, |head| head.legacy_until);
        if check_seal(self.keys, legacy_until, entry)? == Seal::Legacy {
            self.legacy += 1;
        }
        Ok(())
    }

    /// Number of entries verified so far.
    pub fn verified(&self) -> i64 {
        self.expected_seq - 1
    }

    pub fn finish(self) -> Result<ChainSummary, ChainBreak> {
        let last_seq = self.verified();
        if let Some((head_seq, _)) = self.anchor
            && head_seq > last_seq
        {
            return Err(ChainBreak::TruncatedBelowHead { last_seq, head_seq });
        }
        let summary = ChainSummary {
            entries: last_seq,
            legacy: self.legacy,
        };
        match self.head {
            None if last_seq == 0 => Ok(summary),
            None => Err(ChainBreak::HeadMismatch { seq: last_seq }),
            Some(head) if head.seq > last_seq => Err(ChainBreak::Truncated {
                last_seq,
                head_seq: head.seq,
            }),
            Some(head) if head.seq < last_seq || head.hash != self.expected_prev => {
                Err(ChainBreak::HeadMismatch { seq: last_seq })
            }
            Some(_) => Ok(summary),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{draft, keys};
    use super::*;
    use crate::time::UnixMillis;

    /// `legacy` unkeyed entries, then keyed ones up to `n`, and the head.
    fn chain(n: i64, legacy: i64, keys: &AuditKeys) -> (Vec<AuditEntry>, ChainHead) {
        let mut prev = GENESIS_HASH.to_owned();
        let entries: Vec<_> = (1..=n)
            .map(|seq| {
                let entry = if seq <= legacy {
                    draft(seq).seal_legacy(seq, &prev)
                } else {
                    draft(seq).seal(seq, &prev, keys)
                };
                prev.clone_from(&entry.hash);
                entry
            })
            .collect();
        let head = ChainHead {
            seq: n,
            hash: prev,
            legacy_until: legacy,
        };
        (entries, head)
    }

    fn verify_with(
        keys: &AuditKeys,
        entries: &[AuditEntry],
        head: &ChainHead,
        exported: Option<&ExportedHead>,
    ) -> Result<ChainSummary, ChainBreak> {
        let mut verifier = ChainVerifier::new(keys, Some(head.clone()));
        if let Some(exported) = exported {
            verifier = verifier.extending(exported);
        }
        for entry in entries {
            if verifier.covers(entry.seq) {
                verifier.check(entry)?;
            }
        }
        verifier.finish()
    }

    fn verify(entries: &[AuditEntry], head: &ChainHead) -> Result<ChainSummary, ChainBreak> {
        verify_with(&keys(1), entries, head, None)
    }

    fn exported(entry: &AuditEntry) -> ExportedHead {
        ExportedHead {
            seq: entry.seq,
            hash: entry.hash.clone(),
            entry_at: entry.at,
            exported_at: UnixMillis(99_000),
        }
    }

    #[test]
    fn intact_chain_verifies_and_counts_legacy_entries() {
        let (entries, head) = chain(5, 0, &keys(1));
        assert_eq!(
            verify(&entries, &head),
            Ok(ChainSummary {
                entries: 5,
                legacy: 0
            })
        );
        let (entries, head) = chain(5, 2, &keys(1));
        assert_eq!(verify(&entries, &head).unwrap().legacy, 2);
    }

    #[test]
    fn entries_after_the_head_are_left_for_the_next_check() {
        let (entries, mut head) = chain(5, 0, &keys(1));
        head.seq = 3;
        head.hash.clone_from(&entries[2].hash);
        assert_eq!(verify(&entries, &head).unwrap().entries, 3);
    }

    #[test]
    fn finds_the_edited_entry_keyed_or_legacy() {
        for legacy in [0, 5] {
            let (mut entries, head) = chain(5, legacy, &keys(1));
            entries[2].details = r#"{"scopes":["read","withdraw"]}"#.into();
            assert_eq!(verify(&entries, &head), Err(ChainBreak::Edited { seq: 3 }));
        }
    }

    #[test]
    fn a_chain_resealed_without_the_key_is_refused() {
        let (entries, head) = chain(4, 0, &keys(1));
        // Re-sealed with another key under the same id: the MACs do not verify.
        let (forged, forged_head) = chain(4, 0, &keys(2));
        assert_ne!(forged, entries);
        assert_eq!(
            verify(&forged, &forged_head),
            Err(ChainBreak::Edited { seq: 1 })
        );
        // Recomputed as plain hashes: unkeyed entries past the legacy boundary.
        let (plain, plain_head) = chain(4, 4, &keys(1));
        let plain_head = ChainHead {
            legacy_until: head.legacy_until,
            ..plain_head
        };
        assert_eq!(
            verify(&plain, &plain_head),
            Err(ChainBreak::Unkeyed {
                seq: 1,
                legacy_until: 0
            })
        );
    }

    #[test]
    fn an_unknown_key_is_named() {
        let other = AuditKeys::derive("mk7", &[("mk7", &[7; 32])]).unwrap();
        let (entries, head) = chain(2, 0, &other);
        assert_eq!(
            verify(&entries, &head),
            Err(ChainBreak::UnknownKey {
                seq: 1,
                key_id: "mk7:audit-mac-v1".into()
            })
        );
    }

    #[test]
    fn finds_removed_swapped_and_cut_off_entries() {
        let (entries, head) = chain(5, 0, &keys(1));
        let mut removed = entries.clone();
        removed.remove(1);
        let found = verify(&removed, &head).unwrap_err();
        assert_eq!(
            found,
            ChainBreak::Removed {
                first_missing_seq: 2
            }
        );
        let mut swapped = entries.clone();
        let (a, b) = (swapped[1].clone(), swapped[2].clone());
        swapped[1] = AuditEntry { seq: 2, ..b };
        swapped[2] = AuditEntry { seq: 3, ..a };
        assert_eq!(verify(&swapped, &head).unwrap_err().seq(), 2);
        let mut cut = entries;
        cut.truncate(3);
        assert_eq!(verify(&cut, &head).unwrap_err().seq(), 4);
    }

    #[test]
    fn an_exported_head_catches_truncation_with_the_head_moved_back() {
        let keys = keys(1);
        let (entries, _) = chain(6, 0, &keys);
        let anchor = exported(&entries[4]);
        let (cut, moved_head) = chain(3, 0, &keys);
        assert_eq!(verify(&cut, &moved_head).map(|s| s.entries), Ok(3));
        assert_eq!(
            verify_with(&keys, &cut, &moved_head, Some(&anchor)),
            Err(ChainBreak::TruncatedBelowHead {
                last_seq: 3,
                head_seq: 5
            })
        );
        let (_, head) = chain(6, 0, &keys);
        assert_eq!(
            verify_with(&keys, &entries, &head, Some(&anchor)).map(|s| s.entries),
            Ok(6),
            "a chain that grew past the exported head extends it"
        );
    }

    #[test]
    fn an_exported_head_catches_a_rewritten_past() {
        let keys = keys(1);
        let (entries, _) = chain(4, 0, &keys);
        let anchor = exported(&entries[2]);
        // The same positions with other contents, sealed with the right key (an attacker who
        // holds the keyring): the chain verifies, but no longer extends the exported head.
        let mut prev = GENESIS_HASH.to_owned();
        let rewritten: Vec<_> = (1..=4)
            .map(|seq| {
                let mut d = draft(seq);
                d.actor = "operator:mallory".into();
                let entry = d.seal(seq, &prev, &keys);
                prev.clone_from(&entry.hash);
                entry
            })
            .collect();
        let head = ChainHead {
            seq: 4,
            hash: prev,
            legacy_until: 0,
        };
        assert_eq!(
            verify_with(&keys, &rewritten, &head, Some(&anchor)),
            Err(ChainBreak::RewrittenSinceHead { seq: 3 })
        );
    }
}
