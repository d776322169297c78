//! Randomness from the operating system's CSPRNG.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::wire::base64url;

/// The OS random source failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the operating system's random number generator failed: {0}")]
pub struct RandomError(String);

/// Fills `buf` with cryptographically secure random bytes.
pub fn fill(buf: &mut [u8]) -> Result<(), RandomError> {
    getrandom::fill(buf).map_err(|e| RandomError(e.to_string()))
}

/// A new session id: `sess_` followed by 192 random bits in base64url.
///
/// ```
/// let id = mpp_runtime::random::session_id().unwrap();
/// assert!(id.starts_with("sess_") && id.len() == 5 + 32);
/// ```
pub fn session_id() -> Result<String, RandomError> {
    let mut bytes = [0u8; 24];
    fill(&mut bytes)?;
    let mut id = String::with_capacity(37);
    id.push_str("sess_");
    base64url::encode_into(&bytes, &mut id);
    Ok(id)
}

/// A 128-bit value that is unique within the process even if the OS random
/// source fails (used for lock tokens, which need uniqueness, not secrecy).
pub fn u128() -> u128 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut bytes = [0u8; 16];
    if fill(&mut bytes).is_ok() {
        return u128::from_le_bytes(bytes);
    }
    let count = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    (nanos << 64) ^ u128::from(count) ^ (u128::from(std::process::id()) << 32)
}

/// Unique per-challenge nonces without a system call per challenge: a random
/// 64-bit prefix per source, followed by a counter passed through a 64-bit
/// bijection (so nonces never repeat within a source, and do not reveal how
/// many challenges were issued).
#[derive(Debug)]
pub struct NonceSource {
    prefix: u64,
    key: u64,
    counter: AtomicU64,
}

impl Default for NonceSource {
    fn default() -> Self {
        Self::new()
    }
}

impl NonceSource {
    /// Base64url length of a nonce.
    pub const LEN: usize = 22;

    /// A source seeded from the OS.
    pub fn new() -> Self {
        let seed = u128();
        Self {
            prefix: seed as u64,
            key: (seed >> 64) as u64,
            counter: AtomicU64::new(0),
        }
    }

    /// Appends the next nonce (22 base64url characters) to `out`.
    pub fn push_next(&self, out: &mut String) {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let mut bytes = [0u8; 16];
        bytes[..8].copy_from_slice(&self.prefix.to_le_bytes());
        bytes[8..].copy_from_slice(&mix(n ^ self.key).to_le_bytes());
        base64url::encode_into(&bytes, out);
    }
}

/// The splitmix64 finalizer: a bijection on `u64`.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nonces_are_unique_and_fixed_length() {
        let source = NonceSource::new();
        let mut seen = std::collections::HashSet::new();
        for _ in 0..10_000 {
            let mut nonce = String::new();
            source.push_next(&mut nonce);
            assert_eq!(nonce.len(), NonceSource::LEN);
            assert!(seen.insert(nonce));
        }
    }
}
