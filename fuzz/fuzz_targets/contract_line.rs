//! The event contract's line readers against serde's derived reader. `parse_line` tries two
//! hand-written shortcuts (the byte scanner for the hot types, a flat pass over borrowed fields)
//! before the derived reader; each must decline what it is not sure of. So for any line:
//!
//! - each shortcut on its own either declines or reads exactly the event the derived reader
//!   reads (before validation: the shortcuts do not validate);
//! - `parse_line` accepts exactly what the derived reader (with the same size, depth and value
//!   checks) accepts, reads the same event, and refuses with the same reason.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portcullis_core::contract::shortcuts::{byte_scanner, flat_pass};
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

/// serde's message without its position suffix, as the contract reports it.
fn describe(error: &serde_json::Error) -> String {
    let text = error.to_string();
    text.rfind(" at line ")
        .map_or(text.clone(), |at| text[..at].to_owned())
}

/// The derived reader's answer, with the reason when there is one to compare: `None` for a
/// line whose refusal the reference cannot word the same way (not JSON at all, too long or too
/// deep: the reader counts brackets in the text, the reference has no tree to measure).
enum Reference {
    Accepted(ContractEvent),
    Refused(Option<String>),
}

fn reference(line: &str) -> Reference {
    if line.len() > MAX_LINE_BYTES {
        return Reference::Refused(None);
    }
    match serde_json::from_str::<Value>(line) {
        Ok(tree) if depth(&tree) > MAX_DEPTH => return Reference::Refused(None),
        Ok(_) => {}
        Err(_) => return Reference::Refused(None),
    }
    let event: ContractEvent = match serde_json::from_str(line) {
        Ok(event) => event,
        Err(error) => return Reference::Refused(Some(describe(&error))),
    };
    match event.validate() {
        Ok(()) => Reference::Accepted(event),
        Err(error) => Reference::Refused(Some(error.to_string())),
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(line) = std::str::from_utf8(data) else {
        return;
    };
    let derived = serde_json::from_str::<ContractEvent>(line).ok();
    for (name, shortcut) in [("byte scanner", byte_scanner(line)), ("flat pass", flat_pass(line))] {
        if let Some(event) = shortcut {
            assert_eq!(Some(&event), derived.as_ref(), "the {name} disagrees on {line:?}");
        }
    }
    match (parse_line(line), reference(line)) {
        (Ok(fast), Reference::Accepted(slow)) => assert_eq!(fast, slow, "{line:?}"),
        (Err(fast), Reference::Refused(Some(slow))) => assert_eq!(fast, slow, "{line:?}"),
        (Err(_), Reference::Refused(None)) => {}
        (fast, Reference::Accepted(_)) => panic!("refused what serde accepts: {fast:?} {line:?}"),
        (Ok(_), Reference::Refused(_)) => panic!("accepted what serde refuses: {line:?}"),
    }
});
