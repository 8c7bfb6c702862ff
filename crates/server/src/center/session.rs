//! Who is signed in to the security center: the session cookie, and the anti-CSRF check every
//! state-changing request passes (a hidden form field, or a header for the page's script), after
//! its per-IP and per-account rate limits.

use crate::error::ApiError;
use crate::extract::BrowserForm;
use crate::limits::PerIp;
use crate::routes::cancel::{Back, Notice};
use crate::state::AppState;
use askama::Template;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use portcullis_app::Actor;
use portcullis_app::ErrorCode;
use portcullis_app::guard::csrf_token;
use portcullis_core::events::EventContext;
use serde::de::DeserializeOwned;

pub const COOKIE: &str = "pc_session";

/// A signed-in customer.
#[derive(Debug, Clone)]
pub struct Customer {
    pub actor: Actor,
    pub account: String,
    /// The anti-CSRF token pages embed and requests send back.
    pub csrf: String,
    /// Where the request came from, as the risk engine reads it: the sign-in link's context
    /// (the exchange's channel, device, a call or remote access), the client's address, and
    /// the browser's device cookie when the exchange named no device.
    pub ctx: EventContext,
}

impl Customer {
    /// Refuses a request whose anti-CSRF token is missing or wrong (constant time).
    pub fn check_csrf(&self, sent: Option<&str>) -> Result<(), ApiError> {
        csrf_matches(&self.csrf, sent)
    }
}

/// Refuses a request whose anti-CSRF token is missing or not `expected` (constant time); the
/// security center's and the analyst console's.
pub fn csrf_matches(expected: &str, sent: Option<&str>) -> Result<(), ApiError> {
    let ok = sent.is_some_and(|sent| {
        aws_lc_rs::constant_time::verify_slices_are_equal(sent.as_bytes(), expected.as_bytes())
            .is_ok()
    });
    if ok {
        Ok(())
    } else {
        Err(ApiError::new(
            ErrorCode::CsrfFailed,
            "the page is out of date or the request did not come from it; reload and try again",
        ))
    }
}

/// The session token in the request's cookies.
pub fn session_cookie(headers: &HeaderMap) -> Option<String> {
    crate::client::cookie(headers, COOKIE)
}

/// The `Set-Cookie` value for a session: script-proof, same-site only, for the whole origin.
pub fn set_cookie(token: &str, max_age_s: i64, secure: bool) -> String {
    session_cookie_value(COOKIE, "/", token, max_age_s, secure)
}

/// Whether the service is reached over HTTPS (`public_url`): then its cookies are `Secure`.
pub fn over_https(state: &AppState) -> bool {
    state
        .app
        .guard
        .settings()
        .public_url
        .starts_with("https://")
}

/// A session cookie named `name` for the paths under `path`: script-proof, same-site only,
/// `Secure` when the service is served over HTTPS.
pub fn session_cookie_value(
    name: &str,
    path: &str,
    token: &str,
    max_age_s: i64,
    secure: bool,
) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!("{name}={token}; Path={path}; HttpOnly; SameSite=Strict; Max-Age={max_age_s}{secure}")
}

impl FromRequestParts<AppState> for Customer {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        // Every form post and script call (step-ups among them) is limited per client address
        // before the session is looked up, and per account once it is known.
        let changes_something = !matches!(parts.method, Method::GET | Method::HEAD);
        let api = parts.uri.path().starts_with("/security/api/");
        if changes_something {
            PerIp::from_request_parts(parts, state)
                .await
                .map_err(|error| limited(state, api, error))?;
        }
        let signed_out = || signed_out(state, api);
        let token = session_cookie(&parts.headers).ok_or_else(signed_out)?;
        let (actor, session_ctx) = state
            .app
            .guard
            .session(&token)
            .await
            .map_err(|_| signed_out())?;
        let account = actor
            .customer_account()
            .map(str::to_owned)
            .ok_or_else(signed_out)?;
        if changes_something {
            state
                .limits
                .check_account(&account)
                .map_err(|error| limited(state, api, error))?;
        }
        Ok(Customer {
            csrf: csrf_token(&token),
            actor,
            account,
            ctx: request_context(parts, state, session_ctx),
        })
    }
}

/// The context of a customer's request: the session's, with the client's own address and,
/// unless the exchange named the device, the browser's device cookie.
fn request_context(parts: &Parts, state: &AppState, session: EventContext) -> EventContext {
    let ip = crate::client::client_ip_of(parts, &state.trusted_proxies);
    EventContext {
        ip: ip.map(|ip| ip.to_string()),
        device_id: session
            .device_id
            .or_else(|| crate::client::device_cookie(&parts.headers)),
        channel: session.channel.or_else(|| Some("web".into())),
        ..session
    }
}

