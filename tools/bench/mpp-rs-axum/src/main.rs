//! The official Rust MPP SDK (`mpp` 0.18) minting 402s through its axum
//! `MppCharge` extractor with the tempo method, beside a bare axum route.
//! Benchmark tooling for scripts/bench.sh; nothing here is settled on chain
//! (the RPC URL is never called while minting challenges).
//!
//! `PORT` (default 8093), `MPP_SECRET_KEY` (at least 32 bytes).

use std::sync::Arc;

use axum::Router;
use axum::routing::get;
use mpp::server::axum::{ChargeChallenger, ChargeConfig, MppCharge};
use mpp::server::{Mpp, TempoConfig, tempo};

/// pathUSD, the TIP-20 token the Moderato testnet prices in.
const PATH_USD: &str = "0x20c0000000000000000000000000000000000000";

/// The paid route's price: 0.50 (the bench server's `/paid` price).
struct Half;

impl ChargeConfig for Half {
    fn amount() -> &'static str {
        "0.50"
    }
}

async fn paid(_charge: MppCharge<Half>) -> &'static str {
    "ok"
}

async fn bare() -> &'static str {
    "ok"
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let port: u16 = std::env::var("PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(8093);
    // One challenge per 402 (pathUSD only), like the bench server's
    // single-method routes; the SDK's Moderato default offers two currencies.
    let mpp = Mpp::create(
        tempo(TempoConfig {
            recipient: "0x742d35Cc6634C0532925a3b844Bc9e7595f1B0F2",
        })
        .chain_id(42431)
        .rpc_url("http://127.0.0.1:9/unused")
        .currencies([PATH_USD])
        .realm("localhost"),
    )?;
    let app = Router::new()
        .route("/bare", get(bare))
        .route("/paid", get(paid))
        .with_state(Arc::new(mpp) as Arc<dyn ChargeChallenger>);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    eprintln!("mpp-rs axum bench server on http://127.0.0.1:{port}");
    axum::serve(listener, app).await?;
    Ok(())
}
