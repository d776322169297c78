//! Benchmark tooling for `scripts/bench.sh`: the payment gate on Rocket and
//! Actix-web, serving the same four routes, and a small HTTP client that buys
//! what the load runs spend.
//!
//! | route | what it is |
//! |---|---|
//! | `GET /bare` | a plain handler answering `ok` |
//! | `GET /paid` | `#[paid(amount = "0.50")]`: a 402 without a credential, `ok` with one |
//! | `GET /metered` | `#[paid(amount = "5.00", grants = 1000000)]`: one payment buys a session |
//! | `GET /headers` | a plain handler answering `ok` with the three headers a session spend adds ([`SpendHeaders`]), and no gate: the framework's own cost of those headers |
//!
//! Payments settle on [`InstantTestRail`], which exists only in this crate:
//! it accepts a fixed proof and settles at once, so a load run measures the
//! gate (verification, replay protection, settlement lock, burn, receipt)
//! without a provider's network call. Anyone can pay it: the servers only
//! listen on 127.0.0.1, and it is never part of the library or the
//! examples.
//!
//! With `BENCH_MODE=bare` a server mounts only `/bare` and no payment gate
//! at all (and `/headers`): the framework's own baseline.

pub mod actix_app;
pub mod client;
pub mod rocket_app;

use std::sync::LazyLock;
use std::sync::atomic::{AtomicU64, Ordering};

use mpp_rocket::runtime::wire::{Receipt, SessionInfo, Timestamp};
use mpp_rocket::runtime::{
    BoxFuture, ConfigBuilder, Price, Rail, RailError, SettleError, SettleRequest, Settlement,
};
use serde_json::{Map, Value, json};

/// The headers a session spend on `/metered` answers with, as values of the
/// same size (a receipt of [`InstantTestRail`], a session of
/// [`METERED_GRANTS`] credits), for `/headers`: what a framework pays to send
/// them, whoever writes them.
#[derive(Debug)]
pub struct SpendHeaders {
    /// The `Payment-Receipt` value.
    pub receipt: String,
    /// The `Payment-Session` value.
    pub session: String,
}

/// The [`SpendHeaders`] `/headers` sends (made once).
pub static SPEND_HEADERS: LazyLock<SpendHeaders> = LazyLock::new(|| {
    let now = Timestamp::now();
    SpendHeaders {
        receipt: Receipt::success(METHOD, "instant_1", now).to_header(),
        session: SessionInfo {
            id: format!("sess_{}", "x".repeat(32)),
            remaining: METERED_GRANTS - 2,
            scope: "bench.metered".to_owned(),
            expires_at: now.plus(std::time::Duration::from_secs(3600)),
        }
        .to_header(),
    }
});

/// The proof [`InstantTestRail`] accepts in a credential's payload
/// (`{"proof": "instant-test"}`).
pub const PROOF: &str = "instant-test";

/// The payment method name of [`InstantTestRail`].
pub const METHOD: &str = "instant-test";

/// Accesses one payment buys on `/metered` (the runtime's maximum).
pub const METERED_GRANTS: u32 = 1_000_000;

/// A payment rail for benchmarks only: a credential whose payload is
/// `{"proof": "instant-test"}` settles at once, anything else is refused.
/// There is no provider behind it; it must never guard anything of value.
#[derive(Debug, Default)]
pub struct InstantTestRail {
    settled: AtomicU64,
}

impl InstantTestRail {
    /// A rail that has settled nothing yet.
    pub fn new() -> Self {
        Self::default()
    }
}

impl Rail for InstantTestRail {
    fn method(&self) -> &str {
        METHOD
    }

    fn challenge_request(&self, price: &Price) -> Result<Map<String, Value>, RailError> {
        match json!({
            "amount": price.amount.minor_units().to_string(),
            "currency": price.amount.currency().code().to_ascii_lowercase(),
            "recipient": "bench",
        }) {
            Value::Object(map) => Ok(map),
            _ => Err(RailError::new("the challenge request is not an object")),
        }
    }

    fn settle(&self, request: SettleRequest) -> BoxFuture<'_, Result<Settlement, SettleError>> {
        let outcome = match request.payload.get("proof").and_then(Value::as_str) {
            Some(PROOF) => {
                let n = self.settled.fetch_add(1, Ordering::Relaxed) + 1;
                let field = |name: &str| request.request.str_field(name).unwrap_or("").to_owned();
                Ok(Settlement::new(
                    format!("instant_{n}"),
                    field("amount"),
                    field("currency"),
                ))
            }
            _ => Err(SettleError::verification_failed(
                "the instant test rail only accepts its fixed proof",
            )),
        };
        Box::pin(std::future::ready(outcome))
    }
}

/// The configuration both servers start from: realm `localhost`; the secret
/// and everything else come from `MPP_*` (the adapters overlay them).
pub fn config() -> ConfigBuilder {
    ConfigBuilder::default().realm("localhost")
}

/// Whether `BENCH_MODE=bare` asks for the framework alone, without the gate.
pub fn bare_mode() -> bool {
    std::env::var("BENCH_MODE").is_ok_and(|mode| mode == "bare")
}

/// `PORT`, or `default`.
pub fn port(default: u16) -> u16 {
    std::env::var("PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(default)
}

/// `BENCH_WORKERS` (worker threads), default 1: the load script pins each
/// server to one core.
pub fn workers() -> usize {
    std::env::var("BENCH_WORKERS")
        .ok()
        .and_then(|w| w.parse().ok())
        .filter(|&w| w > 0)
        .unwrap_or(1)
}
