//! Reports of contacts that claimed to be the exchange: recorded as `contact.reported` events
//! through the event-ingest use case, and counted per contact by a projector that follows the
//! event log from its stored position (with `fraud.confirmed`'s `from` contacts), so that the
//! counts survive restarts, are counted once even with several processes, and cost the ingest
//! path nothing.

use super::{Contacts, invalid};
use crate::access::Actor;
use crate::error::{AppError, AppResult};
use crate::error_code::ErrorCode;
use crate::ports::{ChangeSet, ReportTally, StoreError, StoredEvent, Write};
use crate::risk::IngestReport;
use portcullis_contacts::{Kind, normalise};
use portcullis_core::contract::{ContactChannel, EventBody, parse_line};
use portcullis_core::operator::Permission;
use serde_json::json;
use std::collections::HashMap;

/// The `account` of a report made on the public page, where nobody is signed in. It is not a
/// valid account identifier (`~`), so it can never be a real account's; such reports are
/// counted apart and never make a contact a known scam on their own.
pub const PUBLIC_REPORTER: &str = "~public";

/// Log entries read per projector step.
const PAGE: u32 = 1_000;
const MAX_CLAIMED: usize = 200;
/// The most that is kept of a value the verifier cannot read.
const MAX_UNREADABLE: usize = 200;

/// A report as a person makes it.
#[derive(Debug, Clone, Default)]
pub struct NewReport {
    /// The account it is about; a customer's own, taken from their session. `None` only for
    /// the public page ([`PUBLIC_REPORTER`]) and the service.
    pub account: Option<String>,
    pub value: String,
    /// `phone`, `sms`, `email`, `telegram`, `whatsapp` or `other`; by default from the kind.
    pub channel: Option<String>,
    /// Who the contact claimed to be.
    pub claimed: Option<String>,
}

impl Contacts {
    /// Records a report as a `contact.reported` event through the event-ingest use case, then
    /// counts it. A customer reports for their own account; an operator that ingests events
    /// names one; the public page reports as [`PUBLIC_REPORTER`].
    pub async fn report(&self, actor: &Actor, report: &NewReport) -> AppResult<IngestReport> {
        actor.require(Permission::VerifyContacts)?;
        let account = match (actor.customer_account(), &report.account) {
            // A customer reports for their own account (another one is not found).
            (Some(own), asked) => {
                let asked = asked.as_deref().unwrap_or(own);
                let access = actor.access_account(Permission::VerifyContacts, asked)?;
                access.account().to_owned()
            }
            (None, Some(asked)) => {
                let access = actor.access_account(Permission::IngestEvents, asked)?;
                access.account().to_owned()
            }
            (None, None) => PUBLIC_REPORTER.to_owned(),
        };
        let region = self.settings.default_region.as_deref();
        let normalized = normalise(&report.value, region).map_err(|e| invalid(&e))?;
        let channel = match report.channel.as_deref().filter(|c| !c.is_empty()) {
            Some(given) => contact_channel(given)?,
            None => default_channel(normalized.kind),
        };
        let claimed = report.claimed.as_deref().unwrap_or_default().trim();
        if claimed.chars().count() > MAX_CLAIMED || claimed.chars().any(char::is_control) {
            return Err(AppError::invalid(
                ErrorCode::InvalidClaimed,
                format!("who it claimed to be is at most {MAX_CLAIMED} characters"),
            ));
        }
        let claimed = if claimed.is_empty() {
            "the exchange"
        } else {
            claimed
        };
        let now = self.clock.now().to_rfc3339();
        let line = json!({
            "id": crate::random::identifier("evt")?,
            "ts": now,
            "type": "contact.reported",
            "account": account,
            "channel": channel,
            "from": report.value.trim(),
            "claimed": claimed,
            "contacted_at": now,
        });
        // The service ingests on the reporter's behalf: the reporter has been checked above,
        // ingest is the exchange's use case, and who reported is the event's `account` (a
        // customer's own, the one an operator named, or the public page's).
        let ingested = (self.risk)
            .ingest(&Actor::system(), &line.to_string())
            .await?;
        if let Some(rejected) = ingested.rejected.first() {
            return Err(AppError::invalid(
                ErrorCode::InvalidReport,
                rejected.reason.clone(),
            ));
        }
        self.project().await?;
        Ok(ingested)
    }

