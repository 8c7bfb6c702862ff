//! The responses every operation of a kind can give, added to the OpenAPI document in one
//! place rather than on each handler (where they were forgotten): the refusals made before a
//! handler runs, by the token extractor, the body and query extractors and the outermost error
//! layer (`json_errors`), all in the one error shape (`ErrorBody`).
//!
//! - an operation behind an operator token: 401 `unauthenticated`, 403 `forbidden`;
//! - one with a JSON body: 400 `invalid_json`, 413 `payload_too_large`, 415
//!   `unsupported_media_type`; an optional body is documented as what it is (absent, or the
//!   object), not as a JSON `null`, which the server refuses like any body that is not an object;
//! - one with query parameters: 400 `invalid_request` / `invalid_query`; an unsigned 32-bit
//!   query parameter (utoipa renders `u32` as `int32`, whose JSON Schema range ends at 2^31 - 1)
//!   documented with the range the server reads;
//! - one with path parameters: 404 `not_found`; with a numeric one, also 400
//!   `invalid_request` (a segment that is not a number in range is refused by the path
//!   extractor before the handler).
//!
//! A response an operation documents itself is kept as it is.

use utoipa::Number;
use utoipa::openapi::path::{Operation, ParameterIn};
use utoipa::openapi::request_body::RequestBody;
use utoipa::openapi::schema::{KnownFormat, Schema, SchemaFormat, Type};
use utoipa::openapi::{Content, Ref, RefOr, Required, ResponseBuilder};

/// Adds the shared responses to every operation of the document.
#[derive(Debug)]
pub(crate) struct SharedResponses;

impl utoipa::Modify for SharedResponses {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for item in openapi.paths.paths.values_mut() {
            let operations = [
                &mut item.get,
                &mut item.post,
                &mut item.put,
                &mut item.patch,
                &mut item.delete,
            ];
            for operation in operations.into_iter().flatten() {
                shared_for(operation);
            }
        }
    }
}

fn shared_for(operation: &mut Operation) {
    let secured = operation.security.as_ref().is_some_and(|s| !s.is_empty());
    let json_body = operation
        .request_body
        .as_ref()
        .is_some_and(|body| body.content.contains_key("application/json"));
    let parameters = operation.parameters.as_deref().unwrap_or_default();
    let in_query = parameters
        .iter()
        .any(|p| p.parameter_in == ParameterIn::Query);
    let in_path = parameters
        .iter()
        .any(|p| p.parameter_in == ParameterIn::Path);
    let numeric_in_path = parameters
        .iter()
        .any(|p| p.parameter_in == ParameterIn::Path && p.schema.as_ref().is_some_and(numeric));
    for parameter in operation.parameters.iter_mut().flatten() {
        if parameter.parameter_in == ParameterIn::Query
            && let Some(RefOr::T(schema)) = &mut parameter.schema
        {
            unsigned_range(schema);
        }
    }
    if let Some(body) = &mut operation.request_body {
        optional_body_without_null(body);
    }
    let responses = &mut operation.responses.responses;
    let mut add = |status: &str, text: &str| {
        if !responses.contains_key(status) {
            let content = Content::new(Some(Ref::from_schema_name("ErrorBody")));
            let response = ResponseBuilder::new()
                .description(text)
                .content("application/json", content);
            responses.insert(status.to_owned(), response.into());
        }
    };
    if secured {
        add(
            "401",
            "`unauthenticated`: no operator token, or one unknown or revoked",
        );
        add("403", "`forbidden`: the token's role may not do this");
    }
    if json_body {
        add(
            "400",
            "`invalid_json`: the body is not a JSON object of the expected fields",
        );
        add(
            "413",
            "`payload_too_large`: the body is larger than the configured limit",
        );
        add(
            "415",
            "`unsupported_media_type`: the body is not sent as `application/json`",
        );
    }
    if in_query {
        add(
            "400",
            "`invalid_request` or `invalid_query`: a query parameter that is unknown or has a wrong value",
        );
    }
    if in_path {
        add("404", "`not_found`: nothing with that id");
    }
    if numeric_in_path {
        add(
            "400",
            "`invalid_request`: a path segment that is not a number in range",
        );
    }
}

/// Whether a parameter's schema is an integer or a number.
fn numeric(schema: &RefOr<Schema>) -> bool {
    matches!(schema, RefOr::T(Schema::Object(object))
        if object.schema_type == Type::Integer.into() || object.schema_type == Type::Number.into())
}

/// `oneOf: [null, X]` (utoipa's rendering of an optional body) becomes `X` with the body not
/// required: the server takes no body, or an object, never a JSON `null`.
fn optional_body_without_null(body: &mut RequestBody) {
    let Some(content) = body.content.get_mut("application/json") else {
        return;
    };
    let Some(RefOr::T(Schema::OneOf(one_of))) = &content.schema else {
        return;
    };
    let is_null = |item: &RefOr<Schema>| {
        matches!(item, RefOr::T(Schema::Object(object))
            if object.schema_type == Type::Null.into())
    };
    let mut not_null = one_of.items.iter().filter(|item| !is_null(item));
    if let (Some(only), None, 2) = (not_null.next(), not_null.next(), one_of.items.len()) {
        content.schema = Some(only.clone());
        body.required = Some(Required::False);
    }
}

/// `u32` as utoipa renders it (`format: int32`, `minimum: 0`) with the whole of its range; a
/// field that states its own maximum (a `u8` hour, a hop count) keeps it.
fn unsigned_range(schema: &mut Schema) {
    let Schema::Object(object) = schema else {
        return;
    };
    let int32 = object.format == Some(SchemaFormat::KnownFormat(KnownFormat::Int32));
    let unsigned = match object.minimum {
        Some(Number::Int(minimum)) => minimum == 0,
        Some(Number::UInt(minimum)) => minimum == 0,
        Some(Number::Float(minimum)) => minimum == 0.0,
        None => false,
    };
    if int32 && unsigned && object.maximum.is_none() {
        object.format = Some(SchemaFormat::KnownFormat(KnownFormat::Int64));
        object.maximum = Some(u32::MAX.into());
    }
}
