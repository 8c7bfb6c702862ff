//! The verdict on one value: `official`, `known_scam`, `lookalike` or `not_official`, in that
//! order of precedence (an official contact reported by someone stays official; a known scam
//! that also imitates an official name says which), with the reasons and, for a person, what
//! the answer means.

use crate::classify::{Host, Kind, Normalized, normalise};
use crate::error::ContactError;
use crate::registry::{Direction, EntryKind, HANDLE_WORDS, OfficialEntry, Registry, ScamSource};
use crate::variants::{self, How};
use serde::Serialize;
use unicode_security::MixedScript as _;

/// The verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Official,
    NotOfficial,
    KnownScam,
    Lookalike,
}

impl Verdict {
    pub const fn as_str(self) -> &'static str {
        match self {
            Verdict::Official => "official",
            Verdict::NotOfficial => "not_official",
            Verdict::KnownScam => "known_scam",
            Verdict::Lookalike => "lookalike",
        }
    }
}

/// The answer for one value.
#[derive(Debug, Clone, Serialize)]
pub struct Answer {
    pub value: String,
    pub kind: Kind,
    /// E.164 for a phone number, the registrable domain for a link or an e-mail address (where
    /// it really leads or comes from), the host for a domain, the handle without `@`.
    pub normalized: String,
    /// The whole host of a link, e-mail address or domain (lower-case ASCII).
    pub host: Option<String>,
    pub verdict: Verdict,
    /// The official entry the value is, or (for a lookalike) the one it imitates.
    pub official_match: Option<OfficialEntry>,
    /// How a lookalike imitates `official_match`.
    pub lookalike: Option<How>,
    /// Stable reason codes.
    pub reasons: Vec<&'static str>,
    /// What the answer means, for a person.
    pub explanation: String,
}

impl Registry {
    /// Verifies one value. A national phone number needs `region`.
    pub fn verify(&self, raw: &str, region: Option<&str>) -> Result<Answer, ContactError> {
        let n = normalise(raw, region)?;
        let mut reasons = Vec::new();
        let official = self.official(&n, &mut reasons);
        let scam = match official {
            Some(_) => None,
            None => self.scam(&n),
        };
        let imitated = match official {
            Some(_) => None,
            None => self.lookalike(&n, &mut reasons),
        };
        let verdict = match (official, scam, imitated) {
            (Some(_), _, _) => Verdict::Official,
            (None, Some(source), _) => {
                reasons.insert(
                    0,
                    match source {
                        ScamSource::ConfirmedFraud => "known_scam_confirmed_fraud",
                        ScamSource::Reported => "known_scam_reported",
                    },
                );
                Verdict::KnownScam
            }
            (None, None, Some(_)) => Verdict::Lookalike,
            (None, None, None) => {
                reasons.push("not_listed");
                Verdict::NotOfficial
            }
        };
        if let Some((_, how)) = imitated {
            reasons.push(lookalike_reason(how));
        }
        if n.userinfo {
            reasons.push("link_hides_host");
        }
        if n.host.as_ref().is_some_and(|h| h.ip) {
            reasons.push("ip_address_host");
        }
        let matched = official.or(imitated.map(|(i, _)| i));
        let official_match = matched.and_then(|i| self.entry(i));
        let lookalike = imitated.map(|(_, how)| how);
        let explanation = explain(verdict, official_match, lookalike);
        let official_match = official_match.cloned();
        let (normalized, host) = match (n.kind, n.host) {
            (Kind::Url | Kind::Email, Some(host)) => (host.registrable, Some(host.ascii)),
            (_, host) => (n.normalized, host.map(|h| h.ascii)),
        };
        Ok(Answer {
            value: raw.to_owned(),
            kind: n.kind,
            normalized,
            host,
            verdict,
            official_match,
            lookalike,
            reasons,
            explanation,
        })
    }

    fn official(&self, n: &Normalized, reasons: &mut Vec<&'static str>) -> Option<usize> {
        let found = match n.kind {
            Kind::Phone => self
                .phones
                .get(&n.normalized)
                .map(|i| (*i, "official_phone")),
            Kind::Handle => self
                .handles
                .get(&n.normalized)
                .map(|i| (*i, "official_handle")),
            Kind::Email => {
                let host = n.host.as_ref()?;
                (self
                    .emails
                    .get(&n.normalized)
                    .map(|i| (*i, "official_email_address")))
                .or_else(|| {
                    self.host_in(&self.mail_domains, host)
                        .map(|i| (i, "official_email_domain"))
                })
                .or_else(|| {
                    self.host_in(&self.domains, host)
                        .map(|i| (i, "official_domain"))
                })
            }
            Kind::Domain | Kind::Url => {
                let host = n.host.as_ref()?;
                self.host_in(&self.domains, host)
                    .map(|i| (i, "official_domain"))
            }
        };
        let (index, reason) = found?;
        reasons.push(reason);
        Some(index)
    }

