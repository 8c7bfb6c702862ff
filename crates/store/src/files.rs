//! The embedded database's files are private to the service's user: the SQLite file is created
//! with mode 0600 before SQLite first opens it (so not one byte is ever written to a file others
//! can read), and SQLite gives its companions (`-wal`, `-shm`, `-journal`) the mode of the
//! database file. Files left 0644 by an older version are tightened when the store opens.
//!
//! The process umask is left alone: it is the operator's, and governs files this crate does
//! not own.

use portcullis_app::ports::{StoreError, StoreResult};
use std::path::{Path, PathBuf};

/// The companions SQLite keeps beside a database file.
const COMPANIONS: [&str; 3] = ["-wal", "-shm", "-journal"];

/// The file an SQLite URL names, when it names one on disk (not an in-memory database).
fn database_path(url: &str) -> Option<PathBuf> {
    if url.contains("mode=memory") || url.contains(":memory:") {
        return None;
    }
    let options = url.parse::<sqlx::sqlite::SqliteConnectOptions>().ok()?;
    let path = options.get_filename();
    (!path.as_os_str().is_empty()).then(|| path.to_path_buf())
}

fn failed(path: &Path, error: &std::io::Error) -> StoreError {
    StoreError::Backend(format!("cannot protect {}: {error}", path.display()))
}

/// Creates the database file `url` names with mode 0600 when it is missing and the URL asks
/// for creation (`mode=rwc`), and tightens the file and its companions to 0600 when they exist.
#[cfg(unix)]
pub(crate) fn make_private(url: &str) -> StoreResult<()> {
    use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
    let Some(path) = database_path(url) else {
        return Ok(());
    };
    if !path.exists() && url.contains("mode=rwc") {
        let created = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path);
        match created {
            // Another process created it first: it is tightened below like any existing file.
            Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(error) => return Err(failed(&path, &error)),
            Ok(_) => {}
        }
    }
    let mut files = vec![path.clone()];
    for companion in COMPANIONS {
        let mut name = path.clone().into_os_string();
        name.push(companion);
        files.push(PathBuf::from(name));
    }
    for file in files.iter().filter(|file| file.exists()) {
        let mode = std::fs::metadata(file)
            .map_err(|e| failed(file, &e))?
            .permissions()
            .mode();
        if mode & 0o077 != 0 {
            std::fs::set_permissions(file, std::fs::Permissions::from_mode(0o600))
                .map_err(|e| failed(file, &e))?;
        }
    }
    Ok(())
}

/// Elsewhere the platform's own access control applies.
#[cfg(not(unix))]
pub(crate) fn make_private(_url: &str) -> StoreResult<()> {
    Ok(())
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use portcullis_app::ports::{ChangeSet, Write};
    use portcullis_core::account::Account;
    use portcullis_core::time::UnixMillis;
    use std::os::unix::fs::PermissionsExt as _;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).map_or(0, |m| m.permissions().mode() & 0o777)
    }

    fn url(path: &Path) -> String {
        format!("sqlite://{}?mode=rwc", path.display())
    }

    #[test]
    fn names_only_files_on_disk() {
        assert_eq!(database_path("sqlite::memory:"), None);
        assert_eq!(database_path("sqlite://x.db?mode=memory"), None);
        assert_eq!(
            database_path("sqlite://data/p.db?mode=rwc"),
            Some(PathBuf::from("data/p.db"))
        );
    }

    #[tokio::test]
    async fn the_database_and_its_companions_are_private_from_the_first_byte() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.db");
        let store = crate::SqlStore::connect(&url(&path), crate::testing::keyring())
            .await
            .unwrap();
        let account = Account {
            id: "acc_1".into(),
            display_name: "Ada".into(),
            email: None,
            phone: None,
            anti_phishing_code: None,
            created_at: UnixMillis(1),
            updated_at: UnixMillis(1),
            version: 1,
        };
        let set = ChangeSet {
            writes: vec![Write::InsertAccount(account)],
            audit: vec![],
            events: vec![],
        };
        portcullis_app::ports::Store::commit(&store, set)
            .await
            .unwrap();
        assert_eq!(mode(&path), 0o600);
        let wal = dir.path().join("p.db-wal");
        let shm = dir.path().join("p.db-shm");
        assert!(wal.exists() && shm.exists(), "the store runs in WAL mode");
        assert_eq!((mode(&wal), mode(&shm)), (0o600, 0o600));
    }

    #[test]
    fn files_of_an_older_version_are_tightened() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.db");
        let wal = dir.path().join("p.db-wal");
        for file in [&path, &wal] {
            std::fs::write(file, b"").unwrap();
            std::fs::set_permissions(file, std::fs::Permissions::from_mode(0o644)).unwrap();
        }
        make_private(&url(&path)).unwrap();
        assert_eq!((mode(&path), mode(&wal)), (0o600, 0o600));
        let missing = dir.path().join("not-created.db");
        make_private(&format!("sqlite://{}", missing.display())).unwrap();
        assert!(!missing.exists(), "created only when the URL asks for it");
    }
}
