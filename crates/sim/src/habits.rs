//! Habits that look like a scam and are not: the hard negatives a policy must let through.
//! A customer moves everything to a new wallet, a bot moves to a new server, a trader turns
//! on withdrawals, a traveller signs in from abroad on a borrowed laptop, someone gets a new
//! phone, a whale moves funds to cold storage, a newcomer buys and withdraws on day one.

use crate::customer::{Customer, Key, Profile, Route};
use crate::feed::{Feed, Label};
use crate::world::{
    Config, DAY, HOUR, MINUTE, Networks, Wallet, device_id, travel_ip, waking_time,
};
use rand::Rng as _;
use rand_chacha::ChaCha8Rng;

/// One habit, played on one day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Habit {
    /// Adds a wallet and moves most of the balance to it within hours.
    NewWallet,
    /// Points the bot's key at a new server.
    BotMigration,
    /// Turns on `withdraw` for the bot's key and withdraws through it.
    EnableWithdraw,
    /// Creates a key for a new bot on a rented server.
    NewBotKey,
    /// Days abroad: foreign addresses, sometimes a borrowed device, a new wallet.
    Travel,
    /// A new phone: a new device, soon a change.
    NewPhone,
    /// Most of the balance to a wallet they already use (cold storage).
    BigMove,
    /// A session with a remote-desktop tool running (helping themselves from another room).
    RemoteHelp,
    /// The account's first day: sign-in, deposit, often a wallet and a withdrawal.
    Onboarding,
}

impl Habit {
    pub fn label(self) -> &'static str {
        match self {
            Habit::NewWallet => "new_wallet",
            Habit::BotMigration => "bot_migration",
            Habit::EnableWithdraw => "enable_withdraw",
            Habit::NewBotKey => "new_bot_key",
            Habit::Travel => "travel",
            Habit::NewPhone => "new_phone",
            Habit::BigMove => "big_move",
            Habit::RemoteHelp => "remote_help",
            Habit::Onboarding => "onboarding",
        }
    }
}

/// The habits a customer will play, by day.
pub fn schedule(customer: &Customer, config: &Config, rng: &mut ChaCha8Rng) -> Vec<(i64, Habit)> {
    let first = customer.joined_day.max(0);
    let days = i64::from(config.days);
    let mut plan = Vec::new();
    if customer.profile == Profile::Newcomer {
        plan.push((first, Habit::Onboarding));
    }
    let trader = customer.profile == Profile::Trader;
    let withdraws = customer.keys.first().is_some_and(Key::can_withdraw);
    let chances = [
        (Habit::NewWallet, 0.10),
        (Habit::BotMigration, if trader { 0.15 } else { 0.0 }),
        (
            Habit::EnableWithdraw,
            if trader && !withdraws { 0.08 } else { 0.0 },
        ),
        (Habit::NewBotKey, if trader { 0.0 } else { 0.04 }),
        (Habit::Travel, 0.07),
        (Habit::NewPhone, 0.05),
        (
            Habit::BigMove,
            if customer.profile == Profile::Whale {
                0.2
            } else {
                0.04
            },
        ),
        (Habit::RemoteHelp, 0.01),
    ];
    for (habit, chance) in chances {
        if first < days && rng.random_bool(chance) {
            plan.push((rng.random_range(first..days), habit));
        }
    }
    plan
}

