//! What the fuzz targets share: a gate with a deterministic clock and a rail
//! that settles a payload `{"proof": "ok"}`, and the round-trip helpers.
#![allow(dead_code)]

use std::time::Duration;

use mpp_runtime::wire::Challenge;
use mpp_runtime::*;
use serde_json::{Map, Value};

/// The secret the fuzz gate signs with (the seed corpus was made with it).
pub const SECRET: &str = "fuzz-secret-of-at-least-thirty-two-bytes!";
/// The realm of the fuzz gate.
pub const REALM: &str = "fuzz.example";
/// The fuzz gate's clock: 2026-01-01T00:00:00Z. Seed challenges expire
/// five minutes later, so they stay valid however long fuzzing runs.
pub const NOW: u64 = 1_767_225_600;

/// A rail for fuzzing: `{"proof": "ok"}` settles, anything else is declined.
pub struct FuzzRail;

impl Rail for FuzzRail {
    fn method(&self) -> &str {
        "test"
    }

    fn challenge_request(&self, price: &Price) -> Result<Map<String, Value>, RailError> {
        let mut request = Map::new();
        request.insert(
            "amount".into(),
            price.amount.minor_units().to_string().into(),
        );
        request.insert(
            "currency".into(),
            price.amount.currency().code().to_ascii_lowercase().into(),
        );
        Ok(request)
    }

    fn settle(&self, request: SettleRequest) -> BoxFuture<'_, Result<Settlement, SettleError>> {
        Box::pin(async move {
            if request.payload.get("proof").and_then(Value::as_str) != Some("ok") {
                return Err(SettleError::verification_failed("declined"));
            }
            let amount = request.request.str_field("amount").unwrap_or_default();
            let currency = request.request.str_field("currency").unwrap_or_default();
            Ok(Settlement::new(
                format!(
                    "fz_{}",
                    &request.idempotency_key[..8.min(request.idempotency_key.len())]
                ),
                amount,
                currency,
            ))
        })
    }
}

/// A gate on the fuzz secret and clock with the fuzz rail and a memory
/// store.
pub fn gate() -> Gate {
    builder().build().expect("the fuzz gate builds")
}

/// A gate that must never touch its store (minting 402s does not): cheap
/// to build once per input.
pub fn gate_without_store() -> Gate {
    builder()
        .store(NoStore)
        .build()
        .expect("the fuzz gate builds")
}

fn builder() -> GateBuilder {
    let config = Config::builder()
        .secret(SECRET)
        .realm(REALM)
        .build()
        .expect("the fuzz configuration is valid");
    Gate::builder(config)
        .rail(FuzzRail)
        .clock(ManualClock::at(NOW))
}

/// A store that refuses everything.
pub struct NoStore;

fn refused<'a, T: Send + 'a>() -> BoxFuture<'a, Result<T, StoreError>> {
    Box::pin(async { Err(StoreError::new("this fuzz target has no store")) })
}

impl Store for NoStore {
    fn claim<'a>(&'a self, _: &'a str, _: Duration) -> BoxFuture<'a, Result<bool, StoreError>> {
        refused()
    }
    fn is_claimed<'a>(&'a self, _: &'a str) -> BoxFuture<'a, Result<bool, StoreError>> {
        refused()
    }
    fn lock<'a>(
        &'a self,
        _: &'a str,
        _: Duration,
    ) -> BoxFuture<'a, Result<Option<LockToken>, StoreError>> {
        refused()
    }
    fn unlock<'a>(&'a self, _: &'a str, _: LockToken) -> BoxFuture<'a, Result<(), StoreError>> {
        refused()
    }
    fn create_session(
        &self,
        _: SessionRecord,
        _: wire::Timestamp,
    ) -> BoxFuture<'_, Result<(), StoreError>> {
        refused()
    }
    fn spend_session<'a>(
        &'a self,
        _: &'a str,
        _: &'a str,
        _: wire::Timestamp,
    ) -> BoxFuture<'a, Result<SpendOutcome, StoreError>> {
        refused()
    }
    fn session<'a>(
        &'a self,
        _: &'a str,
    ) -> BoxFuture<'a, Result<Option<SessionRecord>, StoreError>> {
        refused()
    }
    fn end_session<'a>(&'a self, _: &'a str) -> BoxFuture<'a, Result<bool, StoreError>> {
        refused()
    }
    fn put_settlement(
        &self,
        _: SettlementRecord,
        _: Duration,
    ) -> BoxFuture<'_, Result<(), StoreError>> {
        refused()
    }
    fn settlement<'a>(
        &'a self,
        _: &'a str,
    ) -> BoxFuture<'a, Result<Option<SettlementRecord>, StoreError>> {
        refused()
    }
}

/// The challenge key of the fuzz gate.
pub fn key() -> ChallengeKey {
    ChallengeKey::new(SECRET).expect("the fuzz secret is long enough")
}

/// Whether `text` has a character no header value may carry: an ASCII
/// control other than tab (formatting refuses these rather than emit them).
pub fn has_control(text: &str) -> bool {
    text.bytes().any(|b| b.is_ascii_control() && b != b'\t')
}

/// Whether any text field of a challenge has such a character.
pub fn challenge_has_control(c: &Challenge) -> bool {
    [
        Some(c.id.as_str()),
        Some(c.realm.as_str()),
        Some(c.method.as_str()),
        Some(c.intent.as_str()),
        c.description.as_deref(),
        c.digest.as_deref(),
        c.expires.as_deref(),
        c.header.as_deref(),
        c.opaque.as_deref(),
    ]
    .into_iter()
    .flatten()
    .any(has_control)
}

/// Asserts two challenges are the same challenge: every field equal, the
/// request equal in canonical form.
pub fn assert_same_challenge(a: &Challenge, b: &Challenge, context: &str) {
    assert_eq!(a.id, b.id, "{context}: id");
    assert_eq!(a.realm, b.realm, "{context}: realm");
    assert_eq!(a.method, b.method, "{context}: method");
    assert_eq!(a.intent, b.intent, "{context}: intent");
    assert_eq!(
        a.request.canonical(),
        b.request.canonical(),
        "{context}: request"
    );
    assert_eq!(a.description, b.description, "{context}: description");
    assert_eq!(a.digest, b.digest, "{context}: digest");
    assert_eq!(a.expires, b.expires, "{context}: expires");
    assert_eq!(a.header, b.header, "{context}: header");
    assert_eq!(a.opaque, b.opaque, "{context}: opaque");
}
