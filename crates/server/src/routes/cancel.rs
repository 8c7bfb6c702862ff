//! The single-use cancel link from an announcement, as two plain pages: `GET` shows the change
//! and one button, `POST` cancels. A `GET` never cancels, because mail scanners open links.
//! The token in the URL is the only credential, and it can only make the account safer. Both
//! are rate-limited per client address; links that match no change are counted, not audited.

use crate::error::{ApiError, status_of};
use crate::limits::PerIp;
use crate::state::AppState;
use askama::Template;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use portcullis_app::{AppError, ErrorCode};
use portcullis_core::guard::{PendingStatus, hold};
use std::sync::atomic::{AtomicU64, Ordering};

/// A strict policy: no scripts at all, styles only from this origin, forms only back here.
pub const PAGE_CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self'; \
    form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

#[derive(Template)]
#[template(path = "cancel.html")]
struct CancelPage<'a> {
    exchange: &'a str,
    token: &'a str,
    account: &'a str,
    open: bool,
    /// Held for review: no time to promise, and what was seen instead.
    held: bool,
    seen: Vec<&'static str>,
    status: &'a str,
    requested_at: String,
    applies_at: String,
    lines: Vec<String>,
}

/// A page with a heading (also its title) and one message (outcomes, refusals, signed out),
/// and the way back from it.
#[derive(Debug, Template)]
#[template(path = "cancel_done.html")]
pub struct Notice<'a> {
    pub exchange: &'a str,
    pub heading: &'a str,
    pub message: String,
    pub back: Back,
}

/// Where a notice page leads back to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Back {
    /// The security center (the customer is signed in).
    Center,
    /// No session: how to get back in, and the "is this really us?" page.
    SignIn,
    /// Nowhere to go: the outcome is the end (signed out, a link used).
    None,
}

impl Notice<'_> {
    fn back_to_center(&self) -> bool {
        self.back == Back::Center
    }

    fn back_to_sign_in(&self) -> bool {
        self.back == Back::SignIn
    }
}

/// Renders a script-free page with the security headers every page carries.
pub fn page(status: StatusCode, template: &impl Template) -> Response {
    page_with(status, template, PAGE_CSP)
}

/// Renders a page under the content-security policy `csp`.
pub fn page_with(status: StatusCode, template: &impl Template, csp: &'static str) -> Response {
    match template.render() {
        Ok(html) => {
            let mut response = (status, html).into_response();
            let headers = response.headers_mut();
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            );
            headers.insert(
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(csp),
            );
            headers.insert(
                header::REFERRER_POLICY,
                HeaderValue::from_static("no-referrer"),
            );
            headers.insert(
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            );
            headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            response
        }
        Err(error) => {
            tracing::error!(%error, "rendering a page failed");
            ApiError::from(AppError::Internal(error.to_string())).into_response()
        }
    }
}

/// How a single-use link (a cancel or a freeze link) names its refusals, and what its refusal
/// page advises.
#[derive(Debug)]
pub struct LinkRefusals {
    /// The code of a token that matches nothing: counted in `forged`, never audited (it names
    /// no account and changes nothing, and an audit entry per forgery would let anyone flood
    /// the chain).
    pub unknown: ErrorCode,
    pub used: ErrorCode,
    pub expired: Option<ErrorCode>,
    pub advice: &'static str,
}

/// The page for a refused link, with the status of its code in the one table: 409 used, 410
/// expired, 404 (the unknown link's) anything else the link's owner
/// refused; every other error (storage) in the API's error shape.
pub fn link_refused(
    state: &AppState,
    error: AppError,
    codes: &LinkRefusals,
    forged: &AtomicU64,
) -> Response {
    let code = match &error {
        AppError::Invalid { code, .. } => Some(*code),
        _ => None,
    };
    if code == Some(codes.unknown) {
        forged.fetch_add(1, Ordering::Relaxed);
    }
    let (status, heading) = match (&error, code) {
        (_, Some(code)) if code == codes.used => (status_of(code), "This link was already used"),
        (_, Some(code)) if Some(code) == codes.expired => {
            (status_of(code), "This link has expired")
        }
        (AppError::Invalid { .. } | AppError::NotFound(_), _) => {
            (status_of(codes.unknown), "This link is not valid")
        }
        _ => return ApiError::from(error).into_response(),
    };
    let message = format!("{error}. {}", codes.advice);
    let exchange = &state.app.guard.settings().exchange_name;
    page(
        status,
        &Notice {
            exchange,
            heading,
            message,
            back: Back::SignIn,
        },
    )
}

