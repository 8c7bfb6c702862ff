//! IP allow-lists: the IPv4 and IPv6 networks an API key may be used from.
//!
//! An empty list means "unrestricted", as on every exchange; the key authority treats that as a
//! risk in its own right (idle expiry, and `withdraw` will require a non-empty list).

pub use ipnet::IpNet;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::net::IpAddr;

/// An entry that is neither a CIDR network nor a bare IP address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid CIDR `{0}` (expected e.g. 203.0.113.0/24, 2001:db8::/32 or a bare address)")]
pub struct AllowListError(pub String);

/// Upper bound on entries: exchanges allow 30 or fewer; a bound keeps checks and rows small.
pub const MAX_ALLOWLIST_ENTRIES: usize = 64;

/// The networks a key may be used from, canonicalised (host bits cleared, sorted, deduplicated).
#[derive(Debug, Clone, PartialEq, Eq, Default, Hash)]
pub struct IpAllowList(Vec<IpNet>);

impl IpAllowList {
    pub fn unrestricted() -> Self {
        Self(Vec::new())
    }

    /// Parses entries such as `203.0.113.7/32`, `2001:db8::/48` or a bare `203.0.113.7`.
    pub fn parse<I, S>(entries: I) -> Result<Self, AllowListError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut nets = entries
            .into_iter()
            .map(|entry| parse_entry(entry.as_ref()))
            .collect::<Result<Vec<_>, _>>()?;
        nets.sort();
        nets.dedup();
        if nets.len() > MAX_ALLOWLIST_ENTRIES {
            return Err(AllowListError(format!(
                "{} entries (at most {MAX_ALLOWLIST_ENTRIES})",
                nets.len()
            )));
        }
        Ok(Self(nets))
    }

    pub fn is_unrestricted(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether a request from `ip` is allowed. IPv4-mapped IPv6 addresses match IPv4 entries.
    pub fn allows(&self, ip: IpAddr) -> bool {
        if self.0.is_empty() {
            return true;
        }
        // One mask and compare per entry, as integers: this runs on every verification.
        match canonical_ip(ip) {
            IpAddr::V4(ip) => {
                let ip = u32::from(ip);
                self.0.iter().any(|net| match net {
                    IpNet::V4(net) => {
                        (ip ^ u32::from(net.network())) & u32::from(net.netmask()) == 0
                    }
                    IpNet::V6(_) => false,
                })
            }
            IpAddr::V6(ip) => {
                let ip = u128::from(ip);
                self.0.iter().any(|net| match net {
                    IpNet::V6(net) => {
                        (ip ^ u128::from(net.network())) & u128::from(net.netmask()) == 0
                    }
                    IpNet::V4(_) => false,
                })
            }
        }
    }

    pub fn networks(&self) -> &[IpNet] {
        &self.0
    }

    pub fn entries(&self) -> Vec<String> {
        self.0.iter().map(ToString::to_string).collect()
    }

    /// Whether every address `self` allows is also allowed by `other` (so `other` is no wider).
    pub fn is_within(&self, other: &IpAllowList) -> bool {
        if other.is_unrestricted() {
            return true;
        }
        if self.is_unrestricted() {
            return false;
        }
        self.0
            .iter()
            .all(|mine| other.0.iter().any(|theirs| theirs.contains(mine)))
    }
}

/// One entry: an address, or an address and a prefix length. Both parts are read strictly
/// (the standard library's address parser, which refuses `01.2.3.4`, whose leading zero some
/// readers take for octal; a prefix of plain digits without a leading zero), so that an entry
/// means one network to every reader.
fn parse_entry(entry: &str) -> Result<IpNet, AllowListError> {
    let trimmed = entry.trim();
    let net = match trimmed.split_once('/') {
        Some((address, prefix)) => address
            .parse::<IpAddr>()
            .ok()
            .zip(parse_prefix(prefix))
            .and_then(|(address, prefix)| IpNet::new(address, prefix).ok()),
        None => trimmed.parse::<IpAddr>().ok().map(IpNet::from),
    };
    net.map(|n| n.trunc())
        .ok_or_else(|| AllowListError(entry.to_owned()))
}

