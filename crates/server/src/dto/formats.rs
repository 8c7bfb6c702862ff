//! The OpenAPI schemas of values whose shape the server checks beyond "a string": scope
//! names, IP allow-list entries, IP addresses. They exist for the document only (the handlers
//! take strings and the use cases check them), so that what the document allows is what the
//! server takes: a client generated from it, or a fuzzer (scripts/schemathesis.sh), sees the
//! same rules the server applies.

use portcullis_core::scope::Scope;
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{
    AnyOfBuilder, ArrayBuilder, KnownFormat, ObjectBuilder, Schema, SchemaFormat, Type,
};

/// An IPv4 block such as `203.0.113.0/24` (host bits are cleared).
const IPV4_CIDR: &str = concat!(
    r"^((25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])\.){3}",
    r"(25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])/(3[0-2]|[12]?[0-9])$"
);

fn string_of(format: KnownFormat) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .format(Some(SchemaFormat::KnownFormat(format)))
}

/// A string of one of `names` (the domain's own list, so the document follows it).
fn one_of_names(names: impl IntoIterator<Item = &'static str>) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(names))
}

/// An IPv4 or IPv6 address: the start of every schema below that takes one.
fn ipv4_or_ipv6() -> AnyOfBuilder {
    AnyOfBuilder::new()
        .item(string_of(KnownFormat::Ipv4))
        .item(string_of(KnownFormat::Ipv6))
}

/// An IPv4 or IPv6 address.
pub fn ip_address() -> Schema {
    ipv4_or_ipv6()
        .description(Some("An IPv4 or IPv6 address."))
        .into()
}

/// An IPv4 or IPv6 address, or `null` (as absent).
pub fn optional_ip_address() -> Schema {
    ipv4_or_ipv6()
        .item(ObjectBuilder::new().schema_type(Type::Null))
        .description(Some("An IPv4 or IPv6 address."))
        .into()
}

/// The kinds of entity in the network graph (`portcullis_engine::EntityKind`).
#[derive(Debug)]
pub struct EntityKindName;

impl utoipa::PartialSchema for EntityKindName {
    fn schema() -> RefOr<Schema> {
        one_of_names(portcullis_engine::EntityKind::ALL.map(portcullis_engine::EntityKind::as_str))
            .description(Some("The kinds of entity in the network graph."))
            .into()
    }
}

impl utoipa::ToSchema for EntityKindName {}

/// An IP allow-list: up to 64 addresses or blocks (IPv6 blocks such as `2001:db8::/48` are
/// taken too); empty: unrestricted.
pub fn ip_allowlist() -> RefOr<Schema> {
    let entry = ipv4_or_ipv6().item(
        ObjectBuilder::new()
            .schema_type(Type::String)
            .pattern(Some(IPV4_CIDR)),
    );
    ArrayBuilder::new()
        .items(entry)
        .max_items(Some(portcullis_core::allowlist::MAX_ALLOWLIST_ENTRIES))
        .description(Some(
            "IPv4 or IPv6 addresses or blocks (CIDR), at most 64; empty: unrestricted.",
        ))
        .into()
}

/// A key's scopes: at least one.
pub fn scopes() -> RefOr<Schema> {
    ArrayBuilder::new()
        .items(one_of_names(Scope::ALL.map(Scope::as_str)))
        .min_items(Some(1))
        .into()
}

/// The body of `POST /v1/events`: JSON Lines, one contract event per line; at least one
/// character that is not white space (an empty body is `invalid_body`).
#[derive(Debug)]
pub struct EventLines;

impl utoipa::PartialSchema for EventLines {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .pattern(Some("[^\\t\\n\\f\\r ]"))
            .description(Some("One contract event per line (docs/events.md)."))
            .into()
    }
}

impl utoipa::ToSchema for EventLines {}

/// The body of `POST /v1/decisions`: one contract event of a type that asks for a decision.
/// The fields each type needs, and their rules, are the contract's (docs/events.md).
#[derive(Debug)]
pub struct DecidingEvent;

impl utoipa::PartialSchema for DecidingEvent {
    fn schema() -> RefOr<Schema> {
        let string = || ObjectBuilder::new().schema_type(Type::String);
        ObjectBuilder::new()
            .schema_type(Type::Object)
            .property("id", string().min_length(Some(1)))
            .property(
                "ts",
                string().format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime))),
            )
            .property(
                "type",
                string().enum_values(Some([
                    "api_key.created",
                    "api_key.updated",
                    "address.added",
                    "withdrawal.requested",
                ])),
            )
            .property("account", string().min_length(Some(1)))
            .required("id")
            .required("ts")
            .required("type")
            .required("account")
            .description(Some(
                "One contract event of a deciding type, with the fields its type needs \
                 (docs/events.md).",
            ))
            .into()
    }
}

impl utoipa::ToSchema for DecidingEvent {}

#[cfg(test)]
mod tests {
    use super::*;
    use portcullis_core::allowlist::IpAllowList;

    fn matches_ipv4_cidr(text: &str) -> bool {
        regex::Regex::new(IPV4_CIDR).unwrap().is_match(text)
    }

    #[test]
    fn the_documented_ipv4_block_is_what_the_allow_list_takes() {
        for ok in [
            "0.0.0.0/0",
            "203.0.113.7/32",
            "10.1.2.3/8",
            "255.255.255.255/32",
        ] {
            assert!(matches_ipv4_cidr(ok), "{ok}");
            assert!(IpAllowList::parse([ok]).is_ok(), "{ok}");
        }
        for bad in [
            "256.0.0.0/8",
            "1.2.3.4/33",
            "01.2.3.4/8",
            "1.2.3/8",
            "1.2.3.4/",
        ] {
            assert!(!matches_ipv4_cidr(bad), "{bad}");
            assert!(IpAllowList::parse([bad]).is_err(), "{bad}");
        }
    }
}
