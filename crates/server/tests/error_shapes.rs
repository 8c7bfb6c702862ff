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
