//! The Stripe rail against the Stripe emulator (`tools/stripe-emulator`:
//! localstripe plus a shim adding Shared Payment Tokens and idempotency).
//!
//! The emulator's base URL comes from `MPP_TEST_STRIPE_API_BASE` (`.ci/run`
//! starts the emulator and sets it). Without it the tests print that they
//! skipped, unless `CI` is set, where they fail: CI must run them.

#![cfg(feature = "stripe")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

#[path = "support/emulator.rs"]
mod emulator_support;

use std::sync::Arc;

use emulator_support::{emulator, encode};
use mpp_runtime::rails::stripe::{StripeConfig, StripeRail};
use mpp_runtime::wire::{Challenge, Credential, ProblemType, Timestamp};
use mpp_runtime::*;
use serde_json::{Value, json};
use support::*;

const KEY: &str = "sk_test_mpp_emulator";

fn stripe(base: &str) -> StripeConfig {
    StripeConfig::default()
        .secret_key(KEY)
        .api_base(base)
        .network_id("profile_test_emulator")
}

fn gate_with_store(rail: StripeRail, store: MemoryStore) -> Gate {
    Gate::builder(config().build().unwrap())
        .rail(rail)
        .store(store)
        .build()
        .unwrap()
}

/// A form-encoded POST to the emulator, answered with JSON.
async fn post_form(url: String, fields: &[(&str, String)]) -> (u16, Value) {
    let body: Vec<String> = fields
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect();
    let response = reqwest::Client::new()
        .post(url)
        .bearer_auth(KEY)
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(body.join("&"))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (
        status,
        serde_json::from_slice(&response.bytes().await.unwrap()).unwrap(),
    )
}

async fn get_json(url: String) -> Value {
    let response = reqwest::Client::new()
        .get(url)
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap();
    serde_json::from_slice(&response.bytes().await.unwrap()).unwrap()
}

