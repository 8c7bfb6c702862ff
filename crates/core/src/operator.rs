//! Operators: the people and systems at the exchange that call Portcullis, and what each role
//! may do.
//!
//! Permissions are checked against a role, never against a name, and every non-public endpoint
//! names the permission it needs, so the whole access policy is the table in `Role::allows`.

use std::fmt;
use std::str::FromStr;

/// An operator's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// Everything, including operators, key import and secret re-wrapping.
    Admin,
    /// Reads accounts, keys, events and the audit trail; changes nothing.
    Analyst,
    /// The exchange's backend: verifies signed requests and manages customers' accounts and keys.
    Integration,
}

/// What an endpoint or command needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Permission {
    VerifyRequests,
    ReadAccounts,
    ManageAccounts,
    ReadKeys,
    ManageKeys,
    ImportKeys,
    ReadAudit,
    ManageOperators,
    /// Re-wrapping secrets under a new master key.
    ManageSecrets,
    /// Reading the event log and risk decisions.
    ReadEvents,
    /// Sending events to the risk engine and asking it for decisions.
    IngestEvents,
    /// Replacing the risk policy.
    ManagePolicy,
    /// Holding and releasing pending widenings (fraud review).
    ReviewChanges,
    /// Adding and removing the exchange's official contacts.
    ManageContacts,
    /// Reading the official contacts and the reports of contacts that claimed to be the
    /// exchange.
    ReadContacts,
    /// Asking whether a phone number, address, link or handle is the exchange's.
    VerifyContacts,
    /// Minting a customer's single-use security-center sign-in link (after the exchange's own
    /// login).
    SignInCustomers,
    /// Protecting an account: freezing it and cancelling its pending widenings. Protective
    /// only (lifting a freeze takes `ManageKeys`), so a fraud analyst can stop a drain in
    /// progress without an administrator.
    ProtectAccounts,
    /// Forcing an entity of the risk engine's graph to count as confirmed fraud (a `force`
    /// override): it holds every pending change of the accounts it links, so only
    /// administrators may (analysts suppress known-good links with `ReviewChanges`).
    ForceLinks,
}

/// A role name that does not exist.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown role `{0}` (expected admin, analyst or integration)")]
pub struct RoleError(pub String);

impl Role {
    pub const fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Analyst => "analyst",
            Role::Integration => "integration",
        }
    }

    pub fn allows(self, permission: Permission) -> bool {
        use Permission::*;
        match self {
            Role::Admin => true,
            Role::Analyst => matches!(
                permission,
                ReadAccounts
                    | ReadKeys
                    | ReadAudit
                    | ReadEvents
                    | ReviewChanges
                    | ProtectAccounts
                    | ReadContacts
                    | VerifyContacts
            ),
            Role::Integration => matches!(
                permission,
                VerifyRequests
                    | ReadAccounts
                    | ManageAccounts
                    | ReadKeys
                    | ManageKeys
                    | ProtectAccounts
                    | ReadEvents
                    | IngestEvents
                    | ReadContacts
                    | VerifyContacts
                    | SignInCustomers
            ),
        }
    }
}

impl FromStr for Role {
    type Err = RoleError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "admin" => Ok(Role::Admin),
            "analyst" => Ok(Role::Analyst),
            "integration" => Ok(Role::Integration),
            other => Err(RoleError(other.to_owned())),
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn analysts_only_read_and_integrations_cannot_import_or_administer() {
        assert!(Role::Analyst.allows(Permission::ReadAudit));
        assert!(!Role::Analyst.allows(Permission::ManageKeys));
        assert!(Role::Analyst.allows(Permission::ProtectAccounts));
        assert!(Role::Integration.allows(Permission::ProtectAccounts));
        assert!(!Role::Analyst.allows(Permission::ForceLinks));
        assert!(!Role::Integration.allows(Permission::ForceLinks));
        assert!(Role::Admin.allows(Permission::ForceLinks));
        assert!(!Role::Analyst.allows(Permission::VerifyRequests));
        assert!(Role::Integration.allows(Permission::VerifyRequests));
        assert!(!Role::Integration.allows(Permission::ImportKeys));
        assert!(!Role::Integration.allows(Permission::ManageOperators));
        assert!(!Role::Integration.allows(Permission::ReadAudit));
        assert!(Role::Admin.allows(Permission::ImportKeys));
    }

    #[test]
    fn role_names_round_trip() {
        for role in [Role::Admin, Role::Analyst, Role::Integration] {
            assert_eq!(role.as_str().parse::<Role>().unwrap(), role);
        }
        assert!("root".parse::<Role>().is_err());
    }
}
