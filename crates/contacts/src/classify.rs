//! What a value is (phone, e-mail, domain, link, handle) and its one normal form: E.164 for a
//! phone number, the lower-case ASCII host (IDNA, UTS #46) for links, domains and e-mail
//! domains with its registrable domain under the public suffix list, and a handle lower-cased
//! without its `@`.

use crate::error::{ContactError, check_raw};
use crate::phone::{looks_like_phone, normalise_phone};
use serde::Serialize;
use std::net::IpAddr;

/// What kind of contact a value is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Phone,
    Email,
    Domain,
    Url,
    Handle,
}

impl Kind {
    pub const fn as_str(self) -> &'static str {
        match self {
            Kind::Phone => "phone",
            Kind::Email => "email",
            Kind::Domain => "domain",
            Kind::Url => "url",
            Kind::Handle => "handle",
        }
    }
}

/// A host name, reduced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Host {
    /// Lower-case ASCII (punycode for international names), without a trailing dot.
    pub ascii: String,
    /// The registrable domain (`binance.com` of `www.binance.com`); the address of an IP host.
    pub registrable: String,
    /// The public suffix (`com`, `co.uk`); empty for an IP address.
    pub suffix: String,
    /// The host is an IP address, not a name.
    pub ip: bool,
}

impl Host {
    /// The registrable domain's own label: `binance` of `binance.co.uk`.
    pub fn label(&self) -> &str {
        match self.suffix.is_empty() {
            true => &self.registrable,
            false => self
                .registrable
                .get(..self.registrable.len() - self.suffix.len() - 1)
                .unwrap_or_default(),
        }
    }

    /// What comes before the registrable domain: `a.b` of `a.b.binance.com`.
    pub fn subdomain(&self) -> &str {
        let cut = self.ascii.len() - self.registrable.len();
        self.ascii.get(..cut.saturating_sub(1)).unwrap_or_default()
    }
}

/// A value in its normal form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Normalized {
    pub kind: Kind,
    /// E.164, `local@host`, the host, or the handle.
    pub normalized: String,
    /// The host of an e-mail address, domain or link.
    pub host: Option<Host>,
    /// A link with something before an `@` in its address (`https://binance.com@evil.io`):
    /// the browser goes to what follows it.
    pub userinfo: bool,
}

/// Classifies and normalises `raw`. A national phone number needs `region`.
pub fn normalise(raw: &str, region: Option<&str>) -> Result<Normalized, ContactError> {
    let value = check_raw(raw)?;
    if let Some(handle) = value.strip_prefix('@') {
        return Ok(plain(Kind::Handle, normalise_handle(handle)?));
    }
    if looks_like_phone(value) {
        return Ok(plain(Kind::Phone, normalise_phone(value, region)?));
    }
    let lower = value.to_ascii_lowercase();
    if let Some(address) = lower.strip_prefix("mailto:") {
        return email(value.get(value.len() - address.len()..).unwrap_or(address));
    }
    if lower.contains("://") || lower.starts_with("www.") || value.contains('/') {
        return url(value);
    }
    if value.contains('@') {
        return email(value);
    }
    if value.contains('.') || value.contains(':') {
        let host = parse_host(value)?;
        return Ok(Normalized {
            kind: Kind::Domain,
            normalized: host.ascii.clone(),
            host: Some(host),
            userinfo: false,
        });
    }
    Ok(plain(Kind::Handle, normalise_handle(value)?))
}

fn plain(kind: Kind, normalized: String) -> Normalized {
    Normalized {
        kind,
        normalized,
        host: None,
        userinfo: false,
    }
}

/// A handle without `@`, lower-cased: letters, digits, `_` and `.`, 1 to 64 of them.
pub fn normalise_handle(raw: &str) -> Result<String, ContactError> {
    let handle = raw.trim().trim_start_matches('@').to_lowercase();
    let fine = (1..=64).contains(&handle.len())
        && handle
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'.');
    if fine {
        Ok(handle)
    } else {
        Err(ContactError::InvalidHandle)
    }
}

fn email(value: &str) -> Result<Normalized, ContactError> {
    let (local, domain) = value.rsplit_once('@').ok_or(ContactError::InvalidEmail)?;
    let local_fine = (1..=64).contains(&local.len())
        && !local
            .chars()
            .any(|c| c.is_whitespace() || matches!(c, '<' | '>' | '"' | '@'));
    if !local_fine {
        return Err(ContactError::InvalidEmail);
    }
    let host = parse_host(domain)?;
    if host.ip {
        return Err(ContactError::InvalidEmail);
    }
    Ok(Normalized {
        kind: Kind::Email,
        normalized: format!("{}@{}", local.to_lowercase(), host.ascii),
        host: Some(host),
        userinfo: false,
    })
}

