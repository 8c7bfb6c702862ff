//! The world a simulated exchange lives in: its settings, the shared networks (home ISPs,
//! mobile carriers that put thousands of phones behind a few addresses, VPN exits, cloud
//! hosts that bots and attackers alike rent), and the look of addresses, ids and times.

use rand::Rng as _;
use rand::SeedableRng as _;
use rand::seq::IndexedRandom as _;
use rand_chacha::ChaCha8Rng;

pub const MINUTE: i64 = 60_000;
pub const HOUR: i64 = 60 * MINUTE;
pub const DAY: i64 = 24 * HOUR;

/// What to simulate.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub accounts: u32,
    pub days: u32,
    pub seed: u64,
    /// Event time of the first day's midnight (UTC), in milliseconds.
    pub start_ms: i64,
    /// Share of the accounts that a scam crew calls over the period; about a third of them
    /// fall for it, the rest hang up (the hard negatives that campaign signals must not hold).
    pub called_share: f64,
}

impl Config {
    /// 2026-03-02T00:00:00Z: a Monday.
    pub const DEFAULT_START_MS: i64 = 1_772_409_600_000;

    pub fn new(accounts: u32, days: u32, seed: u64) -> Self {
        Self {
            accounts,
            days,
            seed,
            start_ms: Self::DEFAULT_START_MS,
            called_share: 0.06,
        }
    }

    pub fn end_ms(&self) -> i64 {
        self.start_ms + i64::from(self.days) * DAY
    }
}

/// An independent random stream per story, so that one customer's life does not shift
/// another's when a habit changes: the same seed gives the same feed.
pub fn stream(seed: u64, story: u64) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(story);
    rng
}

/// The story numbers of `stream`.
pub mod stories {
    pub const WORLD: u64 = 1;
    pub const MARKET: u64 = 2;
    pub const CREWS: u64 = 3;
    /// Customer `n` uses `CUSTOMER_BASE + n`.
    pub const CUSTOMER_BASE: u64 = 1 << 32;
}

/// Addresses many people share.
#[derive(Debug, Clone)]
pub struct Networks {
    /// Mobile carriers' public addresses: each phone session draws one, strangers share them.
    pub carrier: Vec<String>,
    /// Commercial VPN exits, shared by their customers and, sometimes, by attackers.
    pub vpn: Vec<String>,
    /// Cloud prefixes where bots (and attackers' servers) live.
    pub cloud_prefixes: Vec<(u8, u8)>,
    /// Hot-wallet addresses of other exchanges (with a memo per customer): many customers
    /// withdraw to the same one.
    pub exchange_hot_wallets: Vec<Wallet>,
}

impl Networks {
    pub fn new(rng: &mut ChaCha8Rng) -> Self {
        let carrier = (0..300)
            .map(|_| {
                let prefix = *[(172, 56), (100, 128), (176, 12)]
                    .choose(rng)
                    .unwrap_or(&(172, 56));
                ipv4(rng, prefix)
            })
            .collect();
        let vpn = (0..80)
            .map(|_| {
                let prefix = *[(185, 159), (146, 70), (89, 187)]
                    .choose(rng)
                    .unwrap_or(&(185, 159));
                ipv4(rng, prefix)
            })
            .collect();
        let cloud_prefixes = vec![
            (3, 120),
            (18, 196),
            (34, 89),
            (52, 28),
            (54, 93),
            (95, 216),
            (167, 99),
            (45, 77),
        ];
        let exchange_hot_wallets = (0..6).map(|_| Wallet::random(rng, Chain::Xrp)).collect();
        Self {
            carrier,
            vpn,
            cloud_prefixes,
            exchange_hot_wallets,
        }
    }

    pub fn carrier_ip(&self, rng: &mut ChaCha8Rng) -> String {
        pick(rng, &self.carrier)
    }

    pub fn vpn_ip(&self, rng: &mut ChaCha8Rng) -> String {
        pick(rng, &self.vpn)
    }

    /// A fresh server in a cloud range.
    pub fn cloud_ip(&self, rng: &mut ChaCha8Rng) -> String {
        let prefix = *self.cloud_prefixes.choose(rng).unwrap_or(&(3, 120));
        ipv4(rng, prefix)
    }
}

fn pick(rng: &mut ChaCha8Rng, from: &[String]) -> String {
    from.choose(rng)
        .cloned()
        .unwrap_or_else(|| "192.0.2.1".into())
}

/// A public IPv4 address under `a.b`.
pub fn ipv4(rng: &mut ChaCha8Rng, (a, b): (u8, u8)) -> String {
    format!(
        "{a}.{b}.{}.{}",
        rng.random_range(0..=255u8),
        rng.random_range(1..=254u8)
    )
}

/// A home broadband address: stable for weeks, in one of many ISP ranges.
pub fn home_ip(rng: &mut ChaCha8Rng) -> String {
    const ISPS: [(u8, u8); 10] = [
        (81, 2),
        (90, 76),
        (86, 150),
        (24, 48),
        (73, 92),
        (2, 84),
        (79, 143),
        (109, 190),
        (201, 17),
        (121, 134),
    ];
    let prefix = *ISPS.choose(rng).unwrap_or(&ISPS[0]);
    ipv4(rng, prefix)
}

