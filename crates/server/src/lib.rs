//! The HTTP edge of Portcullis.
//!
//! [`build`] opens the store, loads the keyring and starts the use cases; [`router`] maps every
//! endpoint; [`serve`] runs the API on any listener (port 0 in tests) with background
//! maintenance until shutdown. Handlers parse, call one use case and render.

use portcullis_app::ErrorCode;
pub mod center;
pub mod client;
pub mod config;
mod config_errors;
pub mod console;
pub mod contacts_dto;
pub mod dto;
pub mod error;
pub mod extract;
pub mod guard_dto;
mod json_errors;
pub mod key_push;
pub mod keyring_file;
pub mod limits;
pub mod metrics;
pub mod nats;
pub mod nats_partitions;
pub mod notify;
pub mod openapi;
mod openapi_shared;
pub mod replay_redis;
pub mod routes;
pub mod state;
mod tasks;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{StatusCode, header};
use axum::routing::{delete, get, post};
use config::Settings;
use error::ApiError;
use portcullis_app::clock::SystemClock;
use portcullis_app::ports::Clock;
use portcullis_app::{AppError, Portcullis};
use state::AppState;
use std::sync::Arc;
use tokio::net::TcpListener;
use tower_http::sensitive_headers::SetSensitiveRequestHeadersLayer;
use tower_http::timeout::TimeoutLayer;

/// Opens storage and the keyring and starts the use cases.
pub async fn build(settings: &Settings, clock: Arc<dyn Clock>) -> Result<Portcullis, AppError> {
    let embedded = settings.database_url.starts_with("sqlite:");
    if embedded {
        keyring_file::create_private_dir(&settings.data_dir).map_err(|e| {
            AppError::Internal(format!(
                "cannot create data directory {}: {e}",
                settings.data_dir.display()
            ))
        })?;
    }
    let keyring = keyring_file::load_or_create(&settings.keyring_file, true, clock.now())
        .map_err(|e| AppError::Internal(e.to_string()))?;
    let risk_policy = load_risk_policy(settings)?;
    let keyring = Arc::new(keyring);
    let control_seal = keyring.control_seal();
    let store = portcullis_store::open(&settings.database_url, keyring.clone()).await?;
    let app = Portcullis::start(
        store,
        clock,
        keyring,
        settings.key_policy,
        risk_policy,
        settings.guard.clone(),
        settings.risk_checkpoints,
    )
    .await?
    .with_contacts(settings.contacts.clone())
    .await?;
    let app = app.with_channels(settings.notify.channels.clone());
    let app = match &settings.replay_guard_redis_url {
        Some(url) => {
            let guard = replay_redis::RedisReplayGuard::new(url).map_err(AppError::Internal)?;
            app.with_shared_replay(Arc::new(guard))
        }
        None => app,
    };
    let app = partitioned_ingest(app, settings, control_seal).await?;
    // Key changes pushed on NATS when it is configured (`key_push`).
    Ok(match &settings.nats {
        Some(crate::nats::NatsSettings {
            url,
            key_subject: Some(subject),
            ..
        }) => {
            let bus = key_push::NatsChangeBus::connect(url, subject)
                .await
                .map_err(|e| AppError::Internal(format!("key-change push on NATS: {e}")))?;
            app.with_change_bus(Arc::new(bus))
        }
        _ => app,
    })
}

/// With `engine_partitions`, ingest goes to the stream (the partitions' owners decide).
async fn partitioned_ingest(
    mut app: Portcullis,
    settings: &Settings,
    seal: Arc<portcullis_app::partitions::ControlSeal>,
) -> Result<Portcullis, AppError> {
    let (Some(nats), Some(partitions)) = (&settings.nats, settings.partitions) else {
        return Ok(app);
    };
    let prefix = nats.subject.strip_suffix(".>").unwrap_or(&nats.subject);
    let streams =
        nats_partitions::PartitionStreams::connect(&nats.url, &nats.stream, prefix, &nats.consumer)
            .await
            .map_err(|e| {
                AppError::Internal(format!(
                    "the partitions' NATS streams: {}",
                    portcullis_core::redact::redact_urls_in(&e)
                ))
            })?;
    app.risk = app.risk.with_stream(portcullis_app::risk::StreamIngest {
        events: Arc::new(streams),
        partitions: partitions.partitions,
        wait: std::time::Duration::from_millis(partitions.decision_wait_ms),
        gauges: Arc::new(portcullis_app::partitions::PartitionGauges::new(
            partitions.partitions,
        )),
        seal,
        clock: app.clock.clone(),
    });
    Ok(app)
}

