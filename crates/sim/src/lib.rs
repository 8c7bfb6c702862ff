//! Simulated exchange histories and the evaluation of a policy against a labelled feed.
//!
//! `simulate` tells the life of every customer of a small exchange over some days (sign-ins,
//! deposits, withdrawals, bots, and the habits that look like a scam and are not) and weaves in
//! scam crews' calls and drains, then writes the contract's feed and a label for every event
//! that asks for a decision. Nothing here reads a clock or a file: the same seed gives the same
//! bytes. `eval` replays any labelled feed through the engine and measures what a policy stops
//! and whom it bothers.

mod customer;
pub mod demo;
pub mod eval;
pub mod feed;
mod habits;
mod scam;
mod simulate;
pub mod world;

pub use feed::{Label, LabelLine, Rendered};
pub use simulate::{SimError, Simulation, simulate};
pub use world::Config;
