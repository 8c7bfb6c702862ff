//! The master keyring on disk: a small TOML file of base64 keys with ids, and which one is
//! active.
//!
//! ```toml
//! active = "mk-20261122"
//! [keys]
//! mk-20261122 = "base64 of 32 random bytes"
//! ```
//!
//! In the embedded default the file is created with one fresh key on first start (mode 0600).
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

fn write_private(path: &Path, text: &str) -> Result<(), KeyringFileError> {
    use std::io::Write as _;
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|e| io(path, e))?;
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

    #[test]
    fn refuses_a_missing_file_unless_asked_to_create() {
        let dir = tempfile::tempdir().unwrap();
        assert!(load_or_create(&dir.path().join("none.toml"), false, UnixMillis(1)).is_err());
    }
}
