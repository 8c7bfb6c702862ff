//! Widening a key: recognised, checked against the protections, confirmed by a spent step-up
//! grant, and recorded as a pending change that applies when its cool-down ends. A change that
//! widens nothing goes straight to the key authority.

use super::contact::account_edit;
use super::stepup::target;
use super::{Guard, refusal, token_hash};
use crate::ErrorCode;
use crate::access::{AccountAccess, Actor};
use crate::changes::Change;
use crate::error::{AppError, AppResult};
use crate::keys::{IssuedKey, KeyChange};
use crate::ports::{PendingAction, PendingChange, Write};
use crate::random;
use portcullis_core::account::Account;
use portcullis_core::events::{Effective, EventBody, EventContext, StepUp};
use portcullis_core::guard::stepup::Action;
use portcullis_core::guard::widening::{self, KeyTerms};
use portcullis_core::guard::{PendingStatus, StepUpMethod, Widening};
use portcullis_core::key::ApiKey;
use portcullis_core::notice::NoticeKind;
use portcullis_core::operator::Permission;
use portcullis_core::secret::Secret;
use portcullis_core::time::UnixMillis;
use serde_json::json;

/// A narrowing of one key that the security center offers as a button.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyNarrowing {
    /// Revoke the key.
    Revoke,
    /// Take `withdraw` and `transfer` away (the check-up's fix for a key that can withdraw
    /// and never expires).
    RemoveFundMoving,
}

impl KeyNarrowing {
    /// From the security center's path segment: `revoke` or `remove-withdraw`.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "revoke" => Some(Self::Revoke),
            "remove-withdraw" => Some(Self::RemoveFundMoving),
            _ => None,
        }
    }
}

/// What a guarded request came to.
#[derive(Debug)]
pub enum GuardedOutcome {
    /// Nothing widened: applied at once.
    Applied(ApiKey),
    /// Waiting out its cool-down (or already held by the risk engine).
    Pending(PendingReceipt),
}

/// A pending change as just recorded, with the single-use cancel link (shown this once).
#[derive(Debug)]
pub struct PendingReceipt {
    pub change: PendingChange,
    pub cancel_url: Secret,
}

/// A key issued through the guard: its fund-moving scopes may still be pending.
#[derive(Debug)]
pub struct GuardedKey {
    pub issued: IssuedKey,
    pub pending: Option<PendingReceipt>,
}

impl Guard {
    /// What a key change would need, writing nothing: `None` when it widens nothing (it applies
    /// at once, with no step-up), else the step-up method it takes. Every refusal the change
    /// itself would meet (bad terms, `withdraw` without an allow-list, a freeze or a lock,
    /// nothing enrolled to confirm with) is met here first, so that the customer spends no code
    /// on a change that would be refused.
    pub async fn check_key_change(
        &self,
        actor: &Actor,
        key_id: &str,
        change: &KeyChange,
    ) -> AppResult<Option<StepUpMethod>> {
        self.keys
            .owned(actor, Permission::ManageKeys, key_id)
            .await?;
        let now = self.clock.now();
        let (before, after) = self.keys.preview_update(key_id, change, now).await?;
        actor.access_account(Permission::ManageKeys, &before.account)?;
        widening::check_terms(&KeyTerms::of(&after))
            .map_err(|e| refusal(ErrorCode::WithdrawNeedsAllowlist, e))?;
        if widening::key_change_widenings(&KeyTerms::of(&before), &KeyTerms::of(&after)).is_empty()
        {
            return Ok(None);
        }
        self.step_up_needed(&before.account, Action::Widen, now)
            .await
            .map(Some)
    }

    /// One of the security center's narrowing buttons on a key: applied at once, no step-up.
    pub async fn narrow_key(
        &self,
        actor: &Actor,
        key_id: &str,
        what: KeyNarrowing,
        ctx: EventContext,
    ) -> AppResult<ApiKey> {
        match what {
            KeyNarrowing::Revoke => self.revoke_key(actor, key_id, ctx).await,
            KeyNarrowing::RemoveFundMoving => self.remove_fund_moving(actor, key_id, ctx).await,
        }
    }

