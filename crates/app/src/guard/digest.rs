//! The daily security digest as a service: a customer switches it on at an hour of their
//! choosing, moves it or switches it off (each announced, so a digest switched off by someone
//! else does not go quietly), and a background pass sends every digest that is due, once: the
//! digest's messages and its next time are one commit, and a second process that sent it
//! first makes this one's commit a conflict that writes nothing.

use super::Guard;
use super::notices::account_notice;
use crate::ErrorCode;
use crate::access::Actor;
use crate::changes::Change;
use crate::error::{AppError, AppResult};
use crate::ports::{DigestSubscription, Write};
use portcullis_core::contract::{ContractEvent, parse_line};
use portcullis_core::digest::{DAY_MS, DigestFacts, NEW_IF_UNSEEN_FOR_MS, next_due};
use portcullis_core::guard::PendingStatus;
use portcullis_core::notice::NoticeKind;
use portcullis_core::operator::Permission;
use portcullis_core::time::UnixMillis;
use serde_json::json;

/// Digests sent per pass; the rest wait for the next pass.
const PER_PASS: u32 = 200;
/// Events read per digest (a day and the thirty before); beyond it the oldest are not seen.
const EVENTS_READ: u32 = 20_000;
/// Decisions looked up per digest.
const DECISIONS_READ: usize = 200;
/// Event types the risk engine decides on.
const DECIDED: [&str; 5] = [
    "withdrawal.requested",
    "api_key.created",
    "api_key.updated",
    "address.added",
    "login",
];

impl Guard {
    /// The account's digest subscription, if it has one.
    pub async fn digest(
        &self,
        actor: &Actor,
        account: &str,
    ) -> AppResult<Option<DigestSubscription>> {
        actor.access_account(Permission::ReadKeys, account)?;
        self.account(account).await?;
        Ok(self.store.digest_subscription(account).await?)
    }

    /// Switches the digest on, or moves it, to `hour_utc` every day.
    pub async fn subscribe_digest(
        &self,
        actor: &Actor,
        account: &str,
        hour_utc: u8,
    ) -> AppResult<DigestSubscription> {
        let access = actor.access_account(Permission::ManageKeys, account)?;
        if hour_utc > 23 {
            return Err(AppError::invalid(
                ErrorCode::InvalidDigestHour,
                "the digest's hour is 0 to 23 (UTC)",
            ));
        }
        self.account(account).await?;
        let now = self.clock.now();
        let existing = self.store.digest_subscription(account).await?;
        let subscription = DigestSubscription {
            account: account.to_owned(),
            hour_utc,
            next_at: next_due(hour_utc, now),
            created_at: existing.as_ref().map_or(now, |s| s.created_at),
        };
        let summary = format!(
            "you will get a security digest every day at {hour_utc:02}:00 UTC, even on quiet \
             days: if one does not come, look at your account"
        );
        let notice = account_notice(
            NoticeKind::DigestChanged,
            account,
            &format!("digest-on:{}", now.as_millis()),
            &summary,
            now,
        );
        let change = Change::new(&access, now)
            .write(Write::PutDigest(subscription.clone()))
            .audit(
                "digest.subscribed",
                format!("account:{account}"),
                json!({ "hour_utc": hour_utc }),
            );
        let change = self.announced(change, &notice, now).await?;
        self.store.commit(change.into_set()).await?;
        Ok(subscription)
    }

    /// Switches the digest off (announced: it is the customer's daily sign of life).
    pub async fn unsubscribe_digest(&self, actor: &Actor, account: &str) -> AppResult<()> {
        let access = actor.access_account(Permission::ManageKeys, account)?;
        let now = self.clock.now();
        let notice = account_notice(
            NoticeKind::DigestChanged,
            account,
            &format!("digest-off:{}", now.as_millis()),
            "your daily security digest was switched off. If you did not do this, freeze your \
             account in the security center now",
            now,
        );
        let change = Change::new(&access, now)
            .write(Write::RemoveDigest {
                account: account.to_owned(),
            })
            .audit(
                "digest.unsubscribed",
                format!("account:{account}"),
                json!({}),
            );
        let change = self.announced(change, &notice, now).await?;
        self.store.commit(change.into_set()).await?;
        Ok(())
    }

