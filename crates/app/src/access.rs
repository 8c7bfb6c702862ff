//! Who is acting, what each kind of actor may do, and the proof a use case needs before it
//! touches an account.
//!
//! There are four kinds of actor: an operator of the exchange (with a role), a customer signed
//! in to the security center (one account), the service itself, and the local CLI. A customer
//! is never an operator with a role: what a customer may do is its own permission set
//! ([`customer_allows`]), and the one account it may touch is part of the kind.
//!
//! A use case that touches an account starts with [`Actor::access_account`], which checks the
//! permission and the account at once and hands back an [`AccountAccess`]. Everything that
//! records a change of an account (its audit entries and events, `changes::Change`) is built
//! from that proof, so a new use case cannot write to an account without the check: it would
//! not compile. There is no other way to check an account than to obtain the proof.

use crate::error::{AppError, AppResult};
use portcullis_core::operator::{Permission, Role};

/// What kind of caller this is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ActorKind {
    /// A person or system at the exchange holding an operator token.
    Operator { role: Role },
    /// A customer signed in to the security center (or holding a single-use link of theirs),
    /// acting on their own account and nothing else.
    Customer { account: String },
    /// The service itself: background passes (due changes, sweeps), and the engine's decisions.
    System,
    /// Someone with shell access to the machine and its database: the bootstrap administrator.
    LocalCli,
}

/// The authenticated caller of a use case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    /// What the audit trail records: `op_...`, `customer:<account>`, `system`, `cli:local`.
    id: String,
    kind: ActorKind,
}

/// What a customer may do on their own account: read it and its keys, and manage their keys,
/// protections, step-ups, addresses and contact details (the guard's step-up and cool-downs
/// still apply); and ask whether a contact is the exchange's, reporting it for their own
/// account. Not: verify requests, import keys, mint sign-in links, read the audit trail or
/// the event feed, review changes, read the official contacts or the reports, or anything
/// across accounts.
pub const fn customer_allows(permission: Permission) -> bool {
    use Permission::*;
    matches!(
        permission,
        ReadAccounts | ReadKeys | ManageKeys | ProtectAccounts | ManageAccounts | VerifyContacts
    )
}

impl Actor {
    /// An operator holding a live token.
    pub fn operator(id: impl Into<String>, role: Role) -> Self {
        Self {
            id: id.into(),
            kind: ActorKind::Operator { role },
        }
    }

    /// Someone with shell access to the machine and its database: the bootstrap administrator.
    pub fn local_cli() -> Self {
        Self {
            id: "cli:local".into(),
            kind: ActorKind::LocalCli,
        }
    }

    /// The service itself (sweeps, expiries, due changes, the engine's decisions).
    pub fn system() -> Self {
        Self {
            id: "system".into(),
            kind: ActorKind::System,
        }
    }

    /// A customer of `account`: signed in to the security center, or holding one of their
    /// single-use links (a cancel or a freeze link), which proves them as well for that one
    /// act. Recorded as `customer:<account>`.
    pub fn customer(account: &str) -> Self {
        Self {
            id: format!("customer:{account}"),
            kind: ActorKind::Customer {
                account: account.to_owned(),
            },
        }
    }

    /// What the audit trail records for this actor.
    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn kind(&self) -> &ActorKind {
        &self.kind
    }

    /// The customer's own account, for a customer; `None` for everyone else.
    pub fn customer_account(&self) -> Option<&str> {
        match &self.kind {
            ActorKind::Customer { account } => Some(account),
            _ => None,
        }
    }

    /// Whether this actor's kind (and role) allows `permission`, on some account.
    pub fn allows(&self, permission: Permission) -> bool {
        match &self.kind {
            ActorKind::Operator { role } => role.allows(permission),
            ActorKind::Customer { .. } => customer_allows(permission),
            ActorKind::System | ActorKind::LocalCli => true,
        }
    }

    /// For what needs a permission but touches no one account (verifying a signed request).
    pub fn require(&self, permission: Permission) -> AppResult<()> {
        if self.allows(permission) {
            Ok(())
        } else {
            Err(AppError::Forbidden)
        }
    }

