//! Paid sessions that could not be stored yet.
//!
//! A metered payment settles first and stores its session second. If the
//! store fails in between (an outage, a failed write), the payer has paid
//! for `grants` accesses and must not lose them. The gate then:
//!
//! 1. serves the paid request as usual, with its receipt **and** its
//!    `Payment-Session` header (the session id is the payer's to keep);
//! 2. keeps the session here and writes it to the store in the background,
//!    retrying (100 ms, doubling up to 2 s) until the store takes it;
//! 3. on a spend of an id the store does not know, writes a session kept
//!    here first, then spends (so the payer never sees "unknown session"
//!    from this process while the write is pending; while the store is
//!    down, spends get the usual 503 and can be retried).
//!
//! Only if the session expires before the store ever takes it, or too many
//! are pending at once, is it given up: logged as an error and reported as
//! [`Event::SessionNotRecorded`] with the credits owed, for a refund. A
//! pending session lives in this process's memory: if the process stops
//! before the store recovers, the error log (payment reference, route) and
//! the settlement at the provider are what is left to reconcile.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::GateInner;
use crate::events::Event;
use crate::store::{SessionRecord, SettlementRecord, StoreError};
use crate::wire::Timestamp;

/// Most sessions kept at once; beyond this a failed write is given up at
/// once (the store has been down long enough for the owner to notice).
const MAX_PENDING: usize = 10_000;
/// First pause between background writes; doubled up to [`RETRY_MAX`].
const RETRY_FIRST: Duration = Duration::from_millis(100);
/// Longest pause between background writes: once the store is back, a
/// pending session is stored within this.
const RETRY_MAX: Duration = Duration::from_secs(2);

/// A session that is paid for, with the record of its payment when that
/// could not be stored either.
#[derive(Clone)]
pub(crate) struct PendingSession {
    pub(crate) session: SessionRecord,
    pub(crate) settlement: Option<(SettlementRecord, Duration)>,
}

/// Sessions waiting for the store, by session id.
#[derive(Default)]
pub(crate) struct PendingSessions {
    sessions: Mutex<HashMap<String, PendingSession>>,
}

impl PendingSessions {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, PendingSession>> {
        self.sessions
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The pending session `id`, if any.
    pub(crate) fn get(&self, id: &str) -> Option<PendingSession> {
        let sessions = self.lock();
        if sessions.is_empty() {
            return None;
        }
        sessions.get(id).cloned()
    }

    fn insert(&self, pending: PendingSession) -> bool {
        let mut sessions = self.lock();
        if sessions.len() >= MAX_PENDING {
            return false;
        }
        sessions.insert(pending.session.id.clone(), pending);
        true
    }

    fn contains(&self, id: &str) -> bool {
        self.lock().contains_key(id)
    }

    /// Forgets `id` (stored, or given up).
    pub(crate) fn remove(&self, id: &str) {
        self.lock().remove(id);
    }

    /// How many sessions are waiting for the store.
    pub(crate) fn len(&self) -> usize {
        self.lock().len()
    }
}

/// Stores a pending session (and its payment record). A session the store
/// already has (another writer got there first) counts as stored.
pub(crate) async fn write(
    gate: &GateInner,
    pending: &PendingSession,
    now: Timestamp,
) -> Result<(), StoreError> {
    let session = &pending.session;
    if let Err(e) = gate.store.create_session(session.clone(), now).await {
        match gate.store.session(&session.id).await {
            Ok(Some(_)) => {}
            _ => return Err(e),
        }
    }
    if let Some((record, ttl)) = &pending.settlement
        && let Err(e) = gate.store.put_settlement(record.clone(), *ttl).await
    {
        // The session is safe; only reconciliation of provider
        // notifications for this payment is affected.
        tracing::error!(route = %session.route, reference = %record.reference, %e, "could not store a settlement record; webhooks for this payment cannot be reconciled");
    }
    Ok(())
}

/// Keeps a paid session the store refused and writes it in the background.
/// Returns `false` if it cannot be kept (too many pending, or no runtime to
/// retry on): the caller reports the credits as lost.
pub(crate) fn defer(gate: &Arc<GateInner>, pending: PendingSession) -> bool {
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        return false;
    };
    let id = pending.session.id.clone();
    if !gate.pending.insert(pending.clone()) {
        return false;
    }
    tracing::error!(
        route = %pending.session.route,
        reference = %pending.session.receipt.reference,
        remaining = pending.session.remaining,
        pending = gate.pending.len(),
        "a paid session could not be stored; the request is served and the session is kept in memory and written when the store answers"
    );
    let gate = gate.clone();
    runtime.spawn(async move {
        let mut pause = RETRY_FIRST;
        loop {
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(RETRY_MAX);
            // A spend may have stored it already.
            if !gate.pending.contains(&id) {
                return;
            }
            let now = gate.clock.now();
            if now >= pending.session.expires_at {
                gate.pending.remove(&id);
                give_up(&gate, &pending.session);
                return;
            }
            if write(&gate, &pending, now).await.is_ok() {
                gate.pending.remove(&id);
                tracing::info!(route = %pending.session.route, reference = %pending.session.receipt.reference, "a pending paid session was stored");
                return;
            }
        }
    });
    true
}

/// Reports a paid session that could not be stored in time.
pub(crate) fn give_up(gate: &GateInner, session: &SessionRecord) {
    tracing::error!(route = %session.route, reference = %session.receipt.reference, credits_lost = session.remaining, "a paid session could never be stored; refund or re-issue its credits");
    gate.emit(&Event::SessionNotRecorded {
        route: &session.route,
        receipt: &session.receipt,
        credits_lost: session.remaining,
    });
}