/// Mints a test Shared Payment Token for `payment_method`, as the payer's
/// wallet (or the mppx CLI) does.
async fn mint_spt(base: &str, payment_method: &str, max_amount: u64) -> String {
    let expires = Timestamp::now().unix() + 600;
    let (status, body) = post_form(
        format!("{base}/v1/test_helpers/shared_payment/granted_tokens"),
        &[
            ("payment_method", payment_method.to_owned()),
            ("usage_limits[currency]", "usd".to_owned()),
            ("usage_limits[max_amount]", max_amount.to_string()),
            ("usage_limits[expires_at]", expires.to_string()),
        ],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body["id"].as_str().unwrap().to_owned()
}

fn pay_spt(challenge: &Challenge, spt: &str) -> String {
    Credential {
        challenge: challenge.clone(),
        payload: json!({"spt": spt}).as_object().unwrap().clone(),
        source: None,
    }
    .to_header()
}

async fn shim_requests(base: &str) -> Vec<Value> {
    get_json(format!("{base}/_shim/requests"))
        .await
        .as_array()
        .cloned()
        .unwrap_or_default()
}

#[tokio::test]
async fn a_shared_payment_token_pays_the_challenge() {
    let Some(base) = emulator() else { return };
    let gate = gate_with_store(StripeRail::new(stripe(&base)).unwrap(), MemoryStore::new());
    let route = route(
        &gate,
        "/report",
        PaymentSpec::new().amount("5.00").scope("stripe.report"),
    );
    let c = challenge(&gate, &route, "/report").await;
    assert_eq!(c.method, "stripe");
    assert_eq!(
        Value::Object(c.request.fields().clone()),
        json!({"amount": "500", "currency": "usd", "methodDetails": {"networkId": "profile_test_emulator", "paymentMethodTypes": ["card"]}})
    );

    let spt = mint_spt(&base, "pm_card_visa", 500).await;
    let grant = granted(
        gate.admit(&route, with_auth("/report", &pay_spt(&c, &spt)))
            .await,
    );
    let reference = grant.receipt().reference.clone();
    assert!(reference.starts_with("pi_"), "{reference}");
    assert_eq!(grant.receipt().method, "stripe");

    // What reached "Stripe": a confirmed PaymentIntent from the token, keyed
    // by the challenge and token, under the pinned preview version.
    let requests = shim_requests(&base).await;
    let sent = requests
        .iter()
        .find(|r| r.to_string().contains(&c.id))
        .expect("the PaymentIntent creation was recorded");
    let text = sent.to_string();
    assert!(text.contains(&format!("mpp_{}_{spt}", c.id)), "{text}");
    assert!(text.contains("2026-07-29.preview"), "{text}");
    for field in [
        "automatic_payment_methods[enabled]",
        "automatic_payment_methods[allow_redirects]",
        "shared_payment_granted_token",
        "metadata[mpp_challenge_id]",
        "metadata[machine_payment]",
    ] {
        assert!(text.contains(field), "{field} missing from {text}");
    }

    // The token is single use, and the challenge is burned.
    let replay = denied(
        gate.admit(&route, with_auth("/report", &pay_spt(&c, &spt)))
            .await,
    );
    assert_eq!(problem(&replay), ProblemType::InvalidChallenge);
}

#[tokio::test]
async fn a_declined_card_is_refused_without_burning_the_challenge() {
    let Some(base) = emulator() else { return };
    let gate = gate_with_store(StripeRail::new(stripe(&base)).unwrap(), MemoryStore::new());
    let route = route(
        &gate,
        "/r",
        PaymentSpec::new().amount("1.00").scope("stripe.decline"),
    );
    let c = challenge(&gate, &route, "/r").await;
    let declined = mint_spt(&base, "pm_card_chargeCustomerFail", 100).await;
    let response = denied(
        gate.admit(&route, with_auth("/r", &pay_spt(&c, &declined)))
            .await,
    );
    assert_eq!(response.status, 402);
    assert_eq!(problem(&response), ProblemType::VerificationFailed);
    assert!(
        problem_detail(&response).contains("declined"),
        "{}",
        problem_detail(&response)
    );
    assert_challenge_response(&response);
    // The payer tries another card on the same challenge.
    let good = mint_spt(&base, "pm_card_visa", 100).await;
    granted(
        gate.admit(&route, with_auth("/r", &pay_spt(&c, &good)))
            .await,
    );
}

#[tokio::test]
async fn three_d_secure_asks_for_payer_action() {
    let Some(base) = emulator() else { return };
    let gate = gate_with_store(StripeRail::new(stripe(&base)).unwrap(), MemoryStore::new());
    let route = route(
        &gate,
        "/r",
        PaymentSpec::new().amount("1.00").scope("stripe.3ds"),
    );
    let c = challenge(&gate, &route, "/r").await;
    let spt = mint_spt(&base, "pm_card_threeDSecure2Required", 100).await;
    let response = denied(
        gate.admit(&route, with_auth("/r", &pay_spt(&c, &spt)))
            .await,
    );
    assert_eq!(problem(&response), ProblemType::PaymentActionRequired);
}

#[tokio::test]
async fn a_replayed_idempotent_response_is_the_same_payment() {
    let Some(base) = emulator() else { return };
    let rail = StripeRail::new(stripe(&base)).unwrap();
    let gate = gate_with_store(StripeRail::new(stripe(&base)).unwrap(), MemoryStore::new());
    let route = route(
        &gate,
        "/r",
        PaymentSpec::new().amount("1.00").scope("stripe.replay"),
    );
    let c = challenge(&gate, &route, "/r").await;
    let spt = mint_spt(&base, "pm_card_visa", 100).await;
    let request = || SettleRequest {
        challenge: c.clone(),
        payload: json!({"spt": spt}).as_object().unwrap().clone(),
        source: None,
        request: wire::PaymentRequest::from_fields(route.request("stripe").unwrap().clone()),
        price: route.price().clone(),
        route: route.id().to_owned(),
        idempotency_key: c.id.clone(),
        http: Arc::new(RequestView::new("GET", "/r")),
        proofs: mpp_runtime::Proofs::new(Arc::new(MemoryStore::new())),
        issued_at: mpp_runtime::wire::Timestamp::now(),
    };
    let first = rail.settle(request()).await.unwrap();
    assert!(first.reference.starts_with("pi_"));
    // Stripe answers the same idempotency key (challenge and token) with the
    // original response, marked replayed: the gate asks again only when it
    // lost that answer, so the rail reads it as the same payment, not a new
    // one (the gate itself refuses a credential it recorded as paid before
    // ever calling the rail; see `faults.rs` for the lost answer).
    let second = rail.settle(request()).await.unwrap();
    assert_eq!(second.reference, first.reference);
    let sent: Vec<Value> = shim_requests(&base)
        .await
        .into_iter()
        .filter(|r| {
            r["idempotency_key"]
                .as_str()
                .is_some_and(|k| k.contains(&c.id))
        })
        .collect();
    assert_eq!(sent.len(), 2, "{sent:?}");
    assert_eq!(sent[0]["replayed"], false);
    assert_eq!(sent[1]["replayed"], true);
}

#[tokio::test]
async fn stripe_unreachable_is_a_500_and_the_challenge_survives() {
    let Some(base) = emulator() else { return };
    let store = MemoryStore::new();
    // The same server, first with Stripe unreachable, then reachable again.
    let down = gate_with_store(
        StripeRail::new(stripe("http://127.0.0.1:9")).unwrap(),
        store.clone(),
    );
    let up = gate_with_store(StripeRail::new(stripe(&base)).unwrap(), store);
    let spec = || PaymentSpec::new().amount("1.00").scope("stripe.outage");
    let route_down = route(&down, "/r", spec());
    let route_up = route(&up, "/r", spec());
    let c = challenge(&down, &route_down, "/r").await;
    let spt = mint_spt(&base, "pm_card_visa", 100).await;
    let failed = denied(
        down.admit(&route_down, with_auth("/r", &pay_spt(&c, &spt)))
            .await,
    );
    assert_eq!(failed.status, 500);
    assert_eq!(problem(&failed), ProblemType::InternalPaymentError);
    assert_challenge_response(&failed);
    granted(
        up.admit(&route_up, with_auth("/r", &pay_spt(&c, &spt)))
            .await,
    );
}

#[tokio::test]
async fn without_a_secret_key_402s_are_issued_and_settlement_says_what_to_set() {
    let rail = StripeRail::new(StripeConfig::default().network_id("profile_x")).unwrap();
    let gate = gate_with_store(rail, MemoryStore::new());
    let route = route(&gate, "/r", PaymentSpec::new().amount("1.00"));
    let c = challenge(&gate, &route, "/r").await;
    let response = denied(
        gate.admit(&route, with_auth("/r", &pay_spt(&c, "spt_x")))
            .await,
    );
    assert_eq!(response.status, 500);
    assert!(problem_detail(&response).contains("STRIPE_SECRET_KEY"));
    let malformed = denied(gate.admit(&route, with_auth("/r", &pay(&c, "ok"))).await);
    assert_eq!(problem(&malformed), ProblemType::InternalPaymentError);
}

#[test]
fn prices_below_stripes_minimum_are_a_startup_error() {
    let gate = gate_with_store(
        StripeRail::new(StripeConfig::default()).unwrap(),
        MemoryStore::new(),
    );
    let e = gate
        .route(&RouteSpec::new(
            "GET",
            "/cheap",
            PaymentSpec::new().amount("0.30"),
        ))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("below Stripe's minimum charge of 0.50 USD"),
        "{e}"
    );
    assert!(
        gate.route(&RouteSpec::new(
            "GET",
            "/bundle",
            PaymentSpec::new().amount("0.50").grants(10)
        ))
        .is_ok()
    );
    let yen = gate
        .route(&RouteSpec::new(
            "GET",
            "/yen",
            PaymentSpec::new().amount("49").currency("JPY"),
        ))
        .unwrap_err()
        .to_string();
    assert!(yen.contains("50 JPY"), "{yen}");
}

