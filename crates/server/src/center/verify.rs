//! "Is this really the exchange?" as pages: one field, an answer a worried person can act on,
//! and a report button that records a `contact.reported` event through the event-ingest use
//! case. Two places serve it: the security center (`/security/verify`, signed in, the report is
//! the customer's) and a public page (`/verify`, no sign-in, rate-limited per client address)
//! that the exchange can link from its own site, where reports are made as
//! [`PUBLIC_REPORTER`](portcullis_app::contacts::PUBLIC_REPORTER).
//!
//! No scripts: plain forms under the strict page policy. The public page's forms carry a token
//! that must match a cookie it set (SameSite=Strict), so another site cannot post reports in a
//! visitor's name; the center's carry the session's token.

use super::session::{CsrfField, Customer, CustomerForm};
use crate::client::cookie;
use crate::extract::BrowserForm;
use crate::limits::PerIp;
use crate::routes::cancel::page;
use crate::state::AppState;
use askama::Template;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use portcullis_app::contacts::NewReport;
use portcullis_app::{Actor, AppError};
use portcullis_contacts::{Answer, Verdict};
use portcullis_core::browser::{CheckForm, ReportForm};

/// The public page's anti-forgery cookie.
const PUBLIC_COOKIE: &str = "pc_verify";

/// The answer as the page shows it.
struct AnswerView {
    verdict: &'static str,
    headline: String,
    explanation: String,
    imitates: Option<String>,
}

#[derive(Template)]
#[template(path = "contacts_verify.html")]
struct VerifyPage<'a> {
    exchange: &'a str,
    action: &'static str,
    csrf: &'a str,
    value: &'a str,
    error: Option<String>,
    answer: Option<AnswerView>,
    reported: bool,
    signed_in: bool,
}

impl CsrfField for CheckForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

impl CsrfField for ReportForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

fn view(answer: Answer, exchange: &str) -> AnswerView {
    let headline = match answer.verdict {
        Verdict::Official => format!(
            "This contact belongs to {exchange}. Read on before you trust a message from it."
        ),
        Verdict::Lookalike => format!("This is NOT {exchange}. It is made to look like us."),
        Verdict::KnownScam => "Danger: scammers use this contact.".to_owned(),
        Verdict::NotOfficial => format!("This is not one of {exchange}'s contacts."),
    };
    let imitates = match answer.verdict {
        Verdict::Lookalike | Verdict::KnownScam => answer.official_match.map(|e| e.value),
        Verdict::Official | Verdict::NotOfficial => None,
    };
    AnswerView {
        verdict: answer.verdict.as_str(),
        headline,
        explanation: answer.explanation,
        imitates,
    }
}

/// What the page shows for a check: the answer, or why the value could not be checked.
fn checked(
    state: &AppState,
    actor: &Actor,
    value: &str,
) -> (Option<AnswerView>, Option<String>, StatusCode) {
    let exchange = &state.app.guard.settings().exchange_name;
    match state.app.contacts.verify(actor, value, None) {
        Ok(answer) => (Some(view(answer, exchange)), None, StatusCode::OK),
        Err(error) => {
            let status = crate::error::ApiError::from(error.clone()).status;
            (None, Some(error.to_string()), status)
        }
    }
}

struct Shown<'a> {
    action: &'static str,
    csrf: &'a str,
    value: &'a str,
    signed_in: bool,
}

fn render(
    state: &AppState,
    shown: &Shown<'_>,
    outcome: (Option<AnswerView>, Option<String>, StatusCode),
    reported: bool,
) -> Response {
    let (answer, error, status) = outcome;
    let template = VerifyPage {
        exchange: &state.app.guard.settings().exchange_name,
        action: shown.action,
        csrf: shown.csrf,
        value: shown.value,
        error,
        answer,
        reported,
        signed_in: shown.signed_in,
    };
    page(status, &template)
}

/// `GET /security/verify`.
pub async fn center_page(State(state): State<AppState>, customer: Customer) -> Response {
    let shown = Shown {
        action: "/security/verify",
        csrf: &customer.csrf,
        value: "",
        signed_in: true,
    };
    render(&state, &shown, (None, None, StatusCode::OK), false)
}

/// `POST /security/verify`.
pub async fn center_check(
    State(state): State<AppState>,
    CustomerForm { customer, form }: CustomerForm<CheckForm>,
) -> Response {
    let outcome = checked(&state, &customer.actor, &form.value);
    let shown = Shown {
        action: "/security/verify",
        csrf: &customer.csrf,
        value: &form.value,
        signed_in: true,
    };
    render(&state, &shown, outcome, false)
}

