//! The NATS JetStream edge of the risk engine: a durable pull consumer on the event stream.
//! A message is acknowledged only after its event is stored in the log and applied, so
//! JetStream's at-least-once delivery becomes exactly-once in effect (event ids make a
//! redelivered event a no-op). A malformed message is terminated (never redelivered) and
//! logged; a storage failure leaves it unacknowledged, so it comes back.

use async_nats::jetstream::{self, AckKind, consumer::AckPolicy, consumer::pull};
use futures::StreamExt as _;
use portcullis_app::{Actor, Portcullis};
use portcullis_core::redact::{redact_url_credentials, redact_urls_in};
use tokio::sync::watch;

/// Where the event stream is, and where key changes are pushed (`crate::key_push`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NatsSettings {
    pub url: String,
    pub stream: String,
    pub subject: String,
    pub consumer: String,
    /// The core NATS subject key changes and token revocations are pushed on; `None`: not
    /// pushed on NATS (PostgreSQL's notifications, where there are, and the poll).
    pub key_subject: Option<String>,
}

/// Consumes until `stop` turns true; reconnects after failures.
pub async fn consume(app: Portcullis, settings: NatsSettings, mut stop: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            _ = stop.changed() => return,
            result = run(&app, &settings) => {
                if let Err(error) = result {
                    let url = redact_url_credentials(&settings.url);
                    let error = redact_urls_in(&error);
                    tracing::warn!(%error, %url, "NATS consumer stopped; retrying in 1 s");
                }
            }
        }
        tokio::select! {
            _ = stop.changed() => return,
            () = tokio::time::sleep(std::time::Duration::from_secs(1)) => {}
        }
    }
}

async fn run(app: &Portcullis, settings: &NatsSettings) -> Result<(), String> {
    let client = async_nats::connect(&settings.url)
        .await
        .map_err(|e| e.to_string())?;
    let context = jetstream::new(client);
    let stream = context
        .get_or_create_stream(jetstream::stream::Config {
            name: settings.stream.clone(),
            subjects: vec![settings.subject.clone()],
            ..Default::default()
        })
        .await
        .map_err(|e| e.to_string())?;
    let consumer = stream
        .get_or_create_consumer::<pull::Config>(
            &settings.consumer,
            pull::Config {
                durable_name: Some(settings.consumer.clone()),
                ack_policy: AckPolicy::Explicit,
                ..Default::default()
            },
        )
        .await
        .map_err(|e| e.to_string())?;
    let mut messages = consumer.messages().await.map_err(|e| e.to_string())?;
    tracing::info!(stream = %settings.stream, consumer = %settings.consumer, "consuming events from NATS JetStream");
    let actor = Actor::system();
    while let Some(message) = messages.next().await {
        let message = message.map_err(|e| e.to_string())?;
        let Ok(text) = std::str::from_utf8(&message.payload) else {
            tracing::warn!("a NATS message is not UTF-8; terminated");
            message
                .ack_with(AckKind::Term)
                .await
                .map_err(|e| e.to_string())?;
            continue;
        };
        match app.risk.ingest(&actor, text).await {
            Ok(report) if report.rejected.is_empty() => {
                message.ack().await.map_err(|e| e.to_string())?
            }
            Ok(report) => {
                let reason = report
                    .rejected
                    .first()
                    .map(|e| e.reason.clone())
                    .unwrap_or_default();
                tracing::warn!(%reason, "a NATS message is not a valid event; terminated");
                message
                    .ack_with(AckKind::Term)
                    .await
                    .map_err(|e| e.to_string())?;
            }
            Err(error) => {
                tracing::warn!(%error, "storing a NATS event failed; it will be redelivered");
                message
                    .ack_with(AckKind::Nak(None))
                    .await
                    .map_err(|e| e.to_string())?;
            }
        }
    }
    Err("the message stream ended".into())
}
