//! Stripe webhooks on Actix, over real HTTP: deliveries we sign ourselves,
//! and deliveries signed and sent by the Stripe emulator (localstripe's own
//! webhook sender) after a real payment through the gate.

#![cfg(feature = "stripe")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../../mpp-runtime/tests/support/emulator.rs"]
mod emulator_support;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::http::StatusCode;
use actix_web::{App, get};
use emulator_support::emulator;
use mpp_actix::runtime::rails::stripe::{StripeConfig, StripeRail, StripeWebhooks};
use mpp_actix::runtime::wire::{
    Challenge, Credential as WireCredential, Receipt as WireReceipt, Timestamp,
};
use mpp_actix::runtime::{Event, PaymentStatus};
use mpp_actix::{ConfigBuilder, Gate, Mpp, Receipt, Settings, paid};
use serde_json::{Value, json};

const SECRET: &str = "actix-test-secret-of-at-least-32-bytes!";
const KEY: &str = "sk_test_mpp_actix_webhooks";
const WHSEC: &str = "whsec_actix_tests";

#[paid(amount = "1.00", method = "stripe", scope = "webhook.quote")]
#[get("/quote")]
async fn quote(receipt: Receipt) -> String {
    receipt.reference
}

type Seen = Arc<Mutex<Vec<(String, Option<String>, Option<PaymentStatus>)>>>;

fn gate(stripe: StripeConfig, seen: &Seen) -> Gate {
    let sink = seen.clone();
    Mpp::build_with(
        Mpp::configure(ConfigBuilder::default().secret(SECRET).realm("actix.test"))
            .rail(StripeRail::new(stripe).unwrap())
            .on_event(move |event| {
                if let Event::Reconciled {
                    notification,
                    record,
                    ..
                } = event
                {
                    sink.lock().unwrap().push((
                        notification.kind.clone(),
                        notification.reference.clone(),
                        record.map(|r| r.status),
                    ));
                }
            }),
        Settings::default(),
    )
    .unwrap()
}

fn server(gate: Gate) -> actix_test::TestServer {
    actix_test::start(move || {
        App::new()
            .app_data(gate.clone())
            .service(quote)
            .service(mpp_actix::webhooks("/webhooks"))
    })
}

async fn deliver(
    server: &actix_test::TestServer,
    signature: &str,
    body: &str,
) -> (StatusCode, Value) {
    let mut response = server
        .post("/webhooks/stripe")
        .insert_header(("Stripe-Signature", signature))
        .insert_header(("Content-Type", "application/json"))
        .send_body(body.to_owned())
        .await
        .unwrap();
    let bytes = response.body().await.unwrap();
    (
        response.status(),
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

#[actix_rt::test]
async fn signed_deliveries_are_processed_once_and_forgeries_refused() {
    let seen = Seen::default();
    let stripe = StripeConfig::default()
        .secret_key(KEY)
        .webhook_secret(WHSEC);
    let server = server(gate(stripe, &seen));
    let event = json!({"id": "evt_a1", "type": "charge.dispute.created", "data": {"object": {"id": "dp_1", "payment_intent": "pi_a1", "reason": "fraudulent"}}}).to_string();
    let now = Timestamp::now().unix();
    let signature = StripeWebhooks::sign(WHSEC, now, event.as_bytes());

    assert_eq!(
        deliver(&server, &signature, &event).await,
        (StatusCode::OK, json!({"received": true}))
    );
    let (status, body) = deliver(&server, &signature, &event).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["duplicate"], true);

    let forged = [
        (signature.clone(), event.replace("fraudulent", "general")),
        (
            StripeWebhooks::sign("whsec_guess", now, event.as_bytes()),
            event.clone(),
        ),
        (
            StripeWebhooks::sign(WHSEC, now - 301, event.as_bytes()),
            event.clone(),
        ),
        ("t=1".to_owned(), event.clone()),
    ];
    for (signature, body) in forged {
        let (status, problem) = deliver(&server, &signature, &body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{problem}");
    }
    assert_eq!(
        seen.lock().unwrap().len(),
        1,
        "processed once, forgeries not at all"
    );
}

#[actix_rt::test]
async fn without_the_gate_the_endpoint_fails_closed() {
    let server = actix_test::start(|| App::new().service(mpp_actix::webhooks("/webhooks")));
    let event =
        r#"{"id":"evt_x","type":"payment_intent.succeeded","data":{"object":{"id":"pi_x"}}}"#;
    let signature = StripeWebhooks::sign(WHSEC, Timestamp::now().unix(), event.as_bytes());
    let (status, _) = deliver(&server, &signature, event).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
}

async fn form(url: String, fields: &[(&str, String)]) -> (StatusCode, Value) {
    let mut response = awc::Client::new()
        .post(url)
        .bearer_auth(KEY)
        .send_form(&fields)
        .await
        .unwrap();
    let bytes = response.body().await.unwrap();
    (
        response.status(),
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

#[actix_rt::test]
async fn the_emulator_signs_and_delivers_the_event_of_a_real_payment() {
    let Some(base) = emulator() else { return };
    let seen = Seen::default();
    let stripe = StripeConfig::default()
        .secret_key(KEY)
        .api_base(&base)
        .webhook_secret(WHSEC);
    let server = server(gate(stripe, &seen));

    // localstripe signs its deliveries itself (t=…,v1=HMAC-SHA256).
    let endpoint = format!("mpp_actix_{}", std::process::id());
    let (status, body) = form(
        format!("{base}/_config/webhooks/{endpoint}"),
        &[
            ("url", server.url("/webhooks/stripe")),
            ("secret", WHSEC.to_owned()),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // Pay the route with a Shared Payment Token, as a wallet would.
    let unpaid = server.get("/quote").send().await.unwrap();
    assert_eq!(unpaid.status(), StatusCode::PAYMENT_REQUIRED);
    let challenge = Challenge::parse(
        unpaid
            .headers()
            .get("www-authenticate")
            .unwrap()
            .to_str()
            .unwrap(),
    )
    .unwrap();
    let expires = Timestamp::now().unix() + 600;
    let (status, spt) = form(
        format!("{base}/v1/test_helpers/shared_payment/granted_tokens"),
        &[
            ("payment_method", "pm_card_visa".to_owned()),
            ("usage_limits[currency]", "usd".to_owned()),
            ("usage_limits[max_amount]", "100".to_owned()),
            ("usage_limits[expires_at]", expires.to_string()),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{spt}");
    let credential = WireCredential {
        challenge,
        payload: json!({"spt": spt["id"]}).as_object().unwrap().clone(),
        source: None,
    };
    let paid = server
        .get("/quote")
        .insert_header(("Authorization", credential.to_header()))
        .send()
        .await
        .unwrap();
    assert_eq!(paid.status(), StatusCode::OK);
    let receipt = WireReceipt::parse(
        paid.headers()
            .get("payment-receipt")
            .unwrap()
            .to_str()
            .unwrap(),
    )
    .unwrap();

    // The emulator's payment_intent.succeeded reaches the endpoint, passes
    // verification and is reconciled with the payment's record.
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let found = seen
            .lock()
            .unwrap()
            .iter()
            .any(|(kind, reference, status)| {
                kind == "payment_intent.succeeded"
                    && reference.as_deref() == Some(receipt.reference.as_str())
                    && *status == Some(PaymentStatus::Succeeded)
            });
        if found {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no verified delivery for {}: {:?}",
            receipt.reference,
            seen.lock().unwrap()
        );
        actix_rt::time::sleep(Duration::from_millis(100)).await;
    }
}
