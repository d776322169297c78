//! Charge only on success (`capture = "after"`): authorize before the
//! handler, capture on a 2xx answer, release otherwise or when the response
//! is never completed.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mpp_runtime::wire::ProblemType;
use mpp_runtime::*;
use support::*;

/// A gate whose events are recorded as short strings.
fn gate_recording(rail: &Arc<TestRail>, store: MemoryStore) -> (Gate, Arc<Mutex<Vec<String>>>) {
    let events = Arc::new(Mutex::new(Vec::new()));
    let sink = events.clone();
    let gate = Gate::builder(config().build().unwrap())
        .rail(Shared(rail.clone()))
        .store(store)
        .on_event(move |event| {
            let line = match event {
                Event::PaymentAuthorized { settlement, .. } => {
                    format!("authorized {}", settlement.reference)
                }
                Event::PaymentSettled { settlement, .. } => {
                    format!("settled {}", settlement.reference)
                }
                Event::PaymentReleased {
                    reference,
                    released,
                    reason,
                    ..
                } => format!("released {reference} {released} ({reason})"),
                _ => return,
            };
            sink.lock().unwrap().push(line);
        })
        .build()
        .unwrap();
    (gate, events)
}

fn after() -> PaymentSpec {
    PaymentSpec::new().amount("2.00").capture(Capture::After)
}

async fn authorized(gate: &Gate, route: &Route) -> Box<Grant> {
    let c = challenge(gate, route, "/x").await;
    granted(gate.admit(route, with_auth("/x", &pay(&c, "ok"))).await)
}

/// Waits (briefly) for a background release.
async fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn a_2xx_answer_captures_and_only_then_sends_the_receipt() {
    let rail = TestRail::new("test");
    let store = MemoryStore::new();
    let (gate, events) = gate_recording(&rail, store.clone());
    let route = route(&gate, "/x", after());
    assert!(route.defers_capture());

    let mut grant = authorized(&gate, &route).await;
    let reference = grant.receipt().reference.clone();
    assert!(grant.awaits_capture());
    assert_eq!(grant.headers().count(), 0, "no receipt before capture");
    assert_eq!(rail.authorization(&reference), Some("authorized"));
    assert_eq!(rail.settled(), 0);
    let record = store.settlement(&reference).await.unwrap().unwrap();
    assert_eq!(record.status, PaymentStatus::Authorized);

    grant.complete(200).await.unwrap();
    assert!(!grant.awaits_capture());
    assert_eq!(rail.authorization(&reference), Some("captured"));
    let headers: Vec<_> = grant.headers().collect();
    assert_eq!(headers.len(), 1);
    assert_eq!(headers[0].0, "Payment-Receipt");
    let record = store.settlement(&reference).await.unwrap().unwrap();
    assert_eq!(record.status, PaymentStatus::Succeeded);
    assert_eq!(
        *events.lock().unwrap(),
        [
            format!("authorized {reference}"),
            format!("settled {reference}")
        ]
    );
}

#[tokio::test]
async fn any_other_status_releases_the_authorization_and_sends_no_receipt() {
    for status in [500, 404, 302, 199] {
        let rail = TestRail::new("test");
        let store = MemoryStore::new();
        let (gate, events) = gate_recording(&rail, store.clone());
        let route = route(&gate, "/x", after());
        let mut grant = authorized(&gate, &route).await;
        let reference = grant.receipt().reference.clone();

        grant.complete(status).await.unwrap();
        assert_eq!(rail.authorization(&reference), Some("released"), "{status}");
        assert_eq!(grant.headers().count(), 0);
        assert_eq!(rail.settled(), 0);
        let record = store.settlement(&reference).await.unwrap().unwrap();
        assert_eq!(record.status, PaymentStatus::Canceled);
        let events = events.lock().unwrap();
        assert_eq!(events.len(), 2, "{events:?}");
        assert_eq!(
            events[1],
            format!("released {reference} true (the handler answered {status})")
        );
    }
}

#[tokio::test]
async fn a_grant_dropped_undecided_is_released_in_the_background() {
    let rail = TestRail::new("test");
    let (gate, events) = gate_recording(&rail, MemoryStore::new());
    let route = route(&gate, "/x", after());
    let grant = authorized(&gate, &route).await;
    let reference = grant.receipt().reference.clone();
    // A panicking handler or a client that went away: the grant is dropped.
    drop(grant);
    eventually("the release", || {
        rail.authorization(&reference) == Some("released")
    })
    .await;
    eventually("the release event", || events.lock().unwrap().len() == 2).await;
    assert!(events.lock().unwrap()[1].contains("never completed"));
}

