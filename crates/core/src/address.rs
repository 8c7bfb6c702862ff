//! Withdrawal addresses in one comparable form, so that a case variant of an address is the same
//! address wherever Portcullis compares two (a confirmed fraud, a campaign mark, the allow-list).
//!
//! Only encodings whose case carries no meaning are changed:
//! - EVM addresses (`0x` and 40 hex digits, on Ethereum and every EVM chain): the mixed case of
//!   EIP-55 is only a checksum, so they compare in lower case.
//! - Bech32 and bech32m addresses (BTC `bc1…`, LTC `ltc1…`, Cosmos chains and the like): the
//!   encoding is case-insensitive but must not mix cases (BIP-173), so an all-upper-case one (as
//!   in QR codes) compares in lower case.
//!
//! Everything else (base58 as on TRON, Solana and legacy Bitcoin, where case is part of the
//! address) is compared exactly as sent, after trimming surrounding spaces.

use std::borrow::Cow;

/// The bech32 data alphabet (BIP-173), in upper case.
const BECH32_UPPER: &[u8] = b"QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L";

/// `address` in the form it is compared in. The encodings are told apart by their shape, not
/// by the network named beside them, so an address named without its network (a confirmed
/// fraud's) compares the same, and a network named in another spelling ("ERC20", "ETH",
/// "ARBITRUM") changes nothing.
pub fn canonical(address: &str) -> Cow<'_, str> {
    let trimmed = address.trim();
    if is_evm(trimmed) || is_upper_bech32(trimmed) {
        return Cow::Owned(trimmed.to_ascii_lowercase());
    }
    Cow::Borrowed(trimmed)
}

fn is_evm(address: &str) -> bool {
    address.len() == 42
        && (address.starts_with("0x") || address.starts_with("0X"))
        && address[2..].bytes().all(|b| b.is_ascii_hexdigit())
}

/// An all-upper-case bech32 string: a human-readable part, the separator `1` (the last one),
/// and at least the six checksum characters from the data alphabet (BIP-173's limit is 90
/// characters in all; bech32m addresses of newer chains may be longer, up to 1023 here).
fn is_upper_bech32(address: &str) -> bool {
    let Some(separator) = address.rfind('1') else {
        return false;
    };
    let (hrp, data) = (&address[..separator], &address[separator + 1..]);
    !hrp.is_empty()
        && address.len() <= 1023
        && hrp
            .bytes()
            .all(|b| (33..=126).contains(&b) && !b.is_ascii_lowercase())
        && data.len() >= 6
        && data.bytes().all(|b| BECH32_UPPER.contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evm_addresses_compare_whatever_their_case() {
        // EIP-55's own example, and the same address in lower and upper case.
        let checksummed = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed";
        let lower = canonical(checksummed);
        assert_eq!(lower, "0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed");
        assert_eq!(canonical(&checksummed.to_ascii_lowercase()), lower);
        assert_eq!(
            canonical("0X5AAEB6053F3E94C9B9A09F33669435E7EF1BEAED"),
            lower
        );
        assert_eq!(
            canonical(" 0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed "),
            lower
        );
    }

    #[test]
    fn bech32_addresses_compare_in_lower_case() {
        // BIP-173's test vector, as written in a QR code and as usually written.
        let upper = "BC1QW508D6QEJXTDG4Y5R3ZARVARY0C5XW7KV8F3T4";
        let lower = "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4";
        assert_eq!(canonical(upper), lower);
        assert_eq!(canonical(lower), lower);
    }

    #[test]
    fn case_sensitive_encodings_are_left_as_sent() {
        for address in [
            "TQ5NJ9pW3R8aG5zWkT4qCFx7yM2dVQ4Hq9",          // TRON, base58
            "1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN2",          // legacy Bitcoin, base58
            "7EcDhSYGxXyscszYEp35KHN8vvw3svAuLKTzXwCFLtV", // Solana, base58
            "bc1QW508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4",  // mixed case: not valid bech32
            "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAe",   // 39 hex digits
        ] {
            assert_eq!(canonical(address), address);
        }
    }
}
