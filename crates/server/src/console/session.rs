//! Who is signed in to the analyst console: the `pc_console` cookie (HttpOnly, SameSite=Strict,
//! `Secure` over HTTPS, sent to `/console` only), the session's idle timeout (checked and moved
//! on by the use case), and the anti-CSRF token every post carries, after the per-IP and
//! per-operator rate limits.

use crate::center::session::{CsrfField, csrf_matches, session_cookie_value};
use crate::limits::PerIp;
use crate::state::AppState;
use axum::Form;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use portcullis_app::Actor;
use portcullis_app::guard::csrf_token;
use portcullis_app::ports::Operator;
use serde::de::DeserializeOwned;

pub const COOKIE: &str = "pc_console";

/// A signed-in operator.
#[derive(Debug, Clone)]
pub struct ConsoleOperator {
    pub actor: Actor,
    pub operator: Operator,
    /// The anti-CSRF token pages embed and posts send back.
    pub csrf: String,
}

/// The console's session token in the request's cookies.
pub fn console_cookie(headers: &HeaderMap) -> Option<String> {
    crate::client::cookie(headers, COOKIE)
}

/// The `Set-Cookie` value for a console session (`max_age_s` 0 clears it).
pub fn set_console_cookie(state: &AppState, token: &str, max_age_s: i64) -> String {
    let secure = crate::center::session::over_https(state);
    session_cookie_value(COOKIE, "/console", token, max_age_s, secure)
}

impl FromRequestParts<AppState> for ConsoleOperator {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let changes_something = !matches!(parts.method, Method::GET | Method::HEAD);
        if changes_something {
            PerIp::from_request_parts(parts, state)
                .await
                .map_err(IntoResponse::into_response)?;
        }
        let signed_out = || Redirect::to("/console/sign-in").into_response();
        let token = console_cookie(&parts.headers).ok_or_else(signed_out)?;
        let signed_in = state
            .app
            .console
            .session(&token)
            .await
            .map_err(|_| signed_out())?;
        if changes_something {
            state
                .limits
                .check_account(&format!("operator:{}", signed_in.operator.id))
                .map_err(IntoResponse::into_response)?;
        }
        Ok(ConsoleOperator {
            csrf: csrf_token(&token),
            actor: signed_in.actor,
            operator: signed_in.operator,
        })
    }
}

/// A form posted by a signed-in operator from a console page, its `csrf` field checked.
#[derive(Debug)]
pub struct ConsoleForm<T> {
    pub operator: ConsoleOperator,
    pub form: T,
}

impl<T> FromRequest<AppState> for ConsoleForm<T>
where
    T: DeserializeOwned + CsrfField + Send,
{
    type Rejection = Response;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, Response> {
        let (mut parts, body) = request.into_parts();
        let operator = ConsoleOperator::from_request_parts(&mut parts, state).await?;
        let form = match Form::<T>::from_request(Request::from_parts(parts, body), state).await {
            Ok(Form(form)) => form,
            Err(rejection) => {
                let message = format!("the form could not be read: {}", rejection.body_text());
                return Err(super::pages::nothing_changed(
                    StatusCode::BAD_REQUEST,
                    &message,
                ));
            }
        };
        if let Err(error) = csrf_matches(&operator.csrf, Some(form.csrf())) {
            return Err(super::pages::nothing_changed(error.status, &error.message));
        }
        Ok(Self { operator, form })
    }
}

/// A call from a console page's script: a signed-in operator whose `x-csrf-token` header
/// matches the session's token.
#[derive(Debug, Clone)]
pub struct ScriptOperator(pub ConsoleOperator);

impl FromRequestParts<AppState> for ScriptOperator {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let operator = ConsoleOperator::from_request_parts(parts, state).await?;
        let sent = parts
            .headers
            .get("x-csrf-token")
            .and_then(|v| v.to_str().ok());
        csrf_matches(&operator.csrf, sent).map_err(IntoResponse::into_response)?;
        Ok(Self(operator))
    }
}
