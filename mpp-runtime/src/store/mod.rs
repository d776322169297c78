//! Where the gate keeps the little state the protocol needs: used challenge
//! ids (replay protection), per-challenge settlement locks, metered
//! sessions, and settlement records (for reconciling provider webhooks).
//!
//! Minting a 402 touches no store. Every operation is atomic, and a store
//! error fails closed: the request gets a 503 problem, never free access.

#[cfg(any(feature = "redis", feature = "postgres", feature = "sqlite"))]
mod codec;
mod memory;
#[cfg(feature = "redis")]
mod redis_store;
mod settlement;
#[cfg(any(feature = "postgres", feature = "sqlite"))]
mod sql;

use std::fmt;
use std::time::Duration;

use thiserror::Error;

pub use memory::MemoryStore;
#[cfg(feature = "redis")]
pub use redis_store::RedisStore;
pub use settlement::{PaymentStatus, SettlementRecord};
#[cfg(any(feature = "postgres", feature = "sqlite"))]
pub use sql::SqlStore;

use crate::BoxFuture;
use crate::wire::{EncodedReceipt, Timestamp};

/// How long every store keeps a session after its expiry, so that a late
/// spend is answered "expired" (`session/expired`) rather than "not found"
/// (`session/invalid`); after that the session is gone from every store
/// alike. One hour: long enough for a client returning late to be told why,
/// short enough that the in-process [`MemoryStore`] holds an expired
/// session at most an hour past its lifetime.
pub const EXPIRED_SESSION_GRACE: Duration = Duration::from_secs(3600);

/// The store could not answer. Requests fail closed with a 503.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("store unavailable: {0}")]
pub struct StoreError(pub String);

impl StoreError {
    /// A store error with a description (no secrets, no credentials).
    pub fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }
}

/// Proof of holding a lock; releasing requires it, so a holder whose lease
/// expired cannot release the next holder's lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LockToken(pub u128);

impl LockToken {
    /// A fresh random token.
    pub fn random() -> Self {
        Self(crate::random::u128())
    }
}

/// A metered session: credits bought by one payment, locked to a scope.
#[derive(Clone, PartialEq)]
pub struct SessionRecord {
    /// Unguessable id (`sess_` + 192 random bits).
    pub id: String,
    /// The scope the session may be spent on.
    pub scope: String,
    /// The route that sold it.
    pub route: String,
    /// Credits bought.
    pub grants: u32,
    /// Credits left.
    pub remaining: u32,
    /// When it stops being accepted.
    pub expires_at: Timestamp,
    /// The receipt of the payment that bought it, with its header value
    /// (`Receipt::into` builds one; stores that keep the header text use
    /// [`EncodedReceipt::parse`]).
    pub receipt: EncodedReceipt,
}

impl fmt::Debug for SessionRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionRecord")
            .field("id", &crate::wire::redacted(&self.id))
            .field("scope", &self.scope)
            .field("route", &self.route)
            .field("grants", &self.grants)
            .field("remaining", &self.remaining)
            .field("expires_at", &self.expires_at)
            .field("receipt", &self.receipt)
            .finish()
    }
}

/// The result of spending one session credit.
// `Spent` is large, but the outcome is moved once per request and its record
// goes straight into the grant; boxing it would only add an allocation.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum SpendOutcome {
    /// One credit spent; the record shows what is left.
    Spent(SessionRecord),
    /// No credits left.
    Exhausted,
    /// Past its expiry.
    Expired,
    /// No such session.
    NotFound,
    /// The session belongs to another scope.
    ScopeMismatch,
}

impl fmt::Display for SpendOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Spent(_) => "spent",
            Self::Exhausted => "exhausted",
            Self::Expired => "expired",
            Self::NotFound => "not found",
            Self::ScopeMismatch => "scope mismatch",
        })
    }
}