    fn scam(&self, n: &Normalized) -> Option<ScamSource> {
        match n.kind {
            Kind::Phone => self.scam_phones.get(&n.normalized).copied(),
            Kind::Handle => self.scam_handles.get(&n.normalized).copied(),
            Kind::Email => (self.scam_emails.get(&n.normalized).copied())
                .or_else(|| n.host.as_ref().and_then(|h| self.scam_host(h))),
            Kind::Domain | Kind::Url => n.host.as_ref().and_then(|h| self.scam_host(h)),
        }
    }

    fn lookalike(&self, n: &Normalized, reasons: &mut Vec<&'static str>) -> Option<(usize, How)> {
        match n.kind {
            Kind::Phone => None,
            Kind::Handle => self.handle_lookalike(&n.normalized),
            Kind::Email | Kind::Domain | Kind::Url => {
                let host = n.host.as_ref().filter(|h| !h.ip)?;
                self.host_lookalike(host, reasons)
            }
        }
    }

    /// The checks of a host, cheapest first; see [`How`] for each.
    fn host_lookalike(&self, host: &Host, reasons: &mut Vec<&'static str>) -> Option<(usize, How)> {
        let label = host.label();
        if let Some(official) = self.labels.get(label) {
            // The official name itself: under its own suffix it is the exchange's own domain
            // (a host the registry does not list), under another it is a swapped TLD.
            return match official.iter().any(|(_, suffix)| *suffix == host.suffix) {
                true => None,
                false => official.first().map(|(i, _)| (*i, How::SwappedTld)),
            };
        }
        if let Some(found) = self.label_typos.get(label) {
            return Some(*found);
        }
        let unicode = match label.contains("xn--") {
            true => idna::domain_to_unicode(label).0,
            false => String::new(),
        };
        if !unicode.is_empty() && !unicode.as_str().is_single_script() {
            reasons.push("mixed_script");
        }
        let shown = if unicode.is_empty() {
            label
        } else {
            unicode.as_str()
        };
        if let Some(index) = self.label_skeletons.get(&variants::skeleton(shown)) {
            return Some((*index, How::Homoglyph));
        }
        self.in_subdomain(host)
            .or_else(|| self.with_added_word(label))
            .or_else(|| self.similar_spelling(label))
    }

    /// The official name split by dots into someone else's domain, or put in front of it.
    fn in_subdomain(&self, host: &Host) -> Option<(usize, How)> {
        let sub = host.subdomain();
        if sub.is_empty() {
            return None;
        }
        let joined: String = format!("{sub}{}", host.label()).replace('.', "");
        if let Some(official) = self.labels.get(&joined) {
            return official.first().map(|(i, _)| (*i, How::DotInsertion));
        }
        for part in sub.split('.') {
            if part.len() >= 3
                && let Some(official) = self.labels.get(part)
            {
                return official
                    .first()
                    .map(|(i, _)| (*i, How::OfficialNameAsSubdomain));
            }
            let prefixed = part.strip_prefix("www").filter(|rest| rest.len() >= 3);
            if let Some(official) = prefixed.and_then(|rest| self.labels.get(rest)) {
                return official
                    .first()
                    .map(|(i, _)| (*i, How::OfficialNameAsSubdomain));
            }
        }
        None
    }

    /// The official name (or a typo of it) as one word between hyphens, or inside a longer
    /// label.
    fn with_added_word(&self, label: &str) -> Option<(usize, How)> {
        if label.contains('-') {
            for word in label.split('-') {
                if let Some(official) = self.labels.get(word).filter(|_| word.len() >= 3) {
                    return official.first().map(|(i, _)| (*i, How::BrandWithAddedWord));
                }
                if let Some((index, _)) = self.label_typos.get(word).filter(|_| word.len() >= 6) {
                    return Some((*index, How::BrandWithAddedWord));
                }
            }
        }
        let (automaton, entries) = self.brands.as_ref()?;
        let found = automaton.find(label)?;
        entries
            .get(found.pattern().as_usize())
            .map(|i| (*i, How::BrandWithAddedWord))
    }

    fn similar_spelling(&self, label: &str) -> Option<(usize, How)> {
        if label.len() < crate::registry::MIN_SIMILAR_LEN {
            return None;
        }
        self.long_labels
            .iter()
            .find(|(official, _)| {
                variants::distance_within(label.as_bytes(), official.as_bytes(), 2).is_some()
            })
            .map(|(_, index)| (*index, How::SimilarSpelling))
    }

