//! Startup checks: `Mpp::build` refuses configurations that cannot price
//! every `#[paid]` route compiled into the program.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../../mpp-runtime/tests/support/rail.rs"]
mod rail;

use actix_web::get;
use mpp_actix::{ConfigBuilder, Mpp, Settings, paid};
use rail::{Shared, TestRail};

/// A route with no price of its own: it needs a default amount.
#[paid(scope = "unpriced")]
#[get("/unpriced")]
async fn unpriced() -> &'static str {
    "unpriced"
}

fn build(config: ConfigBuilder) -> Result<mpp_actix::Gate, String> {
    Mpp::build_with(
        Mpp::configure(config).rail(Shared(TestRail::new("test"))),
        Settings::default(),
    )
    .map_err(|e| e.to_string())
}

fn base() -> ConfigBuilder {
    ConfigBuilder::default()
        .secret("actix-startup-secret-of-at-least-32-bytes")
        .realm("actix.test")
}

#[test]
fn a_route_without_a_price_stops_startup() {
    let e = build(base()).unwrap_err();
    assert!(
        e.contains("unpriced") && e.contains("MPP_DEFAULT_AMOUNT"),
        "{e}"
    );
    assert!(build(base().default_amount("0.50")).is_ok());
}

#[test]
fn a_short_secret_stops_startup() {
    let e = build(base().secret("short").default_amount("0.50")).unwrap_err();
    assert!(e.contains("at least 32"), "{e}");
}

#[test]
fn an_unknown_precondition_name_stops_startup() {
    let e = build(
        base()
            .default_amount("0.50")
            .global_precondition("post_exist"),
    )
    .unwrap_err();
    assert!(e.contains("unknown precondition `post_exist`"), "{e}");
}

#[test]
fn routes_are_checked_with_the_environment_overlaid() {
    let settings = Settings {
        default_amount: Some("0.25".into()),
        ..Settings::default()
    };
    let gate = Mpp::build_with(
        Mpp::configure(base()).rail(Shared(TestRail::new("test"))),
        settings,
    )
    .unwrap();
    assert_eq!(gate.config().defaults().amount.unwrap().to_string(), "0.25");
}
