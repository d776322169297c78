//! Metered sessions (grants > 1) and store outages.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::sync::Arc;

use mpp_runtime::wire::{ProblemType, SessionInfo};
use mpp_runtime::*;
use support::*;

fn metered(gate: &Gate) -> Route {
    route(
        gate,
        "/report",
        PaymentSpec::new()
            .amount("5.00")
            .grants(10)
            .scope("report.basic"),
    )
}

#[tokio::test]
async fn one_payment_buys_ten_accesses_then_a_fresh_402() {
    let rail = TestRail::new("test");
    let gate = gate_with(&rail);
    let route = metered(&gate);
    let c = challenge(&gate, &route, "/report").await;

    let first = granted(
        gate.admit(&route, with_auth("/report", &pay(&c, "ok")))
            .await,
    );
    let session = first.session().unwrap().clone();
    assert_eq!(session.remaining, 9);
    assert_eq!(session.scope, "report.basic");
    assert!(session.id.starts_with("sess_") && session.id.len() >= 5 + 22);
    let headers: Vec<_> = first.headers().collect();
    assert_eq!(headers[1].0, "Payment-Session");
    assert_eq!(SessionInfo::parse(headers[1].1).unwrap(), session);
    let receipt = first.receipt().clone();

    for expected in (0..9).rev() {
        let grant = granted(
            gate.admit(&route, with_auth("/report", &session_auth(&session.id)))
                .await,
        );
        let info = grant.session().unwrap();
        assert_eq!(info.remaining, expected);
        assert_eq!(info.id, session.id);
        // Follow-ups carry the receipt of the payment that bought them.
        assert_eq!(*grant.receipt(), receipt);
        assert!(grant.credential().is_none());
    }

    let exhausted = denied(
        gate.admit(&route, with_auth("/report", &session_auth(&session.id)))
            .await,
    );
    assert_eq!(exhausted.status, 402);
    assert_eq!(problem(&exhausted), ProblemType::SessionExhausted);
    assert_challenge_response(&exhausted);
    assert_eq!(rail.settled(), 1);
}

#[tokio::test]
async fn sessions_expire_and_are_locked_to_their_scope() {
    let rail = TestRail::new("test");
    let clock = Arc::new(ManualClock::at(1_800_000_000));
    let gate = Gate::builder(config().build().unwrap())
        .rail(Shared(rail.clone()))
        .clock(clock.clone())
        .build()
        .unwrap();
    let report = metered(&gate);
    let other = route(
        &gate,
        "/other",
        PaymentSpec::new().amount("1.00").grants(5).scope("other"),
    );
    let c = challenge(&gate, &report, "/report").await;
    let session = granted(
        gate.admit(&report, with_auth("/report", &pay(&c, "ok")))
            .await,
    )
    .session()
    .unwrap()
    .clone();
    assert_eq!(session.expires_at.unix(), 1_800_000_000 + 3600);

    let wrong_scope = denied(
        gate.admit(&other, with_auth("/other", &session_auth(&session.id)))
            .await,
    );
    assert_eq!(problem(&wrong_scope), ProblemType::SessionInvalid);
    let unknown = denied(
        gate.admit(&report, with_auth("/report", &session_auth("sess_nope")))
            .await,
    );
    assert_eq!(problem(&unknown), ProblemType::SessionInvalid);

    clock.advance(3599);
    granted(
        gate.admit(&report, with_auth("/report", &session_auth(&session.id)))
            .await,
    );
    clock.advance(1);
    let expired = denied(
        gate.admit(&report, with_auth("/report", &session_auth(&session.id)))
            .await,
    );
    assert_eq!(problem(&expired), ProblemType::SessionExpired);
    assert_challenge_response(&expired);
}

#[tokio::test]
async fn routes_sharing_a_scope_and_price_share_sessions() {
    let rail = TestRail::new("test");
    let gate = gate_with(&rail);
    let a = route(
        &gate,
        "/a",
        PaymentSpec::new().amount("1.00").grants(3).scope("bundle"),
    );
    let b = route(
        &gate,
        "/b",
        PaymentSpec::new().amount("1.00").grants(3).scope("bundle"),
    );
    let c = challenge(&gate, &a, "/a").await;
    let session = granted(gate.admit(&a, with_auth("/a", &pay(&c, "ok"))).await)
        .session()
        .unwrap()
        .clone();
    let on_b = granted(
        gate.admit(&b, with_auth("/b", &session_auth(&session.id)))
            .await,
    );
    assert_eq!(on_b.session().unwrap().remaining, 1);
}

