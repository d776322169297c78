//! Two actix-shop processes sharing one store under concurrent load and
//! attack (see `examples/e2e/attack.rs`).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stdout
)]

use mpp_actix::runtime::wire;

#[path = "../../e2e/attack.rs"]
mod attack;

#[test]
fn two_actix_shops_sharing_a_store_survive_load_and_attack() {
    attack::attack_the_example(env!("CARGO_BIN_EXE_actix-shop"), "PORT");
}
