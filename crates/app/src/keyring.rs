//! Master keys and the sealing of HMAC secrets at rest.
//!
//! Each secret is encrypted with AES-256-GCM under the active master key, with a fresh random
//! nonce, and bound (as associated data) to its key id, generation and master key id: a
//! ciphertext copied onto another row does not decrypt. Master keys carry ids, so a new one can
//! become active while old ciphertexts still open, and `rewrap` moves them over.
//!
//! Other values kept at rest (anti-phishing codes, the rendered bodies of queued notices) are
//! sealed the same way by [`MasterKeyring::seal_field`], bound to the place they are stored in
//! (table, column, row), so that a database backup without the keyring reveals none of them.
//!
//! The same master keys also yield the audit keys (HKDF under labels of their own, see
//! `portcullis_core::audit::AuditKeys`): the MAC key that seals audit entries and the Ed25519
//! key that signs exported chain heads, and the MAC key that seals the partitions' control
//! messages (`crate::partitions::ControlSeal`). None is stored anywhere; all live and rotate
//! with the keyring.

use crate::error::AppError;
use crate::partitions::ControlSeal;
use crate::ports::SealedSecret;
use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use portcullis_core::audit::AuditKeys;
use portcullis_core::secret::Secret;
use portcullis_core::time::UnixMillis;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

/// Length of a master key.
pub const MASTER_KEY_LEN: usize = 32;

/// The master keys this process knows, and which one seals new secrets.
pub struct MasterKeyring {
    active: String,
    keys: BTreeMap<String, LessSafeKey>,
    audit: Arc<AuditKeys>,
    control: Arc<ControlSeal>,
}

impl fmt::Debug for MasterKeyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MasterKeyring")
            .field("active", &self.active)
            .field("ids", &self.keys.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// A problem with the configured master keys.
#[derive(Debug, thiserror::Error)]
pub enum KeyringError {
    #[error("master key `{0}` must be exactly {MASTER_KEY_LEN} bytes")]
    BadLength(String),
    #[error("the active master key `{0}` is not in the keyring")]
    MissingActive(String),
    #[error("master key id `{0}` must be 1 to 32 letters, digits, `-` or `_`")]
    BadId(String),
    #[error("{0}")]
    AuditKeys(#[from] portcullis_core::audit::AuditKeyError),
    #[error("{0}")]
    Control(String),
}

impl MasterKeyring {
    pub fn new(active: &str, keys: Vec<(String, Secret)>) -> Result<Self, KeyringError> {
        let mut map = BTreeMap::new();
        for (id, material) in &keys {
            if id.is_empty()
                || id.len() > 32
                || !id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            {
                return Err(KeyringError::BadId(id.clone()));
            }
            let unbound = UnboundKey::new(&AES_256_GCM, material.expose())
                .ok()
                .filter(|_| material.len() == MASTER_KEY_LEN)
                .ok_or_else(|| KeyringError::BadLength(id.clone()))?;
            map.insert(id.clone(), LessSafeKey::new(unbound));
        }
        if !map.contains_key(active) {
            return Err(KeyringError::MissingActive(active.to_owned()));
        }
        let materials: Vec<(&str, &[u8])> = keys
            .iter()
            .map(|(id, material)| (id.as_str(), material.expose()))
            .collect();
        let audit = Arc::new(AuditKeys::derive(active, &materials)?);
        let control = ControlSeal::derive(active, &materials).map_err(KeyringError::Control)?;
        Ok(Self {
            active: active.to_owned(),
            keys: map,
            audit,
            control: Arc::new(control),
        })
    }

    /// The audit keys derived from these master keys.
    pub fn audit_keys(&self) -> Arc<AuditKeys> {
        Arc::clone(&self.audit)
    }

    /// The control keys derived from these master keys (the partitions' control subject).
    pub fn control_seal(&self) -> Arc<ControlSeal> {
        Arc::clone(&self.control)
    }

    pub fn active_id(&self) -> &str {
        &self.active
    }

    pub fn ids(&self) -> impl Iterator<Item = &str> {
        self.keys.keys().map(String::as_str)
    }

    /// Encrypts `secret` for the row (`key_id`, `generation`) under the active master key.
    pub fn seal(
        &self,
        key_id: &str,
        generation: i64,
        secret: &Secret,
        now: UnixMillis,
    ) -> Result<SealedSecret, AppError> {
        let key = self
            .keys
            .get(&self.active)
            .ok_or_else(|| AppError::Internal("active master key missing".into()))?;
        let nonce_bytes = crate::random::bytes::<NONCE_LEN>()?;
        let aad = associated_data(key_id, generation, &self.active);
        let mut in_out = secret.expose().to_vec();
        key.seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce_bytes),
            Aad::from(aad.as_bytes()),
            &mut in_out,
        )
        .map_err(|_| AppError::Internal("sealing a secret failed".into()))?;
        Ok(SealedSecret {
            key_id: key_id.to_owned(),
            generation,
            master_key_id: self.active.clone(),
            nonce: nonce_bytes.to_vec(),
            ciphertext: in_out,
            created_at: now,
            valid_until: None,
        })
    }

    /// Decrypts a sealed secret; fails if its master key is unknown or anything was altered.
    pub fn open(&self, sealed: &SealedSecret) -> Result<Secret, AppError> {
        let key = self.keys.get(&sealed.master_key_id).ok_or_else(|| {
            AppError::Internal(format!(
                "secret of {} sealed by unknown master key `{}`",
                sealed.key_id, sealed.master_key_id
            ))
        })?;
        let nonce = Nonce::try_assume_unique_for_key(&sealed.nonce)
            .map_err(|_| AppError::Internal(format!("bad nonce for {}", sealed.key_id)))?;
        let aad = associated_data(&sealed.key_id, sealed.generation, &sealed.master_key_id);
        let mut in_out = sealed.ciphertext.clone();
        let plain = key
            .open_in_place(nonce, Aad::from(aad.as_bytes()), &mut in_out)
            .map_err(|_| {
                AppError::Internal(format!(
                    "secret of {} generation {} failed authentication",
                    sealed.key_id, sealed.generation
                ))
            })?;
        let secret = Secret::new(plain.to_vec());
        zeroize::Zeroize::zeroize(&mut in_out);
        Ok(secret)
    }

    /// The same secret sealed again under the active master key.
    pub fn reseal(&self, sealed: &SealedSecret) -> Result<SealedSecret, AppError> {
        let plain = self.open(sealed)?;
        let mut resealed =
            self.seal(&sealed.key_id, sealed.generation, &plain, sealed.created_at)?;
        resealed.valid_until = sealed.valid_until;
        Ok(resealed)
    }
}

