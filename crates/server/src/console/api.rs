//! The JSON the console's script calls for the WebAuthn ceremonies: enrolling a passkey from an
//! enrolment link, and signing in with it. Each finish sets the session cookie. There is no
//! session (nor CSRF token) yet: the link's token or the challenge is the credential, the body
//! must be JSON (which no cross-site form can send), and every call is limited per IP.

use super::session::set_console_cookie;
use crate::error::ApiResult;
use crate::extract::ApiJson;
use crate::limits::PerIp;
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use portcullis_app::console::{ConsoleChallenge, ConsoleSignIn};
use serde::Deserialize;
use serde_json::{Value, json};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnrolStart {
    token: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnrolFinish {
    token: String,
    ceremony_id: String,
    credential: Value,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignInStart {
    name: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignInFinish {
    ceremony_id: String,
    credential: Value,
}

fn challenge(c: ConsoleChallenge) -> Json<Value> {
    Json(json!({ "ceremony_id": c.ceremony_id, "options": c.options }))
}

/// The answer to a finished ceremony: the session cookie, and where to go.
fn signed_in(state: &AppState, opened: ConsoleSignIn) -> Response {
    let token = String::from_utf8_lossy(opened.token.expose()).into_owned();
    let max_age = opened.expires_at.millis_since(state.app.clock.now()) / 1000;
    let mut response =
        Json(json!({ "redirect": "/console", "operator": opened.operator.name })).into_response();
    if let Ok(cookie) = HeaderValue::from_str(&set_console_cookie(state, &token, max_age)) {
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    response
}

pub async fn enrol_start(
    _: PerIp,
    State(state): State<AppState>,
    ApiJson(body): ApiJson<EnrolStart>,
) -> ApiResult<Json<Value>> {
    Ok(challenge(
        state.app.console.start_enrolment(&body.token).await?,
    ))
}

pub async fn enrol_finish(
    _: PerIp,
    State(state): State<AppState>,
    ApiJson(body): ApiJson<EnrolFinish>,
) -> ApiResult<Response> {
    let opened = state
        .app
        .console
        .finish_enrolment(&body.token, &body.ceremony_id, &body.credential)
        .await?;
    Ok(signed_in(&state, opened))
}

pub async fn sign_in_start(
    _: PerIp,
    State(state): State<AppState>,
    ApiJson(body): ApiJson<SignInStart>,
) -> ApiResult<Json<Value>> {
    Ok(challenge(
        state.app.console.start_sign_in(&body.name).await?,
    ))
}

pub async fn sign_in_finish(
    _: PerIp,
    State(state): State<AppState>,
    ApiJson(body): ApiJson<SignInFinish>,
) -> ApiResult<Response> {
    let opened = state
        .app
        .console
        .finish_sign_in(&body.ceremony_id, &body.credential)
        .await?;
    Ok(signed_in(&state, opened))
}