#[tokio::test]
async fn a_customer_resolver_attaches_a_customer() {
    let Some(base) = emulator() else { return };
    let (_, customer) = post_form(
        format!("{base}/v1/customers"),
        &[("email", "agent@example.com".to_owned())],
    )
    .await;
    let customer = customer["id"].as_str().unwrap().to_owned();
    let known = customer.clone();
    let rail = StripeRail::new(stripe(&base)).unwrap().customer_resolver(
        move |request: Arc<RequestView>| {
            let known = known.clone();
            async move {
                Ok(match request.header("x-api-key") {
                    Some("key_agent") => Some(known),
                    _ => None,
                })
            }
        },
    );
    let gate = gate_with_store(rail, MemoryStore::new());
    let route = route(
        &gate,
        "/r",
        PaymentSpec::new().amount("1.00").scope("stripe.customer"),
    );
    let c = challenge(&gate, &route, "/r").await;
    let spt = mint_spt(&base, "pm_card_visa", 100).await;
    let request = with_auth("/r", &pay_spt(&c, &spt)).with_header("X-Api-Key", "key_agent");
    let grant = granted(gate.admit(&route, request).await);
    let intent = get_json(format!(
        "{base}/v1/payment_intents/{}",
        grant.receipt().reference
    ))
    .await;
    assert_eq!(intent["customer"], customer.as_str());
}