/// A value sealed at rest: which master key sealed it, and the nonce followed by the
/// ciphertext and its tag, in base64 (so it fits the TEXT column the plain value lived in).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedField {
    pub master_key_id: String,
    pub sealed: String,
}

impl MasterKeyring {
    /// Seals `plain` under the active master key for the place `context` names (for example
    /// `outbox.body_text|ntf_1`): the ciphertext opens only for the same context.
    pub fn seal_field(&self, context: &str, plain: &str) -> Result<SealedField, AppError> {
        let key = self
            .keys
            .get(&self.active)
            .ok_or_else(|| AppError::Internal("active master key missing".into()))?;
        let nonce_bytes = crate::random::bytes::<NONCE_LEN>()?;
        let aad = field_associated_data(context, &self.active);
        let mut in_out = plain.as_bytes().to_vec();
        key.seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce_bytes),
            Aad::from(aad.as_bytes()),
            &mut in_out,
        )
        .map_err(|_| AppError::Internal(format!("sealing {context} failed")))?;
        let mut stored = nonce_bytes.to_vec();
        stored.extend_from_slice(&in_out);
        Ok(SealedField {
            master_key_id: self.active.clone(),
            sealed: BASE64.encode(stored),
        })
    }

    /// Opens a value sealed by [`seal_field`](Self::seal_field) for `context`; fails if its
    /// master key is unknown, or the value was altered or moved to another place.
    pub fn open_field(&self, context: &str, field: &SealedField) -> Result<String, AppError> {
        let key = self.keys.get(&field.master_key_id).ok_or_else(|| {
            AppError::Internal(format!(
                "{context} sealed by unknown master key `{}`",
                field.master_key_id
            ))
        })?;
        let failed = || AppError::Internal(format!("{context} failed authentication"));
        let mut stored = BASE64.decode(&field.sealed).map_err(|_| failed())?;
        if stored.len() < NONCE_LEN {
            return Err(failed());
        }
        let mut in_out = stored.split_off(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(&stored).map_err(|_| failed())?;
        let aad = field_associated_data(context, &field.master_key_id);
        let plain = key
            .open_in_place(nonce, Aad::from(aad.as_bytes()), &mut in_out)
            .map_err(|_| failed())?;
        let text = String::from_utf8(plain.to_vec()).map_err(|_| failed());
        zeroize::Zeroize::zeroize(&mut in_out);
        text
    }
}

