//! Every other way a key comes to be or changes goes through the guard too: issuing, importing,
//! rotating and revoking. Each obeys the same terms as a widening where it could let money out
//! (`withdraw` needs an allow-list; nothing fund-moving while the account is frozen or locked;
//! rotating a fund-moving key's secret needs a step-up grant, so a customer with no
//! authenticator must enrol one first), and each is announced on the account's official channels in the commit
//! that makes it. The key authority builds the changes; only this module commits them.

use super::notices::account_notice;
use super::widening::{GuardedKey, WideningRequest};
use super::{Guard, refusal};
use crate::ErrorCode;
use crate::access::Actor;
use crate::error::{AppError, AppResult};
use crate::keys::{ImportedKey, IssuedKey, NewKey};
use crate::ports::{AccountGuard, PendingAction};
use portcullis_core::events::{Effective, EventBody, EventContext, StepUp};
use portcullis_core::guard::stepup::Action;
use portcullis_core::guard::widening::{self, KeyTerms};
use portcullis_core::key::ApiKey;
use portcullis_core::notice::{Notice, NoticeKind};
use portcullis_core::operator::Permission;
use portcullis_core::scope::{Scope, ScopeSet};
use portcullis_core::time::UnixMillis;

/// Whether a key can move money out of the account.
fn moves_money(scopes: ScopeSet) -> bool {
    scopes.contains(Scope::Withdraw) || scopes.contains(Scope::Transfer)
}

/// Refuses what could let money out of an account that is frozen or locked.
fn fund_moving_allowed(guard: &AccountGuard, now: UnixMillis) -> AppResult<()> {
    guard
        .protection
        .allows_widening(now)
        .map_err(|e| refusal(ErrorCode::AccountProtected, e))
}

/// The announcement of a key that came to be or got a new secret.
fn key_notice(kind: NoticeKind, key: &ApiKey, summary: String, now: UnixMillis) -> Notice {
    let name = format!("{}:{}", key.key_id, now.as_millis());
    let mut notice = account_notice(kind, &key.account, &name, &summary, now);
    let allowlist = if key.ip_allowlist.is_unrestricted() {
        "any IP address".to_owned()
    } else {
        key.ip_allowlist.entries().join(", ")
    };
    notice.details = vec![
        ("Key".into(), format!("{} ({})", key.label, key.key_id)),
        ("Permissions".into(), key.scopes.names().join(", ")),
        ("IP allow-list".into(), allowlist),
    ];
    notice
}

