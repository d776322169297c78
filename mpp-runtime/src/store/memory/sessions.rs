//! The memory store's metered sessions: a map in shards, each behind a
//! read-write lock, so a spend is one shard read lock, one lookup and an
//! atomic decrement (no cache bookkeeping on the hot path).
//!
//! A session stays until [`EXPIRED_SESSION_GRACE`] past its expiry, judged
//! by the gate's clock like its expiry; a shard drops the ones past that
//! when it next takes a session (at most once a minute), so memory follows
//! the sessions alive, never evicting one early.

use std::collections::HashMap;
use std::sync::atomic::AtomicU32;
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;

use crate::store::{EXPIRED_SESSION_GRACE, SessionRecord};
use crate::wire::Timestamp;

/// Shards (a power of two): enough that many cores rarely share a lock.
const SHARDS: usize = 16;
/// How often a shard looks for sessions past their grace.
const SWEEP_EVERY: Duration = Duration::from_secs(60);

/// One session: its record, and its credits left (the record's
/// `remaining` is only what it was created with).
pub(super) struct Cell {
    pub(super) record: SessionRecord,
    pub(super) remaining: AtomicU32,
    /// When the session is gone (its expiry plus the grace).
    purge_at: Timestamp,
}

impl Cell {
    /// The record with `remaining` credits.
    pub(super) fn record_with(&self, remaining: u32) -> SessionRecord {
        let mut record = self.record.clone();
        record.remaining = remaining;
        record
    }
}

#[derive(Default)]
struct Shard {
    cells: HashMap<Box<str>, Arc<Cell>>,
    next_sweep: Option<Timestamp>,
}

/// The sessions of one memory store.
pub(super) struct Sessions {
    shards: Box<[RwLock<Shard>]>,
}

impl Default for Sessions {
    fn default() -> Self {
        Self {
            shards: (0..SHARDS).map(|_| RwLock::default()).collect(),
        }
    }
}

impl Sessions {
    /// The shard of `id`: session ids end in random characters.
    fn shard(&self, id: &str) -> &RwLock<Shard> {
        let last = id.as_bytes().last().copied().unwrap_or(0);
        &self.shards[usize::from(last) % SHARDS]
    }

    fn read(&self, id: &str) -> RwLockReadGuard<'_, Shard> {
        // A panic while holding the lock cannot leave a shard half-written
        // (every write is one map operation): carry on.
        self.shard(id)
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn write(&self, id: &str) -> RwLockWriteGuard<'_, Shard> {
        self.shard(id)
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Adds `session`; `false` if a live session has its id already. A
    /// session created past its grace is gone at once.
    pub(super) fn create(&self, session: SessionRecord, now: Timestamp) -> bool {
        let purge_at = session.expires_at.plus(EXPIRED_SESSION_GRACE);
        let mut shard = self.write(&session.id);
        if shard.next_sweep.is_none_or(|at| now >= at) {
            shard.cells.retain(|_, cell| cell.purge_at > now);
            shard.next_sweep = Some(now.plus(SWEEP_EVERY));
        }
        if let Some(existing) = shard.cells.get(session.id.as_str())
            && existing.purge_at > now
        {
            return false;
        }
        if purge_at <= now {
            shard.cells.remove(session.id.as_str());
            return true;
        }
        let id: Box<str> = session.id.as_str().into();
        let cell = Cell {
            remaining: AtomicU32::new(session.remaining),
            record: session,
            purge_at,
        };
        shard.cells.insert(id, Arc::new(cell));
        true
    }

    /// The session `id`, unless it is gone by `now`.
    pub(super) fn get(&self, id: &str, now: Timestamp) -> Option<Arc<Cell>> {
        self.read(id)
            .cells
            .get(id)
            .filter(|cell| cell.purge_at > now)
            .cloned()
    }

    /// Sessions held (including any past their grace not yet swept).
    pub(super) fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|shard| {
                shard
                    .read()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .cells
                    .len()
            })
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::Receipt;

    fn session(id: &str, expires_at: Timestamp) -> SessionRecord {
        SessionRecord {
            id: id.to_owned(),
            scope: "s".into(),
            route: "GET /r".into(),
            grants: 2,
            remaining: 2,
            expires_at,
            receipt: Receipt::success("test", "ref", expires_at).into(),
        }
    }

    #[test]
    fn sessions_past_their_grace_are_gone_and_swept() {
        let sessions = Sessions::default();
        let t0 = Timestamp::from_unix(1_000_000);
        for i in 0..100 {
            assert!(sessions.create(
                session(&format!("sess_{i}"), t0.plus(Duration::from_secs(60))),
                t0
            ));
        }
        assert_eq!(sessions.len(), 100);
        let expired = t0.plus(Duration::from_secs(120));
        assert!(
            sessions.get("sess_7", expired).is_some(),
            "within the grace"
        );
        let gone = t0.plus(Duration::from_secs(60) + EXPIRED_SESSION_GRACE);
        assert!(sessions.get("sess_7", gone).is_none(), "past the grace");
        // The next sessions created sweep every shard they land in.
        for i in 0..SHARDS * 4 {
            let id = format!("sess_new_{}", char::from(b'0' + (i % 75) as u8));
            sessions.create(session(&id, gone.plus(Duration::from_secs(600))), gone);
        }
        assert!(sessions.len() <= SHARDS * 4, "{}", sessions.len());
        assert!(sessions.get("sess_7", t0).is_none(), "swept");
    }

    #[test]
    fn ids_are_unique_while_alive_and_late_sessions_are_not_kept() {
        let sessions = Sessions::default();
        let now = Timestamp::from_unix(1_000_000);
        let later = now.plus(Duration::from_secs(60));
        assert!(sessions.create(session("sess_a", later), now));
        assert!(!sessions.create(session("sess_a", later), now), "a live id");
        let past_grace = Timestamp::from_unix(1_000_000 - EXPIRED_SESSION_GRACE.as_secs() - 1);
        assert!(sessions.create(session("sess_b", past_grace), now));
        assert!(sessions.get("sess_b", now).is_none());
    }
}
