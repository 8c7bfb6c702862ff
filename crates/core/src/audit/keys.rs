//! The audit keys: per master key, an HMAC-SHA256 key that seals entries and an Ed25519 key
//! that signs exported heads, both derived with HKDF-SHA256 from the master key under labels of
//! their own, so they are independent of the key that seals HMAC secrets and of each other.
//!
//! Their ids (`<master id>:audit-mac-v1`, `<master id>:audit-head-v1`) are recorded with what
//! they seal, so a new active master key starts sealing while entries and heads sealed under
//! older ones still verify as long as those stay in the keyring.

use aws_lc_rs::hkdf::{HKDF_SHA256, KeyType, Salt};
use aws_lc_rs::hmac;
use aws_lc_rs::signature::{self, Ed25519KeyPair, KeyPair as _, UnparsedPublicKey};
use std::collections::BTreeMap;
use std::fmt;
use zeroize::Zeroizing;

const SALT: &[u8] = b"portcullis-audit-keys";
const MAC_LABEL: &[u8] = b"portcullis-audit-mac-v1";
const HEAD_LABEL: &[u8] = b"portcullis-audit-head-v1";

/// The audit keys derived from every master key of a keyring.
pub struct AuditKeys {
    active_master: String,
    /// The active master key's MAC key (also in `macs`), so sealing cannot miss it.
    active_mac: hmac::Key,
    macs: BTreeMap<String, hmac::Key>,
    signers: BTreeMap<String, Ed25519KeyPair>,
}

impl fmt::Debug for AuditKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuditKeys")
            .field("active", &self.active_mac_id())
            .field("macs", &self.macs.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

/// The audit keys cannot be derived.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuditKeyError {
    #[error("the active master key `{0}` is not among the keys")]
    MissingActive(String),
    #[error("deriving the audit keys of master key `{0}` failed")]
    Derivation(String),
}

/// An HKDF output length for the Ed25519 seed.
struct SeedLen;

impl KeyType for SeedLen {
    fn len(&self) -> usize {
        32
    }
}

impl AuditKeys {
    /// Derives the audit keys of each `(master id, master key material)`; new entries and heads
    /// are sealed under those of `active_master`.
    pub fn derive(active_master: &str, masters: &[(&str, &[u8])]) -> Result<Self, AuditKeyError> {
        let mut macs = BTreeMap::new();
        let mut signers = BTreeMap::new();
        for (id, material) in masters {
            let failed = || AuditKeyError::Derivation((*id).to_owned());
            let prk = Salt::new(HKDF_SHA256, SALT).extract(material);
            let mac: hmac::Key = prk
                .expand(&[MAC_LABEL], hmac::HMAC_SHA256)
                .map_err(|_| failed())?
                .into();
            let mut seed = Zeroizing::new([0u8; 32]);
            prk.expand(&[HEAD_LABEL], SeedLen)
                .and_then(|okm| okm.fill(seed.as_mut()))
                .map_err(|_| failed())?;
            let signer =
                Ed25519KeyPair::from_seed_unchecked(seed.as_ref()).map_err(|_| failed())?;
            macs.insert(Self::mac_id_of(id), mac);
            signers.insert(Self::head_id_of(id), signer);
        }
        let Some(active_mac) = macs.get(&Self::mac_id_of(active_master)).cloned() else {
            return Err(AuditKeyError::MissingActive(active_master.to_owned()));
        };
        Ok(Self {
            active_master: active_master.to_owned(),
            active_mac,
            macs,
            signers,
        })
    }

    fn mac_id_of(master: &str) -> String {
        format!("{master}:audit-mac-v1")
    }

    fn head_id_of(master: &str) -> String {
        format!("{master}:audit-head-v1")
    }

    /// The id of the key that seals new entries.
    pub fn active_mac_id(&self) -> String {
        Self::mac_id_of(&self.active_master)
    }