#[tokio::test]
async fn a_store_outage_fails_closed_and_recovers() {
    let rail = TestRail::new("test");
    let store = SwitchableStore::new();
    let gate = Gate::builder(config().build().unwrap())
        .rail(Shared(rail.clone()))
        .store(store.clone())
        .build()
        .unwrap();
    let route = metered(&gate);
    let c = challenge(&gate, &route, "/report").await;
    let session = granted(
        gate.admit(&route, with_auth("/report", &pay(&c, "ok")))
            .await,
    )
    .session()
    .unwrap()
    .clone();

    store.set_down(true);
    // Minting needs no store: unpaid requests still get their 402.
    let fresh = challenge(&gate, &route, "/report").await;
    // Spending or paying does: 503 problem, fresh challenge, no access.
    let spend = denied(
        gate.admit(&route, with_auth("/report", &session_auth(&session.id)))
            .await,
    );
    assert_eq!(spend.status, 503);
    assert_eq!(problem(&spend), ProblemType::ServiceUnavailable);
    assert_challenge_response(&spend);
    let paid = denied(
        gate.admit(&route, with_auth("/report", &pay(&fresh, "ok")))
            .await,
    );
    assert_eq!(paid.status, 503);
    assert_eq!(
        rail.attempts(),
        1,
        "the rail must not be asked to settle while the store is down"
    );

    store.set_down(false);
    let spent = granted(
        gate.admit(&route, with_auth("/report", &session_auth(&session.id)))
            .await,
    );
    assert_eq!(spent.session().unwrap().remaining, 8);
    granted(
        gate.admit(&route, with_auth("/report", &pay(&fresh, "ok")))
            .await,
    );
    assert_eq!(rail.settled(), 2);
}

#[tokio::test]
async fn the_memory_store_forgets_records_only_when_they_expire() {
    let store = MemoryStore::new();
    let short = std::time::Duration::from_millis(50);
    assert!(store.claim("k", short).await.unwrap());
    assert!(store.is_claimed("k").await.unwrap());
    let token = store.lock("l", short).await.unwrap().unwrap();
    assert!(store.lock("l", short).await.unwrap().is_none());
    // A stale holder cannot release someone else's lock.
    store.unlock("l", LockToken(token.0 ^ 1)).await.unwrap();
    assert!(store.lock("l", short).await.unwrap().is_none());
    tokio::time::sleep(std::time::Duration::from_millis(120)).await;
    assert!(!store.is_claimed("k").await.unwrap());
    assert!(store.claim("k", short).await.unwrap());
    // The lock expired with its lease: a crashed holder does not block forever.
    let again = store.lock("l", short).await.unwrap().unwrap();
    store.unlock("l", again).await.unwrap();
    assert!(store.lock("l", short).await.unwrap().is_some());
}

#[tokio::test]
async fn a_failed_burn_write_never_reopens_the_credential() {
    let rail = TestRail::new("test");
    let store = SwitchableStore::new();
    store
        .claims_fail
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let gate = Gate::builder(config().build().unwrap())
        .rail(Shared(rail.clone()))
        .store(store.clone())
        .build()
        .unwrap();
    let route = route(&gate, "/r", PaymentSpec::new().amount("1.00"));
    let c = challenge(&gate, &route, "/r").await;
    let auth = pay(&c, "ok");
    // The payment went through: it is served even though the burn failed.
    granted(gate.admit(&route, with_auth("/r", &auth)).await);
    // The settlement lock, held past the challenge's expiry, refuses reuse.
    for _ in 0..3 {
        let replay = denied(gate.admit(&route, with_auth("/r", &auth)).await);
        assert_eq!(problem(&replay), ProblemType::InvalidChallenge);
    }
    assert_eq!(rail.attempts(), 1);
}

/// The session write fails after the payment settled: the payer still gets
/// the session (kept in memory and written once the store answers; see
/// `faults.rs`), and nothing is reported lost while it can still be stored.
#[tokio::test]
async fn a_session_the_store_refuses_is_kept_not_lost() {
    let rail = TestRail::new("test");
    let store = SwitchableStore::new();
    store
        .sessions_fail
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let lost = Arc::new(std::sync::atomic::AtomicU32::new(0));
    let seen = lost.clone();
    let gate = Gate::builder(config().build().unwrap())
        .rail(Shared(rail.clone()))
        .store(store.clone())
        .on_event(move |event| {
            if let Event::SessionNotRecorded { credits_lost, .. } = event {
                seen.store(*credits_lost, std::sync::atomic::Ordering::SeqCst);
            }
        })
        .build()
        .unwrap();
    let route = metered(&gate);
    let c = challenge(&gate, &route, "/report").await;
    let grant = granted(
        gate.admit(&route, with_auth("/report", &pay(&c, "ok")))
            .await,
    );
    assert_eq!(grant.session().map(|s| s.remaining), Some(9));
    assert_eq!(grant.headers().count(), 2);
    assert_eq!(lost.load(std::sync::atomic::Ordering::SeqCst), 0);
}

#[tokio::test]
async fn debug_output_never_shows_credentials_or_session_ids() {
    let rail = TestRail::new("test");
    let gate = gate_with(&rail);
    let route = metered(&gate);
    let c = challenge(&gate, &route, "/report").await;
    let credential = mpp_runtime::wire::Credential {
        challenge: c,
        payload: serde_json::json!({"proof": "ok", "spt": "spt_SECRET_TOKEN"})
            .as_object()
            .unwrap()
            .clone(),
        source: Some("did:secret:payer".into()),
    };
    let admission = gate
        .admit(&route, with_auth("/report", &credential.to_header()))
        .await;
    let Admission::Granted(grant) = &admission else {
        panic!()
    };
    let session_id = grant.session().unwrap().id.clone();
    let debug = format!("{admission:?} {credential:?}");
    assert!(!debug.contains("spt_SECRET_TOKEN"), "{debug}");
    assert!(!debug.contains("did:secret:payer"), "{debug}");
    assert!(!debug.contains(&session_id), "{debug}");
    let token = mpp_runtime::wire::Authorization::parse(&session_auth(&session_id)).unwrap();
    assert!(!format!("{token:?}").contains(&session_id));
}