    /// Sends every digest that is due; returns how many were sent.
    pub async fn send_due_digests(&self) -> AppResult<usize> {
        let now = self.clock.now();
        let mut sent = 0;
        for due in self.store.due_digests(now, PER_PASS).await? {
            match self.send_digest(&due, now).await {
                Ok(()) => sent += 1,
                // Sent (or moved) by another process meanwhile.
                Err(AppError::Conflict(_)) => {}
                Err(error) => {
                    tracing::warn!(account = %due.account, %error, "sending a digest failed");
                }
            }
        }
        Ok(sent)
    }

    async fn send_digest(&self, due: &DigestSubscription, now: UnixMillis) -> AppResult<()> {
        // A digest late by more than a day (the service was down) covers the last day only.
        let to = due.next_at.max(now.plus_millis(-DAY_MS));
        let from = to.plus_millis(-DAY_MS);
        let facts = self.digest_facts(&due.account, from, to).await?;
        let system = Actor::system();
        let access = system.access_account(Permission::ManageKeys, &due.account)?;
        let change = Change::new(&access, now).write(Write::AdvanceDigest {
            account: due.account.clone(),
            sent_for: due.next_at,
            next_at: next_due(due.hour_utc, now),
        });
        let change = self
            .announced(change, &facts.notice(&due.account, now), now)
            .await?;
        Ok(self.store.commit(change.into_set()).await?)
    }

    /// What happened to `account` in `[from, to)`.
    pub(crate) async fn digest_facts(
        &self,
        account: &str,
        from: UnixMillis,
        to: UnixMillis,
    ) -> AppResult<DigestFacts> {
        let overview = self.overview(&Actor::system(), account, 0).await?;
        let labels: std::collections::HashMap<String, String> = (overview.keys.iter())
            .map(|view| (view.key.key_id.clone(), key_name(&view.key)))
            .collect();
        let logged = (self.store)
            .account_events_between(
                account,
                from.plus_millis(-NEW_IF_UNSEEN_FOR_MS),
                to,
                EVENTS_READ,
            )
            .await?;
        let events: Vec<ContractEvent> = (logged.iter())
            .filter_map(|stored| parse_line(&stored.event.body).ok())
            .collect();
        let (period, before): (Vec<_>, Vec<_>) = events.into_iter().partition(|e| e.ts >= from);
        let mut facts = DigestFacts {
            from,
            to,
            checkup_score: overview.checkup.score,
            pending_widenings: (overview.changes.iter())
                .filter(|c| {
                    matches!(
                        c.status,
                        PendingStatus::Pending | PendingStatus::Held { .. }
                    )
                })
                .count(),
            ..DigestFacts::default()
        };
        facts.tally_events(&period, &before, |id| {
            labels.get(id).cloned().unwrap_or_else(|| id.to_owned())
        });
        facts.holds = self.holds_in(&period).await?;
        facts.changes = (self
            .store
            .audit_for_account(account, 500)
            .await?
            .into_iter())
        .rev()
        .filter(|entry| entry.at >= from && entry.at < to)
        .filter_map(|entry| portcullis_core::digest::describe_action(&entry.action))
        .map(str::to_owned)
        .collect();
        Ok(facts)
    }

    /// The actions of `period` the risk engine held or refused, in plain words.
    async fn holds_in(&self, period: &[ContractEvent]) -> AppResult<Vec<String>> {
        let mut holds = Vec::new();
        let decided = period
            .iter()
            .filter(|e| DECIDED.contains(&e.body.type_name()))
            .take(DECISIONS_READ);
        for event in decided {
            if let Some(decision) = self.store.decision(&event.id).await?
                && matches!(decision.decision.as_str(), "hold" | "block")
            {
                let verb = match decision.decision.as_str() {
                    "hold" => "held for review",
                    _ => "refused",
                };
                holds.push(format!(
                    "{} at {}: {verb}",
                    portcullis_core::digest::describe_event_type(event.body.type_name()),
                    event.ts.to_rfc3339()
                ));
            }
        }
        Ok(holds)
    }
}

fn key_name(key: &portcullis_core::key::ApiKey) -> String {
    match key.label.is_empty() {
        true => key.key_id.clone(),
        false => format!("'{}'", key.label),
    }
}
