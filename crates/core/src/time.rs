//! Event time as milliseconds since the Unix epoch (UTC), with RFC 3339 conversion.
//!
//! The contract's timestamps have millisecond precision, so one `i64` of milliseconds holds
//! every instant the system reasons about, compares cheaply and stores identically in SQLite and
//! PostgreSQL.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// An instant in milliseconds since 1970-01-01T00:00:00Z.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct UnixMillis(pub i64);

/// A timestamp string that is not RFC 3339 or lies outside the supported range.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not an RFC 3339 timestamp: {0}")]
pub struct TimestampError(pub String);

impl UnixMillis {
    pub const fn from_secs(secs: i64) -> Self {
        Self(secs * 1000)
    }

    pub const fn as_millis(self) -> i64 {
        self.0
    }

    /// This instant moved by `millis` (negative moves back), saturating at the range ends.
    #[must_use]
    pub const fn plus_millis(self, millis: i64) -> Self {
        Self(self.0.saturating_add(millis))
    }

    /// Milliseconds from `earlier` to `self` (negative when `earlier` is later).
    pub const fn millis_since(self, earlier: Self) -> i64 {
        self.0.saturating_sub(earlier.0)
    }

    /// Parses an RFC 3339 timestamp with any offset; sub-millisecond digits are truncated.
    pub fn parse_rfc3339(text: &str) -> Result<Self, TimestampError> {
        if let Some(millis) = parse_contract_form(text) {
            return Ok(Self(millis));
        }
        let parsed =
            OffsetDateTime::parse(text, &Rfc3339).map_err(|_| TimestampError(text.to_owned()))?;
        let millis = parsed.unix_timestamp_nanos() / 1_000_000;
        i64::try_from(millis)
            .map(Self)
            .map_err(|_| TimestampError(text.to_owned()))
    }

    /// Formats as the contract does: UTC, millisecond precision, `Z` suffix.
    pub fn to_rfc3339(self) -> String {
        let nanos = i128::from(self.0) * 1_000_000;
        match OffsetDateTime::from_unix_timestamp_nanos(nanos) {
            Ok(t) => format!(
                "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
                t.year(),
                u8::from(t.month()),
                t.day(),
                t.hour(),
                t.minute(),
                t.second(),
                t.millisecond()
            ),
            Err(_) => format!("@{}ms", self.0),
        }
    }
}

impl UnixMillis {
    /// The day this instant falls on (UTC), spelled out so that a typo in a date shows:
    /// "Friday 1 January 2027".
    pub fn spelled_day(self) -> String {
        let nanos = i128::from(self.0) * 1_000_000;
        match OffsetDateTime::from_unix_timestamp_nanos(nanos) {
            Ok(t) => format!("{} {} {} {}", t.weekday(), t.day(), t.month(), t.year()),
            Err(_) => self.to_rfc3339(),
        }
    }
}

impl fmt::Display for UnixMillis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

impl Serialize for UnixMillis {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_rfc3339())
    }
}

impl<'de> Deserialize<'de> for UnixMillis {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // Read in place, never copied: a timestamp is parsed on every event of a replay.
        struct TextVisitor;
        impl serde::de::Visitor<'_> for TextVisitor {
            type Value = UnixMillis;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an RFC 3339 timestamp")
            }
            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<UnixMillis, E> {
                UnixMillis::parse_rfc3339(text).map_err(E::custom)
            }
        }
        deserializer.deserialize_str(TextVisitor)
    }
}

/// The minute of the last time [`MinuteCache::read`] read in full. A feed's times are in order
/// and many to a minute, so most times only differ from the one before in their seconds and
/// milliseconds: reading just those took the time's share of `portcullis replay` from 260
/// instructions an event to 90 (2026-12-07, branch `speed4`).
#[derive(Debug, Default, Clone, Copy)]
pub struct MinuteCache {
    /// The first 16 bytes of the time (`2025-07-28T14:03`), little-endian; zero when empty
    /// (never the bytes of a time: a time's first byte is a digit).
    minute: u128,
    /// The milliseconds of that minute's start.
    millis: i64,
}

impl MinuteCache {
    /// The time in the contract's own form (`2025-07-28T14:03:11.250Z`), as
    /// [`UnixMillis::parse_rfc3339`] reads it; `None` for any other text (which that then
    /// reads or refuses).
    pub fn read(&mut self, text: &str) -> Option<UnixMillis> {
        let b: &[u8; 24] = text.as_bytes().try_into().ok()?;
        let digit = |at: usize| {
            let value = b[at].wrapping_sub(b'0');
            (value < 10).then_some(i64::from(value))
        };
        if [b[16], b[19], b[23]] != *b":.Z" {
            return None;
        }
        let second = digit(17)? * 10 + digit(18)?;
        let milli = digit(20)? * 100 + digit(21)? * 10 + digit(22)?;
        let mut head = [0u8; 16];
        head.copy_from_slice(&b[..16]);
        let minute = u128::from_le_bytes(head);
        if minute == self.minute && second <= 59 {
            return Some(UnixMillis(self.millis + second * 1000 + milli));
        }
        let millis = parse_contract_form(text)?;
        *self = Self {
            minute,
            millis: millis - (second * 1000 + milli),
        };
        Some(UnixMillis(millis))
    }
}

