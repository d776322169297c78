//! Stateless challenge binding: the challenge id is
//! `base64url(HMAC-SHA256(secret, realm|method|intent|request|expires|digest|[header|]opaque))`,
//! so a server can check that an echoed challenge is one it issued, unaltered,
//! without storing anything when it mints a 402.

use std::fmt;

use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};
use thiserror::Error;

use crate::wire::challenge::is_default_credential_header;
use crate::wire::{Challenge, base64url};

type HmacSha256 = Hmac<Sha256>;

/// The minimum secret length a server accepts, in bytes.
pub const MIN_SECRET_LEN: usize = 32;

/// The secret is shorter than [`MIN_SECRET_LEN`].
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error(
    "the challenge secret is {len} bytes; at least {MIN_SECRET_LEN} are required \
     (set MPP_SECRET_KEY to a random value, e.g. the output of `openssl rand -base64 48`)"
)]
pub struct SecretTooShort {
    /// The length that was given.
    pub len: usize,
}

/// The fields a challenge id binds, in HMAC slot order.
#[derive(Debug, Clone, Copy, Default)]
pub struct BindingFields<'a> {
    /// Slot 0.
    pub realm: &'a str,
    /// Slot 1.
    pub method: &'a str,
    /// Slot 2.
    pub intent: &'a str,
    /// Slot 3: the canonical base64url request.
    pub request: &'a str,
    /// Slot 4 (empty when absent).
    pub expires: Option<&'a str>,
    /// Slot 5 (empty when absent).
    pub digest: Option<&'a str>,
    /// Inserted before opaque only for a non-default credential header.
    pub header: Option<&'a str>,
    /// Last slot (empty when absent).
    pub opaque: Option<&'a str>,
}

/// The server's challenge signing key.
#[derive(Clone)]
pub struct ChallengeKey {
    mac: HmacSha256,
}

impl fmt::Debug for ChallengeKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ChallengeKey(<redacted>)")
    }
}

impl ChallengeKey {
    /// A key from a secret of at least [`MIN_SECRET_LEN`] bytes.
    ///
    /// ```
    /// use mpp_runtime::ChallengeKey;
    /// assert!(ChallengeKey::new("short").is_err());
    /// assert!(ChallengeKey::new("a-secret-of-at-least-thirty-two-bytes").is_ok());
    /// ```
    pub fn new(secret: impl AsRef<[u8]>) -> Result<Self, SecretTooShort> {
        let secret = secret.as_ref();
        if secret.len() < MIN_SECRET_LEN {
            return Err(SecretTooShort { len: secret.len() });
        }
        Ok(Self::with_any_length(secret))
    }

    /// A key from a secret of any length. Servers use [`ChallengeKey::new`];
    /// this exists for conformance harnesses whose fixtures use short keys.
    pub fn with_any_length(secret: &[u8]) -> Self {
        // RFC 2104 key preparation: hash keys longer than the block, zero-pad
        // the rest. This is what `new_from_slice` does, without a `Result`
        // that can never be an error.
        let mut block = hmac::digest::Key::<HmacSha256>::default();
        if secret.len() > block.len() {
            let digest = Sha256::digest(secret);
            block[..digest.len()].copy_from_slice(&digest);
        } else {
            block[..secret.len()].copy_from_slice(secret);
        }
        Self {
            mac: HmacSha256::new(&block),
        }
    }

    /// The challenge id for `fields`.
    pub fn challenge_id(&self, fields: &BindingFields<'_>) -> String {
        base64url::encode(self.tag(fields))
    }

    /// Whether `id` is the challenge id for `fields` (constant-time). Only
    /// the canonical spelling is accepted (43 URL-safe characters, no
    /// padding, zero spare bits): everything keyed by the id (replay
    /// protection, the settlement lock, the rail's idempotency key) must see
    /// one string per challenge.
    pub fn verify_id(&self, fields: &BindingFields<'_>, id: &str) -> bool {
        let Some(tag) = canonical_tag(id) else {
            return false;
        };
        let mut mac = self.mac.clone();
        feed(&mut mac, fields);
        mac.verify_slice(&tag).is_ok()
    }

    /// Whether a parsed challenge carries the id this key would give it. The
    /// request is bound in canonical form, whatever encoding it arrived in.
    pub fn verify_challenge(&self, challenge: &Challenge) -> bool {
        let request = challenge.request.canonical();
        self.verify_id(&fields_of(challenge, &request), &challenge.id)
    }

    /// The keyed MAC after absorbing `realm|method|intent|request|`, the part
    /// of the input that is constant for a route and method.
    pub(crate) fn prefixed(
        &self,
        realm: &str,
        method: &str,
        intent: &str,
        request: &str,
    ) -> PrefixedMac {
        let mut mac = self.mac.clone();
        for part in [realm, method, intent, request] {
            mac.update(part.as_bytes());
            mac.update(b"|");
        }
        PrefixedMac { mac }
    }

    fn tag(&self, fields: &BindingFields<'_>) -> [u8; 32] {
        let mut mac = self.mac.clone();
        feed(&mut mac, fields);
        mac.finalize().into_bytes().into()
    }
}

/// A MAC that has already absorbed a route's constant prefix.
#[derive(Clone)]
pub(crate) struct PrefixedMac {
    mac: HmacSha256,
}

