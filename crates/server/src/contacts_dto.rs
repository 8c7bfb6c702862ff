//! The JSON shapes of the contact endpoints (`/v1/contacts/...`) and their OpenAPI schemas.

use portcullis_app::ports::{ReportTally, StoredOfficialContact};
use portcullis_contacts::{Answer, KnownScam, OfficialEntry};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// An official contact to add.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddOfficialBody {
    /// `phone`, `email`, `domain` or `handle`.
    #[schema(pattern = "^(phone|email|domain|handle)$")]
    pub kind: String,
    /// In any common notation: `+44 20 7946 0958`, `support@exchange.example` or
    /// `exchange.example` (a whole mail domain), `https://exchange.example`, `@exchange`.
    #[schema(
        pattern = "^[^\\x00-\\x1f\\x7f-\\x9f\\u200b-\\u200f\\u202a-\\u202e\\u2066-\\u2069\\ufeff]*[^\\s\\x00-\\x1f\\x7f-\\x9f\\u200b-\\u200f\\u202a-\\u202e\\u2066-\\u2069\\ufeff][^\\x00-\\x1f\\x7f-\\x9f\\u200b-\\u200f\\u202a-\\u202e\\u2066-\\u2069\\ufeff]*$"
    )]
    pub value: String,
    /// Where it is used: `phone`, `email`, `web`, `telegram`, `x`, `whatsapp`, … (by default
    /// from the kind).
    pub channel: Option<String>,
    /// `inbound` (customers reach us there; we never contact anyone from it), `outbound` (we
    /// contact customers from it) or `both`. By default inbound for phones and handles,
    /// outbound for e-mail, both for domains.
    pub direction: Option<String>,
    /// What customers are told, e.g. "24/7 support line" (at most 200 characters).
    pub note: Option<String>,
}

/// An official contact, with who added it and when.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct OfficialContactDto {
    #[serde(flatten)]
    pub entry: OfficialMatchDto,
    pub created_at: String,
    pub created_by: String,
}

impl From<StoredOfficialContact> for OfficialContactDto {
    fn from(c: StoredOfficialContact) -> Self {
        OfficialContactDto {
            entry: c.entry.into(),
            created_at: c.created_at.to_rfc3339(),
            created_by: c.created_by,
        }
    }
}

/// A value to verify.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VerifyContactBody {
    /// A phone number, e-mail address, domain, link or handle, at most 2048 bytes, without
    /// control or invisible formatting characters.
    #[schema(
        pattern = "^[^\\x00-\\x1f\\x7f-\\x9f\\u200b-\\u200f\\u202a-\\u202e\\u2066-\\u2069\\ufeff]*[^\\s\\x00-\\x1f\\x7f-\\x9f\\u200b-\\u200f\\u202a-\\u202e\\u2066-\\u2069\\ufeff][^\\x00-\\x1f\\x7f-\\x9f\\u200b-\\u200f\\u202a-\\u202e\\u2066-\\u2069\\ufeff]*$"
    )]
    pub value: String,
    /// The region (ISO 3166 alpha-2) of a national phone number written without `+`.
    pub region: Option<String>,
}

/// An official entry: in the registry, or the one an answer is about.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct OfficialMatchDto {
    pub id: String,
    /// `phone`, `email`, `domain` or `handle`.
    pub kind: String,
    /// The normal form: E.164, a lower-case address or mail domain, a host, a handle.
    pub value: String,
    pub channel: String,
    /// `inbound`, `outbound` or `both`.
    pub direction: String,
    pub note: String,
}

impl From<OfficialEntry> for OfficialMatchDto {
    fn from(e: OfficialEntry) -> Self {
        OfficialMatchDto {
            id: e.id,
            kind: e.kind.as_str().to_owned(),
            value: e.value,
            channel: e.channel,
            direction: e.direction.as_str().to_owned(),
            note: e.note,
        }
    }
}

/// The answer.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct VerifyContactDto {
    pub value: String,
    /// `phone`, `email`, `domain`, `url` or `handle`.
    pub kind: String,
    /// E.164 for a phone number, the registrable domain for a link or an e-mail address, the
    /// host for a domain, the handle without `@`.
    pub normalized: String,
    /// The whole host of a link, e-mail address or domain.
    pub host: Option<String>,
    /// `official`, `not_official`, `known_scam` or `lookalike`.
    pub verdict: String,
    /// The official entry the value is, or the one a lookalike imitates.
    pub official_match: Option<OfficialMatchDto>,
    /// How a lookalike imitates it: `omission`, `homoglyph`, `swapped_tld`, … (docs/api.md).
    pub lookalike: Option<String>,
    /// Stable reason codes.
    pub reasons: Vec<String>,
    /// What the answer means, for a person.
    pub explanation: String,
}

impl From<Answer> for VerifyContactDto {
    fn from(a: Answer) -> Self {
        VerifyContactDto {
            value: a.value,
            kind: a.kind.as_str().to_owned(),
            normalized: a.normalized,
            host: a.host,
            verdict: a.verdict.as_str().to_owned(),
            official_match: a.official_match.map(OfficialMatchDto::from),
            lookalike: a.lookalike.map(|h| h.as_str().to_owned()),
            reasons: a.reasons.iter().map(|r| (*r).to_owned()).collect(),
            explanation: a.explanation,
        }
    }
}

/// A reported contact with its counts.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ContactReportDto {
    /// The kind it was read as, or `unreadable` (kept as written).
    pub kind: String,
    pub value: String,
    /// Reports from accounts (signed-in customers, the exchange's feed).
    pub reports: i64,
    /// Reports from the public page (never enough on their own for `known_scam`).
    pub public_reports: i64,
    /// `fraud.confirmed` events that named it.
    pub confirmed_frauds: i64,
    /// Whether verification answers `known_scam` for it.
    pub known_scam: bool,
    pub first_seen: String,
    pub last_seen: String,
    pub last_claimed: String,
    pub last_channel: String,
}

impl ContactReportDto {
    pub fn new(t: ReportTally, threshold: i64) -> Self {
        ContactReportDto {
            // What the verifier cannot read cannot be answered, so it is never a known scam.
            known_scam: t.kind != "unreadable"
                && (t.confirmed_frauds > 0 || t.reports >= threshold),
            kind: t.kind,
            value: t.value,
            reports: t.reports,
            public_reports: t.public_reports,
            confirmed_frauds: t.confirmed_frauds,
            first_seen: t.first_seen.to_rfc3339(),
            last_seen: t.last_seen.to_rfc3339(),
            last_claimed: t.last_claimed,
            last_channel: t.last_channel,
        }
    }
}

/// Paging of the reports.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ReportsQuery {
    /// At most this many (1..1000, default 100).
    pub limit: Option<u32>,
}

/// A known scam, as the registry is compiled with it.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct KnownScamDto {
    pub kind: String,
    pub value: String,
    /// `confirmed_fraud` or `reported`.
    pub source: String,
}

impl From<KnownScam> for KnownScamDto {
    fn from(s: KnownScam) -> Self {
        KnownScamDto {
            kind: s.kind,
            value: s.value,
            source: match s.source {
                portcullis_contacts::ScamSource::ConfirmedFraud => "confirmed_fraud",
                portcullis_contacts::ScamSource::Reported => "reported",
            }
            .to_owned(),
        }
    }
}

/// What the registry is compiled from: for verifying many values outside the server (the
/// CLI's `contacts verify --file`).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct RegistryDto {
    pub official: Vec<OfficialMatchDto>,
    pub known_scams: Vec<KnownScamDto>,
    /// The region national phone numbers are read in, if one is configured.
    pub default_region: Option<String>,
}
