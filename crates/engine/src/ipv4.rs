//! Reading an IPv4 address from its text, as the standard library's `Ipv4Addr` reader does
//! (four decimal octets of one to three digits, no leading zero, none above 255, nothing
//! else), with a little less work: the engine reads the IP of an event up to four times (its
//! key in the account's list, the features, the graph's node and its stored text); on the
//! replay bench's feed this took IPv4 reading from 325 to 274 instructions an event
//! (2026-12-07, branch `speed4`). Anything else (IPv6, other spellings) is the standard
//! reader's, as before.

use std::net::{IpAddr, Ipv4Addr};

/// `text` as an IPv4 address, exactly when `text.parse::<Ipv4Addr>()` reads one.
pub(crate) fn parse_v4(text: &str) -> Option<Ipv4Addr> {
    let bytes = text.as_bytes();
    if bytes.len() > 15 {
        return None;
    }
    let mut octets = [0u8; 4];
    let mut at = 0;
    for (n, octet) in octets.iter_mut().enumerate() {
        if n > 0 {
            if bytes.get(at) != Some(&b'.') {
                return None;
            }
            at += 1;
        }
        let start = at;
        let mut value: u32 = 0;
        while let Some(digit @ b'0'..=b'9') = bytes.get(at) {
            value = value * 10 + u32::from(digit - b'0');
            at += 1;
            if at - start > 3 {
                return None;
            }
        }
        let digits = at - start;
        if digits == 0 || (digits > 1 && bytes[start] == b'0') {
            return None;
        }
        *octet = u8::try_from(value).ok()?;
    }
    (at == bytes.len()).then(|| Ipv4Addr::from(octets))
}

/// `text` as an IP address, exactly when `text.parse::<IpAddr>()` reads one.
pub(crate) fn parse(text: &str) -> Option<IpAddr> {
    match parse_v4(text) {
        Some(v4) => Some(IpAddr::V4(v4)),
        None => text.parse().ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agrees(text: &str) {
        assert_eq!(parse_v4(text), text.parse::<Ipv4Addr>().ok(), "{text:?}");
        assert_eq!(parse(text), text.parse::<IpAddr>().ok(), "{text:?}");
    }

    #[test]
    fn reads_what_the_standard_reader_reads_and_nothing_else() {
        // Every text of up to five bytes over an alphabet of digits, dots and a few others.
        let alphabet = b"0125.9:a +";
        let mut texts = vec![String::new()];
        for _ in 0..5 {
            let longer: Vec<String> = texts
                .iter()
                .filter(|t| t.len() == texts.last().map_or(0, String::len))
                .flat_map(|t| alphabet.iter().map(move |&b| format!("{t}{}", b as char)))
                .collect();
            texts.extend(longer);
        }
        for text in &texts {
            agrees(text);
        }
        // Whole addresses: every octet value and spelling around the limits, in each place.
        let octets = [
            "0", "00", "01", "1", "9", "10", "99", "100", "199", "255", "256", "299", "300", "999",
            "0255", "1000", "", "+1", "-1", " 1", "1 ", "\u{663}",
        ];
        for octet in octets {
            for place in 0..4 {
                let mut parts = ["10", "1", "2", "3"];
                parts[place] = octet;
                agrees(&parts.join("."));
            }
        }
        for text in [
            "1.2.3",
            "1.2.3.4.",
            ".1.2.3.4",
            "1.2.3.4.5",
            "1..2.3",
            "255.255.255.255",
            "0.0.0.0",
            "203.0.113.7",
            "010.1.1.1",
            "1.2.3.4 ",
            "::1",
            "::ffff:1.2.3.4",
            "2001:db8::1",
            "1.2.3.04",
            "255.255.255.2555",
            "1.2.3.4\n",
        ] {
            agrees(text);
        }
    }
}
