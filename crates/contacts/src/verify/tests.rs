use super::*;
use crate::registry::{KnownScam, normalise_entry};

fn entry(
    id: &str,
    kind: EntryKind,
    raw: &str,
    channel: &str,
    direction: Direction,
) -> OfficialEntry {
    OfficialEntry {
        id: id.into(),
        kind,
        value: normalise_entry(kind, raw, None).unwrap(),
        channel: channel.into(),
        direction,
        note: String::new(),
    }
}

fn registry() -> Registry {
    Registry::compile(
        vec![
            entry(
                "c1",
                EntryKind::Domain,
                "binance.com",
                "web",
                Direction::Both,
            ),
            entry(
                "c2",
                EntryKind::Phone,
                "+1 415 555 0100",
                "phone",
                Direction::Inbound,
            ),
            entry(
                "c3",
                EntryKind::Email,
                "binance.com",
                "email",
                Direction::Outbound,
            ),
            entry(
                "c4",
                EntryKind::Handle,
                "@Binance_Support",
                "telegram",
                Direction::Inbound,
            ),
            entry("c5", EntryKind::Domain, "okx.com", "web", Direction::Both),
        ],
        &[
            KnownScam {
                kind: "phone".into(),
                value: "+14155550199".into(),
                source: ScamSource::Reported,
            },
            KnownScam {
                kind: "domain".into(),
                value: "binance-refund.com".into(),
                source: ScamSource::ConfirmedFraud,
            },
        ],
    )
}

fn judge(value: &str) -> (Verdict, Option<String>, Option<How>) {
    let registry = registry();
    let answer = registry.verify(value, None).unwrap();
    (
        answer.verdict,
        answer.official_match.map(|e| e.id),
        answer.lookalike,
    )
}

#[test]
fn official_contacts_are_recognised_in_any_notation() {
    assert_eq!(judge("(+1) 415-555-0100").0, Verdict::Official);
    assert_eq!(
        judge("https://www.binance.com/en/login").0,
        Verdict::Official
    );
    assert_eq!(judge("accounts.binance.com").0, Verdict::Official);
    assert_eq!(judge("no-reply@binance.com").1.as_deref(), Some("c3"));
    assert_eq!(judge("@binance_support").0, Verdict::Official);
}

#[test]
fn an_official_answer_says_what_the_contact_is_for_and_never_that_the_message_is_genuine() {
    let registry = registry();
    let answer = registry.verify("+14155550100", None).unwrap();
    assert!(
        answer.explanation.contains("we never call you from it"),
        "{}",
        answer.explanation
    );
    assert!(answer.explanation.contains("not that a message is genuine"));
}

#[test]
fn known_scams_and_unknown_contacts() {
    assert_eq!(judge("+1 415 555 0199").0, Verdict::KnownScam);
    let (verdict, imitated, how) = judge("https://binance-refund.com/claim");
    assert_eq!(verdict, Verdict::KnownScam);
    assert_eq!(
        (imitated.as_deref(), how),
        (Some("c1"), Some(How::BrandWithAddedWord))
    );
    assert_eq!(judge("+44 20 7946 0958").0, Verdict::NotOfficial);
    assert_eq!(judge("example.org").0, Verdict::NotOfficial);
}

#[test]
fn every_lookalike_names_the_entry_and_how() {
    for (value, id, how) in [
        ("binace.com", "c1", How::Omission),
        ("binnance.com", "c1", How::Repetition),
        ("ibnance.com", "c1", How::Transposition),
        ("vinance.com", "c1", How::KeyboardNeighbour),
        ("binence.com", "c1", How::VowelSwap),
        ("bin-ance.com", "c1", How::Hyphenation),
        ("cinance.com", "c1", How::Bitsquatting),
        ("binances.com", "c1", How::Plural),
        ("binance1.com", "c1", How::Addition),
        ("bіnance.com", "c1", How::Homoglyph),
        ("binancé.com", "c1", How::Homoglyph),
        ("binance.co", "c1", How::SwappedTld),
        ("okx.net", "c5", How::SwappedTld),
        (
            "binance.com.account-verify.io",
            "c1",
            How::OfficialNameAsSubdomain,
        ),
        ("bina.nce.com", "c1", How::DotInsertion),
        ("binance-support.com", "c1", How::BrandWithAddedWord),
        ("okx-support.com", "c5", How::BrandWithAddedWord),
        ("securebinancelogin.com", "c1", How::BrandWithAddedWord),
        ("ops@binance-help.net", "c1", How::BrandWithAddedWord),
        ("@binance_support1", "c4", How::Addition),
        ("@binance_support_admin", "c4", How::HandleDecoration),
        ("@binancesupport", "c4", How::Omission),
        ("@binance.helpdesk", "c4", How::HandleDecoration),
        ("@admin.binance_support", "c4", How::HandleDecoration),
    ] {
        let (verdict, imitated, found) = judge(value);
        assert_eq!(verdict, Verdict::Lookalike, "{value}");
        assert_eq!(
            (imitated.as_deref(), found),
            (Some(id), Some(how)),
            "{value}"
        );
    }
}

#[test]
fn short_names_do_not_swallow_real_words() {
    assert_eq!(judge("ok.com").0, Verdict::NotOfficial);
    assert_eq!(judge("bookxyz.com").0, Verdict::NotOfficial);
    assert_eq!(
        judge("finance.com").0,
        Verdict::Lookalike,
        "one key away from binance"
    );
    assert_eq!(judge("google.com").0, Verdict::NotOfficial);
}

#[test]
fn links_and_addresses_are_reduced_to_their_registrable_domain() {
    let registry = registry();
    let link = registry
        .verify("https://binance.com.account-verify.co.uk/x", None)
        .unwrap();
    assert_eq!(link.normalized, "account-verify.co.uk");
    assert_eq!(
        link.host.as_deref(),
        Some("binance.com.account-verify.co.uk")
    );
    let mail = registry.verify("Support@Mail.Binance.com", None).unwrap();
    assert_eq!(
        (mail.normalized.as_str(), mail.verdict),
        ("binance.com", Verdict::Official)
    );
    let domain = registry.verify("accounts.binance.com", None).unwrap();
    assert_eq!(domain.normalized, "accounts.binance.com");
}

#[test]
fn a_link_that_hides_its_host_says_so() {
    let registry = registry();
    let answer = registry
        .verify("https://binance.com@evil.example/", None)
        .unwrap();
    assert_eq!(answer.verdict, Verdict::NotOfficial);
    assert!(answer.reasons.contains(&"link_hides_host"));
}
