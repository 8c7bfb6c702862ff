//! What this process's partitions are doing, for `/metrics`: which partitions it holds (and
//! under which epoch), how far each has read the event stream, decided, stored its decisions
//! and stored its log and checkpoint (then acknowledged the stream), and how many events and
//! decisions it worked since it was taken. An operator sees from these a partition falling
//! behind the feed (read but not decided: the engine or the other partitions' progress),
//! decisions waiting on the database (decided but not stored), or the event log trailing
//! (stored but not logged: the stream keeps those events until it is).
//!
//! Atomics written by the partition's work and read by the scrape: no lock between them.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

/// One partition's figures in this process.
#[derive(Debug, Default)]
struct Gauge {
    /// The epoch of the lease this process works it under; 0: not worked here.
    epoch: AtomicI64,
    read_through: AtomicU64,
    decided_through: AtomicU64,
    stored_through: AtomicU64,
    logged_through: AtomicU64,
    events: AtomicU64,
    decisions: AtomicU64,
}

/// One partition's figures as read (see [`PartitionGauges`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GaugeReading {
    pub partition: u32,
    /// 0: not worked in this process.
    pub epoch: i64,
    /// The last stream position read.
    pub read_through: u64,
    /// Every own event through this position is done (decided or applied).
    pub decided_through: u64,
    /// Decisions stored for the events through this position.
    pub stored_through: u64,
    /// Log rows and checkpoints stored, and the stream acknowledged, through this position.
    pub logged_through: u64,
    /// Own events worked since the partition was taken here.
    pub events: u64,
    /// Decisions made since the partition was taken here.
    pub decisions: u64,
}

/// Every partition's figures in this process, by partition index.
#[derive(Debug)]
pub struct PartitionGauges {
    gauges: Vec<Gauge>,
}

impl PartitionGauges {
    pub fn new(partitions: u32) -> Self {
        Self {
            gauges: (0..partitions).map(|_| Gauge::default()).collect(),
        }
    }

    fn gauge(&self, partition: u32) -> Option<&Gauge> {
        self.gauges.get(partition as usize)
    }

    /// Partition `partition` taken under `epoch`: its figures start again.
    pub(crate) fn taken(&self, partition: u32, epoch: i64) {
        if let Some(gauge) = self.gauge(partition) {
            for position in [
                &gauge.read_through,
                &gauge.decided_through,
                &gauge.stored_through,
                &gauge.logged_through,
                &gauge.events,
                &gauge.decisions,
            ] {
                position.store(0, Ordering::Relaxed);
            }
            gauge.epoch.store(epoch, Ordering::Relaxed);
        }
    }

    /// Partition `partition` no longer worked here.
    pub(crate) fn dropped(&self, partition: u32) {
        if let Some(gauge) = self.gauge(partition) {
            gauge.epoch.store(0, Ordering::Relaxed);
        }
    }

    /// A round: read and decided through these positions, with these many events and
    /// decisions.
    pub(crate) fn worked(
        &self,
        partition: u32,
        read: u64,
        decided: u64,
        events: u64,
        decisions: u64,
    ) {
        if let Some(gauge) = self.gauge(partition) {
            gauge.read_through.store(read, Ordering::Relaxed);
            gauge.decided_through.store(decided, Ordering::Relaxed);
            gauge.events.fetch_add(events, Ordering::Relaxed);
            gauge.decisions.fetch_add(decisions, Ordering::Relaxed);
        }
    }

    /// Decisions stored through `position`.
    pub(crate) fn stored(&self, partition: u32, position: u64) {
        if let Some(gauge) = self.gauge(partition) {
            gauge.stored_through.fetch_max(position, Ordering::Relaxed);
        }
    }

    /// Log and checkpoints stored, and the stream acknowledged, through `position`.
    pub(crate) fn logged(&self, partition: u32, position: u64) {
        if let Some(gauge) = self.gauge(partition) {
            gauge.logged_through.fetch_max(position, Ordering::Relaxed);
        }
    }

    /// Every partition's figures, by index.
    pub fn read(&self) -> Vec<GaugeReading> {
        (self.gauges.iter().zip(0u32..))
            .map(|(gauge, partition)| GaugeReading {
                partition,
                epoch: gauge.epoch.load(Ordering::Relaxed),
                read_through: gauge.read_through.load(Ordering::Relaxed),
                decided_through: gauge.decided_through.load(Ordering::Relaxed),
                stored_through: gauge.stored_through.load(Ordering::Relaxed),
                logged_through: gauge.logged_through.load(Ordering::Relaxed),
                events: gauge.events.load(Ordering::Relaxed),
                decisions: gauge.decisions.load(Ordering::Relaxed),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::{GaugeReading, PartitionGauges};

    #[test]
    fn a_partition_taken_again_starts_its_figures_again_and_one_dropped_shows_no_epoch() {
        let gauges = PartitionGauges::new(2);
        gauges.taken(1, 3);
        gauges.worked(1, 40, 38, 20, 2);
        gauges.worked(1, 50, 50, 5, 1);
        gauges.stored(1, 50);
        gauges.stored(1, 38);
        gauges.logged(1, 38);
        gauges.worked(7, 1, 1, 1, 1);
        let expected = GaugeReading {
            partition: 1,
            epoch: 3,
            read_through: 50,
            decided_through: 50,
            stored_through: 50,
            logged_through: 38,
            events: 25,
            decisions: 3,
        };
        assert_eq!(gauges.read(), [GaugeReading::default(), expected]);
        gauges.dropped(1);
        assert_eq!(gauges.read()[1].epoch, 0);
        gauges.taken(1, 4);
        let again = GaugeReading {
            partition: 1,
            epoch: 4,
            ..GaugeReading::default()
        };
        assert_eq!(gauges.read()[1], again);
    }
}
