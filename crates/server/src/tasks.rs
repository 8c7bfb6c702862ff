//! Background maintenance while serving: following key changes from other processes, writing
//! key usage back, applying pending changes whose cool-down ended, the idle-key sweep, risk
//! engine checkpoints, counting contact reports, delivering queued notifications, forgetting
//! idle rate-limit buckets and the metrics recorder's upkeep. Each failure is logged and retried
//! on the next tick.

use crate::config::Settings;
use crate::limits::RateLimits;
use crate::state::AppState;
use metrics_exporter_prometheus::PrometheusHandle;
use portcullis_app::Portcullis;
use portcullis_app::notify::Delivery;
use portcullis_app::ports::Pushed;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// How often the metrics recorder drains what requests recorded into its histograms. Without
/// it, every observation since the last scrape stays buffered (about 20 bytes a request).
const METRICS_UPKEEP_EVERY: Duration = Duration::from_secs(5);
/// How often rate-limit buckets that are full again are forgotten.
const LIMITS_RETAIN_EVERY: Duration = Duration::from_secs(60);

/// What the server's edge keeps in memory and the maintenance loop tidies.
#[derive(Debug)]
pub(crate) struct Upkeep {
    pub limits: Arc<RateLimits>,
    pub metrics: Option<PrometheusHandle>,
    /// The handlers' state, whose token cache a pushed revocation empties.
    pub state: AppState,
}

