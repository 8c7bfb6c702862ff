//! A byte string that must never be logged, printed or left behind in memory.

use std::fmt;
use zeroize::{Zeroize, ZeroizeOnDrop};

/// Secret material (an HMAC key, a master key). `Debug` prints a placeholder and the bytes are
/// wiped when the value is dropped.
#[derive(Clone, Zeroize, ZeroizeOnDrop, PartialEq, Eq)]
pub struct Secret(Vec<u8>);

impl Secret {
    pub fn new(bytes: Vec<u8>) -> Self {
        Self(bytes)
    }

    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret([redacted; {} bytes])", self.0.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_bytes() {
        let secret = Secret::new(b"hunter2".to_vec());
        let printed = format!("{secret:?}");
        assert!(!printed.contains("hunter2"));
        assert!(printed.contains("redacted"));
    }
}
