//! API key permissions (`read`, `trade`, `withdraw`, `transfer`) and sets of them.
//!
//! A set is a bit mask so that checks on the verification hot path cost one AND, and so that
//! "is this change a widening?" is a subset test.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::str::FromStr;

/// One permission an API key can carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scope {
    Read,
    Trade,
    Withdraw,
    Transfer,
}

/// A scope name that is not one of the four the contract defines.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown scope `{0}` (expected read, trade, withdraw or transfer)")]
pub struct ScopeError(pub String);

impl Scope {
    pub const ALL: [Scope; 4] = [Scope::Read, Scope::Trade, Scope::Withdraw, Scope::Transfer];

    pub const fn as_str(self) -> &'static str {
        match self {
            Scope::Read => "read",
            Scope::Trade => "trade",
            Scope::Withdraw => "withdraw",
            Scope::Transfer => "transfer",
        }
    }

    const fn bit(self) -> u8 {
        match self {
            Scope::Read => 1,
            Scope::Trade => 2,
            Scope::Withdraw => 4,
            Scope::Transfer => 8,
        }
    }
}

impl FromStr for Scope {
    type Err = ScopeError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Scope::ALL
            .into_iter()
            .find(|scope| scope.as_str() == s)
            .ok_or_else(|| ScopeError(s.to_owned()))
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A set of scopes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct ScopeSet(u8);

impl ScopeSet {
    pub const EMPTY: ScopeSet = ScopeSet(0);

    pub fn contains(self, scope: Scope) -> bool {
        self.0 & scope.bit() != 0
    }

    #[must_use]
    pub fn with(self, scope: Scope) -> Self {
        Self(self.0 | scope.bit())
    }

    #[must_use]
    pub fn union(self, other: ScopeSet) -> Self {
        Self(self.0 | other.0)
    }

    /// This set minus every scope in `other`.
    #[must_use]
    pub fn without(self, other: ScopeSet) -> Self {
        Self(self.0 & !other.0)
    }

    /// The scopes in both sets.
    #[must_use]
    pub fn intersection(self, other: ScopeSet) -> Self {
        Self(self.0 & other.0)
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    pub fn is_subset_of(self, other: ScopeSet) -> bool {
        self.0 & !other.0 == 0
    }

    /// Scopes in `self` that `before` did not have.
    pub fn added_since(self, before: ScopeSet) -> ScopeSet {
        Self(self.0 & !before.0)
    }

    /// The scopes in their canonical order.
    pub fn iter(self) -> impl Iterator<Item = Scope> {
        Scope::ALL.into_iter().filter(move |s| self.contains(*s))
    }

    pub fn names(self) -> Vec<&'static str> {
        self.iter().map(Scope::as_str).collect()
    }

    /// Parses scope names; duplicates are harmless, unknown names are an error.
    pub fn parse<I, S>(names: I) -> Result<Self, ScopeError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        names.into_iter().try_fold(Self::EMPTY, |set, name| {
            Ok(set.with(name.as_ref().parse::<Scope>()?))
        })
    }
}

impl FromIterator<Scope> for ScopeSet {
    fn from_iter<T: IntoIterator<Item = Scope>>(iter: T) -> Self {
        iter.into_iter().fold(Self::EMPTY, ScopeSet::with)
    }
}

impl fmt::Display for ScopeSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.names().join(","))
    }
}

impl Serialize for ScopeSet {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.names())
    }
}

impl<'de> Deserialize<'de> for ScopeSet {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let names = Vec::<String>::deserialize(deserializer)?;
        ScopeSet::parse(&names).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_known_and_refuses_unknown() {
        let set = ScopeSet::parse(["read", "trade", "read"]).unwrap();
        assert_eq!(set.names(), vec!["read", "trade"]);
        assert_eq!(
            ScopeSet::parse(["read", "admin"]).unwrap_err(),
            ScopeError("admin".into())
        );
    }

    #[test]
    fn subset_and_added() {
        let before = ScopeSet::parse(["read", "trade"]).unwrap();
        let after = ScopeSet::parse(["read", "trade", "withdraw"]).unwrap();
        assert!(before.is_subset_of(after));
        assert!(!after.is_subset_of(before));
        assert_eq!(after.added_since(before).names(), vec!["withdraw"]);
    }
}
