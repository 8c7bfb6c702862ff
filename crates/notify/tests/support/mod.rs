//! Real receivers for the delivery tests: an SMTP server (aiosmtpd with the directory handler
//! in scripts/smtp_sink.py) and a webhook receiver (axum on port 0) that checks every
//! signature with `verify_webhook_signature` and counts deliveries by delivery id.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use portcullis_app::clock::ManualClock;
use portcullis_app::ports::Clock;
use portcullis_core::webhook::{DELIVERY_ID_HEADER, SIGNATURE_HEADER, verify_webhook_signature};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub const WEBHOOK_SECRET: &[u8] = b"whsec_portcullis_test_0123456789";

/// What the webhook receiver saw.
#[derive(Debug, Default)]
pub struct Received {
    /// Accepted deliveries per delivery id.
    pub by_delivery_id: BTreeMap<String, u32>,
    /// Bodies of accepted deliveries, in arrival order.
    pub bodies: Vec<serde_json::Value>,
    /// Requests answered with an error status on purpose.
    pub refused: u32,
    /// Requests whose signature did not verify.
    pub bad_signatures: u32,
}

#[derive(Debug)]
struct ReceiverState {
    clock: Arc<ManualClock>,
    received: Mutex<Received>,
    /// Status codes to answer before accepting, consumed front to back.
    failures: Mutex<Vec<u16>>,
}

/// A webhook receiver on 127.0.0.1, port chosen by the system.
#[derive(Debug)]
pub struct WebhookReceiver {
    pub url: String,
    state: Arc<ReceiverState>,
    server: tokio::task::JoinHandle<()>,
}

async fn receive(
    State(state): State<Arc<ReceiverState>>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let signature = header(SIGNATURE_HEADER);
    let delivery_id = header(DELIVERY_ID_HEADER);
    let verified =
        verify_webhook_signature(WEBHOOK_SECRET, &signature, &body, state.clock.now(), 300);
    let mut received = state.received.lock().unwrap();
    if verified.is_err() || delivery_id.is_empty() {
        received.bad_signatures += 1;
        return StatusCode::UNAUTHORIZED;
    }
    let mut failures = state.failures.lock().unwrap();
    if !failures.is_empty() {
        received.refused += 1;
        return StatusCode::from_u16(failures.remove(0)).unwrap();
    }
    *received.by_delivery_id.entry(delivery_id).or_default() += 1;
    received.bodies.push(serde_json::from_slice(&body).unwrap());
    StatusCode::NO_CONTENT
}

impl WebhookReceiver {
    /// Starts the receiver; it answers `failures` (in order) before accepting anything.
    pub async fn start(clock: Arc<ManualClock>, failures: Vec<u16>) -> Self {
        let state = Arc::new(ReceiverState {
            clock,
            received: Mutex::new(Received::default()),
            failures: Mutex::new(failures),
        });
        let router = axum::Router::new()
            .route("/hooks/portcullis", axum::routing::post(receive))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hooks/portcullis", listener.local_addr().unwrap());
        let server = tokio::spawn(async move {
            axum::serve(listener, router).await.unwrap();
        });
        Self { url, state, server }
    }

    pub fn received<T>(&self, read: impl FnOnce(&Received) -> T) -> T {
        read(&self.state.received.lock().unwrap())
    }
}

impl Drop for WebhookReceiver {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// One message as the SMTP server stored it.
#[derive(Debug)]
pub struct ReceivedMail {
    /// The envelope line, then the headers and body as received.
    pub raw: String,
    /// The decoded plain-text part.
    pub text: String,
    /// The decoded HTML part.
    pub html: String,
}

/// An aiosmtpd server on a free loopback port, writing messages to a directory; stopped when
/// dropped.
#[derive(Debug)]
pub struct SmtpSink {
    pub port: u16,
    pub dir: PathBuf,
    child: Child,
}

fn scripts_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts")
}

impl SmtpSink {
    pub fn start(dir: &Path) -> Self {
        // A port the system just handed out and released: free unless something races for it.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut child = Command::new("python3")
            .args(["-m", "aiosmtpd", "-n", "-l"])
            .arg(format!("127.0.0.1:{port}"))
            .args(["-c", "smtp_sink.DirectoryHandler"])
            .arg(dir)
            .env("PYTHONPATH", scripts_dir())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("python3 must be installed (scripts/test.sh does it): {e}"));
        // Wait until it accepts connections: readiness, not a timing assumption; bounded so a
        // broken install fails the test instead of hanging it.
        for _ in 0..300 {
            if let Some(status) = child.try_wait().unwrap() {
                let mut stderr = String::new();
                use std::io::Read as _;
                child
                    .stderr
                    .take()
                    .unwrap()
                    .read_to_string(&mut stderr)
                    .unwrap();
                panic!(
                    "aiosmtpd exited ({status}); scripts/test.sh installs it (pip install aiosmtpd): {stderr}"
                );
            }
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Self {
                    port,
                    dir: dir.to_owned(),
                    child,
                };
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        panic!("aiosmtpd did not start listening on 127.0.0.1:{port}");
    }

    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// Every message received so far, in arrival order.
    pub fn messages(&self) -> Vec<ReceivedMail> {
        let mut names: Vec<_> = std::fs::read_dir(&self.dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "eml"))
            .collect();
        names.sort();
        let read = |path: PathBuf| std::fs::read_to_string(path).unwrap_or_default();
        names
            .into_iter()
            .map(|p| ReceivedMail {
                text: read(p.with_extension("txt")),
                html: read(p.with_extension("html")),
                raw: read(p),
            })
            .collect()
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