    fn handle_lookalike(&self, handle: &str) -> Option<(usize, How)> {
        if let Some(found) = self.handle_typos.get(handle) {
            return Some(*found);
        }
        if let Some(index) = self.handle_skeletons.get(&variants::skeleton(handle)) {
            return Some((*index, How::Homoglyph));
        }
        let core = handle_core(handle);
        (self.handle_cores.get(core.as_str()))
            .filter(|_| !core.is_empty())
            .map(|index| (*index, How::HandleDecoration))
    }
}

/// A handle without separators, digits and the words scammers add at either end.
pub(crate) fn handle_core(handle: &str) -> String {
    let mut core: String = handle
        .chars()
        .filter(|c| !matches!(c, '_' | '.') && !c.is_ascii_digit())
        .collect();
    loop {
        let before = core.len();
        for word in HANDLE_WORDS {
            if let Some(rest) = core.strip_prefix(word).filter(|r| !r.is_empty()) {
                core = rest.to_owned();
            }
            if let Some(rest) = core.strip_suffix(word).filter(|r| !r.is_empty()) {
                core = rest.to_owned();
            }
        }
        if core.len() == before {
            return core;
        }
    }
}

fn lookalike_reason(how: How) -> &'static str {
    match how {
        How::Omission => "lookalike_omission",
        How::Insertion => "lookalike_insertion",
        How::Repetition => "lookalike_repetition",
        How::Transposition => "lookalike_transposition",
        How::KeyboardNeighbour => "lookalike_keyboard_neighbour",
        How::VowelSwap => "lookalike_vowel_swap",
        How::Hyphenation => "lookalike_hyphenation",
        How::Bitsquatting => "lookalike_bitsquatting",
        How::Plural => "lookalike_plural",
        How::Addition => "lookalike_addition",
        How::Homoglyph => "lookalike_homoglyph",
        How::SwappedTld => "lookalike_swapped_tld",
        How::OfficialNameAsSubdomain => "lookalike_official_name_as_subdomain",
        How::DotInsertion => "lookalike_dot_insertion",
        How::BrandWithAddedWord => "lookalike_brand_with_added_word",
        How::SimilarSpelling => "lookalike_similar_spelling",
        How::HandleDecoration => "lookalike_handle_decoration",
    }
}

/// Said after every official answer: the contact being ours says nothing about the message.
const NOT_PROOF: &str = "Official means the contact is ours, not that a message is genuine: \
    caller ID, senders and display names are easy to fake.";
const NEVER_ASK: &str = "We never ask for passwords or codes, and never ask you to change API \
    keys or withdrawal addresses.";

/// What the answer means, in words a worried person can act on.
fn explain(verdict: Verdict, entry: Option<&OfficialEntry>, how: Option<How>) -> String {
    match (verdict, entry) {
        (Verdict::Official, Some(entry)) => {
            let what = if entry.note.is_empty() {
                String::new()
            } else {
                format!(" ({})", entry.note)
            };
            let usage = usage(entry);
            format!("This is one of our official contacts{what}. {usage} {NEVER_ASK} {NOT_PROOF}")
        }
        (Verdict::KnownScam, imitated) => {
            let also = imitated.map_or(String::new(), |e| format!(" It imitates our {}.", e.value));
            format!(
                "Warning: this contact has been used in scams against our customers.{also} \
                 Do not answer it, do not share anything and do not change any setting it asks \
                 for. Contact us only through the app or our website."
            )
        }
        (Verdict::Lookalike, Some(entry)) => format!(
            "Warning: this is not us. It imitates our {} ({}). Do not follow it or reply; \
             contact us only through the app or by typing our address yourself.",
            entry.value,
            how.map_or("it looks alike", How::describe)
        ),
        _ => "This is not one of our official contacts. If it said it was us, it is not us: \
              stop, share nothing, change nothing, and contact us through the app."
            .to_owned(),
    }
}

/// What an official contact is used for and what we never do with it.
fn usage(entry: &OfficialEntry) -> String {
    match (entry.kind, entry.direction) {
        (EntryKind::Phone, Direction::Inbound) => "This is a line for you to call us; we never \
            call you from it. A call that shows this number is not from us."
            .into(),
        (EntryKind::Phone, _) => "We may call you from this number; even then, hang up if in \
            doubt and call us back through the app."
            .into(),
        (EntryKind::Email, Direction::Inbound) => "This is where you can write to us; we never \
            write to you from it."
            .into(),
        (EntryKind::Email, _) => "We send e-mail from here, and every e-mail of ours opens with \
            your anti-phishing code."
            .into(),
        (EntryKind::Domain, _) => "This is our website. Type the address yourself rather than \
            following a link."
            .into(),
        (EntryKind::Handle, Direction::Inbound) => format!(
            "This is our {} account for you to reach us; we never message you first from it.",
            entry.channel
        ),
        (EntryKind::Handle, _) => format!(
            "We post on {} from this account; we never send private messages from it.",
            entry.channel
        ),
    }
}

#[cfg(test)]
mod tests;
