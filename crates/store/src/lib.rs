//! Storage adapters for the ports of `portcullis-app`: the embedded SQLite default (a file, no
//! server) and PostgreSQL, chosen by the database URL.
//!
//! Both backends share one implementation written against sqlx's `Any` driver with runtime
//! queries in the SQL both dialects accept; what differs (column types, identity columns) lives
//! in the two migration folders, which keep the same file names. The conformance suite in
//! `tests/` runs every story against both.

mod alerts;
mod at_rest;
mod codec;
mod commit;
mod console;
mod contacts;
mod digest;
mod event_rows;
mod files;
mod guard;
mod key_push;
mod leases;
mod log_copy;
mod outbox;
mod passkeys;
mod policies;
mod reads;
mod sessions;
mod sqlite_log;
pub mod testing;
mod wal;

use async_trait::async_trait;
use portcullis_app::keyring::MasterKeyring;
use portcullis_app::ports::{ChangeSet, Store, StoreError, StoreResult};
use portcullis_core::audit::AuditKeys;
use portcullis_core::redact::redact_url_credentials as redact;
use sqlx::any::{AnyPoolOptions, install_default_drivers};
use sqlx::{AnyPool, Executor as _};
use std::sync::Arc;
use std::time::Duration;

/// Which database a [`SqlStore`] talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    /// The backend a URL names, if any.
    pub fn of_url(url: &str) -> Option<Self> {
        if url.starts_with("sqlite:") {
            Some(Backend::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Some(Backend::Postgres)
        } else {
            None
        }
    }
}

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// The store, on either backend.
#[derive(Debug, Clone)]
pub struct SqlStore {
    pool: AnyPool,
    /// On an SQLite file, the one connection that writes in the writer's turn. SQLite drops a
    /// connection's page cache whenever another connection has written, so writers taking
    /// turns on four connections re-read the indexes they insert into from the operating
    /// system on almost every commit (a system call per page, and a disk read for a page the
    /// host has evicted, with every writer waiting behind it); one writer keeps its cache.
    /// On PostgreSQL, and for an in-memory database, the same pool as `pool`.
    writer_pool: AnyPool,
    backend: Backend,
    /// SQLite has one writer at a time. Writers of this process queue here, where the next one
    /// is woken the moment the previous commits, instead of in SQLite's busy handler, which
    /// polls with sleeps of up to 100 ms (under concurrent decisions that was most of their
    /// latency). On PostgreSQL the commits of the one write path (`commit::begin_in_turn`) queue
    /// here too, before they take the audit head's row lock: they commit one after another
    /// anyway, and a commit waiting here holds no pooled connection, where one waiting on the
    /// row lock would (under load, every connection of the pool, with reads starved behind them).
    writer: Arc<tokio::sync::Mutex<()>>,
    /// SQLite only: checkpoints of the write-ahead log, off the write path.
    wal: Arc<wal::WalCheckpoints>,
    /// On an SQLite file, where the event log's group commits run (see `sqlite_log`).
    sqlite_log: Option<Arc<sqlite_log::SqliteLog>>,
    /// The keys that seal audit entries: they come from the keyring, never from the database,
    /// and the seal is computed here because only the commit knows an entry's position.
    audit_keys: Arc<AuditKeys>,
    /// Seals what a backup must not reveal (anti-phishing codes, notice bodies) as it is
    /// written and opens it as it is read, so no use case handles ciphertext (`at_rest`).
    keyring: Arc<MasterKeyring>,
    /// PostgreSQL only: where the listener for other processes' key changes connects.
    listen_url: Option<key_push::ListenUrl>,
    /// PostgreSQL only: the connections the partitions' log commits are copied on
    /// (`log_copy`; sqlx's `Any` driver has no `COPY`). Connected when first used.
    copy_pool: Option<sqlx::PgPool>,
}

