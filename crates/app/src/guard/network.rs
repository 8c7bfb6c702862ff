//! The network's use cases: campaign alerts (list, read, confirm) and holding what a
//! confirmation links. A confirmation is logged as a `fraud.confirmed` event naming the alert,
//! so the engine marks the same things on every replay; the guard then holds the pending
//! changes of every account the marks reach, through the same path as any risk hold, with the
//! path as the reason.

use super::Guard;
use super::pending::{RISK_ACTOR, engine_held};
use crate::ErrorCode;
use crate::access::Actor;
use crate::changes::Change;
use crate::error::{AppError, AppResult};
use crate::ports::{StoreError, StoredAlert, Write};
use portcullis_core::events::{EventBody, EventContext};
use portcullis_core::guard::cooldown::Transition;
use portcullis_core::operator::Permission;
use portcullis_core::time::UnixMillis;
use portcullis_engine::{EntityKind, Propagation};
use serde_json::json;

impl Guard {
    /// Campaign alerts, latest first.
    pub async fn alerts(
        &self,
        actor: &Actor,
        before: Option<UnixMillis>,
        limit: u32,
    ) -> AppResult<Vec<StoredAlert>> {
        actor.require_operator(Permission::ReviewChanges)?;
        Ok(self.store.alerts(before, limit).await?)
    }

    pub async fn alert(&self, actor: &Actor, id: &str) -> AppResult<StoredAlert> {
        actor.require_operator(Permission::ReviewChanges)?;
        self.store.alert(id).await?.ok_or_else(|| unknown_alert(id))
    }

    /// Confirms a campaign: one commit of the confirmation, its audit entry and the
    /// `fraud.confirmed` event naming the alert (on the first account of its evidence); then
    /// the engine marks what it links and the guard holds the linked accounts' changes.
    pub async fn confirm_alert(
        &self,
        actor: &Actor,
        id: &str,
        note: &str,
    ) -> AppResult<StoredAlert> {
        actor.require_operator(Permission::ReviewChanges)?;
        let alert = self
            .store
            .alert(id)
            .await?
            .ok_or_else(|| unknown_alert(id))?;
        if alert.confirmed_at.is_some() {
            return Err(confirmed(id));
        }
        let account = first_account(&alert)?;
        let access = actor.access_account(Permission::ReviewChanges, &account)?;
        let now = self.clock.now();
        let (addresses, from) = match EntityKind::parse(&alert.entity_kind) {
            Some(EntityKind::Address) => (vec![alert.value.clone()], Vec::new()),
            Some(EntityKind::Number) => (Vec::new(), vec![alert.value.clone()]),
            _ => (Vec::new(), Vec::new()),
        };
        let event = EventBody::FraudConfirmed {
            withdrawal_ids: Vec::new(),
            addresses,
            from,
            note: format!("alert:{id}"),
        };
        let details = json!({ "alert": id, "kind": alert.kind, "entity": alert.entity_kind, "value": alert.value, "note": note });
        let change = Change::new(&access, now)
            .write(Write::ConfirmAlert {
                id: id.to_owned(),
                by: actor.id().to_owned(),
                at: now,
            })
            .audit("alert.confirmed", format!("alert:{id}"), details)
            .key_event(&access, event, EventContext::default())?;
        match self.store.commit(change.into_set()).await {
            Err(StoreError::Conflict(_)) => return Err(confirmed(id)),
            other => other?,
        }
        self.risk.catch_up().await?;
        self.hold_marked().await?;
        self.alert(actor, id).await
    }

    /// The graph around an entity within `hops`, marks as they count now.
    pub async fn graph(
        &self,
        actor: &Actor,
        kind: &str,
        value: &str,
        hops: u8,
    ) -> AppResult<portcullis_engine::GraphView> {
        let now = self.clock.now();
        self.risk.graph_view(actor, kind, value, hops, now).await
    }

    /// Holds the open pending changes of every account the latest confirmations marked, with
    /// the path as the reason; returns how many it held. Called after a confirmation and by
    /// the background pass before it applies anything due.
    pub async fn hold_marked(&self) -> AppResult<usize> {
        let _one_pass = self.holding.lock().await;
        let mut held = 0;
        let mut queue = self.risk.take_propagations().into_iter();
        while let Some(propagation) = queue.next() {
            match self.hold_propagation(&propagation).await {
                Ok(n) => held += n,
                Err(error) => {
                    // Fail closed: what is not held yet waits for the next pass (holding twice
                    // is harmless: a held change is no longer pending).
                    self.risk
                        .requeue_propagations(std::iter::once(propagation).chain(queue));
                    return Err(error);
                }
            }
        }
        Ok(held)
    }

    async fn hold_propagation(&self, propagation: &Propagation) -> AppResult<usize> {
        let mut held = 0;
        for marked in propagation
            .marked
            .iter()
            .filter(|m| m.kind == EntityKind::Account)
        {
            let reason = format!(
                "network: {} (confirmation {})",
                marked.mark.path_text(),
                propagation.confirmation
            );
            held += self.hold_account(&marked.value, &reason).await?;
            self.void_release_approvals(&marked.value, &reason).await?;
        }
        Ok(held)
    }

    /// Holds the account's open pending changes with `reason`; returns how many.
    pub(super) async fn hold_account(&self, account: &str, reason: &str) -> AppResult<usize> {
        let system = Actor::system();
        let mut held = 0;
        for change in self.store.pending_for_account(account, 200).await? {
            // An operator's hold is released by one call: the confirmation's hold replaces it,
            // so that releasing what the network marks takes two operators whoever held first.
            // A hold the engine made stays, unless one operator has approved its release: the
            // new evidence voids that approval (holding again clears it), so the release starts
            // over with this path in view instead of being completed by one more operator.
            let approved = change.approved_by.is_some();
            if !change.status.is_open() || (engine_held(&change.status) && !approved) {
                continue;
            }
            let access = system.access_account(Permission::ReviewChanges, &change.account)?;
            let hold = Transition::Hold {
                by: RISK_ACTOR.into(),
                reason: reason.to_owned(),
            };
            self.move_change(&access, change, hold, "widening.network_held")
                .await?;
            held += 1;
        }
        Ok(held)
    }
}

fn first_account(alert: &StoredAlert) -> AppResult<String> {
    let evidence: Vec<portcullis_engine::Evidence> = serde_json::from_str(&alert.evidence)
        .map_err(|e| AppError::Internal(format!("alert {} evidence: {e}", alert.id)))?;
    evidence
        .into_iter()
        .next()
        .map(|e| e.account)
        .ok_or_else(|| AppError::Internal(format!("alert {} has no evidence", alert.id)))
}

fn unknown_alert(id: &str) -> AppError {
    AppError::invalid(ErrorCode::UnknownAlert, format!("no campaign alert `{id}`"))
}

fn confirmed(id: &str) -> AppError {
    AppError::invalid(
        ErrorCode::AlertConfirmed,
        format!("alert `{id}` is confirmed already"),
    )
}
