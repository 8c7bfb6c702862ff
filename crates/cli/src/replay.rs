//! `portcullis replay`: a file of events through a fresh engine, decisions out in input order,
//! a summary at the end. Identical input gives identical output on any machine: the engine
//! reads only the events' own times. With `--partitions N` (more than one) the events go
//! through `N` partitions of the engine (`portcullis_engine::partitioned::Replay`) a batch at a
//! time, with the same output.

use crate::args::ReplayArgs;
use anyhow::Context as _;
use portcullis_core::contract::{ContractEvent, EventBuffer, parse_line};
use portcullis_engine::partitioned::{Replay, Schedule};
use portcullis_engine::{Engine, EngineStats, Outcome, Policy, Verdict};
use std::io::{BufRead, BufWriter, IsTerminal as _, Read, Write as _};
use std::process::ExitCode;
use std::time::Instant;

/// Files larger than this show a progress bar (on a terminal).
const PROGRESS_ABOVE_BYTES: u64 = 8 * 1024 * 1024;
/// Refused lines are listed one by one up to this many; the rest are only counted.
const LISTED_ERRORS: u64 = 100;
/// Events handed to the partitions at a time.
const PARTITIONED_BATCH: usize = 65_536;

/// One engine, or the partitioned replay with the events it has not run yet.
enum Engines {
    One(Box<Engine>),
    Partitioned(Box<Replay>, Vec<ContractEvent>),
}

impl Engines {
    /// Takes one line; writes the decisions of what it ran. The outer error is the output's,
    /// the inner one the line's refusal. One engine reads each line into `buffer` (reusing its
    /// strings: the event is applied before the next line is read); partitions keep a batch
    /// of owned events.
    fn take(
        &mut self,
        line: &str,
        buffer: &mut EventBuffer,
        out: &mut impl std::io::Write,
    ) -> anyhow::Result<Result<(), String>> {
        match self {
            Engines::One(engine) => match buffer.parse(line) {
                Ok(event) => write_decision(out, engine.process(event)).map(Ok),
                Err(reason) => Ok(Err(reason)),
            },
            Engines::Partitioned(_, batch) => {
                match parse_line(line) {
                    Ok(event) => batch.push(event),
                    Err(reason) => return Ok(Err(reason)),
                }
                if batch.len() >= PARTITIONED_BATCH {
                    self.flush(out)?;
                }
                Ok(Ok(()))
            }
        }
    }

    /// Runs the events held back, if any.
    fn flush(&mut self, out: &mut impl std::io::Write) -> anyhow::Result<()> {
        if let Engines::Partitioned(replay, batch) = self {
            for outcome in replay.run(batch) {
                write_decision(out, outcome)?;
            }
            batch.clear();
        }
        Ok(())
    }

    fn stats(&self) -> EngineStats {
        match self {
            Engines::One(engine) => engine.stats().clone(),
            Engines::Partitioned(replay, _) => replay.stats(),
        }
    }

    fn tracked_accounts(&self) -> usize {
        match self {
            Engines::One(engine) => engine.tracked_accounts(),
            Engines::Partitioned(replay, _) => replay.tracked_accounts(),
        }
    }
}

fn write_decision(out: &mut impl std::io::Write, outcome: Outcome) -> anyhow::Result<()> {
    if let Outcome::Decided(decision, _) = outcome {
        writeln!(out, "{}", decision.to_json_line())?;
    }
    Ok(())
}

fn read_policy(path: Option<&std::path::Path>) -> anyhow::Result<Policy> {
    Ok(match path {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            Policy::parse(&text).with_context(|| format!("policy {}", path.display()))?
        }
        None => Policy::default_policy()?,
    })
}

