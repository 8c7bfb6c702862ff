//! Which confirmation each sensitive action needs.
//!
//! The scammer on the phone can have a one-time code read out to them; they cannot have a
//! passkey ceremony performed for them on a site they do not control. So widening takes a
//! passkey when the customer has one, else TOTP, and never an e-mail or SMS code: those
//! methods are not even representable here.

use serde::{Deserialize, Serialize};

/// A method strong enough to widen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepUpMethod {
    Passkey,
    Totp,
}

impl StepUpMethod {
    pub const fn as_str(self) -> &'static str {
        match self {
            StepUpMethod::Passkey => "passkey",
            StepUpMethod::Totp => "totp",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "passkey" => Some(StepUpMethod::Passkey),
            "totp" => Some(StepUpMethod::Totp),
            _ => None,
        }
    }
}

/// What an action demands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Requirement {
    /// A passkey if one is enrolled, otherwise TOTP.
    PasskeyElseTotp,
    /// A passkey, whatever else is enrolled.
    Passkey,
}

/// The actions that need a step-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// Any widening of a key or the address allow-list.
    Widen,
    /// Lifting a freeze.
    Unfreeze,
    /// Adding a passkey or an authenticator app once something is enrolled (the first factor
    /// takes none), removing a passkey or the app.
    ManageAuthenticators,
}

/// The configured requirement per action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepUpPolicy {
    pub widen: Requirement,
    pub unfreeze: Requirement,
    pub manage_authenticators: Requirement,
}

impl Default for StepUpPolicy {
    fn default() -> Self {
        Self {
            widen: Requirement::PasskeyElseTotp,
            unfreeze: Requirement::Passkey,
            manage_authenticators: Requirement::PasskeyElseTotp,
        }
    }
}

/// What the customer has enrolled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Enrolment {
    pub passkeys: usize,
    pub totp: bool,
}

/// Why a step-up cannot satisfy an action.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StepUpError {
    #[error("enrol a passkey or an authenticator app (TOTP) before making this change")]
    NothingEnrolled,
    #[error("this change needs a passkey; enrol one first")]
    PasskeyNotEnrolled,
    #[error("this change needs a {needed} confirmation, not {used}", needed = .needed.as_str(), used = .used.as_str())]
    WrongMethod {
        needed: StepUpMethod,
        used: StepUpMethod,
    },
}

impl StepUpPolicy {
    pub fn requirement(&self, action: Action) -> Requirement {
        match action {
            Action::Widen => self.widen,
            Action::Unfreeze => self.unfreeze,
            Action::ManageAuthenticators => self.manage_authenticators,
        }
    }

    /// The method the customer must use for `action`.
    pub fn method_for(
        &self,
        action: Action,
        enrolled: Enrolment,
    ) -> Result<StepUpMethod, StepUpError> {
        match (self.requirement(action), enrolled) {
            (_, Enrolment { passkeys, .. }) if passkeys > 0 => Ok(StepUpMethod::Passkey),
            (Requirement::Passkey, _) => Err(StepUpError::PasskeyNotEnrolled),
            (Requirement::PasskeyElseTotp, Enrolment { totp: true, .. }) => Ok(StepUpMethod::Totp),
            (Requirement::PasskeyElseTotp, _) => Err(StepUpError::NothingEnrolled),
        }
    }

    /// Whether a confirmation made with `used` satisfies `action`.
    pub fn accepts(
        &self,
        action: Action,
        enrolled: Enrolment,
        used: StepUpMethod,
    ) -> Result<(), StepUpError> {
        let needed = self.method_for(action, enrolled)?;
        if needed == used {
            Ok(())
        } else {
            Err(StepUpError::WrongMethod { needed, used })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NONE: Enrolment = Enrolment {
        passkeys: 0,
        totp: false,
    };
    const TOTP: Enrolment = Enrolment {
        passkeys: 0,
        totp: true,
    };
    const BOTH: Enrolment = Enrolment {
        passkeys: 2,
        totp: true,
    };

    #[test]
    fn widening_takes_a_passkey_when_there_is_one_else_totp() {
        let policy = StepUpPolicy::default();
        assert_eq!(
            policy.method_for(Action::Widen, BOTH),
            Ok(StepUpMethod::Passkey)
        );
        assert_eq!(
            policy.method_for(Action::Widen, TOTP),
            Ok(StepUpMethod::Totp)
        );
        assert_eq!(
            policy.method_for(Action::Widen, NONE),
            Err(StepUpError::NothingEnrolled)
        );
        assert_eq!(
            policy.accepts(Action::Widen, BOTH, StepUpMethod::Totp),
            Err(StepUpError::WrongMethod {
                needed: StepUpMethod::Passkey,
                used: StepUpMethod::Totp
            })
        );
    }

    #[test]
    fn unfreezing_takes_a_passkey() {
        let policy = StepUpPolicy::default();
        assert_eq!(
            policy.method_for(Action::Unfreeze, TOTP),
            Err(StepUpError::PasskeyNotEnrolled)
        );
        assert!(
            policy
                .accepts(Action::Unfreeze, BOTH, StepUpMethod::Passkey)
                .is_ok()
        );
    }
}
