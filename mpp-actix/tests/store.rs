//! The store named by the settings (`MPP_STORE`): `Mpp::connect` opens it,
//! a session bought before a restart is spent after it, and a store that
//! cannot be opened, named but not opened, or named twice stops startup.

#![cfg(feature = "sqlite")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../../mpp-runtime/tests/support/rail.rs"]
mod rail;

use std::sync::Arc;

use actix_web::http::StatusCode;
use actix_web::{App, get};
use mpp_actix::runtime::ConfigError;
use mpp_actix::runtime::MemoryStore;
use mpp_actix::runtime::wire::{Challenge, Credential as WireCredential};
use mpp_actix::{ConfigBuilder, Gate, Mpp, SessionInfo, Settings, paid};
use rail::{Shared, TestRail};
use serde_json::json;

#[paid(amount = "5.00", grants = 3, scope = "report")]
#[get("/report")]
async fn report(session: Option<SessionInfo>) -> String {
    format!("left {}", session.map_or(0, |s| s.remaining))
}

fn builder(rail: &Arc<TestRail>) -> mpp_actix::GateBuilder {
    Mpp::configure(
        ConfigBuilder::default()
            .secret("actix-store-secret-of-at-least-32-bytes")
            .realm("actix.test"),
    )
    .rail(Shared(rail.clone()))
}

fn settings(store: &str) -> Settings {
    Settings {
        store: Some(store.to_owned()),
        ..Settings::default()
    }
}

fn database() -> String {
    let path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "actix-store-{}-{}.db",
        std::process::id(),
        mpp_actix::runtime::random::u128() >> 64
    ));
    format!("sqlite://{}", path.display())
}

fn server(gate: Gate) -> actix_test::TestServer {
    actix_test::start(move || App::new().app_data(gate.clone()).service(report))
}

async fn get(
    server: &actix_test::TestServer,
    authorization: Option<String>,
) -> (StatusCode, actix_web::http::header::HeaderMap, String) {
    let mut request = server.get("/report");
    if let Some(value) = authorization {
        request = request.insert_header(("Authorization", value));
    }
    let mut response = request.send().await.unwrap();
    let body = response.body().await.unwrap();
    (
        response.status(),
        response.headers().clone(),
        String::from_utf8(body.to_vec()).unwrap(),
    )
}

#[actix_web::test]
async fn a_session_bought_before_a_restart_is_spent_after_it() {
    let rail = TestRail::new("test");
    let store = database();
    let before = server(
        Mpp::connect_with(builder(&rail), settings(&store))
            .await
            .unwrap(),
    );
    let (status, headers, _) = get(&before, None).await;
    assert_eq!(status, StatusCode::PAYMENT_REQUIRED);
    let challenge =
        Challenge::parse(headers.get("WWW-Authenticate").unwrap().to_str().unwrap()).unwrap();
    let credential = WireCredential {
        challenge,
        payload: json!({"proof": "ok"}).as_object().unwrap().clone(),
        source: None,
    };
    let (status, headers, body) = get(&before, Some(credential.to_header())).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "left 2"));
    let session =
        SessionInfo::parse(headers.get("Payment-Session").unwrap().to_str().unwrap()).unwrap();
    before.stop().await;

    let after = server(
        Mpp::connect_with(builder(&rail), settings(&store))
            .await
            .unwrap(),
    );
    let spend = || get(&after, Some(format!("Payment session=\"{}\"", session.id)));
    let (status, _, body) = spend().await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "left 1"));
    assert_eq!(spend().await.0, StatusCode::OK);
    assert_eq!(
        spend().await.0,
        StatusCode::PAYMENT_REQUIRED,
        "3 credits bought, 3 spent"
    );
    assert_eq!(rail.settled(), 1);
}

#[actix_web::test]
async fn a_store_that_cannot_open_stops_startup() {
    let rail = TestRail::new("test");
    let Err(error) = Mpp::connect_with(
        builder(&rail),
        settings("sqlite:///nonexistent-dir/for/sure/mpp.db"),
    )
    .await
    else {
        panic!("an unopenable store must stop startup")
    };
    assert!(matches!(error, ConfigError::Store { .. }), "{error}");
    assert!(error.to_string().starts_with("MPP_STORE = "), "{error}");

    let Err(error) = Mpp::connect_with(
        builder(&rail),
        settings("postgres://shop:hunter2@127.0.0.1:1/shop"),
    )
    .await
    else {
        panic!("an unreachable store must stop startup")
    };
    assert!(!error.to_string().contains("hunter2"), "{error}");
}

#[actix_web::test]
async fn a_store_named_but_not_opened_or_named_twice_stops_startup() {
    let rail = TestRail::new("test");
    let Err(error) = Mpp::build_with(builder(&rail), settings(&database())) else {
        panic!("a store the gate did not open must stop startup")
    };
    assert!(error.to_string().contains("Mpp::connect"), "{error}");

    let Err(error) = Mpp::connect_with(
        builder(&rail).store(MemoryStore::new()),
        settings(&database()),
    )
    .await
    else {
        panic!("two stores must stop startup")
    };
    assert!(error.to_string().contains("keep one"), "{error}");

    // `memory` is the default: no conflict, and `build` needs nothing opened.
    assert!(Mpp::build_with(builder(&rail).store(MemoryStore::new()), settings("memory")).is_ok());
}