/// Opens the database at `url` (creating an SQLite file if needed) and runs migrations; audit
/// entries are sealed with the keyring's audit keys, and values kept at rest with its master
/// keys.
pub async fn open(url: &str, keyring: Arc<MasterKeyring>) -> StoreResult<Arc<dyn Store>> {
    Ok(Arc::new(SqlStore::connect(url, keyring).await?))
}

impl SqlStore {
    pub async fn connect(url: &str, keyring: Arc<MasterKeyring>) -> StoreResult<Self> {
        let audit_keys = keyring.audit_keys();
        let backend = Backend::of_url(url).ok_or_else(|| {
            StoreError::Backend(format!(
                "unsupported database URL (expected sqlite://PATH or postgres://...): {}",
                redact(url)
            ))
        })?;
        install_default_drivers();
        let cannot_open = |e| StoreError::Backend(format!("cannot open {}: {e}", redact(url)));
        if backend == Backend::Sqlite {
            files::make_private(url)?;
        }
        let pool = match backend {
            Backend::Sqlite => sqlite_pool(url, 4).await,
            Backend::Postgres => {
                AnyPoolOptions::new()
                    .acquire_timeout(Duration::from_secs(10))
                    .max_connections(16)
                    .connect(url)
                    .await
            }
        }
        .map_err(cannot_open)?;
        let migrator = match backend {
            Backend::Sqlite => &SQLITE_MIGRATIONS,
            Backend::Postgres => &POSTGRES_MIGRATIONS,
        };
        migrator
            .run(&pool)
            .await
            .map_err(|e| StoreError::Backend(format!("migrations failed: {e}")))?;
        // An in-memory database is one per pool: there the writer shares the pool, and the
        // event log is written through it too.
        let file = match backend {
            Backend::Sqlite => sqlite_file(url),
            Backend::Postgres => None,
        };
        let (writer_pool, sqlite_log) = match file {
            Some(path) => (
                sqlite_pool(url, 1).await.map_err(cannot_open)?,
                Some(Arc::new(sqlite_log::SqliteLog::open(&path)?)),
            ),
            None => (pool.clone(), None),
        };
        let copy_pool = match backend {
            // Two: one log stage's commit at a time holds the commit turn.
            Backend::Postgres => Some(
                (sqlx::postgres::PgPoolOptions::new())
                    .acquire_timeout(Duration::from_secs(10))
                    .max_connections(2)
                    .connect_lazy(url)
                    .map_err(cannot_open)?,
            ),
            Backend::Sqlite => None,
        };
        Ok(Self {
            pool,
            writer_pool,
            backend,
            writer: Arc::new(tokio::sync::Mutex::new(())),
            wal: Arc::default(),
            sqlite_log,
            audit_keys,
            keyring,
            listen_url: (backend == Backend::Postgres).then(|| key_push::ListenUrl(url.to_owned())),
            copy_pool,
        })
    }

    /// Tells the write-ahead log's checkpointing that a commit happened (SQLite only).
    pub(crate) fn committed(&self) {
        if self.backend == Backend::Sqlite {
            self.wal.committed(&self.pool);
        }
    }

    /// The turn to write, on SQLite (see `writer`); `None` on PostgreSQL.
    pub(crate) async fn writer_turn(&self) -> Option<tokio::sync::MutexGuard<'_, ()>> {
        match self.backend {
            Backend::Sqlite => Some(self.writer.lock().await),
            Backend::Postgres => None,
        }
    }

    /// The turn of a commit on the one write path, on both backends (see `writer`).
    pub(crate) async fn commit_turn(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.writer.lock().await
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    pub(crate) fn pool(&self) -> &AnyPool {
        &self.pool
    }

    pub(crate) fn listen_url(&self) -> Option<&key_push::ListenUrl> {
        self.listen_url.as_ref()
    }

    /// PostgreSQL only: where the partitions' log commits are copied (`log_copy`).
    pub(crate) fn copy_pool(&self) -> Option<&sqlx::PgPool> {
        self.copy_pool.as_ref()
    }

    /// Where transactions taken in the writer's turn run (see `writer_pool`).
    pub(crate) fn writer_pool(&self) -> &AnyPool {
        &self.writer_pool
    }

    /// The keys that seal audit entries.
    pub(crate) fn audit_keys(&self) -> &AuditKeys {
        &self.audit_keys
    }

    /// The master keys that seal values at rest.
    pub(crate) fn keyring(&self) -> &MasterKeyring {
        &self.keyring
    }

    /// The synchronous connection for the event log's appends, on an SQLite file.
    pub(crate) fn sqlite_log(&self) -> Option<&sqlite_log::SqliteLog> {
        self.sqlite_log.as_deref()
    }
}