async fn intent_status(base: &str, id: &str) -> String {
    get_json(format!("{base}/v1/payment_intents/{id}")).await["status"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// A `capture = "after"` route on the emulator, and a grant for one
/// authorized payment on it (with the challenge it paid).
async fn authorized_on_emulator(
    base: &str,
    scope: &str,
) -> (Gate, Route, wire::Challenge, Box<Grant>) {
    let gate = gate_with_store(StripeRail::new(stripe(base)).unwrap(), MemoryStore::new());
    let route = route(
        &gate,
        "/r",
        PaymentSpec::new()
            .amount("2.00")
            .scope(scope)
            .capture(Capture::After),
    );
    let c = challenge(&gate, &route, "/r").await;
    let spt = mint_spt(base, "pm_card_visa", 200).await;
    let grant = granted(
        gate.admit(&route, with_auth("/r", &pay_spt(&c, &spt)))
            .await,
    );
    (gate, route, c, grant)
}

#[tokio::test]
async fn capture_after_authorizes_then_captures_on_success() {
    let Some(base) = emulator() else { return };
    let (_gate, _route, c, mut grant) = authorized_on_emulator(&base, "stripe.after.ok").await;
    let id = grant.receipt().reference.clone();
    assert_eq!(intent_status(&base, &id).await, "requires_capture");
    let sent = shim_requests(&base).await;
    let creation = sent
        .iter()
        .find(|r| r.to_string().contains(&c.id))
        .unwrap()
        .to_string();
    assert!(creation.contains("capture_method"), "{creation}");

    grant.complete(200).await.unwrap();
    assert_eq!(intent_status(&base, &id).await, "succeeded");
    assert_eq!(grant.headers().count(), 1);
}

#[tokio::test]
async fn capture_after_cancels_when_the_handler_fails() {
    let Some(base) = emulator() else { return };
    let (gate, route, _, mut grant) = authorized_on_emulator(&base, "stripe.after.fail").await;
    let id = grant.receipt().reference.clone();
    grant.complete(500).await.unwrap();
    assert_eq!(intent_status(&base, &id).await, "canceled");
    assert_eq!(grant.headers().count(), 0);

    // Releasing twice is harmless (idempotent), capturing a canceled
    // authorization is refused.
    let rail = StripeRail::new(stripe(&base)).unwrap();
    let authorization = Settlement::new(id.clone(), "200", "usd");
    rail.release(&authorization).await.unwrap();
    let refused = rail.capture(&authorization).await.unwrap_err();
    assert_eq!(refused.kind, SettleErrorKind::VerificationFailed);

    // A declined card is refused before the handler, as without deferral.
    let c = challenge(&gate, &route, "/r").await;
    let declined = mint_spt(&base, "pm_card_chargeCustomerFail", 200).await;
    let response = denied(
        gate.admit(&route, with_auth("/r", &pay_spt(&c, &declined)))
            .await,
    );
    assert_eq!(problem(&response), ProblemType::VerificationFailed);
}

#[tokio::test]
async fn a_refund_webhook_ends_the_session_a_stripe_payment_bought() {
    let Some(base) = emulator() else { return };
    const WHSEC: &str = "whsec_emulator";
    let gate = gate_with_store(
        StripeRail::new(stripe(&base).webhook_secret(WHSEC)).unwrap(),
        MemoryStore::new(),
    );
    let route = route(
        &gate,
        "/r",
        PaymentSpec::new()
            .amount("5.00")
            .grants(10)
            .scope("stripe.refund"),
    );
    let c = challenge(&gate, &route, "/r").await;
    let spt = mint_spt(&base, "pm_card_visa", 500).await;
    let grant = granted(
        gate.admit(&route, with_auth("/r", &pay_spt(&c, &spt)))
            .await,
    );
    let id = grant.receipt().reference.clone();
    let session = grant.session().unwrap().id.clone();
    granted(
        gate.admit(&route, with_auth("/r", &session_auth(&session)))
            .await,
    );

    // Refund it on "Stripe", then deliver the event Stripe would send.
    let (status, refund) = post_form(
        format!("{base}/v1/refunds"),
        &[("payment_intent", id.clone())],
    )
    .await;
    assert_eq!(status, 200, "{refund}");
    let event = json!({
        "id": "evt_refund_e2e",
        "type": "charge.refunded",
        "data": {"object": {"payment_intent": id, "amount": 500, "amount_refunded": 500, "refunded": true}},
    })
    .to_string();
    let signature =
        rails::stripe::StripeWebhooks::sign(WHSEC, Timestamp::now().unix(), event.as_bytes());
    let response = gate
        .receive_webhook(
            "stripe",
            &RequestView::new("POST", "/stripe/webhook")
                .with_header("Stripe-Signature", &signature),
            event.as_bytes(),
        )
        .await;
    assert_eq!(response.status, 200, "{}", response.body_text());
    let spent = denied(
        gate.admit(&route, with_auth("/r", &session_auth(&session)))
            .await,
    );
    assert_eq!(problem(&spent), ProblemType::SessionExhausted);
}

#[test]
fn an_unreadable_setting_is_a_startup_error_naming_it() {
    let config = StripeConfig::from_lookup(|name| {
        (name == "STRIPE_WEBHOOK_TOLERANCE").then(|| "five minutes".to_owned())
    });
    let error = StripeRail::new(config).unwrap_err();
    assert!(
        error
            .to_string()
            .contains("STRIPE_WEBHOOK_TOLERANCE must be a number of seconds, not `five minutes`"),
        "{error}"
    );
}
