//! A real Portcullis server on 127.0.0.1, port 0, over real SQLite or a fresh PostgreSQL
//! database, with a settable clock and a bootstrap admin token; plus a small HTTP client.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod center;
pub mod channels;
pub mod guard;
pub mod soft_passkey;

use portcullis_app::Actor;
use portcullis_app::clock::ManualClock;
use portcullis_app::ports::Clock;
use portcullis_core::operator::Role;
use portcullis_core::time::UnixMillis;
use portcullis_server::config::{Config, Settings};
use serde_json::Value;
use std::sync::Arc;

/// Which database a test server uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Creates an empty database and returns its URL.
pub async fn fresh_postgres_database() -> String {
    portcullis_store::testing::fresh_postgres_database("portcullis_it")
        .await
        .unwrap_or_else(|e| panic!("{e}"))
}

/// A running server.
pub struct TestServer {
    pub base_url: String,
    pub admin_token: String,
    pub clock: Arc<ManualClock>,
    pub settings: Settings,
    pub database_url: String,
    pub dir: tempfile::TempDir,
    pub app: portcullis_app::Portcullis,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

/// A fixed, realistic starting time (2026-01-01T00:00:00Z) so tests are reproducible.
pub const START: UnixMillis = UnixMillis(1_767_225_600_000);

impl TestServer {
    pub async fn start(backend: Backend) -> Self {
        Self::start_with(backend, |_| {}).await
    }

    /// Starts on a fresh database with configuration changes.
    pub async fn start_with(backend: Backend, configure: impl FnOnce(&mut Config)) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let database_url = match backend {
            Backend::Sqlite => format!(
                "sqlite://{}?mode=rwc",
                dir.path().join("portcullis.db").display()
            ),
            Backend::Postgres => fresh_postgres_database().await,
        };
        let clock = Arc::new(ManualClock::new(START));
        Self::start_on_with(dir, database_url, clock, configure).await
    }

    /// Starts on an existing data directory and database (restarts).
    pub async fn start_on(
        dir: tempfile::TempDir,
        database_url: String,
        clock: Arc<ManualClock>,
    ) -> Self {
        Self::start_on_with(dir, database_url, clock, |_| {}).await
    }

    /// Starts with configuration changes (e.g. a NATS feed).
    pub async fn start_on_with(
        dir: tempfile::TempDir,
        database_url: String,
        clock: Arc<ManualClock>,
        configure: impl FnOnce(&mut Config),
    ) -> Self {
        let mut config = Config {
            listen: "127.0.0.1:0".into(),
            data_dir: dir.path().to_owned(),
            database_url: database_url.clone(),
            refresh_interval_ms: 100,
            // The clock stands still in most stories, so no bucket would ever refill: stories
            // that are not about the rate limits must not meet them (abuse_limits.rs sets its
            // own).
            rate_limit_ip_burst: 100_000,
            rate_limit_account_burst: 100_000,
            ..Config::default()
        };
        configure(&mut config);
        let settings = config.settle().unwrap();
        let app = portcullis_server::build(&settings, clock.clone() as Arc<dyn Clock>)
            .await
            .unwrap();
        let admin = app
            .operators
            .create(
                &Actor::local_cli(),
                &format!(
                    "test-admin-{}",
                    portcullis_app::random::alphanumeric(6).unwrap()
                ),
                Role::Admin,
            )
            .await
            .unwrap();
        let admin_token = String::from_utf8(admin.token.expose().to_vec()).unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base_url = format!("http://{}", listener.local_addr().unwrap());
        let (shutdown, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(portcullis_server::serve(
            listener,
            app.clone(),
            settings.clone(),
            async {
                let _ = stopped.await;
            },
        ));
        Self {
            base_url,
            admin_token,
            clock,
            settings,
            database_url,
            dir,
            app,
            shutdown: Some(shutdown),
            task: Some(task),
        }
    }

    /// Stops gracefully and hands back what a restart needs.
    pub async fn stop(mut self) -> (tempfile::TempDir, String, Arc<ManualClock>) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.unwrap().unwrap();
        }
        (self.dir, self.database_url, self.clock)
    }

    /// Stops without a graceful shutdown, as a crash would: the serving task is dropped where
    /// it is, nothing is flushed and no checkpoint is written on the way out.
    pub async fn crash(mut self) -> (tempfile::TempDir, String, Arc<ManualClock>) {
        if let Some(task) = self.task.take() {
            task.abort();
            let _ = task.await;
        }
        // Only now: dropped first, the shutdown signal would start a graceful shutdown (and its
        // checkpoint) that could run on another worker before the abort lands.
        self.shutdown.take();
        (self.dir, self.database_url, self.clock)
    }

    pub fn client(&self, token: &str) -> Client {
        Client {
            base_url: self.base_url.clone(),
            token: Some(token.to_owned()),
        }
    }

    pub fn admin(&self) -> Client {
        self.client(&self.admin_token)
    }

    pub fn anonymous(&self) -> Client {
        Client {
            base_url: self.base_url.clone(),
            token: None,
        }
    }

    /// Creates an operator with `role` and returns a client using its token.
    pub async fn operator(&self, role: &str) -> Client {
        let name = format!(
            "{role}-{}",
            portcullis_app::random::alphanumeric(6).unwrap()
        );
        let created = self
            .admin()
            .post(
                "/v1/operators",
                &serde_json::json!({ "name": name, "role": role }),
            )
            .await;
        assert_eq!(created.status, 201, "{:?}", created.body);
        self.client(created.body["token"].as_str().unwrap())
    }

    pub fn now(&self) -> UnixMillis {
        self.clock.now()
    }

    /// The contract lines in the service's event log, oldest first (the first 1,000).
    pub async fn logged_events(&self) -> Vec<Value> {
        let page = self.admin().get("/v1/events?limit=1000").await;
        assert_eq!(page.status, 200, "{}", page.text);
        page.body
            .as_array()
            .unwrap()
            .iter()
            .map(|entry| entry["event"].clone())
            .collect()
    }

    /// Appends a contract line to the event log without deciding it: the state between the
    /// two steps of ingest (a crash, or a decision not made yet).
    pub async fn log_without_deciding(&self, line: &str) {
        let event = portcullis_core::contract::parse_line(line).unwrap();
        self.app
            .store
            .commit(portcullis_app::ports::ChangeSet {
                events: vec![portcullis_app::ports::NewEvent {
                    id: event.id.clone(),
                    ts: event.ts,
                    account: event.account.clone(),
                    event_type: event.body.type_name().to_owned(),
                    body: line.to_owned(),
                }],
                ..Default::default()
            })
            .await
            .unwrap();
    }

    /// Runs one SQL statement on the server's database behind its back (tampering, or a part
    /// of storage failing).
    pub async fn execute_sql(&self, sql: &str) {
        use sqlx::Connection as _;
        let sql = sqlx::AssertSqlSafe(sql.to_owned());
        if self.database_url.starts_with("sqlite:") {
            let mut connection = sqlx::SqliteConnection::connect(&self.database_url)
                .await
                .unwrap();
            sqlx::query(sql).execute(&mut connection).await.unwrap();
        } else {
            let mut connection = sqlx::PgConnection::connect(&self.database_url)
                .await
                .unwrap();
            sqlx::query(sql).execute(&mut connection).await.unwrap();
        }
    }
}

