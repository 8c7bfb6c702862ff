//! `portcullis contacts verify --file FILE`: the registry is fetched once (from the local store
//! or the server, through the same request either way), compiled here, and every line is
//! verified in-process and answered as one JSON object a line, in input order: the answer the
//! API gives, or `{"value": ..., "error": {"code", "message"}}` for a line that cannot be
//! verified. A million values cost one request, not a million.

use crate::transport::ApiResponse;
use anyhow::{Context as _, bail};
use portcullis_app::ErrorCode;
use portcullis_app::contacts::error_code;
use portcullis_contacts::{Direction, EntryKind, KnownScam, OfficialEntry, Registry, ScamSource};
use serde_json::{Value, json};
use std::io::{BufWriter, Write as _};
use std::path::Path;
use std::process::ExitCode;

/// Verifies every line of `file` against the registry in `response` (`GET /v1/contacts/registry`).
pub fn verify_file(
    file: &Path,
    region: Option<&str>,
    response: &ApiResponse,
) -> anyhow::Result<ExitCode> {
    if response.status != 200 {
        let code = response.body["error"]["code"].as_str().unwrap_or("error");
        let message = response.body["error"]["message"]
            .as_str()
            .unwrap_or("request failed");
        bail!(
            "cannot read the contact registry: {message} ({code}, HTTP {})",
            response.status
        );
    }
    let registry = compile(&response.body)?;
    let region = region
        .map(str::to_owned)
        .or_else(|| response.body["default_region"].as_str().map(str::to_owned));
    let bytes = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
    let stdout = std::io::stdout();
    let mut out = BufWriter::with_capacity(1 << 16, stdout.lock());
    let text = bytes.strip_suffix(b"\n").unwrap_or(&bytes);
    if text.is_empty() {
        return Ok(ExitCode::SUCCESS);
    }
    for line in text.split(|b| *b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        match std::str::from_utf8(line) {
            Ok(value) => match registry.verify(value, region.as_deref()) {
                Ok(answer) => serde_json::to_writer(&mut out, &answer)?,
                Err(error) => serde_json::to_writer(
                    &mut out,
                    &error_line(value, error_code(&error), &error.to_string()),
                )?,
            },
            Err(_) => serde_json::to_writer(
                &mut out,
                &error_line(
                    &String::from_utf8_lossy(line),
                    ErrorCode::InvalidEncoding,
                    "the line is not UTF-8",
                ),
            )?,
        }
        out.write_all(b"\n")?;
    }
    out.flush().context("writing to stdout")?;
    Ok(ExitCode::SUCCESS)
}

fn error_line(value: &str, code: ErrorCode, message: &str) -> Value {
    // A value over the size limit is not echoed whole.
    let shown: String = value.chars().take(256).collect();
    json!({ "value": shown, "error": { "code": code.as_str(), "message": message } })
}

/// The registry from its JSON (`RegistryDto`).
fn compile(body: &Value) -> anyhow::Result<Registry> {
    let field = |v: &Value, name: &str| v[name].as_str().unwrap_or_default().to_owned();
    let mut entries = Vec::new();
    for e in body["official"]
        .as_array()
        .context("the registry has no `official` list")?
    {
        entries.push(OfficialEntry {
            id: field(e, "id"),
            kind: EntryKind::parse(&field(e, "kind")).map_err(anyhow::Error::msg)?,
            value: field(e, "value"),
            channel: field(e, "channel"),
            direction: Direction::parse(&field(e, "direction")).unwrap_or(Direction::Both),
            note: field(e, "note"),
        });
    }
    let mut scams = Vec::new();
    for s in body["known_scams"]
        .as_array()
        .context("the registry has no `known_scams`")?
    {
        scams.push(KnownScam {
            kind: field(s, "kind"),
            value: field(s, "value"),
            source: match s["source"].as_str() {
                Some("confirmed_fraud") => ScamSource::ConfirmedFraud,
                _ => ScamSource::Reported,
            },
        });
    }
    Ok(Registry::compile(entries, &scams))
}
