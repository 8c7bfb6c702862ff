//! The seal on the control subject's messages. A control message changes what every partition
//! decides (an override that suppresses a crew's address, a policy that allows everything), and
//! the event stream's subjects are published to by more than the `serve` processes (the
//! exchange's publisher, `portcullis publish`). So a partition applies only a message sealed
//! with a key that only `serve` processes hold: an HMAC-SHA256 key derived (HKDF-SHA256, under
//! a label of its own) from each master key of the keyring, which every `serve` process of a
//! deployment shares already (they open the same sealed secrets). A message sealed under an
//! older master key still opens while that key stays in the keyring.
//!
//! A sealed message names itself (a random id) and when it was sent; what a partition has
//! applied is in its checkpoint ([`super::InForce::admit`]), so a copy of an earlier message
//! put on the stream again (to bring back an override an operator lifted) is not applied twice.

use super::Control;
use crate::error::AppError;
use aws_lc_rs::hkdf::{HKDF_SHA256, Salt};
use aws_lc_rs::hmac;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

const SALT: &[u8] = b"portcullis-control-keys";
const MAC_LABEL: &[u8] = b"portcullis-control-mac-v1";

/// A control change as sealed: the change, a random id and the sender's clock time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ControlMessage {
    pub id: String,
    /// Milliseconds since the epoch, on the sending process's clock.
    pub sent_at: i64,
    pub control: Control,
}

impl ControlMessage {
    /// `control` with a fresh random id, sent at `sent_at`.
    pub fn new(control: Control, sent_at: i64) -> Result<Self, AppError> {
        Ok(Self {
            id: crate::random::identifier("ctl")?,
            sent_at,
            control,
        })
    }
}

/// The wire form: the message's JSON as a string, the key that sealed it and the tag.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Envelope {
    key: String,
    mac: String,
    message: String,
}

/// The control keys derived from every master key of a keyring.
pub struct ControlSeal {
    active: String,
    keys: BTreeMap<String, hmac::Key>,
}

impl std::fmt::Debug for ControlSeal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ControlSeal")
            .field("active", &self.active)
            .field("keys", &self.keys.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl ControlSeal {
    /// Derives the control key of each `(master id, material)`; messages are sealed under the
    /// one of `active_master`.
    pub fn derive(active_master: &str, masters: &[(&str, &[u8])]) -> Result<Self, String> {
        let mut keys = BTreeMap::new();
        for (id, material) in masters {
            let prk = Salt::new(HKDF_SHA256, SALT).extract(material);
            let key: hmac::Key = prk
                .expand(&[MAC_LABEL], hmac::HMAC_SHA256)
                .map_err(|_| format!("deriving the control key of master key `{id}` failed"))?
                .into();
            keys.insert(key_id(id), key);
        }
        let active = key_id(active_master);
        if !keys.contains_key(&active) {
            return Err(format!(
                "the active master key `{active_master}` is not among the keys"
            ));
        }
        Ok(Self { active, keys })
    }

    /// The message as the control subject carries it.
    pub fn seal(&self, message: &ControlMessage) -> Vec<u8> {
        // A value of plain fields: serialising it cannot fail.
        let message = serde_json::to_string(message).unwrap_or_default();
        let tag = self
            .keys
            .get(&self.active)
            .map(|key| hmac::sign(key, message.as_bytes()))
            .map(|tag| BASE64.encode(tag.as_ref()))
            .unwrap_or_default();
        let envelope = Envelope {
            key: self.active.clone(),
            mac: tag,
            message,
        };
        serde_json::to_vec(&envelope).unwrap_or_default()
    }

    /// The message, if it is sealed under a key of this keyring and reads; else why not.
    pub fn open(&self, bytes: &[u8]) -> Result<ControlMessage, String> {
        let envelope: Envelope = serde_json::from_slice(bytes)
            .map_err(|e| format!("not a sealed control message: {e}"))?;
        let key = (self.keys.get(&envelope.key))
            .ok_or_else(|| format!("sealed under `{}`, a key not in the keyring", envelope.key))?;
        let tag = BASE64
            .decode(&envelope.mac)
            .map_err(|_| "its seal is not base64".to_owned())?;
        hmac::verify(key, envelope.message.as_bytes(), &tag)
            .map_err(|_| "its seal does not match: not sealed by a serve process".to_owned())?;
        serde_json::from_str(&envelope.message)
            .map_err(|e| format!("sealed, but does not read: {e}"))
    }
}

fn key_id(master: &str) -> String {
    format!("{master}:control-mac-v1")
}

#[cfg(test)]
mod tests {
    use super::{ControlMessage, ControlSeal};
    use crate::partitions::Control;

    fn seal(active: &str) -> ControlSeal {
        let (one, two) = ([1u8; 32], [2u8; 32]);
        ControlSeal::derive(active, &[("one", &one), ("two", &two)]).unwrap()
    }

    fn reload() -> ControlMessage {
        let control = Control::Policy {
            publication: 0,
            version: None,
            text: "[thresholds]\n".into(),
        };
        ControlMessage::new(control, 1_000).unwrap()
    }

    #[test]
    fn a_sealed_message_opens_under_any_key_of_the_keyring() {
        let message = reload();
        let sealed = seal("one").seal(&message);
        assert_eq!(seal("one").open(&sealed), Ok(message.clone()));
        assert_eq!(seal("two").open(&sealed), Ok(message));
        let other = ControlSeal::derive("three", &[("three", &[3u8; 32])]).unwrap();
        assert!(
            other
                .open(&sealed)
                .unwrap_err()
                .contains("not in the keyring")
        );
    }

    #[test]
    fn a_message_changed_or_unsealed_or_sealed_by_another_keyring_is_refused() {
        let seal = seal("one");
        let sealed = String::from_utf8(seal.seal(&reload())).unwrap();
        let tampered = sealed.replace("[thresholds]", "[thresholdz]");
        assert_ne!(tampered, sealed);
        assert!(
            seal.open(tampered.as_bytes())
                .unwrap_err()
                .contains("does not match")
        );
        let unsealed = serde_json::to_vec(&reload().control).unwrap();
        assert!(seal.open(&unsealed).unwrap_err().contains("not a sealed"));
        let impostor = ControlSeal::derive("one", &[("one", &[9u8; 32])]).unwrap();
        let forged = impostor.seal(&reload());
        assert!(seal.open(&forged).unwrap_err().contains("does not match"));
    }

    #[test]
    fn each_message_has_its_own_id() {
        assert_ne!(reload().id, reload().id);
        let id = reload().id;
        assert!(id.starts_with("ctl_") && id.len() == 24, "{id}");
    }
}
