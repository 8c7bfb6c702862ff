//! Keeping the verifier in step with storage: installing a key after a change, following
//! changes committed by other processes, and writing uses back.

use crate::error::{AppError, AppResult};
use crate::keyring::MasterKeyring;
use crate::ports::Store;
use crate::verifier::Verifier;
use portcullis_core::key::{ApiKey, KeyAlgorithm};
use portcullis_core::signing::HmacSha256Key;
use portcullis_core::time::UnixMillis;
use portcullis_core::verify::{HmacGeneration, SigningMaterial};

/// Borrowed pieces of the key authority that move keys from storage into the verifier.
#[derive(Debug)]
pub(crate) struct KeyLoader<'a> {
    pub store: &'a dyn Store,
    pub keyring: &'a MasterKeyring,
    pub verifier: &'a Verifier,
}

impl KeyLoader<'_> {
    /// Loads one key as stored now into the verifier.
    pub async fn install(&self, key_id: &str, now: UnixMillis) -> AppResult<()> {
        let key = self
            .store
            .key(key_id)
            .await?
            .ok_or_else(|| AppError::NotFound(format!("key {key_id}")))?;
        let material = self.material(&key, now).await?;
        self.verifier.upsert(key, material);
        Ok(())
    }

    /// Installs every key changed since the verifier last caught up. Returns how many. Change
    /// numbers grow in commit order (the store's contract), so nothing committed is skipped.
    pub async fn refresh(&self, now: UnixMillis) -> AppResult<usize> {
        let (keys, newest) = self
            .store
            .keys_changed_since(self.verifier.change_seq())
            .await?;
        let mut installed = 0;
        for key in keys {
            let unchanged = self
                .verifier
                .get(&key.api_key)
                .is_some_and(|cached| cached.key().version == key.version);
            if unchanged {
                continue;
            }
            let material = self.material(&key, now).await?;
            self.verifier.upsert(key, material);
            installed += 1;
        }
        self.verifier.advance_change_seq(newest);
        Ok(installed)
    }

    /// Writes uses seen since the last flush. Returns how many keys were written.
    pub async fn flush_usage(&self) -> AppResult<usize> {
        let usage = self.verifier.pending_usage();
        if usage.is_empty() {
            return Ok(0);
        }
        if let Err(error) = self.store.record_key_usage(&usage).await {
            self.verifier.usage_failed(&usage);
            return Err(error.into());
        }
        Ok(usage.len())
    }

    async fn material(&self, key: &ApiKey, now: UnixMillis) -> AppResult<SigningMaterial> {
        match key.algorithm {
            KeyAlgorithm::Ed25519 => key
                .public_key
                .clone()
                .map(SigningMaterial::Ed25519)
                .ok_or_else(|| {
                    AppError::Internal(format!("Ed25519 key {} has no public key", key.key_id))
                }),
            KeyAlgorithm::HmacSha256 => {
                let mut generations = Vec::new();
                for sealed in self.store.secrets(&key.key_id).await? {
                    if sealed.valid_until.is_some_and(|until| until <= now) {
                        continue;
                    }
                    let secret = self.keyring.open(&sealed)?;
                    generations.push(HmacGeneration {
                        key: HmacSha256Key::new(&secret),
                        valid_until: sealed.valid_until,
                    });
                }
                Ok(SigningMaterial::Hmac(generations))
            }
        }
    }
}
