//! Stripe webhooks through the gate: verified before anything is parsed,
//! processed once, reconciled with the settlement record, sessions of
//! refunded or disputed payments ended.

#![cfg(feature = "stripe")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::sync::{Arc, Mutex};

use mpp_runtime::rails::stripe::{StripeConfig, StripeRail, StripeWebhooks};
use mpp_runtime::wire::Timestamp;
use mpp_runtime::*;
use serde_json::{Value, json};
use support::*;

const SECRET: &str = "whsec_mpp_tests";

/// Reconciled events seen: event id and the record's status after it.
type Seen = Arc<Mutex<Vec<(String, Option<PaymentStatus>)>>>;

struct Fixture {
    gate: Gate,
    store: MemoryStore,
    clock: Arc<ManualClock>,
    reconciled: Seen,
}

fn fixture(secret: Option<&str>) -> Fixture {
    let store = MemoryStore::new();
    let clock = Arc::new(ManualClock::at(1_800_000_000));
    let mut stripe = StripeConfig::default().secret_key("sk_test_unused");
    if let Some(secret) = secret {
        stripe = stripe.webhook_secret(secret);
    }
    let reconciled = Seen::default();
    let sink = reconciled.clone();
    let gate = Gate::builder(config().build().unwrap())
        .rail(StripeRail::new(stripe).unwrap())
        .store(store.clone())
        .clock(clock.clone())
        .on_event(move |event| {
            if let Event::Reconciled {
                notification,
                record,
                ..
            } = event
            {
                sink.lock()
                    .unwrap()
                    .push((notification.id.clone(), record.map(|r| r.status)));
            }
        })
        .build()
        .unwrap();
    Fixture {
        gate,
        store,
        clock,
        reconciled,
    }
}

impl Fixture {
    fn now(&self) -> u64 {
        self.clock.now().unix()
    }

    async fn deliver_signed(&self, secret: &str, at: u64, body: &str) -> Response {
        let signature = StripeWebhooks::sign(secret, at, body.as_bytes());
        self.deliver(Some(&signature), body).await
    }

    async fn deliver(&self, signature: Option<&str>, body: &str) -> Response {
        let mut request = RequestView::new("POST", "/stripe/webhook");
        if let Some(signature) = signature {
            request = request.with_header("Stripe-Signature", signature);
        }
        self.gate
            .receive_webhook("stripe", &request, body.as_bytes())
            .await
    }

    /// A payment the gate took: a record, and the session it bought.
    async fn paid(&self, reference: &str, session: Option<&str>) {
        let now = self.clock.now();
        if let Some(id) = session {
            self.store
                .create_session(
                    SessionRecord {
                        id: id.to_owned(),
                        scope: "report".to_owned(),
                        route: "GET /report".to_owned(),
                        grants: 10,
                        remaining: 9,
                        expires_at: now.plus(std::time::Duration::from_secs(3600)),
                        receipt: Receipt {
                            method: "stripe".to_owned(),
                            reference: reference.to_owned(),
                            external_id: None,
                            timestamp: now.to_rfc3339(),
                            extensions: serde_json::Map::new(),
                        }
                        .into(),
                    },
                    now,
                )
                .await
                .unwrap();
        }
        self.store
            .put_settlement(
                SettlementRecord {
                    reference: reference.to_owned(),
                    method: "stripe".to_owned(),
                    route: "GET /report".to_owned(),
                    challenge_id: "ch".to_owned(),
                    amount: "500".to_owned(),
                    currency: "usd".to_owned(),
                    status: PaymentStatus::Succeeded,
                    amount_refunded: None,
                    session: session.map(str::to_owned),
                    created_at: now,
                    updated_at: now,
                },
                std::time::Duration::from_secs(3600),
            )
            .await
            .unwrap();
    }

    async fn status(&self, reference: &str) -> PaymentStatus {
        self.store
            .settlement(reference)
            .await
            .unwrap()
            .unwrap()
            .status
    }
}

