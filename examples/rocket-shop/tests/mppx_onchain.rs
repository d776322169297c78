//! The stock mppx CLI pays this example on local chains: Tempo (pull and
//! push mode) and EVM (an EIP-3009 authorization).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stdout
)]

#[path = "../../e2e/mppx_onchain.rs"]
mod e2e;

#[test]
fn the_stock_mppx_client_pays_rocket_shop_on_tempo() {
    e2e::pays_the_example_on_tempo(env!("CARGO_BIN_EXE_rocket-shop"), "ROCKET_PORT");
}

#[test]
fn the_stock_mppx_client_pays_rocket_shop_with_evm() {
    e2e::pays_the_example_with_evm(env!("CARGO_BIN_EXE_rocket-shop"), "ROCKET_PORT");
}
