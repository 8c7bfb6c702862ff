//! A customer: who they are (profile), what they own (devices, keys, wallets, a balance), and
//! their ordinary days: sign-ins from a phone or a laptop, at home, on mobile data or behind a
//! VPN; deposits; withdrawals to their own wallets; a bot trading through an API key. The
//! habits that look like a scam and are not live in `habits`; the scams in `scam`.

use crate::feed::{Ctx, Event, Feed, Label};
use crate::world::{
    Config, HOUR, MINUTE, Networks, Wallet, device_id, home_ip, round_usd, waking_time,
};
use rand::Rng as _;
use rand::seq::IndexedRandom as _;
use rand_chacha::ChaCha8Rng;
use serde_json::Value;

/// How a customer uses the exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    /// Buys, holds, sometimes withdraws; no API key, or a read-only one.
    Casual,
    /// Runs a bot through an API key from a rented server.
    Trader,
    /// Large balances, rare large withdrawals.
    Whale,
    /// Opens the account during the period.
    Newcomer,
}

/// Where a withdrawal goes, and through which key when it goes through the API.
#[derive(Debug, Clone, Copy)]
pub struct Route<'a> {
    pub wallet: &'a Wallet,
    pub key: Option<&'a str>,
}

impl<'a> Route<'a> {
    /// Asked for in a session (the app or the web).
    pub fn own(wallet: &'a Wallet) -> Self {
        Self { wallet, key: None }
    }

    /// Asked for through the API with `key`.
    pub fn api(wallet: &'a Wallet, key: &'a str) -> Self {
        Self {
            wallet,
            key: Some(key),
        }
    }
}

/// An API key as the customer left it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Key {
    pub id: String,
    pub scopes: Vec<&'static str>,
    pub allowlist: Vec<String>,
}

impl Key {
    pub fn can_withdraw(&self) -> bool {
        self.scopes.contains(&"withdraw")
    }
}

/// One customer and everything the simulation knows about them.
#[derive(Debug, Clone)]
pub struct Customer {
    pub id: String,
    pub profile: Profile,
    /// Hours east of UTC.
    pub tz: i64,
    /// `devices[0]` is the phone; a second is a laptop.
    pub devices: Vec<String>,
    pub home_ip: String,
    pub vpn: bool,
    /// The bot's server, for traders.
    pub server_ip: Option<String>,
    /// When the bot's current key and server were put in place (a key habit's change): the
    /// bot does not run on them before (`i64::MIN`: since before the period).
    pub bot_from: i64,
    pub keys: Vec<Key>,
    /// Their own wallets; the second field says whether the feed has seen them added.
    pub wallets: Vec<Wallet>,
    pub balance: f64,
    /// The day the account opened (negative: before the period).
    pub joined_day: i64,
    /// How they confirm sensitive actions.
    pub step_up: &'static str,
    /// While travelling: the foreign address and, maybe, a borrowed device.
    pub abroad: Option<(String, Option<String>)>,
    /// The label of ordinary withdrawals: `routine`, or the habit under way (`travel`).
    pub mood: &'static str,
    counter: u32,
}

impl Customer {
    pub fn new(index: u32, config: &Config, networks: &Networks, rng: &mut ChaCha8Rng) -> Self {
        let profile = match rng.random_range(0..100) {
            0..=54 => Profile::Casual,
            55..=84 => Profile::Trader,
            85..=89 => Profile::Whale,
            _ => Profile::Newcomer,
        };
        let joined_day = match profile {
            Profile::Newcomer => rng.random_range(0..i64::from(config.days.max(1))),
            _ => -rng.random_range(30..1500),
        };
        let mut devices = vec![device_id(rng)];
        if rng.random_bool(0.6) {
            devices.push(device_id(rng));
        }
        let balance = match profile {
            Profile::Casual | Profile::Newcomer => rng.random_range(150.0..8_000.0),
            Profile::Trader => rng.random_range(2_000.0..60_000.0),
            Profile::Whale => rng.random_range(50_000.0..800_000.0),
        };
        let step_up = *[
            "totp", "totp", "totp", "sms", "sms", "email", "passkey", "passkey",
        ]
        .choose(rng)
        .unwrap_or(&"totp");
        let mut customer = Self {
            id: format!("acc_{index:06}"),
            profile,
            tz: rng.random_range(-8..=9),
            devices,
            home_ip: home_ip(rng),
            vpn: rng.random_bool(0.1),
            server_ip: None,
            bot_from: i64::MIN,
            keys: Vec::new(),
            wallets: (0..rng.random_range(1..=3))
                .map(|_| Wallet::typical(rng))
                .collect(),
            balance: round_usd(balance),
            joined_day,
            step_up,
            abroad: None,
            mood: "routine",
            counter: 0,
        };
        if rng.random_bool(0.1) {
            let hot = networks.exchange_hot_wallets.choose(rng).cloned();
            customer.wallets.extend(hot);
        }
        if profile == Profile::Trader {
            customer.server_ip = Some(networks.cloud_ip(rng));
            let mut scopes = vec!["read", "trade"];
            if rng.random_bool(0.35) {
                scopes.push("withdraw");
            }
            let key = customer.next_id("k");
            let allowlist = customer
                .server_ip
                .iter()
                .map(|ip| format!("{ip}/32"))
                .collect();
            customer.keys.push(Key {
                id: key,
                scopes,
                allowlist,
            });
        } else if rng.random_bool(0.15) {
            let key = customer.next_id("k");
            customer.keys.push(Key {
                id: key,
                scopes: vec!["read"],
                allowlist: Vec::new(),
            });
        }
        customer
    }