impl Guard {
    /// Issues a key. Its fund-moving scopes (`withdraw`, `transfer`) are widenings: the key is
    /// issued at once without them, and they are added when the cool-down ends.
    pub async fn create_key(
        &self,
        actor: &Actor,
        mut request: NewKey,
        grant: Option<&str>,
    ) -> AppResult<GuardedKey> {
        let access = actor.access_account(Permission::ManageKeys, &request.account)?;
        let now = self.clock.now();
        let wanted = self.keys.preview_scopes(&request.scopes)?;
        let allowlist = self.keys.preview_allowlist(&request.ip_allowlist)?;
        let wanted_terms = KeyTerms {
            scopes: wanted,
            ip_allowlist: allowlist,
            expires_at: request.expires_at,
            fund_window: None,
        };
        widening::check_terms(&wanted_terms)
            .map_err(|e| refusal(ErrorCode::WithdrawNeedsAllowlist, e))?;
        if let Some(window) = &request.fund_window {
            window
                .open(widening::only_fund_moving(wanted), now)
                .map_err(|e| refusal(ErrorCode::InvalidFundWindow, e))?;
        }
        let widenings = widening::new_key_widenings(&wanted_terms);
        if widenings.is_empty() {
            let issued = self.issue_announced(actor, request, now).await?;
            return Ok(GuardedKey {
                issued,
                pending: None,
            });
        }
        // Refuse before issuing anything, so a refused request leaves no key behind.
        let guard = self.guard_of(&request.account).await?;
        let allowed = guard
            .protection
            .allows_widening(now)
            .map_err(|e| refusal(ErrorCode::AccountProtected, e));
        let checked = match allowed {
            Ok(()) => self
                .grant_for(&guard, Action::Widen, grant, now)
                .await
                .map(|_| ()),
            Err(error) => Err(error),
        };
        if let Err(error) = checked {
            return Err(self
                .refused(actor, &request.account, "api_key.create", error)
                .await);
        }
        let immediate = widening::without_fund_moving(wanted);
        if immediate.is_empty() {
            return Err(AppError::invalid(
                ErrorCode::UnknownScope,
                "a key that waits for `withdraw` or `transfer` needs another scope meanwhile (e.g. `read`)",
            ));
        }
        request.scopes = immediate.names().into_iter().map(str::to_owned).collect();
        let ctx = request.ctx.clone();
        let window = request.fund_window;
        let issued = self.issue_announced(actor, request, now).await?;
        let key = issued.key.clone();
        let pending = WideningRequest {
            account: &key.account,
            action: PendingAction::KeyChange {
                key_id: key.key_id.clone(),
                label: None,
                add_scopes: wanted.added_since(immediate),
                remove_scopes: ScopeSet::EMPTY,
                ip_allowlist: None,
                expires_at: None,
                fund_window: window.map(Some),
            },
            widenings,
            grant,
            event: Some(EventBody::ApiKeyUpdated {
                key_id: key.key_id.clone(),
                scopes: wanted,
                ip_allowlist: key.ip_allowlist.clone(),
                step_up: StepUp::None,
                effective: Effective::Now,
            }),
            ctx,
            account_edit: None,
        };
        let receipt = self.request_widening(&access, pending, now).await?;
        Ok(GuardedKey {
            issued,
            pending: Some(receipt),
        })
    }

    /// Issues a key that widens nothing, announced in the same commit.
    async fn issue_announced(
        &self,
        actor: &Actor,
        request: NewKey,
        now: UnixMillis,
    ) -> AppResult<IssuedKey> {
        let (change, issued) = self.keys.create_change(actor, request, now).await?;
        let key = &issued.key;
        let summary = format!("API key '{}' was created", key.label);
        let notice = key_notice(NoticeKind::KeyCreated, key, summary, now);
        let change = self.announced(change, &notice, now).await?;
        self.keys
            .commit_and_install(change, &key.key_id, now)
            .await?;
        Ok(issued)
    }

    /// Brings an existing exchange key under Portcullis (role `admin`). It keeps the scopes it
    /// has at the exchange, so it needs no cool-down, but it obeys the terms of any key: one
    /// that can move money needs an IP allow-list and is refused while the account is frozen
    /// or locked. The customer is told.
    pub async fn import_key(&self, actor: &Actor, request: ImportedKey) -> AppResult<ApiKey> {
        actor.require_operator(Permission::ImportKeys)?;
        let now = self.clock.now();
        let terms = KeyTerms {
            scopes: self.keys.preview_scopes(&request.scopes)?,
            ip_allowlist: self.keys.preview_allowlist(&request.ip_allowlist)?,
            expires_at: request.expires_at,
            fund_window: None,
        };
        let account = request.account.clone();
        let checked = match widening::check_terms(&terms) {
            Err(error) => Err(refusal(ErrorCode::WithdrawNeedsAllowlist, error)),
            Ok(()) if moves_money(terms.scopes) => self.fund_moving_allowed(&account, now).await,
            Ok(()) => Ok(()),
        };
        if let Err(error) = checked {
            return Err(self.refused(actor, &account, "api_key.import", error).await);
        }
        let (change, key) = self.keys.import_change(actor, request, now).await?;
        let summary = format!("API key '{}' was added to your account", key.label);
        let notice = key_notice(NoticeKind::KeyImported, &key, summary, now);
        let change = self.announced(change, &notice, now).await?;
        self.keys
            .commit_and_install(change, &key.key_id, now)
            .await?;
        Ok(key)
    }

