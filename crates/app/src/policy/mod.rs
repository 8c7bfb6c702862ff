//! The risk policy as versions, under maker-checker: an operator with `ManagePolicy` proposes a
//! version (validated first), and it is published, put in force in the running engine, only
//! when a different operator approves it. A rollback proposes an earlier published version's
//! text again, under the same rule. Every step is audited with its operator. Reading versions,
//! validating a draft and backtesting one (`backtest`) need `ReadEvents`.

mod backtest;

pub use backtest::{BacktestOutcome, BacktestRange, DEFAULT_BACKTEST_EVENTS, MAX_BACKTEST_EVENTS};
pub use portcullis_engine::PolicyError;

use crate::ErrorCode;
use crate::access::Actor;
use crate::changes::Change;
use crate::error::{AppError, AppResult};
use crate::ports::{Clock, PolicyVersion, PolicyWrite, Store, StoreError, Write};
use crate::risk::{InForce, Risk};
use portcullis_core::operator::Permission;
use portcullis_engine::Policy;
use serde_json::json;
use std::sync::Arc;

/// The largest policy file accepted.
pub const MAX_POLICY_BYTES: usize = 256 * 1024;
/// The longest note on a proposal, in characters.
pub const MAX_NOTE_CHARS: usize = 500;
/// The most audit entries the policy's history returns.
pub const HISTORY_PAGE: u32 = 100;
/// The most versions a listing returns.
pub const VERSION_PAGE: u32 = 200;

/// A draft that loads: how many rules it has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PolicySummary {
    pub rules: usize,
    pub shadow_rules: usize,
}

/// The policy use cases.
#[derive(Debug, Clone)]
pub struct Policies {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    risk: Risk,
    /// One backtest at a time per process: each holds two engines and a core for seconds.
    backtests: Arc<tokio::sync::Semaphore>,
}