/// Not signed in: a JSON error for the page's script, a page for a person.
fn signed_out(state: &AppState, api: bool) -> Response {
    let message = "sign in to the security center through your exchange's app or website";
    if api {
        return ApiError::new(ErrorCode::SignedOut, message).into_response();
    }
    let page = Notice {
        exchange: &state.app.guard.settings().exchange_name,
        heading: "You are signed out",
        message: "Your session has ended, so nothing was changed. To freeze your account right away, use the freeze link in any security e-mail from us.".to_owned(),
        back: Back::SignIn,
    };
    crate::routes::cancel::page(StatusCode::UNAUTHORIZED, &page)
}

/// A rate limit's refusal: the JSON error for the page's script, a page for a person (with
/// the same `Retry-After`).
fn limited(state: &AppState, api: bool, error: ApiError) -> Response {
    if api {
        return error.into_response();
    }
    let retry_after = error.retry_after;
    let page = Notice {
        exchange: &state.app.guard.settings().exchange_name,
        heading: "Too many attempts",
        message: format!("Nothing was changed: {}.", error.message),
        back: Back::Center,
    };
    let mut response = crate::routes::cancel::page(error.status, &page);
    if let Some(seconds) = retry_after {
        response
            .headers_mut()
            .insert(axum::http::header::RETRY_AFTER, seconds.into());
    }
    response
}

/// Whether the browser says the request came from one of this origin's own pages (Fetch
/// Metadata). A form from another site never carries the session cookie (SameSite=Strict);
/// this is the second check that stands in for the token of a tab left open across sign-ins.
pub(crate) fn from_own_page(parts: &Parts) -> bool {
    parts
        .headers
        .get("sec-fetch-site")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|site| site == "same-origin")
}

/// A form whose token does not match the session: a page that says so, with the way back
/// (a fresh page carries the current token). For a form that can only make the account safer,
/// the same button again under the current token.
fn stale_form(state: &AppState, customer: &Customer, retry: Option<&str>) -> Response {
    let page = StalePage {
        exchange: &state.app.guard.settings().exchange_name,
        csrf: &customer.csrf,
        retry,
        freeze: retry == Some("/security/freeze"),
    };
    crate::routes::cancel::page(StatusCode::FORBIDDEN, &page)
}

#[derive(Template)]
#[template(path = "center_stale.html")]
struct StalePage<'a> {
    exchange: &'a str,
    csrf: &'a str,
    /// The form action to offer again (a narrowing: freeze, cancel, sign out).
    retry: Option<&'a str>,
    /// The form offered again is the freeze button.
    freeze: bool,
}

/// A call from the page's script: a signed-in customer whose `x-csrf-token` header matches.
#[derive(Debug, Clone)]
pub struct ScriptCustomer(pub Customer);

impl FromRequestParts<AppState> for ScriptCustomer {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let customer = Customer::from_request_parts(parts, state).await?;
        let sent = parts
            .headers
            .get("x-csrf-token")
            .and_then(|v| v.to_str().ok());
        customer
            .check_csrf(sent)
            .map_err(IntoResponse::into_response)?;
        Ok(Self(customer))
    }
}

/// A form field set that carries the page's anti-CSRF token.
pub trait CsrfField {
    fn csrf(&self) -> &str;

    /// Whether the form can only make the account safer (freeze, cancel a change, sign out):
    /// then a tab opened before the latest sign-in still works, as long as the browser vouches
    /// that the post came from this origin's own page. Nothing else is ever taken on a stale
    /// token.
    fn narrows(&self) -> bool {
        false
    }
}

/// A form posted by a signed-in customer from one of the center's pages: the form's `csrf`
/// field has been checked against the session.
#[derive(Debug)]
pub struct CustomerForm<T> {
    pub customer: Customer,
    pub form: T,
}

impl<T> FromRequest<AppState> for CustomerForm<T>
where
    T: DeserializeOwned + CsrfField + Send,
{
    type Rejection = Response;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, Response> {
        let (mut parts, body) = request.into_parts();
        let customer = Customer::from_request_parts(&mut parts, state).await?;
        let own_page = from_own_page(&parts);
        let action = parts.uri.path().to_owned();
        let request = Request::from_parts(parts, body);
        let Ok(BrowserForm(form)) = BrowserForm::<T>::from_request(request, state).await else {
            return Err(stale_form(state, &customer, None));
        };
        if customer.check_csrf(Some(form.csrf())).is_err() {
            if form.narrows() && own_page {
                tracing::info!("a narrowing form from a tab older than the session; taken");
            } else {
                let retry = form.narrows().then_some(action.as_str());
                return Err(stale_form(state, &customer, retry));
            }
        }
        Ok(Self { customer, form })
    }
}
