//! Open-loop HTTP load at a fixed rate, for the benchmark scripts.
//!
//! Requests leave on a schedule (request `n` at `n / rate` seconds), not when an earlier answer
//! returns, and each latency is counted from the scheduled departure: a slow answer therefore
//! shows in the figures instead of quietly lowering the load (what closed-loop tools like wrk
//! do, known as coordinated omission). Up to `--connections` requests are in flight; a request
//! scheduled while all are busy waits, and that wait is part of its latency.
//!
//! ```sh
//! cargo run --release -p portcullis-server --example loadgen -- \
//!   --url http://127.0.0.1:8080/v1/decisions --token <operator token> \
//!   --bodies bodies.jsonl --rate 10000 --connections 64 --seconds 5
//! ```
//!
//! Each request posts the next line of `--bodies` (so that no two are alike), or with
//! `--batch N` the next N lines as one JSON Lines body (`application/x-ndjson`, for
//! `POST /v1/events`); prints one line:
//! `sent <n> ok <n> failed <n> rate <achieved>/s p50 <ms> p90 <ms> p99 <ms> p99.9 <ms> max <ms>`.

#![allow(clippy::print_stdout, clippy::print_stderr)] // A command-line tool reports on stdout.

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use std::num::NonZeroU64;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpStream;
use tokio::sync::{Mutex, mpsc};

struct Options {
    host: String,
    path: String,
    token: String,
    content_type: &'static str,
    bodies: Vec<Bytes>,
    rate: f64,
    connections: usize,
    /// Requests to send: `rate` x seconds.
    total: usize,
}

/// What one request came to: its latency from the scheduled departure, and whether it got a 2xx.
type Outcome = (Duration, bool);

fn parse_options() -> Result<Options, String> {
    let mut args = std::env::args().skip(1);
    let (mut url, mut token, mut bodies) = (None, String::new(), None);
    let (mut rate, mut connections, mut seconds): (f64, usize, f64) = (10_000.0, 64, 5.0);
    let mut batch: usize = 1;
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--url" => url = Some(value()?),
            "--token" => token = value()?,
            "--bodies" => bodies = Some(value()?),
            "--rate" => rate = value()?.parse().map_err(|e| format!("--rate: {e}"))?,
            "--connections" => {
                connections = value()?
                    .parse()
                    .map_err(|e| format!("--connections: {e}"))?;
            }
            "--seconds" => seconds = value()?.parse().map_err(|e| format!("--seconds: {e}"))?,
            "--batch" => batch = value()?.parse().map_err(|e| format!("--batch: {e}"))?,
            other => return Err(format!("unknown option {other}")),
        }
    }
    let url = url.ok_or("--url is required")?;
    let rest = url
        .strip_prefix("http://")
        .ok_or("--url must start with http://")?;
    let (host, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let text = std::fs::read_to_string(bodies.ok_or("--bodies is required")?)
        .map_err(|e| format!("--bodies: {e}"))?;
    if !(rate > 0.0 && seconds > 0.0 && rate * seconds < 1e9) || connections == 0 || batch == 0 {
        return Err("need --rate > 0, --seconds > 0, --connections > 0 and --batch > 0".into());
    }
    let lines: Vec<&str> = text.lines().collect();
    let bodies: Vec<Bytes> = lines
        .chunks(batch)
        .map(|chunk| Bytes::from(chunk.join("\n")))
        .collect();
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)] // Checked just above.
    let needed = (rate * seconds).ceil() as usize;
    if bodies.len() < needed {
        return Err(format!(
            "need at least {needed} bodies (have {})",
            bodies.len()
        ));
    }
    Ok(Options {
        host: host.to_owned(),
        path: if path.is_empty() {
            "/".into()
        } else {
            path.to_owned()
        },
        token,
        content_type: if batch > 1 {
            "application/x-ndjson"
        } else {
            "application/json"
        },
        bodies,
        rate,
        connections,
        total: needed,
    })
}

