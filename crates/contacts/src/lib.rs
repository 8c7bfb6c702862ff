//! Is this really the exchange? Classifying a value (phone number, e-mail address, domain,
//! link, handle), reducing it to one normal form, and judging it against the exchange's
//! official contacts: `official`, `known_scam`, `lookalike` (naming the entry it imitates and
//! how) or `not_official`.
//!
//! Pure: no I/O, no clock. The registry is compiled once ([`Registry::compile`]): every typo
//! variant and confusable skeleton of every official name goes into hash maps, so a
//! verification is a normalisation and a few lookups.

pub mod classify;
pub mod error;
pub mod phone;
pub mod registry;
pub mod variants;
pub mod verify;

pub use classify::{Kind, Normalized, normalise};
pub use error::{ContactError, MAX_VALUE_BYTES};
pub use registry::{
    Direction, EntryKind, KnownScam, OfficialEntry, Registry, ScamSource, normalise_entry,
};
pub use variants::How;
pub use verify::{Answer, Verdict};
