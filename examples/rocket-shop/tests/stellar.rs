//! A Stellar payer pays this example in USDC (pull, push and sponsored
//! pull), against a Stellar RPC on 127.0.0.1 answering with responses made
//! by the official @stellar/stellar-sdk.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stdout
)]

use mpp_rocket::runtime as rt;

#[path = "../../../mpp-runtime/tests/support/stellar_rpc.rs"]
mod stellar_rpc;

#[path = "../../../mpp-runtime/tests/support/stellar.rs"]
mod stellar_support;

#[path = "../../e2e/stellar.rs"]
mod e2e;

#[test]
fn a_stellar_payer_pays_rocket_shop_in_pull_and_push_mode() {
    e2e::pays_the_example_on_stellar(env!("CARGO_BIN_EXE_rocket-shop"), "ROCKET_PORT");
}

#[test]
fn a_stellar_payer_pays_rocket_shop_with_sponsored_fees() {
    e2e::pays_the_example_on_stellar_with_sponsored_fees(
        env!("CARGO_BIN_EXE_rocket-shop"),
        "ROCKET_PORT",
    );
}
