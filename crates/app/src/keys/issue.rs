//! Issuing a key: a new one (its API key and HMAC secret generated here, or an Ed25519 public
//! key checked) or one imported from the exchange's own key store, each validated into its
//! terms and built into its change (row, sealed secret, audit entry, `api_key.created` event),
//! left uncommitted for the guard to add its terms and announcement.

use super::terms::KeyTerms;
use super::{
    GENERATED_TOKEN_LEN, ImportedKey, IssuedKey, KeyAuthority, NewKey, key_details, key_target,
};
use crate::ErrorCode;
use crate::access::{AccountAccess, Actor};
use crate::changes::Change;
use crate::error::{AppError, AppResult};
use crate::ports::Write;
use crate::random;
use portcullis_core::events::{Effective, EventBody, EventContext, StepUp};
use portcullis_core::key::{ApiKey, KeyAlgorithm};
use portcullis_core::operator::Permission;
use portcullis_core::secret::Secret;
use portcullis_core::signing::Ed25519PublicKey;
use portcullis_core::time::UnixMillis;

impl KeyAuthority {
    /// Validates a new key and builds its change (row, sealed secret, audit entry, event),
    /// uncommitted: the guard adds its terms and announcement, then commits it.
    pub(crate) async fn create_change(
        &self,
        actor: &Actor,
        request: NewKey,
        now: UnixMillis,
    ) -> AppResult<(Change, IssuedKey)> {
        let access = actor.access_account(Permission::ManageKeys, &request.account)?;
        self.account_exists(&request.account).await?;
        let public_key = match (request.algorithm, request.public_key.as_deref()) {
            (KeyAlgorithm::Ed25519, Some(text)) => Some(
                Ed25519PublicKey::parse(text)
                    .map_err(|e| AppError::invalid(ErrorCode::InvalidPublicKey, e.to_string()))?,
            ),
            (KeyAlgorithm::Ed25519, None) => {
                return Err(AppError::invalid(
                    ErrorCode::InvalidPublicKey,
                    "an Ed25519 key needs `public_key`",
                ));
            }
            (KeyAlgorithm::HmacSha256, Some(_)) => {
                return Err(AppError::invalid(
                    ErrorCode::InvalidPublicKey,
                    "an HMAC key takes no `public_key`; its secret is generated",
                ));
            }
            (KeyAlgorithm::HmacSha256, None) => None,
        };
        let terms = KeyTerms {
            account: request.account,
            label: request.label,
            scopes: request.scopes,
            ip_allowlist: request.ip_allowlist,
            expires_at: request.expires_at,
        };
        let api_key = random::alphanumeric(GENERATED_TOKEN_LEN)?;
        let mut key = terms.into_key(api_key, request.algorithm, now)?;
        key.public_key = public_key;
        let secret = match key.algorithm {
            KeyAlgorithm::HmacSha256 => Some(Secret::new(
                random::alphanumeric(GENERATED_TOKEN_LEN)?.into_bytes(),
            )),
            KeyAlgorithm::Ed25519 => None,
        };
        let origin = (request.step_up, request.ctx);
        let change = self.issue(
            &access,
            &key,
            secret.as_ref(),
            "api_key.created",
            origin,
            now,
        )?;
        Ok((change, IssuedKey { key, secret }))
    }

    /// Validates an imported key and builds its change, uncommitted (see `create_change`).
    pub(crate) async fn import_change(
        &self,
        actor: &Actor,
        request: ImportedKey,
        now: UnixMillis,
    ) -> AppResult<(Change, ApiKey)> {
        let access = actor.access_account(Permission::ImportKeys, &request.account)?;
        self.account_exists(&request.account).await?;
        if !(16..=128).contains(&request.api_key.len())
            || !request.api_key.bytes().all(|b| b.is_ascii_graphic())
        {
            return Err(AppError::invalid(
                ErrorCode::InvalidApiKey,
                "an imported API key must be 16 to 128 printable ASCII characters",
            ));
        }
        if !(16..=512).contains(&request.secret.len())
            || !request
                .secret
                .expose()
                .iter()
                .all(|b| *b == b' ' || b.is_ascii_graphic())
        {
            return Err(AppError::invalid(
                ErrorCode::InvalidSecret,
                "an imported secret must be 16 to 512 printable ASCII characters",
            ));
        }
        let terms = KeyTerms {
            account: request.account,
            label: request.label,
            scopes: request.scopes,
            ip_allowlist: request.ip_allowlist,
            expires_at: request.expires_at,
        };
        let key = terms.into_key(request.api_key, KeyAlgorithm::HmacSha256, now)?;
        let origin = (StepUp::None, EventContext::default());
        let secret = Some(&request.secret);
        let change = self.issue(&access, &key, secret, "api_key.imported", origin, now)?;
        Ok((change, key))
    }

    /// The change that stores a new key (and its sealed secret) with its audit entry and
    /// `api_key.created` event.
    fn issue(
        &self,
        access: &AccountAccess<'_>,
        key: &ApiKey,
        secret: Option<&Secret>,
        action: &str,
        (step_up, ctx): (StepUp, EventContext),
        now: UnixMillis,
    ) -> AppResult<Change> {
        access.covers(&key.account)?;
        let mut change = Change::new(access, now).write(Write::InsertKey(key.clone()));
        if let Some(secret) = secret {
            let sealed = self.keyring.seal(&key.key_id, 1, secret, now)?;
            change = change.write(Write::InsertSecret(sealed));
        }
        change
            .audit(action, key_target(key), key_details(key))
            .key_event(access, created_event(key, step_up), ctx)
    }
}

fn created_event(key: &ApiKey, step_up: StepUp) -> EventBody {
    EventBody::ApiKeyCreated {
        key_id: key.key_id.clone(),
        scopes: key.scopes,
        ip_allowlist: key.ip_allowlist.clone(),
        step_up,
        effective: Effective::Now,
    }
}
