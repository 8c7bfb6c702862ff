//! Background maintenance while serving: following key changes from other processes, writing
//! key usage back, the idle-key sweep and risk engine checkpoints. Each failure is logged and
//! retried on the next tick.

use crate::config::Settings;
use portcullis_app::Portcullis;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Starts the maintenance loop; send `true` on the returned channel to stop it.
pub(crate) fn spawn(app: Portcullis, settings: &Settings) -> (watch::Sender<bool>, JoinHandle<()>) {
    let (stop, mut stopped) = watch::channel(false);
    let nats = settings
        .nats
        .clone()
        .map(|nats| tokio::spawn(crate::nats::consume(app.clone(), nats, stop.subscribe())));
    let refresh_every = settings.refresh_interval;
    let flush_every = settings.usage_flush_interval;
    let sweep_every = settings.idle_sweep_interval;
    // Off: the branch is disabled (the shutdown checkpoint still runs).
    let checkpoint_on = settings.risk_checkpoint_interval.is_some();
    let checkpoint_every = settings
        .risk_checkpoint_interval
        .unwrap_or(Duration::from_secs(60));
    let handle = tokio::spawn(async move {
        let mut refresh = interval(refresh_every);
        let mut flush = interval(flush_every);
        let mut sweep = interval(sweep_every);
        let mut checkpoint = interval(checkpoint_every);
        checkpoint.reset();
        loop {
            tokio::select! {
                _ = stopped.changed() => break,
                _ = refresh.tick() => {
                    if let Err(error) = app.keys.refresh_verifier(app.clock.as_ref()).await {
                        tracing::warn!(%error, "refreshing keys failed");
                    }
                    // The key authority's own events reach the risk engine through the log.
                    if let Err(error) = app.risk.catch_up().await {
                        tracing::warn!(%error, "risk engine catch-up failed");
                    }
                }
                _ = flush.tick() => {
                    if let Err(error) = app.keys.flush_usage().await {
                        tracing::warn!(%error, "writing key usage failed");
                    }
                }
                _ = checkpoint.tick(), if checkpoint_on => {
                    if let Err(error) = app.risk.checkpoint().await {
                        tracing::warn!(%error, "risk engine checkpoint failed");
                    }
                }
                _ = sweep.tick() => match app.keys.sweep_idle(app.clock.as_ref()).await {
                    Ok(report) if !report.warned.is_empty() || !report.expired.is_empty() => {
                        tracing::info!(warned = report.warned.len(), expired = report.expired.len(), "idle key sweep");
                    }
                    Ok(_) => {}
                    Err(error) => tracing::warn!(%error, "idle key sweep failed"),
                },
            }
        }
        if let Some(nats) = nats {
            let _ = nats.await;
        }
    });
    (stop, handle)
}

fn interval(period: Duration) -> tokio::time::Interval {
    let mut interval = tokio::time::interval(period);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    interval
}
