//! A Rocket shop selling API calls to agents over the Machine Payments
//! Protocol, settled with Stripe Shared Payment Tokens and, when
//! `TEMPO_RECIPIENT` is set, with stablecoins on Tempo.
//!
//! ```sh
//! cargo run -p rocket-shop          # listens on 127.0.0.1:8000
//! curl -si http://127.0.0.1:8000/quote   # 402 with a Stripe challenge
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

use mpp_rocket::runtime::PriceEntry;
use mpp_rocket::runtime::rails::evm::EvmRail;
use mpp_rocket::runtime::rails::stellar::StellarRail;
use mpp_rocket::runtime::rails::stripe::StripeRail;
use mpp_rocket::runtime::rails::tempo::TempoRail;
use mpp_rocket::{Check, ConfigBuilder, Mpp, Receipt, Rejection, SessionInfo, paid};
use rocket::http::Status;
use rocket::serde::json::{Json, Value, json};
use rocket::{get, routes};

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
#[get("/posts/<id>")]
async fn post(id: u32, receipt: Receipt) -> Json<Value> {
    Json(
        json!({"post": id, "body": format!("The text of post {id}."), "paid_with": receipt.reference}),
    )
}

/// An expensive answer, charged only if it is delivered
/// (`capture = "after"`): the card is authorized first, captured when the
/// final response is 2xx and released otherwise. `?topic=fail` plays an
/// upstream outage.
#[paid(
    amount = "2.00",
    method = "stripe",
    capture = "after",
    description = "A summary, charged only if delivered"
)]
#[get("/summary?<topic>")]
async fn summary(topic: Option<&str>, receipt: Receipt) -> (Status, Json<Value>) {
    match topic {
        Some("fail") | None => (
            Status::ServiceUnavailable,
            Json(json!({"error": "the summarizer is unavailable; you were not charged"})),
        ),
        Some(topic) => (
            Status::Ok,
            Json(json!({"summary": format!("All about {topic}."), "paid_with": receipt.reference})),
        ),
    }
}

/// Priced by the price book entry `weather`, whose methods depend on the
/// deployment: stablecoins on Tempo when `TEMPO_RECIPIENT` is set (offered
/// first), USDC on Stellar when `STELLAR_RECIPIENT` is set, and a card.
#[paid(price = "weather", description = "Today's weather")]
#[get("/weather?<city>")]
async fn weather(city: Option<&str>, receipt: Receipt) -> Json<Value> {
    Json(json!({
        "city": city.unwrap_or("Lisbon"),
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
fn health() -> &'static str {
    "ok"
}

#[rocket::main]
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
    let mut gate = Mpp::configure(config)
        .rail(StripeRail::from_env()?)
        .state(Posts(vec![1, 2, 3]));
    // The fairing opens the store MPP_STORE (or `store` in Rocket.toml)
    // names: memory (default) | sqlite://mpp.db | postgres://… | redis://…
    if tempo {
        gate = gate.rail(TempoRail::from_env()?);
    }
    if evm {
        gate = gate.rail(EvmRail::from_env()?);
    }
    if stellar {
        gate = gate.rail(StellarRail::from_env()?);
    }
    let _ = rocket::build()
        .attach(Mpp::fairing(gate))
        .mount(
            "/",
            routes![quote, report, premium, post, summary, weather, rate, health],
        )
        // Stripe's webhook endpoint: POST /webhooks/stripe.
        .mount("/webhooks", mpp_rocket::webhooks())
        .launch()
        .await?;
    Ok(())
}
