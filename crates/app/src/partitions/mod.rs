//! The risk engine partitioned by account across processes (docs/design/partitioning.md,
//! "How the service runs it"): each process holds leases on some partitions (`leases`), and
//! works each one it holds (`runner`) with the exactness rules (`queues`), reading the event
//! stream and exchanging facts and progress on the fact bus; the partitions at work answer the
//! process's views of the shared state (`views`). The ports: [`LeaseStore`] (the
//! database), [`EventSource`] and [`FactBus`] (NATS JetStream in the server).

mod committer;
mod gauges;
pub mod layout;
mod leases;
mod queues;
mod runner;
mod seal;
mod views;

pub use gauges::{GaugeReading, PartitionGauges};
pub use layout::Layout;
pub use leases::{Leases, Tick};
pub use queues::{CONTROL_HORIZON_MS, Control, InForce, Queues, Stepped};
pub use seal::{ControlMessage, ControlSeal};
pub use views::{PartitionViews, Registration, ViewRequest};

use crate::error::{AppError, AppResult};
use crate::ports::{Clock, EventSource, FactBus, Store};
use crate::risk::Risk;
use portcullis_engine::Policy;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// How the partitions are run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionSettings {
    /// `N`: an account's partition is `FNV-1a-32(account) mod N`.
    pub partitions: u32,
    /// A lease lapses this long after its last renewal (renewed every third of it).
    pub lease_ms: i64,
    /// The configured policy's text (the published version in force wins).
    pub policy_text: String,
    /// A partition checkpoints after this many of its own events (0: only every 10 s and
    /// when it hands its partition back).
    pub checkpoint_every_events: u64,
    /// The operator's confirmation of a change of `partitions`: the count the stored
    /// partitions were made with (`layout`).
    pub resize_from: Option<u32>,
}

impl PartitionSettings {
    /// How often leases are renewed (and a refused layout looked at again): a third of the
    /// lease, so two renewals can fail before it lapses.
    fn renew_every(&self) -> Duration {
        Duration::from_millis(u64::try_from(self.lease_ms / 3).unwrap_or(1).max(1))
    }
}

/// What a partition's work needs.
pub(crate) struct Context {
    pub store: Arc<dyn Store>,
    pub events: Arc<dyn EventSource>,
    pub bus: Arc<dyn FactBus>,
    pub risk: Risk,
    pub node: String,
    pub settings: PartitionSettings,
    pub gauges: Arc<PartitionGauges>,
    /// Opens the control subject's messages.
    pub seal: Arc<ControlSeal>,
    /// The layout this process runs; every commit checks it is still the stored one.
    pub layout: Layout,
}

impl Context {
    /// What a partition without a checkpoint starts with: the published policy version in
    /// force, else the configured one, and the stored overrides.
    async fn in_force(&self) -> AppResult<(Policy, InForce)> {
        let (policy, publication, version) =
            match crate::risk::published_policy(self.store.as_ref()).await? {
                Some((published, in_force)) => (published, in_force.publication, in_force.version),
                None => {
                    let configured = Policy::parse(&self.settings.policy_text)
                        .map_err(|e| AppError::Internal(format!("risk policy refused: {e}")))?;
                    (configured, 0, None)
                }
            };
        let overrides = crate::guard::engine_overrides(&self.store.overrides().await?);
        let in_force = InForce::new(publication, version, &policy, overrides);
        Ok((policy, in_force))
    }
}

/// How a partition's work reports a failure of its stream, bus or acknowledgements.
fn failure(partition: u32) -> impl Fn(String) -> AppError + Copy {
    move |e| AppError::Internal(format!("partition {partition}: {e}"))
}

/// A partition at work here.
struct Working {
    hand_back: watch::Sender<bool>,
    handle: JoinHandle<AppResult<()>>,
}

/// What the partitions run on.
pub struct PartitionPorts {
    pub store: Arc<dyn Store>,
    pub clock: Arc<dyn Clock>,
    /// Where what confirmations mark goes for the guard to hold (`Risk::take_propagations`).
    pub risk: Risk,
    pub events: Arc<dyn EventSource>,
    pub bus: Arc<dyn FactBus>,
    /// Where the partitions' figures go, for `/metrics`.
    pub gauges: Arc<PartitionGauges>,
    /// Opens the control subject's messages (the keyring's control keys).
    pub seal: Arc<ControlSeal>,
}

impl std::fmt::Debug for PartitionPorts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PartitionPorts")
    }
}

