//! Sending an [`ApiRequest`]: in-process through the server's router (local store, acting as
//! the machine's administrator) or over HTTP to a running server with an operator token.

use crate::requests::ApiRequest;
use anyhow::{Context as _, bail};
use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt as _;
use portcullis_app::Actor;
use portcullis_core::redact::redact_url_credentials;
use portcullis_server::config::Settings;
use portcullis_server::extract::InProcessActor;
use portcullis_server::state::AppState;
use std::io::Write as _;
use std::process::ExitCode;
use tower::ServiceExt as _;

/// A response: status and JSON body.
#[derive(Debug)]
pub struct ApiResponse {
    pub status: u16,
    pub body: serde_json::Value,
}

/// The local store behind the server's router, opened once for any number of requests.
pub struct Local {
    app: portcullis_app::Portcullis,
    router: axum::Router,
}

impl std::fmt::Debug for Local {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Local").finish_non_exhaustive()
    }
}

impl Local {
    pub async fn open(settings: &Settings) -> anyhow::Result<Self> {
        let app = portcullis_server::build_default(settings)
            .await
            .context("opening the local store (pass --server to use a running server)")?;
        let router = portcullis_server::router(AppState::new(app.clone(), None), settings);
        Ok(Self { app, router })
    }

    /// Runs the request through the same router the server uses, as the machine's
    /// administrator.
    pub async fn send(&self, request: &ApiRequest) -> anyhow::Result<ApiResponse> {
        let body = request
            .body
            .as_ref()
            .map_or_else(Body::empty, |b| Body::from(b.to_string()));
        let mut http = Request::builder()
            .method(request.method)
            .uri(&request.path)
            .header("content-type", "application/json")
            .body(body)?;
        http.extensions_mut()
            .insert(InProcessActor(Actor::local_cli()));
        let response = self.router.clone().oneshot(http).await?;
        let status = response.status();
        let bytes = response.into_body().collect().await?.to_bytes();
        self.app.keys.flush_usage().await.ok();
        // A key change or revocation made here reaches the running servers before this exits.
        self.app.push.settle().await;
        Ok(ApiResponse {
            status: status.as_u16(),
            body: serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null),
        })
    }
}

/// Where a command's requests go: the local store, or a running server.
#[derive(Debug)]
pub enum Api {
    Local(Box<Local>),
    Remote {
        server: String,
        token: Option<String>,
    },
}

impl Api {
    /// The local store, or the server of `--server` with its token.
    pub async fn for_cli(
        server: Option<&str>,
        token: Option<&str>,
        settings: impl FnOnce() -> anyhow::Result<Settings>,
    ) -> anyhow::Result<Self> {
        Ok(match server {
            Some(server) => Api::Remote {
                server: server.to_owned(),
                token: token.map(str::to_owned),
            },
            None => Api::Local(Box::new(Local::open(&settings()?).await?)),
        })
    }

    pub async fn send(&self, request: &ApiRequest) -> anyhow::Result<ApiResponse> {
        match self {
            Api::Local(local) => local.send(request).await,
            Api::Remote { server, token } => remote(server, token.as_deref(), request),
        }
    }

    /// Sends the request and returns the body of a success; a refusal is a [`Refused`] error.
    pub async fn call(&self, request: &ApiRequest) -> anyhow::Result<serde_json::Value> {
        let response = self.send(request).await?;
        if (200..300).contains(&response.status) {
            Ok(response.body)
        } else {
            Err(Refused::from(&response).into())
        }
    }
}

/// The API refused a request (a token without the right, a bad input, a store that failed):
/// said like every other command says a refusal, exit code 1.
#[derive(Debug, thiserror::Error)]
#[error("{message} ({code}, HTTP {status})")]
pub struct Refused {
    pub message: String,
    pub code: String,
    pub status: u16,
}