fn parse_prefix(text: &str) -> Option<u8> {
    let plain = (1..=3).contains(&text.len())
        && text.bytes().all(|b| b.is_ascii_digit())
        && (text == "0" || !text.starts_with('0'));
    plain.then(|| text.parse().ok()).flatten()
}

fn canonical_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        IpAddr::V4(_) => ip,
    }
}

impl Serialize for IpAllowList {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.entries())
    }
}

impl<'de> Deserialize<'de> for IpAllowList {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let entries = Vec::<String>::deserialize(deserializer)?;
        IpAllowList::parse(&entries).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn empty_list_allows_everyone() {
        assert!(IpAllowList::unrestricted().allows(ip("198.51.100.1")));
    }

    #[test]
    fn matches_v4_v6_and_mapped_addresses() {
        let list = IpAllowList::parse(["203.0.113.0/24", "2001:db8::/32", "192.0.2.9"]).unwrap();
        assert!(list.allows(ip("203.0.113.77")));
        assert!(list.allows(ip("::ffff:203.0.113.5")));
        assert!(list.allows(ip("2001:db8:1::1")));
        assert!(list.allows(ip("192.0.2.9")));
        assert!(!list.allows(ip("192.0.2.10")));
        assert!(!list.allows(ip("2001:db9::1")));
    }

    #[test]
    fn integer_matching_agrees_with_ipnet_at_every_prefix_length() {
        let v6 = ip("2001:db8:85a3:8d3:1319:8a2e:370:7348");
        let v4 = ip("203.0.113.77");
        for (base, bits) in [(v6, 128u8), (v4, 32)] {
            for prefix in 0..=bits {
                let net = IpNet::new(base, prefix).unwrap().trunc();
                let list = IpAllowList::parse([net.to_string()]).unwrap();
                for flip in 0..bits {
                    let probe = match base {
                        IpAddr::V4(a) => {
                            IpAddr::from((u32::from(a) ^ (1u32 << flip)).to_be_bytes())
                        }
                        IpAddr::V6(a) => {
                            IpAddr::from((u128::from(a) ^ (1u128 << flip)).to_be_bytes())
                        }
                    };
                    assert_eq!(list.allows(probe), net.contains(&probe), "{probe} in {net}");
                }
                assert!(list.allows(base), "{base} in {net}");
                let other_family = if bits == 32 { v6 } else { ip("198.51.100.1") };
                assert!(!list.allows(other_family), "families never mix");
            }
        }
    }

    #[test]
    fn canonicalises_and_refuses_garbage() {
        let list = IpAllowList::parse(["10.1.2.3/8", "10.0.0.0/8"]).unwrap();
        assert_eq!(list.entries(), vec!["10.0.0.0/8"]);
        for bad in ["10.0.0.0/33", "not-an-ip", "10.0.0/8", "", "2001:db8::/129"] {
            assert!(IpAllowList::parse([bad]).is_err(), "{bad}");
        }
    }

    #[test]
    fn an_entry_means_one_network_to_every_reader() {
        // A leading zero reads as octal to some parsers (010 = 8): refused, not guessed.
        for ambiguous in [
            "010.0.0.1",
            "010.0.0.0/8",
            "10.0.0.0/08",
            "10.0.0.0/+8",
            "10.0.0.0/",
        ] {
            assert!(IpAllowList::parse([ambiguous]).is_err(), "{ambiguous}");
        }
        let list = IpAllowList::parse(["0.0.0.0/0", "2001:db8::1/48", " 192.0.2.7/32 "]).unwrap();
        assert_eq!(
            list.entries(),
            vec!["0.0.0.0/0", "192.0.2.7/32", "2001:db8::/48"]
        );
    }

    #[test]
    fn within_detects_widening() {
        let narrow = IpAllowList::parse(["203.0.113.7/32"]).unwrap();
        let wide = IpAllowList::parse(["203.0.113.0/24"]).unwrap();
        assert!(narrow.is_within(&wide));
        assert!(!wide.is_within(&narrow));
        assert!(!IpAllowList::unrestricted().is_within(&narrow));
        assert!(narrow.is_within(&IpAllowList::unrestricted()));
    }
}