fn field_associated_data(context: &str, master_key_id: &str) -> String {
    format!("portcullis-field-v1|{context}|{master_key_id}")
}

fn associated_data(key_id: &str, generation: i64, master_key_id: &str) -> String {
    format!("portcullis-secret-v1|{key_id}|{generation}|{master_key_id}")
}

/// A fresh random master key.
pub fn generate_master_key() -> Result<Secret, AppError> {
    Ok(Secret::new(
        crate::random::bytes::<MASTER_KEY_LEN>()?.to_vec(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ring(active: &str) -> MasterKeyring {
        MasterKeyring::new(
            active,
            vec![
                ("mk1".into(), Secret::new(vec![1; 32])),
                ("mk2".into(), Secret::new(vec![2; 32])),
            ],
        )
        .unwrap()
    }

    #[test]
    fn seals_and_opens_without_the_plaintext_in_the_ciphertext() {
        let secret = Secret::new(b"NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP".to_vec());
        let sealed = ring("mk1").seal("k_1", 1, &secret, UnixMillis(5)).unwrap();
        assert!(!sealed.ciphertext.windows(8).any(|w| w == b"NhqPtmdS"));
        assert_eq!(ring("mk1").open(&sealed).unwrap(), secret);
    }

    #[test]
    fn a_ciphertext_moved_to_another_row_does_not_open() {
        let sealed = ring("mk1")
            .seal("k_1", 1, &Secret::new(vec![9; 64]), UnixMillis(5))
            .unwrap();
        let moved = SealedSecret {
            key_id: "k_2".into(),
            ..sealed.clone()
        };
        assert!(ring("mk1").open(&moved).is_err());
        let mut flipped = sealed;
        flipped.ciphertext[0] ^= 1;
        assert!(ring("mk1").open(&flipped).is_err());
    }

    #[test]
    fn reseal_moves_to_the_active_key() {
        let secret = Secret::new(vec![7; 64]);
        let old = ring("mk1").seal("k_1", 2, &secret, UnixMillis(5)).unwrap();
        let new = ring("mk2").reseal(&old).unwrap();
        assert_eq!(new.master_key_id, "mk2");
        assert_eq!(ring("mk2").open(&new).unwrap(), secret);
        let without_old =
            MasterKeyring::new("mk2", vec![("mk2".into(), Secret::new(vec![2; 32]))]).unwrap();
        assert!(without_old.open(&new).is_ok());
        assert!(without_old.open(&old).is_err());
    }

    #[test]
    fn fields_open_only_in_their_place_and_under_a_known_key() {
        let sealed = ring("mk1")
            .seal_field("accounts.anti_phishing_code|acc_1", "Blue42")
            .unwrap();
        assert_eq!(sealed.master_key_id, "mk1");
        assert!(!sealed.sealed.contains("Blue42"));
        let again = ring("mk1")
            .seal_field("accounts.anti_phishing_code|acc_1", "Blue42")
            .unwrap();
        assert_ne!(sealed.sealed, again.sealed, "a fresh nonce every time");
        let opened = ring("mk2").open_field("accounts.anti_phishing_code|acc_1", &sealed);
        assert_eq!(
            opened.unwrap(),
            "Blue42",
            "opens under its own key, active or not"
        );
        assert!(
            ring("mk1")
                .open_field("accounts.anti_phishing_code|acc_2", &sealed)
                .is_err(),
            "moved to another row"
        );
        let relabelled = SealedField {
            master_key_id: "mk2".into(),
            ..sealed.clone()
        };
        assert!(
            ring("mk1")
                .open_field("accounts.anti_phishing_code|acc_1", &relabelled)
                .is_err()
        );
        let truncated = SealedField {
            sealed: "AAAA".into(),
            ..sealed
        };
        assert!(
            ring("mk1")
                .open_field("accounts.anti_phishing_code|acc_1", &truncated)
                .is_err()
        );
        let without_mk1 =
            MasterKeyring::new("mk2", vec![("mk2".into(), Secret::new(vec![2; 32]))]).unwrap();
        let lost = ring("mk1")
            .seal_field("outbox.body_text|ntf_1", "x")
            .unwrap();
        assert!(
            without_mk1
                .open_field("outbox.body_text|ntf_1", &lost)
                .is_err()
        );
    }

    #[test]
    fn refuses_bad_keyrings() {
        assert!(MasterKeyring::new("mk1", vec![("mk1".into(), Secret::new(vec![1; 16]))]).is_err());
        assert!(MasterKeyring::new("mk9", vec![("mk1".into(), Secret::new(vec![1; 32]))]).is_err());
    }
}
