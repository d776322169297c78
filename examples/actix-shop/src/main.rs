//! An Actix-web shop selling API calls to agents over the Machine Payments
//! Protocol, settled with Stripe Shared Payment Tokens and, when
//! `TEMPO_RECIPIENT` is set, with stablecoins on Tempo.
//!
//! ```sh
//! cargo run -p actix-shop           # listens on 127.0.0.1:8080 (PORT to change)
//! curl -si http://127.0.0.1:8080/quote   # 402 with a Stripe challenge
//! ```
//!
//! It answers 402s without any key; to settle payments set
//! `STRIPE_SECRET_KEY` (and `STRIPE_NETWORK_ID`), or point `STRIPE_API_BASE`
//! at the emulator in `tools/stripe-emulator`. See README.md, "Stripe".
//! With `TEMPO_RECIPIENT` (and `TEMPO_RPC_URL`, `TEMPO_CHAIN_ID`) `/weather`
//! is also payable on Tempo; see README.md, "Tempo".
//! With `EVM_RECIPIENT` (and `EVM_RPC_URL`, `EVM_CHAIN_ID`, `EVM_TOKEN`,
//! `EVM_RELAYER_KEY`) `/rate` is paid with an EIP-3009 stablecoin
//! authorization; see README.md, "EVM".
//! With `STELLAR_RECIPIENT` (and `STELLAR_RPC_URL`, `STELLAR_NETWORK`,
//! optionally `STELLAR_FEE_PAYER_SECRET`) `/weather` is also payable in USDC
//! on Stellar; see README.md, "Stellar".

#![allow(clippy::print_stdout)]

use std::collections::HashMap;

use actix_web::http::StatusCode;
use actix_web::web::Json;
use actix_web::{App, HttpServer, get, web};
use mpp_actix::runtime::PriceEntry;
use mpp_actix::runtime::rails::evm::EvmRail;
use mpp_actix::runtime::rails::stellar::StellarRail;
use mpp_actix::runtime::rails::stripe::StripeRail;
use mpp_actix::runtime::rails::tempo::TempoRail;
use mpp_actix::{Check, ConfigBuilder, Mpp, Receipt, Rejection, SessionInfo, paid};
use serde_json::{Value, json};

/// The posts this shop sells reads of.
struct Posts(Vec<u32>);

/// One paid request: a price quote.
#[paid(
    amount = "1.00",
    currency = "USD",
    method = "stripe",
    description = "A price quote"
)]
#[get("/quote")]
async fn quote(receipt: Receipt) -> Json<Value> {
    Json(json!({"quote": 42.17, "paid_with": receipt.reference}))
}

/// One payment buys ten reads of the daily report.
#[paid(
    amount = "5.00",
    grants = 10,
    scope = "report.daily",
    method = "stripe"
)]
#[get("/report")]
async fn report(session: Option<SessionInfo>) -> Json<Value> {
    Json(json!({"report": "all systems nominal", "reads_left": session.map_or(0, |s| s.remaining)}))
}

/// Priced by the price book (`premium`: 3.00 USD for three reads).
#[paid(price = "premium")]
#[get("/premium")]
async fn premium(session: Option<SessionInfo>) -> Json<Value> {
    Json(json!({"premium": true, "reads_left": session.map_or(0, |s| s.remaining)}))
}

/// A missing post is a 404 before any 402: nobody pays for nothing.
async fn post_exists(check: Check) -> Result<(), Rejection> {
    let missing = || Rejection::not_found("No such post.");
    let id: u32 = check
        .param("id")
        .and_then(|id| id.parse().ok())
        .ok_or_else(missing)?;
    let posts = check
        .state::<Posts>()
        .ok_or_else(|| Rejection::problem(500, "Internal Server Error", "no post index"))?;
    if posts.0.contains(&id) {
        Ok(())
    } else {
        Err(missing())
    }
}

#[paid(amount = "0.50", method = "stripe", preconditions = [post_exists])]
#[get("/posts/{id}")]
async fn post(id: web::Path<u32>, receipt: Receipt) -> Json<Value> {
    let id = id.into_inner();
    Json(
        json!({"post": id, "body": format!("The text of post {id}."), "paid_with": receipt.reference}),
    )
}

