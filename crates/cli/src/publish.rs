//! `portcullis publish FILE`: a contract file onto the JetStream event stream, each event on
//! its account's partition subject (`<prefix>.<FNV-1a-32(account) mod N>`, or `<prefix>.global`
//! for the facts every engine needs: `portcullis_core::partition`) with `Nats-Msg-Id` set to the
//! event id, so the stream drops an event published twice. Lines that are not events of the
//! contract are reported by number and skipped. Publishes are pipelined and every one is
//! waited for until the stream has acknowledged it: when the command ends, what it counts as
//! published is stored.

use crate::args::PublishArgs;
use anyhow::{Context as _, bail};
use async_nats::jetstream::context::{PublishAckFuture, PublishErrorKind};
use async_nats::jetstream::{self, message::PublishMessage};
use portcullis_core::contract::parse_line;
use portcullis_core::partition::subject_suffix;
use portcullis_core::redact::redact_url_credentials;
use std::collections::VecDeque;
use std::io::{BufReader, Write as _};
use std::process::ExitCode;
use std::time::Instant;

/// Publishes in flight (sent, acknowledgement not yet read) at most.
const IN_FLIGHT: usize = 512;
/// Refused lines are listed one by one up to this many; the rest are only counted.
const LISTED_ERRORS: u64 = 100;

/// What a run did.
#[derive(Debug, Default)]
struct Counts {
    lines: u64,
    published: u64,
    /// Acknowledged as already in the stream (its id was published before).
    duplicates: u64,
    refused: u64,
}

pub async fn run(args: &PublishArgs, nats_url: &str) -> anyhow::Result<ExitCode> {
    let shown_url = redact_url_credentials(nats_url);
    let client = async_nats::connect(nats_url)
        .await
        .with_context(|| format!("connecting to NATS at {shown_url}"))?;
    let context = jetstream::new(client);
    let input = std::fs::File::open(&args.file)
        .with_context(|| format!("opening {}", args.file.display()))?;
    let progress = crate::replay::progress_bar(input.metadata().map(|m| m.len()).unwrap_or(0), 0);
    let mut stderr = std::io::stderr().lock();
    let mut counts = Counts::default();
    let mut waiting: VecDeque<PublishAckFuture> = VecDeque::with_capacity(IN_FLIGHT);
    let (started, mut bytes) = (Instant::now(), 0u64);
    let mut reader = BufReader::with_capacity(1 << 20, input);
    let mut line = String::new();
    while let Some(read) = crate::replay::next_line(&mut reader, &mut line, counts.lines)? {
        counts.lines += 1;
        bytes += read;
        if counts.lines % 4_096 == 0 {
            progress.set_position(bytes);
        }
        let text = line.trim_end_matches(['\n', '\r']);
        if text.trim().is_empty() {
            continue;
        }
        let event = match parse_line(text) {
            Ok(event) => event,
            Err(reason) => {
                counts.refused += 1;
                if counts.refused <= LISTED_ERRORS {
                    progress.suspend(|| writeln!(stderr, "line {}: {reason}", counts.lines))?;
                }
                continue;
            }
        };
        let subject = format!(
            "{}.{}",
            args.subject_prefix,
            subject_suffix(&event, args.partitions)
        );
        let message = PublishMessage::build()
            .payload(text.to_owned().into())
            .message_id(event.id.as_str());
        let pending = context
            .send_publish(subject, message)
            .await
            .map_err(|e| publish_error(&e, &args.subject_prefix))?;
        waiting.push_back(pending);
        if waiting.len() >= IN_FLIGHT {
            acknowledged(waiting.pop_front(), &mut counts, &args.subject_prefix).await?;
        }
    }
    while let Some(pending) = waiting.pop_front() {
        acknowledged(Some(pending), &mut counts, &args.subject_prefix).await?;
    }
    progress.finish_and_clear();
    let elapsed = started.elapsed().as_secs_f64().max(1e-9);
    writeln!(
        stderr,
        "published {} events to {shown_url} ({} already in the stream, {} lines refused) over {} partitions in {elapsed:.2} s, {:.0} events/s",
        counts.published,
        counts.duplicates,
        counts.refused,
        args.partitions,
        (counts.published + counts.duplicates) as f64 / elapsed,
    )?;
    Ok(ExitCode::SUCCESS)
}

/// Waits for one publish's acknowledgement and counts it.
async fn acknowledged(
    pending: Option<PublishAckFuture>,
    counts: &mut Counts,
    prefix: &str,
) -> anyhow::Result<()> {
    let Some(pending) = pending else {
        return Ok(());
    };
    let ack = pending.await.map_err(|e| publish_error(&e, prefix))?;
    if ack.duplicate {
        counts.duplicates += 1;
    } else {
        counts.published += 1;
    }
    Ok(())
}

/// A failed publish, said with what to do when it is the usual cause.
fn publish_error(
    error: &async_nats::jetstream::context::PublishError,
    prefix: &str,
) -> anyhow::Error {
    if error.kind() == PublishErrorKind::StreamNotFound {
        return anyhow::anyhow!(
            "no JetStream stream takes `{prefix}.*`: create one (for example `nats stream add PORTCULLIS_EVENTS --subjects '{prefix}.>'`), or start `portcullis serve` with nats_url set, which creates it"
        );
    }
    anyhow::anyhow!("publishing to NATS: {error}")
}

/// Refuses a prefix that is not a NATS subject of literal tokens.
pub fn check_prefix(prefix: &str) -> anyhow::Result<()> {
    let fine = !prefix.is_empty()
        && prefix.split('.').all(|token| {
            !token.is_empty()
                && token
                    .bytes()
                    .all(|b| b.is_ascii_graphic() && !matches!(b, b'*' | b'>'))
        });
    if !fine {
        bail!(
            "--subject-prefix must be dot-separated literal tokens (no spaces, `*` or `>`), e.g. portcullis.events"
        );
    }
    Ok(())
}
