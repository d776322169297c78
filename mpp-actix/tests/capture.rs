//! Charge only on success (`capture = "after"`) and webhooks on Actix, over
//! real HTTP (an actix-test server on a loopback port).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../../mpp-runtime/tests/support/rail.rs"]
mod rail;

use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::http::StatusCode;
use actix_web::{App, HttpResponse, get};
use mpp_actix::runtime::wire::{Challenge, Credential as WireCredential};
use mpp_actix::{ConfigBuilder, Gate, Mpp, Receipt, Settings, paid};
use rail::{Shared, TestRail};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const SECRET: &str = "actix-test-secret-of-at-least-32-bytes!";

#[paid(amount = "3.00", scope = "after.ok", capture = "after")]
#[get("/ok")]
async fn ok(receipt: Receipt) -> String {
    format!("delivered; authorized as {}", receipt.reference)
}

#[paid(amount = "3.00", scope = "after.error", capture = "after")]
#[get("/error")]
async fn error() -> HttpResponse {
    HttpResponse::InternalServerError().body("the handler failed")
}

#[paid(amount = "3.00", scope = "after.failed", capture = "after")]
#[get("/failed")]
async fn failed() -> Result<&'static str, actix_web::Error> {
    Err(actix_web::error::ErrorServiceUnavailable("upstream down"))
}

#[paid(amount = "3.00", scope = "after.panic", capture = "after")]
#[get("/panic")]
async fn panics() -> &'static str {
    panic!("the handler broke")
}

#[paid(amount = "3.00", scope = "after.slow", capture = "after")]
#[get("/slow")]
async fn slow() -> &'static str {
    actix_rt::time::sleep(Duration::from_secs(3)).await;
    "too late"
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
            .service(ok)
            .service(error)
            .service(failed)
            .service(panics)
            .service(slow)
    })
}

async fn challenge(server: &actix_test::TestServer, path: &str) -> Challenge {
    let response = server.get(path).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::PAYMENT_REQUIRED);
    let header = response.headers().get("www-authenticate").unwrap();
    Challenge::parse(header.to_str().unwrap()).unwrap()
}

fn credential(challenge: &Challenge, proof: &str) -> String {
    WireCredential {
        challenge: challenge.clone(),
        payload: json!({"proof": proof}).as_object().unwrap().clone(),
        source: None,
    }
    .to_header()
}

/// Pays `path` with `proof`: status, receipt header, body.
async fn pay(
    server: &actix_test::TestServer,
    path: &str,
    proof: &str,
) -> (StatusCode, Option<String>, String) {
    let challenge = challenge(server, path).await;
    let mut response = server
        .get(path)
        .insert_header(("Authorization", credential(&challenge, proof)))
        .send()
        .await
        .unwrap();
    let body = response.body().await.unwrap_or_default();
    (
        response.status(),
        response
            .headers()
            .get("payment-receipt")
            .map(|v| v.to_str().unwrap().to_owned()),
        String::from_utf8_lossy(&body).into_owned(),
    )
}

async fn eventually(rail: &TestRail, state: &str, count: usize) {
    let deadline = Instant::now() + Duration::from_secs(8);
    while rail.count(state) != count {
        assert!(
            Instant::now() < deadline,
            "expected {count} {state} authorizations, have {}",
            rail.count(state)
        );
        actix_rt::time::sleep(Duration::from_millis(10)).await;
    }
}

#[actix_rt::test]
async fn a_2xx_captures_and_carries_the_receipt() {
    let rail = TestRail::new("test");
    let server = server(&rail);
    let (status, receipt, body) = pay(&server, "/ok", "ok").await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.starts_with("delivered"), "{body}");
    assert!(receipt.is_some());
    assert_eq!(rail.count("captured"), 1);
}

