//! Backtests of a draft over the stored event history: the events of a time range (at most a
//! cap, or `backtest_too_large`) replayed through two fresh engines, the policy in force and the
//! draft (`portcullis_engine::Backtest`). The confirmations that say which withdrawals were scam
//! are read from the whole log first. The replay runs on the blocking pool, a page at a time
//! while the next page is read;
//! when the request is dropped (the client went away, the request timeout) the page in progress
//! stops at its next event and no other page starts.

use super::{Policies, invalid_policy, parse};
use crate::ErrorCode;
use crate::access::Actor;
use crate::error::{AppError, AppResult};
use crate::ports::StoredEvent;
use portcullis_core::contract::parse_line;
use portcullis_core::operator::Permission;
use portcullis_core::time::UnixMillis;
use portcullis_engine::{Backtest, BacktestReport, Confirmed, Policy};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// The most events one backtest may replay.
pub const MAX_BACKTEST_EVENTS: u64 = 1_000_000;
/// The cap when the request names none.
pub const DEFAULT_BACKTEST_EVENTS: u64 = 200_000;
/// Events read and replayed per step.
const PAGE: u32 = 5_000;
/// `fraud.confirmed` entries read per step.
const CONFIRMATION_PAGE: u32 = 1_000;

/// Which events a backtest replays: `from <= ts < to`, at most `max_events` of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BacktestRange {
    pub from: UnixMillis,
    pub to: UnixMillis,
    pub max_events: Option<u64>,
}

/// A finished backtest.
#[derive(Debug, Clone, PartialEq)]
pub struct BacktestOutcome {
    pub report: BacktestReport,
    /// The version in force it compared with (`None`: the configured policy).
    pub in_force_version: Option<i64>,
}

