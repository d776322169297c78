//! Fault tests: what a payer gets when the payment provider or the store
//! fails in the middle of a settlement.
//!
//! - The provider answers 5xx, times out after taking the payment, or loses
//!   the request: a 500 problem with a fresh challenge, the challenge is not
//!   burned, and retrying the same credential pays exactly once (Stripe
//!   through the emulator, `tools/stripe-emulator`, behind a fault-injecting
//!   proxy; `MPP_TEST_STRIPE_API_BASE`, skipped without it unless `CI` is
//!   set).
//! - The store fails between settlement and session creation: the paid
//!   request is served with its receipt and its session id, the session is
//!   written once the store answers, and no credit is lost.
//!
//! Covered elsewhere: a test rail's 5xx and a hanging rail (`gate.rs`),
//! Stripe unreachable (`stripe.rs`), an unreachable chain node and a lost
//! broadcast answer (`tempo_chain.rs`), a failed burn write
//! (`sessions.rs`), store outages (`redis_store.rs`, `shared_stores.rs`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

#[cfg(feature = "stripe")]
#[path = "support/emulator.rs"]
mod emulator_support;

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use mpp_runtime::wire::ProblemType;
use mpp_runtime::*;
use serde_json::{Map, Value};
use support::*;

/// A rail that takes the store down (wholly, or for session writes only)
/// right after it settles: the worst moment for the store to fail.
struct FailsStoreAfterSettling {
    rail: Shared,
    store: SwitchableStore,
    whole_store: bool,
}

impl Rail for FailsStoreAfterSettling {
    fn method(&self) -> &str {
        self.rail.method()
    }
    fn challenge_request(&self, price: &Price) -> Result<Map<String, Value>, RailError> {
        self.rail.challenge_request(price)
    }
    fn settle(&self, request: SettleRequest) -> BoxFuture<'_, Result<Settlement, SettleError>> {
        Box::pin(async move {
            let settled = self.rail.settle(request).await;
            if settled.is_ok() {
                if self.whole_store {
                    self.store.set_down(true);
                } else {
                    self.store.sessions_fail.store(true, Ordering::SeqCst);
                }
            }
            settled
        })
    }
}

fn metered_gate(
    rail: &Arc<TestRail>,
    store: &SwitchableStore,
    whole_store: bool,
    lost: &Arc<AtomicU32>,
    clock: Option<Arc<ManualClock>>,
) -> (Gate, Route) {
    let seen = lost.clone();
    let mut builder = Gate::builder(config().build().unwrap())
        .rail(FailsStoreAfterSettling {
            rail: Shared(rail.clone()),
            store: store.clone(),
            whole_store,
        })
        .store(store.clone())
        .on_event(move |event| {
            if let Event::SessionNotRecorded { credits_lost, .. } = event {
                seen.fetch_add(*credits_lost, Ordering::SeqCst);
            }
        });
    if let Some(clock) = clock {
        builder = builder.clock(SharedClock(clock));
    }
    let gate = builder.build().unwrap();
    let route = route(
        &gate,
        "/report",
        PaymentSpec::new()
            .amount("5.00")
            .grants(10)
            .scope("faults.report"),
    );
    (gate, route)
}

struct SharedClock(Arc<ManualClock>);

impl Clock for SharedClock {
    fn now(&self) -> wire::Timestamp {
        self.0.now()
    }
}

