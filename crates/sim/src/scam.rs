//! Scam crews and their calls. A crew calls many customers from a few numbers during a few
//! days, often while the market is busy; about a third of the people it reaches do what the
//! "support agent" says. The tactics of the 2025 campaigns: widen the victim's key, create a
//! new one, allow-list the crew's server on a key that already withdraws, or have the victim
//! send the funds to a "safe wallet" themselves; then drain at once, after a patient wait, or
//! slowly. Most people hang up, and some report the number: those must not be held.

use crate::customer::{Customer, Key, Route};
use crate::feed::{Ctx, Event, Feed, Label};
use crate::world::{
    Config, DAY, HOUR, MINUTE, Networks, Wallet, is_busy, phone_number, waking_time,
};
use rand::Rng as _;
use rand::seq::IndexedRandom as _;
use rand_chacha::ChaCha8Rng;
use serde_json::Value;

/// One crew: its numbers, collection wallets and servers, and its ways.
#[derive(Debug, Clone)]
pub struct Crew {
    pub numbers: Vec<String>,
    pub wallets: Vec<Wallet>,
    pub servers: Vec<String>,
    /// Share of victims made to run a remote-desktop tool.
    pub remote_tool: f64,
    /// Share of the people reached who fall for it.
    pub conversion: f64,
    pub first_day: i64,
    pub last_day: i64,
}

/// A call from a crew to one customer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Call {
    pub ts: i64,
    pub crew: usize,
    pub converts: bool,
}

/// How the money leaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tactic {
    WidenedKey,
    NewKey,
    AllowlistedIp,
    OwnDevice,
}

/// When it leaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pace {
    Fast,
    Patient,
    Slow,
}

fn tactic_label(tactic: Tactic, pace: Pace) -> &'static str {
    match (pace, tactic) {
        (_, Tactic::OwnDevice) => "own_device",
        (Pace::Patient, _) => "patient",
        (Pace::Slow, _) => "slow_drain",
        (Pace::Fast, Tactic::WidenedKey) => "widened_key",
        (Pace::Fast, Tactic::NewKey) => "new_key",
        (Pace::Fast, Tactic::AllowlistedIp) => "allowlisted_ip",
    }
}

/// The crews of the period and the calls each customer receives (indexed like `customers`).
pub fn plan(
    config: &Config,
    networks: &Networks,
    customers: &[Customer],
    busy: &[bool],
    rng: &mut ChaCha8Rng,
) -> (Vec<Crew>, Vec<Vec<Call>>) {
    let mut calls = vec![Vec::new(); customers.len()];
    let days = i64::from(config.days);
    // At most ten million accounts: the product fits.
    #[allow(clippy::cast_possible_truncation)]
    let mut targets = (f64::from(config.accounts) * config.called_share).round() as i64;
    let mut crews = Vec::new();
    while targets > 0 && !customers.is_empty() {
        let first_day = rng.random_range(0..days.max(1));
        let crew = Crew {
            numbers: (0..rng.random_range(2..=4))
                .map(|_| phone_number(rng))
                .collect(),
            wallets: (0..rng.random_range(1..=3))
                .map(|_| Wallet::typical(rng))
                .collect(),
            servers: (0..rng.random_range(1..=3))
                .map(|_| {
                    if rng.random_bool(0.25) {
                        networks.vpn_ip(rng)
                    } else {
                        networks.cloud_ip(rng)
                    }
                })
                .collect(),
            remote_tool: rng.random_range(0.0..0.4),
            conversion: rng.random_range(0.25..0.45),
            first_day,
            last_day: (first_day + rng.random_range(2..10))
                .min(days - 1)
                .max(first_day),
        };
        let size = rng.random_range(8..=40).min(targets);
        for _ in 0..size {
            let target = rng.random_range(0..customers.len());
            let customer = &customers[target];
            let mut day = rng.random_range(crew.first_day..=crew.last_day);
            // Crews like a busy market: people are distracted and "security problems" sound real.
            if let Some(busy_day) = (crew.first_day..=crew.last_day).find(|d| is_busy(busy, *d))
                && rng.random_bool(0.5)
            {
                day = busy_day;
            }
            if day < customer.joined_day || !calls[target].is_empty() {
                continue;
            }
            calls[target].push(Call {
                ts: waking_time(rng, config, day, customer.tz),
                crew: crews.len(),
                converts: rng.random_bool(crew.conversion),
            });
        }
        targets -= size;
        crews.push(crew);
    }
    (crews, calls)
}

/// What the telephony partner reports about a crew's call (when its records cover it).
fn inbound_call(
    feed: &mut Feed,
    customer: &Customer,
    crew: &Crew,
    ts: i64,
    rng: &mut ChaCha8Rng,
) -> String {
    let number = crew.numbers.choose(rng).cloned().unwrap_or_default();
    if rng.random_bool(0.7) {
        let attestation = *["none", "none", "C", "C", "C", "B", "B", "A"]
            .choose(rng)
            .unwrap_or(&"C");
        feed.push(
            Event::new(ts, "contact.inbound_call", Some(&customer.id))
                .field("from", number.as_str())
                .field("attestation", attestation)
                .field("duration_s", rng.random_range(60..1800)),
        );
    }
    number
}

