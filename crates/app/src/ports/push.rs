//! The port that tells the other processes of a deployment, at once, that a commit made here
//! changed what they hold in memory: the keys in their verifiers, the operator tokens in their
//! caches. Without it each process learns of such a change at its next poll.
//!
//! Best effort by contract: the change is committed before anything is published, so a lost
//! message costs only time (the poll catches up) and never the caller's request. An adapter
//! logs and counts its own failures; `publish` cannot fail.

use async_trait::async_trait;

/// What another process should look at again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pushed {
    /// A key or one of its secrets changed: refresh the verifier.
    Keys,
    /// An operator token was revoked: forget cached tokens.
    Operators,
    /// Anything may have changed (a message may have been missed, as after a reconnection).
    Everything,
}

impl Pushed {
    /// The name on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Keys => "keys",
            Self::Operators => "operators",
            Self::Everything => "everything",
        }
    }

    /// Reads a name from the wire; anything unknown is `Everything` (look at all of it).
    pub fn parse(text: &str) -> Self {
        match text {
            "keys" => Self::Keys,
            "operators" => Self::Operators,
            _ => Self::Everything,
        }
    }
}

/// A channel every process of a deployment publishes on and listens to.
#[async_trait]
pub trait ChangeBus: Send + Sync + std::fmt::Debug {
    /// Announces a committed change to the other processes, without waiting for the channel.
    fn publish(&self, what: Pushed);
    /// What other processes announced, and `Everything` after each (re)connection. `None` when
    /// it was taken already (one listener per process).
    async fn watch(&self) -> Option<tokio::sync::mpsc::Receiver<Pushed>>;
    /// Waits, briefly, until what was published so far has left (a short-lived process, such
    /// as a local CLI command, calls it before it exits).
    async fn settle(&self) {}
}
