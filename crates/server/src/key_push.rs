//! Key changes and operator-token revocations pushed on core NATS: the adapter of the app's
//! [`ChangeBus`] port when `nats_url` is set. After a commit that changes a key or revokes a
//! token, the use case announces it; this adapter publishes one small message (`keys` or
//! `operators`) on `nats_key_subject`, and every `serve` process subscribed there refreshes
//! its verifier or forgets its cached tokens at once, instead of at its next poll.
//!
//! Best effort, never in the caller's way: `publish` only queues the message for a task of its
//! own (the change is committed; the poll catches up with anything lost). A message that cannot
//! be queued, sent or confirmed by the server within [`CONFIRM_WITHIN`] is logged and counted
//! (`portcullis_key_push_total{outcome="failed"}`). The client reconnects by itself; after each
//! (re)connection the listener is told `Everything`, since anything may have changed while it
//! was away. The connection is opened with `no_echo`, so a process never hears itself.

use async_nats::{Client, ConnectOptions, Event};
use async_trait::async_trait;
use futures::StreamExt as _;
use parking_lot::Mutex;
use portcullis_app::ports::{ChangeBus, Pushed};
use portcullis_core::redact::{redact_url_credentials, redact_urls_in};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// How long the server has to confirm a published message before it counts as failed.
const CONFIRM_WITHIN: Duration = Duration::from_secs(2);
/// Announcements waiting to be published; beyond this a burst is counted as failed.
const QUEUE: usize = 1024;
/// Signals waiting for the listener (a refresh takes one query; they rarely pile up).
const SIGNALS: usize = 1024;

/// What the publishing task is given.
#[derive(Debug)]
enum Queued {
    Announce(Pushed),
    /// Answered once everything queued before it was handled.
    Settled(oneshot::Sender<()>),
}

/// The NATS change bus of one process.
#[derive(Debug)]
pub struct NatsChangeBus {
    client: Client,
    subject: String,
    queue: mpsc::Sender<Queued>,
    /// The listener's end, until the server takes it ([`ChangeBus::watch`]).
    signals: Mutex<Option<mpsc::Receiver<Pushed>>>,
    /// Where subscribed messages and (re)connections are signalled.
    signal: mpsc::Sender<Pushed>,
}

impl NatsChangeBus {
    /// Connects to `url` (in the background: a NATS that is not up yet is retried, and the
    /// service starts anyway) and starts the publishing task.
    pub async fn connect(url: &str, subject: &str) -> Result<Self, String> {
        let (signal, signals) = mpsc::channel(SIGNALS);
        let on_event = signal.clone();
        let shown = redact_url_credentials(url);
        let client = ConnectOptions::new()
            .no_echo()
            .retry_on_initial_connect()
            .event_callback(move |event| {
                let on_event = on_event.clone();
                let shown = shown.clone();
                async move {
                    match event {
                        // Messages sent while away are lost: look at everything.
                        Event::Connected => {
                            tracing::info!(url = %shown, "key-change push connected to NATS");
                            let _ = on_event.send(Pushed::Everything).await;
                        }
                        Event::Disconnected => {
                            tracing::warn!(url = %shown, "key-change push lost NATS; reconnecting (the poll covers meanwhile)");
                        }
                        other => tracing::debug!(event = %other, "key-change push"),
                    }
                }
            })
            .connect(url)
            .await
            .map_err(|e| redact_urls_in(&e.to_string()))?;
        let (queue, queued) = mpsc::channel(QUEUE);
        tokio::spawn(publish_queued(client.clone(), subject.to_owned(), queued));
        Ok(Self {
            client,
            subject: subject.to_owned(),
            queue,
            signals: Mutex::new(Some(signals)),
            signal,
        })
    }
}

#[async_trait]
impl ChangeBus for NatsChangeBus {
    fn publish(&self, what: Pushed) {
        if self.queue.try_send(Queued::Announce(what)).is_err() {
            failed(what, "the publishing queue is full");
        }
    }

    async fn settle(&self) {
        let (settled, done) = oneshot::channel();
        let waited = tokio::time::timeout(CONFIRM_WITHIN * 2, async {
            if self.queue.send(Queued::Settled(settled)).await.is_ok() {
                let _ = done.await;
            }
        });
        if waited.await.is_err() {
            tracing::warn!(
                "key changes still queued for NATS; other processes apply them at their next poll"
            );
        }
    }

    async fn watch(&self) -> Option<mpsc::Receiver<Pushed>> {
        let signals = self.signals.lock().take()?;
        let mut subscription = match self.client.subscribe(self.subject.clone()).await {
            Ok(subscription) => subscription,
            Err(error) => {
                tracing::warn!(%error, subject = %self.subject, "cannot subscribe to key changes; other processes' changes arrive with the refresh");
                return None;
            }
        };
        let signal = self.signal.clone();
        tokio::spawn(async move {
            // The client resubscribes after a reconnection by itself; this ends only when the
            // client is closed or the listener is gone.
            while let Some(message) = subscription.next().await {
                let what = Pushed::parse(std::str::from_utf8(&message.payload).unwrap_or(""));
                metrics::counter!("portcullis_key_push_received_total", "what" => what.as_str())
                    .increment(1);
                if signal.send(what).await.is_err() {
                    return;
                }
            }
        });
        Some(signals)
    }
}

/// Publishes each queued announcement and waits for the server to confirm it, so a failure
/// is seen (and counted) here rather than lost in the client's buffer.
async fn publish_queued(client: Client, subject: String, mut queued: mpsc::Receiver<Queued>) {
    let published = metrics::counter!("portcullis_key_push_total", "outcome" => "published");
    while let Some(next) = queued.recv().await {
        let what = match next {
            Queued::Announce(what) => what,
            Queued::Settled(settled) => {
                let _ = settled.send(());
                continue;
            }
        };
        let payload = what.as_str().as_bytes().to_vec().into();
        if let Err(error) = client.publish(subject.clone(), payload).await {
            failed(what, &error.to_string());
            continue;
        }
        match tokio::time::timeout(CONFIRM_WITHIN, client.flush()).await {
            Ok(Ok(())) => published.increment(1),
            Ok(Err(error)) => failed(what, &error.to_string()),
            Err(_) => failed(what, "NATS did not confirm it in time"),
        }
    }
}

fn failed(what: Pushed, reason: &str) {
    metrics::counter!("portcullis_key_push_total", "outcome" => "failed").increment(1);
    tracing::warn!(
        what = what.as_str(),
        reason = %redact_urls_in(reason),
        "publishing a key change on NATS failed; other processes apply it at their next poll"
    );
}
