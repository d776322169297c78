//! One semantics for every store: the same suite runs against the memory
//! store and, when their servers are configured, the shared stores.
//!
//! SQLite (feature `sqlite`) runs on a fresh file under the target
//! directory. Redis: `MPP_TEST_REDIS_URL`; PostgreSQL:
//! `MPP_TEST_POSTGRES_URL` (`.ci/run` sets both and checks the servers
//! answer). Without them those cases print that they skipped, unless `CI`
//! is set, where they fail. Each run uses its own key or table prefix, and
//! drops its PostgreSQL tables and deletes its SQLite file when it ends.
//! Every time is relative to the real clock (Redis and PostgreSQL expire
//! records by their own clocks).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "support/stores.rs"]
mod stores;

use std::sync::Arc;
use std::time::Duration;

use mpp_runtime::store::{
    EXPIRED_SESSION_GRACE, PaymentStatus, SettlementRecord, SpendOutcome, Store,
};
use mpp_runtime::wire::Timestamp;
use mpp_runtime::{MemoryStore, random};
use stores::{Cleanup, session};

type Shared = Arc<dyn Store>;

/// `secs` seconds before `at`.
fn before(at: Timestamp, secs: u64) -> Timestamp {
    Timestamp::from_unix(at.unix() - secs)
}

fn unique(prefix: &str) -> String {
    format!("{prefix}-{:x}", random::u128())
}

async fn claims_are_exclusive_and_expire(store: Shared) {
    // Exclusive: a long lease, so a loaded machine cannot let it lapse
    // between the first and the last try.
    let key = unique("claim");
    let tries = (0..50).map(|_| {
        let store = store.clone();
        let key = key.clone();
        tokio::spawn(async move { store.claim(&key, Duration::from_secs(60)).await.unwrap() })
    });
    let won = futures_count(tries).await;
    assert_eq!(won, 1, "exactly one claim wins");
    assert!(store.is_claimed(&key).await.unwrap());
    assert!(!store.is_claimed(&unique("other")).await.unwrap());
    // Expiring: a short lease lapses.
    let short = unique("claim");
    assert!(
        store
            .claim(&short, Duration::from_millis(300))
            .await
            .unwrap()
    );
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    assert!(!store.is_claimed(&short).await.unwrap(), "a claim expires");
    assert!(store.claim(&short, Duration::from_secs(5)).await.unwrap());
}

async fn futures_count(tasks: impl Iterator<Item = tokio::task::JoinHandle<bool>>) -> usize {
    let mut won = 0;
    for task in tasks.collect::<Vec<_>>() {
        if task.await.unwrap() {
            won += 1;
        }
    }
    won
}

async fn locks_exclude_and_expire(store: Shared) {
    let key = unique("lock");
    let tries = (0..50).map(|_| {
        let store = store.clone();
        let key = key.clone();
        tokio::spawn(async move {
            store
                .lock(&key, Duration::from_secs(60))
                .await
                .unwrap()
                .is_some()
        })
    });
    assert_eq!(futures_count(tries).await, 1, "one holder at a time");
    // A lapsed lease frees the lock.
    let key = unique("lock");
    assert!(
        store
            .lock(&key, Duration::from_millis(300))
            .await
            .unwrap()
            .is_some()
    );
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    let token = store
        .lock(&key, Duration::from_secs(5))
        .await
        .unwrap()
        .expect("a lapsed lock is free");
    let stranger = mpp_runtime::store::LockToken::random();
    store.unlock(&key, stranger).await.unwrap();
    assert!(
        store
            .lock(&key, Duration::from_secs(5))
            .await
            .unwrap()
            .is_none(),
        "another token does not release it"
    );
    store.unlock(&key, token).await.unwrap();
    assert!(
        store
            .lock(&key, Duration::from_secs(5))
            .await
            .unwrap()
            .is_some()
    );
}

