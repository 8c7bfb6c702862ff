//! Withdrawal alerts: every withdrawal the exchange reports, and every hold or block of one, is
//! announced on the official channels with the anti-phishing code, the amount, the address, the
//! key and the IP, and a single-use freeze link. Freezing is a narrowing, so one click is
//! enough: a customer who sees a withdrawal they did not make stops the rest at once.
//!
//! The alerts follow the event log in its order, after the risk engine has stored each
//! withdrawal's decision (the alert says whether it was let through, held or refused). Their
//! position in the log is saved in the same commit as the alerts it covers, so each withdrawal
//! is announced exactly once, across restarts. A first pass starts at the end of the log: the
//! history before this feature was switched on is not announced.

use super::Guard;
use super::notices::account_notice;
use crate::error::AppResult;
use crate::notify::announce;
use crate::ports::{ChangeSet, EngineCheckpoint, StoredEvent, Write};
use portcullis_core::contract::{ContractEvent, EventBody, parse_line};
use portcullis_core::notice::{Notice, NoticeKind};
use portcullis_core::time::UnixMillis;

/// The name of the alerts' position in the log (kept beside the engine's checkpoints).
pub const ALERTS_POSITION: &str = "withdrawal_alerts";
/// Log entries read per step.
const PAGE: u32 = 500;
const WITHDRAWAL: &str = "withdrawal.requested";

/// How a pass ended.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AlertsPass {
    /// Withdrawals announced.
    pub announced: usize,
    /// Whether it stopped at a withdrawal the engine has not decided yet (the next pass
    /// resumes there).
    pub waiting_for_decision: bool,
}

impl Guard {
    /// Announces the withdrawals logged since the last pass, in log order, each once its
    /// decision is stored.
    pub async fn announce_withdrawals(&self) -> AppResult<AlertsPass> {
        let mut position = match self.store.checkpoint(ALERTS_POSITION).await? {
            Some(saved) => saved.seq,
            None => return self.start_alerts_at_log_end().await,
        };
        let mut pass = AlertsPass::default();
        loop {
            let page = self.store.events_after(position, PAGE).await?;
            let Some(last) = page.last().map(|e| e.seq) else {
                return Ok(pass);
            };
            let (writes, reached, announced) = self.alerts_for(&page).await?;
            pass.announced += announced;
            if reached > position {
                self.save_alerts(writes, reached).await?;
                position = reached;
            }
            if reached < last {
                pass.waiting_for_decision = true;
                return Ok(pass);
            }
            if page.len() < PAGE as usize {
                return Ok(pass);
            }
        }
    }

    /// The alerts for the withdrawals of `page`, up to the first one without a stored decision;
    /// with the log position they cover and how many there are.
    async fn alerts_for(&self, page: &[StoredEvent]) -> AppResult<(Vec<Write>, i64, usize)> {
        let now = self.clock.now();
        let mut writes = Vec::new();
        let mut reached = page.first().map_or(0, |e| e.seq - 1);
        let mut announced = 0;
        for stored in page {
            if stored.event.event_type == WITHDRAWAL
                && let Ok(event) = parse_line(&stored.event.body)
                && let Some(account_id) = event.account.as_deref()
            {
                let Some(decision) = self.store.decision(&event.id).await? else {
                    break;
                };
                // Accounts the exchange has not registered with Portcullis have no channel.
                if let Some(account) = self.store.account(account_id).await? {
                    let mut notice = withdrawal_notice(&event, alert_kind(&decision.decision), now);
                    let (link, url) = self.new_freeze_link(account_id, now)?;
                    notice.freeze_url = Some(url);
                    writes.push(link);
                    writes.extend(announce(&account, &notice, &self.channels, now));
                    announced += 1;
                }
            }
            reached = stored.seq;
        }
        Ok((writes, reached, announced))
    }

    async fn save_alerts(&self, mut writes: Vec<Write>, reached: i64) -> AppResult<()> {
        writes.push(Write::SaveCheckpoint(EngineCheckpoint {
            name: ALERTS_POSITION.to_owned(),
            seq: reached,
            state: Vec::new(),
        }));
        self.store
            .commit(ChangeSet {
                writes,
                ..ChangeSet::default()
            })
            .await?;
        Ok(())
    }

    /// The first pass: remembers the end of the log without announcing what came before.
    async fn start_alerts_at_log_end(&self) -> AppResult<AlertsPass> {
        // The engine's checkpoint is a known position near the end; read on from there.
        let mut position = self
            .store
            .checkpoint(crate::risk::CHECKPOINT_NAME)
            .await?
            .map_or(0, |c| c.seq);
        loop {
            let page = self.store.events_after(position, 10_000).await?;
            match page.last() {
                Some(last) => position = last.seq,
                None => break,
            }
        }
        self.save_alerts(Vec::new(), position).await?;
        Ok(AlertsPass::default())
    }
}

/// What a withdrawal alert says of a decision.
fn alert_kind(decision: &str) -> NoticeKind {
    match decision {
        "hold" => NoticeKind::WithdrawalHeld,
        "block" => NoticeKind::WithdrawalBlocked,
        _ => NoticeKind::WithdrawalRequested,
    }
}

/// A notice of `kind` about one withdrawal, with its amount, address, key and IP.
pub(crate) fn withdrawal_notice(
    event: &ContractEvent,
    kind: NoticeKind,
    now: UnixMillis,
) -> Notice {
    let account = event.account.as_deref().unwrap_or_default();
    let mut notice = account_notice(kind, account, &format!("withdrawal:{}", event.id), "", now);
    notice.occurred_at = event.ts;
    if let EventBody::WithdrawalRequested {
        withdrawal_id,
        asset,
        network,
        address,
        amount,
        amount_usd,
        key_id,
    } = &event.body
    {
        notice.summary =
            format!("{amount} {asset} (about {amount_usd:.2} USD) to {address} on {network}");
        notice.details = vec![
            ("Withdrawal".into(), withdrawal_id.clone()),
            ("Address".into(), format!("{address} ({network})")),
            (
                "Amount".into(),
                format!("{amount} {asset} (about {amount_usd:.2} USD)"),
            ),
            (
                "Requested through".into(),
                match key_id {
                    Some(key) => format!("API key {key}"),
                    None => "the exchange's app or website".into(),
                },
            ),
            (
                "From IP address".into(),
                event
                    .ctx
                    .ip
                    .clone()
                    .unwrap_or_else(|| "not reported".into()),
            ),
        ];
    }
    notice
}
