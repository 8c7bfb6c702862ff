//! Every failure in the one JSON error shape, over real HTTP: also the refusals made before a
//! handler runs (a query string that does not parse, a path that is not UTF-8, a batch over the
//! size limit).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{Backend, TestServer};

fn code(reply: &common::Reply) -> &str {
    reply.body["error"]["code"].as_str().unwrap_or("")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_before_a_handler_have_the_json_shape() {
    let server = TestServer::start_with(Backend::Sqlite, |config| {
        config.max_batch_bytes = 2048;
    })
    .await;
    let admin = server.admin();
    let query = admin.get("/v1/audit?limit=lots").await;
    assert_eq!(
        (query.status, code(&query)),
        (400, "invalid_request"),
        "{}",
        query.text
    );
    assert!(
        query.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("limit")
    );
    let unknown = admin.get("/v1/outbox?colour=red").await;
    assert_eq!(
        (unknown.status, code(&unknown)),
        (400, "invalid_request"),
        "{}",
        unknown.text
    );
    let path = admin.get("/v1/keys/%FF%FE").await;
    assert_eq!(
        (path.status, code(&path)),
        (400, "invalid_request"),
        "{}",
        path.text
    );
    let big = admin
        .post_raw("/v1/events", vec![b' '; 4096], "application/x-ndjson")
        .await;
    assert_eq!(
        (big.status, code(&big)),
        (413, "payload_too_large"),
        "{}",
        big.text
    );
}

/// A body that is not a JSON object is refused before it can act: serde reads a struct of
/// optional fields from `[]`, which would revoke a key or freeze an account.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_a_json_object_is_a_body() {
    let server = TestServer::start(Backend::Sqlite).await;
    let admin = server.admin();
    let (key_id, _, _) = common::guard::account_with_key(&server, "acc_j").await;
    for body in ["[]", "null", "\"x\"", "7"] {
        let revoke = admin
            .post_raw(
                &format!("/v1/keys/{key_id}/revoke"),
                body.as_bytes().to_vec(),
                "application/json",
            )
            .await;
        assert_eq!(
            (revoke.status, code(&revoke)),
            (400, "invalid_json"),
            "{body}: {}",
            revoke.text
        );
        let freeze = admin
            .post_raw(
                "/v1/accounts/acc_j/freeze",
                body.as_bytes().to_vec(),
                "application/json",
            )
            .await;
        assert_eq!(
            (freeze.status, code(&freeze)),
            (400, "invalid_json"),
            "{body}: {}",
            freeze.text
        );
    }
    assert_eq!(
        admin.get("/v1/accounts/acc_j/protection").await.body["frozen"],
        false
    );
    let key = admin.get(&format!("/v1/keys/{key_id}")).await;
    assert!(key.body["revoked_at"].is_null(), "{}", key.text);
    // An object still works.
    let freeze = admin
        .post_raw(
            "/v1/accounts/acc_j/freeze",
            b"{}".to_vec(),
            "application/json",
        )
        .await;
    assert_eq!(freeze.status, 200, "{}", freeze.text);
}

/// An event batch without a body is refused, not answered 200 as if it had been stored
/// (found by schemathesis).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_event_batch_is_refused() {
    let server = TestServer::start(Backend::Sqlite).await;
    let admin = server.admin();
    for body in ["", "\n", "  \r\n\t"] {
        let reply = admin
            .post_raw(
                "/v1/events",
                body.as_bytes().to_vec(),
                "application/x-ndjson",
            )
            .await;
        assert_eq!(
            (reply.status, code(&reply)),
            (400, "invalid_body"),
            "{body:?}: {}",
            reply.text
        );
    }
}

/// A POST refused before its body is read (no token) closes the connection, so the body that
/// comes late is never taken for the next request on it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusal_before_the_body_closes_the_connection() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let server = TestServer::start(Backend::Sqlite).await;
    let address = server.base_url.trim_start_matches("http://").to_owned();
    let mut stream = tokio::net::TcpStream::connect(&address).await.unwrap();
    let body = r#"{"id":"acc_late"}"#;
    let head = format!(
        "POST /v1/accounts HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut answer = vec![0u8; 4096];
    let read = stream.read(&mut answer).await.unwrap();
    let answer = String::from_utf8_lossy(&answer[..read]).to_ascii_lowercase();
    assert!(answer.starts_with("http/1.1 401"), "{answer}");
    assert!(answer.contains("connection: close"), "{answer}");
    assert!(answer.contains(r#""code":"unauthenticated""#), "{answer}");
    // The late body changes nothing: the server has closed its side.
    let _ = stream.write_all(body.as_bytes()).await;
    let mut rest = Vec::new();
    let _ = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        stream.read_to_end(&mut rest),
    )
    .await;
    assert!(
        !String::from_utf8_lossy(&rest).contains("HTTP/1.1"),
        "no second answer"
    );
}
