//! `portcullis decisions export`: every stored decision as the contract's decision lines
//! (`{"event_id","decision","score","reasons"}`, written by the engine's own serialiser, so a
//! file compares byte for byte with `portcullis replay`'s), read from the API a page at a time
//! (`GET /v1/decisions`), like every other command: from the local store or a running server.
//!
//! In log order by default; with `--events FILE`, in the order of that file's events, saying
//! how many stored decisions it leaves out and which of its events that ask for a decision
//! have none.

use crate::args::ExportArgs;
use crate::requests::ApiRequest;
use crate::transport::{Api, refusal_exits_1};
use anyhow::Context as _;
use portcullis_core::contract::parse_line;
use portcullis_engine::{Decision, Verdict};
use std::collections::{HashMap, HashSet};
use std::io::{BufRead as _, BufReader, BufWriter, Write as _};
use std::process::ExitCode;

/// Events without a decision are named up to this many; the rest are counted.
const NAMED: usize = 5;

pub async fn run(api: &Api, args: &ExportArgs) -> anyhow::Result<ExitCode> {
    refusal_exits_1("reading the decisions", export(api, args).await)
}

async fn export(api: &Api, args: &ExportArgs) -> anyhow::Result<ExitCode> {
    let output = std::fs::File::create(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    let mut writer = BufWriter::new(output);
    let mut stderr = std::io::stderr().lock();
    let Some(events) = &args.events else {
        let mut written = 0u64;
        each_page(api, args.page, |page| {
            for (_, line) in page {
                writeln!(writer, "{line}")?;
                written += 1;
            }
            Ok(())
        })
        .await?;
        writer.flush()?;
        writeln!(stderr, "exported {written} decisions in event-log order")?;
        return Ok(ExitCode::SUCCESS);
    };
    let mut stored: HashMap<String, String> = HashMap::new();
    each_page(api, args.page, |page| {
        stored.extend(page);
        Ok(())
    })
    .await?;
    let total = stored.len();
    let order = in_file_order(events, &mut stored, &mut writer)?;
    writer.flush()?;
    writeln!(
        stderr,
        "exported {} decisions in the order of {}; {} stored decisions are for events not in it",
        total - stored.len(),
        events.display(),
        stored.len()
    )?;
    if order.refused > 0 {
        writeln!(
            stderr,
            "{} lines of {} are not events (first: line {})",
            order.refused,
            events.display(),
            order.first_refused
        )?;
    }
    if order.undecided > 0 {
        writeln!(
            stderr,
            "{} events that ask for a decision have none stored (first: {})",
            order.undecided,
            order.named.join(", ")
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

/// What writing in a file's order found.
#[derive(Debug, Default)]
struct FileOrder {
    /// Lines that are not events of the contract, and the first of them.
    refused: u64,
    first_refused: u64,
    /// Events asking for a decision with none stored, and the first few ids.
    undecided: u64,
    named: Vec<String>,
}

/// Writes the decisions of `events`' events in its order, taking each out of `stored` (an
/// event given twice is written once, like the engine decides it once).
fn in_file_order(
    events: &std::path::Path,
    stored: &mut HashMap<String, String>,
    writer: &mut impl std::io::Write,
) -> anyhow::Result<FileOrder> {
    let file =
        std::fs::File::open(events).with_context(|| format!("opening {}", events.display()))?;
    let mut found = FileOrder::default();
    let mut seen: HashSet<String> = HashSet::new();
    for (index, line) in BufReader::with_capacity(1 << 20, file).lines().enumerate() {
        let line = line.with_context(|| format!("reading line {}", index + 1))?;
        if line.trim().is_empty() {
            continue;
        }
        let Ok(event) = parse_line(&line) else {
            found.refused += 1;
            if found.refused == 1 {
                found.first_refused = index as u64 + 1;
            }
            continue;
        };
        if let Some(decision) = stored.remove(&event.id) {
            writeln!(writer, "{decision}")?;
            seen.insert(event.id);
        } else if event.body.asks_for_decision() && seen.insert(event.id.clone()) {
            found.undecided += 1;
            if found.named.len() < NAMED {
                found.named.push(event.id);
            }
        }
    }
    Ok(found)
}

/// Reads every stored decision, a page at a time in log order, as (event id, decision line).
async fn each_page(
    api: &Api,
    page_size: u32,
    mut take: impl FnMut(Vec<(String, String)>) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let mut after = 0i64;
    loop {
        let request = ApiRequest::get(format!("/v1/decisions?after={after}&limit={page_size}"));
        let body = api.call(&request).await?;
        let items = body
            .as_array()
            .context("the decisions page is not a list")?;
        let Some(last) = items.last() else {
            return Ok(());
        };
        after = last["seq"]
            .as_i64()
            .context("a decision without its `seq`")?;
        let page = items.iter().map(line).collect::<anyhow::Result<Vec<_>>>()?;
        take(page)?;
    }
}

/// One listed decision as the contract's line.
fn line(item: &serde_json::Value) -> anyhow::Result<(String, String)> {
    let event_id = item["event_id"]
        .as_str()
        .context("a decision without its event")?;
    let verdict = item["decision"].as_str().and_then(Verdict::parse);
    let decision = Decision {
        event_id: event_id.to_owned(),
        decision: verdict.with_context(|| format!("decision of {event_id}: unknown verdict"))?,
        score: item["score"]
            .as_u64()
            .and_then(|s| u8::try_from(s).ok())
            .with_context(|| format!("decision of {event_id}: score out of range"))?,
        reasons: serde_json::from_value(item["reasons"].clone())
            .with_context(|| format!("decision of {event_id}: reasons"))?,
    };
    Ok((event_id.to_owned(), decision.to_json_line()))
}
