//! Verification of one signed request against one key: the decision a gateway asks for on
//! every private API call.
//!
//! The checks run cheapest-first where that reveals nothing: liveness, freshness, then the
//! signature; the replay guard only ever sees requests with a valid signature (so nobody can
//! fill it with garbage), and the IP and scope checks come after the signature so that only the
//! key holder learns how the key is configured.

use crate::key::{ApiKey, IdlePolicy, KeyStatus};
use crate::scope::Scope;
use crate::signing::{
    ED25519_SIGNATURE_LEN, Ed25519PublicKey, Freshness, HMAC_SHA256_LEN, HmacSha256Key,
    decode_base64_signature, decode_hex_tag,
};
use crate::time::UnixMillis;
use std::net::IpAddr;
use std::sync::atomic::{AtomicI64, Ordering};

/// Why a signed request was refused. The strings are a stable part of the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Rejection {
    UnknownKey,
    Revoked,
    Expired,
    BadSignature,
    TimestampOutsideWindow,
    Replayed,
    IpNotAllowed,
    ScopeMissing,
}

impl Rejection {
    pub const ALL: [Rejection; 8] = [
        Rejection::UnknownKey,
        Rejection::Revoked,
        Rejection::Expired,
        Rejection::BadSignature,
        Rejection::TimestampOutsideWindow,
        Rejection::Replayed,
        Rejection::IpNotAllowed,
        Rejection::ScopeMissing,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            Rejection::UnknownKey => "unknown_key",
            Rejection::Revoked => "revoked",
            Rejection::Expired => "expired",
            Rejection::BadSignature => "bad_signature",
            Rejection::TimestampOutsideWindow => "timestamp_outside_window",
            Rejection::Replayed => "replayed",
            Rejection::IpNotAllowed => "ip_not_allowed",
            Rejection::ScopeMissing => "scope_missing",
        }
    }
}

/// One HMAC secret generation; after a rotation the previous one stays valid for an overlap.
#[derive(Debug)]
pub struct HmacGeneration {
    pub key: HmacSha256Key,
    /// `None` for the current secret; the end of the overlap for a rotated-out one.
    pub valid_until: Option<UnixMillis>,
}

/// What a signature is checked against.
#[derive(Debug)]
pub enum SigningMaterial {
    /// Current generation first.
    Hmac(Vec<HmacGeneration>),
    Ed25519(Ed25519PublicKey),
}

/// A key ready for verification: its configuration, its signing material and its most recent
/// accepted use (kept here because uses are far more frequent than stored updates, and idle
/// expiry depends on them).
#[derive(Debug)]
pub struct VerifiableKey {
    pub key: ApiKey,
    pub material: SigningMaterial,
    recent_use_ms: AtomicI64,
}

/// The parts of a gateway's request that verification needs.
#[derive(Debug, Clone, Copy)]
pub struct SignedRequest<'a> {
    pub signature: &'a str,
    pub payload: &'a str,
    pub ip: IpAddr,
    pub scope: Scope,
}

impl VerifiableKey {
    pub fn new(key: ApiKey, material: SigningMaterial) -> Self {
        let recent = key.last_used_at.map_or(i64::MIN, UnixMillis::as_millis);
        Self {
            key,
            material,
            recent_use_ms: AtomicI64::new(recent),
        }
    }

    /// The latest accepted use, from storage or from this process.
    pub fn last_used_at(&self) -> Option<UnixMillis> {
        let ms = self.recent_use_ms.load(Ordering::Relaxed);
        (ms != i64::MIN).then_some(UnixMillis(ms))
    }

    /// Records a use (never moves the latest use back). A busy key is used many times per
    /// clock tick: reading first skips the read-modify-write, which costs far more, when the
    /// latest use is already this recent.
    pub fn note_use(&self, at: UnixMillis) {
        if self.recent_use_ms.load(Ordering::Relaxed) < at.as_millis() {
            self.recent_use_ms
                .fetch_max(at.as_millis(), Ordering::Relaxed);
        }
    }

    /// Liveness, counting uses this process has seen but not yet stored.
    pub fn status(&self, now: UnixMillis, idle_policy: IdlePolicy) -> KeyStatus {
        self.key
            .status_with_last_use(now, idle_policy, self.last_used_at())
    }