    /// For what only the exchange's side does across accounts (listing or registering
    /// accounts, the audit trail, the event feed, operators): refuses a customer whatever the
    /// permission.
    pub fn require_operator(&self, permission: Permission) -> AppResult<()> {
        match self.kind {
            ActorKind::Customer { .. } => Err(AppError::Forbidden),
            _ => self.require(permission),
        }
    }

    /// The proof that this actor may do what `permission` covers on `account`: forbidden
    /// when its kind never may, not found (nothing about the account is revealed) when it is a
    /// customer of another account.
    pub fn access_account<'a>(
        &'a self,
        permission: Permission,
        account: &str,
    ) -> AppResult<AccountAccess<'a>> {
        self.require(permission)?;
        match &self.kind {
            // Never the other account's id: a customer who posts another account's key id
            // learns nothing about whose it is.
            ActorKind::Customer { account: own } if own != account => {
                Err(AppError::NotFound("that key, change or address".into()))
            }
            _ => Ok(AccountAccess {
                actor: self,
                account: account.to_owned(),
            }),
        }
    }
}

/// The proof that an actor may act on one account, handed out only by
/// [`Actor::access_account`]. Its fields are private, so it cannot be made any other way.
#[derive(Debug, Clone)]
pub struct AccountAccess<'a> {
    actor: &'a Actor,
    account: String,
}

impl<'a> AccountAccess<'a> {
    pub fn actor(&self) -> &'a Actor {
        self.actor
    }

    pub fn account(&self) -> &str {
        &self.account
    }

    /// Fails (as an internal error: a use case mixed up its records) unless this proof is for
    /// `account`: for a function handed both a proof and a record of an account.
    pub fn covers(&self, account: &str) -> AppResult<()> {
        if self.account == account {
            Ok(())
        } else {
            Err(AppError::Internal(format!(
                "a proof for account {} used on account {account}",
                self.account
            )))
        }
    }

    /// A further permission on the same account (a use case that reads first, then changes).
    pub fn require(&self, permission: Permission) -> AppResult<()> {
        self.actor.require(permission)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_customer_reaches_only_their_own_account_and_is_no_integration() {
        let customer = Actor::customer("acc_1");
        assert_eq!(customer.id(), "customer:acc_1");
        let access = customer
            .access_account(Permission::ManageKeys, "acc_1")
            .unwrap();
        assert_eq!(access.account(), "acc_1");
        assert!(matches!(
            customer.access_account(Permission::ReadKeys, "acc_2"),
            Err(AppError::NotFound(_))
        ));
        // What an integration token may do and a customer may not.
        for permission in [
            Permission::VerifyRequests,
            Permission::ReadEvents,
            Permission::IngestEvents,
            Permission::SignInCustomers,
            Permission::ReadContacts,
        ] {
            assert!(Role::Integration.allows(permission), "{permission:?}");
            assert!(!customer.allows(permission), "{permission:?}");
            assert!(matches!(
                customer.access_account(permission, "acc_1"),
                Err(AppError::Forbidden)
            ));
        }
        assert!(matches!(
            customer.require_operator(Permission::ReadAccounts),
            Err(AppError::Forbidden)
        ));
        // Asking whether a contact is the exchange's (the security center's verify page).
        assert!(customer.allows(Permission::VerifyContacts));
        assert!(!customer.allows(Permission::ManageContacts));
    }

    #[test]
    fn operators_follow_their_role_and_the_service_and_cli_may_all() {
        let analyst = Actor::operator("op_1", Role::Analyst);
        assert!(
            analyst
                .access_account(Permission::ReadKeys, "acc_9")
                .is_ok()
        );
        assert!(matches!(
            analyst.access_account(Permission::ManageKeys, "acc_9"),
            Err(AppError::Forbidden)
        ));
        for actor in [Actor::system(), Actor::local_cli()] {
            assert!(
                actor
                    .access_account(Permission::ImportKeys, "acc_9")
                    .is_ok()
            );
            assert!(actor.require_operator(Permission::ManageOperators).is_ok());
            assert_eq!(actor.customer_account(), None);
        }
        assert_eq!(Actor::system().id(), "system");
        assert_eq!(Actor::local_cli().id(), "cli:local");
    }
}
