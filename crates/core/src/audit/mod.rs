//! The tamper-evident audit chain: every security-relevant change is an entry carrying the MAC
//! of the entry before it, so editing, removing or reordering any entry breaks the chain at
//! that point, and nobody without the audit key (derived from the master keyring, never stored
//! in the database) can re-seal a chain they changed.
//!
//! Entries written before the chain was keyed are *legacy*: plain SHA-256 links, kept so that
//! existing chains still verify; the first keyed entry links to the last legacy one.
//!
//! MACs and hashes cover length-prefixed fields (never a re-serialisation of JSON), so SQLite
//! and PostgreSQL produce the same values for the same entries.

mod head;
mod keys;
mod verify;

pub use head::{ExportedHead, HeadFileError, SignedHead};
pub use keys::{AuditKeyError, AuditKeys};
pub use verify::{ChainBreak, ChainSummary, ChainVerifier, Seal, check_seal};

use crate::time::UnixMillis;
use aws_lc_rs::digest;

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
    /// The `hash` of the entry before (a MAC or, before it, a legacy hash).
    pub prev_hash: String,
    /// Hex HMAC-SHA256 under `mac_key_id`; for a legacy entry, its hex SHA-256.
    pub hash: String,
    /// The audit key that sealed the entry; `None` for a legacy (unkeyed) entry.
    pub mac_key_id: Option<String>,
}

impl AuditDraft {
    /// Places the draft at `seq` after an entry whose hash is `prev_hash`, sealed with the
    /// active audit key.
    pub fn seal(self, seq: i64, prev_hash: &str, keys: &AuditKeys) -> AuditEntry {
        let key_id = keys.active_mac_id().to_owned();
        let content = keyed_content(seq, prev_hash, &key_id, &self.fields());
        let hash = keys.mac_hex(&content);
        self.into_entry(seq, prev_hash, hash, Some(key_id))
    }

    /// The format before entries were keyed: a plain SHA-256 link anyone can recompute. Only
    /// verification of old chains and the migration tests need it; nothing appends it.
    pub fn seal_legacy(self, seq: i64, prev_hash: &str) -> AuditEntry {
        let hash = legacy_hash(seq, prev_hash, &self.fields());
        self.into_entry(seq, prev_hash, hash, None)
    }

    fn fields(&self) -> Fields<'_> {
        Fields {
            at: self.at,
            actor: &self.actor,
            action: &self.action,
            target: &self.target,
            details: &self.details,
        }
    }

    fn into_entry(
        self,
        seq: i64,
        prev_hash: &str,
        hash: String,
        mac_key_id: Option<String>,
    ) -> AuditEntry {
        AuditEntry {
            seq,
            at: self.at,
            actor: self.actor,
            action: self.action,
            target: self.target,
            details: self.details,
            prev_hash: prev_hash.to_owned(),
            hash,
            mac_key_id,
        }
    }
}

impl AuditEntry {
    fn fields(&self) -> Fields<'_> {
        Fields {
            at: self.at,
            actor: &self.actor,
            action: &self.action,
            target: &self.target,
            details: &self.details,
        }
    }

    /// What the MAC of a keyed entry covers.
    fn keyed_content(&self, key_id: &str) -> Vec<u8> {
        keyed_content(self.seq, &self.prev_hash, key_id, &self.fields())
    }

    fn recomputed_legacy_hash(&self) -> String {
        legacy_hash(self.seq, &self.prev_hash, &self.fields())
    }
}

/// The content fields of an entry, borrowed.
struct Fields<'a> {
    at: UnixMillis,
    actor: &'a str,
    action: &'a str,
    target: &'a str,
    details: &'a str,
}

/// The bytes a keyed entry's MAC covers: a domain label, the position, the time and every
/// text field length-prefixed, including the key id (so an entry cannot be passed off as sealed
/// by another key).
fn keyed_content(seq: i64, prev_hash: &str, key_id: &str, fields: &Fields<'_>) -> Vec<u8> {
    let mut out = Vec::with_capacity(128 + fields.details.len());
    out.extend_from_slice(b"portcullis-audit-mac-v1");
    out.extend_from_slice(&seq.to_be_bytes());
    out.extend_from_slice(&fields.at.as_millis().to_be_bytes());
    for field in [
        prev_hash,
        key_id,
        fields.actor,
        fields.action,
        fields.target,
        fields.details,
    ] {
        out.extend_from_slice(&(field.len() as u64).to_be_bytes());
        out.extend_from_slice(field.as_bytes());
    }
    out
}

/// The legacy hash, exactly as entries were sealed before the chain was keyed.
fn legacy_hash(seq: i64, prev_hash: &str, fields: &Fields<'_>) -> String {
    let mut ctx = digest::Context::new(&digest::SHA256);
    ctx.update(b"portcullis-audit-v1");
    ctx.update(&seq.to_be_bytes());
    ctx.update(&fields.at.as_millis().to_be_bytes());
    for field in [
        prev_hash,
        fields.actor,
        fields.action,
        fields.target,
        fields.details,
    ] {
        ctx.update(&(field.len() as u64).to_be_bytes());
        ctx.update(field.as_bytes());
    }
    hex::encode(ctx.finish().as_ref())
}

/// The last entry of a chain as the database records it, kept apart from the entries so that
/// cutting off the newest entries is also detected (unless the head is moved back too, which
/// only an exported [`SignedHead`] reveals).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainHead {
    pub seq: i64,
    pub hash: String,
    /// Entries up to this sequence number may be legacy (written before the chain was keyed);
    /// any unkeyed entry after it is a break.
    pub legacy_until: i64,
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn keys(material: u8) -> AuditKeys {
        AuditKeys::derive("mk1", &[("mk1", &[material; 32])]).unwrap()
    }

    pub(crate) fn draft(seq: i64) -> AuditDraft {
        AuditDraft {
            at: UnixMillis(seq * 1000),
            actor: "operator:op_1".into(),
            action: "api_key.created".into(),
            target: format!("key:k_{seq}"),
            details: r#"{"scopes":["read"]}"#.into(),
        }
    }

    #[test]
    fn the_legacy_hash_is_unchanged() {
        // The value the unkeyed code produced for this entry: old chains must keep verifying.
        let entry = draft(1).seal_legacy(1, GENESIS_HASH);
        assert_eq!(entry.mac_key_id, None);
        // Computed independently (Python's hashlib over the same length-prefixed fields).
        assert_eq!(
            entry.hash,
            "bcc1c9f0afbd9ba6b39c7844a914f8f6f81fd10c1bca42dde5d9d576cf01da70"
        );
    }

    #[test]
    fn a_keyed_seal_depends_on_the_key_and_names_it() {
        let a = draft(1).seal(1, GENESIS_HASH, &keys(1));
        let b = draft(1).seal(1, GENESIS_HASH, &keys(2));
        assert_eq!(a.mac_key_id.as_deref(), Some("mk1:audit-mac-v1"));
        assert_ne!(a.hash, b.hash, "another key gives another MAC");
        assert_ne!(a.hash, draft(1).seal_legacy(1, GENESIS_HASH).hash);
    }
}