#[test]
fn a_grant_dropped_while_its_runtime_shuts_down_is_still_released() {
    let rail = TestRail::new("test");
    let worker = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let reference = {
        let rail = rail.clone();
        worker.block_on(async move {
            let (gate, _) = gate_recording(&rail, MemoryStore::new());
            let route = route(&gate, "/x", after());
            let grant = authorized(&gate, &route).await;
            let reference = grant.receipt().reference.clone();
            // Dropped while the runtime that served it goes away, as when an
            // Actix worker thread unwinds from a panic.
            drop(grant);
            reference
        })
    };
    drop(worker);
    let deadline = Instant::now() + Duration::from_secs(5);
    while rail.authorization(&reference) != Some("released") {
        assert!(Instant::now() < deadline, "the release did not happen");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[tokio::test]
async fn a_failed_capture_refuses_with_a_fresh_challenge_and_releases() {
    let rail = TestRail::new("test");
    let (gate, _) = gate_recording(&rail, MemoryStore::new());
    let route = route(&gate, "/x", after());
    let c = challenge(&gate, &route, "/x").await;
    let mut grant = granted(
        gate.admit(&route, with_auth("/x", &pay(&c, "capture_fails")))
            .await,
    );
    let reference = grant.receipt().reference.clone();

    let response = grant.complete(200).await.unwrap_err();
    assert_eq!(response.status, 402);
    assert_eq!(problem(&response), ProblemType::VerificationFailed);
    assert!(problem_detail(&response).contains("could not be captured"));
    assert_challenge_response(&response);
    assert_eq!(grant.headers().count(), 0);
    eventually("the release", || {
        rail.authorization(&reference) == Some("released")
    })
    .await;
}

#[tokio::test]
async fn the_challenge_is_used_up_by_the_authorization() {
    let rail = TestRail::new("test");
    let (gate, _) = gate_recording(&rail, MemoryStore::new());
    let route = route(&gate, "/x", after());
    let c = challenge(&gate, &route, "/x").await;
    let credential = pay(&c, "ok");
    let mut grant = granted(gate.admit(&route, with_auth("/x", &credential)).await);
    grant.complete(500).await.unwrap();
    let replay = denied(gate.admit(&route, with_auth("/x", &credential)).await);
    assert_eq!(problem(&replay), ProblemType::InvalidChallenge);
}

#[tokio::test]
async fn metered_routes_capture_when_the_session_is_created() {
    let rail = TestRail::new("test");
    let (gate, _) = gate_recording(&rail, MemoryStore::new());
    let route = route(&gate, "/x", after().grants(5));
    assert!(!route.defers_capture());
    let mut grant = authorized(&gate, &route).await;
    assert!(!grant.awaits_capture());
    assert_eq!(rail.settled(), 1, "settled at once");
    assert_eq!(grant.session().unwrap().remaining, 4);
    // Nothing to decide afterwards, whatever the status.
    grant.complete(500).await.unwrap();
    assert_eq!(grant.headers().count(), 2);
}

#[tokio::test]
async fn the_configured_default_applies_and_a_route_can_opt_out() {
    let rail = TestRail::new("test");
    let gate = Gate::builder(config().default_capture(Capture::After).build().unwrap())
        .rail(Shared(rail.clone()))
        .build()
        .unwrap();
    assert!(route(&gate, "/a", PaymentSpec::new().amount("1.00")).defers_capture());
    let immediate = PaymentSpec::new()
        .amount("1.00")
        .capture(Capture::Immediate);
    assert!(!route(&gate, "/b", immediate).defers_capture());

    let settings =
        Settings::from_lookup(|name| (name == "MPP_CAPTURE").then(|| "after".to_owned())).unwrap();
    assert_eq!(settings.default_capture, Some(Capture::After));
    let error = Settings::from_lookup(|name| (name == "MPP_CAPTURE").then(|| "later".to_owned()))
        .unwrap_err();
    assert!(error.to_string().contains("MPP_CAPTURE"), "{error}");
}

#[test]
fn a_rail_that_cannot_defer_capture_is_a_startup_error() {
    let rail = TestRail::new("test");
    rail.defers
        .store(false, std::sync::atomic::Ordering::SeqCst);
    let gate = gate_with(&rail);
    let error = gate
        .route(&RouteSpec::new("GET", "/x", after()))
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("capture = \"after\"") && error.contains("`test`"),
        "{error}"
    );
    // A metered route captures at session creation: fine on any rail.
    gate.route(&RouteSpec::new("GET", "/y", after().grants(3)))
        .unwrap();
}
