//! The IP allow-list: its parser (CIDR networks or bare addresses, host bits cleared, sorted,
//! deduplicated, at most 64; leading zeros refused) against `std`'s and `ipnet`'s readings
//! entry by entry; its
//! integer mask-and-compare `allows` (run on every verification) against `ipnet`'s `contains`
//! with IPv4-mapped addresses read as IPv4; and `is_within` (the widening check) never saying
//! "no wider" of a list that lets in an address the other refuses.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use portcullis_core::allowlist::{IpAllowList, IpNet, MAX_ALLOWLIST_ENTRIES};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// An entry as a customer might type it: well-formed often, anything at all sometimes.
#[derive(Debug, Arbitrary)]
enum Entry {
    V4 { address: [u8; 4], prefix: Option<u8>, padded: bool },
    V6 { address: [u8; 16], prefix: Option<u8>, padded: bool },
    Text(String),
}

impl Entry {
    fn text(&self) -> String {
        let (address, prefix, padded) = match self {
            Entry::V4 { address, prefix, padded } => {
                (IpAddr::from(*address).to_string(), prefix, padded)
            }
            Entry::V6 { address, prefix, padded } => {
                (IpAddr::from(*address).to_string(), prefix, padded)
            }
            Entry::Text(text) => return text.clone(),
        };
        let prefix = prefix.map(|p| format!("/{}", p % 140)).unwrap_or_default();
        let pad = if *padded { " " } else { "" };
        format!("{pad}{address}{prefix}{pad}")
    }
}

#[derive(Debug, Arbitrary)]
struct Input {
    mine: Vec<Entry>,
    theirs: Vec<Entry>,
    probes: Vec<(bool, [u8; 16])>,
}

/// One entry as `ipnet` reads it, host bits cleared, where that reading is unambiguous: the
/// address as `std` reads it (no leading zeros) and a prefix written as plain decimal digits.
fn entry(text: &str) -> Option<IpNet> {
    let text = text.trim();
    let net = match text.split_once('/') {
        Some((address, prefix)) => {
            address.parse::<IpAddr>().ok()?;
            let plain = prefix.bytes().all(|b| b.is_ascii_digit())
                && (prefix == "0" || !prefix.starts_with('0'));
            if !plain {
                return None;
            }
            text.parse::<IpNet>().ok()
        }
        None => text.parse::<IpAddr>().ok().map(IpNet::from),
    };
    net.map(|net| net.trunc())
}

fn reference(entries: &[String]) -> Option<Vec<IpNet>> {
    let mut nets = entries.iter().map(|e| entry(e)).collect::<Option<Vec<_>>>()?;
    nets.sort();
    nets.dedup();
    (nets.len() <= MAX_ALLOWLIST_ENTRIES).then_some(nets)
}

fn reference_allows(nets: &[IpNet], ip: IpAddr) -> bool {
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        IpAddr::V4(_) => ip,
    };
    nets.is_empty() || nets.iter().any(|net| net.contains(&ip))
}

fn probe((v4, bytes): &(bool, [u8; 16])) -> IpAddr {
    if *v4 {
        IpAddr::V4(Ipv4Addr::new(bytes[0], bytes[1], bytes[2], bytes[3]))
    } else {
        IpAddr::V6(Ipv6Addr::from(*bytes))
    }
}

fn parsed(entries: &[Entry]) -> (Vec<String>, Option<IpAllowList>) {
    let texts: Vec<String> = entries.iter().map(Entry::text).collect();
    let list = IpAllowList::parse(&texts);
    let expected = reference(&texts);
    assert_eq!(list.as_ref().ok().map(|l| l.networks().to_vec()), expected, "{texts:?}");
    if let Ok(list) = &list {
        assert_eq!(IpAllowList::parse(list.entries()).as_ref(), Ok(list), "round trip");
    }
    (texts, list.ok())
}

fuzz_target!(|input: Input| {
    let (_, mine) = parsed(&input.mine);
    let (_, theirs) = parsed(&input.theirs);
    // A few probes of the input's own (each is checked against every network of both lists).
    let mut probes: Vec<IpAddr> = input.probes.iter().take(16).map(probe).collect();
    for list in mine.iter().chain(theirs.iter()) {
        for net in list.networks() {
            probes.extend([net.network(), net.broadcast()]);
        }
    }
    for list in mine.iter().chain(theirs.iter()) {
        for &ip in &probes {
            assert_eq!(
                list.allows(ip),
                reference_allows(list.networks(), ip),
                "{ip} in {:?}",
                list.entries()
            );
        }
    }
    if let (Some(mine), Some(theirs)) = (&mine, &theirs)
        && mine.is_within(theirs)
    {
        for &ip in &probes {
            assert!(
                !mine.allows(ip) || theirs.allows(ip),
                "{:?} is said to be within {:?} but lets {ip} in",
                mine.entries(),
                theirs.entries()
            );
        }
    }
});
