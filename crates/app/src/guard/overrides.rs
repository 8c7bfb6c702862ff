//! Operators' overrides on entities of the graph: `suppress` (a known-good link, such as a
//! family's shared device: not propagated through, not a campaign signal) and `force` (counts as
//! confirmed fraud). Each is in force from when it is set until it expires or is lifted; rows
//! are kept after, because the engine replays the log with every override in force for the
//! events of its time range (so a replay decides as the service did). Setting and lifting are
//! audited; `force` needs its own permission (`ForceLinks`), marks the entity's neighbours one
//! and two hops out as a confirmation does (`portcullis_engine`'s `force`), and holds at once
//! the pending changes of the accounts those marks reach, through the same path.
//!
//! With `engine_partitions` set, the engine partitions hold the graph: each change (what it
//! lifts, what it sets) goes on the event stream's control subject before anything is stored
//! (`announce`), and every partition applies it at that position; if the stream does not take
//! it, the request fails and nothing is stored. The graph is the partitions', so whether it knows
//! the entity is not checked here.

use super::Guard;
use crate::ErrorCode;
use crate::access::Actor;
use crate::changes::Change;
use crate::error::{AppError, AppResult};
use crate::ports::{StoreError, StoredOverride, Write};
use crate::risk::{entity_kind, unknown_entity};
use portcullis_core::operator::Permission;
use portcullis_core::time::UnixMillis;
use portcullis_engine::{EntityKind, Override, OverrideMode};
use serde_json::json;

/// The longest note kept with an override.
const MAX_NOTE: usize = 500;

/// What an operator asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewOverride {
    pub action: String,
    pub expires_at: Option<UnixMillis>,
    pub note: String,
}

impl Guard {
    /// Puts an override on the entity `kind:value` (which the graph must hold); one of the same
    /// action already in force is lifted by it.
    pub async fn set_override(
        &self,
        actor: &Actor,
        kind: &str,
        value: &str,
        new: NewOverride,
    ) -> AppResult<StoredOverride> {
        let mode = mode(&new.action)?;
        actor.require_operator(permission(mode))?;
        let (kind, value) = entity(kind, value)?;
        if !self.risk.knows_entity(kind, &value).await? {
            return Err(unknown_entity(kind, &value));
        }
        let now = self.clock.now();
        if new.expires_at.is_some_and(|at| at <= now) {
            return Err(AppError::invalid(
                ErrorCode::InvalidExpiry,
                "an override's `expires_at` must be in the future",
            ));
        }
        if new.note.chars().count() > MAX_NOTE || new.note.chars().any(char::is_control) {
            return Err(AppError::invalid(
                ErrorCode::InvalidOverride,
                format!("a note is at most {MAX_NOTE} characters, without control characters"),
            ));
        }
        let stored = StoredOverride {
            id: crate::random::identifier("ov")?,
            kind: kind.as_str().to_owned(),
            value: value.clone(),
            action: new.action.clone(),
            note: new.note,
            set_by: actor.id().to_owned(),
            set_at: now,
            expires_at: new.expires_at,
            lifted_by: None,
            lifted_at: None,
        };
        let replaced = self.live_overrides(kind, &value, Some(mode)).await?;
        self.announce(&replaced, Some(&stored), now).await?;
        let mut change = Change::global(actor, now);
        for old in &replaced {
            change = change.write(lift(old, actor, now));
        }
        let details = json!({ "id": stored.id, "action": stored.action, "note": stored.note,
            "expires_at": stored.expires_at.map(UnixMillis::to_rfc3339) });
        let change = change.write(Write::PutOverride(stored.clone())).audit(
            "network.override_set",
            label(kind, &value),
            details,
        );
        if let Err(error) = self.store.commit(change.into_set()).await {
            self.undo_announced(&replaced, Some(&stored)).await;
            return Err(error.into());
        }
        self.reload_overrides().await?;
        // A force spreads as a confirmation does: the accounts it reaches have their pending
        // changes held now, with the path.
        self.hold_marked().await?;
        Ok(stored)
    }

    /// Lifts the overrides in force on `kind:value` (of one action, or both); returns them.
    pub async fn lift_override(
        &self,
        actor: &Actor,
        kind: &str,
        value: &str,
        action: Option<&str>,
    ) -> AppResult<Vec<StoredOverride>> {
        let only = action.map(mode).transpose()?;
        actor.require_operator(Permission::ReviewChanges)?;
        let (kind, value) = entity(kind, value)?;
        let live = self.live_overrides(kind, &value, only).await?;
        if live.is_empty() {
            return Err(AppError::NotFound(format!(
                "no override in force on {}",
                label(kind, &value)
            )));
        }
        let now = self.clock.now();
        for old in &live {
            actor.require_operator(permission(mode(&old.action)?))?;
        }
        self.announce(&live, None, now).await?;
        let mut change = Change::global(actor, now);
        for old in &live {
            change = change.write(lift(old, actor, now)).audit(
                "network.override_lifted",
                label(kind, &value),
                json!({ "id": old.id, "action": old.action }),
            );
        }
        let committed = self.store.commit(change.into_set()).await;
        if committed.is_err() {
            self.undo_announced(&live, None).await;
        }
        match committed {
            Err(StoreError::Conflict(e)) => return Err(AppError::Conflict(e)),
            other => other?,
        }
        self.reload_overrides().await?;
        Ok(live)
    }