/// The customer reports the number that called them.
fn report(feed: &mut Feed, customer: &Customer, number: &str, called: i64, at: i64) {
    feed.push(
        Event::new(at, "contact.reported", Some(&customer.id))
            .field("channel", "phone")
            .field("from", number)
            .field("claimed", "exchange support")
            .field(
                "contacted_at",
                portcullis_core::time::UnixMillis(called).to_rfc3339(),
            ),
    );
}

/// Plays one crew call on `customer`.
pub fn play(
    call: Call,
    crew: &Crew,
    customer: &mut Customer,
    networks: &Networks,
    feed: &mut Feed,
    rng: &mut ChaCha8Rng,
) {
    let number = inbound_call(feed, customer, crew, call.ts, rng);
    if call.converts {
        fall_for_it(call, crew, &number, customer, networks, feed, rng);
    } else {
        hang_up(call, &number, customer, networks, feed, rng);
    }
}

/// The hard negative: they hang up, maybe check their account, maybe report the number, and
/// go on with their lives (sometimes a withdrawal of their own the same day).
fn hang_up(
    call: Call,
    number: &str,
    customer: &mut Customer,
    networks: &Networks,
    feed: &mut Feed,
    rng: &mut ChaCha8Rng,
) {
    let story = (Label::Legit, "hung_up");
    let checked = call.ts + rng.random_range(5 * MINUTE..HOUR);
    let ctx = customer.session_ctx(networks, rng);
    if rng.random_bool(0.5) {
        customer.login(feed, checked, &ctx);
    }
    if rng.random_bool(0.35) {
        report(
            feed,
            customer,
            number,
            call.ts,
            checked + rng.random_range(MINUTE..DAY),
        );
    }
    if rng.random_bool(0.25)
        && customer.balance > 50.0
        && let Some(wallet) = customer.wallets.first().cloned()
    {
        let at = checked + rng.random_range(10 * MINUTE..20 * HOUR);
        let usd = customer.balance * rng.random_range(0.1..0.6);
        customer.withdraw(feed, at, usd, Route::own(&wallet), &ctx, story);
    }
}

/// The victim does what the caller says; the crew drains the account.
fn fall_for_it(
    call: Call,
    crew: &Crew,
    number: &str,
    customer: &mut Customer,
    networks: &Networks,
    feed: &mut Feed,
    rng: &mut ChaCha8Rng,
) {
    let mut ctx = customer.session_ctx(networks, rng);
    if ctx.channel == Some("app") {
        ctx.call_active = rng.random_bool(0.6);
    }
    ctx.remote_access = rng.random_bool(crew.remote_tool);
    let login = call.ts + rng.random_range(2 * MINUTE..10 * MINUTE);
    customer.login(feed, login, &ctx);
    let can_withdraw = customer.keys.first().is_some_and(Key::can_withdraw);
    let tactic = match rng.random_range(0..100) {
        _ if can_withdraw && rng.random_bool(0.5) => Tactic::AllowlistedIp,
        0..=39 if !customer.keys.is_empty() => Tactic::WidenedKey,
        0..=64 => Tactic::NewKey,
        _ => Tactic::OwnDevice,
    };
    let pace = match rng.random_range(0..10) {
        0 => Pace::Patient,
        1 => Pace::Slow,
        _ => Pace::Fast,
    };
    let story = (Label::Scam, tactic_label(tactic, pace));
    let widened = login + rng.random_range(2 * MINUTE..8 * MINUTE);
    let wallet = crew
        .wallets
        .choose(rng)
        .cloned()
        .unwrap_or_else(|| Wallet::typical(rng));
    let drained = if tactic == Tactic::OwnDevice {
        customer.add_wallet(feed, widened, &wallet, &ctx, story);
        let mut ids = Vec::new();
        let mut at = widened + rng.random_range(3 * MINUTE..40 * MINUTE);
        for _ in 0..rng.random_range(1..=2) {
            let usd = customer.balance * rng.random_range(0.6..0.95);
            ids.push(customer.withdraw(feed, at, usd, Route::own(&wallet), &ctx, story));
            at += rng.random_range(2 * MINUTE..30 * MINUTE);
        }
        (ids, at)
    } else {
        let server = crew
            .servers
            .choose(rng)
            .cloned()
            .unwrap_or_else(|| networks.cloud_ip(rng));
        let key = widen_key(tactic, &server, customer, widened, &ctx, story, feed, rng);
        if rng.random_bool(0.5) {
            customer.add_wallet(feed, widened + MINUTE, &wallet, &ctx, story);
        }
        drain(
            pace, &key, &server, &wallet, customer, widened, story, feed, rng,
        )
    };
    aftermath(crew, number, customer, call.ts, drained, feed, rng);
}