async fn sessions_spend_to_zero_and_no_further(store: Shared) {
    let now = Timestamp::now();
    let later = now.plus(Duration::from_secs(3600));
    let id = unique("sess");
    let bought = session(&id, "report", 3, later);
    store.create_session(bought.clone(), now).await.unwrap();
    assert!(
        store
            .create_session(session(&id, "report", 3, later), now)
            .await
            .is_err(),
        "ids are unique"
    );
    for left in [2, 1, 0] {
        match store.spend_session(&id, "report", now).await.unwrap() {
            SpendOutcome::Spent(record) => {
                assert_eq!(record.remaining, left);
                assert_eq!(record.grants, 3);
                assert_eq!(record.scope, "report");
                assert_eq!(record.receipt, bought.receipt, "the receipt kept as bought");
            }
            other => panic!("expected a spend, got {other}"),
        }
    }
    assert_eq!(
        store.spend_session(&id, "report", now).await.unwrap(),
        SpendOutcome::Exhausted
    );
    assert_eq!(
        store.session(&id).await.unwrap().unwrap().remaining,
        0,
        "never below zero"
    );

    let other = unique("sess");
    store
        .create_session(session(&other, "report", 2, later), now)
        .await
        .unwrap();
    assert_eq!(
        store.spend_session(&other, "premium", now).await.unwrap(),
        SpendOutcome::ScopeMismatch
    );
    assert_eq!(
        store.spend_session(&other, "report", later).await.unwrap(),
        SpendOutcome::Expired
    );
    assert_eq!(
        store
            .spend_session(&unique("sess"), "report", now)
            .await
            .unwrap(),
        SpendOutcome::NotFound
    );
    assert!(store.end_session(&other).await.unwrap());
    assert!(!store.end_session(&unique("sess")).await.unwrap());
    assert_eq!(
        store.spend_session(&other, "report", now).await.unwrap(),
        SpendOutcome::Exhausted
    );
}

async fn concurrent_spends_never_overdraw(store: Shared) {
    let now = Timestamp::now();
    let id = unique("sess");
    store
        .create_session(
            session(&id, "metered", 10, now.plus(Duration::from_secs(3600))),
            now,
        )
        .await
        .unwrap();
    let spends = (0..500).map(|_| {
        let store = store.clone();
        let id = id.clone();
        tokio::spawn(async move {
            matches!(
                store.spend_session(&id, "metered", now).await.unwrap(),
                SpendOutcome::Spent(_)
            )
        })
    });
    assert_eq!(
        futures_count(spends).await,
        10,
        "exactly the credits bought"
    );
    assert_eq!(store.session(&id).await.unwrap().unwrap().remaining, 0);
}

/// Every store keeps an expired session for the same grace
/// ([`EXPIRED_SESSION_GRACE`]): ten minutes after its expiry a spend is
/// `Expired`, past the grace the session is gone (`NotFound`) everywhere.
async fn expired_sessions_are_answered_alike(store: Shared) {
    let now = Timestamp::now();
    let recent = unique("sess");
    store
        .create_session(session(&recent, "report", 2, before(now, 600)), now)
        .await
        .unwrap();
    assert_eq!(
        store.spend_session(&recent, "report", now).await.unwrap(),
        SpendOutcome::Expired,
        "10 minutes after its expiry"
    );
    assert_eq!(
        store.session(&recent).await.unwrap().unwrap().remaining,
        2,
        "an expired session is not spent"
    );

    let long_gone = unique("sess");
    let past_grace = before(now, EXPIRED_SESSION_GRACE.as_secs() + 120);
    store
        .create_session(session(&long_gone, "report", 2, past_grace), now)
        .await
        .unwrap();
    assert_eq!(
        store
            .spend_session(&long_gone, "report", now)
            .await
            .unwrap(),
        SpendOutcome::NotFound,
        "past the grace"
    );
    assert!(store.session(&long_gone).await.unwrap().is_none());
    assert!(!store.end_session(&long_gone).await.unwrap());
}

