//! Building the audit entries and events that accompany every change, in one place so that
//! every use case records them the same way. A change of an account and its events are built
//! from the proof that the actor may act on that account (`AccountAccess`).

use crate::access::{AccountAccess, Actor};
use crate::error::AppResult;
use crate::ports::{ChangeSet, NewEvent, Write};
use portcullis_core::audit::AuditDraft;
use portcullis_core::events::{EventBody, EventContext, KeyEvent};
use portcullis_core::time::UnixMillis;
use serde_json::Value;

/// A change under construction: writes, then its audit entry and events.
#[derive(Debug)]
pub struct Change {
    at: UnixMillis,
    actor: String,
    set: ChangeSet,
}

impl Change {
    /// A change of one account: only with the proof that the actor may act on it.
    pub fn new(access: &AccountAccess<'_>, at: UnixMillis) -> Self {
        Self::global(access.actor(), at)
    }

    /// A change of no one account (operators, the keyring, the policy), or one whose actor's
    /// account check happened beside it (a refusal's audit entry).
    pub fn global(actor: &Actor, at: UnixMillis) -> Self {
        Self {
            at,
            actor: actor.id().to_owned(),
            set: ChangeSet::default(),
        }
    }

    #[must_use]
    pub fn write(mut self, write: Write) -> Self {
        self.set.writes.push(write);
        self
    }

    /// Adds the audit entry; `details` must be a JSON object.
    #[must_use]
    pub fn audit(mut self, action: &str, target: String, details: Value) -> Self {
        self.set.audit.push(AuditDraft {
            at: self.at,
            actor: self.actor.clone(),
            action: action.to_owned(),
            target,
            details: details.to_string(),
        });
        self
    }

    /// Adds a key event of the account in the contract's format: only with the proof that the
    /// actor may act on that account.
    pub fn key_event(
        mut self,
        access: &AccountAccess<'_>,
        body: EventBody,
        ctx: EventContext,
    ) -> AppResult<Self> {
        let event = KeyEvent {
            id: crate::random::identifier("evt")?,
            ts: self.at,
            account: access.account().to_owned(),
            body,
            ctx,
        };
        self.set.events.push(NewEvent {
            id: event.id.clone(),
            ts: event.ts,
            account: Some(event.account.clone()),
            event_type: event.body.type_name().to_owned(),
            body: event.to_json_line(),
        });
        Ok(self)
    }

    /// The id of the event added last, if any.
    pub fn last_event_id(&self) -> Option<String> {
        self.set.events.last().map(|event| event.id.clone())
    }

    pub fn into_set(self) -> ChangeSet {
        self.set
    }
}