/// Plays `habit` on `day`.
pub fn play(
    habit: Habit,
    customer: &mut Customer,
    day: i64,
    config: &Config,
    networks: &Networks,
    feed: &mut Feed,
    rng: &mut ChaCha8Rng,
) {
    let ts = waking_time(rng, config, day, customer.tz);
    let story = (Label::Legit, habit.label());
    match habit {
        Habit::NewWallet | Habit::NewPhone | Habit::Onboarding => {
            if habit == Habit::NewPhone {
                customer.devices[0] = device_id(rng);
            }
            let ctx = customer.session_ctx(networks, rng);
            customer.login(feed, ts, &ctx);
            if habit == Habit::Onboarding || rng.random_bool(0.5) {
                let usd = rng.random_range(100.0..5_000.0);
                customer.deposit(feed, ts + 2 * MINUTE, usd);
            }
            let moves = match habit {
                Habit::NewWallet => true,
                Habit::NewPhone => rng.random_bool(0.5),
                _ => rng.random_bool(0.6),
            };
            if moves {
                let wallet = Wallet::typical(rng);
                let added = ts + rng.random_range(3 * MINUTE..30 * MINUTE);
                customer.add_wallet(feed, added, &wallet, &ctx, story);
                customer.wallets.push(wallet.clone());
                let share = if habit == Habit::NewPhone {
                    rng.random_range(0.1..0.5)
                } else {
                    rng.random_range(0.6..1.0)
                };
                let at = added + rng.random_range(5 * MINUTE..12 * HOUR);
                let usd = customer.balance * share;
                customer.withdraw(feed, at, usd, Route::own(&wallet), &ctx, story);
            }
        }
        Habit::BotMigration | Habit::EnableWithdraw | Habit::NewBotKey => {
            bot_change(habit, customer, ts, networks, feed, rng)
        }
        Habit::Travel => {
            let borrowed = rng.random_bool(0.3).then(|| device_id(rng));
            customer.abroad = Some((travel_ip(rng), borrowed));
            customer.mood = "travel";
            let ctx = customer.session_ctx(networks, rng);
            customer.login(feed, ts, &ctx);
            if rng.random_bool(0.3) {
                let wallet = Wallet::typical(rng);
                customer.add_wallet(feed, ts + 5 * MINUTE, &wallet, &ctx, story);
                let usd = customer.balance * rng.random_range(0.05..0.3);
                customer.withdraw(
                    feed,
                    ts + rng.random_range(10 * MINUTE..6 * HOUR),
                    usd,
                    Route::own(&wallet),
                    &ctx,
                    story,
                );
            }
        }
        Habit::BigMove | Habit::RemoteHelp => {
            let mut ctx = customer.session_ctx(networks, rng);
            ctx.remote_access = habit == Habit::RemoteHelp;
            customer.login(feed, ts, &ctx);
            let share = if habit == Habit::BigMove {
                rng.random_range(0.85..1.0)
            } else {
                rng.random_range(0.1..0.6)
            };
            if let Some(wallet) = customer.wallets.first().cloned() {
                let usd = customer.balance * share;
                customer.withdraw(
                    feed,
                    ts + rng.random_range(2 * MINUTE..20 * MINUTE),
                    usd,
                    Route::own(&wallet),
                    &ctx,
                    story,
                );
            }
        }
    }
}

/// Comes home after `days` abroad (ordinary days then use the home addresses again).
pub fn travel_ends(customer: &mut Customer) {
    customer.abroad = None;
    customer.mood = "routine";
}

/// How long a trip lasts.
pub fn trip_days(rng: &mut ChaCha8Rng) -> i64 {
    rng.random_range(3..=10)
}

/// A customer's own change to a bot's key, then the bot at work on it.
fn bot_change(
    habit: Habit,
    customer: &mut Customer,
    ts: i64,
    networks: &Networks,
    feed: &mut Feed,
    rng: &mut ChaCha8Rng,
) {
    let story = (Label::Legit, habit.label());
    let ctx = customer.session_ctx(networks, rng);
    customer.login(feed, ts, &ctx);
    let changed = ts + rng.random_range(2 * MINUTE..15 * MINUTE);
    let (kind, key) = match habit {
        Habit::NewBotKey => {
            let server = networks.cloud_ip(rng);
            let mut scopes = vec!["read", "trade"];
            if rng.random_bool(0.5) {
                scopes.push("withdraw");
            }
            let id = customer.next_id("k");
            customer.server_ip = Some(server.clone());
            let key = Key {
                id,
                scopes,
                allowlist: vec![format!("{server}/32")],
            };
            customer.keys.insert(0, key.clone());
            ("api_key.created", key)
        }
        _ => {
            let Some(key) = customer.keys.first_mut() else {
                return;
            };
            if habit == Habit::BotMigration {
                let server = networks.cloud_ip(rng);
                if rng.random_bool(0.7) {
                    key.allowlist.clear();
                }
                key.allowlist.push(format!("{server}/32"));
                customer.server_ip = Some(server);
            } else {
                key.scopes.push("withdraw");
            }
            ("api_key.updated", key.clone())
        }
    };
    customer.key_event(feed, changed, kind, &key, &ctx, story);
    customer.bot_from = changed;
    let Some(server) = customer.server_ip.clone() else {
        return;
    };
    customer.api_use(
        feed,
        changed + rng.random_range(MINUTE..30 * MINUTE),
        &key.id,
        &server,
        "GET /api/v3/account",
        3,
    );
    if key.can_withdraw()
        && customer.balance > 50.0
        && (habit == Habit::EnableWithdraw || rng.random_bool(0.5))
    {
        let mut wallet = customer
            .wallets
            .first()
            .cloned()
            .unwrap_or_else(|| Wallet::typical(rng));
        if habit == Habit::EnableWithdraw && rng.random_bool(0.4) {
            wallet = Wallet::typical(rng);
            customer.add_wallet(feed, changed + MINUTE, &wallet, &ctx, story);
            customer.wallets.push(wallet.clone());
        }
        let at = changed + rng.random_range(30 * MINUTE..DAY + 6 * HOUR);
        let usd = customer.balance * rng.random_range(0.05..0.4);
        customer.withdraw(
            feed,
            at,
            usd,
            Route::api(&wallet, &key.id),
            &crate::feed::Ctx::api(&server),
            story,
        );
    }
}
