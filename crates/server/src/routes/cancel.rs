//! The single-use cancel link from an announcement, as two plain pages: `GET` shows the change
//! and one button, `POST` cancels. A `GET` never cancels, because mail scanners open links.
//! The token in the URL is the only credential, and it can only make the account safer.

use crate::error::ApiError;
use crate::state::AppState;
use askama::Template;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use portcullis_app::AppError;
use portcullis_app::ports::{PendingAction, PendingChange};

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
    status: &'a str,
    requested_at: String,
    applies_at: String,
    lines: Vec<String>,
}

#[derive(Template)]
#[template(path = "cancel_done.html")]
struct DonePage<'a> {
    exchange: &'a str,
    heading: &'a str,
    message: String,
}

/// What the customer reads about a change, one line per effect.
pub fn describe(change: &PendingChange) -> Vec<String> {
    let mut lines: Vec<String> = change
        .widenings
        .iter()
        .map(|w| w.describe().to_owned())
        .collect();
    match &change.action {
        PendingAction::KeyChange {
            key_id,
            ip_allowlist: Some(list),
            ..
        } => {
            lines.push(format!(
                "key {key_id}: usable from {}",
                list_text(&list.entries())
            ));
        }
        PendingAction::AddAddress {
            address,
            asset,
            network,
            ..
        } => {
            lines.push(format!("address {address} ({asset} on {network})"));
        }
        _ => {}
    }
    lines
}

fn list_text(entries: &[String]) -> String {
    if entries.is_empty() {
        "any IP address".to_owned()
    } else {
        entries.join(", ")
    }
}

/// Renders a page with the security headers every page carries.
pub fn page(status: StatusCode, template: &impl Template) -> Response {
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
                HeaderValue::from_static(PAGE_CSP),
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

fn refused(state: &AppState, error: AppError) -> Response {
    let exchange = &state.app.guard.settings().exchange_name;
    let (status, heading) = match &error {
        AppError::Invalid {
            code: "cancel_link_used",
            ..
        } => (StatusCode::CONFLICT, "This link was already used"),
        AppError::Invalid { .. } | AppError::NotFound(_) => {
            (StatusCode::NOT_FOUND, "This link is not valid")
        }
        _ => (StatusCode::INTERNAL_SERVER_ERROR, "Something went wrong"),
    };
    if status == StatusCode::INTERNAL_SERVER_ERROR {
        return ApiError::from(error).into_response();
    }
    let message = format!(
        "{error}. If you think a change is under way that you did not ask for, freeze your account."
    );
    page(
        status,
        &DonePage {
            exchange,
            heading,
            message,
        },
    )
}

/// `GET /cancel/{token}`: what would be cancelled, and the button.
pub async fn show(State(state): State<AppState>, Path(token): Path<String>) -> Response {
    let change = match state.app.guard.change_by_cancel_token(&token).await {
        Ok(change) => change,
        Err(error) => return refused(&state, error),
    };
    let template = CancelPage {
        exchange: &state.app.guard.settings().exchange_name,
        token: &token,
        account: &change.account,
        open: change.status.is_open(),
        status: change.status.as_str(),
        requested_at: change.requested_at.to_rfc3339(),
        applies_at: change.applies_at.to_rfc3339(),
        lines: describe(&change),
    };
    page(StatusCode::OK, &template)
}

/// `POST /cancel/{token}`: cancels, once.
pub async fn confirm(State(state): State<AppState>, Path(token): Path<String>) -> Response {
    match state.app.guard.cancel_by_token(&token).await {
        Ok(change) => {
            let message = format!(
                "Nothing was changed on account {}. If someone asked you to make this change, they are not from us: freeze your account and contact us through the app.",
                change.account
            );
            let exchange = &state.app.guard.settings().exchange_name;
            page(
                StatusCode::OK,
                &DonePage {
                    exchange,
                    heading: "The change is cancelled",
                    message,
                },
            )
        }
        Err(error) => refused(&state, error),
    }
}

/// `GET /assets/portcullis.css`.
pub async fn stylesheet() -> Response {
    let mut response = include_str!("../../assets/portcullis.css").into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/css; charset=utf-8"),
    );
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
