//! Notices: what Portcullis announces through the exchange's official channels when something
//! security-relevant happens to an account, and how a notice becomes an e-mail or a webhook body.
//!
//! Rendering is pure. Every e-mail opens with the customer's anti-phishing code (a scammer who
//! imitates the exchange does not know it) and carries the same honest warning, because the
//! people these notices protect are often on the phone with a scammer at that very moment.
//! HTML is escaped by `html-escape`, never by hand.

use crate::time::UnixMillis;
use std::fmt::Write as _;

/// What happened. The wire name ([`NoticeKind::type_name`]) is part of the webhook contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NoticeKind {
    /// A widening (more scopes, wider allow-list, ...) is held for its cool-down.
    WideningPending,
    /// The cool-down ended and the widening is in force.
    WideningApplied,
    WideningCancelled,
    /// The widening is held beyond its cool-down (for review).
    WideningHeld,
    AccountFrozen,
    /// An unfreeze was asked for and waits for its cool-down.
    AccountUnfrozen,
    SettingsLocked,
    /// A withdrawal address was added and waits for its cool-down.
    AddressAdded,
    PasskeyAdded,
    PasskeyRemoved,
    TotpEnrolled,
    StepUpLockedOut,
    /// An API key was issued (its fund-moving scopes, if any, wait in a widening).
    KeyCreated,
    /// An existing exchange key was brought under Portcullis.
    KeyImported,
    /// A key's HMAC secret was replaced; the previous one works until the overlap ends.
    KeySecretRotated,
    /// A new e-mail address or anti-phishing code waits for its cool-down (told to the old one).
    ContactChangePending,
    /// The new e-mail address or anti-phishing code is in force (told to the old and the new).
    ContactChanged,
    /// A withdrawal was asked for and let through (a withdrawal alert).
    WithdrawalRequested,
    /// A withdrawal is held for review.
    WithdrawalHeld,
    /// A withdrawal was refused.
    WithdrawalBlocked,
    /// A held withdrawal was released after review by two operators.
    WithdrawalReleased,
    /// A held withdrawal was cancelled after review: it will not be sent.
    WithdrawalCancelled,
    /// A key's time-boxed `withdraw`/`transfer` ended by itself.
    FundWindowLapsed,
    /// The daily security digest the customer asked for.
    DailyDigest,
    /// The daily digest was switched on, moved or switched off.
    DigestChanged,
}

impl NoticeKind {
    pub const ALL: [NoticeKind; 25] = [
        NoticeKind::WideningPending,
        NoticeKind::WideningApplied,
        NoticeKind::WideningCancelled,
        NoticeKind::WideningHeld,
        NoticeKind::AccountFrozen,
        NoticeKind::AccountUnfrozen,
        NoticeKind::SettingsLocked,
        NoticeKind::AddressAdded,
        NoticeKind::PasskeyAdded,
        NoticeKind::PasskeyRemoved,
        NoticeKind::TotpEnrolled,
        NoticeKind::StepUpLockedOut,
        NoticeKind::KeyCreated,
        NoticeKind::KeyImported,
        NoticeKind::KeySecretRotated,
        NoticeKind::ContactChangePending,
        NoticeKind::ContactChanged,
        NoticeKind::WithdrawalRequested,
        NoticeKind::WithdrawalHeld,
        NoticeKind::WithdrawalBlocked,
        NoticeKind::WithdrawalReleased,
        NoticeKind::WithdrawalCancelled,
        NoticeKind::FundWindowLapsed,
        NoticeKind::DailyDigest,
        NoticeKind::DigestChanged,
    ];

