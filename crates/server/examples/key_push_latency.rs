//! How long a revocation takes to reach another node, for scripts/bench-key-push.sh.
//!
//! Against two running nodes of one deployment (`--first`, `--second`, one admin token valid on
//! both): for each of `--revocations` keys, a key is issued on the first node and used on the
//! second until it is accepted there (setup, not timed), then revoked on the first; the clock
//! starts when the first node answers the revocation (the commit is done) and stops at the
//! first refusal (`revoked`) seen by polling a node with signed requests back to back. Every
//! other key is polled on the second node (the propagation) and the rest on the first (the
//! baseline, in the same run: what a refusal costs to observe where the change was made, one
//! verification's round trip). Prints one line per series:
//! `<series> n <n> p50 <ms> p90 <ms> p99 <ms> max <ms> polls/refusal <mean>`.
//!
//! ```sh
//! cargo run --release -p portcullis-server --example key_push_latency -- \
//!   --first http://127.0.0.1:8081 --second http://127.0.0.1:8082 --token pco_... --revocations 200
//! ```

#![allow(clippy::print_stdout, clippy::print_stderr)] // A command-line tool reports on stdout.

use portcullis_app::clock::SystemClock;
use portcullis_app::ports::Clock as _;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

struct Node {
    url: String,
    agent: ureq::Agent,
    token: String,
}

impl Node {
    fn new(url: &str, token: &str) -> Self {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .new_agent();
        Self {
            url: url.trim_end_matches('/').to_owned(),
            agent,
            token: token.to_owned(),
        }
    }

    fn post(&self, path: &str, body: &Value) -> Result<(u16, Value), String> {
        let mut reply = self
            .agent
            .post(format!("{}{path}", self.url))
            .header("authorization", format!("Bearer {}", self.token))
            .send_json(body)
            .map_err(|e| format!("POST {path}: {e}"))?;
        let status = reply.status().as_u16();
        let body = reply
            .body_mut()
            .read_json::<Value>()
            .map_err(|e| format!("POST {path}: {e}"))?;
        Ok((status, body))
    }

    /// Whether a fresh signed request with the key is accepted now.
    fn accepts(&self, key: &Key, nonce: &mut u64) -> Result<bool, String> {
        *nonce += 1;
        let now = SystemClock.now().as_millis();
        let payload = format!("symbol=BTCUSDT&side=BUY&quantity=1&n={nonce}&timestamp={now}");
        let hmac = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, key.secret.as_bytes());
        let signature = hex::encode(aws_lc_rs::hmac::sign(&hmac, payload.as_bytes()).as_ref());
        let body = json!({ "api_key": key.api_key, "signature": signature, "payload": payload, "ip": "203.0.113.7", "scope": "trade" });
        let (status, answer) = self.post("/v1/verify", &body)?;
        if status != 200 {
            return Err(format!("verify answered {status}: {answer}"));
        }
        match (&answer["ok"], answer["reason"].as_str()) {
            (Value::Bool(true), _) => Ok(true),
            (_, Some("revoked")) => Ok(false),
            // Not there yet (a key issued elsewhere, before the push): not accepted either,
            // but not the refusal being timed.
            (_, Some("unknown_key")) => Ok(false),
            _ => Err(format!("unexpected verification: {answer}")),
        }
    }
}

struct Key {
    id: String,
    api_key: String,
    secret: String,
}

struct Options {
    first: String,
    second: String,
    token: String,
    revocations: usize,
    prefix: String,
}

fn options() -> Result<Options, String> {
    let mut args = std::env::args().skip(1);
    let mut options = Options {
        first: String::new(),
        second: String::new(),
        token: String::new(),
        revocations: 200,
        prefix: format!("lat{}", std::process::id()),
    };
    while let Some(flag) = args.next() {
        let value = args.next().ok_or(format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--first" => options.first = value,
            "--second" => options.second = value,
            "--token" => options.token = value,
            "--revocations" => options.revocations = value.parse().map_err(|e| format!("{e}"))?,
            "--prefix" => options.prefix = value,
            other => return Err(format!("unknown option {other}")),
        }
    }
    if options.first.is_empty() || options.second.is_empty() || options.token.is_empty() {
        return Err("--first, --second and --token are required".into());
    }
    Ok(options)
}

