//! The event contract's line reader against its reference. `parse_line` tries two hand-written
//! shortcuts (a byte scanner, a flat pass over borrowed fields) before serde's derived reader;
//! each must decline what it is not sure of. So for any line, `parse_line` must accept exactly
//! what the derived reader (with the same size, depth and value checks) accepts, and read it
//! into the same event.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portcullis_core::contract::{ContractEvent, MAX_DEPTH, MAX_LINE_BYTES, parse_line};

fn depth(line: &str) -> usize {
    let (mut depth, mut deepest, mut in_string, mut escaped) = (0usize, 0usize, false, false);
    for byte in line.bytes() {
        match (in_string, escaped, byte) {
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

fn reference(line: &str) -> Option<ContractEvent> {
    if line.len() > MAX_LINE_BYTES || depth(line) > MAX_DEPTH {
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
