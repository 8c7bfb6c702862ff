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
        let text = String::deserialize(deserializer)?;
        Self::parse_rfc3339(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn rejects_garbage() {
        assert!(UnixMillis::parse_rfc3339("yesterday").is_err());
        assert!(UnixMillis::parse_rfc3339("2025-13-01T00:00:00Z").is_err());
    }
}