fn issue(node: &Node, account: &str) -> Result<Key, String> {
    let (status, body) = node.post(
        "/v1/accounts",
        &json!({ "id": account, "email": "bench@example.com", "anti_phishing_code": "Bench1" }),
    )?;
    if status != 201 {
        return Err(format!("creating {account}: {status} {body}"));
    }
    let (status, body) = node.post(
        &format!("/v1/accounts/{account}/keys"),
        &json!({ "label": "bench", "scopes": ["read", "trade"] }),
    )?;
    if status != 201 {
        return Err(format!("issuing a key: {status} {body}"));
    }
    let text = |value: &Value| value.as_str().unwrap_or_default().to_owned();
    Ok(Key {
        id: text(&body["key"]["key_id"]),
        api_key: text(&body["key"]["api_key"]),
        secret: text(&body["secret"]),
    })
}

/// Polls `node` until it refuses `key`; the time from `since`, and how many polls it took.
fn until_refused(node: &Node, key: &Key, nonce: &mut u64) -> Result<(Duration, u32), String> {
    let since = Instant::now();
    let mut polls = 0;
    loop {
        polls += 1;
        if !node.accepts(key, nonce)? {
            return Ok((since.elapsed(), polls));
        }
        if since.elapsed() > Duration::from_secs(30) {
            return Err("still accepted 30 s after the revocation".into());
        }
    }
}

fn summary(name: &str, mut series: Vec<(Duration, u32)>, polled: bool) {
    series.sort();
    // The nearest-rank percentile.
    let at = |percent: usize| {
        let index = (series.len() * percent)
            .div_ceil(100)
            .clamp(1, series.len())
            - 1;
        series[index].0.as_secs_f64() * 1000.0
    };
    let polls: u32 = series.iter().map(|(_, polls)| polls).sum();
    let polls = f64::from(polls) / series.len() as f64;
    let polls = if polled {
        format!(" polls/refusal {polls:.1}")
    } else {
        String::new()
    };
    println!(
        "{name} n {} p50 {:.2} p90 {:.2} p99 {:.2} max {:.2}{polls}",
        series.len(),
        at(50),
        at(90),
        at(99),
        at(100),
    );
}

fn run(options: &Options) -> Result<(), String> {
    let first = Node::new(&options.first, &options.token);
    let second = Node::new(&options.second, &options.token);
    let (mut across, mut here, mut commits) = (Vec::new(), Vec::new(), Vec::new());
    let mut nonce = 0;
    for n in 0..options.revocations {
        let key = issue(&first, &format!("{}_{n}", options.prefix))?;
        let deadline = Instant::now() + Duration::from_secs(30);
        while !second.accepts(&key, &mut nonce)? {
            if Instant::now() > deadline {
                return Err(format!("key {} never reached the second node", key.id));
            }
        }
        let asked = Instant::now();
        let (status, body) = first.post(&format!("/v1/keys/{}/revoke", key.id), &json!({}))?;
        if status != 200 {
            return Err(format!("revoking: {status} {body}"));
        }
        commits.push((asked.elapsed(), 1));
        if n % 2 == 0 {
            across.push(until_refused(&second, &key, &mut nonce)?);
        } else {
            here.push(until_refused(&first, &key, &mut nonce)?);
        }
    }
    summary("second-node refusal after the commit (ms)", across, true);
    summary(
        "same-node refusal after the commit, baseline (ms)",
        here,
        true,
    );
    summary("revocation request on the first node (ms)", commits, false);
    Ok(())
}

fn main() {
    if let Err(error) = options().and_then(|options| run(&options)) {
        eprintln!("key_push_latency: {error}");
        std::process::exit(1);
    }
}
