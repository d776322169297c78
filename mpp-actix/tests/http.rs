//! The Actix adapter over real HTTP: an actix-test server on a loopback port
//! and the awc client.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../../mpp-runtime/tests/support/rail.rs"]
mod rail;

use std::sync::Arc;

use actix_web::http::StatusCode;
use actix_web::{App, FromRequest, HttpRequest, get, web};
use mpp_actix::runtime::wire::{
    Challenge, Credential as WireCredential, ProblemType, Receipt as WireReceipt,
};
use mpp_actix::{
    Check, ConfigBuilder, Credential, Gate, Mpp, Receipt, Rejection, SessionInfo, Settings, paid,
};
use rail::{Shared, TestRail};
use serde_json::{Value, json};

const SECRET: &str = "actix-test-secret-of-at-least-32-bytes!";

#[paid(amount = "1.00", scope = "one")]
#[get("/one")]
async fn one(receipt: Receipt) -> String {
    format!("one paid by {}", receipt.reference)
}

#[paid(amount = "1.00", scope = "two")]
#[get("/two")]
async fn two() -> &'static str {
    "two"
}

#[paid(
    amount = "5.00",
    grants = 10,
    scope = "report.basic",
    description = "Daily report"
)]
#[get("/report")]
async fn report(receipt: Receipt, session: Option<SessionInfo>) -> String {
    format!(
        "{} {}",
        receipt.reference,
        session.map_or(0, |s| s.remaining)
    )
}

async fn post_exists(check: Check) -> Result<(), Rejection> {
    match check.param("id") {
        Some("1" | "2") => Ok(()),
        _ => Err(Rejection::not_found("No such post.")),
    }
}

#[paid(amount = "2.00", preconditions = [post_exists])]
#[get("/posts/{id}")]
async fn post(id: web::Path<u32>, credential: Credential) -> String {
    format!(
        "post {} for challenge {}",
        id.into_inner(),
        credential.challenge.id
    )
}

/// An app-level extractor that fails without an `X-Api-Key` header.
struct ApiKey;

impl FromRequest for ApiKey {
    type Error = actix_web::Error;
    type Future = std::future::Ready<Result<Self, Self::Error>>;
    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        std::future::ready(match req.headers().get("x-api-key") {
            Some(_) => Ok(ApiKey),
            None => Err(actix_web::error::ErrorUnauthorized("missing key")),
        })
    }
}

#[paid(amount = "1.00", scope = "keyed")]
#[get("/keyed")]
async fn keyed(_key: ApiKey) -> &'static str {
    "keyed"
}

/// A handler registered by hand, without a route attribute.
#[paid(amount = "3.00")]
async fn manual(session: Option<SessionInfo>) -> String {
    format!("manual {}", session.is_none())
}

#[get("/health")]
async fn health() -> &'static str {
    "ok"
}

fn gate(rail: &Arc<TestRail>) -> Gate {
    Mpp::build_with(
        Mpp::configure(ConfigBuilder::default().secret(SECRET).realm("actix.test"))
            .rail(Shared(rail.clone())),
        Settings::default(),
    )
    .unwrap()
}

fn server(rail: &Arc<TestRail>) -> actix_test::TestServer {
    let gate = gate(rail);
    actix_test::start(move || {
        App::new()
            .app_data(gate.clone())
            .service(one)
            .service(two)
            .service(report)
            .service(post)
            .service(keyed)
            .service(health)
            .route("/manual", web::get().to(manual))
    })
}

struct Reply {
    status: StatusCode,
    headers: actix_web::http::header::HeaderMap,
    body: String,
}

async fn call(server: &actix_test::TestServer, path: &str, headers: &[(&str, String)]) -> Reply {
    let mut request = server.get(path);
    for (name, value) in headers {
        request = request.insert_header((*name, value.as_str()));
    }
    let mut response = request.send().await.unwrap();
    let body = response.body().await.unwrap();
    Reply {
        status: response.status(),
        headers: response.headers().clone(),
        body: String::from_utf8(body.to_vec()).unwrap(),
    }
}

fn header<'a>(reply: &'a Reply, name: &str) -> Option<&'a str> {
    reply.headers.get(name).map(|v| v.to_str().unwrap())
}

/// Checks a payment denial's shape; returns its problem type and first challenge.
fn denial(reply: &Reply) -> (ProblemType, Challenge) {
    assert_eq!(header(reply, "cache-control"), Some("no-store"));
    assert_eq!(
        header(reply, "content-type"),
        Some("application/problem+json")
    );
    assert!(header(reply, "payment-receipt").is_none());
    let challenge = Challenge::parse(header(reply, "www-authenticate").unwrap()).unwrap();
    let body: Value = serde_json::from_str(&reply.body).unwrap();
    assert_eq!(body["challengeId"], challenge.id.as_str());
    let kind = ProblemType::from_uri(body["type"].as_str().unwrap()).unwrap();
    (kind, challenge)
}

fn pay(challenge: &Challenge, proof: &str) -> (&'static str, String) {
    let credential = WireCredential {
        challenge: challenge.clone(),
        payload: json!({"proof": proof}).as_object().unwrap().clone(),
        source: None,
    };
    ("Authorization", credential.to_header())
}

async fn challenge_for(server: &actix_test::TestServer, path: &str) -> Challenge {
    let reply = call(server, path, &[]).await;
    assert_eq!(reply.status, StatusCode::PAYMENT_REQUIRED);
    let (kind, challenge) = denial(&reply);
    assert_eq!(kind, ProblemType::PaymentRequired);
    challenge
}