async fn wait_for_session(store: &SwitchableStore, id: &str) -> SessionRecord {
    for _ in 0..100 {
        if let Some(record) = store.inner.session(id).await.unwrap() {
            return record;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the pending session was never stored");
}

#[tokio::test]
async fn a_session_write_failing_after_settlement_keeps_every_paid_credit() {
    let rail = TestRail::new("test");
    let store = SwitchableStore::new();
    let lost = Arc::new(AtomicU32::new(0));
    let (gate, route) = metered_gate(&rail, &store, false, &lost, None);
    let c = challenge(&gate, &route, "/report").await;
    let paid = pay(&c, "ok");

    // Paid; the session write fails. The payer gets the content, the
    // receipt and the session id all the same.
    let grant = granted(gate.admit(&route, with_auth("/report", &paid)).await);
    let session = grant
        .session()
        .expect("the paid session is returned")
        .clone();
    assert_eq!(session.remaining, 9);
    let names: Vec<&str> = grant.headers().map(|(name, _)| name).collect();
    assert_eq!(names, ["Payment-Receipt", "Payment-Session"]);

    // While session writes fail, a spend is a 503 (retry later), never a
    // "pay again".
    let unavailable = denied(
        gate.admit(&route, with_auth("/report", &session_auth(&session.id)))
            .await,
    );
    assert_eq!(unavailable.status, 503);
    assert_eq!(problem(&unavailable), ProblemType::ServiceUnavailable);

    // The store takes writes again: the session is spendable, with every
    // credit the payment bought.
    store.sessions_fail.store(false, Ordering::SeqCst);
    let spent = granted(
        gate.admit(&route, with_auth("/report", &session_auth(&session.id)))
            .await,
    );
    assert_eq!(spent.session().unwrap().remaining, 8);
    assert_eq!(spent.receipt().reference, grant.receipt().reference);
    for left in (0..8).rev() {
        let spent = granted(
            gate.admit(&route, with_auth("/report", &session_auth(&session.id)))
                .await,
        );
        assert_eq!(spent.session().unwrap().remaining, left);
    }
    let exhausted = denied(
        gate.admit(&route, with_auth("/report", &session_auth(&session.id)))
            .await,
    );
    assert_eq!(problem(&exhausted), ProblemType::SessionExhausted);

    // The credential never pays twice, and nothing was reported lost.
    let replay = denied(gate.admit(&route, with_auth("/report", &paid)).await);
    assert_eq!(problem(&replay), ProblemType::InvalidChallenge);
    assert_eq!(rail.settled(), 1);
    assert_eq!(lost.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn a_store_outage_right_after_settlement_loses_no_payment() {
    let rail = TestRail::new("test");
    let store = SwitchableStore::new();
    let lost = Arc::new(AtomicU32::new(0));
    let (gate, route) = metered_gate(&rail, &store, true, &lost, None);
    let c = challenge(&gate, &route, "/report").await;
    let paid = pay(&c, "ok");

    // The store goes down as the provider answers: the burn, the session
    // and the payment record all fail. The paid request is served.
    let grant = granted(gate.admit(&route, with_auth("/report", &paid)).await);
    let session = grant
        .session()
        .expect("the paid session is returned")
        .clone();
    assert_eq!(session.remaining, 9);
    let reference = grant.receipt().reference.clone();

    // During the outage: 503s, nothing free, nothing charged.
    for auth in [session_auth(&session.id), paid.clone()] {
        let refused = denied(gate.admit(&route, with_auth("/report", &auth)).await);
        assert_eq!(refused.status, 503, "{}", refused.body_text());
        assert_challenge_response(&refused);
    }

    // The store is back: the background writer stores the session and the
    // payment record without any request.
    store.set_down(false);
    let stored = wait_for_session(&store, &session.id).await;
    assert_eq!(stored.remaining, 9);
    assert_eq!(stored.scope, "faults.report");
    assert_eq!(stored.receipt.reference, reference);
    let record = store.inner.settlement(&reference).await.unwrap();
    assert_eq!(
        record.expect("the payment record is stored too").session,
        Some(session.id.clone())
    );
    let spent = granted(
        gate.admit(&route, with_auth("/report", &session_auth(&session.id)))
            .await,
    );
    assert_eq!(spent.session().unwrap().remaining, 8);

    // The settlement lock, taken before the outage, still refuses the
    // credential: one payment, one settlement.
    let replay = denied(gate.admit(&route, with_auth("/report", &paid)).await);
    assert_eq!(problem(&replay), ProblemType::InvalidChallenge);
    assert_eq!(rail.settled(), 1);
    assert_eq!(lost.load(Ordering::SeqCst), 0);
}

#[tokio::test(start_paused = true)]
async fn a_session_the_store_never_takes_is_reported_when_it_expires() {
    let rail = TestRail::new("test");
    let store = SwitchableStore::new();
    let lost = Arc::new(AtomicU32::new(0));
    let clock = Arc::new(ManualClock::at(1_767_225_600));
    let (gate, route) = metered_gate(&rail, &store, false, &lost, Some(clock.clone()));
    let c = challenge(&gate, &route, "/report").await;
    let grant = granted(
        gate.admit(&route, with_auth("/report", &pay(&c, "ok")))
            .await,
    );
    assert!(grant.session().is_some());
    // Retried for as long as the session could be used...
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert_eq!(lost.load(Ordering::SeqCst), 0);
    // ...and reported, with the credits owed, once it has expired.
    clock.advance(gate.config().session_ttl().as_secs() + 1);
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(lost.load(Ordering::SeqCst), 9);
    assert_eq!(rail.settled(), 1);
}

/// A rail whose provider fails `failures` times with a 5xx, then settles.
#[tokio::test]
async fn repeated_provider_failures_never_burn_and_settle_once() {
    let rail = TestRail::new("test");
    let gate = gate_with(&rail);
    let route = route(&gate, "/r", PaymentSpec::new().amount("1.00"));
    let c = challenge(&gate, &route, "/r").await;
    for _ in 0..5 {
        let failed = denied(gate.admit(&route, with_auth("/r", &pay(&c, "boom"))).await);
        assert_eq!(failed.status, 500);
        assert_eq!(problem(&failed), ProblemType::InternalPaymentError);
        assert_challenge_response(&failed);
    }
    granted(gate.admit(&route, with_auth("/r", &pay(&c, "ok"))).await);
    let replay = denied(gate.admit(&route, with_auth("/r", &pay(&c, "ok"))).await);
    assert_eq!(problem(&replay), ProblemType::InvalidChallenge);
    assert_eq!(rail.settled(), 1);
}

#[cfg(feature = "stripe")]
mod stripe {
    //! The Stripe rail against the emulator, behind a proxy that fails the
    //! way networks and providers fail.

    use std::io::{Read, Write};
    use std::net::{TcpListener, TcpStream};
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use super::emulator_support::{emulator, encode};
    use mpp_runtime::rails::stripe::{StripeConfig, StripeRail};
    use mpp_runtime::wire::{Challenge, Credential, ProblemType, Timestamp};
    use mpp_runtime::*;
    use serde_json::{Value, json};

    use super::support::*;

    const KEY: &str = "sk_test_mpp_faults";

    /// What the proxy does with the next requests.
    #[derive(Clone, Copy, Debug, PartialEq)]
    enum Fault {
        /// Pass requests through.
        None,
        /// Answer 503 without passing the request on.
        Unavailable,
        /// Pass the request on, hold the answer this long.
        SlowAnswer(Duration),
        /// Hold the request this long, then drop it unsent.
        LostRequest(Duration),
    }

    /// A loopback HTTP/1.1 proxy in front of the emulator, one request per
    /// connection.
    struct FaultProxy {
        base: String,
        fault: Arc<Mutex<Fault>>,
    }

    impl FaultProxy {
        fn start(upstream: &str) -> Self {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let base = format!("http://{}", listener.local_addr().unwrap());
            let upstream = upstream.trim_start_matches("http://").to_owned();
            let fault = Arc::new(Mutex::new(Fault::None));
            let shared = fault.clone();
            std::thread::spawn(move || {
                for client in listener.incoming().flatten() {
                    let upstream = upstream.clone();
                    let fault = *shared.lock().unwrap();
                    std::thread::spawn(move || {
                        let _ = relay(client, &upstream, fault);
                    });
                }
            });
            Self { base, fault }
        }

        fn set(&self, fault: Fault) {
            *self.fault.lock().unwrap() = fault;
        }
    }

    /// Reads one request (head and `Content-Length` body).
    fn read_request(client: &mut TcpStream) -> std::io::Result<Vec<u8>> {
        let mut data = Vec::new();
        let mut buf = [0u8; 8192];
        loop {
            let n = client.read(&mut buf)?;
            if n == 0 {
                return Ok(data);
            }
            data.extend_from_slice(&buf[..n]);
            if let Some(end) = data.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&data[..end]).to_ascii_lowercase();
                let length: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .and_then(|v| v.trim().parse().ok())
                    .unwrap_or(0);
                while data.len() < end + 4 + length {
                    let n = client.read(&mut buf)?;
                    if n == 0 {
                        break;
                    }
                    data.extend_from_slice(&buf[..n]);
                }
                return Ok(data);
            }
        }
    }

    fn relay(mut client: TcpStream, upstream: &str, fault: Fault) -> std::io::Result<()> {
        let request = read_request(&mut client)?;
        match fault {
            Fault::Unavailable => {
                let body = r#"{"error":{"type":"api_error","message":"Service unavailable."}}"#;
                write!(
                    client,
                    "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                )?;
                return Ok(());
            }
            Fault::LostRequest(hold) => {
                std::thread::sleep(hold);
                return Ok(());
            }
            Fault::None | Fault::SlowAnswer(_) => {}
        }
        // One request per upstream connection: ask it to close after.
        let text = String::from_utf8_lossy(&request);
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
        let head: Vec<&str> = head
            .lines()
            .filter(|l| !l.to_ascii_lowercase().starts_with("connection:"))
            .collect();
        let mut server = TcpStream::connect(upstream)?;
        write!(
            server,
            "{}\r\nConnection: close\r\n\r\n{body}",
            head.join("\r\n")
        )?;
        let mut answer = Vec::new();
        server.read_to_end(&mut answer)?;
        if let Fault::SlowAnswer(hold) = fault {
            std::thread::sleep(hold);
        }
        client.write_all(&answer)?;
        Ok(())
    }

    fn gate(base: &str) -> (Gate, Route) {
        let rail = StripeRail::new(
            StripeConfig::default()
                .secret_key(KEY)
                .api_base(base)
                .network_id("profile_test_faults"),
        )
        .unwrap();
        let gate = Gate::builder(
            config()
                .settlement_timeout(Duration::from_secs(1))
                .build()
                .unwrap(),
        )
        .rail(rail)
        .build()
        .unwrap();
        let route = route(
            &gate,
            "/r",
            PaymentSpec::new().amount("1.00").scope("faults.stripe"),
        );
        (gate, route)
    }

    async fn mint_spt(base: &str) -> String {
        let expires = Timestamp::now().unix() + 600;
        let body = [
            ("payment_method", "pm_card_visa".to_owned()),
            ("usage_limits[currency]", "usd".to_owned()),
            ("usage_limits[max_amount]", "100".to_owned()),
            ("usage_limits[expires_at]", expires.to_string()),
        ]
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect::<Vec<_>>()
        .join("&");
        let response = reqwest::Client::new()
            .post(format!(
                "{base}/v1/test_helpers/shared_payment/granted_tokens"
            ))
            .bearer_auth(KEY)
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .unwrap();
        let json: Value = serde_json::from_slice(&response.bytes().await.unwrap()).unwrap();
        json["id"].as_str().unwrap().to_owned()
    }

    fn pay_spt(challenge: &Challenge, spt: &str) -> String {
        Credential {
            challenge: challenge.clone(),
            payload: json!({"spt": spt}).as_object().unwrap().clone(),
            source: None,
        }
        .to_header()
    }

    /// PaymentIntents the emulator created (not replayed) for a challenge.
    async fn intents_created(base: &str, challenge: &Challenge) -> Vec<Value> {
        let response = reqwest::Client::new()
            .get(format!("{base}/_shim/requests"))
            .bearer_auth(KEY)
            .send()
            .await
            .unwrap();
        let seen: Value = serde_json::from_slice(&response.bytes().await.unwrap()).unwrap();
        seen.as_array()
            .unwrap()
            .iter()
            .filter(|r| {
                r["idempotency_key"]
                    .as_str()
                    .is_some_and(|k| k.contains(&challenge.id))
                    && r["status"] == 200
                    && r["replayed"] == false
            })
            .cloned()
            .collect()
    }

    /// Runs one fault against a fresh challenge, then retries the same
    /// credential with the fault gone.
    async fn fault_then_retry(fault: Fault, detail: &str) {
        let Some(base) = emulator() else { return };
        let proxy = FaultProxy::start(&base);
        let (gate, route) = gate(&proxy.base);
        let c = challenge(&gate, &route, "/r").await;
        let spt = mint_spt(&base).await;
        let paid = pay_spt(&c, &spt);

        proxy.set(fault);
        let failed = denied(gate.admit(&route, with_auth("/r", &paid)).await);
        assert_eq!(failed.status, 500, "{fault:?}: {}", failed.body_text());
        assert_eq!(problem(&failed), ProblemType::InternalPaymentError);
        assert!(
            problem_detail(&failed).contains(detail),
            "{fault:?}: {}",
            problem_detail(&failed)
        );
        assert_challenge_response(&failed);

        // The fault is gone; the payer retries the same credential.
        proxy.set(Fault::None);
        let grant = granted(gate.admit(&route, with_auth("/r", &paid)).await);
        let reference = grant.receipt().reference.clone();
        assert!(reference.starts_with("pi_"), "{reference}");

        // Exactly one PaymentIntent was created for the challenge, and it is
        // the one the receipt names.
        if let Fault::SlowAnswer(hold) = fault {
            // Let the held answer drain before reading the log.
            tokio::time::sleep(hold).await;
        }
        let created = intents_created(&base, &c).await;
        assert_eq!(created.len(), 1, "{fault:?}: {created:?}");
        let replay = denied(gate.admit(&route, with_auth("/r", &paid)).await);
        assert_eq!(problem(&replay), ProblemType::InvalidChallenge);
        assert_eq!(intents_created(&base, &c).await.len(), 1);
    }

    #[tokio::test]
    async fn stripe_answering_503_is_a_500_and_the_same_credential_pays_later() {
        fault_then_retry(Fault::Unavailable, "Stripe is unavailable (503)").await;
    }

    #[tokio::test]
    async fn a_lost_request_times_out_and_the_same_credential_pays_later() {
        fault_then_retry(
            Fault::LostRequest(Duration::from_secs(3)),
            "did not answer in time",
        )
        .await;
    }

    #[tokio::test]
    async fn an_answer_lost_after_stripe_charged_is_found_by_the_retry() {
        fault_then_retry(
            Fault::SlowAnswer(Duration::from_secs(3)),
            "did not answer in time",
        )
        .await;
    }
}
