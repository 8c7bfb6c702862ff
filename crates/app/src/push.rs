//! Where the use cases announce committed changes that other processes hold in memory (see
//! [`crate::ports::ChangeBus`]). One cell shared by every use case and every clone of them, so
//! a bus attached after start ([`crate::Portcullis::with_change_bus`]) is used everywhere: the
//! key authority the guard holds included.

use crate::ports::{ChangeBus, Pushed};
use std::sync::{Arc, OnceLock};

/// The deployment's change bus, once one is attached; until then announcing does nothing.
#[derive(Debug, Clone, Default)]
pub struct Push(Arc<OnceLock<Arc<dyn ChangeBus>>>);

impl Push {
    /// Attaches `bus`; a second bus is refused (`false`), the first stays.
    pub(crate) fn attach(&self, bus: Arc<dyn ChangeBus>) -> bool {
        self.0.set(bus).is_ok()
    }

    /// Announces a change that is committed already.
    pub(crate) fn committed(&self, what: Pushed) {
        if let Some(bus) = self.0.get() {
            bus.publish(what);
        }
    }

    /// Waits, briefly, until what was announced has left (before a short-lived process exits).
    pub async fn settle(&self) {
        if let Some(bus) = self.0.get() {
            bus.settle().await;
        }
    }

    /// The bus, when one is attached (the server listens on it).
    pub fn bus(&self) -> Option<&Arc<dyn ChangeBus>> {
        self.0.get()
    }
}
