//! What counts as widening an API key, and the terms a key with `withdraw` must meet.
//!
//! Widening is anything that lets a stolen or talked-into key do more: adding `withdraw` or
//! `transfer`, removing or widening the IP allow-list, extending (or removing) the expiry.
//! Adding `read` or `trade` is not a widening in this sense: neither moves funds off the
//! exchange. Everything else about a change (its label, fewer scopes, a tighter list, an
//! earlier expiry) is narrowing or neutral, and is applied at once.

use crate::allowlist::IpAllowList;
use crate::scope::{Scope, ScopeSet};
use crate::time::UnixMillis;
use serde::{Deserialize, Serialize};

/// The part of a key's configuration that decides what it can do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyTerms {
    pub scopes: ScopeSet,
    pub ip_allowlist: IpAllowList,
    pub expires_at: Option<UnixMillis>,
}

/// One way a change widens a key (or an account), with a stable name for reasons and UI.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Widening {
    /// `withdraw` added (or a key created with it).
    AddsWithdraw,
    /// `transfer` added (or a key created with it).
    AddsTransfer,
    /// The allow-list now admits addresses it did not (removed entirely, or new networks).
    WidensAllowlist,
    /// The key lives longer than it would have (later expiry, or none).
    ExtendsExpiry,
    /// A new withdrawal address on the account's allow-list.
    AddsAddress,
    /// A protection switched off (unfreezing, removing TOTP).
    DisablesProtection,
    /// The account's e-mail address or anti-phishing code changes: every later announcement
    /// and cancel link would go to (and be vouched for by) whoever set them.
    ChangesContact,
}

impl Widening {
    pub const fn as_str(self) -> &'static str {
        match self {
            Widening::AddsWithdraw => "adds_withdraw",
            Widening::AddsTransfer => "adds_transfer",
            Widening::WidensAllowlist => "widens_allowlist",
            Widening::ExtendsExpiry => "extends_expiry",
            Widening::AddsAddress => "adds_address",
            Widening::DisablesProtection => "disables_protection",
            Widening::ChangesContact => "changes_contact",
        }
    }

    /// What the customer is shown in the warning and in notifications.
    pub const fn describe(self) -> &'static str {
        match self {
            Widening::AddsWithdraw => "allow withdrawals with this key",
            Widening::AddsTransfer => "allow transfers with this key",
            Widening::WidensAllowlist => "let this key be used from more IP addresses",
            Widening::ExtendsExpiry => "make this key live longer",
            Widening::AddsAddress => "add a withdrawal address",
            Widening::DisablesProtection => "turn off a protection",
            Widening::ChangesContact => {
                "change the e-mail address or anti-phishing code of security notices"
            }
        }
    }
}

/// The widenings in going from `before` to `after`, in a fixed order (empty: apply at once).
pub fn key_change_widenings(before: &KeyTerms, after: &KeyTerms) -> Vec<Widening> {
    let mut found = scope_widenings(after.scopes.added_since(before.scopes));
    if !after.ip_allowlist.is_within(&before.ip_allowlist) {
        found.push(Widening::WidensAllowlist);
    }
    let extends = match (before.expires_at, after.expires_at) {
        (Some(_), None) => true,
        (Some(old), Some(new)) => new > old,
        (None, _) => false,
    };
    if extends {
        found.push(Widening::ExtendsExpiry);
    }
    found
}

/// The account's contact fields that official notices depend on: where e-mail goes, and the
/// code that proves an e-mail genuine. (The phone number is not an announcement channel.)
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ContactTerms {
    pub email: Option<String>,
    pub anti_phishing_code: Option<String>,
}

/// The widenings in changing an account's contact from `before` to `after`: any change to
/// either field (clearing one included: without an address nobody is told) waits.
pub fn contact_change_widenings(before: &ContactTerms, after: &ContactTerms) -> Vec<Widening> {
    if before == after {
        Vec::new()
    } else {
        vec![Widening::ChangesContact]
    }
}

/// The widenings in creating a key with `terms`: its fund-moving scopes. (A new key's allow-list
/// and expiry widen nothing that existed before.)
pub fn new_key_widenings(terms: &KeyTerms) -> Vec<Widening> {
    scope_widenings(terms.scopes)
}

fn scope_widenings(added: ScopeSet) -> Vec<Widening> {
    let mut found = Vec::new();
    if added.contains(Scope::Withdraw) {
        found.push(Widening::AddsWithdraw);
    }
    if added.contains(Scope::Transfer) {
        found.push(Widening::AddsTransfer);
    }
    found
}

/// The scopes that move funds and so wait out a cool-down.
pub const FUND_MOVING: [Scope; 2] = [Scope::Withdraw, Scope::Transfer];

/// `terms` without its fund-moving scopes: what a new key gets at once while those wait.
pub fn without_fund_moving(scopes: ScopeSet) -> ScopeSet {
    ScopeSet::parse(
        scopes
            .iter()
            .filter(|scope| !FUND_MOVING.contains(scope))
            .map(Scope::as_str),
    )
    .unwrap_or(ScopeSet::EMPTY)
}

/// A key configuration the authority refuses whatever the step-up.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TermsError {
    #[error("a key with `withdraw` must have a non-empty IP allow-list")]
    WithdrawNeedsAllowlist,
}