pub fn run(args: &ReplayArgs) -> anyhow::Result<ExitCode> {
    let policy = read_policy(args.policy.as_deref())?;
    let mut engines = if args.partitions > 1 {
        // Each partition has a policy of its own, read the same way.
        let replay = Replay::new(args.partitions, Schedule::InOrder, || {
            read_policy(args.policy.as_deref())
        })?;
        Engines::Partitioned(Box::new(replay), Vec::with_capacity(PARTITIONED_BATCH))
    } else {
        Engines::One(Box::new(Engine::new(policy)))
    };
    let input = std::fs::File::open(&args.events)
        .with_context(|| format!("opening {}", args.events.display()))?;
    let size = input.metadata().map(|m| m.len()).unwrap_or(0);
    let output = std::fs::File::create(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    let mut writer = BufWriter::new(output);
    let progress = progress_bar(size, PROGRESS_ABOVE_BYTES);
    let mut stderr = std::io::stderr().lock();
    let (mut refused, mut lines, mut bytes) = (0u64, 0u64, 0u64);
    let started = Instant::now();
    let mut reader = Lines::new(input, 1 << 20);
    let mut buffer = EventBuffer::default();
    while let Some(line) = reader.next_line()? {
        lines += 1;
        bytes += line.len() as u64;
        if lines % 65_536 == 0 {
            progress.set_position(bytes);
        }
        let text = line.trim_end_matches(['\n', '\r']);
        if text.trim().is_empty() {
            continue;
        }
        match engines.take(text, &mut buffer, &mut writer)? {
            Ok(()) => {}
            Err(reason) => {
                refused += 1;
                if refused <= LISTED_ERRORS {
                    writeln!(stderr, "line {lines}: {reason}")?;
                }
            }
        }
    }
    engines.flush(&mut writer)?;
    writer.flush()?;
    progress.finish_and_clear();
    let elapsed = started.elapsed().as_secs_f64().max(1e-9);
    let stats = engines.stats();
    let count = |v: Verdict| stats.decisions.get(v.as_str()).copied().unwrap_or(0);
    writeln!(
        stderr,
        "replayed {} events ({} duplicates ignored, {} late events ignored, {refused} lines refused) in {elapsed:.2} s, {:.0} events/s; \
         decisions: {} allow, {} challenge, {} hold, {} block; changes closed: {} applied, {} cancelled, {} unmatched; {} accounts tracked",
        stats.events,
        stats.duplicates,
        stats.late,
        stats.events as f64 / elapsed,
        count(Verdict::Allow),
        count(Verdict::Challenge),
        count(Verdict::Hold),
        count(Verdict::Block),
        stats.changes_applied,
        stats.changes_cancelled,
        stats.changes_unmatched,
        engines.tracked_accounts(),
    )?;
    if let Engines::Partitioned(replay, _) = &engines {
        writeln!(
            stderr,
            "{} partitions; {} facts handed out ({:.1}% of the events applied)",
            replay.partitions().len(),
            replay.facts(),
            100.0 * replay.facts() as f64 / stats.events.max(1) as f64,
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Reads the next line into `line` (cleared first): its length in bytes, `None` at the end.
/// `before` is the number of lines read so far (for the error). A line that is not UTF-8 is
/// an error, as `BufRead::read_line` has it. The end of the line is found with the `memchr`
/// crate's vectorised search: the standard library's `read_line` searches a word at a time,
/// about 300 instructions for a line of 220 bytes, a sixth of what the engine spends on an
/// event that decides nothing (2026-12-07, branch `speed2`).
pub(crate) fn next_line(
    reader: &mut impl BufRead,
    line: &mut String,
    before: u64,
) -> anyhow::Result<Option<u64>> {
    let context = || format!("reading line {}", before + 1);
    let mut bytes = std::mem::take(line).into_bytes();
    bytes.clear();
    loop {
        let buffer = match reader.fill_buf() {
            Ok(buffer) => buffer,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e).with_context(context),
        };
        let (taken, ended) = match memchr::memchr(b'\n', buffer) {
            Some(at) => (at + 1, true),
            None => (buffer.len(), buffer.is_empty()),
        };
        bytes.extend_from_slice(&buffer[..taken]);
        reader.consume(taken);
        if ended {
            break;
        }
    }
    let read = bytes.len() as u64;
    *line = String::from_utf8(bytes)
        .map_err(|_| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "stream did not contain valid UTF-8",
            )
        })
        .with_context(context)?;
    Ok((read > 0).then_some(read))
}

/// The lines of a file, each handed out in place in one buffer, where `next_line` below
/// copies each line out of a `BufReader` into a string: 46 instructions an event fewer on the
/// replay bench's feed (the copy saved, less a dearer UTF-8 check of a line that starts at any
/// alignment; 2026-12-07, branch `speed4`). What is read is the same: each line with its end,
/// the last one without when the file has none, a line that is not UTF-8 an error.
pub(crate) struct Lines<R> {
    reader: R,
    buffer: Vec<u8>,
    /// The bytes not handed out yet are `buffer[start..end]`.
    start: usize,
    end: usize,
    lines: u64,
}

impl<R: Read> Lines<R> {
    /// Reads `reader` `capacity` bytes at a time (more for a longer line).
    pub(crate) fn new(reader: R, capacity: usize) -> Self {
        Self {
            reader,
            buffer: vec![0; capacity.max(1)],
            start: 0,
            end: 0,
            lines: 0,
        }
    }

    /// The next line with its end; `None` at the end of the file.
    pub(crate) fn next_line(&mut self) -> anyhow::Result<Option<&str>> {
        let number = self.lines + 1;
        let context = || format!("reading line {number}");
        let mut searched = self.start;
        let end = loop {
            if let Some(at) = memchr::memchr(b'\n', &self.buffer[searched..self.end]) {
                break searched + at + 1;
            }
            // Move the start of the line to the front, make room, read on.
            self.buffer.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
            searched = self.end;
            if self.end == self.buffer.len() {
                self.buffer.resize(self.buffer.len() * 2, 0);
            }
            let read = loop {
                match self.reader.read(&mut self.buffer[self.end..]) {
                    Ok(read) => break read,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(e).with_context(context),
                }
            };
            if read == 0 {
                break self.end;
            }
            self.end += read;
        };
        let line = &self.buffer[self.start..end];
        self.start = end;
        if line.is_empty() {
            return Ok(None);
        }
        self.lines = number;
        std::str::from_utf8(line)
            .map(Some)
            .map_err(|_| {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    "stream did not contain valid UTF-8",
                )
            })
            .with_context(context)
    }
}

