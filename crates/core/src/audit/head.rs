//! Exported heads: the chain's last entry (position, MAC, time) signed with the audit head key
//! (Ed25519), to be kept outside the database. A chain that no longer extends a head exported
//! earlier was truncated or rewritten, even if whoever did it also moved the database's head.

use super::AuditKeys;
use crate::time::UnixMillis;
use serde::{Deserialize, Serialize};

/// The value of `format` in a head file.
pub const HEAD_FORMAT: &str = "portcullis-audit-head-v1";

/// What an exported head states about the chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportedHead {
    pub seq: i64,
    /// The MAC (or legacy hash) of the entry at `seq`.
    pub hash: String,
    /// When that entry was written.
    pub entry_at: UnixMillis,
    /// When the head was exported.
    pub exported_at: UnixMillis,
}

/// A head file: the head, the key that signed it, and the signature.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignedHead {
    pub format: String,
    pub seq: i64,
    pub hash: String,
    pub entry_at: UnixMillis,
    pub exported_at: UnixMillis,
    /// The audit head key (`<master id>:audit-head-v1`).
    pub signing_key_id: String,
    /// Its Ed25519 public key in hex, so the head can be checked without the keyring; a
    /// verifier holding the keyring checks it against its own.
    pub public_key: String,
    /// Hex Ed25519 signature over the fields above.
    pub signature: String,
}

/// Why a head file is not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeadFileError {
    #[error("the head file is not a Portcullis audit head: {0}")]
    Malformed(String),
    #[error("the head file is signed by `{0}`, a key the keyring does not hold")]
    UnknownSigningKey(String),
    #[error("the head file's signature does not verify: the file was altered or forged")]
    BadSignature,
    #[error("the keyring cannot sign heads")]
    CannotSign,
}

impl ExportedHead {
    /// The bytes the signature covers.
    fn message(&self, signing_key_id: &str) -> Vec<u8> {
        let mut out = Vec::with_capacity(160);
        out.extend_from_slice(HEAD_FORMAT.as_bytes());
        out.extend_from_slice(&self.seq.to_be_bytes());
        out.extend_from_slice(&self.entry_at.as_millis().to_be_bytes());
        out.extend_from_slice(&self.exported_at.as_millis().to_be_bytes());
        for field in [self.hash.as_str(), signing_key_id] {
            out.extend_from_slice(&(field.len() as u64).to_be_bytes());
            out.extend_from_slice(field.as_bytes());
        }
        out
    }

    /// Signs the head with the active head key.
    pub fn sign(self, keys: &AuditKeys) -> Result<SignedHead, HeadFileError> {
        let key_id = keys.active_head_id();
        let (signing_key_id, signature) = keys
            .sign_head(&self.message(&key_id))
            .ok_or(HeadFileError::CannotSign)?;
        let public_key = keys
            .head_public_key(&signing_key_id)
            .ok_or(HeadFileError::CannotSign)?;
        Ok(SignedHead {
            format: HEAD_FORMAT.to_owned(),
            seq: self.seq,
            hash: self.hash,
            entry_at: self.entry_at,
            exported_at: self.exported_at,
            signing_key_id,
            public_key: hex::encode(public_key),
            signature: hex::encode(signature),
        })
    }
}

impl SignedHead {
    /// Reads a head file's JSON.
    pub fn parse(text: &str) -> Result<Self, HeadFileError> {
        let head: SignedHead =
            serde_json::from_str(text).map_err(|e| HeadFileError::Malformed(e.to_string()))?;
        if head.format != HEAD_FORMAT {
            return Err(HeadFileError::Malformed(format!(
                "format `{}`, expected `{HEAD_FORMAT}`",
                head.format
            )));
        }
        Ok(head)
    }

    /// The head, once its signature is checked with the keyring's head key.
    pub fn open(&self, keys: &AuditKeys) -> Result<ExportedHead, HeadFileError> {
        let head = ExportedHead {
            seq: self.seq,
            hash: self.hash.clone(),
            entry_at: self.entry_at,
            exported_at: self.exported_at,
        };
        let known = keys
            .head_public_key(&self.signing_key_id)
            .ok_or_else(|| HeadFileError::UnknownSigningKey(self.signing_key_id.clone()))?;
        let signature = hex::decode(&self.signature).map_err(|_| HeadFileError::BadSignature)?;
        let valid = keys
            .head_signature_valid(
                &self.signing_key_id,
                &head.message(&self.signing_key_id),
                &signature,
            )
            .unwrap_or(false);
        // A file carrying another public key was re-signed by someone else.
        if !valid || hex::encode(known) != self.public_key {
            return Err(HeadFileError::BadSignature);
        }
        Ok(head)
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::keys;
    use super::*;

    fn signed() -> SignedHead {
        ExportedHead {
            seq: 42,
            hash: "ab".repeat(32),
            entry_at: UnixMillis(1_000),
            exported_at: UnixMillis(2_000),
        }
        .sign(&keys(1))
        .unwrap()
    }

    #[test]
    fn a_head_round_trips_through_its_file() {
        let head = signed();
        let text = serde_json::to_string_pretty(&head).unwrap();
        let parsed = SignedHead::parse(&text).unwrap();
        assert_eq!(parsed.open(&keys(1)).unwrap().seq, 42);
        assert_eq!(parsed.signing_key_id, "mk1:audit-head-v1");
    }

    #[test]
    fn a_tampered_head_is_refused() {
        let mut moved = signed();
        moved.seq = 41;
        assert_eq!(moved.open(&keys(1)), Err(HeadFileError::BadSignature));
        let mut rehashed = signed();
        rehashed.hash = "cd".repeat(32);
        assert_eq!(rehashed.open(&keys(1)), Err(HeadFileError::BadSignature));
        // Signed by a keyring with other material under the same id.
        let forged = ExportedHead {
            seq: 42,
            hash: "ab".repeat(32),
            entry_at: UnixMillis(1_000),
            exported_at: UnixMillis(2_000),
        }
        .sign(&keys(2))
        .unwrap();
        assert_eq!(forged.open(&keys(1)), Err(HeadFileError::BadSignature));
        let mut renamed = signed();
        renamed.signing_key_id = "mk9:audit-head-v1".into();
        assert!(matches!(
            renamed.open(&keys(1)),
            Err(HeadFileError::UnknownSigningKey(_))
        ));
        assert!(matches!(
            SignedHead::parse(r#"{"format":"x"}"#),
            Err(HeadFileError::Malformed(_))
        ));
    }
}