    /// The webhook `type`: stable, dotted, lowercase.
    pub const fn type_name(self) -> &'static str {
        match self {
            NoticeKind::WideningPending => "widening.pending",
            NoticeKind::WideningApplied => "widening.applied",
            NoticeKind::WideningCancelled => "widening.cancelled",
            NoticeKind::WideningHeld => "widening.held",
            NoticeKind::AccountFrozen => "account.frozen",
            NoticeKind::AccountUnfrozen => "account.unfreeze_pending",
            NoticeKind::SettingsLocked => "account.settings_locked",
            NoticeKind::AddressAdded => "address.added_pending",
            NoticeKind::PasskeyAdded => "passkey.added",
            NoticeKind::PasskeyRemoved => "passkey.removed",
            NoticeKind::TotpEnrolled => "totp.enrolled",
            NoticeKind::StepUpLockedOut => "step_up.locked_out",
            NoticeKind::KeyCreated => "key.created",
            NoticeKind::KeyImported => "key.imported",
            NoticeKind::KeySecretRotated => "key.rotated",
            NoticeKind::ContactChangePending => "contact.change_pending",
            NoticeKind::ContactChanged => "contact.changed",
            NoticeKind::WithdrawalRequested => "withdrawal.requested",
            NoticeKind::WithdrawalHeld => "withdrawal.held",
            NoticeKind::WithdrawalBlocked => "withdrawal.blocked",
            NoticeKind::WithdrawalReleased => "withdrawal.released",
            NoticeKind::WithdrawalCancelled => "withdrawal.cancelled",
            NoticeKind::FundWindowLapsed => "key.fund_window_lapsed",
            NoticeKind::DailyDigest => "account.daily_digest",
            NoticeKind::DigestChanged => "account.digest_changed",
        }
    }

    /// The e-mail's headline, in words a customer understands.
    pub const fn headline(self) -> &'static str {
        match self {
            NoticeKind::WideningPending => "An API key change is waiting to take effect",
            NoticeKind::WideningApplied => "An API key change has taken effect",
            // Also sent for addresses, unfreezes and contact changes: said of any change.
            NoticeKind::WideningCancelled => "A change to your account's security was cancelled",
            NoticeKind::WideningHeld => "A change to your account's security is on hold",
            NoticeKind::AccountFrozen => "Your account is frozen",
            NoticeKind::AccountUnfrozen => "Your account will be unfrozen",
            NoticeKind::SettingsLocked => "Your security settings are locked",
            NoticeKind::AddressAdded => "A withdrawal address is waiting to be added",
            NoticeKind::PasskeyAdded => "A passkey was added to your account",
            NoticeKind::PasskeyRemoved => "A passkey was removed from your account",
            NoticeKind::TotpEnrolled => "An authenticator app was set up",
            NoticeKind::StepUpLockedOut => "Too many failed security checks",
            NoticeKind::KeyCreated => "A new API key was created",
            NoticeKind::KeyImported => "An API key was added to your account",
            NoticeKind::KeySecretRotated => "An API key got a new secret",
            NoticeKind::ContactChangePending => {
                "Your security e-mail or anti-phishing code is about to change"
            }
            NoticeKind::ContactChanged => "Your security e-mail or anti-phishing code changed",
            NoticeKind::WithdrawalRequested => "A withdrawal was requested from your account",
            NoticeKind::WithdrawalHeld => "A withdrawal from your account is on hold",
            NoticeKind::WithdrawalBlocked => "A withdrawal from your account was refused",
            NoticeKind::WithdrawalReleased => "A held withdrawal from your account was released",
            NoticeKind::WithdrawalCancelled => "A held withdrawal from your account was cancelled",
            NoticeKind::FundWindowLapsed => "A key's time-limited withdrawals ended, as you chose",
            NoticeKind::DailyDigest => "Your daily security digest",
            NoticeKind::DigestChanged => "Your daily security digest settings changed",
        }
    }
}

/// One announcement about one account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    pub kind: NoticeKind,
    /// A stable name for what is announced (e.g. the pending change's id). The outbox keeps one
    /// message per key and channel, so announcing the same thing twice sends it once.
    pub key: String,
    pub account: String,
    pub occurred_at: UnixMillis,
    /// One line, e.g. `API key 'grid bot': add withdraw`.
    pub summary: String,
    /// Labelled facts shown in order (`("Key", "grid bot")`).
    pub details: Vec<(String, String)>,
    /// When a pending change takes effect unless cancelled.
    pub takes_effect_at: Option<UnixMillis>,
    /// Where the customer cancels the pending change.
    pub cancel_url: Option<String>,
    /// Where the customer freezes the whole account with one click (single-use), for changes
    /// that would take the announcements themselves away from them.
    pub freeze_url: Option<String>,
}

/// An e-mail ready to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedEmail {
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// The warning every e-mail carries, word for word.
pub const PHONE_WARNING: &str = "We never call or message you to ask for API key changes. If someone is on the phone asking you to do this, hang up and freeze your account.";

