//! The Portcullis risk engine: it reads the event feed (`portcullis_core::contract`) in event
//! time, keeps bounded per-account features, evaluates a CEL policy on every event that asks for
//! a decision, and answers allow / challenge / hold / block with a score and the reasons.
//!
//! The engine is pure: no I/O and no clock; time is each event's own `ts`, so a replay of a file
//! gives the same decisions on any machine at any speed.

mod account;
mod amounts;
mod backtest;
mod campaign;
mod checkpoint;
mod closed_loop;
mod decision;
mod dedup;
mod engine;
mod entities;
mod fact;
mod features;
mod force;
mod gate;
mod graph;
mod ipv4;
mod links;
mod network;
mod paged;
pub mod partitioned;
mod plain;
#[cfg(test)]
mod plain_tests;
mod policy;
mod slab;
mod state;
mod view;

pub use backtest::{
    Backtest, BacktestReport, ChangedDecision, Confirmed, Judgement, MAX_EXAMPLES, RuleFigures,
    SideFigures, Subject,
};
pub use campaign::{Alert, AlertKind, Evidence};
pub use checkpoint::CheckpointError;
pub use decision::{Decision, Verdict};
pub use dedup::DEDUP_HORIZON_MS;
pub use engine::{Engine, EngineStats, MemoryUse, Outcome};
pub use entities::{Mark, Marked, NO_MARK_HOPS, Override, OverrideMode, Propagation};
pub use features::{FEATURE_NAMES, Features};
pub use graph::{EdgeKind, EntityKind};
pub use policy::{
    DEFAULT_POLICY, Evaluation, Policy, PolicyError, RULE_ERROR_PREFIX, Rule, Thresholds,
};
pub use view::{GraphView, MAX_VIEW_HOPS, ViewEdge, ViewNode};