    /// Takes the fund-moving scopes away from a key at once (the check-up's fix for a key that
    /// can withdraw and never expires): a narrowing, so no step-up.
    pub async fn remove_fund_moving(
        &self,
        actor: &Actor,
        key_id: &str,
        ctx: EventContext,
    ) -> AppResult<ApiKey> {
        let view = self.keys.key(actor, key_id).await?;
        let scopes = view
            .key
            .scopes
            .iter()
            .filter(|s| !widening::FUND_MOVING.contains(s));
        let change = KeyChange {
            scopes: Some(scopes.map(|s| s.as_str().to_owned()).collect()),
            ctx,
            ..KeyChange::default()
        };
        match self.change_key(actor, key_id, change, None).await? {
            GuardedOutcome::Applied(key) => Ok(key),
            GuardedOutcome::Pending(_) => Err(AppError::Internal(
                "taking scopes away was treated as a widening".into(),
            )),
        }
    }

    /// Changes a key: at once if it widens nothing, else through step-up and a cool-down.
    pub async fn change_key(
        &self,
        actor: &Actor,
        key_id: &str,
        change: KeyChange,
        grant: Option<&str>,
    ) -> AppResult<GuardedOutcome> {
        self.keys
            .owned(actor, Permission::ManageKeys, key_id)
            .await?;
        let now = self.clock.now();
        let (before, after) = self.keys.preview_update(key_id, &change, now).await?;
        let access = actor.access_account(Permission::ManageKeys, &before.account)?;
        widening::check_terms(&KeyTerms::of(&after))
            .map_err(|e| refusal(ErrorCode::WithdrawNeedsAllowlist, e))?;
        let widenings =
            widening::key_change_widenings(&KeyTerms::of(&before), &KeyTerms::of(&after));
        if widenings.is_empty() {
            // Applied to the key as it was judged: if it changed in between (a freeze took
            // `withdraw` away, a due change applied), the same fields could widen the key as it
            // is now, so the update is refused (409) rather than taken without a step-up.
            let pinned = KeyChange {
                expected_version: Some(before.version),
                ..change
            };
            return self
                .keys
                .update_key(actor, key_id, pinned)
                .await
                .map(GuardedOutcome::Applied);
        }
        let action = PendingAction::KeyChange {
            key_id: key_id.to_owned(),
            label: change.label.as_ref().map(|_| after.label.clone()),
            add_scopes: after.scopes.added_since(before.scopes),
            remove_scopes: before.scopes.added_since(after.scopes),
            ip_allowlist: change
                .ip_allowlist
                .as_ref()
                .map(|_| after.ip_allowlist.clone()),
            expires_at: change.expires_at.map(|_| after.expires_at),
            fund_window: change.fund_window,
        };
        let request = WideningRequest {
            account: &before.account,
            action,
            widenings,
            grant,
            event: Some(EventBody::ApiKeyUpdated {
                key_id: key_id.to_owned(),
                scopes: after.scopes,
                ip_allowlist: after.ip_allowlist.clone(),
                step_up: StepUp::None,
                effective: Effective::Now,
            }),
            ctx: change.ctx.clone(),
            account_edit: None,
        };
        self.request_widening(&access, request, now)
            .await
            .map(GuardedOutcome::Pending)
    }

    /// The common path of every widening: protections, step-up, one commit of the pending
    /// change with its audit entry and event, then the risk engine's say.
    pub(crate) async fn request_widening(
        &self,
        access: &AccountAccess<'_>,
        request: WideningRequest<'_>,
        now: UnixMillis,
    ) -> AppResult<PendingReceipt> {
        access.covers(request.account)?;
        let actor = access.actor();
        let action_kind = match request.action {
            PendingAction::Unfreeze => Action::Unfreeze,
            PendingAction::RemoveTotp => Action::ManageAuthenticators,
            _ => Action::Widen,
        };
        let guard = self.guard_of(request.account).await?;
        let allowed = match action_kind {
            Action::Unfreeze => guard.protection.allows_unfreeze(now),
            _ => guard.protection.allows_widening(now),
        };
        let checked = match allowed.map_err(super::protection_refusal) {
            Ok(()) => {
                self.grant_for(&guard, action_kind, request.grant, now)
                    .await
            }
            Err(error) => Err(error),
        };
        let (method, spend) = match checked {
            Ok(granted) => granted,
            Err(error) => {
                let what = request.action.kind();
                return Err(self.refused(actor, request.account, what, error).await);
            }
        };
        let cancel_token = format!("pcx_{}", random::alphanumeric(43)?);
        let pending = PendingChange {
            id: random::identifier("chg")?,
            account: request.account.to_owned(),
            action: request.action,
            applies_at: self.settings.cooldowns.applies_at(&request.widenings, now),
            widenings: request.widenings,
            status: PendingStatus::Pending,
            requested_at: now,
            requested_by: actor.id().to_owned(),
            step_up: method,
            cancel_token_hash: token_hash(&cancel_token),
            event_id: None,
            released_by: None,
            approved_by: None,
            version: 1,
        };
        let mut change = Change::new(access, now).write(spend);
        let mut pending = pending;
        if let Some(event) = request.event {
            let event = waiting_event(event, step_up_of(method));
            change = change.key_event(access, event, request.ctx)?;
            pending.event_id = change.last_event_id();
        }
        let mut change = change.write(Write::InsertPending(pending.clone())).audit(
            "widening.requested",
            target(request.account),
            pending_details(&pending),
        );
        change = account_edit(change, request.account_edit);
        let change = self
            .announced_pending(change, &pending, &cancel_token, now)
            .await?;
        self.store.commit(change.into_set()).await?;
        let pending = self.apply_risk_decision(pending).await?;
        Ok(PendingReceipt {
            cancel_url: Secret::new(self.cancel_url(&cancel_token).into_bytes()),
            change: pending,
        })
    }