fn refused(state: &AppState, error: AppError) -> Response {
    let codes = LinkRefusals {
        unknown: ErrorCode::InvalidCancelLink,
        used: ErrorCode::CancelLinkUsed,
        expired: None,
        advice: "If you think a change is under way that you did not ask for, freeze your account.",
    };
    link_refused(state, error, &codes, &state.forged_cancel_links)
}

/// `GET /cancel/{token}`: what would be cancelled, and the button.
pub async fn show(_: PerIp, State(state): State<AppState>, Path(token): Path<String>) -> Response {
    let change = match state.app.guard.change_by_cancel_token(&token).await {
        Ok(change) => change,
        Err(error) => return refused(&state, error),
    };
    let lines = match state.app.guard.describe_change(&change).await {
        Ok(lines) => lines,
        Err(error) => return refused(&state, error),
    };
    let template = CancelPage {
        exchange: &state.app.guard.settings().exchange_name,
        token: &token,
        account: &change.account,
        open: change.status.is_open(),
        held: matches!(change.status, PendingStatus::Held { .. }),
        seen: match &change.status {
            PendingStatus::Held { reason, .. } => hold::seen(reason),
            _ => Vec::new(),
        },
        status: change.status.as_str(),
        requested_at: change.requested_at.to_rfc3339(),
        applies_at: change.applies_at.to_rfc3339(),
        lines,
    };
    page(StatusCode::OK, &template)
}

/// `POST /cancel/{token}`: cancels, once.
pub async fn confirm(
    _: PerIp,
    State(state): State<AppState>,
    Path(token): Path<String>,
) -> Response {
    match state.app.guard.cancel_by_token(&token).await {
        Ok(change) => {
            let message = format!(
                "Nothing was changed on account {}. If someone asked you to make this change, they are not from us: freeze your account and contact us through the app.",
                change.account
            );
            let exchange = &state.app.guard.settings().exchange_name;
            page(
                StatusCode::OK,
                &Notice {
                    exchange,
                    heading: "The change is cancelled",
                    message,
                    back: Back::SignIn,
                },
            )
        }
        Err(error) => refused(&state, error),
    }
}

/// `GET /assets/portcullis.css`.
pub async fn stylesheet() -> Response {
    asset(
        include_str!("../../assets/portcullis.css"),
        "text/css; charset=utf-8",
    )
}

/// `GET /assets/security.js`.
pub async fn script() -> Response {
    asset(
        include_str!("../../assets/security.js"),
        "text/javascript; charset=utf-8",
    )
}

/// `GET /assets/webauthn.js`: what the center's and the console's scripts share.
pub async fn webauthn_script() -> Response {
    asset(
        include_str!("../../assets/webauthn.js"),
        "text/javascript; charset=utf-8",
    )
}

/// `GET /assets/console.js`.
pub async fn console_script() -> Response {
    asset(
        include_str!("../../assets/console.js"),
        "text/javascript; charset=utf-8",
    )
}

/// `GET /assets/console-graph.js`: the console's network graph.
pub async fn console_graph_script() -> Response {
    asset(
        include_str!("../../assets/console-graph.js"),
        "text/javascript; charset=utf-8",
    )
}

/// `GET /assets/console-rules.js`: the console's policy editor and backtest.
pub async fn console_rules_script() -> Response {
    asset(
        include_str!("../../assets/console-rules.js"),
        "text/javascript; charset=utf-8",
    )
}

/// `GET /assets/cytoscape.min.js`: cytoscape.js 3.35.0 as published on the npm registry
/// (MIT, `assets/cytoscape.LICENSE`; the package's sha512 is in docs/api.md).
pub async fn cytoscape() -> Response {
    asset(
        include_str!("../../assets/cytoscape.min.js"),
        "text/javascript; charset=utf-8",
    )
}

fn asset(body: &'static str, content_type: &'static str) -> Response {
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=3600"),
    );
    response
}
