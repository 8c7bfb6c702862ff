//! Every stable error code the code can answer with is in docs/api.md: the codes are read from
//! the source (the `invalid(...)`, `bad_request(...)`, `refusal(...)` and `ApiError::new(...)`
//! calls of the app, core and server crates), so a new code without its line in the docs fails
//! here.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};

fn sources(dir: &Path, found: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, found);
        } else if path.extension().is_some_and(|e| e == "rs") {
            found.push(path);
        }
    }
}

/// The string literal that opens `text` (after spaces), if it looks like a code.
fn leading_code(text: &str) -> Option<&str> {
    let rest = text.trim_start().strip_prefix('"')?;
    let code = &rest[..rest.find('"')?];
    let looks = !code.is_empty()
        && code
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    looks.then_some(code)
}

fn codes_in(text: &str) -> Vec<String> {
    let mut codes = Vec::new();
    for call in ["invalid(", "bad_request(", "refusal("] {
        for (at, _) in text.match_indices(call) {
            codes.extend(leading_code(&text[at + call.len()..]).map(str::to_owned));
        }
    }
    for (at, _) in text.match_indices("ApiError::new(") {
        let rest = &text[at + "ApiError::new(".len()..];
        if let Some(comma) = rest.find(',') {
            codes.extend(leading_code(&rest[comma + 1..]).map(str::to_owned));
        }
    }
    codes
}

#[test]
fn every_error_code_is_documented() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let docs = std::fs::read_to_string(root.join("docs/api.md")).unwrap();
    let mut files = Vec::new();
    for krate in ["app", "core", "server"] {
        sources(&root.join("crates").join(krate).join("src"), &mut files);
    }
    let mut codes: Vec<(String, PathBuf)> = files
        .iter()
        .flat_map(|file| {
            let text = std::fs::read_to_string(file).unwrap();
            codes_in(&text)
                .into_iter()
                .map(move |code| (code, file.clone()))
        })
        .collect();
    codes.sort();
    codes.dedup_by(|a, b| a.0 == b.0);
    assert!(
        codes.len() > 40,
        "the scan finds the codes ({})",
        codes.len()
    );
    let missing: Vec<_> = codes
        .iter()
        .filter(|(code, _)| !docs.contains(&format!("`{code}`")))
        .collect();
    assert!(missing.is_empty(), "not in docs/api.md: {missing:?}");
}