/// `withdraw` is only ever granted to a key that can be used from known addresses: the drain in
/// the scam comes from the attacker's infrastructure, which the allow-list keeps out.
pub fn check_terms(terms: &KeyTerms) -> Result<(), TermsError> {
    if terms.scopes.contains(Scope::Withdraw) && terms.ip_allowlist.is_unrestricted() {
        return Err(TermsError::WithdrawNeedsAllowlist);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn terms(scopes: &[&str], allow: &[&str], expires: Option<i64>) -> KeyTerms {
        KeyTerms {
            scopes: ScopeSet::parse(scopes.iter().copied()).unwrap(),
            ip_allowlist: IpAllowList::parse(allow.iter().copied()).unwrap(),
            expires_at: expires.map(UnixMillis),
        }
    }

    #[test]
    fn adding_fund_moving_scopes_widens_but_trade_does_not() {
        let before = terms(&["read"], &["203.0.113.7"], None);
        let after = terms(
            &["read", "trade", "withdraw", "transfer"],
            &["203.0.113.7"],
            None,
        );
        assert_eq!(
            key_change_widenings(&before, &after),
            vec![Widening::AddsWithdraw, Widening::AddsTransfer]
        );
        let trade_only = terms(&["read", "trade"], &["203.0.113.7"], None);
        assert!(key_change_widenings(&before, &trade_only).is_empty());
    }

    #[test]
    fn allowlist_widening_is_any_new_reachable_address() {
        let before = terms(&["read"], &["203.0.113.0/24"], None);
        let narrower = terms(&["read"], &["203.0.113.7"], None);
        let removed = terms(&["read"], &[], None);
        let elsewhere = terms(&["read"], &["203.0.113.0/24", "198.51.100.23"], None);
        assert!(key_change_widenings(&before, &narrower).is_empty());
        assert_eq!(
            key_change_widenings(&before, &removed),
            vec![Widening::WidensAllowlist]
        );
        assert_eq!(
            key_change_widenings(&before, &elsewhere),
            vec![Widening::WidensAllowlist]
        );
        // Restricting an unrestricted key is narrowing.
        assert!(key_change_widenings(&removed, &narrower).is_empty());
    }

    #[test]
    fn expiry_later_or_removed_widens_earlier_does_not() {
        let before = terms(&["read"], &[], Some(1_000));
        assert!(key_change_widenings(&before, &terms(&["read"], &[], Some(500))).is_empty());
        assert_eq!(
            key_change_widenings(&before, &terms(&["read"], &[], Some(2_000))),
            vec![Widening::ExtendsExpiry]
        );
        assert_eq!(
            key_change_widenings(&before, &terms(&["read"], &[], None)),
            vec![Widening::ExtendsExpiry]
        );
        let forever = terms(&["read"], &[], None);
        assert!(key_change_widenings(&forever, &terms(&["read"], &[], Some(9))).is_empty());
    }

    #[test]
    fn narrowing_everything_at_once_is_no_widening() {
        let before = terms(
            &["read", "trade", "withdraw"],
            &["203.0.113.0/24"],
            Some(10),
        );
        let after = terms(&["read"], &["203.0.113.7"], Some(5));
        assert!(key_change_widenings(&before, &after).is_empty());
    }

    #[test]
    fn withdraw_requires_an_allowlist() {
        assert_eq!(
            check_terms(&terms(&["withdraw"], &[], None)),
            Err(TermsError::WithdrawNeedsAllowlist)
        );
        assert!(check_terms(&terms(&["withdraw"], &["203.0.113.7"], None)).is_ok());
        assert!(check_terms(&terms(&["transfer", "trade"], &[], None)).is_ok());
    }

    #[test]
    fn any_contact_change_widens_and_no_change_does_not() {
        let contact = |email: Option<&str>, code: Option<&str>| ContactTerms {
            email: email.map(str::to_owned),
            anti_phishing_code: code.map(str::to_owned),
        };
        let before = contact(Some("ada@example.com"), Some("Blue42"));
        assert!(contact_change_widenings(&before, &before.clone()).is_empty());
        for after in [
            contact(Some("scam@example.net"), Some("Blue42")),
            contact(Some("ada@example.com"), Some("Red7777")),
            contact(None, Some("Blue42")),
            contact(Some("ada@example.com"), None),
        ] {
            assert_eq!(
                contact_change_widenings(&before, &after),
                vec![Widening::ChangesContact]
            );
        }
        // Setting a first address is a change too: it decides where the cancel links go.
        assert_eq!(
            contact_change_widenings(&contact(None, None), &before),
            vec![Widening::ChangesContact]
        );
        assert_eq!(Widening::ChangesContact.as_str(), "changes_contact");
    }

    #[test]
    fn new_keys_wait_only_for_fund_moving_scopes() {
        let t = terms(&["read", "withdraw"], &["203.0.113.7"], None);
        assert_eq!(new_key_widenings(&t), vec![Widening::AddsWithdraw]);
        assert_eq!(
            without_fund_moving(t.scopes),
            ScopeSet::parse(["read"]).unwrap()
        );
    }
}