/// A pool of `connections` to the SQLite database at `url`, each set up for this store.
async fn sqlite_pool(url: &str, connections: u32) -> Result<AnyPool, sqlx::Error> {
    AnyPoolOptions::new()
        .acquire_timeout(Duration::from_secs(10))
        .max_connections(connections)
        // A file opened in this process does not go away the way a server connection can, so
        // checking it on every acquire would only cost a round trip to the connection's thread
        // each time.
        .test_before_acquire(false)
        .after_connect(|connection, _| {
            Box::pin(async move {
                // A writer here waits for the lock for up to 5 s instead of failing at once.
                connection
                    .execute(sqlx::AssertSqlSafe(sqlite_settings(5000)))
                    .await?;
                Ok(())
            })
        })
        .connect(url)
        .await
}

/// The settings of every connection to an SQLite file, waiting up to `busy_timeout_ms` for
/// another connection's lock. WAL lets readers run beside the one writer. A page cache of
/// 32 MiB per connection (the default is 2 MiB) keeps the event log's and decisions' indexes in
/// memory as they grow, instead of a read system call per page.
pub(crate) fn sqlite_settings(busy_timeout_ms: u32) -> String {
    format!(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; \
         PRAGMA busy_timeout = {busy_timeout_ms}; PRAGMA cache_size = -32768; \
         PRAGMA wal_autocheckpoint = {};",
        wal::AUTOCHECKPOINT_PAGES
    )
}

/// The database file an SQLite URL names, if it names one (not an in-memory database) and it
/// exists.
fn sqlite_file(url: &str) -> Option<std::path::PathBuf> {
    let options = url.parse::<sqlx::sqlite::SqliteConnectOptions>().ok()?;
    let path = options.get_filename();
    path.is_file().then(|| path.to_path_buf())
}

/// Maps a driver error, telling unique-key and foreign-key violations apart.
pub(crate) fn db_error(context: &str, error: sqlx::Error) -> StoreError {
    if let Some(database) = error.as_database_error() {
        if database.is_unique_violation() {
            return StoreError::Conflict(format!("{context}: already exists"));
        }
        if database.is_foreign_key_violation() {
            return StoreError::NotFound(format!("{context}: a referenced row"));
        }
    }
    StoreError::Backend(format!("{context}: {error}"))
}

#[async_trait]
impl Store for SqlStore {
    async fn commit(&self, change: ChangeSet) -> StoreResult<()> {
        commit::commit(self, change).await
    }

    fn backend_name(&self) -> &'static str {
        match self.backend {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }

    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map(|_| ())
            .map_err(|e| db_error("ping", e))
    }

    async fn reseal_at_rest(&self, limit: u32) -> StoreResult<u64> {
        at_rest::reseal(self, limit).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_backends_and_redacts_passwords() {
        assert_eq!(
            Backend::of_url("sqlite://data/p.db?mode=rwc"),
            Some(Backend::Sqlite)
        );
        assert_eq!(
            Backend::of_url("postgresql://u@h/db"),
            Some(Backend::Postgres)
        );
        assert_eq!(Backend::of_url("mysql://h/db"), None);
        assert_eq!(
            redact("postgres://user:hunter2@db:5432/p"),
            "postgres://user:***@db:5432/p"
        );
    }
}
