//! The embedded default store: in-process, on moka (metered sessions in a
//! sharded map of their own, [`sessions`]).
//!
//! Every record lives exactly as long as it matters (a used challenge id until
//! the challenge would have expired anyway, a lock for its lease, a session
//! until [`EXPIRED_SESSION_GRACE`](super::EXPIRED_SESSION_GRACE) past its
//! expiry) and is then dropped. There is no size-based
//! eviction: an evicted record would mean a replayable challenge or a lost
//! paid balance, and nothing is stored for unpaid requests, so memory grows
//! only with paid traffic within those lifetimes.
//!
//! One process only: several processes need a shared store (SQL, Redis).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use moka::Expiry;
use moka::ops::compute::Op;
use moka::sync::Cache;

mod sessions;

use super::{LockToken, SessionRecord, SettlementRecord, SpendOutcome, Store, StoreError};
use crate::BoxFuture;
use crate::wire::Timestamp;

trait Lifetime {
    fn ttl(&self) -> Duration;
}

struct ByLifetime;

impl<V: Lifetime> Expiry<String, V> for ByLifetime {
    fn expire_after_create(
        &self,
        _key: &String,
        value: &V,
        _created_at: Instant,
    ) -> Option<Duration> {
        Some(value.ttl())
    }
}

#[derive(Clone)]
struct Claim(Duration);

impl Lifetime for Claim {
    fn ttl(&self) -> Duration {
        self.0
    }
}

#[derive(Clone)]
struct Lease {
    token: LockToken,
    ttl: Duration,
}

impl Lifetime for Lease {
    fn ttl(&self) -> Duration {
        self.ttl
    }
}

#[derive(Clone)]
struct RecordCell {
    record: SettlementRecord,
    ttl: Duration,
}

impl Lifetime for RecordCell {
    fn ttl(&self) -> Duration {
        self.ttl
    }
}

/// An in-memory [`Store`] for a single process.
///
/// ```
/// use mpp_runtime::{MemoryStore, Store};
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let store = MemoryStore::new();
/// let ttl = std::time::Duration::from_secs(60);
/// assert!(store.claim("challenge:abc", ttl).await.unwrap());
/// assert!(!store.claim("challenge:abc", ttl).await.unwrap());
/// # });
/// ```
#[derive(Clone)]
pub struct MemoryStore {
    claims: Cache<String, Claim>,
    locks: Cache<String, Lease>,
    sessions: Arc<sessions::Sessions>,
    settlements: Cache<String, RecordCell>,
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryStore")
            .field("claims", &self.claims.entry_count())
            .field("locks", &self.locks.entry_count())
            .field("sessions", &self.sessions.len())
            .field("settlements", &self.settlements.entry_count())
            .finish()
    }
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self {
            claims: Cache::builder().expire_after(ByLifetime).build(),
            locks: Cache::builder().expire_after(ByLifetime).build(),
            sessions: Arc::default(),
            settlements: Cache::builder().expire_after(ByLifetime).build(),
        }
    }

    fn claim_now(&self, key: &str, ttl: Duration) -> bool {
        self.claims
            .entry(key.to_owned())
            .or_insert_with(|| Claim(ttl))
            .is_fresh()
    }

    fn lock_now(&self, key: &str, ttl: Duration) -> Option<LockToken> {
        let token = LockToken::random();
        let entry = self
            .locks
            .entry(key.to_owned())
            .or_insert_with(|| Lease { token, ttl });
        (entry.is_fresh() && entry.value().token == token).then_some(token)
    }

    fn unlock_now(&self, key: &str, token: LockToken) {
        self.locks
            .entry(key.to_owned())
            .and_compute_with(|current| match current {
                Some(entry) if entry.value().token == token => Op::Remove,
                _ => Op::Nop,
            });
    }

    fn create_now(&self, session: SessionRecord, now: Timestamp) -> Result<(), StoreError> {
        if self.sessions.create(session, now) {
            Ok(())
        } else {
            Err(StoreError::new("a session with this id already exists"))
        }
    }

    fn spend_now(&self, id: &str, scope: &str, now: Timestamp) -> SpendOutcome {
        let Some(cell) = self.sessions.get(id, now) else {
            return SpendOutcome::NotFound;
        };
        if cell.record.scope != scope {
            return SpendOutcome::ScopeMismatch;
        }
        if now >= cell.record.expires_at {
            return SpendOutcome::Expired;
        }
        let spent = cell
            .remaining
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |r| r.checked_sub(1));
        match spent {
            Ok(before) => SpendOutcome::Spent(cell.record_with(before - 1)),
            Err(_) => SpendOutcome::Exhausted,
        }
    }

    fn read_now(&self, id: &str) -> Option<SessionRecord> {
        self.sessions
            .get(id, Timestamp::now())
            .map(|cell| cell.record_with(cell.remaining.load(Ordering::Acquire)))
    }
}

impl Store for MemoryStore {
    fn claim<'a>(&'a self, key: &'a str, ttl: Duration) -> BoxFuture<'a, Result<bool, StoreError>> {
        let claimed = self.claim_now(key, ttl);
        Box::pin(async move { Ok(claimed) })
    }

    fn is_claimed<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<bool, StoreError>> {
        let claimed = self.claims.contains_key(key);
        Box::pin(async move { Ok(claimed) })
    }

    fn lock<'a>(
        &'a self,
        key: &'a str,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<Option<LockToken>, StoreError>> {
        let token = self.lock_now(key, ttl);
        Box::pin(async move { Ok(token) })
    }

    fn unlock<'a>(
        &'a self,
        key: &'a str,
        token: LockToken,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        self.unlock_now(key, token);
        Box::pin(async { Ok(()) })
    }

    fn create_session(
        &self,
        session: SessionRecord,
        now: Timestamp,
    ) -> BoxFuture<'_, Result<(), StoreError>> {
        let result = self.create_now(session, now);
        Box::pin(async move { result })
    }

    fn spend_session<'a>(
        &'a self,
        id: &'a str,
        scope: &'a str,
        now: Timestamp,
    ) -> BoxFuture<'a, Result<SpendOutcome, StoreError>> {
        let outcome = self.spend_now(id, scope, now);
        Box::pin(async move { Ok(outcome) })
    }

    fn session<'a>(
        &'a self,
        id: &'a str,
    ) -> BoxFuture<'a, Result<Option<SessionRecord>, StoreError>> {
        let record = self.read_now(id);
        Box::pin(async move { Ok(record) })
    }

    fn end_session<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<bool, StoreError>> {
        let existed = match self.sessions.get(id, Timestamp::now()) {
            Some(cell) => {
                cell.remaining.store(0, Ordering::Release);
                true
            }
            None => false,
        };
        Box::pin(async move { Ok(existed) })
    }

    fn put_settlement(
        &self,
        record: SettlementRecord,
        ttl: Duration,
    ) -> BoxFuture<'_, Result<(), StoreError>> {
        self.settlements
            .insert(record.reference.clone(), RecordCell { record, ttl });
        Box::pin(async { Ok(()) })
    }

    fn settlement<'a>(
        &'a self,
        reference: &'a str,
    ) -> BoxFuture<'a, Result<Option<SettlementRecord>, StoreError>> {
        let record = self.settlements.get(reference).map(|cell| cell.record);
        Box::pin(async move { Ok(record) })
    }
}