    /// A fresh id for something the customer owns (`k`, `w`, ...).
    pub fn next_id(&mut self, prefix: &str) -> String {
        self.counter += 1;
        format!("{prefix}_{}_{}", &self.id[4..], self.counter)
    }

    /// Where an ordinary session comes from: the phone (the app) or the laptop (the web), at
    /// home, on mobile data or behind the VPN; now and then on the phone while in the app.
    pub fn session_ctx(&self, networks: &Networks, rng: &mut ChaCha8Rng) -> Ctx {
        let on_phone = self.devices.len() == 1 || rng.random_bool(0.7);
        let mut device = if on_phone {
            self.devices[0].clone()
        } else {
            self.devices[1].clone()
        };
        let ip = if let Some((ip, borrowed)) = &self.abroad {
            if let Some(borrowed) = borrowed {
                device = borrowed.clone();
            }
            ip.clone()
        } else if self.vpn && rng.random_bool(0.6) {
            networks.vpn_ip(rng)
        } else if on_phone && rng.random_bool(0.4) {
            networks.carrier_ip(rng)
        } else {
            self.home_ip.clone()
        };
        let channel = if device == self.devices[0] {
            "app"
        } else {
            "web"
        };
        Ctx {
            ip: Some(ip),
            device_id: Some(device),
            channel: Some(channel),
            call_active: channel == "app" && rng.random_bool(0.02),
            remote_access: rng.random_bool(0.003),
        }
    }

    /// A successful sign-in at `ts` from `ctx`.
    pub fn login(&self, feed: &mut Feed, ts: i64, ctx: &Ctx) {
        let method = if self.step_up == "passkey" {
            "passkey"
        } else {
            "password"
        };
        feed.push(
            Event::new(ts, "login", Some(&self.id))
                .field("method", method)
                .field("success", true)
                .ctx(ctx.clone()),
        );
    }

    pub fn deposit(&mut self, feed: &mut Feed, ts: i64, usd: f64) {
        let usd = round_usd(usd);
        self.balance += usd;
        feed.push(
            Event::new(ts, "deposit", Some(&self.id))
                .field("asset", "USDT")
                .field("amount", format!("{usd:.2}"))
                .field("amount_usd", usd),
        );
    }

