//! Which policy the engine runs: the configured one (the file, or the shipped default) until a
//! version is published, then the published version with the highest publication number. Every
//! process checks the store for a newer publication on its refresh pass, so several `serve`
//! processes on one database all end up with the same policy.

use super::{Cursor, Risk};
use crate::ErrorCode;
use crate::error::{AppError, AppResult};
use crate::ports::{PolicyVersion, Store};
use portcullis_engine::Policy;
use std::sync::Arc;

/// The policy in force, as text, and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InForce {
    /// The publication in force; 0: the configured policy (nothing published).
    pub publication: i64,
    /// Its version; `None` for the configured policy.
    pub version: Option<i64>,
    /// The policy file (for the configured one, written back from the parsed policy).
    pub text: Arc<str>,
}

impl InForce {
    pub(super) fn configured(policy: &Policy) -> Self {
        Self {
            publication: 0,
            version: None,
            text: policy.to_toml().into(),
        }
    }
}

/// The published version in force, parsed; `None` when nothing is published. A published
/// version that no longer parses (a feature it names was removed by an upgrade) is an error:
/// the service does not fall back to another policy on its own.
pub(crate) async fn published(store: &dyn Store) -> AppResult<Option<(Policy, InForce)>> {
    let Some(version) = store.published_policy().await? else {
        return Ok(None);
    };
    let policy = parse_published(&version)?;
    Ok(Some((policy, in_force_of(&version))))
}

fn parse_published(version: &PolicyVersion) -> AppResult<Policy> {
    Policy::parse(&version.text).map_err(|e| {
        AppError::Internal(format!(
            "published risk policy version {} does not load: {e}",
            version.version
        ))
    })
}

fn in_force_of(version: &PolicyVersion) -> InForce {
    InForce {
        publication: version.publication.unwrap_or(0),
        version: Some(version.version),
        text: version.text.as_str().into(),
    }
}

impl Risk {
    /// The policy in force.
    pub async fn in_force(&self) -> InForce {
        self.cursor.read().await.in_force.clone()
    }

    /// Puts a published version in force unless a later publication already is (two processes
    /// publishing, or a refresh racing a publication, never move the policy back).
    /// In a partitioned deployment the version goes on the event stream first, for every
    /// partition to put in force at its position; if the stream does not take it, it is not
    /// put in force here either, so every process's refresh pass tries again.
    pub(crate) async fn put_published(&self, version: &PolicyVersion) -> AppResult<bool> {
        let policy = parse_published(version)?;
        let in_force = in_force_of(version);
        if self.partitioned()
            && in_force.publication > self.cursor.read().await.in_force.publication
        {
            let control = crate::partitions::Control::Policy {
                publication: in_force.publication,
                version: in_force.version,
                text: version.text.clone(),
            };
            let what = format!(
                "version {} is published (publication {}) but not in force yet; every node's refresh pass puts it on the stream again until it takes it",
                version.version, in_force.publication
            );
            self.announce(&control, &what).await?;
        }
        let mut cursor = self.cursor.write().await;
        Ok(install(&mut cursor, policy, in_force))
    }

    /// Puts the newest publication in force if another process published since; `true` when
    /// the policy changed. One cheap query when nothing was published.
    pub async fn refresh_policy(&self) -> AppResult<bool> {
        let latest = self.store.latest_publication().await?;
        if latest <= self.cursor.read().await.in_force.publication {
            return Ok(false);
        }
        match self.store.published_policy().await? {
            Some(version) => self.put_published(&version).await,
            None => Ok(false),
        }
    }

    /// Whether a published version is in force: then the configured file is only history.
    pub(super) async fn refuse_when_published(&self) -> AppResult<()> {
        if self.store.latest_publication().await? > 0 {
            return Err(published_in_force());
        }
        Ok(())
    }
}

/// The refusal of a reload of the configured file once a version is published.
pub(super) fn published_in_force() -> AppError {
    AppError::invalid(
        ErrorCode::PolicyVersionInForce,
        "a published policy version is in force: publish a new version (or roll back) instead of reloading the file",
    )
}

/// Swaps the engine's policy (its state stays) when `in_force` is a later publication.
fn install(cursor: &mut Cursor, policy: Policy, in_force: InForce) -> bool {
    if in_force.publication <= cursor.in_force.publication {
        return false;
    }
    tracing::info!(
        version = in_force.version,
        publication = in_force.publication,
        rules = policy.rules.len(),
        "risk policy version put in force"
    );
    cursor.engine.set_policy(policy);
    cursor.in_force = in_force;
    true
}
