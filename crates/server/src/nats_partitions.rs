//! The partitioned risk engine's NATS JetStream edge (`portcullis_app::partitions`): the event
//! stream as each partition reads it, and the fact bus.
//!
//! A partition reads the whole event stream with its durable pull consumer
//! (`<consumer>-p<partition>`, made again at every start at the partition's checkpoint):
//! nats-server 2.9 has no consumer on two subjects (its own and the global one), and one
//! reading in stream order is what makes "every event up to position `x` was read" a plain
//! fact. Other partitions' events are skipped by their subject, unparsed. Acknowledgements
//! are cumulative (`AckPolicy::All`). Operators' changes are on `<events prefix>.control`
//! (`portcullis_app::partitions::Control`), in the same stream so that they have a position.
//!
//! The fact bus is the stream `<stream>_FACTS` on `<facts prefix>.<partition>`: each message
//! is one partition's facts for a range of positions and the position it is complete through,
//! with `Nats-Msg-Id` = partition and range. Partitions read it with an ordered consumer.

use async_nats::jetstream::{self, consumer::AckPolicy, consumer::DeliverPolicy, consumer::pull};
use async_trait::async_trait;
use futures::StreamExt as _;
use portcullis_app::ports::{EventAcker, EventFeed, EventSource, FactBatch, FactBus, StreamEvent};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;

