//! Who is on the other end of a customer's request: the client's address (the connection's
//! peer, or, only when that peer is one of the configured trusted proxies, the address the
//! proxy reports in `X-Forwarded-For`) and the browser's long-lived device cookie. Both stamp
//! the customer's events, so the risk engine's "new IP" and "new device" rules see the
//! security center as they see the exchange's own channels.

use axum::extract::ConnectInfo;
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use portcullis_core::allowlist::IpAllowList;
use portcullis_core::browser;
use std::net::{IpAddr, SocketAddr};

pub const DEVICE_COOKIE: &str = "pc_device";
/// About thirteen months, the longest lifetime browsers keep a cookie for.
const DEVICE_COOKIE_MAX_AGE_S: i64 = 400 * 86_400;

/// The client's address: the peer's, unless the peer is a trusted proxy; then the right-most
/// address of `X-Forwarded-For` that is not itself a trusted proxy (the left part of the
/// header is whatever the client wrote, so it is never believed past an untrusted hop).
pub fn client_ip(peer: IpAddr, headers: &HeaderMap, trusted: &IpAllowList) -> IpAddr {
    if trusted.is_unrestricted() || !trusted.allows(peer) {
        return peer;
    }
    let hops: Vec<IpAddr> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map_while(|hop| hop.trim().parse::<IpAddr>().ok())
        .collect();
    hops.iter()
        .rev()
        .find(|hop| !trusted.allows(**hop))
        .or_else(|| hops.first())
        .copied()
        .unwrap_or(peer)
}

/// The client's address for a request, when it came over a connection (the CLI's in-process
/// requests have none).
pub fn client_ip_of(parts: &Parts, trusted: &IpAllowList) -> Option<IpAddr> {
    let ConnectInfo(peer) = parts.extensions.get::<ConnectInfo<SocketAddr>>()?;
    Some(client_ip(peer.ip(), &parts.headers, trusted))
}

/// The value of the cookie `name` in the request's `Cookie` headers.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    let values = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok());
    browser::cookie(values, name).map(str::to_owned)
}

/// The device id in the request's cookies, if it looks like one of ours.
pub fn device_cookie(headers: &HeaderMap) -> Option<String> {
    cookie(headers, DEVICE_COOKIE).filter(|id| browser::is_device_id(id))
}

/// The `Set-Cookie` value that gives a browser its device id: script-proof and same-site, like
/// the session cookie, but long-lived so that the next sign-in is recognised.
pub fn set_device_cookie(id: &str, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!(
        "{DEVICE_COOKIE}={id}; Path=/security; HttpOnly; SameSite=Strict; Max-Age={DEVICE_COOKIE_MAX_AGE_S}{secure}"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn forwarded(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert("x-forwarded-for", HeaderValue::from_str(value).unwrap());
        headers
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn the_header_is_believed_only_from_a_trusted_proxy() {
        let trusted = IpAllowList::parse(["10.0.0.0/8"]).unwrap();
        let headers = forwarded("198.51.100.7");
        assert_eq!(
            client_ip(ip("10.1.2.3"), &headers, &trusted),
            ip("198.51.100.7")
        );
        assert_eq!(
            client_ip(ip("203.0.113.9"), &headers, &trusted),
            ip("203.0.113.9"),
            "anyone else's header is ignored"
        );
        let nobody = IpAllowList::unrestricted();
        assert_eq!(
            client_ip(ip("10.1.2.3"), &headers, &nobody),
            ip("10.1.2.3"),
            "no trusted proxies configured: the peer"
        );
    }

    #[test]
    fn a_forged_left_part_of_the_header_is_never_taken() {
        let trusted = IpAllowList::parse(["10.0.0.0/8"]).unwrap();
        let headers = forwarded("1.2.3.4, 198.51.100.7, 10.0.0.5");
        assert_eq!(
            client_ip(ip("10.0.0.1"), &headers, &trusted),
            ip("198.51.100.7")
        );
        let all_proxies = forwarded("10.0.0.9, 10.0.0.5");
        assert_eq!(
            client_ip(ip("10.0.0.1"), &all_proxies, &trusted),
            ip("10.0.0.9")
        );
        let garbage = forwarded("not-an-ip");
        assert_eq!(
            client_ip(ip("10.0.0.1"), &garbage, &trusted),
            ip("10.0.0.1")
        );
    }

    #[test]
    fn only_our_device_ids_are_read_back() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("pc_session=x; pc_device=dev_abc123"),
        );
        assert_eq!(device_cookie(&headers).as_deref(), Some("dev_abc123"));
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("pc_device=<script>"),
        );
        assert_eq!(device_cookie(&headers), None);
        let set = set_device_cookie("dev_abc123", true);
        assert!(
            set.contains("HttpOnly") && set.contains("SameSite=Strict") && set.ends_with("Secure")
        );
    }
}
