//! The contact channel guarded like a widening: a new e-mail address or anti-phishing code
//! decides where every later announcement and cancel link goes, so in the scam it is changed
//! first. It waits out its own cool-down, announced to the *old* address with a cancel link and
//! a single-use freeze link, and applies in one commit told to both addresses. Edits that leave
//! the contact as it is (display name, phone) apply at once.

use super::notices::change_notice;
use super::pending::update;
use super::stepup::target;
use super::widening::{PendingReceipt, WideningRequest};
use super::{Guard, token_hash};
use crate::ErrorCode;
use crate::access::{AccountAccess, Actor};
use crate::accounts::{self, AccountFields};
use crate::changes::Change;
use crate::error::{AppError, AppResult};
use crate::notify::{announce, announce_to_former_address};
use crate::ports::{FreezeLink, PendingAction, PendingChange, Write};
use crate::random;
use portcullis_core::account::Account;
use portcullis_core::events::EventContext;
use portcullis_core::guard::stepup::Action;
use portcullis_core::guard::widening::{self, ContactTerms};
use portcullis_core::guard::{PendingStatus, StepUpMethod};
use portcullis_core::notice::NoticeKind;
use portcullis_core::operator::Permission;
use portcullis_core::time::UnixMillis;

/// How long a freeze link stays usable: longer than any cool-down, so it still works when the
/// customer reads the e-mail late.
const FREEZE_LINK_TTL_MS: i64 = 30 * 24 * 3_600_000;

/// What an account edit came to.
#[derive(Debug)]
pub enum AccountOutcome {
    /// Nothing contact-related changed: applied at once.
    Applied(Account),
    /// The new contact waits out its cool-down (other fields, if any, applied at once).
    Pending(Box<PendingReceipt>),
}

fn contact(account: &Account) -> ContactTerms {
    ContactTerms {
        email: account.email.clone(),
        anti_phishing_code: account.anti_phishing_code.clone(),
    }
}

/// The field's new value when it changes (`Some(None)` clears it); `None` when it stays.
fn changed(before: &Option<String>, after: &Option<String>) -> Option<Option<String>> {
    (before != after).then(|| after.clone())
}

impl Guard {
    /// What an account edit would need, writing nothing: `None` when it leaves the contact as
    /// it is (it applies at once), else the step-up method; refusals come here first.
    pub async fn check_account_change(
        &self,
        actor: &Actor,
        id: &str,
        fields: AccountFields,
    ) -> AppResult<Option<StepUpMethod>> {
        actor.access_account(Permission::ManageAccounts, id)?;
        let now = self.clock.now();
        let before = self.account(id).await?;
        let after = accounts::edited(&before, fields, now)?;
        if widening::contact_change_widenings(&contact(&before), &contact(&after)).is_empty() {
            return Ok(None);
        }
        self.step_up_needed(id, Action::Widen, now).await.map(Some)
    }

    /// Changes an account: at once unless the e-mail address or anti-phishing code changes,
    /// which goes through the protections, a step-up and its cool-down. Everything is validated
    /// before anything is written.
    pub async fn change_account(
        &self,
        actor: &Actor,
        id: &str,
        fields: AccountFields,
        grant: Option<&str>,
    ) -> AppResult<AccountOutcome> {
        let access = actor.access_account(Permission::ManageAccounts, id)?;
        let now = self.clock.now();
        let before = self.account(id).await?;
        let after = accounts::edited(&before, fields, now)?;
        let widenings = widening::contact_change_widenings(&contact(&before), &contact(&after));
        if widenings.is_empty() {
            let change = accounts::update_change(Change::new(&access, now), &before, &after);
            self.store.commit(change.into_set()).await?;
            return Ok(AccountOutcome::Applied(after));
        }
        // The fields that are not a channel apply at once, in the same commit as the pending
        // change (so a refused step-up writes neither).
        let immediate = Account {
            email: before.email.clone(),
            anti_phishing_code: before.anti_phishing_code.clone(),
            ..after.clone()
        };
        let others_changed =
            after.display_name != before.display_name || after.phone != before.phone;
        let request = WideningRequest {
            account: id,
            action: PendingAction::ContactChange {
                email: changed(&before.email, &after.email),
                anti_phishing_code: changed(&before.anti_phishing_code, &after.anti_phishing_code),
            },
            widenings,
            grant,
            event: None,
            ctx: EventContext::default(),
            account_edit: others_changed.then_some((before, immediate)),
        };
        self.request_widening(&access, request, now)
            .await
            .map(|receipt| AccountOutcome::Pending(Box::new(receipt)))
    }

    /// A new single-use freeze link for `account`: the write that stores its hash, and its URL.
    pub(crate) fn new_freeze_link(
        &self,
        account: &str,
        now: UnixMillis,
    ) -> AppResult<(Write, String)> {
        let token = format!("pfz_{}", random::alphanumeric(43)?);
        let link = FreezeLink {
            token_hash: token_hash(&token),
            account: account.to_owned(),
            created_at: now,
            expires_at: now.plus_millis(FREEZE_LINK_TTL_MS),
            used_at: None,
        };
        let url = format!("{}/freeze/{token}", self.settings.public_url);
        Ok((Write::InsertFreezeLink(link), url))
    }