    /// Issues a new HMAC secret for a key. Whoever holds the new secret can use the key, so a
    /// key that can move money is rotated only outside a freeze or lock, and with a step-up
    /// grant (none to give without an authenticator: refused). The customer is told.
    pub async fn rotate_key(
        &self,
        actor: &Actor,
        key_id: &str,
        overlap_ms: Option<i64>,
        grant: Option<&str>,
    ) -> AppResult<IssuedKey> {
        let now = self.clock.now();
        let (mut change, issued) = self
            .keys
            .rotate_change(actor, key_id, overlap_ms, now)
            .await?;
        let key = issued.key.clone();
        if moves_money(key.scopes) {
            match self
                .rotation_grant(&key.account, key.scopes, grant, now)
                .await
            {
                Ok(spend) => change = change.write(spend),
                Err(error) => {
                    return Err(self
                        .refused(actor, &key.account, "api_key.rotate", error)
                        .await);
                }
            }
        }
        let summary = format!("API key '{}' got a new secret", key.label);
        let notice = key_notice(NoticeKind::KeySecretRotated, &key, summary, now);
        let change = self.announced(change, &notice, now).await?;
        self.keys
            .commit_and_install(change, &key.key_id, now)
            .await?;
        Ok(issued)
    }

    /// Revokes a key at once (a narrowing: no terms to meet).
    pub async fn revoke_key(
        &self,
        actor: &Actor,
        key_id: &str,
        ctx: EventContext,
    ) -> AppResult<ApiKey> {
        self.keys.revoke_key(actor, key_id, ctx).await
    }

    /// Refuses what could let money out while the account is frozen or locked.
    async fn fund_moving_allowed(&self, account: &str, now: UnixMillis) -> AppResult<()> {
        fund_moving_allowed(&self.guard_of(account).await?, now)
    }

    /// The step-up a fund-moving key's rotation needs: the protections first, then a grant of
    /// the widening's method (its spending write). A customer with no authenticator has none
    /// to give, so the rotation is refused (`step_up_not_enrolled`) as a widening would be:
    /// the new secret moves money at once, with no cool-down, and an operator token alone
    /// must not be enough to obtain it. Nor may an operator token enrol a first factor and
    /// step up with it at once: until the account's first factor has been enrolled for as long
    /// as a widening to the key's scopes waits, the rotation is refused
    /// (`first_factor_too_recent`), so a factor the customer never set up is announced for a
    /// whole cool-down before it can unlock a secret that moves money.
    async fn rotation_grant(
        &self,
        account: &str,
        scopes: ScopeSet,
        grant: Option<&str>,
        now: UnixMillis,
    ) -> AppResult<crate::ports::Write> {
        let guard = self.guard_of(account).await?;
        fund_moving_allowed(&guard, now)?;
        let (_, spend) = self.grant_for(&guard, Action::Widen, grant, now).await?;
        self.first_factor_settled(&guard, scopes, now).await?;
        Ok(spend)
    }

    /// Refuses while the account's oldest factor (its confirmed authenticator app or its
    /// oldest passkey) is younger than the cool-down of a widening to `scopes`. Every later
    /// factor had to be confirmed with an earlier one, so the oldest is the first.
    async fn first_factor_settled(
        &self,
        guard: &AccountGuard,
        scopes: ScopeSet,
        now: UnixMillis,
    ) -> AppResult<()> {
        let totp = guard.totp.as_ref().and_then(|totp| totp.confirmed_at);
        let passkeys = self.store.passkeys(&guard.account).await?;
        // No factor at all was refused by the grant already; fail closed regardless.
        let first = passkeys.iter().map(|p| p.created_at).chain(totp).min();
        let widenings = widening::scope_widenings(scopes);
        let allowed_at = first.map_or(UnixMillis(i64::MAX), |at| {
            self.settings.cooldowns.applies_at(&widenings, at)
        });
        if now >= allowed_at {
            return Ok(());
        }
        Err(AppError::invalid(
            ErrorCode::FirstFactorTooRecent,
            format!(
                "the account's first authenticator was enrolled too recently to unlock a key that can move money: rotating this key's secret is allowed from {}",
                allowed_at.to_rfc3339()
            ),
        ))
    }
}