impl From<&ApiResponse> for Refused {
    fn from(response: &ApiResponse) -> Self {
        let text = |field: &str| response.body["error"][field].as_str().map(str::to_owned);
        Self {
            message: text("message").unwrap_or_else(|| "request failed".into()),
            code: text("code").unwrap_or_else(|| "error".into()),
            status: response.status,
        }
    }
}

/// Ends a command whose error may be the API's refusal: that is printed after `doing` and
/// exits 1; any other error goes on to the caller (exit 2).
pub fn refusal_exits_1(doing: &str, outcome: anyhow::Result<ExitCode>) -> anyhow::Result<ExitCode> {
    match outcome {
        Err(error) if error.downcast_ref::<Refused>().is_some() => {
            let _ = writeln!(std::io::stderr(), "portcullis: {doing}: {error}");
            Ok(ExitCode::from(1))
        }
        other => other,
    }
}

/// Runs the request against the local store, through the same router the server uses.
pub async fn local(settings: &Settings, request: &ApiRequest) -> anyhow::Result<ApiResponse> {
    Local::open(settings).await?.send(request).await
}

/// Sends the request to a running server.
pub fn remote(
    server: &str,
    token: Option<&str>,
    request: &ApiRequest,
) -> anyhow::Result<ApiResponse> {
    let Some(token) = token else {
        bail!("--server needs an operator token: pass --token or set PORTCULLIS_TOKEN");
    };
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let url = format!("{}{}", server.trim_end_matches('/'), request.path);
    let authorization = format!("Bearer {token}");
    let response = match (request.method, &request.body) {
        ("GET", _) => agent
            .get(&url)
            .header("authorization", &authorization)
            .call(),
        ("DELETE", _) => agent
            .delete(&url)
            .header("authorization", &authorization)
            .call(),
        (method, body) => {
            let body = body.clone().unwrap_or(serde_json::Value::Null);
            let builder = match method {
                "PATCH" => agent.patch(&url),
                "PUT" => agent.put(&url),
                _ => agent.post(&url),
            };
            builder
                .header("authorization", &authorization)
                .send_json(body)
        }
    };
    let mut response =
        response.with_context(|| format!("cannot reach {}", redact_url_credentials(server)))?;
    let status = response.status().as_u16();
    let text = response.body_mut().read_to_string().unwrap_or_default();
    Ok(ApiResponse {
        status,
        body: serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)),
    })
}

/// Prints the response; the exit code says whether it succeeded.
pub fn render(request: &ApiRequest, response: &ApiResponse) -> anyhow::Result<ExitCode> {
    let ok = StatusCode::from_u16(response.status).is_ok_and(|s| s.is_success());
    if !ok {
        let code = response.body["error"]["code"].as_str().unwrap_or("error");
        let message = response.body["error"]["message"]
            .as_str()
            .unwrap_or("request failed");
        let _ = writeln!(
            std::io::stderr(),
            "portcullis: {message} ({code}, HTTP {})",
            response.status
        );
        return Ok(ExitCode::from(1));
    }
    let pretty = serde_json::to_string_pretty(&response.body)?;
    if let Some(path) = &request.write_to {
        std::fs::write(path, format!("{pretty}\n"))
            .with_context(|| format!("cannot write {}", path.display()))?;
        writeln!(
            std::io::stdout(),
            "wrote the audit head (entry {}, signed by {}) to {}",
            response.body["seq"],
            response.body["signing_key_id"].as_str().unwrap_or("?"),
            path.display()
        )
        .context("writing to stdout")?;
        return Ok(ExitCode::SUCCESS);
    }
    writeln!(std::io::stdout(), "{pretty}").context("writing to stdout")?;
    if request.fail_unless_intact && response.body["intact"] != serde_json::Value::Bool(true) {
        let message = response.body["message"]
            .as_str()
            .unwrap_or("audit chain broken");
        let _ = writeln!(
            std::io::stderr(),
            "portcullis: audit chain broken: {message}"
        );
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}
