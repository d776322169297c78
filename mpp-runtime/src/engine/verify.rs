//! Checking an echoed challenge, in the order that matters:
//! the HMAC binding (was it issued here, unaltered?), then the route pinning
//! (is it the challenge *this* route issues now?), then expiry.

use std::borrow::Cow;

use crate::binding::{ChallengeKey, PrefixedMac, fields_of};
use crate::random::NonceSource;
use crate::wire::base64url;
use crate::wire::challenge::is_default_credential_header;
use crate::wire::{Challenge, PaymentRequest, Problem, ProblemType, Timestamp};

/// What a route issues for one method: the fields an echoed challenge must
/// match. `expires`, `description` and the id vary per challenge.
#[derive(Debug, Clone, Copy)]
pub struct Expected<'a> {
    /// The server's realm.
    pub realm: &'a str,
    /// The method.
    pub method: &'a str,
    /// The intent.
    pub intent: &'a str,
    /// The request, canonically encoded.
    pub request: &'a PaymentRequest,
    /// What the echoed `opaque` must be.
    pub opaque: ExpectedOpaque<'a>,
    /// The credential header the server advertises, if not `Authorization`.
    pub header: Option<&'a str>,
}

/// What an echoed `opaque` must be.
#[derive(Debug, Clone, Copy)]
pub enum ExpectedOpaque<'a> {
    /// No `opaque` at all.
    Absent,
    /// Exactly this value.
    Exact(&'a str),
    /// base64url of the JSON `prefix + nonce + suffix`, where the nonce is a
    /// per-challenge value of [`NonceSource::LEN`] base64url characters (how
    /// the gate makes every challenge id unique while binding the route).
    Nonced {
        /// The canonical JSON before the nonce.
        prefix: &'a str,
        /// The canonical JSON after the nonce.
        suffix: &'a str,
    },
}

impl ExpectedOpaque<'_> {
    /// Whether `echoed` is acceptable.
    pub fn matches(&self, echoed: Option<&str>) -> bool {
        match (self, echoed) {
            (Self::Absent, None) => true,
            (Self::Exact(expected), Some(echoed)) => *expected == echoed,
            (Self::Nonced { prefix, suffix }, Some(echoed)) => {
                let Ok(json) = base64url::decode(echoed) else {
                    return false;
                };
                json.len() == prefix.len() + NonceSource::LEN + suffix.len()
                    && json.starts_with(prefix.as_bytes())
                    && json.ends_with(suffix.as_bytes())
                    && base64url::is_base64url_nopad(
                        std::str::from_utf8(&json[prefix.len()..json.len() - suffix.len()])
                            .unwrap_or("!"),
                    )
            }
            _ => false,
        }
    }
}

fn invalid(challenge: &Challenge, reason: &str) -> Problem {
    Problem::new(
        ProblemType::InvalidChallenge,
        format!(
            "Challenge \"{}\" is invalid: {reason}.",
            truncate_id(&challenge.id)
        ),
    )
}

/// Challenge ids are 43 characters; never echo an attacker's megabyte back.
pub(crate) fn truncate_id(id: &str) -> &str {
    match id.char_indices().nth(64) {
        Some((at, _)) => &id[..at],
        None => id,
    }
}

/// The echoed request in canonical encoding, borrowing when it already
/// matches the expected (canonical) one byte for byte.
fn canonical_request<'a>(echo: &'a Challenge, expected: &'a PaymentRequest) -> Cow<'a, str> {
    if echo.request.encoded() == expected.encoded() {
        Cow::Borrowed(expected.encoded())
    } else {
        Cow::Owned(echo.request.canonical())
    }
}

/// Whether `echo` carries an id this key issued for exactly its fields.
pub fn is_issued_here(key: &ChallengeKey, echo: &Challenge) -> bool {
    key.verify_challenge(echo)
}

/// Verifies an echoed challenge against what the route issues, at `now`.
///
/// Errors are the problem to answer with: `invalid-challenge` for a forged,
/// altered or foreign challenge, `payment-expired` for an expired one.
pub fn verify_echo(
    key: &ChallengeKey,
    expected: &Expected<'_>,
    echo: &Challenge,
    now: Timestamp,
) -> Result<(), Problem> {
    verify_echo_with(key, None, expected, echo, now)
}

/// [`verify_echo`], reusing the route's HMAC state for the constant prefix
/// (`realm|method|intent|request|`) when the echo's prefix is the expected one.
pub(crate) fn verify_echo_with(
    key: &ChallengeKey,
    prefix: Option<&PrefixedMac>,
    expected: &Expected<'_>,
    echo: &Challenge,
    now: Timestamp,
) -> Result<(), Problem> {
    // 1. Binding: recompute the HMAC over the echoed fields.
    let request = canonical_request(echo, expected.request);
    let same_prefix = echo.realm == expected.realm
        && echo.method == expected.method
        && echo.intent == expected.intent
        && *request == *expected.request.encoded();
    let issued = match prefix {
        Some(mac) if same_prefix => {
            let header = echo
                .header
                .as_deref()
                .filter(|h| !is_default_credential_header(h));
            let mut rest = [""; 7];
            let parts: &[&str] = {
                rest[0] = echo.expires.as_deref().unwrap_or("");
                rest[1] = "|";
                rest[2] = echo.digest.as_deref().unwrap_or("");
                rest[3] = "|";
                match header {
                    Some(h) => {
                        rest[4] = h;
                        rest[5] = "|";
                        rest[6] = echo.opaque.as_deref().unwrap_or("");
                        &rest
                    }
                    None => {
                        rest[4] = echo.opaque.as_deref().unwrap_or("");
                        &rest[..5]
                    }
                }
            };
            mac.verify(parts, &echo.id)
        }
        _ => key.verify_id(&fields_of(echo, &request), &echo.id),
    };
    if !issued {
        return Err(invalid(echo, "challenge was not issued by this server"));
    }
    // 2. Pinning: the echo must be what this route issues now.
    let echo_header = echo
        .header
        .as_deref()
        .filter(|h| !is_default_credential_header(h));
    let mismatch = if echo.realm != expected.realm {
        Some("realm")
    } else if echo.method != expected.method {
        Some("method")
    } else if echo.intent != expected.intent {
        Some("intent")
    } else if !expected.opaque.matches(echo.opaque.as_deref()) {
        Some("route binding (opaque)")
    } else if *request != *expected.request.encoded() {
        Some("request (amount, currency, recipient or method details)")
    } else if !header_eq(echo_header, expected.header) {
        Some("credential header")
    } else if echo.digest.is_some() {
        // This server never binds a body digest; one can only come from
        // another server sharing the secret.
        Some("digest")
    } else {
        None
    };
    if let Some(field) = mismatch {
        return Err(invalid(
            echo,
            &format!("credential {field} does not match this route's requirements"),
        ));
    }
    // 3. Expiry: required (fail closed), and in the future.
    let Some(expires) = echo.expires.as_deref() else {
        return Err(invalid(echo, "missing required expires field"));
    };
    let Ok(expires_at) = Timestamp::parse_rfc3339(expires) else {
        return Err(invalid(echo, "malformed expires timestamp"));
    };
    if now >= expires_at {
        return Err(Problem::new(
            ProblemType::PaymentExpired,
            format!("Payment expired at {expires_at}."),
        ));
    }
    Ok(())
}

fn header_eq(a: Option<&str>, b: Option<&str>) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(a), Some(b)) => a.eq_ignore_ascii_case(b),
        _ => false,
    }
}
