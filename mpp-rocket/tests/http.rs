//! The Rocket adapter through Rocket's local client, with the full fairing
//! chain: every request goes through routing, guards, the handler and the
//! responders exactly as over a socket.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../../mpp-runtime/tests/support/rail.rs"]
mod rail;

use std::sync::Arc;

use mpp_rocket::runtime::wire::{
    Challenge, Credential as WireCredential, ProblemType, Receipt as WireReceipt,
};
use mpp_rocket::{Check, Credential, Mpp, Receipt, Rejection, SessionInfo, paid};
use rail::{Shared, TestRail};
use rocket::figment::Figment;
use rocket::http::{Header, Status};
use rocket::local::asynchronous::{Client, LocalResponse};
use rocket::request::{FromRequest, Outcome};
use rocket::{Build, Request, Rocket, get, routes};
use serde_json::{Value, json};

const SECRET: &str = "rocket-test-secret-of-at-least-32-bytes";

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
#[get("/posts/<id>")]
async fn post(id: u32, credential: Credential) -> String {
    format!("post {id} for challenge {}", credential.challenge.id)
}

/// An app-level guard that fails without an `X-Api-Key` header.
struct ApiKey;

#[rocket::async_trait]
impl<'r> FromRequest<'r> for ApiKey {
    type Error = ();
    async fn from_request(req: &'r Request<'_>) -> Outcome<Self, ()> {
        match req.headers().get_one("X-Api-Key") {
            Some(_) => Outcome::Success(ApiKey),
            None => Outcome::Error((Status::Unauthorized, ())),
        }
    }
}

#[paid(amount = "1.00", scope = "keyed")]
#[get("/keyed")]
async fn keyed(_key: ApiKey) -> &'static str {
    "keyed"
}

#[get("/health")]
fn health() -> &'static str {
    "ok"
}

fn figment(extra: &[(&str, Value)]) -> Figment {
    let mut figment = rocket::Config::figment()
        .merge(("log_level", "off"))
        .merge(("mpp.secret_key", SECRET))
        .merge(("mpp.realm", "rocket.test"));
    for (key, value) in extra {
        figment = figment.merge((*key, value.clone()));
    }
    figment
}

fn app(rail: &Arc<TestRail>, figment: Figment) -> Rocket<Build> {
    rocket::custom(figment)
        .attach(Mpp::fairing(Mpp::builder().rail(Shared(rail.clone()))))
        .mount("/", routes![one, two, report, post, keyed, health])
}

async fn client(rail: &Arc<TestRail>) -> Client {
    Client::tracked(app(rail, figment(&[]))).await.unwrap()
}

fn problem_type(body: &str) -> ProblemType {
    let body: Value = serde_json::from_str(body).unwrap();
    ProblemType::from_uri(body["type"].as_str().unwrap()).unwrap()
}

/// Checks a payment denial's shape and returns its problem type and its
/// first challenge.
async fn denial(response: LocalResponse<'_>) -> (Status, ProblemType, Challenge) {
    let status = response.status();
    assert_eq!(
        response.headers().get_one("Cache-Control"),
        Some("no-store")
    );
    assert_eq!(
        response.headers().get_one("Content-Type"),
        Some("application/problem+json")
    );
    assert!(response.headers().get_one("Payment-Receipt").is_none());
    let challenge =
        Challenge::parse(response.headers().get_one("WWW-Authenticate").unwrap()).unwrap();
    let body = response.into_string().await.unwrap();
    let parsed: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(parsed["challengeId"], challenge.id.as_str());
    (status, problem_type(&body), challenge)
}

fn pay(challenge: &Challenge, proof: &str) -> Header<'static> {
    let credential = WireCredential {
        challenge: challenge.clone(),
        payload: json!({"proof": proof}).as_object().unwrap().clone(),
        source: None,
    };
    Header::new("Authorization", credential.to_header())
}

