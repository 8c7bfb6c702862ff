//! The in-memory verifier: every key's configuration and signing material, ready to check a
//! signed request in well under a microsecond without touching storage.
//!
//! The key authority keeps it current: every change it commits is applied here at once, and a
//! periodic refresh picks up changes committed by other processes sharing the database. Uses
//! are recorded in memory and written back in batches (see [`Verifier::pending_usage`]).

use parking_lot::{Mutex, RwLock};
use portcullis_core::key::{ApiKey, IdlePolicy};
use portcullis_core::replay::{Fingerprint, FingerprintSeed, KeySalt, ReplayGuard, TableLayout};
use portcullis_core::scope::Scope;
use portcullis_core::signing::{Freshness, PayloadError};
use portcullis_core::time::UnixMillis;
use portcullis_core::verify::{Rejection, SignedRequest, SigningMaterial, VerifiableKey};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use crate::ports::KeyUsage;

mod prefetch;

/// Replay guards are sharded so concurrent verifications rarely wait on each other, and so that
/// a guard's table, rebuilt as it fills and once a minute, never copies more than a sliver of
/// all entries at once: at 60,000 verifications a second with 60-second windows the guards hold
/// millions of entries, and one table holding a 32nd of them took milliseconds to grow, a pause
/// every request in flight waited through. (The fingerprint's low byte picks the shard.)
const REPLAY_SHARDS: usize = 256;
/// Distinct client IPs whose failures are counted one by one; beyond this they are pooled.
const MAX_TRACKED_FAILING_IPS: usize = 10_000;

/// One shard of the replay guard, with the acceptances counted under its lock (a counter of
/// its own would cost every verification one more atomic write, on a line all cores share).
#[derive(Debug, Default)]
struct ReplayShard {
    guard: ReplayGuard,
    accepted: u64,
}

/// A replay shard behind its lock, beside where its table was when last seen: read without the
/// lock, that is enough to prefetch a fingerprint's slot while the signature is computed. One
/// cache line, so that a verification touches one line to find its slot and shards never share
/// one.
#[derive(Debug, Default)]
#[repr(align(64))]
struct ReplayCell {
    shard: Mutex<ReplayShard>,
    /// A [`TableLayout`]'s bits.
    table: AtomicU64,
}

const _: () = assert!(
    std::mem::size_of::<ReplayCell>() == 64,
    "a replay cell is one cache line"
);

impl ReplayCell {
    /// Starts loading the slot where `fingerprint`'s probe will begin.
    fn prefetch(&self, fingerprint: Fingerprint) {
        let layout = TableLayout::from_bits(self.table.load(Ordering::Relaxed));
        prefetch::prefetch(layout.probe_address(fingerprint));
    }

    /// Whether `fingerprint` is used for the first time; counts it as an acceptance when
    /// `accepted` too.
    fn first_use(
        &self,
        fingerprint: Fingerprint,
        expires_at_ms: i64,
        now_ms: i64,
        accepted: bool,
    ) -> bool {
        let mut shard = self.shard.lock();
        let first = shard.guard.first_use(fingerprint, expires_at_ms, now_ms);
        shard.accepted += u64::from(first && accepted);
        // A plain store to a line this core holds already: as cheap to keep as to read.
        self.table
            .store(shard.guard.layout().to_bits(), Ordering::Relaxed);
        first
    }
}

/// A gateway's question: may this signed request pass?
#[derive(Debug, Clone, Copy)]
pub struct VerifyRequest<'a> {
    pub api_key: &'a str,
    pub signature: &'a str,
    pub payload: &'a str,
    pub ip: IpAddr,
    pub scope: Scope,
}

/// A key in the verifier, with what it learned since it was loaded.
#[derive(Debug)]
pub struct CachedKey {
    pub verifiable: VerifiableKey,
    /// Separates this key's replay fingerprints from every other key's.
    replay_salt: KeySalt,
    last_ip: Mutex<Option<IpAddr>>,
    flushed_use_ms: AtomicI64,
    failures: AtomicU64,
}

impl CachedKey {
    pub fn key(&self) -> &ApiKey {
        &self.verifiable.key
    }

    /// The address of the latest accepted use known to this process.
    pub fn last_ip(&self) -> Option<IpAddr> {
        *self.last_ip.lock()
    }
}

/// The answer to a well-formed request.
#[derive(Debug, Clone)]
pub enum VerifyOutcome {
    Accepted(Arc<CachedKey>),
    Rejected(Rejection),
}

/// Counters of verification outcomes, for metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyStats {
    pub accepted: u64,
    pub malformed: u64,
    pub rejected: Vec<(Rejection, u64)>,
    /// Keys with failures, most failures first.
    pub failures_by_key: Vec<(String, u64)>,
    /// Client IPs with failures, most failures first; `None` pools untracked IPs.
    pub failures_by_ip: Vec<(Option<IpAddr>, u64)>,
}

