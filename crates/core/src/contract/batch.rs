//! JSON Lines batches: every line parsed and validated on its own, bad lines reported by number
//! with a reason, good lines kept in order.

use super::model::ContractEvent;

/// The longest line accepted (events are a few hundred bytes; this leaves room).
pub const MAX_LINE_BYTES: usize = 64 * 1024;

/// A line that was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineError {
    /// 1-based.
    pub line: usize,
    pub reason: String,
}

/// The outcome of parsing a batch.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ParsedBatch {
    /// Accepted events with their 1-based line numbers, in input order.
    pub events: Vec<(usize, ContractEvent)>,
    pub errors: Vec<LineError>,
}

/// Parses and validates one line.
pub fn parse_line(line: &str) -> Result<ContractEvent, String> {
    if line.len() > MAX_LINE_BYTES {
        return Err(format!("line is longer than {MAX_LINE_BYTES} bytes"));
    }
    // The shortcuts first (each declines what it is not sure of), the derived reader last.
    let fast = super::flat::read(line).or_else(|| super::wire::read(line));
    let event: ContractEvent = match fast {
        Some(event) => event,
        None => serde_json::from_str(line).map_err(|e| describe(&e))?,
    };
    event.validate().map_err(|e| e.to_string())?;
    Ok(event)
}

/// Parses a JSON Lines batch; blank lines are skipped.
pub fn parse_lines(text: &str) -> ParsedBatch {
    let mut batch = ParsedBatch::default();
    for (index, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match parse_line(line) {
            Ok(event) => batch.events.push((index + 1, event)),
            Err(reason) => batch.errors.push(LineError {
                line: index + 1,
                reason,
            }),
        }
    }
    batch
}

/// serde's message without its position suffix (the line number says where).
fn describe(error: &serde_json::Error) -> String {
    let text = error.to_string();
    match text.rfind(" at line ") {
        Some(at) => text[..at].to_owned(),
        None => text,
    }
}