/// A progress bar over `size` bytes on a terminal, for inputs of at least `shown_from` bytes;
/// hidden otherwise.
pub(crate) fn progress_bar(size: u64, shown_from: u64) -> indicatif::ProgressBar {
    if size < shown_from || !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(size);
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "{bar:40} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
    ) {
        bar.set_style(style);
    }
    bar
}

#[cfg(test)]
mod tests {
    use super::{Lines, next_line};
    use std::io::BufReader;

    #[test]
    fn lines_in_place_are_next_lines() {
        // Buffers of 1 to 6 bytes: lines straddle refills and outgrow the buffer.
        let text =
            "first line\r\n\nsecond, longer than the buffer\n\u{e9}t\u{e9}\nlast without an end";
        for capacity in 1..=6 {
            let mut lines = Lines::new(text.as_bytes(), capacity);
            let mut read = Vec::new();
            while let Some(line) = lines.next_line().unwrap() {
                read.push(line.to_owned());
            }
            let expected: Vec<&str> = text.split_inclusive('\n').collect();
            assert_eq!(read, expected);
            assert_eq!(lines.next_line().unwrap(), None);
        }
        let bad: &[u8] = b"ok\n\xff\xfe\nafter\n";
        let mut lines = Lines::new(bad, 4);
        assert_eq!(lines.next_line().unwrap(), Some("ok\n"));
        let error = lines.next_line().unwrap_err();
        assert_eq!(error.to_string(), "reading line 2");
        assert_eq!(
            error.root_cause().to_string(),
            "stream did not contain valid UTF-8"
        );
    }

    #[test]
    fn lines_are_read_whole_across_the_buffer_and_a_bad_one_is_an_error() {
        // A buffer of 4 bytes: every line but the empty one straddles a refill.
        let text = "first line\r\n\nsecond, longer than the buffer\nlast without an end";
        let mut reader = BufReader::with_capacity(4, text.as_bytes());
        let (mut line, mut lines) = (String::new(), Vec::new());
        while let Some(read) = next_line(&mut reader, &mut line, 0).unwrap() {
            assert_eq!(read, line.len() as u64);
            lines.push(line.clone());
        }
        let expected: Vec<&str> = text.split_inclusive('\n').collect();
        assert_eq!(lines, expected);
        let bad: &[u8] = b"ok\n\xff\xfe\nafter\n";
        let mut reader = BufReader::with_capacity(4, bad);
        assert_eq!(next_line(&mut reader, &mut line, 0).unwrap(), Some(3));
        let error = next_line(&mut reader, &mut line, 1).unwrap_err();
        assert_eq!(error.to_string(), "reading line 2");
    }
}
