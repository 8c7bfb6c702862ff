//! `portcullis demo`: the whole product on one machine in a minute. A fresh embedded store in a
//! new directory, a simulated exchange's history up to now, the console and the API served,
//! two analysts' one-time passkey enrolment links, then the period's busiest stretch of scam
//! calls played live at accelerated event time, through the same use case as
//! `POST /v1/events`.

use crate::args::DemoArgs;
use anyhow::{Context as _, bail};
use portcullis_app::{Actor, Portcullis};
use portcullis_core::operator::Role;
use portcullis_core::time::UnixMillis;
use portcullis_engine::Verdict;
use portcullis_server::config::Config;
use portcullis_sim::Label;
use portcullis_sim::demo::{Demo, DemoSettings, LiveEvent};
use std::collections::HashMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// History goes to the engine in batches of this many events.
const HISTORY_BATCH: usize = 20_000;
/// How often the live part says where it is, in wall time.
const PROGRESS_EVERY: Duration = Duration::from_secs(10);

pub async fn run(
    args: &DemoArgs,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<ExitCode> {
    if !(1.0..=100_000.0).contains(&args.speed) {
        bail!("--speed must be between 1 and 100000 (got {})", args.speed);
    }
    let now = portcullis_app::ports::Clock::now(&portcullis_app::clock::SystemClock);
    let dir = fresh_dir(args.dir.as_deref(), now)?;
    let listener = tokio::net::TcpListener::bind(&args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let address = listener.local_addr()?;
    let settings = Config::load(None, demo_config(&dir, address))?.settle()?;
    let story = DemoSettings {
        accounts: args.accounts,
        days: args.days,
        seed: args.seed,
        live_hours: args.live_hours,
    };
    let demo =
        tokio::task::spawn_blocking(move || portcullis_sim::demo::demo(&story, now.0)).await??;
    say(&format!(
        "simulated {} accounts over {} days (seed {}): {} crews, {} victims; {} events of history, {} live ({} of them scams)",
        args.accounts,
        args.days,
        args.seed,
        demo.crews,
        demo.victims,
        demo.history.len(),
        demo.live.len(),
        demo.live_scams()
    ));
    let app = crate::start(&settings).await?;
    load_history(&app, &demo.history).await?;
    let public_url = settings.guard.public_url.clone();
    introduce(&app, &public_url, &dir).await?;
    let server = tokio::spawn(portcullis_server::serve(
        listener,
        app.clone(),
        settings,
        shutdown,
    ));
    let player = tokio::spawn(play_live(app, demo, args.speed, now));
    let served = server.await.context("the server task")?;
    player.abort();
    served?;
    Ok(ExitCode::SUCCESS)
}

/// A new directory for the demo's store and keyring: `--dir` when it is empty or missing
/// (nothing already there is ever touched), else a new one under the system's temp directory.
fn fresh_dir(asked: Option<&Path>, now: UnixMillis) -> anyhow::Result<PathBuf> {
    let dir = match asked {
        Some(dir) => dir.to_path_buf(),
        None => {
            std::env::temp_dir().join(format!("portcullis-demo-{}-{}", std::process::id(), now.0))
        }
    };
    if dir.exists()
        && std::fs::read_dir(&dir)
            .with_context(|| format!("reading {}", dir.display()))?
            .next()
            .is_some()
    {
        bail!(
            "{} is not empty: the demo starts from a fresh store and never touches existing data",
            dir.display()
        );
    }
    Ok(dir)
}

/// The demo's settings: only its own directory and address, nothing from the environment, so
/// that it can never open a real deployment's database.
fn demo_config(dir: &Path, address: std::net::SocketAddr) -> Vec<(String, String)> {
    let pairs = [
        ("PORTCULLIS_LISTEN", address.to_string()),
        ("PORTCULLIS_DATA_DIR", dir.display().to_string()),
        ("PORTCULLIS_EXCHANGE_NAME", "Demo Exchange".to_owned()),
    ];
    pairs
        .into_iter()
        .map(|(key, value)| (key.to_owned(), value))
        .collect()
}

async fn load_history(app: &Portcullis, history: &[String]) -> anyhow::Result<()> {
    let started = Instant::now();
    let mut tally = Tally::default();
    for batch in history.chunks(HISTORY_BATCH) {
        let report = app
            .risk
            .ingest(&Actor::local_cli(), &batch.join("\n"))
            .await?;
        if !report.rejected.is_empty() {
            bail!(
                "the simulated history has a bad line: {:?}",
                report.rejected[0]
            );
        }
        tally.count(&report.decisions, &HashMap::new());
    }
    say(&format!(
        "loaded the history in {:.1} s: {} decisions, {} held, {} blocked",
        started.elapsed().as_secs_f64(),
        tally.decisions,
        tally.held,
        tally.blocked
    ));
    Ok(())
}

/// Creates two analysts (a four-eyes action needs a second one) and prints where to go.
async fn introduce(app: &Portcullis, public_url: &str, dir: &Path) -> anyhow::Result<()> {
    let admin = Actor::local_cli();
    let mut lines = vec![
        String::new(),
        format!("the console:        {public_url}/console"),
        format!("the API (OpenAPI):  {public_url}/openapi.json"),
    ];
    for name in ["alice", "bob"] {
        let created = app.operators.create(&admin, name, Role::Analyst).await?;
        let link = app.console.enrolment_link(&admin, name).await?;
        lines.push(format!(
            "analyst {name}: enrol a passkey (single use) at {}",
            String::from_utf8_lossy(link.url.expose())
        ));
        if name == "alice" {
            lines.push(format!(
                "    alice's API token, for the CLI (--server {public_url} --token ...): {}",
                String::from_utf8_lossy(created.token.expose())
            ));
        }
    }
    lines.push(format!(
        "the demo's store is {}; delete it when done. Ctrl-C stops the demo.",
        dir.display()
    ));
    lines.push(String::new());
    say(&lines.join("\n"));
    Ok(())
}

/// Sends each live event when its moment comes, `speed` times faster than event time.
async fn play_live(app: Portcullis, demo: Demo, speed: f64, now: UnixMillis) {
    let truths: HashMap<String, Label> = demo
        .live
        .iter()
        .filter_map(|e| e.truth.map(|truth| (e.id.clone(), truth)))
        .collect();
    let started = Instant::now();
    let mut last_said = Instant::now();
    let mut tally = Tally::default();
    let mut rest: &[LiveEvent] = &demo.live;
    while !rest.is_empty() {
        let elapsed_ms = started.elapsed().as_secs_f64() * 1000.0 * speed;
        let due = rest
            .iter()
            .take_while(|e| (e.ts - now.0) as f64 <= elapsed_ms)
            .count();
        if due > 0 {
            let lines: Vec<&str> = rest[..due].iter().map(|e| e.line.as_str()).collect();
            match app
                .risk
                .ingest(&Actor::local_cli(), &lines.join("\n"))
                .await
            {
                Ok(report) => tally.count(&report.decisions, &truths),
                Err(error) => say(&format!("the live part could not send events: {error}")),
            }
            tally.events += due;
            rest = &rest[due..];
        }
        if last_said.elapsed() >= PROGRESS_EVERY {
            say(&tally.progress(elapsed_ms));
            last_said = Instant::now();
        }
        if let Some(next) = rest.first() {
            let wait_ms = ((next.ts - now.0) as f64 - elapsed_ms) / speed;
            tokio::time::sleep(Duration::from_secs_f64((wait_ms / 1000.0).clamp(0.0, 1.0))).await;
        }
    }
    say(&format!(
        "the live campaign is over: {}; the console stays up until Ctrl-C",
        tally.summary()
    ));
}

/// What the engine said so far.
#[derive(Debug, Default)]
struct Tally {
    events: usize,
    decisions: usize,
    held: usize,
    blocked: usize,
    scams: usize,
    scams_stopped: usize,
}

impl Tally {
    fn count(
        &mut self,
        decisions: &[portcullis_engine::Decision],
        truths: &HashMap<String, Label>,
    ) {
        for decision in decisions {
            self.decisions += 1;
            let stopped = match decision.decision {
                Verdict::Hold => {
                    self.held += 1;
                    true
                }
                Verdict::Block => {
                    self.blocked += 1;
                    true
                }
                Verdict::Allow | Verdict::Challenge => false,
            };
            if truths.get(&decision.event_id) == Some(&Label::Scam) {
                self.scams += 1;
                self.scams_stopped += usize::from(stopped);
            }
        }
    }

    fn summary(&self) -> String {
        format!(
            "{} events, {} decisions, {} held, {} blocked; {} of {} scam withdrawals and changes stopped",
            self.events, self.decisions, self.held, self.blocked, self.scams_stopped, self.scams
        )
    }

    // A demo's event time is hours, never negative: the minutes fit.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    fn progress(&self, elapsed_event_ms: f64) -> String {
        let minutes = (elapsed_event_ms / 60_000.0) as u64;
        format!(
            "live, {}h{:02} of event time in: {}",
            minutes / 60,
            minutes % 60,
            self.summary()
        )
    }
}

fn say(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{text}");
    let _ = out.flush();
}
