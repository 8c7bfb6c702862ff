//! Every stable error code, read from the one table (`portcullis_app::ErrorCode`), is in
//! docs/api.md, in the row of the status it answers with, and in the OpenAPI document (the
//! `code` of every error response is an `enum` of them all). A new code without its line in the
//! docs fails here; a code can only be answered if it is in the table, because the API's errors
//! carry an `ErrorCode`, not text.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use portcullis_app::ErrorCode;
use std::path::Path;

fn repository_file(path: &str) -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    std::fs::read_to_string(root.join(path)).unwrap()
}

/// The status rows of docs/api.md's "Errors" table: (status, the row's text).
fn status_rows(docs: &str) -> Vec<(u16, &str)> {
    let errors = &docs[docs.find("## Errors").unwrap()..];
    let errors = &errors[..errors[3..].find("\n## ").unwrap()];
    errors
        .lines()
        .filter_map(|line| {
            let rest = line.strip_prefix("| ")?;
            let status = rest.get(..3)?.parse().ok()?;
            Some((status, rest))
        })
        .collect()
}

#[test]
fn every_error_code_is_documented_in_the_row_of_its_status() {
    let docs = repository_file("docs/api.md");
    let rows = status_rows(&docs);
    assert!(rows.len() > 10, "the table is read ({})", rows.len());
    let mut wrong = Vec::new();
    for code in ErrorCode::ALL {
        let quoted = format!("`{code}`");
        let statuses: Vec<u16> = rows
            .iter()
            .filter(|(_, row)| row.contains(&quoted))
            .map(|(status, _)| *status)
            .collect();
        if !statuses.contains(&code.status()) {
            wrong.push((code.as_str(), code.status(), statuses));
        }
    }
    assert!(
        wrong.is_empty(),
        "not in docs/api.md's Errors table under their status (code, status, rows it is in): {wrong:?}"
    );
}

#[test]
fn every_error_code_is_in_the_openapi_document() {
    let document: serde_json::Value =
        serde_json::from_str(&repository_file("docs/openapi.json")).unwrap();
    let listed: Vec<&str> = document["components"]["schemas"]["ErrorDetail"]["properties"]["code"]
        ["enum"]
        .as_array()
        .expect("ErrorDetail.code lists the codes")
        .iter()
        .map(|code| code.as_str().unwrap())
        .collect();
    let table: Vec<&str> = ErrorCode::ALL.iter().map(|code| code.as_str()).collect();
    assert_eq!(listed, table);
    // Every error response of every path carries that shape.
    let mut bare = Vec::new();
    for (path, item) in document["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            for (status, response) in operation["responses"].as_object().into_iter().flatten() {
                let is_error = status.starts_with('4') || status.starts_with('5');
                let shape = response["content"]["application/json"]["schema"]["$ref"].as_str();
                if is_error && shape != Some("#/components/schemas/ErrorBody") {
                    bare.push(format!("{method} {path} {status}"));
                }
            }
        }
    }
    assert!(
        bare.is_empty(),
        "error responses without the error shape: {bare:?}"
    );
}
