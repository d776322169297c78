//! # mpp-runtime
//!
//! The framework-agnostic engine of the Machine Payments Protocol (MPP): the
//! IETF "Payment" HTTP authentication scheme that lets a server charge an AI
//! agent (or any machine) per request with an HTTP 402 challenge.
//!
//! This crate holds all protocol logic, so the Rocket and Actix adapters are
//! thin translation layers:
//!
//! - [`wire`]: the standard wire format, byte-compatible with the stock `mppx`
//!   client (challenges, credentials, receipts, problem details).
//! - [`Gate`]: the payment gate. It mints HMAC-bound challenges without
//!   storing anything, verifies paid retries in the order that matters
//!   (binding, route pinning, expiry, replay), settles each challenge at most
//!   once under a lock, and runs metered sessions.
//! - [`price`]: exact decimal prices; the same parser `#[paid]` runs at
//!   compile time.
//! - [`Rail`] and [`Store`]: the payment-method and storage interfaces, with
//!   [`MemoryStore`] as the embedded default.
//! - [`Precondition`]s: checks that run before any 402 is minted.
//!
//! ```
//! use mpp_runtime::*;
//! # use serde_json::{Map, Value};
//! # struct Card;
//! # impl Rail for Card {
//! #     fn method(&self) -> &str { "card" }
//! #     fn challenge_request(&self, p: &Price) -> Result<Map<String, Value>, RailError> {
//! #         let mut m = Map::new();
//! #         m.insert("amount".into(), p.amount.minor_units().to_string().into());
//! #         m.insert("currency".into(), "usd".into());
//! #         Ok(m)
//! #     }
//! #     fn settle(&self, r: SettleRequest) -> BoxFuture<'_, Result<Settlement, SettleError>> {
//! #         Box::pin(async move { Ok(Settlement::new("ch_1", r.request.str_field("amount").unwrap(), "usd")) })
//! #     }
//! # }
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let config = Config::builder()
//!     .secret("a-secret-of-at-least-thirty-two-bytes!")
//!     .realm("api.example.com")
//!     .build()?;
//! let gate = Gate::builder(config).rail(Card).build()?;
//! let route = gate.route(&RouteSpec::new(
//!     "GET",
//!     "/report",
//!     PaymentSpec::new().amount("5.00").grants(10).scope("report.basic"),
//! ))?;
//!
//! // Unpaid: a 402 with a challenge.
//! let Admission::Denied(challenge) = gate.admit(&route, RequestView::new("GET", "/report")).await
//!     else { unreachable!() };
//! let challenge = wire::Challenge::parse(challenge.header("www-authenticate").unwrap()).unwrap();
//!
//! // Paid retry: the client echoes the challenge with its proof.
//! let credential = wire::Credential {
//!     challenge,
//!     payload: serde_json::Map::new(),
//!     source: None,
//! };
//! let paid = RequestView::new("GET", "/report").with_header("Authorization", &credential.to_header());
//! let Admission::Granted(grant) = gate.admit(&route, paid).await else { unreachable!() };
//! assert_eq!(grant.receipt().reference, "ch_1");
//! assert_eq!(grant.session().unwrap().remaining, 9);
//! # Ok::<(), ConfigError>(()) }).unwrap();
//! ```

#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod binding;
pub mod clock;
pub mod config;
mod engine;
pub mod error;
pub mod events;
pub mod handler;
pub mod precondition;
pub mod price;
pub mod rail;
pub mod rails;
pub mod random;
pub mod request;
pub mod response;
pub mod spec;
pub mod state;
pub mod store;
pub mod suggest;
pub mod webhook;
pub mod wire;

use std::future::Future;
use std::pin::Pin;

pub use binding::{ChallengeKey, MIN_SECRET_LEN, SecretTooShort};
pub use clock::{Clock, ManualClock, SystemClock};
pub use config::{Config, ConfigBuilder, Defaults, Settings};
pub use engine::verify;
pub use engine::{Admission, Gate, GateBuilder, Grant, PaymentHeaders, Route};
pub use error::ConfigError;
pub use events::Event;
pub use precondition::{Check, Precondition, PreconditionRef, Verdict};
pub use price::{Amount, Currency};
pub use rail::{
    Price, Proofs, Rail, RailError, SettleError, SettleErrorKind, SettleRequest, Settlement,
};
pub use request::RequestView;
pub use response::{Rejection, Response};
pub use spec::{Capture, PaymentSpec, PriceBook, PriceEntry, RouteSpec};
pub use state::State;
pub use store::{
    LockToken, MemoryStore, PaymentStatus, SessionRecord, SettlementRecord, SpendOutcome, Store,
    StoreError,
};
pub use wire::{Credential, Receipt, SessionInfo};

/// A boxed, sendable future: what [`Rail`], [`Store`] and [`Precondition`]
/// methods return so they can be used as trait objects.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;
