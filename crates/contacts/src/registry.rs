//! The exchange's official contacts, and the registry compiled from them once (with the
//! contacts known to be used in scams) so that each verification is a few hash lookups.

use crate::classify::{Host, normalise_handle, parse_host};
use crate::error::{ContactError, check_raw};
use crate::phone::normalise_phone;
use crate::variants::{self, HANDLE_ALPHABET, How, LABEL_ALPHABET};
use aho_corasick::AhoCorasick;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

pub(crate) type Map<V> = HashMap<String, V, foldhash::fast::RandomState>;

/// What an official entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EntryKind {
    Phone,
    /// An address (`support@binance.com`) or a whole mail domain (`binance.com`).
    Email,
    Domain,
    Handle,
}

impl EntryKind {
    pub const fn as_str(self) -> &'static str {
        match self {
            EntryKind::Phone => "phone",
            EntryKind::Email => "email",
            EntryKind::Domain => "domain",
            EntryKind::Handle => "handle",
        }
    }

    pub fn parse(text: &str) -> Result<Self, ContactError> {
        match text {
            "phone" => Ok(EntryKind::Phone),
            "email" => Ok(EntryKind::Email),
            "domain" => Ok(EntryKind::Domain),
            "handle" => Ok(EntryKind::Handle),
            other => Err(ContactError::UnknownKind(other.chars().take(40).collect())),
        }
    }
}

/// Which way a contact is used: this is what an `official` answer tells the customer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// Customers reach the exchange here; the exchange never contacts anyone from it.
    Inbound,
    /// The exchange contacts customers from it.
    Outbound,
    Both,
}

impl Direction {
    pub const fn as_str(self) -> &'static str {
        match self {
            Direction::Inbound => "inbound",
            Direction::Outbound => "outbound",
            Direction::Both => "both",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "inbound" => Some(Direction::Inbound),
            "outbound" => Some(Direction::Outbound),
            "both" => Some(Direction::Both),
            _ => None,
        }
    }

    /// The usual direction of a kind: a support line is called, e-mail is sent.
    pub const fn default_for(kind: EntryKind) -> Self {
        match kind {
            EntryKind::Phone | EntryKind::Handle => Direction::Inbound,
            EntryKind::Email => Direction::Outbound,
            EntryKind::Domain => Direction::Both,
        }
    }
}

/// One official contact of the exchange.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OfficialEntry {
    pub id: String,
    pub kind: EntryKind,
    /// The normal form ([`normalise_entry`]).
    pub value: String,
    /// Where it is used: `phone`, `email`, `web`, `telegram`, `x`, `whatsapp`, … (free, short).
    pub channel: String,
    pub direction: Direction,
    /// What the exchange wants customers to know, e.g. "24/7 support line".
    pub note: String,
}

/// The normal form of an official entry's value: E.164, a lower-case address or mail domain,
/// a host (a link's host; `www.` dropped), or a handle.
pub fn normalise_entry(
    kind: EntryKind,
    raw: &str,
    region: Option<&str>,
) -> Result<String, ContactError> {
    let value = check_raw(raw)?;
    match kind {
        EntryKind::Phone => normalise_phone(value, region),
        EntryKind::Email => match value.split_once('@') {
            Some((local, _)) if !local.is_empty() => {
                match crate::classify::normalise(value, None)? {
                    n if n.kind == crate::classify::Kind::Email => Ok(n.normalized),
                    _ => Err(ContactError::InvalidEmail),
                }
            }
            _ => Ok(parse_host(value.trim_start_matches('@'))?.ascii),
        },
        EntryKind::Domain => {
            let host = match value.contains('/') {
                true => crate::classify::normalise(value, None)?
                    .host
                    .ok_or_else(|| ContactError::InvalidDomain("no host".into()))?,
                false => parse_host(value)?,
            };
            if host.ip {
                return Err(ContactError::InvalidDomain(
                    "an IP address is not a domain".into(),
                ));
            }
            let ascii = host.ascii;
            Ok(match ascii.strip_prefix("www.") {
                Some(rest) if rest.contains('.') => rest.to_owned(),
                _ => ascii,
            })
        }
        EntryKind::Handle => normalise_handle(value),
    }
}