/// Starts the maintenance loop; send `true` on the returned channel to stop it.
pub(crate) fn spawn(
    app: Portcullis,
    settings: &Settings,
    upkeep: Upkeep,
) -> (watch::Sender<bool>, JoinHandle<()>) {
    let (stop, mut stopped) = watch::channel(false);
    let nats = match (settings.nats.clone(), settings.partitions) {
        (Some(nats), None) => Some(tokio::spawn(crate::nats::consume(
            app.clone(),
            nats,
            stop.subscribe(),
        ))),
        (Some(nats), Some(partitions)) => Some(tokio::spawn(crate::nats_partitions::serve(
            app.clone(),
            nats,
            partitions,
            crate::risk_policy_text(settings.risk_policy_file.as_deref()).unwrap_or_default(),
            stop.subscribe(),
        ))),
        (None, _) => None,
    };
    let delivery = spawn_delivery(&app, settings, stop.subscribe());
    let key_push = spawn_key_push(&app, upkeep.state.clone(), stop.subscribe());
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
        // Not at start: verification already refuses an idle-expired key whenever it is asked
        // (the sweep only records and announces), and a sweep at start would run beside
        // whatever the starting process does first.
        let mut sweep = interval_from(tokio::time::Instant::now() + sweep_every, sweep_every);
        let mut checkpoint = interval(checkpoint_every);
        checkpoint.reset();
        let mut metrics_upkeep = interval(METRICS_UPKEEP_EVERY);
        let mut limits_retain = interval(LIMITS_RETAIN_EVERY);
        loop {
            tokio::select! {
                _ = stopped.changed() => break,
                _ = metrics_upkeep.tick() => {
                    if let Some(handle) = &upkeep.metrics {
                        handle.run_upkeep();
                    }
                }
                _ = limits_retain.tick() => upkeep.limits.retain_recent(),
                _ = refresh.tick() => {
                    if let Err(error) = app.keys.refresh_verifier(app.clock.as_ref()).await {
                        tracing::warn!(%error, "refreshing keys failed");
                    }
                    // A policy version another process published (several processes on one
                    // database all end up with the newest publication).
                    if let Err(error) = app.risk.refresh_policy().await {
                        tracing::warn!(%error, "refreshing the risk policy failed");
                    }
                    // The key authority's own events reach the risk engine through the log.
                    if let Err(error) = app.risk.catch_up().await {
                        tracing::warn!(%error, "risk engine catch-up failed");
                    }
                    // Reports and confirmed frauds logged since the last pass, and the
                    // registry compiled again if another process changed it.
                    if let Err(error) = app.contacts.project().await {
                        tracing::warn!(%error, "counting contact reports failed");
                    }
                    if let Err(error) = app.contacts.refresh().await {
                        tracing::warn!(%error, "refreshing the contact registry failed");
                    }
                    match app.guard.apply_due().await {
                        Ok(0) => {}
                        Ok(applied) => tracing::info!(applied, "pending changes applied at the end of their cool-down"),
                        Err(error) => tracing::warn!(%error, "applying pending changes failed"),
                    }
                    match app.guard.lapse_fund_windows().await {
                        Ok(0) => {}
                        Ok(lapsed) => tracing::info!(lapsed, "fund windows lapsed"),
                        Err(error) => tracing::warn!(%error, "lapsing fund windows failed"),
                    }
                    match app.guard.send_due_digests().await {
                        Ok(0) => {}
                        Ok(sent) => tracing::info!(sent, "daily digests queued"),
                        Err(error) => tracing::warn!(%error, "sending daily digests failed"),
                    }
                    match app.guard.announce_withdrawals().await {
                        Ok(pass) if pass.announced > 0 => tracing::debug!(announced = pass.announced, "withdrawal alerts queued"),
                        Ok(_) => {}
                        Err(error) => tracing::warn!(%error, "queueing withdrawal alerts failed"),
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
        let _ = key_push.await;
        if let Some(delivery) = delivery {
            let _ = delivery.await;
        }
    });
    (stop, handle)
}

/// The notification delivery loop, when a channel is configured: every `notify_interval_ms`,
/// deliver what is due. A round in progress is finished before stopping (a send is never cut
/// off half-way; what is not sent stays due in the outbox).
fn spawn_delivery(
    app: &Portcullis,
    settings: &Settings,
    mut stopped: watch::Receiver<bool>,
) -> Option<JoinHandle<()>> {
    let notify = &settings.notify;
    if !notify.enabled() {
        return None;
    }
    let senders = match notify.senders(app.clock.clone()) {
        Ok(senders) => senders,
        Err(error) => {
            tracing::error!(%error, "notification channels cannot be set up; nothing will be sent");
            return None;
        }
    };
    let delivery = Delivery::new(
        app.store.clone(),
        Arc::new(senders),
        app.clock.clone(),
        notify.retry,
    );
    let every = notify.interval;
    Some(tokio::spawn(async move {
        let mut tick = interval(every);
        let delivered =
            metrics::counter!("portcullis_notifications_total", "outcome" => "delivered");
        let failed = metrics::counter!("portcullis_notifications_total", "outcome" => "failed");
        let dead = metrics::counter!("portcullis_notifications_total", "outcome" => "dead");
        loop {
            tokio::select! {
                _ = stopped.changed() => break,
                _ = tick.tick() => {}
            }
            match delivery.deliver_all_due().await {
                Ok(report) => {
                    delivered.increment(report.delivered);
                    failed.increment(report.failed);
                    dead.increment(report.dead);
                    if report.dead > 0 {
                        tracing::error!(
                            dead = report.dead,
                            "notifications given up on (see the outbox)"
                        );
                    }
                }
                Err(error) => tracing::warn!(%error, "notification delivery failed"),
            }
        }
    }))
}

/// Refreshes the verifier (and forgets cached operator tokens) the moment another process
/// commits a key change or revokes a token, where it can be told: on NATS when the change bus
/// is configured, else through the store (PostgreSQL's notifications). The refresh tick stays
/// as the backstop.
fn spawn_key_push(
    app: &Portcullis,
    state: AppState,
    mut stopped: watch::Receiver<bool>,
) -> JoinHandle<()> {
    let app = app.clone();
    tokio::spawn(async move {
        let Some(mut signals) = key_change_signals(&app).await else {
            return;
        };
        // A change committed after this process loaded its keys but before the subscription
        // took hold was announced to no one here: look once, as after a reconnection.
        look_again(&app, &state, Pushed::Everything).await;
        loop {
            tokio::select! {
                _ = stopped.changed() => return,
                signal = signals.recv() => {
                    let Some(what) = signal else { return };
                    look_again(&app, &state, what).await;
                }
            }
        }
    })
}

/// What a pushed change asks of this process: forget cached operator tokens, refresh the
/// verifier, or both.
async fn look_again(app: &Portcullis, state: &AppState, what: Pushed) {
    if what != Pushed::Keys {
        state.forget_tokens();
    }
    if what != Pushed::Operators
        && let Err(error) = app.keys.refresh_verifier(app.clock.as_ref()).await
    {
        tracing::warn!(%error, ?what, "refreshing keys after a pushed change failed");
    }
}

/// Where pushed changes come from: the change bus, else (or when it cannot subscribe) the
/// store; `None` when neither can push.
async fn key_change_signals(app: &Portcullis) -> Option<tokio::sync::mpsc::Receiver<Pushed>> {
    if let Some(bus) = app.push.bus()
        && let Some(signals) = bus.watch().await
    {
        return Some(signals);
    }
    let mut store_signals = match app.store.watch_key_changes().await {
        Ok(signals) => signals?,
        Err(error) => {
            tracing::warn!(%error, "key changes are not pushed; other processes' changes arrive with the refresh");
            return None;
        }
    };
    // The store says only that something changed: look at everything.
    let (signal, signals) = tokio::sync::mpsc::channel(1);
    tokio::spawn(async move {
        while store_signals.recv().await.is_some() {
            if signal.send(Pushed::Everything).await.is_err() {
                return;
            }
        }
    });
    Some(signals)
}

fn interval(period: Duration) -> tokio::time::Interval {
    interval_from(tokio::time::Instant::now(), period)
}

/// Ticks at `first` and every `period` after it; a late tick delays the next ones rather than
/// bursting to catch up.
fn interval_from(first: tokio::time::Instant, period: Duration) -> tokio::time::Interval {
    let mut interval = tokio::time::interval_at(first, period);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    interval
}
