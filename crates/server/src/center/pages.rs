//! The security center's pages: sign-in, the overview, the widen page, and the form posts
//! (freeze, settings lock, cancel, sign out), each answered with a redirect back.

use super::CENTER_CSP;
use super::session::{CsrfField, Customer, CustomerForm, set_cookie};
use crate::error::ApiError;
use crate::limits::PerIp;
use crate::routes::cancel::{Notice, describe, page, page_with};
use crate::state::AppState;
use askama::Template;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use portcullis_app::AppError;
use portcullis_app::ErrorCode;
use portcullis_app::keys::KeyView;
use portcullis_app::ports::PendingChange;
use portcullis_core::guard::PendingStatus;
use portcullis_core::key::KeyStatus;
use portcullis_core::scope::Scope;
use portcullis_core::time::UnixMillis;
use serde::Deserialize;

#[derive(Template)]
#[template(path = "center_sign_in.html")]
struct SignInPage<'a> {
    exchange: &'a str,
    token: &'a str,
}

struct ChangeRow {
    id: String,
    status: &'static str,
    open: bool,
    summary: String,
    applies_at: String,
    detail: String,
}

struct KeyRow {
    key_id: String,
    label: String,
    scopes: String,
    allowlist: String,
    created: String,
    last_use: String,
    status: &'static str,
    active: bool,
}

#[derive(Template)]
#[template(path = "center_overview.html")]
struct OverviewPage<'a> {
    exchange: &'a str,
    account: &'a str,
    anti_phishing_code: Option<String>,
    email: Option<String>,
    csrf: &'a str,
    frozen: bool,
    locked_until: Option<String>,
    score: u8,
    findings: Vec<String>,
    changes: Vec<ChangeRow>,
    keys: Vec<KeyRow>,
    /// (credential id, description)
    passkeys: Vec<(String, String)>,
    totp: bool,
    addresses: Vec<String>,
    /// The step-up the page's forms use: `passkey`, `totp` or `none`.
    method: &'static str,
    /// (when, what, by whom)
    activity: Vec<(String, String, String)>,
}

#[derive(Template)]
#[template(path = "center_totp.html")]
struct TotpPage<'a> {
    exchange: &'a str,
    csrf: &'a str,
    qr_svg: String,
    secret: String,
}

/// The TOTP confirmation form.
#[derive(Debug, Deserialize)]
pub struct CodeForm {
    csrf: String,
    code: String,
}

impl CsrfField for CodeForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

impl CsrfField for CsrfForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

impl CsrfField for LockForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

/// Who did something, as the customer should read it.
fn actor_name(actor: &str) -> String {
    if actor.starts_with("customer:") {
        "you".into()
    } else if actor.starts_with("op_") || actor == "cli:local" {
        "the exchange".into()
    } else {
        "Portcullis".into()
    }
}

struct ScopeBox {
    name: &'static str,
    on: bool,
}

#[derive(Template)]
#[template(path = "center_widen.html")]
struct WidenPage<'a> {
    exchange: &'a str,
    key_id: &'a str,
    label: String,
    csrf: &'a str,
    method: &'static str,
    scopes: Vec<ScopeBox>,
    allowlist: String,
}

/// A form post's anti-CSRF field.
#[derive(Debug, Deserialize)]
pub struct CsrfForm {
    csrf: String,
}

/// The settings-lock form.
#[derive(Debug, Deserialize)]
pub struct LockForm {
    csrf: String,
    /// `YYYY-MM-DD`: the lock ends at the start of that day (UTC).
    until: String,
}

fn refusal(state: &AppState, error: AppError) -> Response {
    if let AppError::Internal(_) = error {
        return ApiError::from(error).into_response();
    }
    let exchange = &state.app.guard.settings().exchange_name;
    let message = error.to_string();
    let status = ApiError::from(error).status;
    page(
        status,
        &Notice {
            exchange,
            heading: "Nothing was changed",
            message,
        },
    )
}

/// A form post's outcome: back to the overview, or a page saying why nothing changed.
fn settled<T>(state: &AppState, result: Result<T, AppError>) -> Response {
    match result {
        Ok(_) => back(),
        Err(error) => refusal(state, error),
    }
}

fn back() -> Response {
    Redirect::to("/security").into_response()
}

pub async fn sign_in_page(
    _: PerIp,
    State(state): State<AppState>,
    Path(token): Path<String>,
) -> Response {
    let exchange = &state.app.guard.settings().exchange_name;
    page(
        StatusCode::OK,
        &SignInPage {
            exchange,
            token: &token,
        },
    )
}

