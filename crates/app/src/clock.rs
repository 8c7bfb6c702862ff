//! Clocks: the system clock for the service, a settable one for tests and replays. This is the
//! only module allowed to read the wall clock.

use crate::ports::Clock;
use portcullis_core::time::UnixMillis;
use std::sync::atomic::{AtomicI64, Ordering};

/// The machine's wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    #[allow(clippy::disallowed_methods)] // The one sanctioned wall-clock read.
    fn now(&self) -> UnixMillis {
        let since_epoch = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        UnixMillis(i64::try_from(since_epoch.as_millis()).unwrap_or(i64::MAX))
    }
}

/// A clock that says what it is told (tests, replays).
#[derive(Debug, Default)]
pub struct ManualClock(AtomicI64);

impl ManualClock {
    pub fn new(at: UnixMillis) -> Self {
        Self(AtomicI64::new(at.as_millis()))
    }

    pub fn set(&self, at: UnixMillis) {
        self.0.store(at.as_millis(), Ordering::SeqCst);
    }

    pub fn advance(&self, millis: i64) {
        self.0.fetch_add(millis, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> UnixMillis {
        UnixMillis(self.0.load(Ordering::SeqCst))
    }
}