/// A response.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub body: Value,
    pub text: String,
    /// The `Retry-After` header, when there is one.
    pub retry_after: Option<String>,
    /// The `Content-Security-Policy` header of a page, when there is one.
    pub csp: Option<String>,
}

/// A blocking HTTP client run off the async workers.
#[derive(Debug, Clone)]
pub struct Client {
    base_url: String,
    token: Option<String>,
}

impl Client {
    pub async fn get(&self, path: &str) -> Reply {
        self.send("GET", path, None, "application/json").await
    }

    pub async fn post(&self, path: &str, body: &Value) -> Reply {
        self.send(
            "POST",
            path,
            Some(body.to_string().into_bytes()),
            "application/json",
        )
        .await
    }

    pub async fn patch(&self, path: &str, body: &Value) -> Reply {
        self.send(
            "PATCH",
            path,
            Some(body.to_string().into_bytes()),
            "application/json",
        )
        .await
    }

    pub async fn put(&self, path: &str, body: &Value) -> Reply {
        self.send(
            "PUT",
            path,
            Some(body.to_string().into_bytes()),
            "application/json",
        )
        .await
    }

    pub async fn delete(&self, path: &str) -> Reply {
        self.send("DELETE", path, None, "application/json").await
    }

    pub async fn post_raw(&self, path: &str, body: Vec<u8>, content_type: &str) -> Reply {
        self.send("POST", path, Some(body), content_type).await
    }

    pub async fn send(
        &self,
        method: &'static str,
        path: &str,
        body: Option<Vec<u8>>,
        content_type: &str,
    ) -> Reply {
        let url = format!("{}{}", self.base_url, path);
        let token = self.token.clone();
        let content_type = content_type.to_owned();
        tokio::task::spawn_blocking(move || {
            let agent: ureq::Agent = ureq::Agent::config_builder()
                .http_status_as_error(false)
                .build()
                .into();
            let auth = token.map(|t| format!("Bearer {t}"));
            let result = match (method, body) {
                ("GET", _) => {
                    let mut request = agent.get(&url);
                    if let Some(auth) = &auth {
                        request = request.header("authorization", auth);
                    }
                    request.call()
                }
                ("DELETE", _) => {
                    let mut request = agent.delete(&url);
                    if let Some(auth) = &auth {
                        request = request.header("authorization", auth);
                    }
                    request.call()
                }
                (method, body) => {
                    let mut request = match method {
                        "PATCH" => agent.patch(&url),
                        "PUT" => agent.put(&url),
                        _ => agent.post(&url),
                    };
                    if let Some(auth) = &auth {
                        request = request.header("authorization", auth);
                    }
                    request
                        .header("content-type", &content_type)
                        .send(body.unwrap_or_default())
                }
            };
            let mut response = result.unwrap();
            let status = response.status().as_u16();
            let header = |name: &str| {
                (response.headers().get(name))
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned)
            };
            let retry_after = header("retry-after");
            let csp = header("content-security-policy");
            let text = response.body_mut().read_to_string().unwrap_or_default();
            let body = serde_json::from_str(&text).unwrap_or(Value::Null);
            Reply {
                status,
                body,
                text,
                retry_after,
                csp,
            }
        })
        .await
        .unwrap()
    }
}

/// Lowercase hex HMAC-SHA256, as a client signs.
pub fn sign_hmac(secret: &str, payload: &str) -> String {
    let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, secret.as_bytes());
    hex::encode(aws_lc_rs::hmac::sign(&key, payload.as_bytes()).as_ref())
}

/// Runs a story against both backends.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::common::Backend::Sqlite).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::common::Backend::Postgres).await;
                }
            )*
        }
    };
}