    /// Counts the reports and confirmed frauds logged since the projector's position, page by
    /// page, each page in one commit with the new position; then compiles the registry again
    /// if the scam list changed. Returns the log entries counted. Another process counting the
    /// same entries first is not an error: this pass stops and the next starts from there.
    pub async fn project(&self) -> AppResult<usize> {
        let _one = self.projecting.lock().await;
        let mut counted = 0;
        loop {
            let from = self.store.contact_report_cursor().await?;
            let (events, to) = self.store.report_events_after(from, PAGE).await?;
            if to <= from {
                break;
            }
            let tallies = self.tally(&events);
            counted += events.len();
            let write = Write::ApplyContactReports {
                from_seq: from,
                to_seq: to,
                tallies,
            };
            match self
                .store
                .commit(ChangeSet {
                    writes: vec![write],
                    ..ChangeSet::default()
                })
                .await
            {
                Ok(()) => {}
                Err(StoreError::Conflict(_)) => break,
                Err(other) => return Err(other.into()),
            }
        }
        if counted > 0 {
            self.refresh().await?;
        }
        Ok(counted)
    }

    /// The counts one page of events adds, per contact in its normal form.
    fn tally(&self, events: &[StoredEvent]) -> Vec<ReportTally> {
        let mut by_contact: HashMap<(String, String), ReportTally> = HashMap::new();
        let region = self.settings.default_region.as_deref();
        for stored in events {
            let Ok(event) = parse_line(&stored.event.body) else {
                continue;
            };
            let (contacts, channel, claimed, public, fraud) = match &event.body {
                EventBody::ContactReported {
                    channel,
                    from,
                    claimed,
                    ..
                } => {
                    let public = event.account.as_deref() == Some(PUBLIC_REPORTER);
                    (
                        vec![from.clone()],
                        channel_name(*channel),
                        claimed.clone(),
                        public,
                        false,
                    )
                }
                EventBody::FraudConfirmed { from, .. } => {
                    (from.clone(), "fraud_confirmed", String::new(), false, true)
                }
                _ => continue,
            };
            for contact in contacts {
                let (kind, value) = match normalise(&contact, region) {
                    Ok(n) => (n.kind.as_str().to_owned(), n.normalized),
                    Err(_) => ("unreadable".to_owned(), unreadable(&contact)),
                };
                let row = by_contact
                    .entry((kind.clone(), value.clone()))
                    .or_insert_with(|| ReportTally {
                        kind,
                        value,
                        reports: 0,
                        public_reports: 0,
                        confirmed_frauds: 0,
                        first_seen: event.ts,
                        last_seen: event.ts,
                        last_claimed: String::new(),
                        last_channel: String::new(),
                    });
                match (fraud, public) {
                    (true, _) => row.confirmed_frauds += 1,
                    (false, true) => row.public_reports += 1,
                    (false, false) => row.reports += 1,
                }
                row.first_seen = row.first_seen.min(event.ts);
                if event.ts >= row.last_seen || row.last_channel.is_empty() {
                    row.last_seen = row.last_seen.max(event.ts);
                    row.last_claimed = claimed.clone();
                    row.last_channel = channel.to_owned();
                }
            }
        }
        let mut rows: Vec<ReportTally> = by_contact.into_values().collect();
        rows.sort_by(|a, b| (&a.kind, &a.value).cmp(&(&b.kind, &b.value)));
        rows
    }
}

fn unreadable(contact: &str) -> String {
    let cleaned: String = contact.trim().chars().filter(|c| !c.is_control()).collect();
    cleaned
        .to_lowercase()
        .chars()
        .take(MAX_UNREADABLE)
        .collect()
}

fn default_channel(kind: Kind) -> &'static str {
    match kind {
        Kind::Phone => "phone",
        Kind::Email => "email",
        Kind::Domain | Kind::Url | Kind::Handle => "other",
    }
}

fn contact_channel(given: &str) -> AppResult<&'static str> {
    ["phone", "sms", "email", "telegram", "whatsapp", "other"]
        .into_iter()
        .find(|c| *c == given)
        .ok_or_else(|| {
            AppError::invalid(
                ErrorCode::InvalidReportChannel,
                "channel is phone, sms, email, telegram, whatsapp or other",
            )
        })
}

fn channel_name(channel: ContactChannel) -> &'static str {
    match channel {
        ContactChannel::Phone => "phone",
        ContactChannel::Sms => "sms",
        ContactChannel::Email => "email",
        ContactChannel::Telegram => "telegram",
        ContactChannel::Whatsapp => "whatsapp",
        ContactChannel::Other => "other",
    }
}