/// The text of the configured risk policy.
pub fn risk_policy_text(file: Option<&std::path::Path>) -> Result<String, AppError> {
    match file {
        None => Ok(portcullis_engine::DEFAULT_POLICY.to_owned()),
        Some(path) => std::fs::read_to_string(path).map_err(|e| {
            AppError::Internal(format!("cannot read risk policy {}: {e}", path.display()))
        }),
    }
}

/// The configured risk policy, validated (a bad file stops the start with its reason).
fn load_risk_policy(settings: &Settings) -> Result<portcullis_engine::Policy, AppError> {
    let policy = match &settings.risk_policy_file {
        None => portcullis_engine::Policy::default_policy(),
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|e| {
                AppError::Internal(format!("cannot read risk policy {}: {e}", path.display()))
            })?;
            portcullis_engine::Policy::parse(&text)
        }
    };
    policy.map_err(|e| AppError::Internal(format!("risk policy refused: {e}")))
}

/// Builds with the system clock.
pub async fn build_default(settings: &Settings) -> Result<Portcullis, AppError> {
    build(settings, Arc::new(SystemClock)).await
}

/// Every route of the API.
pub fn router(state: AppState, settings: &Settings) -> Router {
    use routes::{
        accounts, audit, cancel, contacts, digest, freeze, guard, keys, network, operators, outbox,
        overrides, passkeys, policy, risk, system, verify,
    };
    Router::new()
        .route("/healthz", get(system::healthz))
        .route("/readyz", get(system::readyz))
        .route("/metrics", get(system::metrics))
        .route("/openapi.json", get(system::openapi))
        .route("/v1/verify", post(verify::verify))
        .route("/v1/accounts", post(accounts::create).get(accounts::list))
        .route(
            "/v1/accounts/{account}",
            get(accounts::show).patch(accounts::update),
        )
        .route(
            "/v1/accounts/{account}/keys",
            post(keys::create).get(keys::list),
        )
        .route("/v1/keys/import", post(keys::import))
        .route("/v1/keys/{key_id}", get(keys::show).patch(keys::update))
        .route("/v1/keys/{key_id}/revoke", post(keys::revoke))
        .route("/v1/keys/{key_id}/rotate", post(keys::rotate))
        .route(
            "/v1/operators",
            post(operators::create).get(operators::list),
        )
        .route("/v1/operators/{id}/revoke", post(operators::revoke))
        .route("/v1/operators/{id}/enrol-link", post(operators::enrol_link))
        .route("/v1/audit", get(audit::list))
        .route("/v1/audit/head", get(audit::head))
        .route("/v1/outbox", get(outbox::list))
        .route(
            "/v1/events",
            get(audit::events)
                .post(risk::ingest)
                .layer(DefaultBodyLimit::max(settings.max_batch_bytes)),
        )
        .route("/v1/decisions", post(risk::decide).get(risk::list))
        .route("/v1/decisions/{event_id}", get(risk::show))
        .route("/v1/policy/reload", post(risk::reload_policy))
        .route("/v1/policy", get(policy::in_force))
        .route("/v1/policy/validate", post(policy::validate))
        .route("/v1/policy/stats", get(policy::stats))
        .route("/v1/policy/backtest", post(policy::backtest))
        .route(
            "/v1/policy/versions",
            get(policy::versions).post(policy::propose),
        )
        .route("/v1/policy/versions/{version}", get(policy::version))
        .route(
            "/v1/policy/versions/{version}/approve",
            post(policy::approve),
        )
        .route(
            "/v1/policy/versions/{version}/rollback",
            post(policy::rollback),
        )
        .route("/v1/alerts", get(network::list))
        .route("/v1/alerts/{id}", get(network::show))
        .route("/v1/alerts/{id}/confirm", post(network::confirm))
        .route("/v1/graph/{kind}/{value}", get(network::graph))
        .route(
            "/v1/graph/{kind}/{value}/override",
            post(overrides::set).delete(overrides::lift),
        )
        .route("/v1/overrides", get(overrides::list))
        .route("/v1/secrets/rewrap", post(audit::rewrap))
        .route("/v1/accounts/{account}/totp", post(guard::start_totp))
        .route(
            "/v1/accounts/{account}/totp/confirm",
            post(guard::confirm_totp),
        )
        .route(
            "/v1/accounts/{account}/step-up/totp",
            post(guard::step_up_totp),
        )
        .route("/v1/accounts/{account}/changes", get(guard::list_changes))
        .route("/v1/changes/{id}", get(guard::show_change))
        .route("/v1/changes/{id}/cancel", post(guard::cancel_change))
        .route("/v1/changes/{id}/hold", post(guard::hold_change))
        .route("/v1/changes/{id}/release", post(guard::release_change))
        .route("/v1/accounts/{account}/protection", get(guard::protection))
        .route(
            "/v1/accounts/{account}/digest",
            get(digest::show)
                .put(digest::subscribe)
                .delete(digest::unsubscribe),
        )
        .route("/v1/accounts/{account}/freeze", post(guard::freeze))
        .route("/v1/accounts/{account}/unfreeze", post(guard::unfreeze))
        .route(
            "/v1/accounts/{account}/settings-lock",
            post(guard::lock_settings),
        )
        .route(
            "/v1/accounts/{account}/addresses",
            get(guard::list_addresses).post(guard::add_address),
        )
        .route(
            "/v1/accounts/{account}/addresses/{network}/{address}",
            delete(guard::remove_address),
        )
        .route("/v1/withdrawals/check", post(guard::check_withdrawal))
        .route(
            "/v1/withdrawals/{event_id}/review",
            get(routes::withdrawals::review),
        )
        .route(
            "/v1/withdrawals/{event_id}/release",
            post(routes::withdrawals::release),
        )
        .route(
            "/v1/withdrawals/{event_id}/cancel",
            post(routes::withdrawals::cancel),
        )
        .route(
            "/v1/contacts/official",
            post(contacts::add).get(contacts::list),
        )
        .route("/v1/contacts/official/{id}", delete(contacts::remove))
        .route("/v1/contacts/verify", post(contacts::verify))
        .route("/v1/contacts/registry", get(contacts::registry))
        .route("/v1/contacts/reports", get(contacts::reports))
        .route("/v1/accounts/{account}/passkeys", get(passkeys::list))
        .route(
            "/v1/accounts/{account}/sign-in-links",
            post(passkeys::sign_in_link),
        )
        .route("/cancel/{token}", get(cancel::show).post(cancel::confirm))
        .route("/freeze/{token}", get(freeze::show).post(freeze::confirm))
        .route("/assets/portcullis.css", get(cancel::stylesheet))
        .route("/assets/security.js", get(cancel::script))
        .route("/assets/webauthn.js", get(cancel::webauthn_script))
        .route("/assets/console.js", get(cancel::console_script))
        .route(
            "/assets/console-graph.js",
            get(cancel::console_graph_script),
        )
        .route(
            "/assets/console-rules.js",
            get(cancel::console_rules_script),
        )
        .route("/assets/cytoscape.min.js", get(cancel::cytoscape))
        .route("/favicon.ico", get(|| async { StatusCode::NO_CONTENT }))
        .merge(center::routes())
        .merge(console::routes())
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            settings.request_timeout,
        ))
        // Verifying reads the whole chain, which can take longer than any request should: it
        // pages through the entries in constant memory and is left out of the timeout, so a
        // long chain is verified instead of cut off.
        .route(
            "/v1/audit/verify",
            get(audit::verify).post(audit::verify_since),
        )
        .fallback(|| async { ApiError::not_found() })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                ErrorCode::MethodNotAllowed,
                "this endpoint does not accept that method",
            )
        })
        .layer(axum::middleware::from_fn(metrics::track_requests))
        .layer(DefaultBodyLimit::max(settings.max_body_bytes))
        .layer(SetSensitiveRequestHeadersLayer::new([
            header::AUTHORIZATION,
        ]))
        .layer(axum::middleware::map_response(json_errors::shape))
        .layer(axum::middleware::from_fn(
            json_errors::close_after_unread_body,
        ))
        .with_state(state)
}

