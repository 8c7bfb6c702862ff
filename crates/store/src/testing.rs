//! Test support shared by every crate's integration tests: a fresh, empty PostgreSQL database
//! on the server the test command starts (`PORTCULLIS_TEST_POSTGRES_URL`, default
//! `postgres://postgres@127.0.0.1:5432/postgres`). `scripts/test.sh` drops them on its next run.

use sqlx::Connection as _;

/// The PostgreSQL server tests run against.
pub fn postgres_base_url() -> String {
    std::env::var("PORTCULLIS_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// Creates an empty database named `<prefix>_<random>` and returns its URL. Errors say how to
/// get a server, so a missing PostgreSQL fails a test clearly instead of skipping it.
pub async fn fresh_postgres_database(prefix: &str) -> Result<String, String> {
    let base = postgres_base_url();
    let mut connection = sqlx::PgConnection::connect(&base).await.map_err(|e| {
        format!("PostgreSQL must be running at {base} (scripts/test.sh starts it): {e}")
    })?;
    let suffix = portcullis_app::random::alphanumeric(12)
        .map_err(|e| e.to_string())?
        .to_ascii_lowercase();
    let name = format!("{prefix}_{suffix}");
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut connection)
        .await
        .map_err(|e| format!("cannot create database {name}: {e}"))?;
    let (server, _) = base
        .rsplit_once('/')
        .ok_or_else(|| format!("{base} names no database"))?;
    Ok(format!("{server}/{name}"))
}

/// The keyring of tests: one fixed master key (`mk-test`). Tests open stores with it, so the
/// store seals its audit entries with [`audit_keys`] and its values at rest with `mk-test`.
pub fn keyring() -> std::sync::Arc<portcullis_app::keyring::MasterKeyring> {
    let material = portcullis_core::secret::Secret::new(vec![7; 32]);
    match portcullis_app::keyring::MasterKeyring::new("mk-test", vec![("mk-test".into(), material)])
    {
        Ok(keyring) => std::sync::Arc::new(keyring),
        // A fixed, valid master key: the keyring cannot be refused.
        Err(error) => unreachable!("test keyring: {error}"),
    }
}

/// Audit keys for tests, derived from the test keyring's master key (`mk-test`): tests that
/// open a store with [`keyring`] seal its audit entries with these, and verify with them.
pub fn audit_keys() -> std::sync::Arc<portcullis_core::audit::AuditKeys> {
    keyring().audit_keys()
}
