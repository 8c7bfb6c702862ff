//! The links one event makes in the entity graph: each entity it names (kind and canonical
//! value) and how the account is linked to it. Computed once per event and used twice for a
//! deciding one: for the network features it reads, then for what it adds to the graph.
//! Values are borrowed from the event where they are canonical already (an IPv4 address as
//! written, a device id, most addresses), so a typical event allocates nothing here.

use crate::graph::{EdgeKind, EntityKind, MAX_TEXT};
use portcullis_core::contract::{ContractEvent, EventBody};
use smallvec::SmallVec;
use std::borrow::Cow;

/// One link: the entity's kind, its canonical value, how the account is linked to it.
pub(crate) type Link<'a> = (EntityKind, Cow<'a, str>, EdgeKind);

/// The links of an event (a few at most).
pub(crate) type Links<'a> = SmallVec<[Link<'a>; 4]>;

/// The canonical form of a value of this kind, borrowed when it is already, or `None` if it
/// is not one (`EntityKind::canonical` owns it).
pub(crate) fn canonical(kind: EntityKind, value: &str) -> Option<Cow<'_, str>> {
    let value = value.trim();
    if value.is_empty() || value.len() > MAX_TEXT {
        return None;
    }
    match kind {
        EntityKind::Address => Some(portcullis_core::address::canonical(value)),
        // The standard reader refuses an IPv4 address with leading zeros or other spellings:
        // one it reads is written canonically.
        EntityKind::Ip if crate::ipv4::parse_v4(value).is_some() => Some(Cow::Borrowed(value)),
        EntityKind::Ip => value
            .parse::<std::net::IpAddr>()
            .ok()
            .map(|ip| Cow::Owned(ip.to_canonical().to_string())),
        EntityKind::Number => Some(Cow::Owned(crate::state::normalise_contact(value))),
        EntityKind::Account | EntityKind::Device => Some(Cow::Borrowed(value)),
    }
}

/// The links `event` makes: the IP and device it came from (not for a failed login), the
/// single IPs a key change allow-lists, the address of a new address or a withdrawal, the
/// number of a call or a report.
pub(crate) fn links_of<'a>(event: &'a ContractEvent) -> Links<'a> {
    let mut links = Links::new();
    let mut push = |kind: EntityKind, value: &'a str, edge: EdgeKind| {
        if let Some(value) = canonical(kind, value) {
            links.push((kind, value, edge));
        }
    };
    let failed_login = matches!(event.body, EventBody::Login { success: false, .. });
    if !failed_login {
        if let Some(ip) = event.ctx.ip.as_deref() {
            push(EntityKind::Ip, ip, EdgeKind::ActedFrom);
        }
        if let Some(device) = event.ctx.device_id.as_deref() {
            push(EntityKind::Device, device, EdgeKind::UsedDevice);
        }
    }
    let mut allow_listed = SmallVec::<[String; 2]>::new();
    match &event.body {
        EventBody::ApiKeyCreated { ip_allowlist, .. }
        | EventBody::ApiKeyUpdated { ip_allowlist, .. } => {
            for net in ip_allowlist.networks() {
                if net.prefix_len() == net.max_prefix_len() {
                    allow_listed.push(net.addr().to_canonical().to_string());
                }
            }
        }
        EventBody::AddressAdded { address, .. } => {
            push(EntityKind::Address, address, EdgeKind::AddedAddress)
        }
        EventBody::WithdrawalRequested { address, .. } => {
            push(EntityKind::Address, address, EdgeKind::WithdrewTo)
        }
        EventBody::ContactInboundCall { from, .. } => {
            push(EntityKind::Number, from, EdgeKind::CalledBy)
        }
        EventBody::ContactReported { from, .. } => {
            push(EntityKind::Number, from, EdgeKind::Reported)
        }
        _ => {}
    }
    for ip in allow_listed {
        links.push((EntityKind::Ip, Cow::Owned(ip), EdgeKind::AllowListed));
    }
    links
}