    /// `change` with the announcement of the `pending` change just recorded: its cancel link,
    /// and for a contact change a new freeze link too.
    async fn announced_pending(
        &self,
        mut change: Change,
        pending: &PendingChange,
        cancel_token: &str,
        now: UnixMillis,
    ) -> AppResult<Change> {
        let kind = match pending.action {
            PendingAction::AddAddress { .. } => NoticeKind::AddressAdded,
            PendingAction::Unfreeze => NoticeKind::AccountUnfrozen,
            PendingAction::KeyChange { .. } | PendingAction::RemoveTotp => {
                NoticeKind::WideningPending
            }
            PendingAction::ContactChange { .. } => NoticeKind::ContactChangePending,
        };
        let mut notice = self.named_change_notice(kind, pending, now).await?;
        notice.cancel_url = Some(self.cancel_url(cancel_token));
        // Every widening's announcement offers the panic button beside the cancel link: the
        // customer reading it mid-call should not have to find the security center first. (A
        // contact change is the sharpest case: it takes the announcements away from them.)
        if !matches!(pending.action, PendingAction::Unfreeze) {
            let (write, url) = self.new_freeze_link(&pending.account, now)?;
            change = change.write(write);
            notice.freeze_url = Some(url);
        }
        self.announced(change, &notice, now).await
    }

    pub(crate) fn cancel_url(&self, token: &str) -> String {
        format!("{}/cancel/{token}", self.settings.public_url)
    }
}

/// A widening on its way to becoming a pending change.
pub(crate) struct WideningRequest<'a> {
    pub account: &'a str,
    pub action: PendingAction,
    pub widenings: Vec<Widening>,
    pub grant: Option<&'a str>,
    /// The contract event the risk engine decides on; its `step_up` is set to the method the
    /// spent grant proves.
    pub event: Option<EventBody>,
    pub ctx: EventContext,
    /// An account edit (before, after) that applies at once, committed with the pending change:
    /// the fields of a contact change's request that are not a channel.
    pub account_edit: Option<(Account, Account)>,
}

/// The event of a widening as the engine must see it: confirmed by `method`, and not in force
/// until its `change.applied` (the contract's revision 2).
fn waiting_event(mut event: EventBody, method: StepUp) -> EventBody {
    if let EventBody::ApiKeyCreated {
        step_up, effective, ..
    }
    | EventBody::ApiKeyUpdated {
        step_up, effective, ..
    }
    | EventBody::AddressAdded {
        step_up, effective, ..
    } = &mut event
    {
        *step_up = method;
        *effective = Effective::Pending;
    }
    event
}

pub(crate) fn step_up_of(method: StepUpMethod) -> StepUp {
    match method {
        StepUpMethod::Passkey => StepUp::Passkey,
        StepUpMethod::Totp => StepUp::Totp,
    }
}

/// What the audit trail records about a pending change (never its cancel token).
pub(crate) fn pending_details(change: &PendingChange) -> serde_json::Value {
    json!({
        "change": change.id,
        "action": change.action.public_json(),
        "widenings": change.widenings,
        "status": change.status.as_str(),
        "applies_at": change.applies_at.to_rfc3339(),
        "step_up": change.step_up.as_str(),
    })
}
