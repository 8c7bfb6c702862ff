//! Verification against the replay guard every node shares (a setting, for gateways that
//! cannot send one key's requests to one node). The node's own checks run first, its own
//! replay guard included; a request they accept must then be new to the shared guard too,
//! recorded for as long as its signature could be accepted. When the shared guard cannot
//! answer, the request is refused (`replay_guard_unavailable`): fail closed.

use super::KeyAuthority;
use crate::ErrorCode;
use crate::access::Actor;
use crate::error::{AppError, AppResult};
use crate::ports::SharedReplayGuard;
use crate::verifier::{CachedKey, VerifyRequest};
use aws_lc_rs::digest;
use portcullis_core::signing::Freshness;
use portcullis_core::verify::Rejection;
use std::sync::Arc;

/// How long past its window a signature stays recorded (the clocks of the nodes may differ).
const MARGIN_MS: i64 = 2_000;

impl KeyAuthority {
    /// Uses `guard` as the replay guard every node shares.
    pub fn with_shared_replay(mut self, guard: Arc<dyn SharedReplayGuard>) -> Self {
        self.shared_replay = Some(guard);
        self
    }

    /// Whether verifications go through a shared replay guard.
    pub fn has_shared_replay(&self) -> bool {
        self.shared_replay.is_some()
    }

    /// Verifies a request on this node, then, when accepted and a shared guard is set, against
    /// the shared guard: a signature another node accepted first is refused as `replayed`.
    pub async fn verify_shared(
        &self,
        actor: &Actor,
        request: &VerifyRequest<'_>,
    ) -> AppResult<Result<Arc<CachedKey>, Rejection>> {
        let verdict = self.verify_request_with(actor, request, |verdict| verdict.cloned())?;
        let (Ok(key), Some(shared)) = (&verdict, &self.shared_replay) else {
            return Ok(verdict);
        };
        // The payload passed the node's checks, so its freshness reads.
        let expires_at = Freshness::from_payload(request.payload)
            .map_err(|e| AppError::Internal(format!("freshness after acceptance: {e}")))?
            .expires_at_ms();
        let ttl_ms = (expires_at - self.clock.now().as_millis()).max(0) + MARGIN_MS;
        let recorded = shared
            .first_use(&fingerprint(request), u64::try_from(ttl_ms).unwrap_or(1))
            .await;
        match recorded {
            Ok(true) => Ok(verdict),
            Ok(false) => {
                self.verifier
                    .count_rejection(Some(key), request.ip, Rejection::Replayed);
                Ok(Err(Rejection::Replayed))
            }
            Err(error) => {
                tracing::warn!(%error, "the shared replay guard did not answer; request refused");
                Err(AppError::invalid(
                    ErrorCode::ReplayGuardUnavailable,
                    "the shared replay guard cannot be reached; the request is refused",
                ))
            }
        }
    }
}

/// The shared guard's key for a signature: a digest of the API key and the signature (the
/// node's own fingerprints are salted per process, so they cannot be shared).
fn fingerprint(request: &VerifyRequest<'_>) -> String {
    let mut text = String::with_capacity(request.api_key.len() + request.signature.len() + 1);
    text.push_str(request.api_key);
    text.push('\n');
    text.push_str(request.signature);
    let hash = digest::digest(&digest::SHA256, text.as_bytes());
    format!("portcullis:replay:{}", hex::encode(hash.as_ref()))
}
