//! The attribution memo that binds a Tempo transfer to one challenge.
//!
//! 32 bytes, carried by TIP-20 `transferWithMemo`:
//!
//! | bytes | content |
//! |---|---|
//! | 0..4 | `keccak256("mpp")[0..4]` (the MPP tag) |
//! | 4 | version, `0x01` |
//! | 5..15 | `keccak256(realm)[0..10]` (the server) |
//! | 15..25 | the client's id (`keccak256(clientId)[0..10]`), or zeros |
//! | 25..32 | `keccak256(challengeId)[0..7]` (the challenge) |
//!
//! A transfer pays a challenge only when its memo carries the MPP tag and
//! version, the server's realm and the challenge's id. The client part is
//! informational and never checked.

use alloy::primitives::{B256, keccak256};

/// The memo's version byte.
pub const VERSION: u8 = 0x01;

fn tag() -> [u8; 4] {
    let hash = keccak256(b"mpp");
    [hash[0], hash[1], hash[2], hash[3]]
}

/// The memo a client attaches when paying `challenge_id` issued by
/// `realm`, optionally naming itself.
///
/// ```
/// use mpp_runtime::rails::tempo::memo;
/// let m = memo::attribution("api.example.com", "challenge-123", None);
/// assert!(memo::binds(&m, "api.example.com", "challenge-123"));
/// assert!(!memo::binds(&m, "api.example.com", "challenge-124"));
/// assert!(!memo::binds(&m, "other.example.com", "challenge-123"));
/// ```
pub fn attribution(realm: &str, challenge_id: &str, client_id: Option<&str>) -> B256 {
    let mut memo = [0u8; 32];
    memo[..4].copy_from_slice(&tag());
    memo[4] = VERSION;
    memo[5..15].copy_from_slice(&keccak256(realm.as_bytes())[..10]);
    if let Some(client) = client_id {
        memo[15..25].copy_from_slice(&keccak256(client.as_bytes())[..10]);
    }
    memo[25..].copy_from_slice(&keccak256(challenge_id.as_bytes())[..7]);
    B256::from(memo)
}

/// Whether `memo` is an MPP attribution memo for `challenge_id` of
/// `realm` (whatever client it names).
pub fn binds(memo: &B256, realm: &str, challenge_id: &str) -> bool {
    memo[..4] == tag()
        && memo[4] == VERSION
        && memo[5..15] == keccak256(realm.as_bytes())[..10]
        && memo[25..] == keccak256(challenge_id.as_bytes())[..7]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_official_vector_memo() {
        // tempo-receipt-verification.json, matching_challenge_bound_memo.
        let expected: B256 = "0xef1ed712011ece072f76bd8b82350e00000000000000000000eb18f2d4402269"
            .parse()
            .unwrap();
        assert_eq!(
            attribution("api.example.com", "challenge-123", None),
            expected
        );
    }

    #[test]
    fn the_client_part_is_not_checked() {
        let m = attribution("r", "c", Some("my-agent"));
        assert_ne!(m, attribution("r", "c", None));
        assert!(binds(&m, "r", "c"));
    }
}
