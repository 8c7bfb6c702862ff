//! `simulate`: the whole period, customer by customer, with the crews' calls woven in, and the
//! market's hourly activity. The same configuration gives the same feed, byte for byte.

use crate::customer::Customer;
use crate::feed::{Event, Feed, Rendered};
use crate::habits::{self, Habit};
use crate::scam::{self, Call};
use crate::world::{Config, DAY, HOUR, Networks, is_busy, stories, stream, waking_time};
use rand::Rng as _;
use rand_chacha::ChaCha8Rng;

/// Bad settings.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SimError {
    #[error("--accounts must be between 1 and 10000000 (got {0})")]
    Accounts(u32),
    #[error("--days must be between 1 and 366 (got {0})")]
    Days(u32),
    #[error(
        "--live-hours must be between 1 and 48 and leave at least a day of history before it (got {0})"
    )]
    LiveHours(u32),
}

/// What `simulate` made: the feed, its labels, and counts for the summary line.
#[derive(Debug, Clone)]
pub struct Simulation {
    pub rendered: Rendered,
    pub crews: usize,
    pub victims: usize,
    pub hung_up: usize,
}

pub fn simulate(config: &Config) -> Result<Simulation, SimError> {
    if config.accounts == 0 || config.accounts > 10_000_000 {
        return Err(SimError::Accounts(config.accounts));
    }
    if config.days == 0 || config.days > 366 {
        return Err(SimError::Days(config.days));
    }
    let networks = Networks::new(&mut stream(config.seed, stories::WORLD));
    let mut feed = Feed::default();
    let busy = market(config, &mut feed, &mut stream(config.seed, stories::MARKET));
    let mut rngs: Vec<ChaCha8Rng> = (0..config.accounts)
        .map(|n| stream(config.seed, stories::CUSTOMER_BASE + u64::from(n)))
        .collect();
    let mut customers: Vec<Customer> = rngs
        .iter_mut()
        .zip(0..)
        .map(|(rng, n)| Customer::new(n, config, &networks, rng))
        .collect();
    let (crews, calls) = scam::plan(
        config,
        &networks,
        &customers,
        &busy,
        &mut stream(config.seed, stories::CREWS),
    );
    let (mut victims, mut hung_up) = (0, 0);
    for ((customer, rng), calls) in customers.iter_mut().zip(rngs.iter_mut()).zip(&calls) {
        victims += calls.iter().filter(|c| c.converts).count();
        hung_up += calls.iter().filter(|c| !c.converts).count();
        live(
            customer, calls, &crews, config, &networks, &busy, &mut feed, rng,
        );
    }
    Ok(Simulation {
        rendered: feed.finish(),
        crews: crews.len(),
        victims,
        hung_up,
    })
}

/// One customer's whole period.
#[allow(clippy::too_many_arguments)]
fn live(
    customer: &mut Customer,
    calls: &[Call],
    crews: &[scam::Crew],
    config: &Config,
    networks: &Networks,
    busy: &[bool],
    feed: &mut Feed,
    rng: &mut ChaCha8Rng,
) {
    let plan = habits::schedule(customer, config, rng);
    let mut home_on: Option<i64> = None;
    for day in customer.joined_day.max(0)..i64::from(config.days) {
        if home_on == Some(day) {
            habits::travel_ends(customer);
            home_on = None;
        }
        for (_, habit) in plan.iter().filter(|(d, _)| *d == day) {
            habits::play(*habit, customer, day, config, networks, feed, rng);
            if *habit == Habit::Travel {
                home_on = Some(day + habits::trip_days(rng));
            }
        }
        for call in calls
            .iter()
            .filter(|c| (c.ts - config.start_ms).div_euclid(DAY) == day)
        {
            if let Some(crew) = crews.get(call.crew) {
                scam::play(*call, crew, customer, networks, feed, rng);
            }
        }
        if rng.random_bool(0.02) {
            let ts = waking_time(rng, config, day, customer.tz);
            scam::ordinary_call(customer, ts, feed, rng);
        }
        let is_busy = is_busy(busy, day);
        customer.ordinary_day(day, config, networks, is_busy, feed, rng);
    }
}

/// The exchange's hourly activity report; about one day in ten is busy (three to eight times
/// the usual volume for six to twelve hours). Returns which days are busy.
fn market(config: &Config, feed: &mut Feed, rng: &mut ChaCha8Rng) -> Vec<bool> {
    let mut busy = Vec::new();
    for day in 0..i64::from(config.days) {
        let rush = rng.random_bool(0.1).then(|| {
            let from = rng.random_range(0..18);
            (from, from + rng.random_range(6..=12))
        });
        busy.push(rush.is_some());
        for hour in 0..24 {
            let in_rush = rush.is_some_and(|(from, to)| (from..to).contains(&hour));
            let ratio = if in_rush {
                rng.random_range(3.0..8.0)
            } else {
                rng.random_range(0.5..1.8)
            };
            let ratio: f64 = (ratio * 100.0f64).round() / 100.0;
            let volatility: f64 = (rng.random_range(0.3..1.2f64) * 100.0).round() / 100.0;
            feed.push(
                Event::new(
                    config.start_ms + day * DAY + hour * HOUR,
                    "market.activity",
                    None,
                )
                .field("market", "*")
                .field("volume_ratio", ratio)
                .field("volatility", volatility),
            );
        }
    }
    busy
}

#[cfg(test)]
mod tests {
    use super::*;
    use portcullis_core::contract::parse_line;

    #[test]
    fn the_same_seed_gives_the_same_feed_and_another_seed_another() {
        let a = simulate(&Config::new(200, 10, 7)).unwrap();
        let b = simulate(&Config::new(200, 10, 7)).unwrap();
        let c = simulate(&Config::new(200, 10, 8)).unwrap();
        assert_eq!(a.rendered.events, b.rendered.events);
        assert_eq!(a.rendered.labels, b.rendered.labels);
        assert_ne!(a.rendered.events, c.rendered.events);
    }

    #[test]
    fn every_line_is_a_contract_event_and_every_decided_event_has_a_label() {
        let sim = simulate(&Config::new(300, 14, 3)).unwrap();
        let mut decided = 0;
        for line in &sim.rendered.events {
            let event = parse_line(line).unwrap_or_else(|e| panic!("{line}: {e}"));
            decided += usize::from(event.body.asks_for_decision());
        }
        assert_eq!(decided, sim.rendered.labels.len());
        assert!(sim.victims > 0 && sim.hung_up > sim.victims);
        assert!(sim.rendered.labels.iter().any(|l| l.contains("\"scam\"")));
    }

    #[test]
    fn bad_settings_are_refused() {
        assert_eq!(
            simulate(&Config::new(0, 5, 1)).unwrap_err(),
            SimError::Accounts(0)
        );
        assert_eq!(
            simulate(&Config::new(5, 0, 1)).unwrap_err(),
            SimError::Days(0)
        );
    }
}
