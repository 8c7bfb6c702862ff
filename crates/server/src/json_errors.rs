//! One error shape for every failure. Handlers answer with `ApiError`, but some refusals are
//! made before a handler runs, by axum's extractors and layers (a query string that does not
//! parse, a path that is not UTF-8, a body over the size limit, a timeout), and those come as
//! plain text. This layer, outermost, rewrites any error response that is neither JSON nor one
//! of the customer pages' HTML into `{"error": {"code", "message"}}`, keeping its status and
//! headers (`Retry-After` among them).

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;
use portcullis_app::ErrorCode;

/// Error bodies longer than this are cut (they are axum's short messages).
const MAX_MESSAGE: usize = 300;

/// The stable code for a status whose error did not come from a handler.
fn code_for(status: StatusCode) -> ErrorCode {
    match status {
        StatusCode::BAD_REQUEST => ErrorCode::InvalidRequest,
        StatusCode::UNAUTHORIZED => ErrorCode::Unauthenticated,
        StatusCode::FORBIDDEN => ErrorCode::Forbidden,
        StatusCode::NOT_FOUND => ErrorCode::NotFound,
        StatusCode::METHOD_NOT_ALLOWED => ErrorCode::MethodNotAllowed,
        StatusCode::REQUEST_TIMEOUT => ErrorCode::RequestTimeout,
        StatusCode::PAYLOAD_TOO_LARGE => ErrorCode::PayloadTooLarge,
        StatusCode::UNSUPPORTED_MEDIA_TYPE => ErrorCode::UnsupportedMediaType,
        StatusCode::UNPROCESSABLE_ENTITY => ErrorCode::InvalidBody,
        StatusCode::TOO_MANY_REQUESTS => ErrorCode::RateLimited,
        _ if status.is_server_error() => ErrorCode::Internal,
        _ => ErrorCode::InvalidRequest,
    }
}

fn is_shaped(response: &Response) -> bool {
    response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("application/json") || t.starts_with("text/html"))
}

/// The middleware: error responses in the one JSON shape.
pub async fn shape(response: Response) -> Response {
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) || is_shaped(&response) {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, 64 * 1024)
        .await
        .map(|bytes| String::from_utf8_lossy(&bytes).trim().to_owned())
        .unwrap_or_default();
    // A server error's text may hold details meant for the log, never for the client.
    let message = if status.is_server_error() || text.is_empty() {
        status.canonical_reason().unwrap_or("error").to_owned()
    } else {
        text.chars().take(MAX_MESSAGE).collect()
    };
    let body = serde_json::json!({ "error": { "code": code_for(status), "message": message } });
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(body.to_string()))
}

/// Refusals made before a request's body is read (no token, a forbidden role, a rate limit, a
/// body over the limit) leave the rest of the body on the connection, where it would be taken
/// for the next request. Such answers close the connection (`Connection: close`), so a client
/// that keeps connections alive opens a fresh one instead of reading garbage.
pub async fn close_after_unread_body(request: Request, next: Next) -> Response {
    let has_body = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|length| length != "0")
        || request.headers().contains_key(header::TRANSFER_ENCODING);
    let mut response = next.run(request).await;
    let refused_early = matches!(
        response.status(),
        StatusCode::UNAUTHORIZED
            | StatusCode::FORBIDDEN
            | StatusCode::PAYLOAD_TOO_LARGE
            | StatusCode::TOO_MANY_REQUESTS
    );
    if has_body && refused_early {
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    response
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    async fn shaped(status: StatusCode, content_type: &str, body: &str) -> (StatusCode, String) {
        let response = Response::builder()
            .status(status)
            .header(header::CONTENT_TYPE, content_type)
            .header(header::RETRY_AFTER, "3")
            .body(Body::from(body.to_owned()))
            .unwrap();
        let response = shape(response).await;
        assert_eq!(response.headers()[header::RETRY_AFTER], "3");
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 16)
            .await
            .unwrap();
        (status, String::from_utf8(bytes.to_vec()).unwrap())
    }

    #[tokio::test]
    async fn plain_text_errors_get_the_json_shape_and_others_are_left_alone() {
        let (_, body) = shaped(
            StatusCode::BAD_REQUEST,
            "text/plain",
            "Failed to deserialize query string: invalid digit found in string",
        )
        .await;
        let json: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(json["error"]["code"], "invalid_request");
        assert!(
            json["error"]["message"]
                .as_str()
                .unwrap()
                .contains("query string")
        );
        let (_, body) = shaped(StatusCode::PAYLOAD_TOO_LARGE, "text/plain", "length limit").await;
        assert!(body.contains("payload_too_large"), "{body}");
        let (_, body) = shaped(
            StatusCode::INTERNAL_SERVER_ERROR,
            "text/plain",
            "db at 10.0.0.5",
        )
        .await;
        assert!(!body.contains("10.0.0.5"), "{body}");
        let page = "<html>signed out</html>";
        assert_eq!(
            shaped(StatusCode::UNAUTHORIZED, "text/html; charset=utf-8", page)
                .await
                .1,
            page
        );
    }
}