/// The atomic operations the protocol needs. Implementations must make each
/// operation atomic across every process sharing the store.
///
/// `now` arguments carry the gate's clock so expiry is judged consistently.
pub trait Store: Send + Sync + 'static {
    /// Records `key` if absent, for `ttl`. Returns `true` if this call
    /// recorded it, `false` if it was already there.
    fn claim<'a>(&'a self, key: &'a str, ttl: Duration) -> BoxFuture<'a, Result<bool, StoreError>>;

    /// Whether `key` is currently recorded.
    fn is_claimed<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<bool, StoreError>>;

    /// Takes the lock `key` for at most `ttl` if nobody holds it.
    fn lock<'a>(
        &'a self,
        key: &'a str,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<Option<LockToken>, StoreError>>;

    /// Releases the lock `key` if `token` still holds it.
    fn unlock<'a>(
        &'a self,
        key: &'a str,
        token: LockToken,
    ) -> BoxFuture<'a, Result<(), StoreError>>;

    /// Stores a new session created at `now`. Ids are unique; creating an
    /// existing id is an error.
    fn create_session(
        &self,
        session: SessionRecord,
        now: Timestamp,
    ) -> BoxFuture<'_, Result<(), StoreError>>;

    /// Atomically spends one credit of session `id` if it belongs to `scope`,
    /// is unexpired at `now` and has credits left. Never goes below zero.
    fn spend_session<'a>(
        &'a self,
        id: &'a str,
        scope: &'a str,
        now: Timestamp,
    ) -> BoxFuture<'a, Result<SpendOutcome, StoreError>>;

    /// Reads a session without spending.
    fn session<'a>(
        &'a self,
        id: &'a str,
    ) -> BoxFuture<'a, Result<Option<SessionRecord>, StoreError>>;

    /// Ends session `id` (no credits left), as when the payment that bought
    /// it is refunded or disputed. Returns whether the session existed.
    fn end_session<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<bool, StoreError>>;

    /// Stores (or replaces) the record of a payment, kept for `ttl`.
    fn put_settlement(
        &self,
        record: SettlementRecord,
        ttl: Duration,
    ) -> BoxFuture<'_, Result<(), StoreError>>;

    /// The record of the payment with this provider reference.
    fn settlement<'a>(
        &'a self,
        reference: &'a str,
    ) -> BoxFuture<'a, Result<Option<SettlementRecord>, StoreError>>;
}

/// Opens the store named by `spec`:
///
/// | `spec` | store | feature |
/// |---|---|---|
/// | `memory` (or empty) | [`MemoryStore`], this process only | always |
/// | `sqlite://path/to/mpp.db` | [`SqlStore`] on a SQLite file | `sqlite` |
/// | `postgres://user@host/db` | [`SqlStore`] on PostgreSQL | `postgres` |
/// | `redis://host:6379` (or `rediss://`) | [`RedisStore`] | `redis` |
///
/// Keys and tables start with `prefix` (`mpp:` for Redis and `mpp_` for
/// SQL when `None`). A store whose feature is not compiled in is an error
/// saying which feature to enable, and a store that cannot be reached is an
/// error: the application should not start without its store.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let store = mpp_runtime::store::open("memory", None).await;
/// assert!(store.is_ok());
/// let Err(unknown) = mpp_runtime::store::open("mysql://db", None).await else { panic!() };
/// assert!(unknown.to_string().contains("MPP_STORE"));
/// # });
/// ```
pub async fn open(
    spec: &str,
    prefix: Option<&str>,
) -> Result<std::sync::Arc<dyn Store>, StoreError> {
    let spec = spec.trim();
    let scheme = spec.split_once(':').map_or(spec, |(scheme, _)| scheme);
    let missing = |feature: &str| {
        StoreError::new(format!(
            "MPP_STORE names a {feature} store, but this build has no `{feature}` feature; enable it on the adapter (features = [\"{feature}\"])"
        ))
    };
    match scheme {
        "" | "memory" => Ok(std::sync::Arc::new(MemoryStore::new())),
        "redis" | "rediss" => {
            #[cfg(feature = "redis")]
            return Ok(std::sync::Arc::new(
                RedisStore::connect(spec, prefix.unwrap_or("mpp:")).await?,
            ));
            #[cfg(not(feature = "redis"))]
            return Err(missing("redis"));
        }
        "postgres" | "postgresql" => {
            #[cfg(feature = "postgres")]
            return Ok(std::sync::Arc::new(
                SqlStore::connect(spec, prefix.unwrap_or("mpp_")).await?,
            ));
            #[cfg(not(feature = "postgres"))]
            return Err(missing("postgres"));
        }
        "sqlite" => {
            #[cfg(feature = "sqlite")]
            return Ok(std::sync::Arc::new(
                SqlStore::connect(spec, prefix.unwrap_or("mpp_")).await?,
            ));
            #[cfg(not(feature = "sqlite"))]
            return Err(missing("sqlite"));
        }
        other => {
            let _ = (prefix, missing);
            Err(StoreError::new(format!(
                "MPP_STORE must be `memory`, `sqlite://…`, `postgres://…` or `redis://…`, not `{other}:…`"
            )))
        }
    }
}

/// The store named by `MPP_STORE` (with `MPP_STORE_PREFIX`), or the memory
/// store when it is unset. See [`open`].
pub async fn from_env() -> Result<std::sync::Arc<dyn Store>, StoreError> {
    let spec = std::env::var("MPP_STORE").unwrap_or_default();
    let prefix = std::env::var("MPP_STORE_PREFIX")
        .ok()
        .filter(|p| !p.is_empty());
    open(&spec, prefix.as_deref()).await
}