    /// The account a freeze link would freeze (to show before the customer confirms).
    pub async fn freeze_link_account(&self, token: &str) -> AppResult<FreezeLink> {
        let link = self
            .store
            .freeze_link(&token_hash(token))
            .await?
            .ok_or_else(|| {
                AppError::invalid(
                    ErrorCode::InvalidFreezeLink,
                    "this freeze link is not valid",
                )
            })?;
        if link.used_at.is_some() {
            return Err(AppError::invalid(
                ErrorCode::FreezeLinkUsed,
                "this freeze link was already used",
            ));
        }
        if self.clock.now() >= link.expires_at {
            return Err(AppError::invalid(
                ErrorCode::FreezeLinkExpired,
                "this freeze link has expired",
            ));
        }
        Ok(link)
    }

    /// Freezes through the single-use link from an announcement; needs no other credential,
    /// because a freeze only ever makes an account safer. The link is spent in the freeze's
    /// own commit, so two clicks freeze (and audit) once.
    pub async fn freeze_by_token(&self, token: &str) -> AppResult<super::FreezeReport> {
        let link = self.freeze_link_account(token).await?;
        // The link proves the customer of that one account.
        let customer = Actor::customer(&link.account);
        let access = customer.access_account(Permission::ManageKeys, &link.account)?;
        let spend = Write::SpendFreezeLink {
            token_hash: link.token_hash.clone(),
            at: self.clock.now(),
        };
        self.freeze_with(&access, EventContext::default(), Some(spend))
            .await
    }

    /// Applies a due contact change to the account as it is now (only the fields it names),
    /// with the audit entry and a notice to both the old and the new address.
    pub(crate) async fn apply_contact_change(
        &self,
        access: &AccountAccess<'_>,
        change: &PendingChange,
        status: PendingStatus,
        unchanged: Write,
        now: UnixMillis,
    ) -> AppResult<()> {
        access.covers(&change.account)?;
        let PendingAction::ContactChange {
            email,
            anti_phishing_code,
        } = &change.action
        else {
            return Err(AppError::Internal("not a contact change".into()));
        };
        let before = self.account(&change.account).await?;
        let mut after = before.clone();
        if let Some(email) = email {
            after.email = email.clone();
        }
        if let Some(code) = anti_phishing_code {
            after.anti_phishing_code = code.clone();
        }
        after.updated_at = now;
        after.version = before.version + 1;
        after
            .validate()
            .map_err(|e| AppError::invalid(ErrorCode::InvalidAccount, e.to_string()))?;
        let closed = PendingChange {
            status,
            version: change.version + 1,
            ..change.clone()
        };
        let mut commit = accounts::update_change(Change::new(access, now), &before, &after)
            .write(unchanged)
            .write(update(closed.clone(), change.version))
            .audit(
                "widening.applied",
                target(&change.account),
                super::widening::pending_details(&closed),
            );
        let notice = change_notice(NoticeKind::ContactChanged, &closed, now);
        for write in announce(&after, &notice, &self.channels, now) {
            commit = commit.write(write);
        }
        // The old address hears it too, under its old code: if this was not the customer, it
        // is the last message that still reaches them.
        if let Some(write) =
            announce_to_former_address(&before, &after, &notice, &self.channels, now)
        {
            commit = commit.write(write);
        }
        Ok(self.store.commit(commit.into_set()).await?)
    }
}

/// The audit entry of an edit committed with a pending contact change.
pub(crate) fn account_edit(commit: Change, edit: Option<(Account, Account)>) -> Change {
    match edit {
        Some((before, after)) => accounts::update_change(commit, &before, &after),
        None => commit,
    }
}

/// What a contact change shows the customer, one line per field. The new anti-phishing code
/// is never repeated: the notice goes to the old address, and the code is a shared secret.
pub(crate) fn describe_contact(
    email: &Option<Option<String>>,
    code: &Option<Option<String>>,
) -> Vec<String> {
    let mut lines = Vec::new();
    match email {
        Some(Some(address)) => lines.push(format!(
            "new e-mail address for security notices: {address}"
        )),
        Some(None) => lines.push("the e-mail address for security notices is removed".into()),
        None => {}
    }
    match code {
        Some(Some(_)) => lines.push("a new anti-phishing code".into()),
        Some(None) => lines.push("the anti-phishing code is removed".into()),
        None => {}
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_code_is_never_described() {
        let lines = describe_contact(
            &Some(Some("new@example.net".into())),
            &Some(Some("Secret77".into())),
        );
        assert_eq!(
            lines,
            vec![
                "new e-mail address for security notices: new@example.net".to_owned(),
                "a new anti-phishing code".to_owned()
            ]
        );
        assert!(!lines.join(" ").contains("Secret77"));
        assert_eq!(
            describe_contact(&None, &Some(None)),
            vec!["the anti-phishing code is removed".to_owned()]
        );
    }
}
