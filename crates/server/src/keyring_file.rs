//! The master keyring on disk: a small TOML file of base64 keys with ids, and which one is
//! active.
//!
//! ```toml
//! active = "mk-20261122"
//! [keys]
//! mk-20261122 = "base64 of 32 random bytes"
//! ```
//!
//! In the embedded default the file is created with one fresh key on first start (mode 0600,
//! in directories created 0700).
//! A new key is added with `portcullis master-key new`; `portcullis keys rewrap` then moves
//! every secret to it, after which old keys can be removed from the file.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use portcullis_app::keyring::{MasterKeyring, generate_master_key};
use portcullis_core::secret::Secret;
use portcullis_core::time::UnixMillis;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;
use zeroize::Zeroize;

/// A keyring file problem.
#[derive(Debug, thiserror::Error)]
pub enum KeyringFileError {
    #[error("keyring file {path}: {message}")]
    Bad { path: String, message: String },
    #[error("keyring file {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyringDocument {
    active: String,
    keys: BTreeMap<String, String>,
}

impl Drop for KeyringDocument {
    fn drop(&mut self) {
        for value in self.keys.values_mut() {
            value.zeroize();
        }
    }
}

fn bad(path: &Path, message: impl Into<String>) -> KeyringFileError {
    KeyringFileError::Bad {
        path: path.display().to_string(),
        message: message.into(),
    }
}

fn io(path: &Path, source: std::io::Error) -> KeyringFileError {
    KeyringFileError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// Loads the keyring, creating it with one fresh key when `create_if_missing` and it is absent.
pub fn load_or_create(
    path: &Path,
    create_if_missing: bool,
    now: UnixMillis,
) -> Result<MasterKeyring, KeyringFileError> {
    if !path.exists() {
        if !create_if_missing {
            return Err(bad(path, "does not exist"));
        }
        add_key(path, now)?;
    }
    load(path)
}

pub fn load(path: &Path) -> Result<MasterKeyring, KeyringFileError> {
    let document = read_document(path)?;
    let mut keys = Vec::new();
    for (id, encoded) in &document.keys {
        let bytes = BASE64
            .decode(encoded.trim())
            .map_err(|_| bad(path, format!("key `{id}` is not base64")))?;
        keys.push((id.clone(), Secret::new(bytes)));
    }
    MasterKeyring::new(&document.active, keys).map_err(|e| bad(path, e.to_string()))
}

fn read_document(path: &Path) -> Result<KeyringDocument, KeyringFileError> {
    let mut text = std::fs::read_to_string(path).map_err(|e| io(path, e))?;
    let parsed = toml::from_str::<KeyringDocument>(&text).map_err(|e| bad(path, e.to_string()));
    text.zeroize();
    parsed
}

/// Adds a fresh key (id `mk-<millis>`) and makes it active, creating the file if needed.
/// Returns the new key's id.
pub fn add_key(path: &Path, now: UnixMillis) -> Result<String, KeyringFileError> {
    let mut document = if path.exists() {
        read_document(path)?
    } else {
        KeyringDocument {
            active: String::new(),
            keys: BTreeMap::new(),
        }
    };
    let id = format!("mk-{}", now.as_millis());
    if document.keys.contains_key(&id) {
        return Err(bad(
            path,
            format!("key `{id}` already exists; try again in a moment"),
        ));
    }
    let material = generate_master_key().map_err(|e| bad(path, e.to_string()))?;
    document
        .keys
        .insert(id.clone(), BASE64.encode(material.expose()));
    document.active.clone_from(&id);
    let mut text = toml::to_string(&document).map_err(|e| bad(path, e.to_string()))?;
    let written = write_private(path, &text);
    text.zeroize();
    written?;
    Ok(id)
}

/// Creates `path` (and any missing parent) with mode 0700, so that nothing written inside is
/// ever reachable by others. A directory that exists already is left as it is (it may be one
/// the operator shares on purpose), with a warning when others can enter it.
pub fn create_private_dir(path: &Path) -> std::io::Result<()> {
    if path.is_dir() {
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(path)?.permissions().mode();
            if mode & 0o077 != 0 {
                tracing::warn!(path = %path.display(), mode = format!("{:o}", mode & 0o777), "directory holding the database or keyring is open to other users; chmod 700 it");
            }
        }
        return Ok(());
    }
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt as _;
        builder.mode(0o700);
    }
    builder.create(path)
}

fn write_private(path: &Path, text: &str) -> Result<(), KeyringFileError> {
    use std::io::Write as _;
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        create_private_dir(parent).map_err(|e| io(path, e))?;
    }
    let temporary = path.with_extension("toml.tmp");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file = options.open(&temporary).map_err(|e| io(path, e))?;
    // The mode above applies only to a file it creates: a temporary file left behind by a
    // crash keeps its own, so it is set again before the keys are written.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))
            .map_err(|e| io(path, e))?;
    }
    file.write_all(text.as_bytes()).map_err(|e| io(path, e))?;
    file.sync_all().map_err(|e| io(path, e))?;
    std::fs::rename(&temporary, path).map_err(|e| io(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creates_then_adds_and_activates_keys() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys").join("master-keys.toml");
        let first = load_or_create(&path, true, UnixMillis(1)).unwrap();
        assert_eq!(first.active_id(), "mk-1");
        let id = add_key(&path, UnixMillis(2)).unwrap();
        let ring = load(&path).unwrap();
        assert_eq!(ring.active_id(), id);
        assert_eq!(ring.ids().count(), 2);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o077, 0, "keyring must not be readable by others");
        }
    }

    #[cfg(unix)]
    #[test]
    fn the_keyring_and_its_directories_are_private() {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a").join("b").join("master-keys.toml");
        // A temporary file a crash left behind, readable by everyone.
        create_private_dir(path.parent().unwrap()).unwrap();
        let leftover = path.with_extension("toml.tmp");
        std::fs::write(&leftover, "").unwrap();
        std::fs::set_permissions(&leftover, std::fs::Permissions::from_mode(0o644)).unwrap();
        load_or_create(&path, true, UnixMillis(1)).unwrap();
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(&dir.path().join("a")), 0o700);
        assert_eq!(mode(path.parent().unwrap()), 0o700);
        // An existing directory is left as the operator made it.
        let shared = dir.path().join("shared");
        std::fs::create_dir(&shared).unwrap();
        std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o750)).unwrap();
        create_private_dir(&shared).unwrap();
        assert_eq!(mode(&shared), 0o750);
    }

    #[test]
    fn refuses_a_missing_file_unless_asked_to_create() {
        let dir = tempfile::tempdir().unwrap();
        assert!(load_or_create(&dir.path().join("none.toml"), false, UnixMillis(1)).is_err());
    }
}
