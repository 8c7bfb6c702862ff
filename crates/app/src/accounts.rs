//! Accounts: registering the exchange's customers with their official contacts and
//! anti-phishing code, and changing them.

use crate::ErrorCode;
use crate::access::Actor;
use crate::changes::Change;
use crate::error::{AppError, AppResult};
use crate::ports::{Clock, Store, Write};
use portcullis_core::account::{Account, AccountError};
use portcullis_core::operator::Permission;
use portcullis_core::time::UnixMillis;
use serde_json::json;
use std::sync::Arc;

/// Largest page of accounts returned at once.
pub const MAX_PAGE: u32 = 500;

/// The fields a caller supplies for an account.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccountFields {
    pub display_name: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub anti_phishing_code: Option<String>,
}

/// The account use cases.
#[derive(Debug, Clone)]
pub struct Accounts {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
}

impl Accounts {
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>) -> Self {
        Self { store, clock }
    }

    pub async fn create(
        &self,
        actor: &Actor,
        id: &str,
        fields: AccountFields,
    ) -> AppResult<Account> {
        actor.require_operator(Permission::ManageAccounts)?;
        let now = self.clock.now();
        let account = Account {
            id: id.to_owned(),
            display_name: fields.display_name.unwrap_or_default(),
            email: fields.email,
            phone: fields.phone,
            anti_phishing_code: fields.anti_phishing_code,
            created_at: now,
            updated_at: now,
            version: 1,
        };
        account.validate().map_err(invalid)?;
        let change = Change::global(actor, now)
            .write(Write::InsertAccount(account.clone()))
            .audit(
                "account.created",
                format!("account:{id}"),
                details(&account),
            );
        self.store.commit(change.into_set()).await?;
        Ok(account)
    }

    /// Changes the given fields at once; an empty string clears an optional one. The guard
    /// calls this only for edits that leave the contact fields as they are (a new e-mail
    /// address or anti-phishing code is a widening: `Guard::change_account`).
    pub async fn update(
        &self,
        actor: &Actor,
        id: &str,
        fields: AccountFields,
    ) -> AppResult<Account> {
        let access = actor.access_account(Permission::ManageAccounts, id)?;
        let before = self.get_unchecked(id).await?;
        let now = self.clock.now();
        let after = edited(&before, fields, now)?;
        let change = update_change(Change::new(&access, now), &before, &after);
        self.store.commit(change.into_set()).await?;
        Ok(after)
    }

    pub async fn get(&self, actor: &Actor, id: &str) -> AppResult<Account> {
        actor.access_account(Permission::ReadAccounts, id)?;
        self.get_unchecked(id).await
    }

    pub async fn list(
        &self,
        actor: &Actor,
        after: Option<&str>,
        limit: u32,
    ) -> AppResult<Vec<Account>> {
        actor.require_operator(Permission::ReadAccounts)?;
        Ok(self
            .store
            .list_accounts(after, limit.clamp(1, MAX_PAGE))
            .await?)
    }

    async fn get_unchecked(&self, id: &str) -> AppResult<Account> {
        self.store
            .account(id)
            .await?
            .ok_or_else(|| AppError::NotFound(format!("account {id}")))
    }
}

/// `before` with `fields` applied (an empty string clears an optional field), validated.
pub fn edited(before: &Account, fields: AccountFields, now: UnixMillis) -> AppResult<Account> {
    let mut after = before.clone();
    if let Some(name) = fields.display_name {
        after.display_name = name;
    }
    let cleared = |value: String| (!value.is_empty()).then_some(value);
    if let Some(email) = fields.email {
        after.email = cleared(email);
    }
    if let Some(phone) = fields.phone {
        after.phone = cleared(phone);
    }
    if let Some(code) = fields.anti_phishing_code {
        after.anti_phishing_code = cleared(code);
    }
    after.updated_at = now;
    after.version = before.version + 1;
    after.validate().map_err(invalid)?;
    Ok(after)
}

/// `change` with the write from `before` to `after` (versioned) and its audit entry.
pub(crate) fn update_change(change: Change, before: &Account, after: &Account) -> Change {
    change
        .write(Write::UpdateAccount {
            account: after.clone(),
            expected_version: before.version,
        })
        .audit(
            "account.updated",
            format!("account:{}", after.id),
            json!({ "before": details(before), "after": details(after) }),
        )
}

/// A field the account cannot have, with a stable code per contact field (so a form can say
/// which field is wrong) and `invalid_account` for the rest.
fn invalid(error: AccountError) -> AppError {
    let code = match error {
        AccountError::InvalidEmail(_) => ErrorCode::InvalidEmail,
        AccountError::InvalidAntiPhishingCode => ErrorCode::InvalidAntiPhishingCode,
        _ => ErrorCode::InvalidAccount,
    };
    AppError::invalid(code, error.to_string())
}

/// The audit trail records whether the anti-phishing code is set, never the code itself
/// (it is a shared secret between the exchange and the customer).
pub(crate) fn details(account: &Account) -> serde_json::Value {
    json!({
        "display_name": account.display_name,
        "email": account.email,
        "phone": account.phone,
        "anti_phishing_code_set": account.anti_phishing_code.is_some(),
    })
}