fn url(value: &str) -> Result<Normalized, ContactError> {
    let with_scheme = match value.contains("://") {
        true => value.to_owned(),
        false => format!("http://{value}"),
    };
    let parsed = url::Url::parse(&with_scheme).map_err(|e| match e {
        url::ParseError::IdnaError if value.to_ascii_lowercase().contains("xn--") => {
            ContactError::InvalidPunycode
        }
        other => ContactError::InvalidUrl(other.to_string()),
    })?;
    let host = match parsed.host() {
        Some(url::Host::Domain(name)) => parse_host(name)?,
        Some(url::Host::Ipv4(ip)) => ip_host(IpAddr::V4(ip)),
        Some(url::Host::Ipv6(ip)) => ip_host(IpAddr::V6(ip)),
        None => return Err(ContactError::InvalidUrl("the link has no host".into())),
    };
    Ok(Normalized {
        kind: Kind::Url,
        normalized: host.ascii.clone(),
        userinfo: !parsed.username().is_empty() || parsed.password().is_some(),
        host: Some(host),
    })
}

fn ip_host(ip: IpAddr) -> Host {
    Host {
        ascii: ip.to_string(),
        registrable: ip.to_string(),
        suffix: String::new(),
        ip: true,
    }
}

/// A host name (or IP address) to its [`Host`].
pub fn parse_host(raw: &str) -> Result<Host, ContactError> {
    let name = raw.trim().trim_end_matches('.');
    let bare = name.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = bare.parse::<IpAddr>() {
        return Ok(ip_host(ip));
    }
    let ascii = match name.is_ascii() && !name.contains("xn--") && !name.contains("XN--") {
        // The common case: IDNA would only lower-case it.
        true => name.to_ascii_lowercase(),
        false => idna::domain_to_ascii(name).map_err(|_| {
            match name.to_ascii_lowercase().contains("xn--") {
                true => ContactError::InvalidPunycode,
                false => ContactError::InvalidDomain("not a valid international name".into()),
            }
        })?,
    };
    check_labels(&ascii)?;
    let registrable = psl::domain_str(&ascii)
        .ok_or_else(|| ContactError::InvalidDomain("no registrable domain".into()))?
        .to_owned();
    let suffix = psl::suffix_str(&ascii).unwrap_or_default().to_owned();
    Ok(Host {
        ascii,
        registrable,
        suffix,
        ip: false,
    })
}

/// At most 253 characters; labels of 1 to 63 letters, digits, `-` (not at either end) or `_`.
fn check_labels(ascii: &str) -> Result<(), ContactError> {
    if ascii.is_empty() || ascii.len() > 253 || !ascii.contains('.') {
        return Err(ContactError::InvalidDomain(
            "a domain is two or more labels, at most 253 characters".into(),
        ));
    }
    for label in ascii.split('.') {
        let fine = (1..=63).contains(&label.len())
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
        if !fine {
            return Err(ContactError::InvalidDomain(format!("bad label `{label}`")));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(raw: &str) -> (Kind, String) {
        let n = normalise(raw, None).unwrap();
        (n.kind, n.normalized)
    }

    #[test]
    fn each_kind_is_recognised_and_normalised() {
        assert_eq!(
            kind("+1 (415) 555-0100"),
            (Kind::Phone, "+14155550100".into())
        );
        assert_eq!(
            kind("Support@Binance.COM"),
            (Kind::Email, "support@binance.com".into())
        );
        assert_eq!(kind("mailto:a@b.io"), (Kind::Email, "a@b.io".into()));
        assert_eq!(
            kind("WWW.Binance.com."),
            (Kind::Url, "www.binance.com".into())
        );
        assert_eq!(kind("binance.com."), (Kind::Domain, "binance.com".into()));
        assert_eq!(
            kind("https://x.binance.co.uk/login?a=1"),
            (Kind::Url, "x.binance.co.uk".into())
        );
        assert_eq!(
            kind("@Binance_Support"),
            (Kind::Handle, "binance_support".into())
        );
        assert_eq!(kind("MetaMask"), (Kind::Handle, "metamask".into()));
        assert_eq!(kind("bücher.de"), (Kind::Domain, "xn--bcher-kva.de".into()));
        assert_eq!(kind("127.0.0.1"), (Kind::Domain, "127.0.0.1".into()));
    }

    #[test]
    fn hosts_are_cut_at_the_public_suffix() {
        let host = parse_host("a.b.binance.co.uk").unwrap();
        assert_eq!(host.registrable, "binance.co.uk");
        assert_eq!(host.suffix, "co.uk");
        assert_eq!(host.label(), "binance");
        assert_eq!(host.subdomain(), "a.b");
        assert_eq!(parse_host("binance.com").unwrap().subdomain(), "");
    }

    #[test]
    fn a_link_that_hides_its_host_behind_an_at_is_flagged() {
        let n = normalise("https://binance.com@evil.io/login", None).unwrap();
        assert_eq!(n.normalized, "evil.io");
        assert!(n.userinfo);
    }

    #[test]
    fn bad_values_get_stable_codes() {
        let code = |raw: &str| normalise(raw, None).unwrap_err().code();
        assert_eq!(code(""), "empty_value");
        assert_eq!(code("xn--zz-.com"), "invalid_punycode");
        assert_eq!(code("xn--a.com"), "invalid_punycode");
        assert_eq!(code("https://xn--a.com/"), "invalid_punycode");
        assert_eq!(code("bad_@"), "invalid_domain");
        assert_eq!(code("co.uk"), "invalid_domain");
        assert_eq!(code("-a.com"), "invalid_domain");
        assert_eq!(code("0171 555 0100"), "invalid_phone");
        assert_eq!(code("a b"), "invalid_handle");
        assert_eq!(code("http://"), "invalid_url");
    }
}
