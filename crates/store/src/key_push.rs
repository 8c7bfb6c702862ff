//! Key changes pushed to every process on PostgreSQL: a commit that writes a key or a secret,
//! or revokes an operator token, notifies a channel inside its transaction (delivered when, and only if, it commits), and
//! each process listens on its own connection and refreshes its verifier at once, instead of
//! at its next poll. A revocation on one node is then in force on the others within a round
//! trip, not up to a poll interval later.
//!
//! The poll stays as the backstop: a notification lost with a dropped connection is answered
//! by a signal after the reconnection (everything may have changed meanwhile), and the regular
//! refresh catches anything else.

use crate::commit::Tx;
use crate::db_error;
use portcullis_app::ports::{StoreResult, Write};
use portcullis_core::redact::redact_url_credentials as redact;
use sqlx::postgres::PgListener;
use std::time::Duration;
use tokio::sync::mpsc;

/// The channel key changes are announced on.
pub(crate) const CHANNEL: &str = "portcullis_key_changes";

/// The database URL the listener connects with; never printed with its password.
#[derive(Clone)]
pub(crate) struct ListenUrl(pub(crate) String);

impl std::fmt::Debug for ListenUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&redact(&self.0))
    }
}

/// Whether a commit of `writes` changes what a process holds in memory: its verifier, or the
/// operator tokens it cached.
pub(crate) fn touches_keys(writes: &[Write]) -> bool {
    writes.iter().any(|write| {
        matches!(
            write,
            Write::InsertKey(_)
                | Write::UpdateKey { .. }
                | Write::InsertSecret(_)
                | Write::SetSecretValidUntil { .. }
                | Write::ResealSecret { .. }
                | Write::RevokeOperator { .. }
        )
    })
}

/// Queues the notification in the transaction: PostgreSQL sends it on commit, never before
/// and never for a rollback.
pub(crate) async fn notify(tx: &mut Tx<'_>) -> StoreResult<()> {
    sqlx::query("SELECT pg_notify($1, '')")
        .bind(CHANNEL)
        .execute(&mut **tx)
        .await
        .map_err(|e| db_error("notify", e))?;
    Ok(())
}

/// Listens on `url` and signals on the returned channel for every notification, and after every
/// reconnection. Signals coalesce: one waiting is enough to refresh. Stops when the receiver is
/// dropped.
pub(crate) async fn listen(url: &ListenUrl) -> StoreResult<mpsc::Receiver<()>> {
    let mut listener = PgListener::connect(&url.0)
        .await
        .map_err(|e| db_error("listen", e))?;
    listener
        .listen(CHANNEL)
        .await
        .map_err(|e| db_error("listen", e))?;
    let (signal, signals) = mpsc::channel(1);
    let url = url.clone();
    tokio::spawn(async move {
        loop {
            // A notification, or `Ok(None)`: the connection was lost and is back, and what was
            // sent meanwhile is lost; an error is retried after a pause. Each time the
            // verifier should look.
            if let Err(error) = listener.try_recv().await {
                tracing::warn!(%error, url = ?url, "listening for key changes failed; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            if signal.is_closed() {
                return;
            }
            // Full means a signal is already waiting, which covers this one too.
            let _ = signal.try_send(());
        }
    });
    Ok(signals)
}