    /// The id of the key that signs exported heads.
    pub fn active_head_id(&self) -> String {
        Self::head_id_of(&self.active_master)
    }

    /// The hex MAC of `content` under the active key.
    pub(super) fn mac_hex(&self, content: &[u8]) -> String {
        hex::encode(hmac::sign(&self.active_mac, content).as_ref())
    }

    /// Whether `mac_hex` is the MAC of `content` under `key_id`: `None` when the key is unknown.
    pub(super) fn mac_matches(&self, key_id: &str, content: &[u8], mac_hex: &str) -> Option<bool> {
        let key = self.macs.get(key_id)?;
        let Ok(tag) = hex::decode(mac_hex) else {
            return Some(false);
        };
        // Constant-time comparison.
        Some(hmac::verify(key, content, &tag).is_ok())
    }

    /// Signs `message` with the active head key: (key id, signature).
    pub(super) fn sign_head(&self, message: &[u8]) -> Option<(String, Vec<u8>)> {
        let id = self.active_head_id();
        let signer = self.signers.get(&id)?;
        Some((id, signer.sign(message).as_ref().to_vec()))
    }

    /// The raw Ed25519 public key of a head key, to pin it or check a head elsewhere.
    pub fn head_public_key(&self, key_id: &str) -> Option<Vec<u8>> {
        let signer = self.signers.get(key_id)?;
        Some(signer.public_key().as_ref().to_vec())
    }

    /// Whether `signature` over `message` is by the head key `key_id`: `None` when unknown.
    pub(super) fn head_signature_valid(
        &self,
        key_id: &str,
        message: &[u8],
        signature: &[u8],
    ) -> Option<bool> {
        let public = self.head_public_key(key_id)?;
        let key = UnparsedPublicKey::new(&signature::ED25519, public);
        Some(key.verify(message, signature).is_ok())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn two_masters(active: &str) -> AuditKeys {
        AuditKeys::derive(active, &[("mk1", &[1; 32]), ("mk2", &[2; 32])]).unwrap()
    }

    #[test]
    fn keys_differ_per_master_and_purpose() {
        let keys = two_masters("mk1");
        let mac1 = keys.mac_hex(b"x");
        assert!(keys.mac_matches("mk1:audit-mac-v1", b"x", &mac1).unwrap());
        assert!(!keys.mac_matches("mk2:audit-mac-v1", b"x", &mac1).unwrap());
        assert!(!keys.mac_matches("mk1:audit-mac-v1", b"y", &mac1).unwrap());
        assert_eq!(
            keys.mac_matches("mk1", b"x", &mac1),
            None,
            "not an audit id"
        );
        // The MAC key is not the master key itself: an HMAC under the raw material differs.
        let raw = hmac::Key::new(hmac::HMAC_SHA256, &[1; 32]);
        assert_ne!(mac1, hex::encode(hmac::sign(&raw, b"x").as_ref()));
    }

    #[test]
    fn a_rotated_keyring_seals_with_the_new_key_and_still_checks_the_old() {
        let old = two_masters("mk1");
        let new = two_masters("mk2");
        assert_eq!(new.active_mac_id(), "mk2:audit-mac-v1");
        let mac = old.mac_hex(b"entry");
        assert_eq!(
            new.mac_matches("mk1:audit-mac-v1", b"entry", &mac),
            Some(true)
        );
        let (id, signature) = old.sign_head(b"head").unwrap();
        assert_eq!(id, "mk1:audit-head-v1");
        assert_eq!(
            new.head_signature_valid(&id, b"head", &signature),
            Some(true)
        );
        assert_eq!(
            new.head_signature_valid(&id, b"other", &signature),
            Some(false)
        );
    }

    #[test]
    fn refuses_a_missing_active_key() {
        let error = AuditKeys::derive("mk9", &[("mk1", &[1; 32])]).unwrap_err();
        assert_eq!(error, AuditKeyError::MissingActive("mk9".into()));
    }
}
