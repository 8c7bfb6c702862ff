//! Request extractors that fail with the API's own error shape: JSON bodies (size-limited,
//! UTF-8 checked, unknown fields refused by the DTOs) and the authenticated operator.

use crate::error::ApiError;
use crate::state::AppState;
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use portcullis_app::Actor;
use portcullis_app::ErrorCode;
use serde::de::DeserializeOwned;
use std::sync::Arc;

/// A JSON body parsed into `T`, or a clear 4xx.
#[derive(Debug)]
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let JsonBytes(bytes) = JsonBytes::from_request(request, state).await?;
        parse_json(&bytes).map(ApiJson)
    }
}

/// The raw bytes of a JSON body (content type and size checked), for handlers that parse into
/// borrowed types to avoid copying.
#[derive(Debug)]
pub struct JsonBytes(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for JsonBytes {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        typed_body(request, state, "application/json", "body")
            .await
            .map(JsonBytes)
    }
}

/// A url-encoded form body (a browser's post) read into `T` by
/// [`portcullis_core::browser::read_form`], or a clear 4xx.
#[derive(Debug)]
pub struct BrowserForm<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for BrowserForm<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = typed_body(request, state, "application/x-www-form-urlencoded", "form").await?;
        portcullis_core::browser::read_form(&bytes)
            .map(BrowserForm)
            .ok_or_else(|| {
                ApiError::new(
                    ErrorCode::InvalidBody,
                    "the form lacks a field or repeats one",
                )
            })
    }
}

/// The body's bytes when it is of the media type `mime` (parameters such as `charset` aside)
/// and within the size limit; a clear 4xx otherwise (`what` names it in the message).
async fn typed_body<S: Send + Sync>(
    request: Request,
    state: &S,
    mime: &str,
    what: &str,
) -> Result<Bytes, ApiError> {
    let typed = request
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(';')
                .next()
                .is_some_and(|m| m.trim().eq_ignore_ascii_case(mime))
        });
    if !typed {
        return Err(ApiError::new(
            ErrorCode::UnsupportedMediaType,
            format!("send the {what} as Content-Type: {mime}"),
        ));
    }
    Bytes::from_request(request, state)
        .await
        .map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::new(
                    ErrorCode::PayloadTooLarge,
                    "the request body is larger than the configured limit",
                )
            } else {
                ApiError::new(ErrorCode::InvalidBody, rejection.body_text())
            }
        })
}

/// A JSON body that may be absent (an empty body means `T::default()`).
#[derive(Debug)]
pub struct OptionalJson<T>(pub T);

impl<T: DeserializeOwned + Default, S: Send + Sync> FromRequest<S> for OptionalJson<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let has_body = request
            .headers()
            .get(axum::http::header::CONTENT_LENGTH)
            .is_none_or(|len| len.as_bytes() != b"0")
            && request
                .headers()
                .contains_key(axum::http::header::CONTENT_TYPE);
        if !has_body {
            return Ok(OptionalJson(T::default()));
        }
        ApiJson::<T>::from_request(request, state)
            .await
            .map(|ApiJson(v)| OptionalJson(v))
    }
}

/// Parses a JSON document, telling non-UTF-8 input apart from malformed JSON. Every request
/// body of the API is a JSON object: serde would also read a struct from an array (`[]` fills
/// no field, so a body of optional fields would act on it), so anything else is refused first.
pub fn parse_json<'a, T: serde::Deserialize<'a>>(bytes: &'a [u8]) -> Result<T, ApiError> {
    let text = std::str::from_utf8(bytes).map_err(|e| {
        ApiError::new(
            ErrorCode::InvalidUtf8,
            format!("the body is not valid UTF-8 (byte {})", e.valid_up_to()),
        )
    })?;
    if !text.trim_start().starts_with('{') {
        return Err(ApiError::new(
            ErrorCode::InvalidJson,
            "the body must be a JSON object",
        ));
    }
    serde_json::from_str(text).map_err(|e| {
        ApiError::new(
            ErrorCode::InvalidJson,
            format!("the body is not the expected JSON: {e}"),
        )
    })
}

/// An actor set by an in-process caller (the CLI working on the local store). Never derived
/// from anything a network client sends.
#[derive(Debug, Clone)]
pub struct InProcessActor(pub Actor);

/// The operator behind the request's bearer token.
#[derive(Debug, Clone)]
pub struct Operator(pub Arc<Actor>);

impl FromRequestParts<AppState> for Operator {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        if let Some(InProcessActor(actor)) = parts.extensions.get::<InProcessActor>() {
            return Ok(Operator(Arc::new(actor.clone())));
        }
        let token = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or_else(|| ApiError::from(portcullis_app::AppError::Unauthenticated))?;
        state
            .authenticate(token.trim())
            .await
            .map(Operator)
            .map_err(ApiError::from)
    }
}
