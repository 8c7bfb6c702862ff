//! The work queue: campaign alerts, open (pending or held) changes and held withdrawals as
//! one list of `core::queue` items with their assignees; and assigning an item.

use super::Console;
use crate::ErrorCode;
use crate::access::Actor;
use crate::changes::Change;
use crate::error::{AppError, AppResult};
use crate::guard::RISK_ACTOR;
use crate::ports::{Assignment, ConsoleWrite, HeldWithdrawal, PendingChange, StoredAlert, Write};
use portcullis_core::guard::PendingStatus;
use portcullis_core::operator::Permission;
use portcullis_core::queue::{ItemKind, QueueFilter, QueueItem, QueueView, view};
use portcullis_core::time::UnixMillis;
use serde_json::json;
use std::collections::HashMap;

/// How many of each source the queue reads (the oldest open work first for changes, the
/// latest for alerts and withdrawals).
const SOURCE_LIMIT: u32 = 500;
/// The item kinds an assignment may name, as their id prefixes.
const ASSIGNABLE: [&str; 3] = ["alert:", "change:", "withdrawal:"];

impl Console {
    /// The queue as `filter` asks for it, now.
    pub async fn queue(&self, actor: &Actor, filter: &QueueFilter) -> AppResult<QueueView> {
        actor.require_operator(Permission::ReviewChanges)?;
        let mut items = Vec::new();
        for alert in self.store.alerts(None, SOURCE_LIMIT).await? {
            items.push(alert_item(&alert));
        }
        for change in self.store.open_changes(SOURCE_LIMIT).await? {
            items.push(change_item(&change));
        }
        for held in self.store.held_withdrawals(None, SOURCE_LIMIT).await? {
            items.push(withdrawal_item(&held));
        }
        let ids: Vec<String> = items.iter().map(|i| i.id.clone()).collect();
        let assigned: HashMap<String, String> = self
            .store
            .assignments(&ids)
            .await?
            .into_iter()
            .map(|a| (a.item, a.assignee))
            .collect();
        for item in &mut items {
            item.assignee = assigned.get(&item.id).cloned();
        }
        Ok(view(items, filter, self.clock.now()))
    }

    /// The operators an item may be assigned to: live admins and analysts.
    pub async fn reviewers(&self, actor: &Actor) -> AppResult<Vec<crate::ports::Operator>> {
        actor.require_operator(Permission::ReviewChanges)?;
        let mut operators = self.store.list_operators().await?;
        operators.retain(|o| o.revoked_at.is_none() && o.role.allows(Permission::ReviewChanges));
        Ok(operators)
    }

    /// Every operator's name by id, revoked ones included (what they did stays theirs), for
    /// pages that say who did what; an id not in it (`cli:local`, `system`) is shown as is.
    pub async fn operator_names(&self, actor: &Actor) -> AppResult<HashMap<String, String>> {
        actor.require_operator(Permission::ReadEvents)?;
        let operators = self.store.list_operators().await?;
        Ok(operators.into_iter().map(|o| (o.id, o.name)).collect())
    }

    /// Assigns a queue item to a live console operator (`assignee` empty: unassigns it).
    /// Audited on the item's account when it has one, so the case shows it.
    pub async fn assign(&self, actor: &Actor, item: &str, assignee: &str) -> AppResult<()> {
        actor.require_operator(Permission::ReviewChanges)?;
        let valid = ASSIGNABLE.iter().any(|p| item.starts_with(p))
            && item.len() <= 200
            && !item.chars().any(char::is_control);
        if !valid {
            return Err(AppError::invalid(
                ErrorCode::InvalidRequest,
                "not a queue item",
            ));
        }
        let now = self.clock.now();
        let write = if assignee.is_empty() {
            ConsoleWrite::Unassign {
                item: item.to_owned(),
            }
        } else {
            let operator = self
                .store
                .operator(assignee)
                .await?
                .filter(|o| o.revoked_at.is_none() && o.role.allows(Permission::ReviewChanges))
                .ok_or_else(|| {
                    AppError::invalid(
                        ErrorCode::InvalidRequest,
                        "assign to a live admin or analyst",
                    )
                })?;
            ConsoleWrite::Assign(Assignment {
                item: item.to_owned(),
                assignee: operator.id,
                assigned_by: actor.id().to_owned(),
                assigned_at: now,
            })
        };
        let target = match self.item_account(item).await? {
            Some(account) => format!("account:{account}"),
            None => item.to_owned(),
        };
        let change = Change::global(actor, now)
            .write(Write::Console(write))
            .audit(
                "console.assigned",
                target,
                json!({ "item": item, "assignee": assignee }),
            );
        Ok(self.store.commit(change.into_set()).await?)
    }

