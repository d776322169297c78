//! The stock mppx CLI pays this example through the Stripe emulator.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stdout
)]

#[path = "../../e2e/mppx_stripe.rs"]
mod e2e;

#[test]
fn the_stock_mppx_client_pays_rocket_shop_with_stripe() {
    e2e::pays_the_example(env!("CARGO_BIN_EXE_rocket-shop"), "ROCKET_PORT");
}
