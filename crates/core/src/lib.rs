//! Portcullis' pure domain: the rules about API keys, scopes, IP allow-lists, signed requests,
//! the replay window, the audit chain and guarded widening (step-up, cool-downs, protections).
//!
//! Nothing in this crate performs I/O or reads a clock: every function that depends on time
//! takes `now` as an argument, so tests and replays need no sleeping and give the same answer
//! on every machine.

pub mod account;
pub mod address;
pub mod allowlist;
pub mod audit;
pub mod browser;
pub mod contract;
pub mod digest;
pub mod events;
pub mod guard;
pub mod key;
pub mod notice;
pub mod operator;
pub mod partition;
pub mod queue;
pub mod redact;
pub mod replay;
pub mod scope;
pub mod secret;
pub mod signing;
pub mod time;
pub mod verify;
pub mod webhook;

pub use account::Account;
pub use allowlist::{AllowListError, IpAllowList};
pub use key::{ApiKey, IdlePolicy, KeyAlgorithm, KeyStatus};
pub use operator::{Permission, Role};
pub use scope::{Scope, ScopeError, ScopeSet};
pub use secret::Secret;
pub use time::UnixMillis;