impl PrefixedMac {
    /// Appends the id for a challenge with this prefix and the rest of the
    /// input (`expires|digest|[header|]opaque`, given in pieces).
    pub(crate) fn challenge_id(&self, rest: &[&str], out: &mut String) {
        let mut mac = self.mac.clone();
        for part in rest {
            mac.update(part.as_bytes());
        }
        let tag: [u8; 32] = mac.finalize().into_bytes().into();
        base64url::encode_into(&tag, out);
    }

    /// Whether `id` is the id for this prefix and `rest` (constant-time,
    /// canonical spelling only, as [`ChallengeKey::verify_id`]).
    pub(crate) fn verify(&self, rest: &[&str], id: &str) -> bool {
        let Some(tag) = canonical_tag(id) else {
            return false;
        };
        let mut mac = self.mac.clone();
        for part in rest {
            mac.update(part.as_bytes());
        }
        mac.verify_slice(&tag).is_ok()
    }
}

/// Length of a challenge id: base64url of a 32-byte tag, without padding.
pub const CHALLENGE_ID_LEN: usize = 43;

/// The tag a challenge id spells, if the id is in canonical form.
fn canonical_tag(id: &str) -> Option<[u8; 32]> {
    if id.len() != CHALLENGE_ID_LEN || !base64url::is_base64url_nopad(id) {
        return None;
    }
    let tag: [u8; 32] = base64url::decode(id).ok()?.try_into().ok()?;
    // The last character carries 2 spare bits, which must be zero.
    (base64url::encode(tag) == id).then_some(tag)
}

/// The binding fields of a parsed challenge, with `request` given separately
/// (in canonical form).
pub fn fields_of<'a>(challenge: &'a Challenge, request: &'a str) -> BindingFields<'a> {
    BindingFields {
        realm: &challenge.realm,
        method: &challenge.method,
        intent: &challenge.intent,
        request,
        expires: challenge.expires.as_deref(),
        digest: challenge.digest.as_deref(),
        header: challenge.header.as_deref(),
        opaque: challenge.opaque.as_deref(),
    }
}

fn feed(mac: &mut HmacSha256, f: &BindingFields<'_>) {
    for part in [
        f.realm,
        f.method,
        f.intent,
        f.request,
        f.expires.unwrap_or(""),
    ] {
        mac.update(part.as_bytes());
        mac.update(b"|");
    }
    mac.update(f.digest.unwrap_or("").as_bytes());
    mac.update(b"|");
    if let Some(header) = f.header.filter(|h| !is_default_credential_header(h)) {
        mac.update(header.as_bytes());
        mac.update(b"|");
    }
    mac.update(f.opaque.unwrap_or("").as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixed_mac_matches_full_computation() {
        let key = ChallengeKey::new([7u8; 32]).unwrap();
        let fields = BindingFields {
            realm: "api.example.com",
            method: "tempo",
            intent: "charge",
            request: "eyJhIjoiYiJ9",
            expires: Some("2026-01-01T00:00:00Z"),
            digest: None,
            header: None,
            opaque: Some("eyJ4IjoieSJ9"),
        };
        let mut fast = String::new();
        key.prefixed("api.example.com", "tempo", "charge", "eyJhIjoiYiJ9")
            .challenge_id(&["2026-01-01T00:00:00Z", "||", "eyJ4IjoieSJ9"], &mut fast);
        assert_eq!(fast, key.challenge_id(&fields));
        assert!(key.verify_id(&fields, &fast));
        assert!(!key.verify_id(&fields, "AAAA"));
        assert!(!key.verify_id(&fields, "not base64!"));
        // Other spellings of the same tag are refused.
        let last = fast.chars().last().unwrap();
        let siblings: Vec<char> = ('A'..='Z')
            .chain('a'..='z')
            .chain('0'..='9')
            .chain(['-', '_'])
            .collect();
        let index = siblings.iter().position(|&c| c == last).unwrap();
        for spare in 1..4 {
            let mut other = fast.clone();
            other.pop();
            other.push(siblings[(index & !3) | ((index + spare) & 3)]);
            assert_eq!(
                base64url::decode(&other).unwrap(),
                base64url::decode(&fast).unwrap()
            );
            assert!(!key.verify_id(&fields, &other), "{other}");
        }
        assert!(!key.verify_id(&fields, &format!("{fast}=")));
        let standard = fast.replace('-', "+").replace('_', "/");
        if standard != fast {
            assert!(!key.verify_id(&fields, &standard));
        }
    }

    #[test]
    fn key_preparation_matches_the_library_for_every_length() {
        for len in [0usize, 1, 31, 32, 63, 64, 65, 200] {
            let secret = vec![0xA5u8; len];
            let ours = ChallengeKey::with_any_length(&secret).tag(&BindingFields::default());
            let mut theirs = HmacSha256::new_from_slice(&secret).unwrap();
            feed(&mut theirs, &BindingFields::default());
            let theirs: [u8; 32] = theirs.finalize().into_bytes().into();
            assert_eq!(ours, theirs, "key length {len}");
        }
    }

    #[test]
    fn debug_does_not_leak_the_secret() {
        let key = ChallengeKey::new("super-secret-super-secret-super-secret").unwrap();
        assert_eq!(format!("{key:?}"), "ChallengeKey(<redacted>)");
    }
}
