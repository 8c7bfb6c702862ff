//! The security center's pages: sign-in, the widen page, and the form posts
//! (freeze, settings lock, cancel, sign out), each answered with a redirect back.

use super::CENTER_CSP;
use super::session::{CsrfField, Customer, CustomerForm, set_cookie};
use crate::error::ApiError;
use crate::limits::PerIp;
use crate::routes::cancel::{Back, LinkRefusals, Notice, link_refused, page, page_with};
use crate::state::AppState;
use askama::Template;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use portcullis_app::AppError;
use portcullis_app::ErrorCode;
use portcullis_app::guard::KeyNarrowing;
use portcullis_core::browser::{CodeForm, CsrfForm, DigestForm, LockForm, TotpStartForm};
use portcullis_core::scope::Scope;
use portcullis_core::time::UnixMillis;
use serde::Deserialize;

#[derive(Template)]
#[template(path = "center_sign_in.html")]
struct SignInPage<'a> {
    exchange: &'a str,
    token: &'a str,
}

#[derive(Template)]
#[template(path = "center_totp.html")]
struct TotpPage<'a> {
    exchange: &'a str,
    csrf: &'a str,
    qr_svg: String,
    secret: String,
}

impl CsrfField for CodeForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

impl CsrfField for TotpStartForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

impl CsrfField for CsrfForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

/// A form that can only make the account safer: freeze, cancel a change, sign out.
#[derive(Debug, Deserialize)]
#[serde(transparent)]
pub struct NarrowingForm(CsrfForm);

impl CsrfField for NarrowingForm {
    fn csrf(&self) -> &str {
        &self.0.csrf
    }

    fn narrows(&self) -> bool {
        true
    }
}

impl CsrfField for LockForm {
    fn csrf(&self) -> &str {
        &self.csrf
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
    /// The key's time box for withdraw/transfer, when it has one open: its end (RFC 3339).
    window_until: Option<String>,
    /// Whether the key moves funds without a time box now (then "until I remove it" is what
    /// it has, and the form keeps it unless the customer picks a time box).
    permanent_now: bool,
}

impl CsrfField for DigestForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

/// Switches the daily digest on, at the hour chosen (announced).
pub async fn digest_on(
    State(state): State<AppState>,
    CustomerForm { customer, form }: CustomerForm<DigestForm>,
) -> Response {
    let guard = &state.app.guard;
    let result = guard
        .subscribe_digest(&customer.actor, &customer.account, form.hour_utc)
        .await;
    settled(&state, result)
}

/// Switches the daily digest off (announced, so that it cannot stop quietly).
pub async fn digest_off(
    State(state): State<AppState>,
    CustomerForm { customer, .. }: CustomerForm<CsrfForm>,
) -> Response {
    let guard = &state.app.guard;
    let result = guard
        .unsubscribe_digest(&customer.actor, &customer.account)
        .await;
    settled(&state, result)
}

pub(super) fn refusal(state: &AppState, error: AppError) -> Response {
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
            back: Back::Center,
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
        Err(error) => {
            let codes = LinkRefusals {
                unknown: ErrorCode::InvalidSignInLink,
                used: ErrorCode::SignInLinkUsed,
                expired: Some(ErrorCode::SignInLinkExpired),
                advice: "Sign-in links work once, for a few minutes. Open the security center again from the exchange's app or website to get a new one.",
            };
            return link_refused(&state, error, &codes, &state.forged_sign_in_links);
        }
    };
    let secure = crate::center::session::over_https(&state);
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
    _signed_in: CustomerForm<NarrowingForm>,
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
            back: Back::SignIn,
        },
    );
    if let Ok(cookie) = HeaderValue::from_str(&set_cookie("", 0, false)) {
        response.headers_mut().insert(header::SET_COOKIE, cookie);
    }
    response
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

pub async fn widen_page(
    State(state): State<AppState>,
    customer: Customer,
    Path(key_id): Path<String>,
) -> Response {
    let overview = match state
        .app
        .guard
        .overview(&customer.actor, &customer.account, 0)
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
        window_until: (view.key.fund_window.as_ref())
            .filter(|w| w.is_open(view.at))
            .map(|w| w.until.to_rfc3339()),
        permanent_now: view.key.fund_window.is_none()
            && !portcullis_core::guard::widening::only_fund_moving(view.key.scopes).is_empty(),
    };
    page_with(StatusCode::OK, &template, CENTER_CSP)
}

pub async fn freeze(
    State(state): State<AppState>,
    CustomerForm { customer, .. }: CustomerForm<NarrowingForm>,
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

/// The settings lock, in two steps: the date spelled out to be confirmed (a typo would lock
/// the account for up to a year, and nobody can undo it), then the lock.
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
    let guard = &state.app.guard;
    if form.confirmed.as_deref() != Some("yes") {
        if let Err(error) = guard
            .check_lock(&customer.actor, &customer.account, until)
            .await
        {
            return refusal(&state, error);
        }
        let template = LockConfirmPage {
            exchange: &guard.settings().exchange_name,
            csrf: &customer.csrf,
            until: &form.until,
            spelled: until.spelled_day(),
        };
        return page(StatusCode::OK, &template);
    }
    settled(
        &state,
        guard
            .lock_settings(&customer.actor, &customer.account, until)
            .await,
    )
}

#[derive(Template)]
#[template(path = "center_lock.html")]
struct LockConfirmPage<'a> {
    exchange: &'a str,
    csrf: &'a str,
    /// `YYYY-MM-DD`, as posted.
    until: &'a str,
    spelled: String,
}

/// `POST /security/keys/{id}/revoke` and `.../remove-withdraw`: a key narrowed at once
/// (taken from a stale tab too).
pub async fn narrow_key(
    State(state): State<AppState>,
    Path((key_id, what)): Path<(String, String)>,
    CustomerForm { customer, .. }: CustomerForm<NarrowingForm>,
) -> Response {
    let Some(what) = KeyNarrowing::parse(&what) else {
        return refusal(&state, AppError::NotFound(format!("action {what}")));
    };
    let ctx = customer.ctx.clone();
    let guard = &state.app.guard;
    settled(
        &state,
        guard.narrow_key(&customer.actor, &key_id, what, ctx).await,
    )
}

pub async fn cancel(
    State(state): State<AppState>,
    Path(id): Path<String>,
    CustomerForm { customer, .. }: CustomerForm<NarrowingForm>,
) -> Response {
    settled(&state, state.app.guard.cancel(&customer.actor, &id).await)
}

/// Cancels one of the customer's withdrawals the risk engine held (the exchange must then not
/// send it).
pub async fn cancel_withdrawal(
    State(state): State<AppState>,
    Path(event_id): Path<String>,
    CustomerForm { customer, .. }: CustomerForm<NarrowingForm>,
) -> Response {
    settled(
        &state,
        state
            .app
            .guard
            .cancel_withdrawal(&customer.actor, &event_id)
            .await,
    )
}

/// Starts enrolling an authenticator app and shows its QR code (a `POST`: it creates a secret).
/// With a passkey enrolled, the page's script runs the passkey step-up first and sends its grant.
pub async fn totp_start(
    State(state): State<AppState>,
    CustomerForm { customer, form }: CustomerForm<TotpStartForm>,
) -> Response {
    let grant = form.step_up_grant.as_deref().filter(|g| !g.is_empty());
    let started = match state
        .app
        .guard
        .start_totp(&customer.actor, &customer.account, grant)
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
