//! "Is this really the exchange?": the official-contact registry (operator-managed, every
//! change audited), verification against it, customers' reports of contacts that claimed to be
//! the exchange, and the operators' view of those reports.
//!
//! The registry is compiled once into memory (`portcullis_contacts::Registry`: every typo
//! variant and skeleton of every official name) with the contacts known to be used in scams,
//! and compiled again when a change commits here or when the background pass finds that the
//! stored registry or the scam list differ from what is compiled (another process changed
//! them). Verification never touches storage.
//!
//! Reports reach the engine as `contact.reported` events through the event-ingest use case,
//! like any event; `reports` counts them per contact from the event log after ingest, so the
//! ingest path does no extra work.

mod reports;

use crate::access::Actor;
use crate::changes::Change;
use crate::error::{AppError, AppResult};
use crate::error_code::ErrorCode;
use crate::ports::{Clock, ReportTally, Store, StoredOfficialContact, Write};
use crate::risk::Risk;
use portcullis_contacts::{
    Answer, ContactError, Direction, EntryKind, KnownScam, OfficialEntry, Registry, ScamSource,
    normalise_entry,
};
use portcullis_core::operator::Permission;
use serde_json::json;
use std::sync::{Arc, RwLock};

pub use reports::{NewReport, PUBLIC_REPORTER};

/// How reports and national numbers are treated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContactSettings {
    /// Reports from accounts (signed-in customers, the exchange's feed) at which a contact is
    /// answered `known_scam`. Reports from the public page never count towards it.
    pub report_threshold: i64,
    /// The region (ISO 3166 alpha-2) a national phone number without `+` is read in; none:
    /// such numbers are refused with `invalid_phone`.
    pub default_region: Option<String>,
}

impl Default for ContactSettings {
    fn default() -> Self {
        Self {
            report_threshold: 3,
            default_region: None,
        }
    }
}

/// What an operator asks to add.
#[derive(Debug, Clone, Default)]
pub struct NewOfficial {
    pub kind: String,
    pub value: String,
    pub channel: Option<String>,
    pub direction: Option<String>,
    pub note: Option<String>,
}

/// What the compiled registry was built from, to tell whether it is current.
#[derive(Debug, Default, PartialEq, Eq)]
struct Inputs {
    entries: Vec<OfficialEntry>,
    scams: Vec<KnownScam>,
}

#[derive(Debug)]
struct Compiled {
    inputs: Inputs,
    registry: Arc<Registry>,
}

/// The contact use cases.
#[derive(Debug, Clone)]
pub struct Contacts {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    risk: Risk,
    settings: ContactSettings,
    compiled: Arc<RwLock<Compiled>>,
    /// One projector pass at a time in this process.
    projecting: Arc<tokio::sync::Mutex<()>>,
    /// One refresh at a time, so that a pass which read the store before a registry change
    /// cannot finish after, and overwrite, the pass which read it after.
    refreshing: Arc<tokio::sync::Mutex<()>>,
}

const MAX_NOTE: usize = 200;
const MAX_CHANNEL: usize = 32;

/// A value that cannot be verified, as the API answers it: the one place a contact error
/// becomes a stable code (the wire strings are the contacts crate's own `ContactError::code`).
fn invalid(error: &ContactError) -> AppError {
    AppError::invalid(error_code(error), error.to_string())
}

/// The stable code of a contact error.
pub fn error_code(error: &ContactError) -> ErrorCode {
    match error {
        ContactError::Empty => ErrorCode::EmptyValue,
        ContactError::TooLong => ErrorCode::ValueTooLong,
        ContactError::ControlCharacters => ErrorCode::ControlCharacters,
        ContactError::InvalidPunycode => ErrorCode::InvalidPunycode,
        ContactError::InvalidDomain(_) => ErrorCode::InvalidDomain,
        ContactError::InvalidUrl(_) => ErrorCode::InvalidUrl,
        ContactError::InvalidEmail => ErrorCode::InvalidEmail,
        ContactError::InvalidPhone(_) => ErrorCode::InvalidPhone,
        ContactError::InvalidHandle => ErrorCode::InvalidHandle,
        ContactError::UnknownKind(_) => ErrorCode::InvalidContactKind,
    }
}

impl Contacts {
    /// Loads and compiles the registry.
    pub async fn start(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        risk: Risk,
        settings: ContactSettings,
    ) -> AppResult<Self> {
        let contacts = Self {
            store,
            clock,
            risk,
            settings,
            compiled: Arc::new(RwLock::new(Compiled {
                inputs: Inputs::default(),
                registry: Arc::new(Registry::compile(Vec::new(), &[])),
            })),
            projecting: Arc::default(),
            refreshing: Arc::default(),
        };
        contacts.refresh().await?;
        Ok(contacts)
    }

