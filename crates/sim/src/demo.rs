//! The story `portcullis demo` plays: a simulated exchange whose history ends now and whose
//! next hours hold the period's busiest stretch of scam calls, to be played at accelerated
//! time. Pure: the present is passed in, and the same settings at the same present give the
//! same story.

use crate::feed::Label;
use crate::simulate::{SimError, simulate};
use crate::world::{Config, HOUR};

/// What to tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DemoSettings {
    pub accounts: u32,
    pub days: u32,
    pub seed: u64,
    /// How much event time the live part covers.
    pub live_hours: u32,
}

/// One event of the live part.
#[derive(Debug, Clone, PartialEq)]
pub struct LiveEvent {
    /// The event's id.
    pub id: String,
    /// Event time, in milliseconds.
    pub ts: i64,
    /// The contract line.
    pub line: String,
    /// The truth, when the event asks for a decision.
    pub truth: Option<Label>,
}

/// The story, cut at now.
#[derive(Debug, Clone)]
pub struct Demo {
    /// Every event before now, in event-time order.
    pub history: Vec<String>,
    /// The events from now to `live_hours` later, in event-time order.
    pub live: Vec<LiveEvent>,
    /// Scam crews over the whole period, and the customers who fell for one.
    pub crews: usize,
    pub victims: usize,
}

impl Demo {
    /// Events of the live part that ask for a decision and are scams.
    pub fn live_scams(&self) -> usize {
        self.live
            .iter()
            .filter(|e| e.truth == Some(Label::Scam))
            .count()
    }
}

/// Simulates the period so that the busiest `live_hours` of scam activity (after at least a
/// day of history) start at `now_ms`; the events after that stretch are left out.
pub fn demo(settings: &DemoSettings, now_ms: i64) -> Result<Demo, SimError> {
    let total_hours = settings.days.saturating_mul(24);
    if settings.live_hours == 0
        || settings.live_hours > 48
        || settings.live_hours + 24 > total_hours
    {
        return Err(SimError::LiveHours(settings.live_hours));
    }
    let probe = simulate(&Config::new(
        settings.accounts,
        settings.days,
        settings.seed,
    ))?;
    let first_hour = busiest_window(
        &probe.rendered.times,
        &probe.rendered.truths,
        Config::DEFAULT_START_MS,
        total_hours,
        settings.live_hours,
    );
    // The simulation is told relative to its start, so moving the start moves every event
    // by the same amount and changes nothing else (tested below).
    let mut config = Config::new(settings.accounts, settings.days, settings.seed);
    config.start_ms = now_ms - i64::from(first_hour) * HOUR;
    let sim = simulate(&config)?;
    let live_end = now_ms + i64::from(settings.live_hours) * HOUR;
    let mut demo = Demo {
        history: Vec::new(),
        live: Vec::new(),
        crews: sim.crews,
        victims: sim.victims,
    };
    let rendered = sim.rendered;
    for (index, ((line, ts), truth)) in rendered
        .events
        .into_iter()
        .zip(rendered.times)
        .zip(rendered.truths)
        .enumerate()
    {
        if ts < now_ms {
            demo.history.push(line);
        } else if ts < live_end {
            let id = crate::feed::event_id(index);
            demo.live.push(LiveEvent {
                id,
                ts,
                line,
                truth,
            });
        }
    }
    Ok(demo)
}

/// The first hour (counted from `start_ms`, at least 24 so that a day of history comes
/// first) of the `width`-hour window with the most scam decisions; the last window when there
/// are none, and the earliest of equals.
fn busiest_window(
    times: &[i64],
    truths: &[Option<Label>],
    start_ms: i64,
    total_hours: u32,
    width: u32,
) -> u32 {
    let mut per_hour = vec![0u32; total_hours as usize];
    for (ts, truth) in times.iter().zip(truths) {
        if *truth == Some(Label::Scam)
            && let Ok(hour) = usize::try_from((ts - start_ms).div_euclid(HOUR))
            && let Some(count) = per_hour.get_mut(hour)
        {
            *count += 1;
        }
    }
    let last = total_hours - width;
    let mut best = (0, last);
    for first in 24..=last {
        let window = &per_hour[first as usize..(first + width) as usize];
        let scams: u32 = window.iter().sum();
        if scams > best.0 {
            best = (scams, first);
        }
    }
    best.1
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::world::DAY;
    use portcullis_core::contract::parse_line;

    const NOW: i64 = 1_796_000_000_000;

    fn settings() -> DemoSettings {
        DemoSettings {
            accounts: 600,
            days: 8,
            seed: 5,
            live_hours: 12,
        }
    }

    #[test]
    fn moving_the_start_moves_every_event_and_changes_nothing_else() {
        let a = simulate(&Config::new(300, 4, 9)).unwrap().rendered;
        let mut later = Config::new(300, 4, 9);
        later.start_ms += 3 * DAY + 7 * HOUR + 1_234;
        let b = simulate(&later).unwrap().rendered;
        assert_eq!(a.events.len(), b.events.len());
        assert_eq!(a.labels, b.labels);
        assert_eq!(a.truths, b.truths);
        for (ta, tb) in a.times.iter().zip(&b.times) {
            assert_eq!(tb - ta, 3 * DAY + 7 * HOUR + 1_234);
        }
        let strip = |line: &str| {
            let event = parse_line(line).unwrap();
            (event.id, event.account, event.ctx)
        };
        for (la, lb) in a.events.iter().zip(&b.events) {
            assert_eq!(strip(la), strip(lb));
        }
    }

    #[test]
    fn history_ends_now_and_the_live_part_holds_the_busiest_scam_window() {
        let demo = demo(&settings(), NOW).unwrap();
        assert!(!demo.history.is_empty());
        for line in &demo.history {
            assert!(parse_line(line).unwrap().ts.0 < NOW);
        }
        let end = NOW + 12 * HOUR;
        assert!(demo.live.iter().all(|e| (NOW..end).contains(&e.ts)));
        assert!(demo.live.windows(2).all(|w| w[0].ts <= w[1].ts));
        // No other 12-hour window after the first day has more scam decisions: counted here
        // from the whole period at the default start, on its own.
        let whole = simulate(&Config::new(600, 8, 5)).unwrap().rendered;
        let scam_times: Vec<i64> = whole
            .times
            .iter()
            .zip(&whole.truths)
            .filter(|(_, t)| **t == Some(Label::Scam))
            .map(|(ts, _)| ts - Config::DEFAULT_START_MS)
            .collect();
        assert!(!scam_times.is_empty(), "the seed has scams");
        let most = (24..=(8 * 24 - 12))
            .map(|h| {
                scam_times
                    .iter()
                    .filter(|t| (h * HOUR..(h + 12) * HOUR).contains(t))
                    .count()
            })
            .max()
            .unwrap();
        assert_eq!(demo.live_scams(), most);
        assert!(most > 0);
    }

    #[test]
    fn the_same_settings_and_present_give_the_same_story() {
        let a = demo(&settings(), NOW).unwrap();
        let b = demo(&settings(), NOW).unwrap();
        assert_eq!(a.history, b.history);
        assert_eq!(a.live, b.live);
    }

    #[test]
    fn a_live_part_without_a_day_of_history_before_it_is_refused() {
        let mut short = settings();
        short.days = 1;
        assert_eq!(demo(&short, NOW).unwrap_err(), SimError::LiveHours(12));
        let mut none = settings();
        none.live_hours = 0;
        assert_eq!(demo(&none, NOW).unwrap_err(), SimError::LiveHours(0));
    }
}
