//! Everything that differs between the two backends, as data: which URLs each accepts, how a
//! write transaction starts and serialises, where change numbers come from, per-connection
//! settings and the migration folder. The shared implementation in `store`, `writes`, `commit`,
//! `reads` and `usage` reads these constants and never matches on a backend.

use sqlx::migrate::Migrator;
use std::fmt::Debug;

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/postgres");

mod sealed {
    pub trait Sealed {}
    impl Sealed for super::Sqlite {}
    impl Sealed for super::Postgres {}
}

/// A backend [`crate::SqlStore`] can run on: [`Sqlite`] or [`Postgres`]. Sealed.
pub trait Dialect: sealed::Sealed + Debug + Send + Sync + 'static {
    /// The backend's name in logs and metrics (`Store::backend_name`).
    const NAME: &'static str;
    /// URL prefixes that select this backend.
    const SCHEMES: &'static [&'static str];
    /// Connections in the pool.
    const MAX_CONNECTIONS: u32;
    /// Statements run once on every new connection (empty: none).
    const ON_CONNECT: &'static str;
    /// Statements run once after the pool opens, before migrations (persistent settings).
    const ON_OPEN: &'static [&'static str];
    /// The statement that starts a write transaction (`None`: the driver's plain `BEGIN`).
    const BEGIN_WRITE: Option<&'static str>;
    /// The first statement of every commit: reads the audit head and, where the begin statement
    /// did not already, locks it until the commit ends, so commits run one after another.
    const LOCK_HEAD: &'static str;
    /// An SQL expression for the next key change number, evaluated inside a commit.
    const NEXT_CHANGE_SEQ: &'static str;
    /// The database has a single writer: writes from this process queue on an in-process lock
    /// (fair and immediate, rather than sleeping in the driver's busy handler), and usage is
    /// written in one transaction. With row locks (`false`), usage is written row by row, so it
    /// never holds one key's lock while waiting for another's and cannot deadlock a commit.
    const SINGLE_WRITER: bool;

    /// The migrations of this backend.
    fn migrator() -> &'static Migrator;

    /// Whether `url` names this backend.
    fn accepts(url: &str) -> bool {
        Self::SCHEMES.iter().any(|scheme| url.starts_with(scheme))
    }

    /// The URL the driver is given, or why `url` cannot be used.
    fn prepare_url(url: &str) -> Result<String, String> {
        Ok(url.to_owned())
    }
}

/// Embedded SQLite: one file beside the service, WAL mode, one writer at a time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sqlite;

/// A PostgreSQL server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Postgres;

impl Dialect for Sqlite {
    const NAME: &'static str = "sqlite";
    const SCHEMES: &'static [&'static str] = &["sqlite:"];
    const MAX_CONNECTIONS: u32 = 4;
    // `synchronous = NORMAL` is durable against crashes of the process in WAL mode and loses at
    // most the last commits on power loss, without an fsync per commit. A writer from another
    // process (the CLI beside the server) is waited for up to 5 s.
    const ON_CONNECT: &'static str =
        "PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 5000;";
    // Persistent in the file. Set once, not per connection: switching modes needs an exclusive
    // lock that the busy timeout does not wait for.
    const ON_OPEN: &'static [&'static str] = &["PRAGMA journal_mode = WAL"];
    // Takes the write lock at once: a deferred transaction that reads first and writes later
    // could fail with a stale snapshot instead of waiting.
    const BEGIN_WRITE: Option<&'static str> = Some("BEGIN IMMEDIATE");
    const LOCK_HEAD: &'static str = "SELECT seq, hash FROM audit_head WHERE id = 1";
    // Commits hold the write lock, so the maximum cannot move under this transaction.
    const NEXT_CHANGE_SEQ: &'static str =
        "(SELECT COALESCE(MAX(change_seq), 0) + 1 FROM api_keys)";
    const SINGLE_WRITER: bool = true;

    fn migrator() -> &'static Migrator {
        &SQLITE_MIGRATIONS
    }

    /// Creates the file when missing (`mode=rwc` unless a mode is given); refuses in-memory
    /// databases, which would give each pooled connection its own empty database and lose the
    /// audit trail on restart.
    fn prepare_url(url: &str) -> Result<String, String> {
        let (database, query) = url.split_once('?').unwrap_or((url, ""));
        let params: Vec<&str> = query.split('&').filter(|p| !p.is_empty()).collect();
        if database.ends_with(":memory:") || params.contains(&"mode=memory") {
            return Err("in-memory SQLite is not supported; give a file path".into());
        }
        if params.iter().any(|p| p.starts_with("mode=")) {
            return Ok(url.to_owned());
        }
        let separator = if query.is_empty() { "?" } else { "&" };
        let url = url.trim_end_matches('?');
        Ok(format!("{url}{separator}mode=rwc"))
    }
}

impl Dialect for Postgres {
    const NAME: &'static str = "postgres";
    const SCHEMES: &'static [&'static str] = &["postgres://", "postgresql://"];
    const MAX_CONNECTIONS: u32 = 16;
    const ON_CONNECT: &'static str = "";
    const ON_OPEN: &'static [&'static str] = &[];
    const BEGIN_WRITE: Option<&'static str> = None;
    // The row lock is held until commit or rollback; the next commit waits for it, then reads
    // the head its predecessor wrote.
    const LOCK_HEAD: &'static str = "SELECT seq, hash FROM audit_head WHERE id = 1 FOR UPDATE";
    // Taken after the head lock, so numbers are handed out (and become visible) in commit order.
    const NEXT_CHANGE_SEQ: &'static str = "nextval('api_keys_change_seq')";
    const SINGLE_WRITER: bool = false;

    fn migrator() -> &'static Migrator {
        &POSTGRES_MIGRATIONS
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_select_backends() {
        assert!(Sqlite::accepts("sqlite://data/p.db?mode=rwc"));
        assert!(Sqlite::accepts("sqlite:p.db"));
        assert!(Postgres::accepts("postgres://u@h/db"));
        assert!(Postgres::accepts("postgresql://u@h/db"));
        assert!(!Postgres::accepts("sqlite://p.db"));
        assert!(!Sqlite::accepts("mysql://h/db"));
    }

    #[test]
    fn sqlite_files_are_created_unless_a_mode_is_given() {
        let prepare = |url| Sqlite::prepare_url(url);
        assert_eq!(prepare("sqlite://d/p.db"), Ok("sqlite://d/p.db?mode=rwc".into()));
        assert_eq!(prepare("sqlite://d/p.db?"), Ok("sqlite://d/p.db?mode=rwc".into()));
        assert_eq!(
            prepare("sqlite://d/p.db?cache=private"),
            Ok("sqlite://d/p.db?cache=private&mode=rwc".into())
        );
        assert_eq!(prepare("sqlite://d/p.db?mode=ro"), Ok("sqlite://d/p.db?mode=ro".into()));
        assert!(prepare("sqlite::memory:").is_err());
        assert!(prepare("sqlite://p.db?mode=memory").is_err());
    }
}
