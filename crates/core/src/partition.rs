//! Which partition of the event stream an event belongs to: `FNV-1a-32(account) mod N`, the
//! hash nats-server's `{{partition(N,...)}}` subject mapping uses (Go's `hash/fnv` `New32a`
//! over the token's bytes, the remainder written in decimal), so a server's stream transform
//! can take the routing over and send each account where `portcullis publish` sends it.
//! Events without an account, and those that concern every account (`market.activity`,
//! `fraud.confirmed`), go to the `global` subject every engine reads.

use crate::contract::{ContractEvent, EventBody};

/// The subject suffix of events that every partition's engine must see.
pub const GLOBAL: &str = "global";

const FNV_OFFSET_BASIS: u32 = 0x811c_9dc5;
const FNV_PRIME: u32 = 0x0100_0193;

/// The 32-bit FNV-1a hash of `bytes`.
pub fn fnv1a_32(bytes: &[u8]) -> u32 {
    bytes.iter().fold(FNV_OFFSET_BASIS, |hash, &byte| {
        (hash ^ u32::from(byte)).wrapping_mul(FNV_PRIME)
    })
}

/// The partition (0 to `partitions - 1`) of an account; `partitions` is at least 1.
pub fn partition_of(account: &str, partitions: u32) -> u32 {
    fnv1a_32(account.as_bytes()) % partitions.max(1)
}

/// The partition of an event, or `None` for the events every partition must see: those
/// without an account, and those that concern every account (`market.activity`,
/// `fraud.confirmed`).
pub fn event_partition(event: &ContractEvent, partitions: u32) -> Option<u32> {
    let concerns_all = matches!(
        event.body,
        EventBody::MarketActivity { .. } | EventBody::FraudConfirmed { .. }
    );
    match &event.account {
        Some(account) if !concerns_all => Some(partition_of(account, partitions)),
        _ => None,
    }
}

/// The subject suffix of an event: its partition number, or [`GLOBAL`].
pub fn subject_suffix(event: &ContractEvent, partitions: u32) -> String {
    event_partition(event, partitions).map_or_else(|| GLOBAL.to_owned(), |p| p.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::parse_line;

    #[test]
    fn the_hash_is_fnv_1a_32() {
        // The published test vectors of FNV-1a (32 bits).
        assert_eq!(fnv1a_32(b""), 0x811c_9dc5);
        assert_eq!(fnv1a_32(b"a"), 0xe40c_292c);
        assert_eq!(fnv1a_32(b"foobar"), 0xbf9c_f968);
    }

    #[test]
    fn partitions_are_the_ones_nats_server_maps_to() {
        // nats-server's documentation of `{{partition(3,1)}}` on `neworders.*`, and of
        // `{{partition(10,1,2)}}` on `foo.*.*` (the two tokens hashed together).
        let three = [
            "customerid1",
            "customerid2",
            "customerid3",
            "customerid4",
            "customerid5",
        ];
        let mapped: Vec<u32> = three.iter().map(|a| partition_of(a, 3)).collect();
        assert_eq!(mapped, [0, 2, 1, 2, 1]);
        assert_eq!(partition_of("customerid6", 3), 0);
        let ten: Vec<u32> = ["1a", "1b", "2b", "2a"]
            .iter()
            .map(|a| partition_of(a, 10))
            .collect();
        assert_eq!(ten, [1, 0, 9, 2]);
        assert_eq!(partition_of("anything", 1), 0);
        assert_eq!(partition_of("anything", 0), 0, "no partitions reads as one");
    }

    #[test]
    fn market_and_fraud_facts_and_account_less_events_are_global() {
        let event = |line: &str| parse_line(line).unwrap();
        let login = event(
            r#"{"id":"l1","ts":"2025-07-28T14:00:00Z","type":"login","account":"customerid2","method":"password","success":true}"#,
        );
        assert_eq!(subject_suffix(&login, 3), "2");
        let market = event(
            r#"{"id":"m1","ts":"2026-03-02T00:00:00.000Z","type":"market.activity","market":"*","volume_ratio":0.99,"volatility":0.52}"#,
        );
        assert_eq!(subject_suffix(&market, 3), GLOBAL);
        let fraud = event(
            r#"{"id":"f1","ts":"2026-03-06T20:44:05.514Z","type":"fraud.confirmed","account":"customerid2","addresses":["0x5DBa26D1F32EFe8cF9BF8a0a831d4DAFbDbbafaA"],"from":["+443546329167"],"note":"fake support call"}"#,
        );
        assert_eq!(subject_suffix(&fraud, 3), GLOBAL);
    }
}
