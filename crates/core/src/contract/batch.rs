//! JSON Lines batches: every line parsed and validated on its own, bad lines reported by number
//! with a reason, good lines kept in order.

use super::model::ContractEvent;

/// The longest line accepted (events are a few hundred bytes; this leaves room).
pub const MAX_LINE_BYTES: usize = 64 * 1024;
/// The deepest nesting of objects and arrays accepted. An event nests three levels at most;
/// far deeper lines would be stored but could not be read back by JSON readers with a
/// recursion limit (serde_json's is 128), so they are refused at the door.
pub const MAX_DEPTH: usize = 32;

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
    // The shortcuts first (each declines what it is not sure of), the derived reader last. The
    // byte scanner takes only flat objects (nothing nested but `ctx`'s scalars), so the depth
    // check is for the lines it declines: one in twenty on a replay.
    let event: ContractEvent = match super::flat::read(line) {
        Some(event) => event,
        None => {
            if nesting_depth(line) > MAX_DEPTH {
                return Err(format!(
                    "objects and arrays are nested deeper than {MAX_DEPTH} levels"
                ));
            }
            match super::wire::read(line) {
                Some(event) => event,
                None => serde_json::from_str(line).map_err(|e| describe(&e))?,
            }
        }
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

/// How deep objects and arrays nest in `line` (brackets inside strings do not count). A line
/// with few brackets cannot nest deeply, so the exact scan runs only on the rare line with
/// many: the common case is one vectorised count.
fn nesting_depth(line: &str) -> usize {
    let bytes = line.as_bytes();
    let opening = bytes.iter().filter(|&&b| b == b'{' || b == b'[').count();
    if opening <= MAX_DEPTH {
        return opening;
    }
    let (mut depth, mut deepest, mut in_string, mut escaped) = (0usize, 0usize, false, false);
    for &b in bytes {
        match (in_string, escaped, b) {
            (true, true, _) => escaped = false,
            (true, false, b'\\') => escaped = true,
            (true, false, b'"') => in_string = false,
            (true, false, _) => {}
            (false, _, b'"') => in_string = true,
            (false, _, b'{' | b'[') => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            (false, _, b'}' | b']') => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    deepest
}

/// A batch's bytes as text, line by line: a line that is not UTF-8 is refused on its own (and
/// left blank in the text, so the other lines keep their numbers), instead of the whole batch.
pub fn utf8_lines(bytes: &[u8]) -> (String, Vec<LineError>) {
    let mut text = String::with_capacity(bytes.len());
    let mut errors = Vec::new();
    for (index, line) in bytes.split(|&b| b == b'\n').enumerate() {
        if index > 0 {
            text.push('\n');
        }
        match std::str::from_utf8(line) {
            Ok(line) => text.push_str(line),
            Err(error) => errors.push(LineError {
                line: index + 1,
                reason: format!("not UTF-8 (byte {})", error.valid_up_to() + 1),
            }),
        }
    }
    (text, errors)
}

/// serde's message without its position suffix (the line number says where).
fn describe(error: &serde_json::Error) -> String {
    let text = error.to_string();
    match text.rfind(" at line ") {
        Some(at) => text[..at].to_owned(),
        None => text,
    }
}
