//! The event contract (`shared/spec/events.md`) as types: one account event per JSON line,
//! parsed strictly enough that bad input is refused with a reason, and leniently enough that
//! fields added later by an exchange do not break the feed.
//!
//! Parsing is in two steps: serde reads the shape (types, required fields, known `type`), then
//! [`ContractEvent::validate`] checks the values (decimal amounts, positive counts, sane times).
//! [`parse_lines`] applies both to a JSON Lines batch and reports every bad line by number.
//! Two shortcuts read the lines they are sure of first: a byte scanner for the two hot types
//! (`flat`) and a flat serde pass over borrowed fields (`wire`); the derived reader has the
//! last word on everything else. [`EventBuffer`] reads line after line into one event, reusing
//! its strings (for replays).

mod batch;
mod flat;
mod model;
mod reuse;
mod wire;

pub use batch::{
    LineError, MAX_DEPTH, MAX_LINE_BYTES, ParsedBatch, parse_line, parse_lines, utf8_lines,
};
pub use model::{Attestation, ContactChannel, ContractEvent, EventBody, EventError, LoginMethod};
pub use reuse::EventBuffer;

/// The two shortcuts on their own, for the fuzz targets (`cargo fuzz` builds with
/// `--cfg fuzzing`): each must decline, or agree with the derived reader.
#[cfg(fuzzing)]
pub mod shortcuts {
    pub use super::flat::read as byte_scanner;
    pub use super::wire::read as flat_pass;
}

#[cfg(test)]
mod tests;
