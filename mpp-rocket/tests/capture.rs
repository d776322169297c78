//! Charge only on success (`capture = "after"`) and webhooks on Rocket,
//! through the local client with the full fairing chain (catchers included).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../../mpp-runtime/tests/support/rail.rs"]
mod rail;

use std::sync::Arc;
use std::time::{Duration, Instant};

use mpp_rocket::runtime::wire::{Challenge, Credential as WireCredential};
use mpp_rocket::{Mpp, Receipt, paid};
use rail::{Shared, TestRail};
use rocket::http::{Header, Status};
use rocket::local::asynchronous::Client;
use rocket::{get, routes};
use serde_json::json;

const SECRET: &str = "rocket-test-secret-of-at-least-32-bytes";

#[paid(amount = "3.00", scope = "after.ok", capture = "after")]
#[get("/ok")]
async fn ok(receipt: Receipt) -> String {
    format!("delivered; authorized as {}", receipt.reference)
}

#[paid(amount = "3.00", scope = "after.error", capture = "after")]
#[get("/error")]
async fn error() -> Result<&'static str, Status> {
    Err(Status::InternalServerError)
}

#[paid(amount = "3.00", scope = "after.teapot", capture = "after")]
#[get("/teapot")]
async fn teapot() -> (Status, &'static str) {
    (Status::ImATeapot, "no coffee")
}

#[paid(amount = "3.00", scope = "after.panic", capture = "after")]
#[get("/panic")]
async fn panics() -> &'static str {
    panic!("the handler broke")
}

async fn client(rail: &Arc<TestRail>) -> Client {
    let figment = rocket::Config::figment()
        .merge(("log_level", "off"))
        .merge(("mpp.secret_key", SECRET))
        .merge(("mpp.realm", "rocket.test"));
    let rocket = rocket::custom(figment)
        .attach(Mpp::fairing(Mpp::builder().rail(Shared(rail.clone()))))
        .mount("/", routes![ok, error, teapot, panics]);
    Client::tracked(rocket).await.unwrap()
}

async fn pay(client: &Client, path: &str, proof: &str) -> (Status, Option<String>, String) {
    let unpaid = client.get(path).dispatch().await;
    assert_eq!(unpaid.status(), Status::PaymentRequired);
    let challenge =
        Challenge::parse(unpaid.headers().get_one("WWW-Authenticate").unwrap()).unwrap();
    let credential = WireCredential {
        challenge,
        payload: json!({"proof": proof}).as_object().unwrap().clone(),
        source: None,
    };
    let paid = client
        .get(path)
        .header(Header::new("Authorization", credential.to_header()))
        .dispatch()
        .await;
    let status = paid.status();
    let receipt = paid.headers().get_one("Payment-Receipt").map(str::to_owned);
    (
        status,
        receipt,
        paid.into_string().await.unwrap_or_default(),
    )
}