    /// The overrides in force now, or every one ever set (`all`), oldest first.
    pub async fn overrides(&self, actor: &Actor, all: bool) -> AppResult<Vec<StoredOverride>> {
        actor.require_operator(Permission::ReviewChanges)?;
        let now = self.clock.now();
        let rows = self.store.overrides().await?;
        Ok(rows.into_iter().filter(|o| all || live(o, now)).collect())
    }

    /// Puts the stored overrides in force in the engine.
    pub async fn reload_overrides(&self) -> AppResult<()> {
        let rows = self.store.overrides().await?;
        let now = self.clock.now();
        self.risk.set_overrides(engine_overrides(&rows), now).await;
        Ok(())
    }

    /// In a partitioned deployment, puts on the event stream the change about to be stored:
    /// `lifted` end now, `added` is put in force. A change, not the whole list, so that another
    /// process's change made at the same moment is not undone by this one. Nothing otherwise.
    async fn announce(
        &self,
        lifted: &[StoredOverride],
        added: Option<&StoredOverride>,
        now: UnixMillis,
    ) -> AppResult<()> {
        let added = added.map(std::slice::from_ref).unwrap_or_default();
        (self.announce_change(lifted, added, now, "the override was not changed")).await
    }

    /// After a change announced but not stored: its opposite goes on the stream (what it
    /// added ends, what it lifted is put back), so the partitions hold what is stored (at
    /// worst the announced change until then, which only ever held more).
    async fn undo_announced(&self, lifted: &[StoredOverride], added: Option<&StoredOverride>) {
        let added = added.map(std::slice::from_ref).unwrap_or_default();
        let now = self.clock.now();
        let undone = self.announce_change(added, lifted, now, "the override change was not undone");
        if let Err(error) = undone.await {
            tracing::error!(%error, "an override change announced but not stored is still in force in the partitions");
        }
    }

    /// Puts one change on the stream (in a partitioned deployment; nothing otherwise): `ended`
    /// end at `at`, `set` are put in force, each with its time range as [`engine_overrides`]
    /// gives the engine. `what` says what failed if the stream does not take it.
    async fn announce_change(
        &self,
        ended: &[StoredOverride],
        set: &[StoredOverride],
        at: UnixMillis,
        what: &str,
    ) -> AppResult<()> {
        let control = crate::partitions::Control::OverridesChanged {
            ended: engine_overrides(ended),
            set: engine_overrides(set),
            at: at.as_millis(),
        };
        self.risk.announce(&control, what).await
    }

    async fn live_overrides(
        &self,
        kind: EntityKind,
        value: &str,
        only: Option<OverrideMode>,
    ) -> AppResult<Vec<StoredOverride>> {
        let now = self.clock.now();
        let rows = self.store.overrides().await?;
        Ok(rows
            .into_iter()
            .filter(|o| o.kind == kind.as_str() && o.value == value && live(o, now))
            .filter(|o| only.is_none_or(|m| mode(&o.action).ok() == Some(m)))
            .collect())
    }
}

/// The overrides as the engine takes them: each in force from when it was set until it
/// expired or was lifted, whichever came first.
pub fn engine_overrides(rows: &[StoredOverride]) -> Vec<Override> {
    rows.iter()
        .filter_map(|o| {
            let end = match (o.expires_at, o.lifted_at) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            Some(Override {
                kind: EntityKind::parse(&o.kind)?,
                value: o.value.clone(),
                mode: mode(&o.action).ok()?,
                from: o.set_at.as_millis(),
                expires_at: end.map(UnixMillis::as_millis),
            })
        })
        .collect()
}

fn live(o: &StoredOverride, now: UnixMillis) -> bool {
    o.lifted_at.is_none() && o.expires_at.is_none_or(|at| now < at)
}

fn lift(old: &StoredOverride, actor: &Actor, now: UnixMillis) -> Write {
    Write::LiftOverride {
        id: old.id.clone(),
        by: actor.id().to_owned(),
        at: now,
    }
}

fn mode(action: &str) -> AppResult<OverrideMode> {
    match action {
        "suppress" => Ok(OverrideMode::Suppress),
        "force" => Ok(OverrideMode::Force),
        other => Err(AppError::invalid(
            ErrorCode::InvalidOverride,
            format!("`{other}` is not an override action (suppress, force)"),
        )),
    }
}

/// Suppressing is part of reviewing; forcing holds other customers' changes.
fn permission(mode: OverrideMode) -> Permission {
    match mode {
        OverrideMode::Suppress => Permission::ReviewChanges,
        OverrideMode::Force => Permission::ForceLinks,
    }
}

fn entity(kind: &str, value: &str) -> AppResult<(EntityKind, String)> {
    let kind = entity_kind(kind)?;
    let value = kind.canonical(value).ok_or_else(|| {
        AppError::invalid(
            ErrorCode::InvalidEntity,
            format!("`{value}` is not a {}", kind.as_str()),
        )
    })?;
    Ok((kind, value))
}

fn label(kind: EntityKind, value: &str) -> String {
    format!("{}:{value}", kind.as_str())
}