fn event(id: &str, kind: &str, object: Value) -> String {
    json!({"id": id, "object": "event", "type": kind, "data": {"object": object}}).to_string()
}

fn body(response: &Response) -> Value {
    serde_json::from_slice(&response.body).unwrap()
}

#[tokio::test]
async fn a_signed_refund_is_processed_once_even_when_delivered_twice() {
    let f = fixture(Some(SECRET));
    f.paid("pi_refund", Some("sess_refunded")).await;
    let refund = event(
        "evt_refund",
        "charge.refunded",
        json!({"id": "ch_1", "payment_intent": "pi_refund", "amount": 500, "amount_refunded": 500, "refunded": true}),
    );

    let first = f.deliver_signed(SECRET, f.now(), &refund).await;
    assert_eq!(first.status, 200, "{}", first.body_text());
    assert_eq!(body(&first), json!({"received": true}));
    assert_eq!(f.status("pi_refund").await, PaymentStatus::Refunded);
    // The session the refunded payment bought is over.
    let outcome = f
        .store
        .spend_session("sess_refunded", "report", f.clock.now())
        .await
        .unwrap();
    assert_eq!(outcome, SpendOutcome::Exhausted);

    let again = f.deliver_signed(SECRET, f.now(), &refund).await;
    assert_eq!(again.status, 200);
    assert_eq!(body(&again), json!({"received": true, "duplicate": true}));
    assert_eq!(
        *f.reconciled.lock().unwrap(),
        [("evt_refund".to_owned(), Some(PaymentStatus::Refunded))],
        "processed once"
    );
}

#[tokio::test]
async fn tampered_wrongly_signed_and_stale_deliveries_are_400_and_store_nothing() {
    let f = fixture(Some(SECRET));
    f.paid("pi_safe", Some("sess_safe")).await;
    let dispute = event(
        "evt_dispute",
        "charge.dispute.created",
        json!({"id": "dp_1", "payment_intent": "pi_safe", "reason": "fraudulent"}),
    );
    let signature = StripeWebhooks::sign(SECRET, f.now(), dispute.as_bytes());
    let tampered = dispute.replace("fraudulent", "duplicate");
    let refusals = [
        f.deliver(Some(&signature), &tampered).await,
        f.deliver_signed("whsec_someone_else", f.now(), &dispute)
            .await,
        f.deliver_signed(SECRET, f.now() - 301, &dispute).await,
        f.deliver_signed(SECRET, f.now() + 301, &dispute).await,
        f.deliver(None, &dispute).await,
        f.deliver(Some("t=abc,v1=def"), &dispute).await,
    ];
    for response in &refusals {
        assert_eq!(response.status, 400, "{}", response.body_text());
        assert_eq!(
            response.header("content-type"),
            Some("application/problem+json")
        );
    }
    assert_eq!(f.status("pi_safe").await, PaymentStatus::Succeeded);
    assert!(f.reconciled.lock().unwrap().is_empty());
    let session = f.store.session("sess_safe").await.unwrap().unwrap();
    assert_eq!(session.remaining, 9);
    // Not even the event id was recorded: the genuine delivery still counts.
    let genuine = f.deliver(Some(&signature), &dispute).await;
    assert_eq!(genuine.status, 200);
    assert_eq!(f.status("pi_safe").await, PaymentStatus::Disputed);
    assert_eq!(
        f.store
            .session("sess_safe")
            .await
            .unwrap()
            .unwrap()
            .remaining,
        0
    );
}

#[tokio::test]
async fn late_deliveries_never_move_a_payment_back() {
    let f = fixture(Some(SECRET));
    f.paid("pi_order", None).await;
    let refunded = event(
        "evt_a",
        "charge.refunded",
        json!({"payment_intent": "pi_order", "amount": 500, "amount_refunded": 300, "refunded": false}),
    );
    let succeeded = event(
        "evt_b",
        "payment_intent.succeeded",
        json!({"id": "pi_order", "object": "payment_intent"}),
    );
    assert_eq!(
        f.deliver_signed(SECRET, f.now(), &refunded).await.status,
        200
    );
    assert_eq!(
        f.deliver_signed(SECRET, f.now(), &succeeded).await.status,
        200
    );
    let record = f.store.settlement("pi_order").await.unwrap().unwrap();
    assert_eq!(record.status, PaymentStatus::PartiallyRefunded);
    assert_eq!(record.amount_refunded.as_deref(), Some("300"));
}