async fn eventually(rail: &TestRail, state: &str, count: usize) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while rail.count(state) != count {
        assert!(
            Instant::now() < deadline,
            "expected {count} {state} authorizations"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[rocket::async_test]
async fn a_2xx_captures_and_carries_the_receipt() {
    let rail = TestRail::new("test");
    let client = client(&rail).await;
    let (status, receipt, body) = pay(&client, "/ok", "ok").await;
    assert_eq!(status, Status::Ok);
    assert!(body.starts_with("delivered"), "{body}");
    assert!(receipt.is_some(), "a captured payment carries its receipt");
    assert_eq!(rail.count("captured"), 1);
    assert_eq!(rail.count("authorized"), 0);
}

#[rocket::async_test]
async fn an_error_status_releases_and_sends_no_receipt() {
    let rail = TestRail::new("test");
    let client = client(&rail).await;
    for path in ["/error", "/teapot"] {
        let (status, receipt, _) = pay(&client, path, "ok").await;
        assert!(!status.class().is_success(), "{path}: {status}");
        assert!(receipt.is_none(), "{path}");
    }
    assert_eq!(rail.count("released"), 2);
    assert_eq!(rail.count("captured"), 0);
}

#[rocket::async_test]
async fn a_panicking_handler_releases() {
    let rail = TestRail::new("test");
    let client = client(&rail).await;
    let (status, receipt, _) = pay(&client, "/panic", "ok").await;
    assert_eq!(status, Status::InternalServerError);
    assert!(receipt.is_none());
    eventually(&rail, "released", 1).await;
    assert_eq!(rail.count("captured"), 0);
}

#[rocket::async_test]
async fn a_failed_capture_answers_with_a_fresh_challenge_not_the_content() {
    let rail = TestRail::new("test");
    let client = client(&rail).await;
    let (status, receipt, body) = pay(&client, "/ok", "capture_fails").await;
    assert_eq!(status, Status::PaymentRequired);
    assert!(receipt.is_none());
    assert!(!body.contains("delivered"), "{body}");
    assert!(body.contains("could not be captured"), "{body}");
    eventually(&rail, "released", 1).await;
}

#[cfg(feature = "stripe")]
mod webhooks {
    use mpp_rocket::runtime::rails::stripe::{StripeConfig, StripeRail, StripeWebhooks};
    use mpp_rocket::runtime::wire::Timestamp;
    use mpp_rocket::{Gate, Mpp};
    use rocket::http::{ContentType, Header, Status};
    use rocket::local::asynchronous::Client;
    use serde_json::{Value, json};

    const WHSEC: &str = "whsec_rocket_tests";

    #[rocket::async_test]
    async fn verified_deliveries_are_processed_once_and_forgeries_refused() {
        let rail = StripeRail::new(
            StripeConfig::default()
                .secret_key("sk_test_unused")
                .webhook_secret(WHSEC),
        )
        .unwrap();
        let figment = rocket::Config::figment()
            .merge(("log_level", "off"))
            .merge(("mpp.secret_key", super::SECRET))
            .merge(("mpp.realm", "rocket.test"));
        let rocket = rocket::custom(figment)
            .attach(Mpp::fairing(Mpp::builder().rail(rail)))
            .mount("/webhooks", mpp_rocket::webhooks());
        let client = Client::tracked(rocket).await.unwrap();
        assert!(client.rocket().state::<Gate>().is_some());

        let event = json!({"id": "evt_r1", "type": "payment_intent.succeeded", "data": {"object": {"id": "pi_r1"}}}).to_string();
        let now = Timestamp::now().unix();
        let deliver = |signature: String, body: String| {
            let client = &client;
            async move {
                let response = client
                    .post("/webhooks/stripe")
                    .header(ContentType::JSON)
                    .header(Header::new("Stripe-Signature", signature))
                    .body(body)
                    .dispatch()
                    .await;
                let status = response.status();
                let body: Value =
                    serde_json::from_str(&response.into_string().await.unwrap()).unwrap();
                (status, body)
            }
        };
        let signature = StripeWebhooks::sign(WHSEC, now, event.as_bytes());
        let (status, body) = deliver(signature.clone(), event.clone()).await;
        assert_eq!((status, body), (Status::Ok, json!({"received": true})));
        let (status, body) = deliver(signature.clone(), event.clone()).await;
        assert_eq!(status, Status::Ok);
        assert_eq!(body["duplicate"], true);

        let tampered = event.replace("pi_r1", "pi_r2");
        assert_eq!(deliver(signature, tampered).await.0, Status::BadRequest);
        let wrong = StripeWebhooks::sign("whsec_wrong", now, event.as_bytes());
        assert_eq!(deliver(wrong, event.clone()).await.0, Status::BadRequest);
        let stale = StripeWebhooks::sign(WHSEC, now - 600, event.as_bytes());
        assert_eq!(deliver(stale, event.clone()).await.0, Status::BadRequest);

        let unknown = client.post("/webhooks/acme").body("{}").dispatch().await;
        assert_eq!(unknown.status(), Status::NotFound);
    }

    #[rocket::async_test]
    async fn webhooks_without_the_fairing_abort_launch() {
        let rocket = rocket::custom(rocket::Config::figment().merge(("log_level", "off")))
            .mount("/webhooks", mpp_rocket::webhooks());
        // Reading the error's kind marks it handled (it panics on drop otherwise).
        let kind = format!("{:?}", rocket.ignite().await.unwrap_err().kind());
        assert!(kind.contains("SentinelAborts"), "{kind}");
    }
}