    /// Adds a wallet to the address book (a decided event).
    pub fn add_wallet(
        &mut self,
        feed: &mut Feed,
        ts: i64,
        wallet: &Wallet,
        ctx: &Ctx,
        story: (Label, &'static str),
    ) {
        feed.push(
            Event::new(ts, "address.added", Some(&self.id))
                .field("address", wallet.address.as_str())
                .field("asset", wallet.asset)
                .field("network", wallet.network)
                .field("step_up", self.step_up)
                .ctx(ctx.clone())
                .truth(story.0, story.1),
        );
    }

    /// A withdrawal request (a decided event). Returns its withdrawal id.
    pub fn withdraw(
        &mut self,
        feed: &mut Feed,
        ts: i64,
        usd: f64,
        route: Route<'_>,
        ctx: &Ctx,
        story: (Label, &'static str),
    ) -> String {
        let Route { wallet: to, key } = route;
        let usd = round_usd(usd.min(self.balance).max(1.0));
        self.balance = (self.balance - usd).max(0.0);
        let id = self.next_id("w");
        let mut event = Event::new(ts, "withdrawal.requested", Some(&self.id))
            .field("withdrawal_id", id.as_str())
            .field("asset", to.asset)
            .field("network", to.network)
            .field("address", to.address.as_str())
            .field("amount", to.amount(usd))
            .field("amount_usd", usd);
        if let Some(key) = key {
            event = event.field("key_id", key);
        }
        feed.push(event.ctx(ctx.clone()).truth(story.0, story.1));
        id
    }

    /// A key change (created or updated; a decided event).
    pub fn key_event(
        &self,
        feed: &mut Feed,
        ts: i64,
        kind: &'static str,
        key: &Key,
        ctx: &Ctx,
        story: (Label, &'static str),
    ) {
        let scopes: Vec<Value> = key.scopes.iter().map(|s| Value::from(*s)).collect();
        let allowlist: Vec<Value> = key
            .allowlist
            .iter()
            .map(|s| Value::from(s.as_str()))
            .collect();
        feed.push(
            Event::new(ts, kind, Some(&self.id))
                .field("key_id", key.id.as_str())
                .field("scopes", scopes)
                .field("ip_allowlist", allowlist)
                .field("step_up", self.step_up)
                .ctx(ctx.clone())
                .truth(story.0, story.1),
        );
    }

    /// A summary of API calls made with `key` from `ip`.
    pub fn api_use(
        &self,
        feed: &mut Feed,
        ts: i64,
        key: &str,
        ip: &str,
        endpoint: &'static str,
        count: u32,
    ) {
        feed.push(
            Event::new(ts, "api_key.used", Some(&self.id))
                .field("key_id", key)
                .field("endpoint", endpoint)
                .field("count", count.max(1))
                .field("window_s", 3600)
                .ctx(Ctx::api(ip)),
        );
    }

    /// One ordinary day: sign-ins, deposits, withdrawals to their own wallets, the bot's
    /// traffic.
    pub fn ordinary_day(
        &mut self,
        day: i64,
        config: &Config,
        networks: &Networks,
        busy: bool,
        feed: &mut Feed,
        rng: &mut ChaCha8Rng,
    ) {
        let (logins, deposit_p, withdraw_p) = match self.profile {
            Profile::Casual | Profile::Newcomer => (usize::from(rng.random_bool(0.45)), 0.08, 0.06),
            Profile::Trader => (rng.random_range(0..=2), 0.15, 0.1),
            Profile::Whale => (usize::from(rng.random_bool(0.6)), 0.08, 0.04),
        };
        let withdraw_p = if busy { withdraw_p * 1.8 } else { withdraw_p };
        for _ in 0..logins {
            let ts = waking_time(rng, config, day, self.tz);
            let ctx = self.session_ctx(networks, rng);
            self.login(feed, ts, &ctx);
            if rng.random_bool(deposit_p) {
                let usd = self.typical_deposit(rng);
                self.deposit(feed, ts + rng.random_range(MINUTE..20 * MINUTE), usd);
            }
            if rng.random_bool(withdraw_p) && self.balance > 50.0 {
                let share = rng.random_range(0.05..0.5);
                let to = self.wallets.choose(rng).cloned();
                if let Some(to) = to {
                    let at = ts + rng.random_range(MINUTE..15 * MINUTE);
                    let story = (Label::Legit, self.mood);
                    self.withdraw(feed, at, self.balance * share, Route::own(&to), &ctx, story);
                }
            }
        }
        self.bot_day(day, config, feed, rng);
    }

    fn typical_deposit(&self, rng: &mut ChaCha8Rng) -> f64 {
        match self.profile {
            Profile::Casual | Profile::Newcomer => rng.random_range(50.0..2_000.0),
            Profile::Trader => rng.random_range(500.0..10_000.0),
            Profile::Whale => rng.random_range(10_000.0..200_000.0),
        }
    }

    /// The bot's hourly summaries and, for a bot that withdraws, a payout now and then.
    fn bot_day(&mut self, day: i64, config: &Config, feed: &mut Feed, rng: &mut ChaCha8Rng) {
        let (Some(server), Some(key)) = (self.server_ip.clone(), self.keys.first().cloned()) else {
            return;
        };
        let start = config.start_ms + day * crate::world::DAY;
        let mut ts = start + rng.random_range(0..3 * HOUR);
        while ts < start + crate::world::DAY {
            let endpoint = *[
                "POST /api/v3/order",
                "GET /api/v3/account",
                "GET /api/v3/openOrders",
            ]
            .choose(rng)
            .unwrap_or(&"GET /api/v3/account");
            let count = rng.random_range(5..600);
            // Not before its key and server exist (the draws are made all the same, so
            // that every other event of the feed stays as it was).
            if ts >= self.bot_from {
                self.api_use(feed, ts, &key.id, &server, endpoint, count);
            }
            ts += rng.random_range(HOUR..4 * HOUR);
        }
        if key.can_withdraw() && rng.random_bool(0.08) && self.balance > 100.0 {
            let to = self.wallets.first().cloned();
            if let Some(to) = to {
                let at = start + rng.random_range(0..crate::world::DAY);
                let usd = self.balance * rng.random_range(0.05..0.3);
                if at < self.bot_from {
                    return;
                }
                self.withdraw(
                    feed,
                    at,
                    usd,
                    Route::api(&to, &key.id),
                    &Ctx::api(&server),
                    (Label::Legit, "bot_payout"),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::world::stream;

    #[test]
    fn a_withdrawal_never_takes_more_than_the_balance() {
        let config = Config::new(10, 5, 1);
        let mut rng = stream(1, 9);
        let networks = Networks::new(&mut rng);
        let mut customer = Customer::new(1, &config, &networks, &mut rng);
        customer.balance = 100.0;
        let mut feed = Feed::default();
        let to = customer.wallets[0].clone();
        let ctx = customer.session_ctx(&networks, &mut rng);
        customer.withdraw(
            &mut feed,
            0,
            500.0,
            Route::own(&to),
            &ctx,
            (Label::Legit, "routine"),
        );
        assert_eq!(customer.balance, 0.0);
        assert!(feed.finish().events[0].contains("\"amount_usd\":100.0"));
    }
}