async fn settlement_records_round_trip(store: Shared) {
    let now = Timestamp::now();
    let reference = unique("pi");
    assert!(store.settlement(&reference).await.unwrap().is_none());
    let mut record = SettlementRecord {
        reference: reference.clone(),
        method: "stripe".into(),
        route: "GET /r".into(),
        challenge_id: "ch_1".into(),
        amount: "500".into(),
        currency: "usd".into(),
        status: PaymentStatus::Succeeded,
        amount_refunded: None,
        session: Some("sess_x".into()),
        created_at: now,
        updated_at: now,
    };
    store
        .put_settlement(record.clone(), Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(
        store.settlement(&reference).await.unwrap(),
        Some(record.clone())
    );
    record.status = PaymentStatus::PartiallyRefunded;
    record.amount_refunded = Some("100".into());
    record.updated_at = now.plus(Duration::from_secs(100));
    store
        .put_settlement(record.clone(), Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(store.settlement(&reference).await.unwrap(), Some(record));
}

macro_rules! conformance {
    ($name:ident, $store:expr) => {
        mod $name {
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn claims_are_exclusive_and_expire() {
                let Some((store, _cleanup)) = $store else {
                    return;
                };
                super::claims_are_exclusive_and_expire(store).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn locks_exclude_and_expire() {
                let Some((store, _cleanup)) = $store else {
                    return;
                };
                super::locks_exclude_and_expire(store).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn sessions_spend_to_zero_and_no_further() {
                let Some((store, _cleanup)) = $store else {
                    return;
                };
                super::sessions_spend_to_zero_and_no_further(store).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn concurrent_spends_never_overdraw() {
                let Some((store, _cleanup)) = $store else {
                    return;
                };
                super::concurrent_spends_never_overdraw(store).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn expired_sessions_are_answered_alike() {
                let Some((store, _cleanup)) = $store else {
                    return;
                };
                super::expired_sessions_are_answered_alike(store).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn settlement_records_round_trip() {
                let Some((store, _cleanup)) = $store else {
                    return;
                };
                super::settlement_records_round_trip(store).await;
            }
        }
    };
}

fn memory() -> Option<(Shared, Cleanup)> {
    Some((Arc::new(MemoryStore::new()), Cleanup::Nothing))
}

conformance!(memory_store, memory());

#[cfg(feature = "redis")]
async fn redis() -> Option<(Shared, Cleanup)> {
    match std::env::var("MPP_TEST_REDIS_URL") {
        Ok(url) if !url.is_empty() => {
            // Every key has a TTL: nothing to remove.
            let prefix = format!("{}:", unique("mpp-test"));
            Some((
                Arc::new(
                    mpp_runtime::store::RedisStore::connect(&url, prefix)
                        .await
                        .expect("MPP_TEST_REDIS_URL answers"),
                ),
                Cleanup::Nothing,
            ))
        }
        _ if std::env::var_os("CI").is_some() => {
            panic!("MPP_TEST_REDIS_URL is not set: CI must run the Redis store tests")
        }
        _ => {
            eprintln!(
                "skipped: set MPP_TEST_REDIS_URL (e.g. redis://127.0.0.1:6379) to run the Redis store tests"
            );
            None
        }
    }
}

#[cfg(feature = "redis")]
conformance!(redis_store, redis().await);

#[cfg(feature = "postgres")]
async fn postgres() -> Option<(Shared, Cleanup)> {
    match std::env::var("MPP_TEST_POSTGRES_URL") {
        Ok(url) if !url.is_empty() => {
            let prefix = format!("mpp_t{:x}_", random::u128() >> 64);
            let cleanup = Cleanup::postgres(&url, &prefix);
            Some((
                Arc::new(
                    mpp_runtime::store::SqlStore::connect(&url, &prefix)
                        .await
                        .expect("MPP_TEST_POSTGRES_URL answers"),
                ),
                cleanup,
            ))
        }
        _ if std::env::var_os("CI").is_some() => {
            panic!("MPP_TEST_POSTGRES_URL is not set: CI must run the PostgreSQL store tests")
        }
        _ => {
            eprintln!(
                "skipped: set MPP_TEST_POSTGRES_URL (e.g. postgres://postgres@127.0.0.1:5432/test) to run the PostgreSQL store tests"
            );
            None
        }
    }
}

#[cfg(feature = "postgres")]
conformance!(postgres_store, postgres().await);

#[cfg(feature = "sqlite")]
async fn sqlite() -> Option<(Shared, Cleanup)> {
    let path = stores::sqlite_path("store-conformance");
    let cleanup = Cleanup::sqlite(&path);
    Some((
        Arc::new(
            mpp_runtime::store::SqlStore::connect(&stores::sqlite_url(&path), "mpp_")
                .await
                .expect("a SQLite file opens"),
        ),
        cleanup,
    ))
}

#[cfg(feature = "sqlite")]
conformance!(sqlite_store, sqlite().await);
