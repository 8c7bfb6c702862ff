//! Which partitions this process owns: leases in the database, renewed on every tick, taken
//! when they lapse (with a new epoch), and spread fairly: each process takes up to
//! `ceil(partitions / live processes)` and hands back what it holds beyond that. Time comes
//! from the clock port, so a test moves it.

use crate::ports::{Clock, LeaseStore, StoreResult};
use portcullis_core::time::UnixMillis;
use std::collections::BTreeMap;
use std::sync::Arc;

/// What one tick changed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Tick {
    /// Partitions taken, with their new epoch.
    pub acquired: Vec<(u32, i64)>,
    /// Partitions whose lease another process took (their work must stop, unstored).
    pub lost: Vec<u32>,
    /// Partitions held beyond the fair share, to hand back after a checkpoint.
    pub surplus: Vec<u32>,
}

/// See the module documentation.
pub struct Leases {
    store: Arc<dyn LeaseStore>,
    clock: Arc<dyn Clock>,
    node: String,
    partitions: u32,
    ttl_ms: i64,
    /// Held partitions and their epochs.
    held: BTreeMap<u32, i64>,
}

impl std::fmt::Debug for Leases {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Leases")
            .field("node", &self.node)
            .field("held", &self.held)
            .finish_non_exhaustive()
    }
}

impl Leases {
    pub fn new(
        store: Arc<dyn LeaseStore>,
        clock: Arc<dyn Clock>,
        node: String,
        partitions: u32,
        ttl_ms: i64,
    ) -> Self {
        Self {
            store,
            clock,
            node,
            partitions: partitions.max(1),
            ttl_ms: ttl_ms.max(1),
            held: BTreeMap::new(),
        }
    }

    pub fn node(&self) -> &str {
        &self.node
    }

    /// The partitions held and their epochs.
    pub fn held(&self) -> &BTreeMap<u32, i64> {
        &self.held
    }

    /// Heartbeat, renewals, then takes free partitions up to the fair share: with `live`
    /// processes, `ceil(partitions / live)` at most, and no more than `floor(partitions / live)`
    /// (handing back down to it) while another live process holds fewer than that.
    pub async fn tick(&mut self) -> StoreResult<Tick> {
        let now = self.clock.now();
        let until = UnixMillis(now.as_millis() + self.ttl_ms);
        let live = self.store.heartbeat(&self.node, now, until).await?;
        let count = u32::try_from(live.len()).unwrap_or(u32::MAX).max(1);
        let (floor, ceil) = (self.partitions / count, self.partitions.div_ceil(count));
        let mut tick = Tick::default();
        for (&partition, &epoch) in &self.held.clone() {
            if !(self.store.renew(partition, &self.node, epoch, until)).await? {
                self.held.remove(&partition);
                tick.lost.push(partition);
            }
        }
        let leases = self.store.leases().await?;
        let held_by = |node: &str| {
            (leases.iter())
                .filter(|l| l.owner == node && l.expires_at > now)
                .count()
        };
        // While another holds fewer than the floor, take no more than the floor either.
        let starving =
            (live.iter()).any(|node| *node != self.node && held_by(node) < floor as usize);
        let keep = if starving { floor } else { ceil } as usize;
        if self.held.len() < keep {
            for partition in 0..self.partitions {
                if self.held.len() >= keep {
                    break;
                }
                let taken = (leases.iter()).any(|l| l.partition == partition && l.expires_at > now);
                if self.held.contains_key(&partition) || taken {
                    continue;
                }
                if let Some(epoch) = (self.store)
                    .acquire(partition, &self.node, now, until)
                    .await?
                {
                    self.held.insert(partition, epoch);
                    tick.acquired.push((partition, epoch));
                }
            }
        }
        let surplus = self.held.len().saturating_sub(keep);
        tick.surplus = self.held.keys().rev().take(surplus).copied().collect();
        Ok(tick)
    }

    /// Lets a partition go (after its work stopped).
    pub async fn release(&mut self, partition: u32) -> StoreResult<()> {
        if let Some(epoch) = self.held.remove(&partition) {
            self.store.release(partition, &self.node, epoch).await?;
        }
        Ok(())
    }

    /// Leaves for good (shutting down): every lease let go, and the heartbeat ended now, so
    /// the processes that stay count one fewer and take a fair share of the partitions at
    /// their next tick instead of when the heartbeat would have lapsed.
    pub async fn leave(&mut self) -> StoreResult<()> {
        for partition in self.held.keys().copied().collect::<Vec<_>>() {
            self.release(partition).await?;
        }
        let now = self.clock.now();
        self.store.heartbeat(&self.node, now, now).await.map(|_| ())
    }
}