    async fn item_account(&self, item: &str) -> AppResult<Option<String>> {
        Ok(if let Some(id) = item.strip_prefix("change:") {
            self.store.pending_change(id).await?.map(|c| c.account)
        } else if let Some(id) = item.strip_prefix("alert:") {
            self.store.alert(id).await?.as_ref().and_then(alert_account)
        } else {
            None
        })
    }
}

fn alert_account(alert: &StoredAlert) -> Option<String> {
    let evidence: Vec<portcullis_engine::Evidence> = serde_json::from_str(&alert.evidence).ok()?;
    evidence.into_iter().next().map(|e| e.account)
}

fn alert_item(alert: &StoredAlert) -> QueueItem {
    QueueItem {
        id: format!("alert:{}", alert.id),
        kind: ItemKind::Alert,
        state: if alert.confirmed_at.is_some() {
            "confirmed"
        } else {
            "open"
        }
        .into(),
        rules: vec![alert.kind.clone()],
        account: alert_account(alert),
        amount_usd: None,
        opened_at: alert.opened_at,
        assignee: None,
        summary: format!(
            "{} {}: {} unrelated accounts",
            alert.entity_kind, alert.value, alert.unrelated_accounts
        ),
    }
}

/// The rules behind a held change: the engine's reasons, `network` for a confirmation's hold,
/// `operator_hold` for an operator's.
fn hold_rules(by: &str, reason: &str) -> Vec<String> {
    if by != RISK_ACTOR {
        return vec!["operator_hold".into()];
    }
    if reason.starts_with("network:") {
        return vec!["network".into()];
    }
    let reason = reason
        .strip_prefix("challenge without a passkey: ")
        .unwrap_or(reason);
    reason
        .split(',')
        .map(|r| r.trim().to_owned())
        .filter(|r| !r.is_empty())
        .collect()
}

fn change_item(change: &PendingChange) -> QueueItem {
    let (state, rules, opened_at) = match &change.status {
        PendingStatus::Held { by, reason } => ("held", hold_rules(by, reason), change.requested_at),
        _ => (
            "pending",
            change
                .widenings
                .iter()
                .map(|w| w.as_str().to_owned())
                .collect(),
            change.requested_at,
        ),
    };
    let approval = match &change.approved_by {
        Some(by) => format!(" · release approved by {by}, needs a second operator"),
        None => String::new(),
    };
    QueueItem {
        id: format!("change:{}", change.id),
        kind: ItemKind::Change,
        state: state.into(),
        rules,
        account: Some(change.account.clone()),
        amount_usd: None,
        opened_at,
        assignee: None,
        summary: format!("{}{approval}", change.action.kind()),
    }
}

fn withdrawal_item(held: &HeldWithdrawal) -> QueueItem {
    let body: serde_json::Value = serde_json::from_str(&held.event.event.body).unwrap_or_default();
    let rules: Vec<String> = serde_json::from_str(&held.decision.reasons).unwrap_or_default();
    QueueItem {
        id: format!("withdrawal:{}", held.event.event.id),
        kind: ItemKind::Withdrawal,
        // One operator approved its release: it waits for a second.
        state: match &held.review {
            Some(review) => review.state.as_str().into(),
            None => "held".into(),
        },
        rules,
        account: held.event.event.account.clone(),
        amount_usd: body.get("amount_usd").and_then(serde_json::Value::as_f64),
        opened_at: UnixMillis(held.event.event.ts.as_millis()),
        assignee: None,
        // Worded as the case and the customer's security center word it.
        summary: crate::guard::describe_withdrawal(held),
    }
}
