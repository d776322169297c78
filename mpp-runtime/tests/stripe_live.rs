//! The Stripe rail against real Stripe **test mode**. These tests reach
//! api.stripe.com, so they run only when `STRIPE_SECRET_KEY` holds a test
//! key (`sk_test_…`) of an account with Shared Payment Tokens enabled, and
//! skip with a message otherwise (CI has no key). `STRIPE_NETWORK_ID`
//! (your `profile_test_…`) is used when set.

#![cfg(feature = "stripe")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

#[path = "support/emulator.rs"]
mod emulator_support;

use emulator_support::encode;
use mpp_runtime::rails::stripe::{DEFAULT_API_VERSION, StripeConfig, StripeRail};
use mpp_runtime::wire::{Credential, Timestamp};
use mpp_runtime::*;
use serde_json::{Value, json};
use support::*;

fn live_key() -> Option<String> {
    match std::env::var("STRIPE_SECRET_KEY") {
        Ok(key) if key.starts_with("sk_test_") => Some(key),
        Ok(_) => {
            eprintln!(
                "skipped: STRIPE_SECRET_KEY is not a test-mode key (sk_test_…); live tests never use live keys"
            );
            None
        }
        Err(_) => {
            eprintln!(
                "skipped: set STRIPE_SECRET_KEY=sk_test_… to run the live Stripe test-mode tests"
            );
            None
        }
    }
}

fn api_version() -> String {
    std::env::var("STRIPE_API_VERSION").unwrap_or_else(|_| DEFAULT_API_VERSION.to_owned())
}

/// Mints a test Shared Payment Token the way the mppx CLI does.
async fn mint_spt(key: &str, amount: &str) -> String {
    let mut form = vec![
        ("payment_method", "pm_card_visa".to_owned()),
        ("usage_limits[currency]", "usd".to_owned()),
        ("usage_limits[max_amount]", amount.to_owned()),
        (
            "usage_limits[expires_at]",
            (Timestamp::now().unix() + 600).to_string(),
        ),
    ];
    if let Ok(network) = std::env::var("STRIPE_NETWORK_ID") {
        form.push(("seller_details[network_id]", network));
    }
    let body = form
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect::<Vec<_>>()
        .join("&");
    let response = reqwest::Client::new()
        .post("https://api.stripe.com/v1/test_helpers/shared_payment/granted_tokens")
        .basic_auth(key, Some(""))
        .header("Stripe-Version", api_version())
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .unwrap();
    let status = response.status();
    let body: Value = serde_json::from_slice(&response.bytes().await.unwrap()).unwrap();
    assert!(status.is_success(), "minting a test SPT failed: {body}");
    body["id"].as_str().unwrap().to_owned()
}

async fn intent_status(key: &str, id: &str) -> String {
    let response = reqwest::Client::new()
        .get(format!("https://api.stripe.com/v1/payment_intents/{id}"))
        .basic_auth(key, Some(""))
        .header("Stripe-Version", api_version())
        .send()
        .await
        .unwrap();
    let intent: Value = serde_json::from_slice(&response.bytes().await.unwrap()).unwrap();
    intent["status"].as_str().unwrap_or_default().to_owned()
}

fn gate(key: &str) -> Gate {
    let mut stripe = StripeConfig::from_env().secret_key(key);
    if let Ok(network) = std::env::var("STRIPE_NETWORK_ID") {
        stripe = stripe.network_id(network);
    }
    Gate::builder(config().build().unwrap())
        .rail(StripeRail::new(stripe).unwrap())
        .build()
        .unwrap()
}

fn spt_credential(challenge: &wire::Challenge, spt: &str) -> String {
    Credential {
        challenge: challenge.clone(),
        payload: json!({"spt": spt}).as_object().unwrap().clone(),
        source: None,
    }
    .to_header()
}

#[tokio::test]
async fn live_test_mode_charge() {
    let Some(key) = live_key() else { return };
    let gate = gate(&key);
    let route = route(&gate, "/live", PaymentSpec::new().amount("0.50"));
    let c = challenge(&gate, &route, "/live").await;
    let spt = mint_spt(&key, "50").await;
    let grant = granted(
        gate.admit(&route, with_auth("/live", &spt_credential(&c, &spt)))
            .await,
    );
    let id = grant.receipt().reference.clone();
    assert!(id.starts_with("pi_"), "{id}");
    assert_eq!(intent_status(&key, &id).await, "succeeded");
}

#[tokio::test]
async fn live_test_mode_capture_after() {
    let Some(key) = live_key() else { return };
    let gate = gate(&key);
    let route = route(
        &gate,
        "/live-after",
        PaymentSpec::new().amount("0.50").capture(Capture::After),
    );
    for (status, expected) in [(200, "succeeded"), (500, "canceled")] {
        let c = challenge(&gate, &route, "/live-after").await;
        let spt = mint_spt(&key, "50").await;
        let mut grant = granted(
            gate.admit(&route, with_auth("/live-after", &spt_credential(&c, &spt)))
                .await,
        );
        let id = grant.receipt().reference.clone();
        assert_eq!(intent_status(&key, &id).await, "requires_capture");
        grant.complete(status).await.unwrap();
        assert_eq!(intent_status(&key, &id).await, expected, "after a {status}");
    }
}