/// Runs this process's share of the partitions until `stop` turns true (connecting again
/// after a failure to reach NATS).
pub async fn serve(
    app: portcullis_app::Portcullis,
    nats: crate::nats::NatsSettings,
    config: crate::config::PartitionConfig,
    policy_text: String,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let prefix = nats
        .subject
        .strip_suffix(".>")
        .unwrap_or(&nats.subject)
        .to_owned();
    let streams = loop {
        match PartitionStreams::connect(&nats.url, &nats.stream, &prefix, &nats.consumer).await {
            Ok(streams) => break Arc::new(streams),
            Err(error) => {
                let error = portcullis_core::redact::redact_urls_in(&error);
                tracing::warn!(%error, "NATS streams of the partitions not reached; retrying in 1 s");
            }
        }
        tokio::select! {
            _ = stop.changed() => return,
            () = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    };
    // Set with the stream by `build`; without it no control message could be opened, so no
    // partition runs rather than one that ignores every operator's change.
    let Some(seal) = app.risk.control_seal() else {
        tracing::error!("the partitioned engine started without its event stream; not running");
        return;
    };
    let random = portcullis_app::random::bytes::<6>().unwrap_or_default();
    let random: String = random.iter().map(|b| format!("{b:02x}")).collect();
    let node = format!("{}-{random}", std::process::id());
    tracing::info!(%node, partitions = config.partitions, "running the partitioned risk engine");
    let ports = portcullis_app::partitions::PartitionPorts {
        store: app.store.clone(),
        clock: app.clock.clone(),
        risk: app.risk.clone(),
        events: streams.clone(),
        bus: streams,
        gauges: (app.risk.partition_gauges()).unwrap_or_else(|| {
            Arc::new(portcullis_app::partitions::PartitionGauges::new(
                config.partitions,
            ))
        }),
        seal,
    };
    portcullis_app::partitions::serve(
        ports,
        node,
        portcullis_app::partitions::PartitionSettings {
            partitions: config.partitions,
            lease_ms: i64::try_from(config.lease_ms).unwrap_or(i64::MAX),
            policy_text,
            checkpoint_every_events: config.checkpoint_every_events,
            resize_from: config.resize_from,
        },
        stop,
    )
    .await;
}

/// Stream messages handed over in one batch at most.
const BATCH: usize = 1_024;

/// Where the partitions' streams are.
#[derive(Debug, Clone)]
pub struct PartitionStreams {
    /// Where the streams are made, events published and the fact bus read and written.
    pub context: jetstream::Context,
    /// Each partition reads the event stream on a connection of its own (`open`): a reader
    /// receives the whole stream, and on a shared connection the facts' acknowledgements and
    /// the other partitions' progress would queue behind it.
    url: String,
    /// The event stream, on `<events_prefix>.>`.
    pub stream: String,
    pub events_prefix: String,
    pub facts_stream: String,
    pub facts_prefix: String,
    pub consumer: String,
}

impl PartitionStreams {
    /// Connects and makes sure both streams exist (created when they do not).
    pub async fn connect(
        url: &str,
        stream: &str,
        events_prefix: &str,
        consumer: &str,
    ) -> Result<Self, String> {
        let client = async_nats::connect(url).await.map_err(|e| e.to_string())?;
        let context = jetstream::new(client);
        let facts_prefix = match events_prefix.strip_suffix(".events") {
            Some(base) => format!("{base}.facts"),
            None => format!("{events_prefix}.facts"),
        };
        let streams = Self {
            context,
            url: url.to_owned(),
            stream: stream.to_owned(),
            events_prefix: events_prefix.to_owned(),
            facts_stream: format!("{stream}_FACTS"),
            facts_prefix,
            consumer: consumer.to_owned(),
        };
        for (name, prefix) in [
            (&streams.stream, &streams.events_prefix),
            (&streams.facts_stream, &streams.facts_prefix),
        ] {
            (streams.context)
                .get_or_create_stream(jetstream::stream::Config {
                    name: name.clone(),
                    subjects: vec![format!("{prefix}.>")],
                    ..Default::default()
                })
                .await
                .map_err(|e| format!("stream {name}: {e}"))?;
        }
        Ok(streams)
    }

    /// The fact-bus subject of `partition` (or a wildcard) in layout `generation`:
    /// `<facts prefix>.<p>` in the first (as before layouts), `<facts prefix>.g<generation>.<p>`
    /// after, so that each generation reads only its own partitions' facts and progress.
    fn facts_subject(&self, generation: i64, partition: &str) -> String {
        match generation {
            0 => format!("{}.{partition}", self.facts_prefix),
            generation => format!("{}.g{generation}.{partition}", self.facts_prefix),
        }
    }

    /// The control subject.
    fn control_subject(&self) -> String {
        format!("{}.control", self.events_prefix)
    }

    /// The partition a subject names (`None`: the global subject or another).
    fn subject_partition(&self, subject: &str) -> Option<u32> {
        let suffix = subject
            .strip_prefix(&self.events_prefix)?
            .strip_prefix('.')?;
        suffix.parse().ok()
    }
}

/// Acknowledges through a position: the last message of each batch is kept until then.
struct Acker {
    last_of_batch: Mutex<BTreeMap<u64, jetstream::Message>>,
}

#[async_trait]
impl EventAcker for Acker {
    async fn ack_through(&self, position: u64) -> Result<(), String> {
        let message = {
            let mut kept = self.last_of_batch.lock().map_err(|e| e.to_string())?;
            let later = kept.split_off(&(position + 1));
            let message = kept.pop_last().map(|(_, m)| m);
            *kept = later;
            message
        };
        match message {
            Some(message) => message.ack().await.map_err(|e| e.to_string()),
            None => Ok(()),
        }
    }
}

#[async_trait]
impl EventSource for PartitionStreams {
    async fn open(&self, partition: u32, generation: i64, from: u64) -> Result<EventFeed, String> {
        let client = async_nats::connect(&self.url)
            .await
            .map_err(|e| e.to_string())?;
        let context = jetstream::new(client);
        let mut stream = (context.get_stream(&self.stream).await).map_err(|e| e.to_string())?;
        // Events the stream dropped (limits, a purge) cannot be decided again: refuse rather
        // than go on without them.
        let held = stream
            .info()
            .await
            .map_err(|e| e.to_string())?
            .state
            .clone();
        if held.first_sequence > from.max(1) && held.last_sequence >= from.max(1) {
            return Err(format!(
                "the stream {} no longer holds position {from} (it starts at {}): the partition cannot be rebuilt",
                self.stream, held.first_sequence
            ));
        }
        let name = match generation {
            0 => format!("{}-p{partition}", self.consumer),
            generation => format!("{}-g{generation}-p{partition}", self.consumer),
        };
        // The checkpoint is the truth: whatever the old consumer acknowledged, start there.
        let _ = stream.delete_consumer(&name).await;
        let consumer = stream
            .create_consumer(pull::Config {
                durable_name: Some(name),
                deliver_policy: DeliverPolicy::ByStartSequence {
                    start_sequence: from.max(1),
                },
                ack_policy: AckPolicy::All,
                ack_wait: Duration::from_secs(600),
                max_ack_pending: 1_000_000,
                ..Default::default()
            })
            .await
            .map_err(|e| e.to_string())?;
        // Batches of a thousand: the reader receives every partition's events, most of them
        // skipped, so fewer pull round trips count.
        let messages = (consumer.stream().max_messages_per_batch(BATCH))
            .messages()
            .await
            .map_err(|e| e.to_string())?;
        let acker = Arc::new(Acker {
            last_of_batch: Mutex::new(BTreeMap::new()),
        });
        let (send, batches) = mpsc::channel(16);
        let (streams, kept) = (self.clone(), acker.clone());
        let control = self.control_subject();
        tokio::spawn(async move {
            let mut chunks = messages.ready_chunks(BATCH);
            while let Some(chunk) = chunks.next().await {
                let mut batch = Vec::with_capacity(chunk.len());
                let mut last = None;
                for message in chunk {
                    let Ok(message) = message else {
                        return;
                    };
                    let Ok(position) = message.info().map(|i| i.stream_sequence) else {
                        continue;
                    };
                    batch.push(StreamEvent {
                        position,
                        subject_partition: streams.subject_partition(&message.subject),
                        control: message.subject.as_str() == control,
                        body: message.payload.to_vec(),
                    });
                    last = Some((position, message));
                }
                if let (Some((position, message)), Ok(mut kept)) = (last, kept.last_of_batch.lock())
                {
                    kept.insert(position, message);
                }
                if send.send(batch).await.is_err() {
                    return;
                }
            }
        });
        Ok(EventFeed { batches, acker })
    }

    async fn publish(
        &self,
        events: Vec<(Option<u32>, String, String)>,
    ) -> Result<Vec<bool>, String> {
        let mut pending = Vec::with_capacity(events.len());
        for (partition, id, line) in events {
            let suffix = partition.map_or_else(|| "global".to_owned(), |p| p.to_string());
            let message = jetstream::message::PublishMessage::build()
                .payload(line.into())
                .message_id(id.as_str());
            let subject = format!("{}.{suffix}", self.events_prefix);
            pending.push(
                (self.context.send_publish(subject, message).await).map_err(|e| e.to_string())?,
            );
        }
        let mut duplicates = Vec::with_capacity(pending.len());
        for ack in pending {
            duplicates.push(ack.await.map_err(|e| e.to_string())?.duplicate);
        }
        Ok(duplicates)
    }

    async fn publish_control(&self, id: Option<&str>, body: Vec<u8>) -> Result<(), String> {
        let mut message = jetstream::message::PublishMessage::build().payload(body.into());
        if let Some(id) = id {
            message = message.message_id(id);
        }
        let ack = (self
            .context
            .send_publish(self.control_subject(), message)
            .await)
            .map_err(|e| e.to_string())?;
        ack.await.map(|_| ()).map_err(|e| e.to_string())
    }
}

#[async_trait]
impl FactBus for PartitionStreams {
    async fn read(
        &self,
        generation: i64,
        from_seq: u64,
    ) -> Result<mpsc::Receiver<FactBatch>, String> {
        let stream =
            (self.context.get_stream(&self.facts_stream).await).map_err(|e| e.to_string())?;
        let consumer = stream
            .create_consumer(pull::OrderedConfig {
                deliver_policy: DeliverPolicy::ByStartSequence {
                    start_sequence: from_seq.max(1),
                },
                filter_subject: self.facts_subject(generation, "*"),
                ..Default::default()
            })
            .await
            .map_err(|e| e.to_string())?;
        let mut messages = consumer.messages().await.map_err(|e| e.to_string())?;
        let (send, batches) = mpsc::channel(256);
        tokio::spawn(async move {
            while let Some(Ok(message)) = messages.next().await {
                let Ok(seq) = message.info().map(|i| i.stream_sequence) else {
                    continue;
                };
                let Some(batch) = decode(seq, &message.payload) else {
                    tracing::warn!(seq, "a fact-bus message does not read; skipped");
                    continue;
                };
                if send.send(batch).await.is_err() {
                    return;
                }
            }
        });
        Ok(batches)
    }

    async fn publish(&self, generation: i64, after: u64, batch: &FactBatch) -> Result<(), String> {
        let range = format!("{}:{after}:{}", batch.partition, batch.complete_through);
        let id = match generation {
            0 => range,
            generation => format!("g{generation}:{range}"),
        };
        let message = jetstream::message::PublishMessage::build()
            .payload(encode(batch).into())
            .message_id(id.as_str());
        let subject = self.facts_subject(generation, &batch.partition.to_string());
        let ack = (self.context.send_publish(subject, message).await).map_err(|e| e.to_string())?;
        ack.await.map(|_| ()).map_err(|e| e.to_string())
    }
}

/// A bus message: partition, complete through, then each fact with its length.
fn encode(batch: &FactBatch) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(12 + batch.facts.iter().map(|f| f.len() + 4).sum::<usize>());
    bytes.extend_from_slice(&batch.partition.to_le_bytes());
    bytes.extend_from_slice(&batch.complete_through.to_le_bytes());
    for fact in &batch.facts {
        // A fact is tens of bytes, and a message at most a megabyte.
        let len = u32::try_from(fact.len()).unwrap_or(u32::MAX);
        bytes.extend_from_slice(&len.to_le_bytes());
        bytes.extend_from_slice(fact);
    }
    bytes
}

fn decode(seq: u64, bytes: &[u8]) -> Option<FactBatch> {
    let (partition, body) = bytes.split_first_chunk::<4>()?;
    let (complete, mut body) = body.split_first_chunk::<8>()?;
    let mut facts = Vec::new();
    while !body.is_empty() {
        let (len, rest) = body.split_first_chunk::<4>()?;
        let len = u32::from_le_bytes(*len) as usize;
        facts.push(rest.get(..len)?.to_vec());
        body = rest.get(len..)?;
    }
    Some(FactBatch {
        seq,
        partition: u32::from_le_bytes(*partition),
        facts,
        complete_through: u64::from_le_bytes(*complete),
    })
}

#[cfg(test)]
mod tests {
    use super::{FactBatch, decode, encode};

    #[test]
    fn a_bus_message_reads_back_and_a_cut_one_does_not() {
        let batch = FactBatch {
            seq: 7,
            partition: 3,
            facts: vec![vec![1, 2, 3], vec![], vec![9; 70]],
            complete_through: 12_345,
        };
        let bytes = encode(&batch);
        assert_eq!(decode(7, &bytes), Some(batch));
        assert_eq!(decode(7, &bytes[..bytes.len() - 1]), None);
    }
}