    /// The same use cases under other settings, with the registry compiled again.
    pub async fn with_settings(mut self, settings: ContactSettings) -> AppResult<Self> {
        self.settings = settings;
        self.compiled = Arc::new(RwLock::new(Compiled {
            inputs: Inputs::default(),
            registry: Arc::new(Registry::compile(Vec::new(), &[])),
        }));
        self.refresh().await?;
        Ok(self)
    }

    pub fn settings(&self) -> &ContactSettings {
        &self.settings
    }

    pub async fn add_official(
        &self,
        actor: &Actor,
        new: &NewOfficial,
    ) -> AppResult<StoredOfficialContact> {
        actor.require_operator(Permission::ManageContacts)?;
        let kind = EntryKind::parse(&new.kind).map_err(|e| invalid(&e))?;
        let region = self.settings.default_region.as_deref();
        let value = normalise_entry(kind, &new.value, region).map_err(|e| invalid(&e))?;
        let entry = OfficialEntry {
            id: crate::random::identifier("oc")?,
            kind,
            value,
            channel: channel(kind, new.channel.as_deref())?,
            direction: direction(kind, new.direction.as_deref())?,
            note: note(new.note.as_deref())?,
        };
        let now = self.clock.now();
        let stored = StoredOfficialContact {
            entry: entry.clone(),
            created_at: now,
            created_by: actor.id().to_owned(),
        };
        let change = Change::global(actor, now)
            .write(Write::InsertOfficialContact(stored.clone()))
            .audit(
                "contact.official_added",
                format!("contact:{}", entry.id),
                json!({ "kind": kind.as_str(), "value": entry.value, "channel": entry.channel,
                        "direction": entry.direction.as_str(), "note": entry.note }),
            );
        self.store
            .commit(change.into_set())
            .await
            .map_err(|e| match e {
                crate::ports::StoreError::Conflict(_) => AppError::Conflict(format!(
                    "{} {} is already an official contact",
                    kind.as_str(),
                    entry.value
                )),
                other => other.into(),
            })?;
        self.refresh().await?;
        Ok(stored)
    }

    pub async fn list_official(&self, actor: &Actor) -> AppResult<Vec<StoredOfficialContact>> {
        actor.require_operator(Permission::ReadContacts)?;
        Ok(self.store.official_contacts().await?)
    }

    pub async fn remove_official(
        &self,
        actor: &Actor,
        id: &str,
    ) -> AppResult<StoredOfficialContact> {
        actor.require_operator(Permission::ManageContacts)?;
        let listed = self.store.official_contacts().await?;
        let stored = (listed.into_iter())
            .find(|c| c.entry.id == id)
            .ok_or_else(|| AppError::NotFound(format!("official contact {id}")))?;
        let entry = &stored.entry;
        let change = Change::global(actor, self.clock.now())
            .write(Write::RemoveOfficialContact { id: id.to_owned() })
            .audit(
                "contact.official_removed",
                format!("contact:{id}"),
                json!({ "kind": entry.kind.as_str(), "value": entry.value }),
            );
        self.store.commit(change.into_set()).await?;
        self.refresh().await?;
        Ok(stored)
    }

    /// Verifies one value against the compiled registry. Customers and every operator role
    /// may ask; the public page asks as the service.
    pub fn verify(&self, actor: &Actor, value: &str, region: Option<&str>) -> AppResult<Answer> {
        actor.require(Permission::VerifyContacts)?;
        let region = region.or(self.settings.default_region.as_deref());
        self.registry()
            .verify(value, region)
            .map_err(|e| invalid(&e))
    }

    /// What the registry is compiled from, brought up to date with storage: for verifying many
    /// values in one go elsewhere (the CLI's `--file`).
    pub async fn registry_inputs(
        &self,
        actor: &Actor,
    ) -> AppResult<(Vec<OfficialEntry>, Vec<KnownScam>)> {
        actor.require_operator(Permission::VerifyContacts)?;
        actor.require_operator(Permission::ReadContacts)?;
        // Reports logged since the last background pass count too (the local CLI runs none).
        self.project().await?;
        self.refresh().await?;
        let compiled = match self.compiled.read() {
            Ok(compiled) => compiled,
            Err(poisoned) => poisoned.into_inner(),
        };
        Ok((
            compiled.inputs.entries.clone(),
            compiled.inputs.scams.clone(),
        ))
    }