/// `POST /security/verify/report`: the customer's own report.
pub async fn center_report(
    State(state): State<AppState>,
    CustomerForm { customer, form }: CustomerForm<ReportForm>,
) -> Response {
    let shown = Shown {
        action: "/security/verify",
        csrf: &customer.csrf,
        value: &form.value,
        signed_in: true,
    };
    reported(&state, &customer.actor, &shown, &form).await
}

async fn reported(
    state: &AppState,
    actor: &Actor,
    shown: &Shown<'_>,
    form: &ReportForm,
) -> Response {
    let report = NewReport {
        account: None,
        value: form.value.clone(),
        channel: form.channel.clone(),
        claimed: form.claimed.clone(),
    };
    match state.app.contacts.report(actor, &report).await {
        Ok(_) => render(state, shown, checked(state, actor, &form.value), true),
        Err(error) => {
            let status = crate::error::ApiError::from(error.clone()).status;
            render(state, shown, (None, Some(error.to_string()), status), false)
        }
    }
}

/// The public page's token: the cookie's, or a new one to set.
fn public_token(headers: &HeaderMap) -> (String, bool) {
    match cookie(headers, PUBLIC_COOKIE).filter(|t| t.len() == 32) {
        Some(token) => (token, false),
        None => (
            portcullis_app::random::alphanumeric(32).unwrap_or_default(),
            true,
        ),
    }
}

fn with_cookie(state: &AppState, mut response: Response, token: &str) -> Response {
    let secure = crate::center::session::over_https(state);
    let secure = if secure { "; Secure" } else { "" };
    let value = format!("{PUBLIC_COOKIE}={token}; Path=/verify; HttpOnly; SameSite=Strict{secure}");
    if let Ok(value) = HeaderValue::from_str(&value) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
}

/// Refuses a public form whose token does not match the page's cookie.
fn public_csrf(headers: &HeaderMap, sent: &str) -> Result<(), AppError> {
    let ok = cookie(headers, PUBLIC_COOKIE).is_some_and(|token| {
        !token.is_empty()
            && aws_lc_rs::constant_time::verify_slices_are_equal(token.as_bytes(), sent.as_bytes())
                .is_ok()
    });
    if ok { Ok(()) } else { Err(AppError::Forbidden) }
}

/// Who asks when nobody is signed in: the service itself, on the page's behalf. Its reports name
/// no account, so they are the public page's (`PUBLIC_REPORTER`) and never count towards
/// `known_scam` on their own; verifying changes nothing and is audited nowhere.
fn public_actor() -> Actor {
    Actor::system()
}

fn forged(state: &AppState) -> Response {
    let shown = Shown {
        action: "/verify",
        csrf: "",
        value: "",
        signed_in: false,
    };
    let message = "The page is out of date. Reload it and try again.".to_owned();
    render(
        state,
        &shown,
        (None, Some(message), StatusCode::FORBIDDEN),
        false,
    )
}

/// `GET /verify`: the public page.
pub async fn public_page(_: PerIp, State(state): State<AppState>, headers: HeaderMap) -> Response {
    let (token, new) = public_token(&headers);
    let shown = Shown {
        action: "/verify",
        csrf: &token,
        value: "",
        signed_in: false,
    };
    let response = render(&state, &shown, (None, None, StatusCode::OK), false);
    if new {
        with_cookie(&state, response, &token)
    } else {
        response
    }
}

/// `POST /verify`.
pub async fn public_check(
    _: PerIp,
    State(state): State<AppState>,
    headers: HeaderMap,
    BrowserForm(form): BrowserForm<CheckForm>,
) -> Response {
    if public_csrf(&headers, &form.csrf).is_err() {
        return forged(&state);
    }
    let outcome = checked(&state, &public_actor(), &form.value);
    let shown = Shown {
        action: "/verify",
        csrf: &form.csrf,
        value: &form.value,
        signed_in: false,
    };
    render(&state, &shown, outcome, false)
}

/// `POST /verify/report`: a report made without signing in.
pub async fn public_report(
    _: PerIp,
    State(state): State<AppState>,
    headers: HeaderMap,
    BrowserForm(form): BrowserForm<ReportForm>,
) -> Response {
    if public_csrf(&headers, &form.csrf).is_err() {
        return forged(&state);
    }
    let shown = Shown {
        action: "/verify",
        csrf: &form.csrf,
        value: &form.value,
        signed_in: false,
    };
    reported(&state, &public_actor(), &shown, &form).await
}
