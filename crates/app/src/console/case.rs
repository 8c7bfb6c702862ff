//! The case view of one account: a timeline of its events (with each decision, its reasons and
//! the feature values behind it) and of what was done on it (the audit entries: holds,
//! releases, approvals, confirmations, overrides, freezes, assignments), its pending and closed
//! changes, its protections, and the entities it links to in the risk engine's graph with their
//! marks and the path of each.

use super::Console;
use crate::ErrorCode;
use crate::access::Actor;
use crate::error::{AppError, AppResult};
use crate::ports::{HeldWithdrawal, PendingChange, StoredDecision};
use portcullis_core::guard::Protection;
use portcullis_core::operator::Permission;
use portcullis_core::time::UnixMillis;
use portcullis_engine::GraphView;

/// How many of the account's latest events and audit entries the timeline shows.
const TIMELINE: u32 = 150;
/// How many of the account's held withdrawals the case shows.
const HELD_SHOWN: u32 = 200;
/// How far the case's graph reaches.
const CASE_HOPS: u8 = 2;

/// One line of the case's timeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimelineEntry {
    pub at: UnixMillis,
    /// An event's type (`withdrawal.requested`), or an action's (`widening.released`).
    pub what: String,
    /// `event` or `action`.
    pub source: &'static str,
    /// Who acted (an action's operator, `system`, `customer:<account>`); `None` for events.
    pub actor: Option<String>,
    /// The event's body or the action's details, as JSON.
    pub detail: String,
    pub decision: Option<StoredDecision>,
}

/// Everything an analyst needs about one account.
#[derive(Debug, Clone)]
pub struct CaseView {
    pub account: String,
    pub protection: Protection,
    pub timeline: Vec<TimelineEntry>,
    pub open_changes: Vec<PendingChange>,
    pub closed_changes: Vec<PendingChange>,
    /// Withdrawals the engine held whose review is not finished.
    pub held_withdrawals: Vec<HeldWithdrawal>,
    /// The graph around the account; `None` when no event linked it to anything yet.
    pub graph: Option<GraphView>,
}

impl Console {
    pub async fn case(&self, actor: &Actor, account: &str) -> AppResult<CaseView> {
        actor.require_operator(Permission::ReviewChanges)?;
        let access = actor.access_account(Permission::ReadEvents, account)?;
        let account = access.account().to_owned();
        // The exchange's feed speaks of every account, registered with Portcullis or not: a case
        // is any account either knows.
        let registered = self.store.account(&account).await?.is_some();
        let protection = self
            .store
            .guard(&account)
            .await?
            .map(|g| g.protection)
            .unwrap_or_default();
        let mut timeline: Vec<TimelineEntry> = self
            .store
            .account_history(&account, TIMELINE)
            .await?
            .into_iter()
            .map(|(stored, decision)| TimelineEntry {
                at: stored.event.ts,
                what: stored.event.event_type,
                source: "event",
                actor: None,
                detail: stored.event.body,
                decision,
            })
            .collect();
        timeline.extend(
            self.store
                .audit_for_account(&account, TIMELINE)
                .await?
                .into_iter()
                .map(|entry| TimelineEntry {
                    at: entry.at,
                    what: entry.action,
                    source: "action",
                    actor: Some(entry.actor),
                    detail: entry.details,
                    decision: None,
                }),
        );
        timeline.sort_by_key(|entry| std::cmp::Reverse(entry.at));
        if !registered && timeline.is_empty() {
            return Err(AppError::NotFound(format!("account {account}")));
        }
        let (open_changes, closed_changes) = self
            .store
            .pending_for_account(&account, 200)
            .await?
            .into_iter()
            .partition(|c| c.status.is_open());
        let held_withdrawals = self
            .store
            .held_withdrawals(Some(&account), HELD_SHOWN)
            .await?;
        let now = self.clock.now();
        let graph = match self
            .risk
            .graph_view(actor, "account", &account, CASE_HOPS, now)
            .await
        {
            Ok(view) => Some(view),
            // Not in the graph, or (partitioned) no partition here to read it from: the case
            // page shows no links rather than failing; the graph page says which.
            Err(AppError::Invalid {
                code: ErrorCode::UnknownEntity | ErrorCode::PartitionViewUnavailable,
                ..
            }) => None,
            Err(error) => return Err(error),
        };
        Ok(CaseView {
            account,
            protection,
            timeline,
            open_changes,
            closed_changes,
            held_withdrawals,
            graph,
        })
    }
}