/// Holds leases and works the partitions it holds, until `stop` turns true. Runs no partition
/// while the layout stored is not one of `settings.partitions` (`layout::settle`), and stops
/// every partition when the layout changes under it.
pub async fn serve(
    ports: PartitionPorts,
    node: String,
    settings: PartitionSettings,
    mut stop: watch::Receiver<bool>,
) {
    let every = settings.renew_every();
    let mut refused = String::new();
    loop {
        let settled = layout::settle(
            ports.store.as_ref(),
            settings.partitions,
            settings.resize_from,
        )
        .await;
        match settled {
            Ok(layout) => {
                refused.clear();
                tracing::info!(?layout, "partition layout");
                if run_layout(&ports, &node, &settings, layout, &mut stop).await {
                    return;
                }
            }
            Err(error) => {
                let said = match error {
                    AppError::Conflict(said) => said,
                    other => format!("{other:?}"),
                };
                if said != refused {
                    tracing::error!(error = %said, "partitions not run");
                    refused = said;
                }
            }
        }
        tokio::select! {
            _ = stop.changed() => return,
            () = tokio::time::sleep(every) => {}
        }
    }
}

/// Works partitions in `layout` until `stop` turns true (then `true`) or the stored layout
/// moves (then every partition stops and every lease is let go: `false`).
async fn run_layout(
    ports: &PartitionPorts,
    node: &str,
    settings: &PartitionSettings,
    layout: Layout,
    stop: &mut watch::Receiver<bool>,
) -> bool {
    let lease_store: Arc<dyn crate::ports::LeaseStore> = ports.store.clone();
    let mut leases = Leases::new(
        lease_store,
        ports.clock.clone(),
        node.to_owned(),
        settings.partitions,
        settings.lease_ms,
    );
    let every = settings.renew_every();
    let ctx = Arc::new(Context {
        store: ports.store.clone(),
        events: ports.events.clone(),
        bus: ports.bus.clone(),
        risk: ports.risk.clone(),
        node: node.to_owned(),
        settings: settings.clone(),
        gauges: ports.gauges.clone(),
        layout,
        seal: ports.seal.clone(),
    });
    let mut working: BTreeMap<u32, Working> = BTreeMap::new();
    let stopped = loop {
        match layout::check(ctx.store.as_ref(), layout).await {
            Ok(()) => {}
            Err(AppError::Conflict(error)) => {
                tracing::error!(%error, "the partition layout changed; every partition stops");
                for (partition, work) in std::mem::take(&mut working) {
                    work.handle.abort();
                    ctx.gauges.dropped(partition);
                }
                break false;
            }
            // Not read now: the commits check it anyway.
            Err(error) => tracing::warn!(?error, "partition layout not read"),
        }
        match leases.tick().await {
            Ok(tick) => apply_tick(&ctx, &mut working, tick),
            Err(error) => tracing::warn!(%error, "partition leases not renewed"),
        }
        finish_ended(&ctx, &mut leases, &mut working).await;
        tokio::select! {
            _ = stop.changed() => break true,
            () = tokio::time::sleep(every) => {}
        }
    };
    // Shutting down: every partition checkpoints and its lease is let go.
    for (_, work) in std::mem::take(&mut working) {
        let _ = work.hand_back.send(true);
        let _ = work.handle.await;
    }
    if let Err(error) = leases.leave().await {
        tracing::warn!(%error, "partition leases not let go; they lapse in their time");
    }
    stopped
}

/// Starts the partitions taken, stops those lost (at once: nothing of theirs can be stored any
/// more) and asks those beyond the fair share to hand back.
fn apply_tick(ctx: &Arc<Context>, working: &mut BTreeMap<u32, Working>, tick: Tick) {
    for partition in tick.lost {
        if let Some(work) = working.remove(&partition) {
            tracing::warn!(partition, "partition lease lost; its work stops");
            work.handle.abort();
        }
        ctx.gauges.dropped(partition);
    }
    for partition in tick.surplus {
        if let Some(work) = working.get(&partition) {
            let _ = work.hand_back.send(true);
        }
    }
    for (partition, epoch) in tick.acquired {
        let (hand_back, handed) = watch::channel(false);
        ctx.gauges.taken(partition, epoch);
        let ctx = ctx.clone();
        let handle = tokio::spawn(async move { runner::run(ctx, partition, epoch, handed).await });
        working.insert(partition, Working { hand_back, handle });
    }
}

/// Lets go of the leases of partitions whose work ended (handed back, or failed: then another
/// process, or this one on a later tick, takes it again from its checkpoint).
async fn finish_ended(ctx: &Context, leases: &mut Leases, working: &mut BTreeMap<u32, Working>) {
    let ended: Vec<u32> = (working.iter())
        .filter(|(_, work)| work.handle.is_finished())
        .map(|(partition, _)| *partition)
        .collect();
    for partition in ended {
        if let Some(work) = working.remove(&partition) {
            match work.handle.await {
                Ok(Ok(())) => {}
                Ok(Err(error)) => tracing::warn!(partition, %error, "partition work stopped"),
                Err(error) => tracing::warn!(partition, %error, "partition work ended"),
            }
        }
        ctx.gauges.dropped(partition);
        if let Err(error) = leases.release(partition).await {
            tracing::warn!(partition, %error, "partition lease not released");
        }
    }
}
