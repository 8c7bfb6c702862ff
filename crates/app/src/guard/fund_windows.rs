//! Time-boxed fund windows in service: the exchange's withdrawal check spends from a capped
//! window (one key at a time, so two withdrawals checked at once cannot both take the last of
//! the cap), and a sweep tidies keys whose window has lapsed and tells their owners.
//!
//! Lapsing itself needs no sweep: a lapsed window's scopes stop counting at its end, in the
//! verifier and in the check (see `portcullis_core::guard::fund_window`). The sweep makes the
//! stored key say so, tells the risk engine the key can no longer move funds, and announces it.

use super::Guard;
use super::notices::account_notice;
use crate::access::{AccountAccess, Actor};
use crate::changes::Change;
use crate::error::{AppError, AppResult};
use crate::keys::{key_details, key_target, replace, successor};
use portcullis_core::events::{Effective, EventBody, EventContext, StepUp};
use portcullis_core::guard::fund_window::{SpendRefusal, UsdCents};
use portcullis_core::key::{ApiKey, KeyStatus};
use portcullis_core::notice::NoticeKind;
use portcullis_core::operator::Permission;
use portcullis_core::scope::Scope;
use portcullis_core::time::UnixMillis;
use serde_json::json;

/// How often a spend is tried again when another one changed the key in between.
const SPEND_ATTEMPTS: usize = 5;

impl Guard {
    /// Whether `key_id` may withdraw `amount` now, and if so the amount spent from its window:
    /// `None` when it may, else the refusal's reason. A key of another account is not found.
    pub(crate) async fn spend_from_key(
        &self,
        access: &AccountAccess<'_>,
        key_id: &str,
        amount: Option<UsdCents>,
        now: UnixMillis,
    ) -> AppResult<Option<&'static str>> {
        let _one_at_a_time = self.spending.lock().await;
        for _ in 0..SPEND_ATTEMPTS {
            let key = self.keys.existing_key(key_id).await?;
            access
                .covers(&key.account)
                .map_err(|_| AppError::NotFound(format!("key {key_id}")))?;
            if key.status(now, self.keys.policy().idle) != KeyStatus::Active {
                return Ok(Some("key_not_active"));
            }
            if !key.scopes_at(now).contains(Scope::Withdraw) {
                return Ok(Some(match &key.fund_window {
                    Some(window) if !window.is_open(now) => "fund_window_lapsed",
                    _ => "key_cannot_withdraw",
                }));
            }
            let Some(window) = &key.fund_window else {
                return Ok(None);
            };
            let spent = match window.spend(amount, now) {
                Ok(spent) => spent,
                Err(SpendRefusal::Lapsed) => return Ok(Some("fund_window_lapsed")),
                Err(SpendRefusal::AmountRequired) => return Ok(Some("amount_required")),
                Err(SpendRefusal::CapReached) => return Ok(Some("fund_window_cap_reached")),
            };
            if spent == *window {
                return Ok(None);
            }
            match self.record_spend(access, &key, spent, amount, now).await {
                Ok(()) => return Ok(None),
                Err(AppError::Conflict(_)) => continue,
                Err(other) => return Err(other),
            }
        }
        Err(AppError::Conflict(format!(
            "key {key_id} kept changing while its withdrawal was checked; try again"
        )))
    }

    async fn record_spend(
        &self,
        access: &AccountAccess<'_>,
        key: &ApiKey,
        spent: portcullis_core::guard::FundWindow,
        amount: Option<UsdCents>,
        now: UnixMillis,
    ) -> AppResult<()> {
        // Spending is not a configuration change: the key keeps its `updated_at`.
        let mut after = key.clone();
        after.version = key.version + 1;
        after.fund_window = Some(spent);
        let change = Change::new(access, now).write(replace(key, &after)).audit(
            "api_key.fund_window_spent",
            key_target(key),
            json!({
                "amount_usd": amount.map(UsdCents::as_usd),
                "spent_usd": spent.spent.as_usd(),
                "cap_usd": spent.cap.map(UsdCents::as_usd),
            }),
        );
        self.keys.commit_and_install(change, &key.key_id, now).await
    }

    /// Tidies every key whose fund window has lapsed: its boxed scopes removed, the engine
    /// told, the owner told. Returns how many keys it tidied.
    pub async fn lapse_fund_windows(&self) -> AppResult<usize> {
        let now = self.clock.now();
        let lapsed: Vec<String> = (self.keys.verifier().snapshot().into_iter())
            .filter(|cached| {
                (cached.key().fund_window.as_ref()).is_some_and(|window| !window.is_open(now))
            })
            .map(|cached| cached.key().key_id.clone())
            .collect();
        let mut tidied = 0;
        for key_id in lapsed {
            match self.lapse_one(&key_id, now).await {
                Ok(true) => tidied += 1,
                Ok(false) => {}
                // Changed meanwhile: the next pass looks again.
                Err(AppError::Conflict(_)) => {}
                Err(other) => return Err(other),
            }
        }
        Ok(tidied)
    }

    async fn lapse_one(&self, key_id: &str, now: UnixMillis) -> AppResult<bool> {
        let key = self.keys.existing_key(key_id).await?;
        let Some(window) = key.fund_window.filter(|w| !w.is_open(now)) else {
            return Ok(false);
        };
        let actor = Actor::system();
        let access = actor.access_account(Permission::ManageKeys, &key.account)?;
        let mut after = successor(&key, now);
        after.scopes = key.scopes.without(window.scopes);
        after.fund_window = None;
        let mut notice = account_notice(
            NoticeKind::FundWindowLapsed,
            &key.account,
            &format!("key:{key_id}:{}", window.until.as_millis()),
            &format!(
                "Key \"{}\" can no longer {}: the time you chose ended at {}. Nothing else \
                 changed. If you need it again, ask for it in the security center; nobody from \
                 the exchange will ever call you to do it for you.",
                key.label,
                window.scopes.names().join(" or "),
                window.until.to_rfc3339()
            ),
            now,
        );
        notice.details = vec![
            ("Key".into(), format!("{} ({key_id})", key.label)),
            ("Ended".into(), window.scopes.names().join(", ")),
        ];
        let event = EventBody::ApiKeyUpdated {
            key_id: key_id.to_owned(),
            scopes: after.scopes,
            ip_allowlist: after.ip_allowlist.clone(),
            step_up: StepUp::None,
            effective: Effective::Now,
        };
        let change = Change::new(&access, now)
            .write(replace(&key, &after))
            .audit(
                "api_key.fund_window_lapsed",
                key_target(&after),
                json!({ "before": key_details(&key), "after": key_details(&after) }),
            )
            .key_event(&access, event, EventContext::default())?;
        let change = self.announced(change, &notice, now).await?;
        self.keys.commit_and_install(change, key_id, now).await?;
        Ok(true)
    }
}