/// Why a contact is known to be used in scams.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScamSource {
    /// Named in a `fraud.confirmed` event.
    ConfirmedFraud,
    /// Reported by customers often enough (`contact.reported`, at the configured threshold).
    Reported,
}

/// A contact known to be used in scams, in its normal form.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KnownScam {
    /// `phone`, `email`, `domain`, `url` or `handle`: the kind it was normalised as.
    pub kind: String,
    pub value: String,
    pub source: ScamSource,
}

/// Official names shorter than this are not looked for inside other names (`okx` is inside
/// `bookxyz`, `ether` inside `etherplay`); they are still found as a whole word between
/// hyphens.
const MIN_BRAND_LEN: usize = 6;
/// Only names at least this long are compared by edit distance: two edits from a shorter name
/// reach too many real ones (`etherplan` and `etherscan`, `metajack` and `metamask`).
pub(crate) const MIN_SIMILAR_LEN: usize = 10;
/// Words scammers add to a handle.
pub(crate) const HANDLE_WORDS: [&str; 13] = [
    "support", "admin", "helpdesk", "help", "official", "team", "care", "service", "desk",
    "customer", "real", "verify", "mod",
];

/// The official contacts and known scams, compiled for lookups.
#[derive(Debug)]
pub struct Registry {
    pub(crate) entries: Vec<OfficialEntry>,
    pub(crate) phones: Map<usize>,
    pub(crate) emails: Map<usize>,
    pub(crate) mail_domains: Map<usize>,
    pub(crate) domains: Map<usize>,
    pub(crate) handles: Map<usize>,
    pub(crate) scam_phones: Map<ScamSource>,
    pub(crate) scam_emails: Map<ScamSource>,
    pub(crate) scam_hosts: Map<ScamSource>,
    pub(crate) scam_handles: Map<ScamSource>,
    /// Each official domain's own label (`binance` of `binance.com`), with its suffixes.
    pub(crate) labels: Map<Vec<(usize, String)>>,
    pub(crate) label_typos: Map<(usize, How)>,
    pub(crate) label_skeletons: Map<usize>,
    /// Official labels of at least [`MIN_BRAND_LEN`], found inside other labels in one pass.
    pub(crate) brands: Option<(AhoCorasick, Vec<usize>)>,
    pub(crate) long_labels: Vec<(String, usize)>,
    pub(crate) handle_typos: Map<(usize, How)>,
    pub(crate) handle_skeletons: Map<usize>,
    /// Official handles without separators, digits and added words, for decorated handles
    /// (`binance_support_admin`).
    pub(crate) handle_cores: Map<usize>,
}

impl Registry {
    /// Compiles `entries` (values in normal form) and `scams`. The cost is in here, once:
    /// every typo variant and skeleton of every official name.
    pub fn compile(entries: Vec<OfficialEntry>, scams: &[KnownScam]) -> Self {
        let mut registry = Registry {
            entries: Vec::new(),
            phones: Map::default(),
            emails: Map::default(),
            mail_domains: Map::default(),
            domains: Map::default(),
            handles: Map::default(),
            scam_phones: Map::default(),
            scam_emails: Map::default(),
            scam_hosts: Map::default(),
            scam_handles: Map::default(),
            labels: Map::default(),
            label_typos: Map::default(),
            label_skeletons: Map::default(),
            brands: None,
            long_labels: Vec::new(),
            handle_typos: Map::default(),
            handle_skeletons: Map::default(),
            handle_cores: Map::default(),
        };
        for (index, entry) in entries.iter().enumerate() {
            registry.index_entry(index, entry);
        }
        registry.entries = entries;
        registry.index_lookalikes();
        for scam in scams {
            let map = match scam.kind.as_str() {
                "phone" => &mut registry.scam_phones,
                "email" => &mut registry.scam_emails,
                "domain" | "url" => &mut registry.scam_hosts,
                "handle" => &mut registry.scam_handles,
                _ => continue,
            };
            let stored = map.entry(scam.value.clone()).or_insert(scam.source);
            if scam.source == ScamSource::ConfirmedFraud {
                *stored = ScamSource::ConfirmedFraud;
            }
        }
        registry
    }

