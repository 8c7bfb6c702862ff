//! Identifiers, tokens and secrets from the operating system's CSPRNG.

use crate::error::AppError;
use aws_lc_rs::rand::{SecureRandom, SystemRandom};

const ALPHANUMERIC: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
const LOWER_ALPHANUMERIC: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";

/// Fills `buf` with random bytes.
pub fn fill(buf: &mut [u8]) -> Result<(), AppError> {
    SystemRandom::new()
        .fill(buf)
        .map_err(|_| AppError::Internal("the system random generator failed".into()))
}

/// Random bytes as an array.
pub fn bytes<const N: usize>() -> Result<[u8; N], AppError> {
    let mut buf = [0u8; N];
    fill(&mut buf)?;
    Ok(buf)
}

/// `len` characters drawn uniformly from `alphabet` (rejection sampling: no modulo bias).
fn string_from(alphabet: &[u8], len: usize) -> Result<String, AppError> {
    let limit = 256 - (256 % alphabet.len());
    let mut out = String::with_capacity(len);
    let mut pool = [0u8; 64];
    while out.len() < len {
        fill(&mut pool)?;
        for &byte in &pool {
            if usize::from(byte) < limit && out.len() < len {
                out.push(char::from(alphabet[usize::from(byte) % alphabet.len()]));
            }
        }
    }
    Ok(out)
}

/// A mixed-case alphanumeric string (for API keys and HMAC secrets: 64 characters carry 381
/// bits, the format exchanges use).
pub fn alphanumeric(len: usize) -> Result<String, AppError> {
    string_from(ALPHANUMERIC, len)
}

/// An identifier like `k_3f9x...`: a prefix and 20 lowercase alphanumerics (103 bits).
pub fn identifier(prefix: &str) -> Result<String, AppError> {
    Ok(format!("{prefix}_{}", string_from(LOWER_ALPHANUMERIC, 20)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_have_the_requested_shape() {
        let key = alphanumeric(64).unwrap();
        assert_eq!(key.len(), 64);
        assert!(key.bytes().all(|b| b.is_ascii_alphanumeric()));
        assert_ne!(key, alphanumeric(64).unwrap());
        let id = identifier("k").unwrap();
        assert!(id.starts_with("k_") && id.len() == 22);
    }
}