async fn challenge_for(client: &Client, path: &str) -> Challenge {
    let (status, kind, challenge) = denial(client.get(path.to_owned()).dispatch().await).await;
    assert_eq!(
        (status, kind),
        (Status::PaymentRequired, ProblemType::PaymentRequired)
    );
    challenge
}

#[rocket::async_test]
async fn unpaid_paid_and_replayed() {
    let rail = TestRail::new("test");
    let client = client(&rail).await;
    let challenge = challenge_for(&client, "/one").await;
    assert_eq!(challenge.realm, "rocket.test");
    assert_eq!(challenge.request.str_field("amount"), Some("100"));

    let response = client
        .get("/one")
        .header(pay(&challenge, "ok"))
        .dispatch()
        .await;
    assert_eq!(response.status(), Status::Ok);
    let receipt =
        WireReceipt::parse(response.headers().get_one("Payment-Receipt").unwrap()).unwrap();
    assert_eq!(response.headers().get_one("Cache-Control"), Some("private"));
    assert_eq!(
        response.into_string().await.unwrap(),
        format!("one paid by {}", receipt.reference)
    );
    assert_eq!(receipt.reference, "test_1");

    let replay = client
        .get("/one")
        .header(pay(&challenge, "ok"))
        .dispatch()
        .await;
    let (status, kind, _) = denial(replay).await;
    assert_eq!(
        (status, kind),
        (Status::PaymentRequired, ProblemType::InvalidChallenge)
    );
    assert_eq!(rail.settled(), 1);

    // Free routes are untouched.
    let health = client.get("/health").dispatch().await;
    assert_eq!(health.status(), Status::Ok);
    assert!(health.headers().get_one("Payment-Receipt").is_none());
}

#[rocket::async_test]
async fn a_credential_for_one_route_is_refused_on_another() {
    let rail = TestRail::new("test");
    let client = client(&rail).await;
    let for_one = challenge_for(&client, "/one").await;
    let response = client
        .get("/two")
        .header(pay(&for_one, "ok"))
        .dispatch()
        .await;
    let (_, kind, _) = denial(response).await;
    assert_eq!(kind, ProblemType::InvalidChallenge);
    assert_eq!(rail.attempts(), 0);
}

#[rocket::async_test]
async fn metered_route_serves_ten_accesses_then_asks_again() {
    let rail = TestRail::new("test");
    let client = client(&rail).await;
    let challenge = challenge_for(&client, "/report").await;
    assert_eq!(challenge.description.as_deref(), Some("Daily report"));
    let first = client
        .get("/report")
        .header(pay(&challenge, "ok"))
        .dispatch()
        .await;
    assert_eq!(first.status(), Status::Ok);
    let session = SessionInfo::parse(first.headers().get_one("Payment-Session").unwrap()).unwrap();
    assert_eq!(first.into_string().await.unwrap(), "test_1 9");
    for remaining in (0..9).rev() {
        let response = client
            .get("/report")
            .header(Header::new(
                "Authorization",
                format!("Payment session=\"{}\"", session.id),
            ))
            .dispatch()
            .await;
        assert_eq!(response.status(), Status::Ok);
        assert!(response.headers().get_one("Payment-Receipt").is_some());
        assert_eq!(
            response.into_string().await.unwrap(),
            format!("test_1 {remaining}")
        );
    }
    let exhausted = client
        .get("/report")
        .header(Header::new(
            "Authorization",
            format!("Payment session=\"{}\"", session.id),
        ))
        .dispatch()
        .await;
    let (status, kind, _) = denial(exhausted).await;
    assert_eq!(
        (status, kind),
        (Status::PaymentRequired, ProblemType::SessionExhausted)
    );
    assert_eq!(rail.settled(), 1);
}