/// The widening the caller asks for; returns the key the crew will use.
#[allow(clippy::too_many_arguments)]
fn widen_key(
    tactic: Tactic,
    server: &str,
    customer: &mut Customer,
    at: i64,
    ctx: &Ctx,
    story: (Label, &'static str),
    feed: &mut Feed,
    rng: &mut ChaCha8Rng,
) -> String {
    let crew_net = format!("{server}/32");
    let (kind, key) = if tactic == Tactic::NewKey || customer.keys.is_empty() {
        let scopes = if rng.random_bool(0.5) {
            vec!["read", "withdraw"]
        } else {
            vec!["read", "trade", "withdraw"]
        };
        let allowlist = if rng.random_bool(0.75) {
            vec![crew_net]
        } else {
            Vec::new()
        };
        let key = Key {
            id: customer.next_id("k"),
            scopes,
            allowlist,
        };
        customer.keys.push(key.clone());
        ("api_key.created", key)
    } else {
        let key = &mut customer.keys[0];
        if !key.can_withdraw() {
            key.scopes.push("withdraw");
        }
        match rng.random_range(0..10) {
            0..=5 => key.allowlist = vec![crew_net],
            6..=7 if tactic == Tactic::WidenedKey => key.allowlist.clear(),
            _ => key.allowlist.push(crew_net),
        }
        ("api_key.updated", key.clone())
    };
    customer.key_event(feed, at, kind, &key, ctx, story);
    key.id
}

/// The crew's withdrawals through the key, from its server.
#[allow(clippy::too_many_arguments)]
fn drain(
    pace: Pace,
    key: &str,
    server: &str,
    wallet: &Wallet,
    customer: &mut Customer,
    widened: i64,
    story: (Label, &'static str),
    feed: &mut Feed,
    rng: &mut ChaCha8Rng,
) -> (Vec<String>, i64) {
    let api = Ctx::api(server);
    customer.api_use(
        feed,
        widened + rng.random_range(MINUTE..20 * MINUTE),
        key,
        server,
        "GET /api/v3/account",
        rng.random_range(1..6),
    );
    let (count, mut at) = match pace {
        Pace::Fast => (
            rng.random_range(1..=3),
            widened + rng.random_range(5 * MINUTE..90 * MINUTE),
        ),
        Pace::Patient => {
            let first = widened + rng.random_range(26 * HOUR..96 * HOUR);
            let mut ping = widened + 12 * HOUR;
            while ping < first {
                customer.api_use(
                    feed,
                    ping,
                    key,
                    server,
                    "GET /api/v3/account",
                    rng.random_range(1..4),
                );
                ping += rng.random_range(6 * HOUR..18 * HOUR);
            }
            (rng.random_range(1..=2), first)
        }
        Pace::Slow => (
            rng.random_range(4..=8),
            widened + rng.random_range(HOUR..12 * HOUR),
        ),
    };
    let mut ids = Vec::new();
    for _ in 0..count {
        if customer.balance < 20.0 {
            break;
        }
        let share = match pace {
            Pace::Slow => rng.random_range(0.08..0.2),
            _ => rng.random_range(0.5..0.95),
        };
        let usd = customer.balance * share;
        ids.push(customer.withdraw(feed, at, usd, Route::api(wallet, key), &api, story));
        at += match pace {
            Pace::Slow => rng.random_range(4 * HOUR..20 * HOUR),
            _ => rng.random_range(MINUTE..10 * MINUTE),
        };
    }
    (ids, at)
}

/// The victim notices, reports the number, and an analyst confirms the fraud.
fn aftermath(
    crew: &Crew,
    number: &str,
    customer: &Customer,
    called: i64,
    (withdrawals, last): (Vec<String>, i64),
    feed: &mut Feed,
    rng: &mut ChaCha8Rng,
) {
    let noticed = last + rng.random_range(2 * HOUR..48 * HOUR);
    if rng.random_bool(0.6) {
        report(feed, customer, number, called, noticed);
    }
    if !withdrawals.is_empty() && rng.random_bool(0.5) {
        let ids: Vec<Value> = withdrawals
            .iter()
            .map(|w| Value::from(w.as_str()))
            .collect();
        let addresses: Vec<Value> = crew
            .wallets
            .iter()
            .map(|w| Value::from(w.address.as_str()))
            .collect();
        feed.push(
            Event::new(
                noticed + rng.random_range(12 * HOUR..3 * DAY),
                "fraud.confirmed",
                Some(&customer.id),
            )
            .field("withdrawal_ids", ids)
            .field("addresses", addresses)
            .field("from", vec![Value::from(number)])
            .field("note", "customer reported a fake support call"),
        );
    }
}

/// Calls that have nothing to do with any crew: the bank, a friend, a robocall.
pub fn ordinary_call(customer: &Customer, ts: i64, feed: &mut Feed, rng: &mut ChaCha8Rng) {
    let attestation = *["A", "A", "A", "B", "C", "none"]
        .choose(rng)
        .unwrap_or(&"A");
    feed.push(
        Event::new(ts, "contact.inbound_call", Some(&customer.id))
            .field("from", phone_number(rng))
            .field("attestation", attestation)
            .field("duration_s", rng.random_range(20..900)),
    );
}
