//! The console's form posts: sign out, assign, and the actions on a case (release a held change
//! or withdrawal with four-eyes, cancel either, confirm fraud, suppress or force an entity, freeze). Each calls the same
//! use case as the API, with the signed-in operator as actor (so it is audited under their id),
//! then leads back to the page it came from; a refusal is a page that says nothing changed.

use super::pages::refusal;
use super::session::{ConsoleForm, console_cookie, set_console_cookie};
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use portcullis_app::AppResult;
use portcullis_app::guard::NewOverride;
use portcullis_core::events::EventContext;
use serde::Deserialize;

/// A post with nothing but its token and where to go back to.
#[derive(Debug, Deserialize)]
pub struct BackForm {
    csrf: String,
    #[serde(default)]
    back: String,
}

#[derive(Debug, Deserialize)]
pub struct AssignForm {
    csrf: String,
    item: String,
    #[serde(default)]
    assignee: String,
    #[serde(default)]
    back: String,
}

#[derive(Debug, Deserialize)]
pub struct ConfirmForm {
    csrf: String,
    #[serde(default)]
    note: String,
    #[serde(default)]
    back: String,
}

#[derive(Debug, Deserialize)]
pub struct OverrideForm {
    csrf: String,
    kind: String,
    value: String,
    action: String,
    /// How long it stays in force, in hours (empty: until lifted).
    #[serde(default)]
    hours: String,
    #[serde(default)]
    note: String,
    #[serde(default)]
    back: String,
}

csrf_forms!(BackForm, AssignForm, ConfirmForm, OverrideForm);

/// Back to a console page (never elsewhere: `back` comes from the form).
fn back_to(back: &str) -> Response {
    let safe = back.starts_with("/console")
        && !back.starts_with("//")
        && !back.contains(['\\', '\r', '\n']);
    Redirect::to(if safe { back } else { "/console" }).into_response()
}

fn settled<T>(result: AppResult<T>, back: &str) -> Response {
    match result {
        Ok(_) => back_to(back),
        Err(error) => refusal(error),
    }
}

pub async fn sign_out(
    State(state): State<AppState>,
    headers: HeaderMap,
    _form: ConsoleForm<BackForm>,
) -> Response {
    if let Some(token) = console_cookie(&headers) {
        let _ = state.app.console.sign_out(&token).await;
    }
    let mut response = Redirect::to("/console/sign-in").into_response();
    if let Ok(cookie) = HeaderValue::from_str(&set_console_cookie(&state, "", 0)) {
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    response
}

pub async fn assign(
    State(state): State<AppState>,
    ConsoleForm { operator, form }: ConsoleForm<AssignForm>,
) -> Response {
    let result = state
        .app
        .console
        .assign(&operator.actor, &form.item, &form.assignee)
        .await;
    settled(result, &form.back)
}

/// Releases a held change: for a hold the engine made, the first operator's approval or the
/// second's completion (four-eyes, enforced in the use case).
pub async fn release(
    State(state): State<AppState>,
    Path(id): Path<String>,
    ConsoleForm { operator, form }: ConsoleForm<BackForm>,
) -> Response {
    settled(
        state.app.guard.release(&operator.actor, &id).await,
        &form.back,
    )
}

pub async fn cancel(
    State(state): State<AppState>,
    Path(id): Path<String>,
    ConsoleForm { operator, form }: ConsoleForm<BackForm>,
) -> Response {
    settled(
        state.app.guard.cancel(&operator.actor, &id).await,
        &form.back,
    )
}

/// Releases a held withdrawal (the first operator's approval or the second's release) or
/// cancels it, as the path says.
pub async fn review_withdrawal(
    State(state): State<AppState>,
    Path((event_id, action)): Path<(String, String)>,
    ConsoleForm { operator, form }: ConsoleForm<BackForm>,
) -> Response {
    let guard = &state.app.guard;
    let result = match action.as_str() {
        "release" => guard.release_withdrawal(&operator.actor, &event_id).await,
        "cancel" => guard.cancel_withdrawal(&operator.actor, &event_id).await,
        _ => {
            return super::pages::nothing_changed(
                StatusCode::NOT_FOUND,
                "a held withdrawal is released or cancelled",
            );
        }
    };
    settled(result, &form.back)
}

pub async fn confirm(
    State(state): State<AppState>,
    Path(id): Path<String>,
    ConsoleForm { operator, form }: ConsoleForm<ConfirmForm>,
) -> Response {
    let result = state
        .app
        .guard
        .confirm_alert(&operator.actor, &id, form.note.trim())
        .await;
    settled(result, &form.back)
}

pub async fn set_override(
    State(state): State<AppState>,
    ConsoleForm { operator, form }: ConsoleForm<OverrideForm>,
) -> Response {
    let expires_at = match form.hours.trim() {
        "" => None,
        hours => match hours.parse::<u32>() {
            Ok(h) if (1..=24 * 90).contains(&h) => {
                Some(state.app.clock.now().plus_millis(i64::from(h) * 3_600_000))
            }
            _ => {
                return super::pages::nothing_changed(
                    StatusCode::BAD_REQUEST,
                    "an override lasts 1 to 2160 hours (90 days), or leave it empty to keep it until it is lifted",
                );
            }
        },
    };
    let new = NewOverride {
        action: form.action.clone(),
        expires_at,
        note: form.note.trim().to_owned(),
    };
    let result = state
        .app
        .guard
        .set_override(&operator.actor, &form.kind, &form.value, new)
        .await;
    settled(result, &form.back)
}

pub async fn freeze(
    State(state): State<AppState>,
    Path(account): Path<String>,
    ConsoleForm { operator, .. }: ConsoleForm<BackForm>,
) -> Response {
    let result = state
        .app
        .guard
        .freeze(&operator.actor, &account, EventContext::default())
        .await;
    settled(result, &format!("/console/accounts/{account}"))
}