/// Sets the flag when the backtest's future is dropped, which stops the page in progress.
struct CancelOnDrop(Arc<AtomicBool>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

impl Policies {
    /// Replays the range under the policy in force and under `candidate`, side by side.
    pub async fn backtest(
        &self,
        actor: &Actor,
        candidate: &str,
        range: BacktestRange,
    ) -> AppResult<BacktestOutcome> {
        actor.require_operator(Permission::ReadEvents)?;
        let cap = check_range(range)?;
        let candidate = parse(candidate).map_err(invalid_policy)?;
        let _permit = self.backtests.clone().try_acquire_owned().map_err(|_| {
            AppError::invalid(
                ErrorCode::BacktestBusy,
                "another backtest is running: try again when it ends",
            )
        })?;
        let span = self.store.event_span(range.from, range.to).await?;
        if span.count.unsigned_abs() > cap {
            return Err(AppError::invalid(
                ErrorCode::BacktestTooLarge,
                format!(
                    "the range holds {} events and the cap is {cap}: narrow the range",
                    span.count
                ),
            ));
        }
        let in_force = self.risk.in_force().await;
        let current = Policy::parse(&in_force.text)
            .map_err(|e| AppError::Internal(format!("the policy in force does not load: {e}")))?;
        let overrides = crate::guard::engine_overrides(&self.store.overrides().await?);
        let confirmed = self.confirmations().await?;
        let cancelled = Arc::new(AtomicBool::new(false));
        let _cancel_on_drop = CancelOnDrop(cancelled.clone());
        let mut backtest = Backtest::new(current, candidate, overrides, confirmed);
        let read = |after: i64| {
            (self.store).events_between(range.from, range.to, after, span.last_seq, PAGE)
        };
        let mut page = read(span.first_seq - 1).await?;
        // Each page is replayed while the next one is read.
        while let Some(last) = page.last() {
            let after = last.seq;
            let flag = cancelled.clone();
            let replaying = tokio::task::spawn_blocking(move || replay(backtest, &page, &flag));
            let (replayed, next) = tokio::join!(replaying, read(after));
            backtest = replayed.map_err(|e| AppError::Internal(format!("backtest: {e}")))??;
            page = next?;
        }
        Ok(BacktestOutcome {
            report: backtest.finish(),
            in_force_version: in_force.version,
        })
    }

    /// The policy in force over the range, counted per rule (the `before` side of a backtest
    /// against itself).
    pub async fn rule_stats(
        &self,
        actor: &Actor,
        range: BacktestRange,
    ) -> AppResult<BacktestOutcome> {
        let text = self.risk.in_force().await.text;
        self.backtest(actor, &text, range).await
    }

    /// Every fraud confirmation in the log, whenever it was made.
    async fn confirmations(&self) -> AppResult<Confirmed> {
        let mut confirmed = Confirmed::default();
        let mut after = 0;
        loop {
            let (page, reached) = (self.store)
                .report_events_after(after, CONFIRMATION_PAGE)
                .await?;
            for stored in page
                .iter()
                .filter(|e| e.event.event_type == "fraud.confirmed")
            {
                if let Ok(event) = parse_line(&stored.event.body) {
                    confirmed.observe(&event);
                }
            }
            if page.len() < CONFIRMATION_PAGE as usize || reached <= after {
                return Ok(confirmed);
            }
            after = reached;
        }
    }
}

/// The cap a range is held to, or why the range is refused.
fn check_range(range: BacktestRange) -> AppResult<u64> {
    let invalid = |message: String| AppError::invalid(ErrorCode::InvalidQuery, message);
    if range.from >= range.to {
        return Err(invalid("`from` must be before `to`".into()));
    }
    let cap = range.max_events.unwrap_or(DEFAULT_BACKTEST_EVENTS);
    if cap == 0 || cap > MAX_BACKTEST_EVENTS {
        return Err(invalid(format!(
            "`max_events` must be 1 to {MAX_BACKTEST_EVENTS}"
        )));
    }
    Ok(cap)
}

/// Applies a page to both engines (on the blocking pool); stops when `cancelled` is set.
fn replay(
    mut backtest: Backtest,
    page: &[StoredEvent],
    cancelled: &AtomicBool,
) -> AppResult<Backtest> {
    for stored in page {
        if cancelled.load(Ordering::Relaxed) {
            return Err(AppError::Internal("backtest cancelled".into()));
        }
        // A line that no longer parses is skipped, as the live catch-up skips it.
        if let Ok(event) = parse_line(&stored.event.body) {
            backtest.apply(&event);
        }
    }
    Ok(backtest)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(from: i64, to: i64, max_events: Option<u64>) -> BacktestRange {
        BacktestRange {
            from: UnixMillis(from),
            to: UnixMillis(to),
            max_events,
        }
    }

    #[test]
    fn a_range_must_be_ordered_and_its_cap_bounded() {
        assert_eq!(
            check_range(range(1, 2, None)).unwrap(),
            DEFAULT_BACKTEST_EVENTS
        );
        assert_eq!(check_range(range(1, 2, Some(7))).unwrap(), 7);
        for bad in [
            range(2, 2, None),
            range(3, 2, None),
            range(1, 2, Some(0)),
            range(1, 2, Some(MAX_BACKTEST_EVENTS + 1)),
        ] {
            assert_eq!(
                check_range(bad).unwrap_err().code(),
                ErrorCode::InvalidQuery
            );
        }
    }

    #[test]
    fn a_cancelled_replay_stops_before_the_next_event() {
        let policy = || Policy::default_policy().unwrap();
        let backtest = Backtest::new(policy(), policy(), Vec::new(), Confirmed::default());
        let line = r#"{"id":"e1","ts":"2026-01-01T00:00:00Z","type":"market.activity","market":"BTCUSDT","volume_ratio":1.0,"volatility":0.5}"#;
        let page = vec![StoredEvent {
            seq: 1,
            event: crate::ports::NewEvent {
                id: "e1".into(),
                ts: UnixMillis(0),
                account: None,
                event_type: "market.activity".into(),
                body: line.into(),
            },
        }];
        let done = replay(backtest, &page, &AtomicBool::new(false)).unwrap();
        assert_eq!(done.finish().events, 1);
        let again = Backtest::new(policy(), policy(), Vec::new(), Confirmed::default());
        assert!(replay(again, &page, &AtomicBool::new(true)).is_err());
    }
}
