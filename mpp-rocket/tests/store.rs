//! The store named in Rocket's configuration (`[default.mpp] store`): the
//! fairing opens it at ignition, a session bought before a restart is spent
//! after it, and a store that cannot be opened, or one named twice, aborts
//! the launch.

#![cfg(feature = "sqlite")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../../mpp-runtime/tests/support/rail.rs"]
mod rail;

use std::sync::Arc;

use mpp_rocket::runtime::MemoryStore;
use mpp_rocket::runtime::wire::{Challenge, Credential as WireCredential};
use mpp_rocket::{Mpp, SessionInfo, paid};
use rail::{Shared, TestRail};
use rocket::figment::Figment;
use rocket::http::{Header, Status};
use rocket::local::asynchronous::Client;
use rocket::{get, routes};
use serde_json::json;

#[paid(amount = "5.00", grants = 3, scope = "report")]
#[get("/report")]
async fn report(session: Option<SessionInfo>) -> String {
    format!("left {}", session.map_or(0, |s| s.remaining))
}

fn figment(store: &str) -> Figment {
    rocket::Config::figment()
        .merge(("log_level", "off"))
        .merge(("mpp.secret_key", "rocket-store-secret-of-at-least-32-bytes"))
        .merge(("mpp.realm", "rocket.test"))
        .merge(("mpp.store", store))
}

fn database() -> String {
    let path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "rocket-store-{}-{}.db",
        std::process::id(),
        mpp_rocket::runtime::random::u128() >> 64
    ));
    format!("sqlite://{}", path.display())
}

async fn launch(rail: &Arc<TestRail>, store: &str) -> Result<Client, String> {
    launch_with(Mpp::builder().rail(Shared(rail.clone())), store).await
}

/// The client, or why the launch failed (inspecting a `rocket::Error`
/// keeps it from panicking on drop).
async fn launch_with(builder: mpp_rocket::GateBuilder, store: &str) -> Result<Client, String> {
    let rocket = rocket::custom(figment(store))
        .attach(Mpp::fairing(builder))
        .mount("/", routes![report]);
    Client::tracked(rocket)
        .await
        .map_err(|e| format!("{:?}", e.kind()))
}

#[rocket::async_test]
async fn a_session_bought_before_a_restart_is_spent_after_it() {
    let rail = TestRail::new("test");
    let store = database();
    let before = launch(&rail, &store).await.unwrap();
    let unpaid = before.get("/report").dispatch().await;
    assert_eq!(unpaid.status(), Status::PaymentRequired);
    let challenge =
        Challenge::parse(unpaid.headers().get_one("WWW-Authenticate").unwrap()).unwrap();
    drop(unpaid);
    let credential = WireCredential {
        challenge,
        payload: json!({"proof": "ok"}).as_object().unwrap().clone(),
        source: None,
    };
    let paid = before
        .get("/report")
        .header(Header::new("Authorization", credential.to_header()))
        .dispatch()
        .await;
    assert_eq!(paid.status(), Status::Ok);
    let session = SessionInfo::parse(paid.headers().get_one("Payment-Session").unwrap()).unwrap();
    assert_eq!(paid.into_string().await.unwrap(), "left 2");
    drop(before.terminate().await);

    let after = launch(&rail, &store).await.unwrap();
    let spend = || {
        after
            .get("/report")
            .header(Header::new(
                "Authorization",
                format!("Payment session=\"{}\"", session.id),
            ))
            .dispatch()
    };
    let spent = spend().await;
    assert_eq!(spent.status(), Status::Ok);
    assert_eq!(spent.into_string().await.unwrap(), "left 1");
    assert_eq!(spend().await.status(), Status::Ok);
    assert_eq!(
        spend().await.status(),
        Status::PaymentRequired,
        "3 credits bought, 3 spent"
    );
    assert_eq!(rail.settled(), 1);
}

#[rocket::async_test]
async fn a_store_that_cannot_open_aborts_the_launch() {
    let rail = TestRail::new("test");
    for store in ["sqlite:///nonexistent-dir/for/sure/mpp.db", "mysql://db"] {
        let Err(e) = launch(&rail, store).await else {
            panic!("{store}: the launch must fail")
        };
        assert!(e.contains("FailedFairings"), "{e}");
    }
}

#[rocket::async_test]
async fn a_store_in_code_and_in_the_configuration_is_refused() {
    let rail = TestRail::new("test");
    let builder = Mpp::builder()
        .rail(Shared(rail.clone()))
        .store(MemoryStore::new());
    let Err(e) = launch_with(builder, &database()).await else {
        panic!("two stores: the launch must fail")
    };
    assert!(e.contains("FailedFairings"), "{e}");
    // `memory` names the default: no conflict.
    let builder = Mpp::builder().rail(Shared(rail)).store(MemoryStore::new());
    assert!(launch_with(builder, "memory").await.is_ok());
}
