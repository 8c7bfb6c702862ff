//! A server with the official channels configured (e-mail and a webhook, with nothing
//! listening, so every message stays queued), and the messages queued for an account.

use super::{Backend, TestServer};
use portcullis_app::ports::{OutboxFilter, OutboxMessage};

/// A server whose notices go to e-mail and a webhook (both unreachable: they stay queued).
pub async fn start_with_channels(backend: Backend) -> TestServer {
    start_with_channels_and(backend, |_| {}).await
}

/// As [`start_with_channels`], with more configuration.
#[allow(dead_code)]
pub async fn start_with_channels_and(
    backend: Backend,
    configure: impl FnOnce(&mut portcullis_server::config::Config),
) -> TestServer {
    TestServer::start_with(backend, |config| {
        configure(config);
        config.exchange_name = "Exemplar".into();
        config.smtp_url = portcullis_server::notify::Sensitive::new("smtp://127.0.0.1:9");
        config.smtp_from = "security@exemplar.example".into();
        config.webhook_url = "http://127.0.0.1:9/hook".into();
        config.webhook_secret =
            portcullis_server::notify::Sensitive::new("whsec_channels_0123456789");
    })
    .await
}

/// Every message queued for `account`, oldest first.
pub async fn outbox(server: &TestServer, account: &str) -> Vec<OutboxMessage> {
    let filter = OutboxFilter {
        account: Some(account.to_owned()),
        status: None,
    };
    let mut messages: Vec<OutboxMessage> = server
        .app
        .store
        .list_outbox(&filter, 500)
        .await
        .unwrap()
        .into_iter()
        .map(|entry| entry.message)
        .collect();
    messages.sort_by_key(|m| m.created_at);
    messages
}