#[tokio::test]
async fn unknown_payments_and_other_events_are_acknowledged() {
    let f = fixture(Some(SECRET));
    let foreign = event(
        "evt_foreign",
        "payment_intent.payment_failed",
        json!({"id": "pi_not_ours", "last_payment_error": {"message": "declined"}}),
    );
    let other = event("evt_other", "customer.created", json!({"id": "cus_1"}));
    for delivery in [foreign, other] {
        let response = f.deliver_signed(SECRET, f.now(), &delivery).await;
        assert_eq!(response.status, 200, "{}", response.body_text());
    }
    assert_eq!(
        *f.reconciled.lock().unwrap(),
        [
            ("evt_foreign".to_owned(), None),
            ("evt_other".to_owned(), None)
        ]
    );
}

#[tokio::test]
async fn several_secrets_are_accepted_while_rolling_them() {
    let f = fixture(Some("whsec_old, whsec_new"));
    f.paid("pi_roll", None).await;
    let partial = event(
        "evt_roll",
        "charge.refunded",
        json!({"payment_intent": "pi_roll", "amount": 500, "amount_refunded": 100}),
    );
    let response = f.deliver_signed("whsec_old", f.now(), &partial).await;
    assert_eq!(response.status, 200, "{}", response.body_text());
    assert_eq!(f.status("pi_roll").await, PaymentStatus::PartiallyRefunded);
    let full = event(
        "evt_roll2",
        "charge.refunded",
        json!({"payment_intent": "pi_roll", "amount": 500, "amount_refunded": 500}),
    );
    assert_eq!(
        f.deliver_signed("whsec_new", f.now(), &full).await.status,
        200
    );
    assert_eq!(f.status("pi_roll").await, PaymentStatus::Refunded);
}

#[tokio::test]
async fn without_a_webhook_secret_deliveries_fail_closed() {
    let f = fixture(None);
    let delivery = event("evt_x", "payment_intent.succeeded", json!({"id": "pi_x"}));
    let response = f.deliver_signed(SECRET, f.now(), &delivery).await;
    assert_eq!(response.status, 500);
    assert!(f.reconciled.lock().unwrap().is_empty());
    let unknown = f
        .gate
        .receive_webhook("tempo", &RequestView::new("POST", "/"), b"{}")
        .await;
    assert_eq!(unknown.status, 404);
}

#[tokio::test]
async fn a_store_outage_answers_503_so_the_provider_retries() {
    let store = SwitchableStore::new();
    let gate = Gate::builder(config().build().unwrap())
        .rail(
            StripeRail::new(
                StripeConfig::default()
                    .secret_key("sk_test_unused")
                    .webhook_secret(SECRET),
            )
            .unwrap(),
        )
        .store(store.clone())
        .build()
        .unwrap();
    let delivery = event(
        "evt_down",
        "payment_intent.succeeded",
        json!({"id": "pi_down"}),
    );
    let signature = StripeWebhooks::sign(SECRET, Timestamp::now().unix(), delivery.as_bytes());
    let request = RequestView::new("POST", "/").with_header("Stripe-Signature", &signature);
    store.set_down(true);
    let response = gate
        .receive_webhook("stripe", &request, delivery.as_bytes())
        .await;
    assert_eq!(response.status, 503);
    store.set_down(false);
    let response = gate
        .receive_webhook("stripe", &request, delivery.as_bytes())
        .await;
    assert_eq!(response.status, 200);
    assert_eq!(
        serde_json::from_slice::<Value>(&response.body).unwrap(),
        json!({"received": true})
    );
}
