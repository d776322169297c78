//! Concurrency: session credits never overspend, and one credential settles
//! at most once however many copies race.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::sync::Arc;
use std::time::Duration;

use mpp_runtime::wire::{ProblemType, Receipt, Timestamp};
use mpp_runtime::*;
use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_hundred_spends_on_a_ten_grant_session_succeed_ten_times() {
    let store = Arc::new(MemoryStore::new());
    let now = Timestamp::now();
    store
        .create_session(
            SessionRecord {
                id: "sess_race".into(),
                scope: "s".into(),
                route: "GET /r".into(),
                grants: 10,
                remaining: 10,
                expires_at: now.plus(Duration::from_secs(60)),
                receipt: Receipt::success("test", "ref", now).into(),
            },
            now,
        )
        .await
        .unwrap();
    let barrier = Arc::new(tokio::sync::Barrier::new(200));
    let tasks: Vec<_> = (0..200)
        .map(|_| {
            let store = store.clone();
            let barrier = barrier.clone();
            tokio::spawn(async move {
                barrier.wait().await;
                store
                    .spend_session("sess_race", "s", Timestamp::now())
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut spent = 0;
    let mut remaining_seen = Vec::new();
    for task in tasks {
        match task.await.unwrap() {
            SpendOutcome::Spent(record) => {
                spent += 1;
                remaining_seen.push(record.remaining);
            }
            SpendOutcome::Exhausted => {}
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!(spent, 10);
    remaining_seen.sort_unstable();
    assert_eq!(remaining_seen, (0..10).collect::<Vec<_>>());
    assert_eq!(
        store.session("sess_race").await.unwrap().unwrap().remaining,
        0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_hundred_requests_on_a_paid_session_get_exactly_the_grants() {
    let rail = TestRail::new("test");
    let gate = gate_with(&rail);
    let route = route(
        &gate,
        "/report",
        PaymentSpec::new().amount("5.00").grants(10),
    );
    let c = challenge(&gate, &route, "/report").await;
    let session = granted(
        gate.admit(&route, with_auth("/report", &pay(&c, "ok")))
            .await,
    )
    .session()
    .unwrap()
    .id
    .clone();
    let auth = session_auth(&session);
    let tasks: Vec<_> = (0..200)
        .map(|_| {
            let (gate, route, auth) = (gate.clone(), route.clone(), auth.clone());
            tokio::spawn(async move { gate.admit(&route, with_auth("/report", &auth)).await })
        })
        .collect();
    let (mut granted_count, mut exhausted) = (0, 0);
    for task in tasks {
        match task.await.unwrap() {
            Admission::Granted(_) => granted_count += 1,
            Admission::Denied(response) => {
                assert_eq!(problem(&response), ProblemType::SessionExhausted);
                exhausted += 1;
            }
        }
    }
    // The paid request used the first of the ten credits.
    assert_eq!((granted_count, exhausted), (9, 191));
    assert_eq!(rail.settled(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_concurrent_retries_of_one_credential_settle_once() {
    let rail = TestRail::new("test");
    // A slow provider widens the race window.
    rail.set_delay(Duration::from_millis(50));
    let gate = gate_with(&rail);
    let route = route(&gate, "/r", PaymentSpec::new().amount("1.00"));
    let c = challenge(&gate, &route, "/r").await;
    let auth = pay(&c, "ok");
    let barrier = Arc::new(tokio::sync::Barrier::new(50));
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let (gate, route, auth, barrier) =
                (gate.clone(), route.clone(), auth.clone(), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                gate.admit(&route, with_auth("/r", &auth)).await
            })
        })
        .collect();
    let mut grants = 0;
    for task in tasks {
        match task.await.unwrap() {
            Admission::Granted(_) => grants += 1,
            Admission::Denied(response) => {
                assert_eq!(problem(&response), ProblemType::InvalidChallenge);
                assert_challenge_response(&response);
            }
        }
    }
    assert_eq!(grants, 1);
    assert_eq!(rail.attempts(), 1);
    assert_eq!(rail.settled(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_client_hanging_up_mid_settlement_still_burns_and_unlocks() {
    let rail = TestRail::new("test");
    rail.set_delay(Duration::from_millis(100));
    let gate = gate_with(&rail);
    let route = route(&gate, "/r", PaymentSpec::new().amount("1.00").grants(3));
    let c = challenge(&gate, &route, "/r").await;
    let auth = pay(&c, "ok");
    // The request future is dropped while the rail is settling.
    let dropped = tokio::time::timeout(
        Duration::from_millis(20),
        gate.admit(&route, with_auth("/r", &auth)),
    )
    .await;
    assert!(dropped.is_err());
    tokio::time::sleep(Duration::from_millis(200)).await;
    // The settlement completed and was recorded: the same credential is now
    // a replay, not a second charge.
    assert_eq!(rail.settled(), 1);
    let replay = denied(gate.admit(&route, with_auth("/r", &auth)).await);
    assert_eq!(problem(&replay), ProblemType::InvalidChallenge);
    assert!(problem_detail(&replay).contains("already been used"));
    assert_eq!(rail.attempts(), 1);
}

#[tokio::test]
async fn challenges_minted_in_the_same_second_are_distinct() {
    let rail = TestRail::new("test");
    let gate = Gate::builder(config().build().unwrap())
        .rail(Shared(rail.clone()))
        .clock(ManualClock::at(1_800_000_000))
        .build()
        .unwrap();
    let route = route(&gate, "/r", PaymentSpec::new().amount("1.00"));
    let a = challenge(&gate, &route, "/r").await;
    let b = challenge(&gate, &route, "/r").await;
    assert_eq!(a.expires, b.expires);
    assert_ne!(a.id, b.id);
    // Two agents paying the same route in the same second both get through.
    granted(gate.admit(&route, with_auth("/r", &pay(&a, "ok"))).await);
    granted(gate.admit(&route, with_auth("/r", &pay(&b, "ok"))).await);
    assert_eq!(rail.settled(), 2);
}