/// One connection: takes the next scheduled request whenever it is free.
async fn connection(
    options: Arc<Options>,
    queue: Arc<Mutex<mpsc::UnboundedReceiver<(Instant, usize)>>>,
    outcomes: mpsc::UnboundedSender<Outcome>,
) -> Result<(), String> {
    let stream = TcpStream::connect(&options.host)
        .await
        .map_err(|e| format!("connect {}: {e}", options.host))?;
    stream.set_nodelay(true).map_err(|e| e.to_string())?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(conn);
    loop {
        let Some((scheduled, n)) = queue.lock().await.recv().await else {
            return Ok(());
        };
        let request = hyper::Request::post(options.path.as_str())
            .header("host", options.host.as_str())
            .header("content-type", options.content_type)
            .header("authorization", format!("Bearer {}", options.token))
            .body(Full::new(options.bodies[n].clone()))
            .map_err(|e| e.to_string())?;
        let ok = match sender.send_request(request).await {
            Ok(response) => {
                let success = response.status().is_success();
                success && response.into_body().collect().await.is_ok()
            }
            Err(_) => false,
        };
        if outcomes.send((scheduled.elapsed(), ok)).is_err() {
            return Ok(());
        }
    }
}

/// Sends each request's departure to the connections at its time, from a thread of its own.
/// Tokio's timer counts in whole milliseconds: sleeping on it would send the requests in bursts
/// (ten at a time at 10,000/s) and count up to a millisecond of the generator's own lateness in
/// every latency. A thread sleeping on the system's clock wakes within microseconds once its
/// timer slack (50 us by default) is lowered, and spends no CPU in between, so a generator on
/// the server's own machine takes little from it.
fn send_on_schedule(
    start: Instant,
    rate: f64,
    total: usize,
    schedule: &mpsc::UnboundedSender<(Instant, usize)>,
) {
    if let Err(error) = rustix::thread::set_current_timer_slack(NonZeroU64::new(1_000)) {
        eprintln!("loadgen: cannot lower the timer slack ({error}); departures may be late");
    }
    for n in 0..total {
        let due = start + Duration::from_secs_f64(n as f64 / rate);
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        // Stamped with its due time, not the time the thread woke: a late wake-up is the
        // generator's delay, and counting it keeps the figures honest rather than flattering.
        if schedule.send((due, n)).is_err() {
            break;
        }
    }
}

/// The latency, in milliseconds, that `per_mille` thousandths of the requests did not exceed.
fn percentile(sorted: &[Duration], per_mille: usize) -> f64 {
    let at = (sorted.len() * per_mille)
        .div_ceil(1000)
        .clamp(1, sorted.len())
        - 1;
    sorted[at].as_secs_f64() * 1000.0
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let options = match parse_options() {
        Ok(options) => Arc::new(options),
        Err(error) => {
            eprintln!("loadgen: {error}");
            std::process::exit(2);
        }
    };
    let (schedule, queue) = mpsc::unbounded_channel();
    let queue = Arc::new(Mutex::new(queue));
    let (outcomes_tx, mut outcomes) = mpsc::unbounded_channel();
    for _ in 0..options.connections {
        let (options, queue, outcomes) = (options.clone(), queue.clone(), outcomes_tx.clone());
        tokio::spawn(async move {
            if let Err(error) = connection(options, queue, outcomes).await {
                eprintln!("loadgen: {error}");
            }
        });
    }
    drop(outcomes_tx);
    let total = options.total;
    let start = Instant::now();
    let rate = options.rate;
    std::thread::spawn(move || send_on_schedule(start, rate, total, &schedule));
    let mut latencies = Vec::with_capacity(total);
    let mut failed = 0usize;
    while let Some((latency, ok)) = outcomes.recv().await {
        latencies.push(latency);
        failed += usize::from(!ok);
    }
    let elapsed = start.elapsed().as_secs_f64();
    latencies.sort_unstable();
    if latencies.is_empty() {
        eprintln!("loadgen: no request completed");
        std::process::exit(1);
    }
    println!(
        "sent {total} ok {} failed {failed} rate {:.0}/s p50 {:.2} p90 {:.2} p99 {:.2} p99.9 {:.2} max {:.2}",
        latencies.len() - failed,
        latencies.len() as f64 / elapsed,
        percentile(&latencies, 500),
        percentile(&latencies, 900),
        percentile(&latencies, 990),
        percentile(&latencies, 999),
        percentile(&latencies, 1000),
    );
}