/// Text safe for one line: control characters (line breaks included) become spaces, so a
/// summary can never add a header or a fake paragraph.
fn one_line(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// A cancel link is only ever a web address; anything else (`javascript:`) is not linked.
fn linkable(url: &str) -> bool {
    url.starts_with("https://") || url.starts_with("http://")
}

fn anti_phishing_line(exchange: &str, code: Option<&str>) -> String {
    match code {
        Some(code) => format!(
            "Your anti-phishing code: {} \u{2014} if an e-mail claiming to be from {} lacks it, it is not from us.",
            one_line(code),
            one_line(exchange)
        ),
        None => format!(
            "You have not set an anti-phishing code. Set one in your {} security settings: every genuine e-mail from us will then show it here.",
            one_line(exchange)
        ),
    }
}

/// What every e-mail says besides the notice itself: who sends it, and where the customer
/// reads how the scam works and what to do (the exchange's `/guides`, when it has an address).
#[derive(Debug, Clone, Copy)]
pub struct Letterhead<'a> {
    pub exchange: &'a str,
    pub guides_url: Option<&'a str>,
}

/// The e-mail for `notice`, for a customer whose anti-phishing code is `code`.
pub fn render_email(notice: &Notice, from: Letterhead<'_>, code: Option<&str>) -> RenderedEmail {
    let exchange = from.exchange;
    let subject = one_line(&format!(
        "[{exchange}] {}: {}",
        notice.kind.headline(),
        notice.summary
    ));
    RenderedEmail {
        subject,
        text: render_text(notice, from, code),
        html: render_html(notice, from, code),
    }
}

/// The line that sends the reader to the guides.
const GUIDES_LINE: &str = "How this scam works, and what to do after a suspicious call";

fn render_text(notice: &Notice, from: Letterhead<'_>, code: Option<&str>) -> String {
    let exchange = from.exchange;
    let mut out = String::new();
    let _ = writeln!(out, "{}\n", anti_phishing_line(exchange, code));
    let _ = writeln!(out, "{}\n", notice.kind.headline());
    let _ = writeln!(out, "{}\n", one_line(&notice.summary));
    let _ = writeln!(out, "When: {}", notice.occurred_at);
    if let Some(at) = notice.takes_effect_at {
        let _ = writeln!(out, "Takes effect: {at}");
    }
    for (name, value) in &notice.details {
        let _ = writeln!(out, "{}: {}", one_line(name), one_line(value));
    }
    out.push('\n');
    if let Some(url) = &notice.cancel_url {
        let _ = writeln!(
            out,
            "If you did not ask for this, cancel it now: {}\n",
            one_line(url)
        );
    }
    if let Some(url) = &notice.freeze_url {
        let _ = writeln!(
            out,
            "If someone is pressuring you, freeze your whole account: {}\n",
            one_line(url)
        );
    }
    let _ = writeln!(out, "{PHONE_WARNING}");
    if let Some(url) = from.guides_url.filter(|url| linkable(url)) {
        let _ = writeln!(out, "{GUIDES_LINE}: {}", one_line(url));
    }
    let _ = writeln!(out, "\n\u{2014} {}", one_line(exchange));
    out
}

fn esc(text: &str) -> String {
    html_escape::encode_text(&one_line(text)).into_owned()
}

fn render_html(notice: &Notice, from: Letterhead<'_>, code: Option<&str>) -> String {
    let exchange = from.exchange;
    let mut out = String::from(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"></head><body style=\"font-family:sans-serif\">\n",
    );
    let _ = writeln!(
        out,
        "<p style=\"border:2px solid #333;padding:8px;font-size:1.1em\"><strong>{}</strong></p>",
        esc(&anti_phishing_line(exchange, code))
    );
    let _ = writeln!(out, "<h2>{}</h2>", esc(notice.kind.headline()));
    let _ = writeln!(out, "<p>{}</p>", esc(&notice.summary));
    out.push_str("<table>\n");
    let mut row = |name: &str, value: &str| {
        let _ = writeln!(
            out,
            "<tr><th align=\"left\">{}</th><td>{}</td></tr>",
            esc(name),
            esc(value)
        );
    };
    row("When", &notice.occurred_at.to_rfc3339());
    if let Some(at) = notice.takes_effect_at {
        row("Takes effect", &at.to_rfc3339());
    }
    for (name, value) in &notice.details {
        row(name, value);
    }
    out.push_str("</table>\n");
    if let Some(url) = &notice.cancel_url {
        if linkable(url) {
            let _ = writeln!(
                out,
                "<p>If you did not ask for this, <a href=\"{}\"><strong>cancel it now</strong></a>.</p>",
                html_escape::encode_double_quoted_attribute(&one_line(url))
            );
        } else {
            let _ = writeln!(
                out,
                "<p>If you did not ask for this, cancel it now: {}</p>",
                esc(url)
            );
        }
    }
    if let Some(url) = &notice.freeze_url {
        if linkable(url) {
            let _ = writeln!(
                out,
                "<p>If someone is pressuring you, <a href=\"{}\"><strong>freeze your whole account</strong></a>.</p>",
                html_escape::encode_double_quoted_attribute(&one_line(url))
            );
        } else {
            let _ = writeln!(
                out,
                "<p>If someone is pressuring you, freeze your whole account: {}</p>",
                esc(url)
            );
        }
    }
    let _ = writeln!(out, "<p><strong>{}</strong></p>", esc(PHONE_WARNING));
    if let Some(url) = from.guides_url.filter(|url| linkable(url)) {
        let _ = writeln!(
            out,
            "<p><a href=\"{}\">{GUIDES_LINE}</a>.</p>",
            html_escape::encode_double_quoted_attribute(&one_line(url))
        );
    }
    let _ = writeln!(out, "<p>\u{2014} {}</p>\n</body></html>", esc(exchange));
    out
}

