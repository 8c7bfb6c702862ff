//! What counts as widening an API key, and the terms a key with `withdraw` must meet.
//!
//! Widening is anything that lets a stolen or talked-into key do more: adding `withdraw` or
//! `transfer`, removing or widening the IP allow-list, extending (or removing) the expiry.
//! Adding `read` or `trade` is not a widening in this sense: neither moves funds off the
//! exchange. Everything else about a change (its label, fewer scopes, a tighter list, an
//! earlier expiry) is narrowing or neutral, and is applied at once.

use crate::allowlist::IpAllowList;
use crate::guard::fund_window::FundWindow;
use crate::scope::{Scope, ScopeSet};
use crate::time::UnixMillis;
use serde::{Deserialize, Serialize};

/// The part of a key's configuration that decides what it can do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyTerms {
    pub scopes: ScopeSet,
    pub ip_allowlist: IpAllowList,
    pub expires_at: Option<UnixMillis>,
    /// The fund-moving scopes granted only for a while, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fund_window: Option<FundWindow>,
}

impl KeyTerms {
    /// The terms of `key` as it is configured now.
    pub fn of(key: &crate::key::ApiKey) -> Self {
        Self {
            scopes: key.scopes,
            ip_allowlist: key.ip_allowlist.clone(),
            expires_at: key.expires_at,
            fund_window: key.fund_window,
        }
    }
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
    /// Funds may leave through the key for longer or for more than its fund window allows
    /// (a later end, a higher or no cap, or no window at all).
    ExtendsFundWindow,
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
            Widening::ExtendsFundWindow => "extends_fund_window",
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
            Widening::ExtendsFundWindow => {
                "let this key move funds for longer, or more, than its time box allows"
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
    if extends_fund_window(before, after) {
        found.push(Widening::ExtendsFundWindow);
    }
    found
}

/// Whether a fund-moving scope the key kept lasts longer, or may move more, after the change:
/// a window that ends later or is capped higher, or a boxed scope made permanent. (Scopes the
/// key did not have at all are `AddsWithdraw`/`AddsTransfer`; a new window on a key that could
/// move funds without one is a narrowing.)
fn extends_fund_window(before: &KeyTerms, after: &KeyTerms) -> bool {
    let Some(boxed) = &before.fund_window else {
        return false;
    };
    let kept = boxed.scopes.intersection(after.scopes);
    if kept.is_empty() {
        return false;
    }
    match &after.fund_window {
        None => true,
        Some(window) => !kept.is_subset_of(window.scopes) || boxed.extended_by(window),
    }
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

/// The widenings in creating a key with `terms`: its fund-moving scopes, boxed or not. (A new key's allow-list
/// and expiry widen nothing that existed before.)
pub fn new_key_widenings(terms: &KeyTerms) -> Vec<Widening> {
    scope_widenings(terms.scopes)
}

/// The widenings in a key gaining the fund-moving scopes among `added`: what a cool-down of
/// theirs waits for.
pub fn scope_widenings(added: ScopeSet) -> Vec<Widening> {
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

/// Only the fund-moving scopes of `scopes`.
pub fn only_fund_moving(scopes: ScopeSet) -> ScopeSet {
    scopes.intersection(FUND_MOVING.into_iter().collect())
}

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
            fund_window: None,
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

    fn boxed(hours: i64, cap_cents: Option<u64>) -> KeyTerms {
        let mut t = terms(&["read", "withdraw"], &["203.0.113.7"], None);
        t.fund_window = Some(FundWindow {
            scopes: ScopeSet::parse(["withdraw"]).unwrap(),
            until: UnixMillis(hours * 3_600_000),
            cap: cap_cents.map(crate::guard::fund_window::UsdCents),
            spent: Default::default(),
        });
        t
    }

    #[test]
    fn boxing_withdraw_narrows_and_unboxing_or_extending_it_widens() {
        let permanent = terms(&["read", "withdraw"], &["203.0.113.7"], None);
        let six_hours = boxed(6, Some(50_000));
        assert!(key_change_widenings(&permanent, &six_hours).is_empty());
        assert!(key_change_widenings(&six_hours, &boxed(2, Some(10_000))).is_empty());
        for extended in [permanent.clone(), boxed(7, Some(50_000)), boxed(6, None)] {
            assert_eq!(
                key_change_widenings(&six_hours, &extended),
                vec![Widening::ExtendsFundWindow]
            );
        }
        // Dropping the boxed scope altogether narrows; adding transfer beside it is its own.
        let read_only = terms(&["read"], &["203.0.113.7"], None);
        assert!(key_change_widenings(&six_hours, &read_only).is_empty());
        let mut with_transfer = six_hours.clone();
        with_transfer.scopes = ScopeSet::parse(["read", "withdraw", "transfer"]).unwrap();
        assert_eq!(
            key_change_widenings(&six_hours, &with_transfer),
            vec![Widening::AddsTransfer]
        );
    }
}