    /// Runs every check. `first_use` is the replay guard: for a valid signature only, it is
    /// asked whether the signature is being used for the first time, with the decoded
    /// signature, the end of its window, and whether the request passes the checks that come
    /// after the guard (IP allow-list, scope), so that the guard's owner can count acceptances
    /// under the lock it already holds. It is asked whatever that last answer: a signature
    /// captured from a refused address is burned all the same.
    pub fn verify(
        &self,
        request: &SignedRequest<'_>,
        freshness: Freshness,
        now: UnixMillis,
        idle_policy: IdlePolicy,
        first_use: impl FnOnce(&[u8], i64, bool) -> bool,
    ) -> Result<(), Rejection> {
        self.verify_prepared(request, freshness, now, idle_policy, |_| {}, first_use)
    }

    /// [`VerifiableKey::verify`], first showing `prepare` the decoded signature, before it is
    /// checked: a replay guard can then start loading what it will look at from memory while
    /// the signature is computed. `prepare` must change nothing: the signature may be forged.
    pub fn verify_prepared(
        &self,
        request: &SignedRequest<'_>,
        freshness: Freshness,
        now: UnixMillis,
        idle_policy: IdlePolicy,
        prepare: impl FnOnce(&[u8]),
        first_use: impl FnOnce(&[u8], i64, bool) -> bool,
    ) -> Result<(), Rejection> {
        match self.status(now, idle_policy) {
            KeyStatus::Active => {}
            KeyStatus::Revoked => return Err(Rejection::Revoked),
            KeyStatus::Expired | KeyStatus::IdleExpired => return Err(Rejection::Expired),
        }
        if !freshness.is_fresh_at(now.as_millis()) {
            return Err(Rejection::TimestampOutsideWindow);
        }
        let Some(signature) = self.decode_signature(request.signature) else {
            return Err(Rejection::BadSignature);
        };
        prepare(signature.as_bytes());
        if !self.is_valid(&signature, request.payload.as_bytes(), now) {
            return Err(Rejection::BadSignature);
        }
        // Only the key's holder gets this far, so its configuration may now be consulted.
        let refusal = if !self.key.ip_allowlist.allows(request.ip) {
            Some(Rejection::IpNotAllowed)
        } else if !self.key.scopes_at(now).contains(request.scope) {
            Some(Rejection::ScopeMissing)
        } else {
            None
        };
        if !first_use(
            signature.as_bytes(),
            freshness.expires_at_ms(),
            refusal.is_none(),
        ) {
            return Err(Rejection::Replayed);
        }
        if let Some(refusal) = refusal {
            return Err(refusal);
        }
        self.note_use(now);
        Ok(())
    }

    /// The signature decoded from its text form, as this key's algorithm writes it.
    fn decode_signature(&self, text: &str) -> Option<Decoded> {
        match &self.material {
            SigningMaterial::Hmac(_) => decode_hex_tag(text).map(Decoded::Hmac),
            SigningMaterial::Ed25519(_) => decode_base64_signature(text).map(Decoded::Ed25519),
        }
    }

    /// Whether the signature is valid for the payload (under any HMAC generation still in
    /// force, or the Ed25519 key).
    fn is_valid(&self, signature: &Decoded, payload: &[u8], now: UnixMillis) -> bool {
        match (&self.material, signature) {
            (SigningMaterial::Hmac(generations), Decoded::Hmac(tag)) => {
                generations.iter().any(|generation| {
                    generation.valid_until.is_none_or(|until| now < until)
                        && generation.key.verify_tag(payload, tag)
                })
            }
            (SigningMaterial::Ed25519(public_key), Decoded::Ed25519(raw)) => {
                public_key.verify_raw(payload, raw)
            }
            _ => false,
        }
    }
}

/// A signature decoded from its text form, on the stack.
enum Decoded {
    Hmac([u8; HMAC_SHA256_LEN]),
    Ed25519([u8; ED25519_SIGNATURE_LEN]),
}

impl Decoded {
    fn as_bytes(&self) -> &[u8] {
        match self {
            Decoded::Hmac(tag) => tag,
            Decoded::Ed25519(raw) => raw,
        }
    }
}