#[actix_rt::test]
async fn error_statuses_release_and_send_no_receipt() {
    let rail = TestRail::new("test");
    let server = server(&rail);
    for (path, expected) in [
        ("/error", StatusCode::INTERNAL_SERVER_ERROR),
        ("/failed", StatusCode::SERVICE_UNAVAILABLE),
    ] {
        let (status, receipt, _) = pay(&server, path, "ok").await;
        assert_eq!(status, expected, "{path}");
        assert!(receipt.is_none(), "{path}");
    }
    assert_eq!(rail.count("released"), 2);
    assert_eq!(rail.count("captured"), 0);
}

#[actix_rt::test]
async fn a_failed_capture_answers_with_a_fresh_challenge_not_the_content() {
    let rail = TestRail::new("test");
    let server = server(&rail);
    let (status, receipt, body) = pay(&server, "/ok", "capture_fails").await;
    assert_eq!(status, StatusCode::PAYMENT_REQUIRED);
    assert!(receipt.is_none());
    assert!(!body.contains("delivered"), "{body}");
    eventually(&rail, "released", 1).await;
}

#[actix_rt::test]
async fn a_panicking_handler_releases() {
    let rail = TestRail::new("test");
    let server = server(&rail);
    let challenge = challenge(&server, "/panic").await;
    // The worker running the handler dies with it; the client sees the
    // connection close.
    let result = server
        .get("/panic")
        .insert_header(("Authorization", credential(&challenge, "ok")))
        .send()
        .await;
    assert!(
        result.as_ref().map_or(true, |r| !r.status().is_success()),
        "{:?}",
        result.map(|r| r.status())
    );
    eventually(&rail, "released", 1).await;
    assert_eq!(rail.count("captured"), 0);
}

/// A real server configured as README advises for `capture = "after"`:
/// a client that closes its connection has gone away
/// (`h1_allow_half_closed(false)`).
fn strict_server(rail: &Arc<TestRail>) -> std::net::SocketAddr {
    let gate = gate(rail);
    let server =
        actix_web::HttpServer::new(move || App::new().app_data(gate.clone()).service(slow))
            .h1_allow_half_closed(false)
            .workers(1)
            .bind(("127.0.0.1", 0))
            .unwrap();
    let addr = server.addrs()[0];
    actix_rt::spawn(server.run());
    addr
}

async fn raw_request(addr: std::net::SocketAddr, authorization: &str) -> tokio::net::TcpStream {
    let mut socket = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!(
        "GET /slow HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nAuthorization: {authorization}\r\n\r\n"
    );
    socket.write_all(request.as_bytes()).await.unwrap();
    socket
}

async fn raw_challenge(addr: std::net::SocketAddr) -> Challenge {
    let mut socket = raw_request(addr, "Bearer none").await;
    let mut answer = String::new();
    socket.read_to_string(&mut answer).await.unwrap();
    let header = answer
        .lines()
        .find_map(|line| line.strip_prefix("www-authenticate: "))
        .unwrap_or_else(|| panic!("no challenge in {answer}"));
    Challenge::parse(header).unwrap()
}

#[actix_rt::test]
async fn a_client_that_goes_away_is_not_charged() {
    let rail = TestRail::new("test");
    let addr = strict_server(&rail);
    let challenge = raw_challenge(addr).await;
    let socket = raw_request(addr, &credential(&challenge, "ok")).await;
    eventually(&rail, "authorized", 1).await;
    // The agent gives up while the handler is still working.
    drop(socket);
    eventually(&rail, "released", 1).await;
    // Long after the handler would have answered, nothing was captured.
    actix_rt::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(rail.count("captured"), 0);
    assert_eq!(rail.count("released"), 1);

    // A patient client on the same route is charged as usual.
    let challenge = raw_challenge(addr).await;
    let mut patient = raw_request(addr, &credential(&challenge, "ok")).await;
    let mut answer = String::new();
    patient.read_to_string(&mut answer).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains("payment-receipt: "), "{answer}");
    assert_eq!(rail.count("captured"), 1);
}