/// Opens the session and sets its cookie; a `GET` never does (link scanners).
pub async fn sign_in(
    _: PerIp,
    State(state): State<AppState>,
    headers: axum::http::HeaderMap,
    Path(token): Path<String>,
) -> Response {
    let opened = match state.app.guard.open_session(&token).await {
        Ok(opened) => opened,
        Err(error) => return refusal(&state, error),
    };
    let secure = state
        .app
        .guard
        .settings()
        .public_url
        .starts_with("https://");
    let token = String::from_utf8_lossy(opened.token.expose()).into_owned();
    let max_age = opened.expires_at.millis_since(state.app.clock.now()) / 1000;
    let mut response = back();
    if let Ok(cookie) = HeaderValue::from_str(&set_cookie(&token, max_age, secure)) {
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    // A browser seen for the first time gets its device id, so the next sign-in from it is
    // recognised (the risk engine's "new device" rules).
    if crate::client::device_cookie(&headers).is_none()
        && let Ok(id) = portcullis_app::random::alphanumeric(24)
        && let Ok(cookie) = HeaderValue::from_str(&crate::client::set_device_cookie(
            &format!("dev_{id}"),
            secure,
        ))
    {
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    response
}

pub async fn sign_out(
    State(state): State<AppState>,
    headers: axum::http::HeaderMap,
    _signed_in: CustomerForm<CsrfForm>,
) -> Response {
    if let Some(token) = super::session::session_cookie(&headers) {
        let _ = state.app.guard.sign_out(&token).await;
    }
    let mut response = page(
        StatusCode::OK,
        &Notice {
            exchange: &state.app.guard.settings().exchange_name,
            heading: "Signed out",
            message: "You can close this page.".into(),
        },
    );
    if let Ok(cookie) = HeaderValue::from_str(&set_cookie("", 0, false)) {
        response.headers_mut().insert(header::SET_COOKIE, cookie);
    }
    response
}

fn change_row(change: &PendingChange) -> ChangeRow {
    let detail = match &change.status {
        PendingStatus::Held { reason, .. } => format!("held for review ({reason})"),
        PendingStatus::Applied { at } => format!("applied {}", at.to_rfc3339()),
        PendingStatus::Cancelled { at, by } => format!("cancelled by {by} {}", at.to_rfc3339()),
        PendingStatus::Failed { reason, .. } => format!("not applied: {reason}"),
        PendingStatus::Pending => String::new(),
    };
    ChangeRow {
        id: change.id.clone(),
        status: change.status.as_str(),
        open: matches!(change.status, PendingStatus::Pending),
        summary: describe(change).join("; "),
        applies_at: change.applies_at.to_rfc3339(),
        detail,
    }
}

fn key_row(view: &KeyView) -> KeyRow {
    let key = &view.key;
    let allow = key.ip_allowlist.entries();
    KeyRow {
        key_id: key.key_id.clone(),
        label: key.label.clone(),
        scopes: key.scopes.names().join(", "),
        allowlist: if allow.is_empty() {
            "any address".into()
        } else {
            allow.join(", ")
        },
        created: key.created_at.to_rfc3339(),
        last_use: match (key.last_used_at, key.last_used_ip) {
            (Some(at), Some(ip)) => format!("{} from {ip}", at.to_rfc3339()),
            (Some(at), None) => at.to_rfc3339(),
            _ => "never".into(),
        },
        status: view.status.as_str(),
        active: view.status == KeyStatus::Active,
    }
}

/// The step-up the forms ask for (what the policy would accept for a widening).
pub(super) fn step_up_method(overview: &portcullis_app::guard::Overview) -> &'static str {
    if !overview.passkeys.is_empty() {
        "passkey"
    } else if overview.totp {
        "totp"
    } else {
        "none"
    }
}

pub async fn overview(State(state): State<AppState>, customer: Customer) -> Response {
    let overview = match state
        .app
        .guard
        .overview(&customer.actor, &customer.account)
        .await
    {
        Ok(overview) => overview,
        Err(error) => return refusal(&state, error),
    };
    let template = OverviewPage {
        exchange: &state.app.guard.settings().exchange_name,
        account: &customer.account,
        anti_phishing_code: overview.account.anti_phishing_code.clone(),
        email: overview.account.email.clone(),
        csrf: &customer.csrf,
        frozen: overview.protection.is_frozen(),
        locked_until: overview
            .protection
            .lock_in_force(state.app.clock.now())
            .map(UnixMillis::to_rfc3339),
        score: overview.checkup.score,
        findings: overview
            .checkup
            .findings
            .iter()
            .map(|f| f.fix.clone())
            .collect(),
        changes: overview.changes.iter().map(change_row).collect(),
        keys: overview.keys.iter().map(key_row).collect(),
        passkeys: overview
            .passkeys
            .iter()
            .map(|p| {
                let text = format!("{} (added {})", p.label, p.created_at.to_rfc3339());
                (p.credential_id.clone(), text)
            })
            .collect(),
        method: step_up_method(&overview),
        activity: overview
            .activity
            .iter()
            .map(|e| {
                (
                    e.at.to_rfc3339(),
                    e.action.replace(['.', '_'], " "),
                    actor_name(&e.actor),
                )
            })
            .collect(),
        totp: overview.totp,
        addresses: overview
            .addresses
            .iter()
            .map(|a| format!("{} · {} on {} ({})", a.label, a.address, a.network, a.asset))
            .collect(),
    };
    page_with(StatusCode::OK, &template, CENTER_CSP)
}

pub async fn widen_page(
    State(state): State<AppState>,
    customer: Customer,
    Path(key_id): Path<String>,
) -> Response {
    let overview = match state
        .app
        .guard
        .overview(&customer.actor, &customer.account)
        .await
    {
        Ok(overview) => overview,
        Err(error) => return refusal(&state, error),
    };
    let Some(view) = overview.keys.iter().find(|k| k.key.key_id == key_id) else {
        return refusal(&state, AppError::NotFound(format!("key {key_id}")));
    };
    let method = step_up_method(&overview);
    let template = WidenPage {
        exchange: &state.app.guard.settings().exchange_name,
        key_id: &key_id,
        label: view.key.label.clone(),
        csrf: &customer.csrf,
        method,
        scopes: Scope::ALL
            .iter()
            .map(|s| ScopeBox {
                name: s.as_str(),
                on: view.key.scopes.contains(*s),
            })
            .collect(),
        allowlist: view.key.ip_allowlist.entries().join("\n"),
    };
    page_with(StatusCode::OK, &template, CENTER_CSP)
}

pub async fn freeze(
    State(state): State<AppState>,
    CustomerForm { customer, .. }: CustomerForm<CsrfForm>,
) -> Response {
    let ctx = customer.ctx.clone();
    settled(
        &state,
        state
            .app
            .guard
            .freeze(&customer.actor, &customer.account, ctx)
            .await,
    )
}

pub async fn lock(
    State(state): State<AppState>,
    CustomerForm { customer, form }: CustomerForm<LockForm>,
) -> Response {
    let Ok(until) = UnixMillis::parse_rfc3339(&format!("{}T00:00:00Z", form.until)) else {
        return refusal(
            &state,
            AppError::invalid(ErrorCode::InvalidLock, "pick a date"),
        );
    };
    settled(
        &state,
        state
            .app
            .guard
            .lock_settings(&customer.actor, &customer.account, until)
            .await,
    )
}

pub async fn cancel(
    State(state): State<AppState>,
    Path(id): Path<String>,
    CustomerForm { customer, .. }: CustomerForm<CsrfForm>,
) -> Response {
    settled(&state, state.app.guard.cancel(&customer.actor, &id).await)
}

/// Starts enrolling an authenticator app and shows its QR code (a `POST`: it creates a secret).
pub async fn totp_start(
    State(state): State<AppState>,
    CustomerForm { customer, .. }: CustomerForm<CsrfForm>,
) -> Response {
    let started = match state
        .app
        .guard
        .start_totp(&customer.actor, &customer.account)
        .await
    {
        Ok(started) => started,
        Err(error) => return refusal(&state, error),
    };
    let uri = String::from_utf8_lossy(started.provisioning_uri.expose()).into_owned();
    let template = TotpPage {
        exchange: &state.app.guard.settings().exchange_name,
        csrf: &customer.csrf,
        qr_svg: crate::routes::guard::qr_svg(&uri),
        secret: uri
            .split("secret=")
            .nth(1)
            .and_then(|rest| rest.split('&').next())
            .unwrap_or_default()
            .to_owned(),
    };
    page_with(StatusCode::OK, &template, CENTER_CSP)
}

pub async fn totp_confirm(
    State(state): State<AppState>,
    CustomerForm { customer, form }: CustomerForm<CodeForm>,
) -> Response {
    settled(
        &state,
        state
            .app
            .guard
            .confirm_totp(&customer.actor, &customer.account, &form.code)
            .await,
    )
}