#[actix_rt::test]
async fn unpaid_paid_and_replayed() {
    let rail = TestRail::new("test");
    let server = server(&rail);
    let challenge = challenge_for(&server, "/one").await;
    assert_eq!(challenge.realm, "actix.test");
    assert_eq!(challenge.request.str_field("amount"), Some("100"));

    let paid = call(&server, "/one", &[pay(&challenge, "ok")]).await;
    assert_eq!(paid.status, StatusCode::OK);
    let receipt = WireReceipt::parse(header(&paid, "payment-receipt").unwrap()).unwrap();
    assert_eq!(header(&paid, "cache-control"), Some("private"));
    assert_eq!(paid.body, format!("one paid by {}", receipt.reference));

    let replay = call(&server, "/one", &[pay(&challenge, "ok")]).await;
    assert_eq!(replay.status, StatusCode::PAYMENT_REQUIRED);
    assert_eq!(denial(&replay).0, ProblemType::InvalidChallenge);
    assert_eq!(rail.settled(), 1);

    let free = call(&server, "/health", &[]).await;
    assert_eq!(free.status, StatusCode::OK);
    assert!(header(&free, "payment-receipt").is_none());
}

#[actix_rt::test]
async fn a_credential_for_one_route_is_refused_on_another() {
    let rail = TestRail::new("test");
    let server = server(&rail);
    let for_one = challenge_for(&server, "/one").await;
    let reply = call(&server, "/two", &[pay(&for_one, "ok")]).await;
    assert_eq!(denial(&reply).0, ProblemType::InvalidChallenge);
    assert_eq!(rail.attempts(), 0);
}

#[actix_rt::test]
async fn metered_route_serves_ten_accesses_then_asks_again() {
    let rail = TestRail::new("test");
    let server = server(&rail);
    let challenge = challenge_for(&server, "/report").await;
    assert_eq!(challenge.description.as_deref(), Some("Daily report"));
    let first = call(&server, "/report", &[pay(&challenge, "ok")]).await;
    assert_eq!(first.status, StatusCode::OK);
    let session = SessionInfo::parse(header(&first, "payment-session").unwrap()).unwrap();
    assert_eq!(first.body, "test_1 9");
    let auth = (
        "Authorization",
        format!("Payment session=\"{}\"", session.id),
    );
    for remaining in (0..9).rev() {
        let reply = call(&server, "/report", std::slice::from_ref(&auth)).await;
        assert_eq!(reply.status, StatusCode::OK);
        assert_eq!(reply.body, format!("test_1 {remaining}"));
    }
    let exhausted = call(&server, "/report", &[auth]).await;
    assert_eq!(exhausted.status, StatusCode::PAYMENT_REQUIRED);
    assert_eq!(denial(&exhausted).0, ProblemType::SessionExhausted);
    assert_eq!(rail.settled(), 1);
}

#[actix_rt::test]
async fn a_precondition_answers_before_any_challenge_or_charge() {
    let rail = TestRail::new("test");
    let server = server(&rail);
    let missing = call(&server, "/posts/9", &[]).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert!(header(&missing, "www-authenticate").is_none());
    assert!(missing.body.contains("No such post."));

    let challenge = challenge_for(&server, "/posts/1").await;
    let other = call(&server, "/posts/7", &[pay(&challenge, "ok")]).await;
    assert_eq!(other.status, StatusCode::NOT_FOUND);
    assert_eq!(rail.attempts(), 0);

    let paid = call(&server, "/posts/1", &[pay(&challenge, "ok")]).await;
    assert_eq!(paid.status, StatusCode::OK);
    assert_eq!(paid.body, format!("post 1 for challenge {}", challenge.id));
}

#[actix_rt::test]
async fn a_request_refused_by_another_extractor_is_never_charged() {
    let rail = TestRail::new("test");
    let server = server(&rail);
    let anonymous = call(&server, "/keyed", &[]).await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
    assert!(header(&anonymous, "www-authenticate").is_none());
    let key = ("X-Api-Key", "k".to_owned());
    let unpaid = call(&server, "/keyed", std::slice::from_ref(&key)).await;
    let (_, challenge) = denial(&unpaid);
    let no_key = call(&server, "/keyed", &[pay(&challenge, "ok")]).await;
    assert_eq!(no_key.status, StatusCode::UNAUTHORIZED);
    assert_eq!(rail.attempts(), 0);
    let paid = call(&server, "/keyed", &[pay(&challenge, "ok"), key]).await;
    assert_eq!(paid.status, StatusCode::OK);
    assert_eq!(rail.settled(), 1);
}

#[actix_rt::test]
async fn a_handler_registered_by_hand_is_gated_too() {
    let rail = TestRail::new("test");
    let server = server(&rail);
    let challenge = challenge_for(&server, "/manual").await;
    let opaque =
        mpp_actix::runtime::wire::request::decode_object(challenge.opaque.as_deref().unwrap())
            .unwrap();
    assert_eq!(opaque["scope"], "manual");
    let paid = call(&server, "/manual", &[pay(&challenge, "ok")]).await;
    assert_eq!(paid.status, StatusCode::OK);
    assert_eq!(paid.body, "manual true");
}

#[actix_rt::test]
async fn without_the_gate_a_paid_route_fails_closed() {
    let server = actix_test::start(|| App::new().service(one));
    let reply = call(&server, "/one", &[]).await;
    assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(reply.body.contains("not configured"), "{}", reply.body);
    assert!(header(&reply, "payment-receipt").is_none());
}