/// Serves the API on `listener` until `shutdown` resolves, with background maintenance; writes
/// pending key usage back and checkpoints the risk engine before returning.
pub async fn serve(
    listener: TcpListener,
    app: Portcullis,
    settings: Settings,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let limits = Arc::new(limits::RateLimits::new(
        &settings.rate_limits,
        app.clock.clone(),
    ));
    let metrics = metrics::install_recorder();
    let state = AppState::configured(
        app.clone(),
        metrics.clone(),
        settings.risk_policy_file.clone(),
        limits.clone(),
        settings.trusted_proxies.clone(),
        settings.token_cache,
    );
    let upkeep = tasks::Upkeep {
        limits,
        metrics,
        state: state.clone(),
    };
    let (stop_tasks, tasks) = tasks::spawn(app.clone(), &settings, upkeep);
    let router = router(state, &settings);
    tracing::info!(address = %listener.local_addr()?, backend = app.store.backend_name(), "portcullis listening");
    // The peer address is where the client's address comes from (`client`).
    let served = axum::serve(
        listener,
        router.into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await;
    let _ = stop_tasks.send(true);
    let _ = tasks.await;
    if let Err(error) = app.keys.flush_usage().await {
        tracing::warn!(%error, "could not write back key usage at shutdown");
    }
    // So the next start replays nothing (a crash instead just replays more of the log).
    if let Err(error) = app.risk.checkpoint().await {
        tracing::warn!(%error, "could not write the risk engine checkpoint at shutdown");
    }
    tracing::info!("portcullis stopped");
    served
}