/// See the module documentation.
#[derive(Debug)]
pub struct Verifier {
    keys: RwLock<HashMap<String, Arc<CachedKey>, foldhash::fast::RandomState>>,
    replay: Vec<ReplayCell>,
    seed: FingerprintSeed,
    idle_policy: IdlePolicy,
    malformed: AtomicU64,
    rejected: [AtomicU64; Rejection::ALL.len()],
    failing_ips: Mutex<HashMap<Option<IpAddr>, u64>>,
    change_seq: AtomicI64,
}

impl Verifier {
    /// `seed` must be random per process (it keys the replay fingerprints).
    pub fn new(idle_policy: IdlePolicy, seed: u64) -> Self {
        Self {
            keys: RwLock::new(HashMap::default()),
            replay: (0..REPLAY_SHARDS).map(|_| ReplayCell::default()).collect(),
            seed: FingerprintSeed::new(seed),
            idle_policy,
            malformed: AtomicU64::new(0),
            rejected: std::array::from_fn(|_| AtomicU64::new(0)),
            failing_ips: Mutex::new(HashMap::new()),
            change_seq: AtomicI64::new(0),
        }
    }

    pub fn idle_policy(&self) -> IdlePolicy {
        self.idle_policy
    }

    /// Checks one request. A payload without usable freshness parameters is an error (the
    /// caller is broken); everything else is an outcome.
    pub fn verify(
        &self,
        request: &VerifyRequest<'_>,
        now: UnixMillis,
    ) -> Result<VerifyOutcome, PayloadError> {
        self.verify_with(request, now, |verdict| match verdict {
            Ok(cached) => VerifyOutcome::Accepted(Arc::clone(cached)),
            Err(reason) => VerifyOutcome::Rejected(reason),
        })
    }

    /// [`Verifier::verify`], handing the verdict to `answer` while the key is still borrowed
    /// from the index: a caller that only reads the key (to write its answer) saves taking and
    /// dropping a reference to it, two atomic writes per verification. `answer` runs under
    /// the index's read lock, so it must not call back into the verifier.
    pub fn verify_with<R>(
        &self,
        request: &VerifyRequest<'_>,
        now: UnixMillis,
        answer: impl FnOnce(Result<&Arc<CachedKey>, Rejection>) -> R,
    ) -> Result<R, PayloadError> {
        let freshness = Freshness::from_payload(request.payload).inspect_err(|_| {
            self.malformed.fetch_add(1, Ordering::Relaxed);
        })?;
        let keys = self.keys.read();
        let Some(cached) = keys.get(request.api_key) else {
            drop(keys);
            self.reject(None, request.ip, Rejection::UnknownKey);
            return Ok(answer(Err(Rejection::UnknownKey)));
        };
        let verdict = self.check(cached, request, freshness, now);
        if let Err(reason) = verdict {
            self.reject(Some(cached), request.ip, reason);
        }
        Ok(answer(verdict.map(|()| cached)))
    }

    /// Every check of one request against its key, and what an acceptance teaches the key.
    fn check(
        &self,
        cached: &CachedKey,
        request: &VerifyRequest<'_>,
        freshness: Freshness,
        now: UnixMillis,
    ) -> Result<(), Rejection> {
        let signed = SignedRequest {
            signature: request.signature,
            payload: request.payload,
            ip: request.ip,
            scope: request.scope,
        };
        let salt = cached.replay_salt;
        let previous_use = cached.verifiable.last_used_at();
        // The fingerprint's low byte picks the shard: a guard keeps only the other 56 bits.
        let cell = |fingerprint: Fingerprint| {
            &self.replay[usize::from(fingerprint.to_le_bytes()[0]) % REPLAY_SHARDS]
        };
        cached.verifiable.verify_prepared(
            &signed,
            freshness,
            now,
            self.idle_policy,
            |signature| {
                let fingerprint = salt.fingerprint(signature);
                cell(fingerprint).prefetch(fingerprint);
            },
            |signature, expires_at_ms, passes_other_checks| {
                let fingerprint = salt.fingerprint(signature);
                cell(fingerprint).first_use(
                    fingerprint,
                    expires_at_ms,
                    now.as_millis(),
                    passes_other_checks,
                )
            },
        )?;
        // The last-used IP is kept per second: busy keys skip the lock.
        if previous_use.is_none_or(|at| at.as_millis() / 1000 < now.as_millis() / 1000) {
            *cached.last_ip.lock() = Some(request.ip);
        }
        Ok(())
    }