    fn index_entry(&mut self, index: usize, entry: &OfficialEntry) {
        let value = entry.value.clone();
        let map = match entry.kind {
            EntryKind::Phone => &mut self.phones,
            EntryKind::Email if value.contains('@') => &mut self.emails,
            EntryKind::Email => &mut self.mail_domains,
            EntryKind::Domain => &mut self.domains,
            EntryKind::Handle => &mut self.handles,
        };
        map.entry(value).or_insert(index);
    }

    /// The names lookalikes are measured against: the label of each official domain or mail
    /// domain that is a registrable domain (`binance` of `binance.com`), and each handle. A
    /// deeper host (`launchpad.ethereum.org`) is official with its subdomains, but the name of
    /// the domain above it is not the registry's to protect unless that domain is listed too.
    fn index_lookalikes(&mut self) {
        for (index, entry) in self.entries.iter().enumerate() {
            let host = match entry.kind {
                EntryKind::Domain => parse_host(&entry.value).ok(),
                EntryKind::Email => {
                    let domain = entry.value.rsplit('@').next().unwrap_or_default();
                    parse_host(domain).ok()
                }
                EntryKind::Phone | EntryKind::Handle => None,
            };
            let host = host.filter(|h| h.ascii == h.registrable);
            if let Some(host) = host {
                let suffixes = self.labels.entry(host.label().to_owned()).or_default();
                suffixes.push((index, host.suffix.clone()));
            }
        }
        let mut brand_patterns = Vec::new();
        let mut brand_entries = Vec::new();
        let labels: Vec<(String, usize)> = (self.labels.iter())
            .map(|(label, at)| (label.clone(), at.first().map_or(0, |(i, _)| *i)))
            .collect();
        for (label, index) in &labels {
            for (variant, how) in variants::typos(label, LABEL_ALPHABET) {
                if !self.labels.contains_key(&variant) {
                    self.label_typos.entry(variant).or_insert((*index, how));
                }
            }
            self.label_skeletons
                .entry(variants::skeleton(label))
                .or_insert(*index);
            if label.len() >= MIN_BRAND_LEN {
                brand_patterns.push(label.clone());
                brand_entries.push(*index);
            }
            if label.len() >= MIN_SIMILAR_LEN {
                self.long_labels.push((label.clone(), *index));
            }
        }
        self.long_labels.sort();
        if let Ok(automaton) = AhoCorasick::new(&brand_patterns) {
            self.brands = Some((automaton, brand_entries));
        }
        let handles: Vec<(String, usize)> = (self.handles.iter())
            .map(|(handle, index)| (handle.clone(), *index))
            .collect();
        for (handle, index) in handles {
            for (variant, how) in variants::typos(&handle, HANDLE_ALPHABET) {
                if !self.handles.contains_key(&variant) {
                    self.handle_typos.entry(variant).or_insert((index, how));
                }
            }
            self.handle_skeletons
                .entry(variants::skeleton(&handle))
                .or_insert(index);
            self.handle_cores
                .entry(crate::verify::handle_core(&handle))
                .or_insert(index);
        }
    }

    /// The official entries, in the order given.
    pub fn entries(&self) -> &[OfficialEntry] {
        &self.entries
    }

    /// How many typo variants and skeletons were computed (for logs and the benchmark).
    pub fn variant_count(&self) -> usize {
        self.label_typos.len()
            + self.label_skeletons.len()
            + self.handle_typos.len()
            + self.handle_skeletons.len()
    }

    pub(crate) fn entry(&self, index: usize) -> Option<&OfficialEntry> {
        self.entries.get(index)
    }

    /// The official domain entry the host or one of its parents (down to the registrable
    /// domain) is.
    pub(crate) fn host_in(&self, map: &Map<usize>, host: &Host) -> Option<usize> {
        let mut rest = host.ascii.as_str();
        loop {
            if let Some(index) = map.get(rest) {
                return Some(*index);
            }
            if rest.len() <= host.registrable.len() {
                return None;
            }
            rest = rest.split_once('.').map_or("", |(_, parent)| parent);
        }
    }

    /// Whether the host or one of its parents is a known scam.
    pub(crate) fn scam_host(&self, host: &Host) -> Option<ScamSource> {
        let mut rest = host.ascii.as_str();
        loop {
            if let Some(source) = self.scam_hosts.get(rest) {
                return Some(*source);
            }
            if rest.len() <= host.registrable.len() {
                return None;
            }
            rest = rest.split_once('.').map_or("", |(_, parent)| parent);
        }
    }
}