/// An address far from home: a hotel, a café, a foreign carrier.
pub fn travel_ip(rng: &mut ChaCha8Rng) -> String {
    let prefix = (rng.random_range(11..=223u8), rng.random_range(0..=255u8));
    ipv4(rng, prefix)
}

pub fn device_id(rng: &mut ChaCha8Rng) -> String {
    format!("d_{:012x}", rng.random::<u64>() & 0xffff_ffff_ffff)
}

/// A caller's number in E.164, sometimes written the way a person would type it.
pub fn phone_number(rng: &mut ChaCha8Rng) -> String {
    const COUNTRIES: [&str; 6] = ["+44", "+1", "+49", "+33", "+34", "+7"];
    let country = COUNTRIES.choose(rng).unwrap_or(&"+44");
    format!(
        "{country}{}",
        rng.random_range(2_000_000_000u64..9_999_999_999)
    )
}

/// Blockchains the simulation uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Chain {
    Tron,
    Ethereum,
    Bitcoin,
    Xrp,
}

/// A withdrawal destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wallet {
    pub address: String,
    pub asset: &'static str,
    pub network: &'static str,
}

const BASE58: &[u8] = b"123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";
const BECH32: &[u8] = b"qpzry9x8gf2tvdw0s3jn54khce6mua7l";
const HEX_MIXED: &[u8] = b"0123456789abcdefABCDEF";

fn chars(rng: &mut ChaCha8Rng, alphabet: &[u8], n: usize) -> String {
    (0..n)
        .map(|_| char::from(alphabet[rng.random_range(0..alphabet.len())]))
        .collect()
}

impl Wallet {
    pub fn random(rng: &mut ChaCha8Rng, chain: Chain) -> Self {
        match chain {
            Chain::Tron => Self {
                address: format!("T{}", chars(rng, BASE58, 33)),
                asset: "USDT",
                network: "TRX",
            },
            // Checksummed (mixed-case) as wallets display them: the engine must compare
            // addresses canonically.
            Chain::Ethereum => Self {
                address: format!("0x{}", chars(rng, HEX_MIXED, 40)),
                asset: "USDT",
                network: "ETH",
            },
            Chain::Bitcoin => Self {
                address: format!("bc1q{}", chars(rng, BECH32, 38)),
                asset: "BTC",
                network: "BTC",
            },
            Chain::Xrp => Self {
                address: format!("r{}", chars(rng, BASE58, 33)),
                asset: "XRP",
                network: "XRP",
            },
        }
    }

    /// Mostly USDT on Tron, as in the 2025 campaigns.
    pub fn typical(rng: &mut ChaCha8Rng) -> Self {
        let chain = match rng.random_range(0..10) {
            0..=5 => Chain::Tron,
            6..=7 => Chain::Ethereum,
            8 => Chain::Bitcoin,
            _ => Chain::Xrp,
        };
        Self::random(rng, chain)
    }

    /// The amount in the asset's unit for `usd` (fixed prices: the engine reads `amount_usd`).
    pub fn amount(&self, usd: f64) -> String {
        match self.asset {
            "BTC" => format!("{:.8}", usd / 60_000.0),
            "XRP" => format!("{:.6}", usd / 0.5),
            _ => format!("{usd:.2}"),
        }
    }
}

/// A time of day in the customer's waking hours, `day` days after the start.
pub fn waking_time(rng: &mut ChaCha8Rng, config: &Config, day: i64, tz_hours: i64) -> i64 {
    let local = rng.random_range(7 * HOUR..23 * HOUR);
    config.start_ms + day * DAY + local - tz_hours * HOUR
}

/// Whether `day` (counted from the start) is a busy market day.
pub fn is_busy(busy: &[bool], day: i64) -> bool {
    usize::try_from(day)
        .ok()
        .and_then(|d| busy.get(d))
        .copied()
        .unwrap_or(false)
}

/// A USD amount rounded as people type it.
pub fn round_usd(usd: f64) -> f64 {
    if usd >= 1_000.0 {
        (usd / 10.0).round() * 10.0
    } else {
        (usd * 100.0).round() / 100.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_story_number_gives_the_same_stream() {
        let a: u64 = stream(7, 42).random();
        let b: u64 = stream(7, 42).random();
        let c: u64 = stream(7, 43).random();
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn addresses_look_like_their_chains() {
        let mut rng = stream(1, 1);
        assert!(
            Wallet::random(&mut rng, Chain::Tron)
                .address
                .starts_with('T')
        );
        assert_eq!(Wallet::random(&mut rng, Chain::Ethereum).address.len(), 42);
        assert!(
            Wallet::random(&mut rng, Chain::Bitcoin)
                .address
                .starts_with("bc1q")
        );
    }
}