/// An expensive answer, charged only if it is delivered
/// (`capture = "after"`): the card is authorized first, captured when the
/// handler answers 2xx and released otherwise. `?topic=fail` plays an
/// upstream outage.
#[paid(
    amount = "2.00",
    method = "stripe",
    capture = "after",
    description = "A summary, charged only if delivered"
)]
#[get("/summary")]
async fn summary(
    query: web::Query<HashMap<String, String>>,
    receipt: Receipt,
) -> (Json<Value>, StatusCode) {
    match query.get("topic").map(String::as_str) {
        Some("fail") | None => (
            Json(json!({"error": "the summarizer is unavailable; you were not charged"})),
            StatusCode::SERVICE_UNAVAILABLE,
        ),
        Some(topic) => (
            Json(json!({"summary": format!("All about {topic}."), "paid_with": receipt.reference})),
            StatusCode::OK,
        ),
    }
}

/// Priced by the price book entry `weather`, whose methods depend on the
/// deployment: stablecoins on Tempo when `TEMPO_RECIPIENT` is set (offered
/// first), USDC on Stellar when `STELLAR_RECIPIENT` is set, and a card.
#[paid(price = "weather", description = "Today's weather")]
#[get("/weather")]
async fn weather(query: web::Query<HashMap<String, String>>, receipt: Receipt) -> Json<Value> {
    Json(json!({
        "city": query.get("city").map_or("Lisbon", String::as_str),
        "forecast": "sunny, 24 °C",
        "paid_with": receipt.reference,
        "method": receipt.method,
    }))
}

/// Priced by the price book entry `rate`: paid with a signed EIP-3009
/// stablecoin authorization, which the server relays on chain, when
/// `EVM_RECIPIENT` is set; by card otherwise.
#[paid(price = "rate", description = "An exchange rate")]
#[get("/rate")]
async fn rate(receipt: Receipt) -> Json<Value> {
    Json(
        json!({"pair": "EUR/USD", "rate": 1.0842, "paid_with": receipt.reference, "method": receipt.method}),
    )
}

/// Free.
#[get("/health")]
async fn health() -> &'static str {
    "ok"
}

#[actix_web::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Stablecoin rails are offered when configured.
    let tempo = std::env::var_os("TEMPO_RECIPIENT").is_some();
    let evm = std::env::var_os("EVM_RECIPIENT").is_some();
    let stellar = std::env::var_os("STELLAR_RECIPIENT").is_some();
    let mut weather_price = PriceEntry::new("0.50");
    if tempo {
        weather_price = weather_price.method("tempo");
    }
    if stellar {
        weather_price = weather_price.method("stellar");
    }
    let rate_price = PriceEntry::new("0.50").method(if evm { "evm" } else { "stripe" });
    let mut config = ConfigBuilder::default()
        .realm("localhost")
        .default_method("stripe")
        .price("premium", PriceEntry::new("3.00").grants(3))
        .price("weather", weather_price.method("stripe"))
        .price("rate", rate_price);
    if std::env::var_os("MPP_SECRET_KEY").is_none() {
        config = config.ephemeral_secret_if_unset();
    }
    let mut builder = Mpp::configure(config)
        .rail(StripeRail::from_env()?)
        .state(Posts(vec![1, 2, 3]));
    if tempo {
        builder = builder.rail(TempoRail::from_env()?);
    }
    if evm {
        builder = builder.rail(EvmRail::from_env()?);
    }
    if stellar {
        builder = builder.rail(StellarRail::from_env()?);
    }
    // Opens the store MPP_STORE names:
    // memory (default) | sqlite://mpp.db | postgres://… | redis://…
    let gate = Mpp::connect(builder).await?;
    let port: u16 = std::env::var("PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(8080);
    println!("actix-shop listening on http://127.0.0.1:{port}");
    HttpServer::new(move || {
        App::new()
            .app_data(gate.clone())
            .service(quote)
            .service(report)
            .service(premium)
            .service(post)
            .service(summary)
            .service(weather)
            .service(rate)
            .service(health)
            // Stripe's webhook endpoint: POST /webhooks/stripe.
            .service(mpp_actix::webhooks("/webhooks"))
    })
    // An agent that closes its connection mid-request has gone away: its
    // `capture = "after"` payment is released, not captured.
    .h1_allow_half_closed(false)
    .bind(("127.0.0.1", port))?
    .run()
    .await?;
    Ok(())
}