#[rocket::async_test]
async fn a_precondition_answers_before_any_challenge_or_charge() {
    let rail = TestRail::new("test");
    let client = client(&rail).await;
    let missing = client.get("/posts/9").dispatch().await;
    assert_eq!(missing.status(), Status::NotFound);
    assert!(missing.headers().get_one("WWW-Authenticate").is_none());
    assert!(
        missing
            .into_string()
            .await
            .unwrap()
            .contains("No such post.")
    );

    let challenge = challenge_for(&client, "/posts/1").await;
    // A valid credential for a post that does not exist is not settled.
    let other = client
        .get("/posts/7")
        .header(pay(&challenge, "ok"))
        .dispatch()
        .await;
    assert_eq!(other.status(), Status::NotFound);
    assert_eq!(rail.attempts(), 0);

    let paid = client
        .get("/posts/1")
        .header(pay(&challenge, "ok"))
        .dispatch()
        .await;
    assert_eq!(paid.status(), Status::Ok);
    assert_eq!(
        paid.into_string().await.unwrap(),
        format!("post 1 for challenge {}", challenge.id)
    );
}

#[rocket::async_test]
async fn a_request_refused_by_another_guard_is_never_charged() {
    let rail = TestRail::new("test");
    let client = client(&rail).await;
    // Authentication comes before payment: without the key, no challenge.
    let anonymous = client.get("/keyed").dispatch().await;
    assert_eq!(anonymous.status(), Status::Unauthorized);
    assert!(anonymous.headers().get_one("WWW-Authenticate").is_none());
    let keyed = client
        .get("/keyed")
        .header(Header::new("X-Api-Key", "k"))
        .dispatch()
        .await;
    let (_, kind, challenge) = denial(keyed).await;
    assert_eq!(kind, ProblemType::PaymentRequired);
    let no_key = client
        .get("/keyed")
        .header(pay(&challenge, "ok"))
        .dispatch()
        .await;
    assert_eq!(no_key.status(), Status::Unauthorized);
    assert_eq!(rail.attempts(), 0);
    let with_key = client
        .get("/keyed")
        .header(pay(&challenge, "ok"))
        .header(Header::new("X-Api-Key", "k"))
        .dispatch()
        .await;
    assert_eq!(with_key.status(), Status::Ok);
    assert_eq!(rail.settled(), 1);
}

/// The reason a launch failed, if it did (inspecting a `rocket::Error`
/// keeps it from panicking on drop).
async fn launch_error(rocket: Rocket<Build>) -> Option<String> {
    match Client::tracked(rocket).await {
        Ok(_) => None,
        Err(e) => Some(format!("{:?}", e.kind())),
    }
}

#[rocket::async_test]
async fn misconfiguration_stops_the_launch() {
    let rail = TestRail::new("test");
    // A secret that is too short.
    let short = figment(&[("mpp.secret_key", json!("short"))]);
    let e = launch_error(app(&rail, short)).await.unwrap();
    assert!(e.contains("FailedFairings"), "{e}");
    // A global precondition nobody registered.
    let unknown = figment(&[("mpp.global_preconditions", json!(["post_exist"]))]);
    let e = launch_error(app(&rail, unknown)).await.unwrap();
    assert!(e.contains("FailedFairings"), "{e}");
    // A paid route mounted without the fairing (the sentinel aborts).
    let bare = rocket::custom(figment(&[])).mount("/", routes![one]);
    let e = launch_error(bare).await.unwrap();
    assert!(e.contains("SentinelAborts"), "{e}");
    // A route the configuration cannot price: no amount and no default.
    #[paid(scope = "unpriced")]
    #[get("/unpriced")]
    async fn unpriced() -> &'static str {
        "free?"
    }
    let unpriced_app = rocket::custom(figment(&[]))
        .attach(Mpp::fairing(Mpp::builder().rail(Shared(rail.clone()))))
        .mount("/", routes![unpriced]);
    let e = launch_error(unpriced_app).await.unwrap();
    assert!(e.contains("SentinelAborts"), "{e}");
    // The same route launches once a default amount is configured.
    let priced = rocket::custom(figment(&[("mpp.default_amount", json!("0.50"))]))
        .attach(Mpp::fairing(Mpp::builder().rail(Shared(rail.clone()))))
        .mount("/", routes![unpriced]);
    assert_eq!(launch_error(priced).await, None);
}