impl Policies {
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>, risk: Risk) -> Self {
        Self {
            store,
            clock,
            risk,
            backtests: Arc::new(tokio::sync::Semaphore::new(1)),
        }
    }

    /// The policy in force and where it came from.
    pub async fn in_force(&self, actor: &Actor) -> AppResult<InForce> {
        actor.require_operator(Permission::ReadEvents)?;
        Ok(self.risk.in_force().await)
    }

    /// Checks a draft as publishing would: `Ok(Err(..))` names the rule, the position inside
    /// its `when` when the parser knows it, and the reason.
    pub fn validate(
        &self,
        actor: &Actor,
        text: &str,
    ) -> AppResult<Result<PolicySummary, PolicyError>> {
        actor.require_operator(Permission::ReadEvents)?;
        Ok(parse(text).map(|policy| PolicySummary {
            rules: policy.rules.len(),
            shadow_rules: policy.rules.iter().filter(|r| r.shadow).count(),
        }))
    }

    /// Versions, newest first.
    pub async fn versions(&self, actor: &Actor) -> AppResult<Vec<PolicyVersion>> {
        actor.require_operator(Permission::ReadEvents)?;
        Ok(self.store.policy_versions(VERSION_PAGE).await?)
    }

    pub async fn version(&self, actor: &Actor, version: i64) -> AppResult<PolicyVersion> {
        actor.require_operator(Permission::ReadEvents)?;
        self.store
            .policy_version(version)
            .await?
            .ok_or_else(|| AppError::NotFound(format!("policy version {version}")))
    }

    /// The newest audit entries about the policy (proposals, rollbacks, publications), for
    /// those who may read the audit trail.
    pub async fn history(
        &self,
        actor: &Actor,
    ) -> AppResult<Vec<portcullis_core::audit::AuditEntry>> {
        actor.require_operator(Permission::ReadAudit)?;
        Ok(self.store.policy_audit(HISTORY_PAGE).await?)
    }

    /// Proposes a draft as a new version (not in force until another operator approves it).
    pub async fn propose(&self, actor: &Actor, text: &str, note: &str) -> AppResult<PolicyVersion> {
        actor.require_operator(Permission::ManagePolicy)?;
        let policy = parse(text).map_err(invalid_policy)?;
        let details = json!({ "rules": policy.rules.len(), "note": note });
        self.insert(actor, text, note, None, "policy.proposed", details)
            .await
    }

    /// Proposes an earlier published version again (a rollback); published, like any version,
    /// when a second operator approves it.
    pub async fn propose_rollback(
        &self,
        actor: &Actor,
        to: i64,
        note: &str,
    ) -> AppResult<PolicyVersion> {
        actor.require_operator(Permission::ManagePolicy)?;
        let earlier = self.version(actor, to).await?;
        if earlier.publication.is_none() {
            return Err(AppError::invalid(
                ErrorCode::InvalidPolicy,
                format!("version {to} was never published: propose it again, or approve it"),
            ));
        }
        if self.risk.in_force().await.version == Some(to) {
            return Err(AppError::Conflict(format!(
                "version {to} is the one in force"
            )));
        }
        parse(&earlier.text).map_err(invalid_policy)?;
        let details = json!({ "rollback_of": to, "note": note });
        self.insert(
            actor,
            &earlier.text,
            note,
            Some(to),
            "policy.rollback_proposed",
            details,
        )
        .await
    }

    async fn insert(
        &self,
        actor: &Actor,
        text: &str,
        note: &str,
        rollback_of: Option<i64>,
        action: &str,
        mut details: serde_json::Value,
    ) -> AppResult<PolicyVersion> {
        check_note(note)?;
        let version = PolicyVersion {
            version: self.store.latest_policy_version().await? + 1,
            text: text.to_owned(),
            note: note.trim().to_owned(),
            rollback_of,
            proposed_by: actor.id().to_owned(),
            proposed_at: self.clock.now(),
            approved_by: None,
            published_at: None,
            publication: None,
        };
        details["version"] = json!(version.version);
        let change = Change::global(actor, version.proposed_at)
            .write(Write::Policy(PolicyWrite::Propose(version.clone())))
            .audit(action, target(version.version), details);
        self.store.commit(change.into_set()).await?;
        Ok(version)
    }

    /// Approves a proposed version: a different operator than its proposer publishes it, and
    /// it is in force in this process at once (in the others at their next refresh).
    pub async fn approve(&self, actor: &Actor, number: i64) -> AppResult<PolicyVersion> {
        actor.require_operator(Permission::ManagePolicy)?;
        let proposed = self.version(actor, number).await?;
        if proposed.publication.is_some() {
            return Err(published(number));
        }
        if proposed.proposed_by == actor.id() {
            return Err(AppError::invalid(
                ErrorCode::PolicySelfApproval,
                format!("version {number} was proposed by you: a second operator must approve it"),
            ));
        }
        // Validated again: a version proposed before an upgrade may no longer load.
        parse(&proposed.text).map_err(invalid_policy)?;
        let now = self.clock.now();
        let publication = self.store.latest_publication().await? + 1;
        let details = json!({
            "version": number,
            "proposed_by": proposed.proposed_by,
            "publication": publication,
            "rollback_of": proposed.rollback_of,
        });
        let change = Change::global(actor, now)
            .write(Write::Policy(PolicyWrite::Publish {
                version: number,
                approved_by: actor.id().to_owned(),
                at: now,
                publication,
            }))
            .audit("policy.published", target(number), details);
        match self.store.commit(change.into_set()).await {
            Err(StoreError::Conflict(what)) => {
                let again = self.version(actor, number).await?;
                return Err(match again.publication {
                    Some(_) => published(number),
                    None => AppError::Conflict(format!("{what}; try again")),
                });
            }
            other => other?,
        }
        let version = self.version(actor, number).await?;
        self.risk.put_published(&version).await?;
        Ok(version)
    }
}

fn parse(text: &str) -> Result<Policy, PolicyError> {
    if text.len() > MAX_POLICY_BYTES {
        return Err(PolicyError {
            rule: "policy".into(),
            position: None,
            reason: format!("the policy is larger than {MAX_POLICY_BYTES} bytes"),
        });
    }
    Policy::parse(text)
}

fn invalid_policy(error: PolicyError) -> AppError {
    AppError::invalid(ErrorCode::InvalidPolicy, error.to_string())
}

fn published(version: i64) -> AppError {
    AppError::invalid(
        ErrorCode::PolicyPublished,
        format!("version {version} is published already: propose a rollback to publish it again"),
    )
}

fn target(version: i64) -> String {
    format!("policy:v{version}")
}

fn check_note(note: &str) -> AppResult<()> {
    if note.trim().chars().count() > MAX_NOTE_CHARS || note.chars().any(char::is_control) {
        return Err(AppError::invalid(
            ErrorCode::InvalidNote,
            format!(
                "a proposal's note is at most {MAX_NOTE_CHARS} characters, without control characters"
            ),
        ));
    }
    Ok(())
}
