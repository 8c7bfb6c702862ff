//! The event contract's line reader against its reference. `parse_line` tries two hand-written
//! shortcuts (a byte scanner, a flat pass over borrowed fields) before serde's derived reader;
//! each must decline what it is not sure of. So for any line, `parse_line` must accept exactly
//! what the derived reader (with the same size, depth and value checks) accepts, and read it
//! into the same event.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portcullis_core::contract::{ContractEvent, MAX_DEPTH, MAX_LINE_BYTES, parse_line};
use serde_json::Value;

/// How deep a parsed JSON value nests: read from the tree, not from the text, so that this
/// reference does not share the reader's bracket counting.
fn depth(value: &Value) -> usize {
    match value {
        Value::Array(items) => 1 + items.iter().map(depth).max().unwrap_or(0),
        Value::Object(fields) => 1 + fields.values().map(depth).max().unwrap_or(0),
        _ => 0,
    }
}

fn reference(line: &str) -> Option<ContractEvent> {
    if line.len() > MAX_LINE_BYTES || depth(&serde_json::from_str(line).ok()?) > MAX_DEPTH {
        return None;
    }
    let event: ContractEvent = serde_json::from_str(line).ok()?;
    event.validate().ok()?;
    Some(event)
}

fuzz_target!(|data: &[u8]| {
    let Ok(line) = std::str::from_utf8(data) else {
        return;
    };
    let fast = parse_line(line).ok();
    let slow = reference(line);
    assert_eq!(fast, slow, "the readers disagree on {line:?}");
});