/// The webhook body for `notice`, delivered as message `id`. Fields (stable; documented in
/// docs/notifications.md): `id`, `type`, `account`, `occurred_at`, `summary`,
/// `takes_effect_at` (or null), `cancel_url` (or null), `freeze_url` (or null), `details` (`[{"name", "value"}]` in order).
pub fn render_webhook(notice: &Notice, id: &str) -> String {
    let details: Vec<serde_json::Value> = notice
        .details
        .iter()
        .map(|(name, value)| serde_json::json!({ "name": name, "value": value }))
        .collect();
    serde_json::json!({
        "id": id,
        "type": notice.kind.type_name(),
        "account": notice.account,
        "occurred_at": notice.occurred_at.to_rfc3339(),
        "summary": notice.summary,
        "takes_effect_at": notice.takes_effect_at.map(UnixMillis::to_rfc3339),
        "cancel_url": notice.cancel_url,
        "freeze_url": notice.freeze_url,
        "details": details,
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn notice() -> Notice {
        Notice {
            kind: NoticeKind::WideningPending,
            key: "chg_1".into(),
            account: "acc_81".into(),
            occurred_at: UnixMillis(1_767_225_600_000),
            summary: "API key 'grid bot': add withdraw".into(),
            details: vec![("Key".into(), "grid bot".into())],
            takes_effect_at: Some(UnixMillis(1_767_312_000_000)),
            cancel_url: Some("https://ex.example/cancel?c=chg_1&t=x".into()),
            freeze_url: None,
        }
    }

    #[test]
    fn every_email_opens_with_the_code_and_carries_the_warning() {
        for kind in NoticeKind::ALL {
            let from = Letterhead {
                exchange: "Exemplar",
                guides_url: Some("https://ex.example/guides"),
            };
            let mail = render_email(&Notice { kind, ..notice() }, from, Some("Blue42"));
            let expected = "Your anti-phishing code: Blue42 \u{2014} if an e-mail claiming to be from Exemplar lacks it, it is not from us.";
            assert!(mail.text.starts_with(expected), "{kind:?}: {}", mail.text);
            assert!(mail.text.contains(PHONE_WARNING));
            let html_body = mail.html.split("<body").nth(1).unwrap();
            let first_paragraph = html_body.split("</p>").next().unwrap();
            assert!(first_paragraph.contains("Your anti-phishing code: Blue42"));
            assert!(
                mail.html
                    .contains(&html_escape::encode_text(PHONE_WARNING).into_owned())
            );
            assert!(mail.subject.starts_with("[Exemplar] "));
            assert!(
                mail.text
                    .contains(&format!("{GUIDES_LINE}: https://ex.example/guides"))
            );
            assert!(mail.html.contains("<a href=\"https://ex.example/guides\">"));
        }
    }

    fn head(exchange: &str) -> Letterhead<'_> {
        Letterhead {
            exchange,
            guides_url: None,
        }
    }

    #[test]
    fn pending_changes_say_when_and_how_to_cancel() {
        let mail = render_email(&notice(), head("Exemplar"), Some("Blue42"));
        assert!(mail.text.contains("Takes effect: 2026-01-02T00:00:00.000Z"));
        assert!(
            mail.text
                .contains("cancel it now: https://ex.example/cancel?c=chg_1&t=x")
        );
        assert!(
            mail.html
                .contains("<a href=\"https://ex.example/cancel?c=chg_1&amp;t=x\">")
        );
        let applied = Notice {
            kind: NoticeKind::WideningApplied,
            takes_effect_at: None,
            cancel_url: None,
            ..notice()
        };
        let mail = render_email(&applied, head("Exemplar"), Some("Blue42"));
        assert!(!mail.text.contains("cancel"));
        assert!(!mail.html.contains("<a "));
    }

    #[test]
    fn a_freeze_link_is_offered_when_there_is_one() {
        let contact = Notice {
            kind: NoticeKind::ContactChangePending,
            freeze_url: Some("https://ex.example/freeze/pfz_1".into()),
            ..notice()
        };
        let mail = render_email(&contact, head("Exemplar"), Some("Blue42"));
        assert!(
            mail.text
                .contains("freeze your whole account: https://ex.example/freeze/pfz_1")
        );
        assert!(
            mail.html
                .contains("<a href=\"https://ex.example/freeze/pfz_1\"><strong>freeze")
        );
        let body: serde_json::Value =
            serde_json::from_str(&render_webhook(&contact, "ntf_3")).unwrap();
        assert_eq!(body["type"], "contact.change_pending");
        assert_eq!(body["freeze_url"], "https://ex.example/freeze/pfz_1");
        let hostile = Notice {
            freeze_url: Some("javascript:alert(1)".into()),
            ..contact
        };
        let mail = render_email(&hostile, head("Exemplar"), Some("Blue42"));
        assert!(!mail.html.contains("href=\"javascript"));
        let plain = render_email(&notice(), head("Exemplar"), Some("Blue42"));
        assert!(!plain.text.contains("freeze your whole account:"));
    }

    #[test]
    fn markup_in_any_field_is_escaped() {
        let hostile = Notice {
            summary: "<script>alert(1)</script>".into(),
            details: vec![("<b>label</b>".into(), "<img src=x onerror=y>".into())],
            cancel_url: Some("javascript:alert(1)".into()),
            ..notice()
        };
        let mail = render_email(&hostile, head("Ex<i>change"), Some("<script>"));
        assert!(!mail.html.contains("<script"), "{}", mail.html);
        assert!(!mail.html.contains("<img"));
        assert!(!mail.html.contains("<b>"));
        assert!(!mail.html.contains("<i>"));
        assert!(
            mail.html
                .contains("Your anti-phishing code: &lt;script&gt;")
        );
        assert!(mail.html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(!mail.html.contains("href=\"javascript"));
    }

    #[test]
    fn summaries_cannot_break_lines() {
        let hostile = Notice {
            summary: "ok\r\nBcc: victim@example.com".into(),
            ..notice()
        };
        let mail = render_email(&hostile, head("Exemplar"), Some("Blue42"));
        assert!(!mail.subject.contains('\n') && !mail.subject.contains('\r'));
        assert!(!mail.text.contains("\nBcc:"));
    }

    #[test]
    fn without_a_code_the_mail_says_so_first() {
        let mail = render_email(&notice(), head("Exemplar"), None);
        assert!(
            mail.text
                .starts_with("You have not set an anti-phishing code.")
        );
    }

    #[test]
    fn webhook_body_has_the_documented_fields() {
        let body: serde_json::Value =
            serde_json::from_str(&render_webhook(&notice(), "ntf_1")).unwrap();
        assert_eq!(body["id"], "ntf_1");
        assert_eq!(body["type"], "widening.pending");
        assert_eq!(body["account"], "acc_81");
        assert_eq!(body["occurred_at"], "2026-01-01T00:00:00.000Z");
        assert_eq!(body["takes_effect_at"], "2026-01-02T00:00:00.000Z");
        assert_eq!(body["summary"], "API key 'grid bot': add withdraw");
        assert_eq!(body["cancel_url"], "https://ex.example/cancel?c=chg_1&t=x");
        assert_eq!(
            body["details"],
            serde_json::json!([{ "name": "Key", "value": "grid bot" }])
        );
        let none = Notice {
            takes_effect_at: None,
            cancel_url: None,
            ..notice()
        };
        let body: serde_json::Value =
            serde_json::from_str(&render_webhook(&none, "ntf_2")).unwrap();
        assert!(body["takes_effect_at"].is_null() && body["cancel_url"].is_null());
        assert!(body["freeze_url"].is_null());
    }

    #[test]
    fn type_names_are_distinct() {
        let names: std::collections::HashSet<_> =
            NoticeKind::ALL.iter().map(|k| k.type_name()).collect();
        assert_eq!(names.len(), NoticeKind::ALL.len());
    }
}