    /// Counts a refusal made after the verifier's own checks (the shared replay guard's).
    pub(crate) fn count_rejection(&self, key: Option<&CachedKey>, ip: IpAddr, reason: Rejection) {
        self.reject(key, ip, reason);
    }

    /// Counts a refusal.
    fn reject(&self, key: Option<&CachedKey>, ip: IpAddr, reason: Rejection) {
        self.rejected[reason as usize].fetch_add(1, Ordering::Relaxed);
        if let Some(key) = key {
            key.failures.fetch_add(1, Ordering::Relaxed);
        }
        let mut ips = self.failing_ips.lock();
        let slot = if ips.contains_key(&Some(ip)) || ips.len() < MAX_TRACKED_FAILING_IPS {
            Some(ip)
        } else {
            None
        };
        *ips.entry(slot).or_insert(0) += 1;
    }

    /// Installs or replaces a key (after a change, or when loading).
    pub fn upsert(&self, key: ApiKey, material: SigningMaterial) {
        let api_key = key.api_key.clone();
        let mut keys = self.keys.write();
        let previous = keys.get(&api_key).cloned();
        let verifiable = VerifiableKey::new(key, material);
        let cached = CachedKey {
            flushed_use_ms: AtomicI64::new(
                verifiable
                    .key
                    .last_used_at
                    .map_or(i64::MIN, UnixMillis::as_millis),
            ),
            replay_salt: self.seed.key_salt(&verifiable.key.key_id),
            last_ip: Mutex::new(verifiable.key.last_used_ip),
            failures: AtomicU64::new(0),
            verifiable,
        };
        if let Some(previous) = previous {
            // Keep what this process learned and has not yet written back.
            if let Some(used) = previous.verifiable.last_used_at() {
                cached.verifiable.note_use(used);
            }
            if let Some(ip) = *previous.last_ip.lock() {
                *cached.last_ip.lock() = Some(ip);
            }
            cached
                .failures
                .store(previous.failures.load(Ordering::Relaxed), Ordering::Relaxed);
        }
        keys.insert(api_key, Arc::new(cached));
    }

    /// The cached key with this public identifier.
    pub fn get(&self, api_key: &str) -> Option<Arc<CachedKey>> {
        self.keys.read().get(api_key).cloned()
    }

    /// Every cached key (for sweeps).
    pub fn snapshot(&self) -> Vec<Arc<CachedKey>> {
        self.keys.read().values().cloned().collect()
    }

    pub fn len(&self) -> usize {
        self.keys.read().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The storage change number this verifier has caught up to.
    pub fn change_seq(&self) -> i64 {
        self.change_seq.load(Ordering::Acquire)
    }

    pub fn advance_change_seq(&self, seq: i64) {
        self.change_seq.fetch_max(seq, Ordering::AcqRel);
    }

    /// Uses not yet written to storage; marks them as written (call [`Verifier::usage_failed`]
    /// with them if writing fails).
    pub fn pending_usage(&self) -> Vec<KeyUsage> {
        let keys = self.keys.read();
        keys.values()
            .filter_map(|cached| {
                let used = cached.verifiable.last_used_at()?;
                let flushed = cached
                    .flushed_use_ms
                    .swap(used.as_millis(), Ordering::AcqRel);
                (used.as_millis() > flushed).then(|| KeyUsage {
                    key_id: cached.key().key_id.clone(),
                    at: used,
                    ip: *cached.last_ip.lock(),
                })
            })
            .collect()
    }

    /// Puts usage back in the queue after a failed write.
    pub fn usage_failed(&self, usage: &[KeyUsage]) {
        let keys = self.keys.read();
        for cached in keys.values() {
            if usage.iter().any(|u| u.key_id == cached.key().key_id) {
                cached.flushed_use_ms.store(i64::MIN, Ordering::Release);
            }
        }
    }

    pub fn stats(&self) -> VerifyStats {
        let mut failures_by_key: Vec<_> = self
            .keys
            .read()
            .values()
            .filter_map(|cached| {
                let failures = cached.failures.load(Ordering::Relaxed);
                (failures > 0).then(|| (cached.key().key_id.clone(), failures))
            })
            .collect();
        failures_by_key.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        let mut failures_by_ip: Vec<_> = self
            .failing_ips
            .lock()
            .iter()
            .map(|(k, v)| (*k, *v))
            .collect();
        failures_by_ip.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        VerifyStats {
            accepted: self
                .replay
                .iter()
                .map(|cell| cell.shard.lock().accepted)
                .sum(),
            malformed: self.malformed.load(Ordering::Relaxed),
            rejected: Rejection::ALL
                .iter()
                .map(|r| (*r, self.rejected[*r as usize].load(Ordering::Relaxed)))
                .collect(),
            failures_by_key,
            failures_by_ip,
        }
    }
}