/// The contract's own form, `2025-07-28T14:03:11.250Z`, read directly; `None` for anything
/// else (other offsets, precisions, leap seconds), which the general parser then handles.
fn parse_contract_form(text: &str) -> Option<i64> {
    let b = text.as_bytes();
    if b.len() != 24 || [b[4], b[7], b[10], b[13], b[16], b[19], b[23]] != *b"--T::.Z" {
        return None;
    }
    let num = |range: std::ops::Range<usize>| -> Option<i64> {
        b[range].iter().try_fold(0i64, |n, &c| {
            c.is_ascii_digit().then(|| n * 10 + i64::from(c - b'0'))
        })
    };
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second, milli) = (num(11..13)?, num(14..16)?, num(17..19)?, num(20..23)?);
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let month_days = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    let days_in_month = *month_days.get(usize::try_from(month - 1).ok()?)?;
    if day < 1 || day > days_in_month || hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    // Days from the civil date (Howard Hinnant's algorithm, proleptic Gregorian).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some((((days * 24 + hour) * 60 + minute) * 60 + second) * 1000 + milli)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_day_is_spelled_out() {
        let day = UnixMillis::parse_rfc3339("2027-01-01T00:00:00Z").unwrap();
        assert_eq!(day.spelled_day(), "Friday 1 January 2027");
    }

    #[test]
    fn round_trips_the_contract_format() {
        let t = UnixMillis::parse_rfc3339("2025-07-28T14:03:11.250Z").unwrap();
        assert_eq!(t.to_rfc3339(), "2025-07-28T14:03:11.250Z");
        assert_eq!(t.0 % 1000, 250);
    }

    #[test]
    fn accepts_offsets_and_normalises_to_utc() {
        let t = UnixMillis::parse_rfc3339("2025-07-28T16:03:11.250+02:00").unwrap();
        assert_eq!(t.to_rfc3339(), "2025-07-28T14:03:11.250Z");
    }

    #[test]
    fn the_minute_cache_reads_a_sequence_as_the_parser_does() {
        // Times in order across seconds, minutes, days and a leap day, each followed by
        // texts of the same minute that are not times or not in the contract's form.
        let mut cache = MinuteCache::default();
        let mut at = UnixMillis::parse_rfc3339("2028-02-28T23:58:59.000Z")
            .unwrap()
            .0;
        let mut texts = Vec::new();
        for step in 0..4_000 {
            at += 37 + (step % 7) * 113;
            let text = UnixMillis(at).to_rfc3339();
            texts.push(text.clone());
            if step % 50 == 0 {
                let minute = &text[..16];
                for tail in [
                    ":60.000Z",
                    ":59.999Z",
                    ":5a.000Z",
                    ":00.00aZ",
                    ":00.000z",
                    ".00.000Z",
                    ":00:000Z",
                    ":00.000+",
                    ":00Z",
                    ":00.0000Z",
                    ":99.000Z",
                ] {
                    texts.push(format!("{minute}{tail}"));
                }
                texts.push(format!("{}9{}", &text[..15], &text[16..]));
            }
        }
        for text in ["2028-02-30T00:00:00.000Z", "2028-02-29T24:00:00.000Z", ""] {
            texts.push(text.to_owned());
        }
        for text in &texts {
            let expected = parse_contract_form(text).map(UnixMillis);
            assert_eq!(cache.read(text), expected, "{text}");
            if let Some(time) = expected {
                assert_eq!(UnixMillis::parse_rfc3339(text), Ok(time));
            }
        }
    }

    #[test]
    fn the_contract_form_reads_like_the_general_parser() {
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        for _ in 0..20_000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let millis = (state % 4_102_444_800_000) as i64;
            let text = UnixMillis(millis).to_rfc3339();
            assert_eq!(parse_contract_form(&text), Some(millis), "{text}");
            let general = OffsetDateTime::parse(&text, &Rfc3339).unwrap();
            assert_eq!(
                general.unix_timestamp_nanos() / 1_000_000,
                i128::from(millis)
            );
        }
        for text in [
            "2025-02-29T00:00:00.000Z",
            "2024-02-30T00:00:00.000Z",
            "2025-00-10T00:00:00.000Z",
            "2025-01-10T24:00:00.000Z",
            "2025-01-10T23:60:00.000Z",
            "2025-01-10T23:00:60.000Z",
            "2025-01-1xT23:00:00.000Z",
        ] {
            assert_eq!(parse_contract_form(text), None, "{text}");
            assert!(UnixMillis::parse_rfc3339(text).is_err(), "{text}");
        }
        assert_eq!(
            parse_contract_form("2024-02-29T23:59:59.999Z"),
            Some(
                UnixMillis::parse_rfc3339("2024-02-29T23:59:59.999+00:00")
                    .unwrap()
                    .0
            )
        );
    }

    #[test]
    fn rejects_garbage() {
        assert!(UnixMillis::parse_rfc3339("yesterday").is_err());
        assert!(UnixMillis::parse_rfc3339("2025-13-01T00:00:00Z").is_err());
    }
}
