//! Who is acting, and the one check every use case starts with.

use crate::error::{AppError, AppResult};
use portcullis_core::operator::{Permission, Role};

/// The authenticated caller of a use case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    /// `op_...` for an operator; `cli:local` for a command run against the local store.
    pub id: String,
    pub role: Role,
    /// Set for a customer signed in to the security center: the one account they may act on.
    pub account: Option<String>,
}

impl Actor {
    /// Someone with shell access to the machine and its database: the bootstrap administrator.
    pub fn local_cli() -> Self {
        Self {
            id: "cli:local".into(),
            role: Role::Admin,
            account: None,
        }
    }

    /// The service itself (sweeps, expiries).
    pub fn system() -> Self {
        Self {
            id: "system".into(),
            role: Role::Admin,
            account: None,
        }
    }

    /// The service acting for someone who proved themselves another way (a customer holding a
    /// single-use cancel link): recorded under `id` in the audit trail.
    pub fn system_as(id: &str) -> Self {
        Self {
            id: id.to_owned(),
            role: Role::Admin,
            account: None,
        }
    }

    /// A customer signed in to the security center: may manage their own keys and protections
    /// (the guard's step-up and cool-downs still apply), and nothing of anyone else's.
    pub fn customer(account: &str) -> Self {
        Self {
            id: format!("customer:{account}"),
            role: Role::Integration,
            account: Some(account.to_owned()),
        }
    }

    /// Refuses a customer acting on another account (as not found: nothing about other
    /// accounts is revealed).
    pub fn require_account(&self, account: &str) -> AppResult<()> {
        match &self.account {
            Some(own) if own != account => Err(AppError::NotFound(format!("account {account}"))),
            _ => Ok(()),
        }
    }

    /// Refuses a customer: for what only the exchange's operators do across accounts (listing
    /// or registering accounts).
    pub fn require_operator(&self) -> AppResult<()> {
        match self.account {
            Some(_) => Err(AppError::Forbidden),
            None => Ok(()),
        }
    }

    pub fn require(&self, permission: Permission) -> AppResult<()> {
        if self.role.allows(permission) {
            Ok(())
        } else {
            Err(AppError::Forbidden)
        }
    }
}
