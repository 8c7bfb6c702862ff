//! The account's security activity as the customer reads it: the audit trail's entries about
//! the account and its keys, in plain words (never the audit's action ids), a page at a time.

use portcullis_core::audit::AuditEntry;

/// Entries per page of the security center's activity list.
pub const ACTIVITY_PAGE: u32 = 20;
/// The furthest page shown: older entries stay in the audit trail, for the exchange's staff.
pub const ACTIVITY_PAGES: u32 = 50;

/// One page of activity, newest first.
#[derive(Debug)]
pub struct ActivityPage {
    pub entries: Vec<AuditEntry>,
    /// The page shown, from 0.
    pub page: u32,
    /// Whether an older page exists.
    pub more: bool,
}

impl ActivityPage {
    /// `newest` holds up to one entry more than the pages up to `page`, newest first.
    pub(crate) fn cut(mut newest: Vec<AuditEntry>, page: u32) -> Self {
        let start = (page * ACTIVITY_PAGE) as usize;
        let more = newest.len() > start + ACTIVITY_PAGE as usize && page + 1 < ACTIVITY_PAGES;
        let entries: Vec<_> = newest
            .drain(start.min(newest.len())..)
            .take(ACTIVITY_PAGE as usize)
            .collect();
        Self {
            entries,
            page,
            more,
        }
    }
}

/// What an audit action means to the customer.
pub fn activity_words(action: &str) -> &'static str {
    match action {
        "account.created" => "Your account was set up",
        "account.updated" => "Account details changed",
        "account.frozen" => "Account frozen",
        "account.unfrozen" => "Freeze lifted",
        "account.settings_locked" => "Settings locked",
        "address.removed" => "Withdrawal address removed",
        "api_key.created" => "API key created",
        "api_key.imported" => "API key brought in from elsewhere",
        "api_key.updated" => "API key changed",
        "api_key.rotated" => "API key's secret replaced",
        "api_key.revoked" => "API key revoked",
        "passkey.added" => "Passkey added",
        "passkey.removed" => "Passkey removed",
        "passkey.registration_started" => "Started adding a passkey",
        "passkey.registration_refused" => "A passkey could not be added",
        "security_center.link_issued" => "The exchange opened the way into this security center",
        "security_center.signed_in" => "Signed in to the security center",
        "step_up.passed" => "Confirmed it was you",
        "step_up.failed" | "totp.code_refused" => "A confirmation failed (wrong code or passkey)",
        "totp.enrolment_started" => "Started adding an authenticator app",
        "totp.enrolled" => "Authenticator app added",
        "totp.removed" => "Authenticator app removed",
        "widening.requested" => "Change requested: waiting period started",
        "widening.applied" => "Change took effect",
        "widening.cancelled" => "Change cancelled",
        "widening.failed" => "Change could not be made",
        "widening.held" => "Change put on hold for review",
        "widening.released" => "Change released after review",
        "widening.risk_stopped" => "Change stopped by the automatic scam check",
        "request.refused" => "A request was refused",
        "withdrawal.release_approved" => "A held withdrawal was approved by one reviewer",
        "withdrawal.released" => "A held withdrawal was released after review",
        "withdrawal.cancelled" => "A held withdrawal was cancelled",
        _ => "Other security event",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_action_the_guard_audits_has_words_without_ids() {
        for action in [
            "account.frozen",
            "step_up.passed",
            "widening.risk_stopped",
            "api_key.revoked",
        ] {
            let words = activity_words(action);
            assert_ne!(words, "Other security event", "{action}");
            assert!(!words.contains('_') && !words.contains('.'), "{words}");
        }
    }
}