    fn registry(&self) -> Arc<Registry> {
        match self.compiled.read() {
            Ok(compiled) => compiled.registry.clone(),
            Err(poisoned) => poisoned.into_inner().registry.clone(),
        }
    }

    /// Compiles the registry again if the stored official contacts or scam list differ from
    /// what is compiled. Returns whether it did.
    pub async fn refresh(&self) -> AppResult<bool> {
        let _one_at_a_time = self.refreshing.lock().await;
        let entries: Vec<OfficialEntry> = (self.store.official_contacts().await?.into_iter())
            .map(|c| c.entry)
            .collect();
        let scams = (self
            .store
            .scam_contacts(self.settings.report_threshold)
            .await?)
            .into_iter()
            .map(|t| KnownScam {
                source: match t.confirmed_frauds > 0 {
                    true => ScamSource::ConfirmedFraud,
                    false => ScamSource::Reported,
                },
                kind: t.kind,
                value: t.value,
            })
            .collect();
        let inputs = Inputs { entries, scams };
        let current = match self.compiled.read() {
            Ok(compiled) => compiled.inputs == inputs,
            Err(_) => false,
        };
        if current {
            return Ok(false);
        }
        let registry = Arc::new(Registry::compile(inputs.entries.clone(), &inputs.scams));
        tracing::info!(
            official = inputs.entries.len(),
            scams = inputs.scams.len(),
            variants = registry.variant_count(),
            "contact registry compiled"
        );
        let mut compiled = match self.compiled.write() {
            Ok(compiled) => compiled,
            Err(poisoned) => poisoned.into_inner(),
        };
        *compiled = Compiled { inputs, registry };
        Ok(true)
    }

    /// Reported contacts with their counts, most recently reported first.
    pub async fn reports(&self, actor: &Actor, limit: u32) -> AppResult<Vec<ReportTally>> {
        actor.require_operator(Permission::ReadContacts)?;
        Ok(self.store.contact_reports(limit.clamp(1, 1000)).await?)
    }
}

fn channel(kind: EntryKind, given: Option<&str>) -> AppResult<String> {
    let Some(given) = given.filter(|c| !c.is_empty()) else {
        return Ok(match kind {
            EntryKind::Phone => "phone",
            EntryKind::Email => "email",
            EntryKind::Domain => "web",
            EntryKind::Handle => "other",
        }
        .to_owned());
    };
    let fine = given.len() <= MAX_CHANNEL
        && given
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
    match fine {
        true => Ok(given.to_owned()),
        false => Err(AppError::invalid(
            ErrorCode::InvalidChannel,
            "a channel is 1 to 32 lower-case letters, digits, `_` or `-` (e.g. telegram, x, whatsapp)",
        )),
    }
}

fn direction(kind: EntryKind, given: Option<&str>) -> AppResult<Direction> {
    match given.filter(|d| !d.is_empty()) {
        None => Ok(Direction::default_for(kind)),
        Some(text) => Direction::parse(text).ok_or_else(|| {
            AppError::invalid(
                ErrorCode::InvalidDirection,
                "direction is inbound (customers reach us there), outbound (we contact them from it) or both",
            )
        }),
    }
}

fn note(given: Option<&str>) -> AppResult<String> {
    let note = given.unwrap_or_default().trim();
    if note.chars().count() > MAX_NOTE || note.chars().any(char::is_control) {
        return Err(AppError::invalid(
            ErrorCode::InvalidNote,
            format!("a note is at most {MAX_NOTE} characters, without control characters"),
        ));
    }
    Ok(note.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_contact_error_keeps_its_wire_string_as_a_400() {
        let errors = [
            ContactError::Empty,
            ContactError::TooLong,
            ContactError::ControlCharacters,
            ContactError::InvalidPunycode,
            ContactError::InvalidDomain(String::new()),
            ContactError::InvalidUrl(String::new()),
            ContactError::InvalidEmail,
            ContactError::InvalidPhone(String::new()),
            ContactError::InvalidHandle,
            ContactError::UnknownKind(String::new()),
        ];
        let codes: Vec<&str> = errors.iter().map(ContactError::code).collect();
        assert_eq!(codes, ContactError::CODES, "every contact error, once");
        for error in &errors {
            assert_eq!(error_code(error).as_str(), error.code());
            assert_eq!(error_code(error).status(), 400);
        }
    }
}
