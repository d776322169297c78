//! Payment rails: one implementation per payment method (Stripe, Tempo, …).
//!
//! A rail describes what a challenge asks for (its `request`), checks its own
//! configuration at startup, and verifies and settles a credential. The gate
//! does everything else: challenge binding, route pinning, expiry, replay
//! protection, the settlement lock, sessions and receipts.

use std::fmt;

use serde_json::{Map, Value};
use thiserror::Error;

use std::sync::Arc;

use crate::BoxFuture;
use crate::price::Amount;
use crate::request::RequestView;
use crate::store::{Store, StoreError};
use crate::webhook::Webhooks;
use crate::wire::{Challenge, PaymentRequest, ProblemType, Timestamp};

/// The resolved price of a route, as rails see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Price {
    /// What one payment costs.
    pub amount: Amount,
    /// How many accesses one payment buys.
    pub grants: u32,
    /// The scope sessions are locked to.
    pub scope: String,
    /// A human-readable description, if the route has one.
    pub description: Option<String>,
}

impl fmt::Display for Price {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.amount, self.amount.currency())?;
        if self.grants > 1 {
            write!(f, " for {} accesses", self.grants)?;
        }
        Ok(())
    }
}

/// A rail's configuration makes it unusable (reported at startup).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{0}")]
pub struct RailError(pub String);

impl RailError {
    /// A configuration error with a message that says what to set.
    pub fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }
}

/// Everything a rail needs to verify and settle one credential. `Debug`
/// leaves out the payload and source.
#[derive(Clone)]
pub struct SettleRequest {
    /// The challenge as the client echoed it (already HMAC-verified, pinned
    /// to this route, unexpired and unused).
    pub challenge: Challenge,
    /// The method-specific proof.
    pub payload: Map<String, Value>,
    /// The payer identifier the client sent, if any.
    pub source: Option<Value>,
    /// The request this route issues for this method (equal to the echoed one).
    pub request: PaymentRequest,
    /// The route's price.
    pub price: Price,
    /// The route identity (e.g. `GET /report`).
    pub route: String,
    /// Use this as the provider's idempotency key: it is the challenge id,
    /// unique per issued challenge.
    pub idempotency_key: String,
    /// The paid retry itself (headers, path parameters), for rails that
    /// resolve a payer identity from it.
    pub http: Arc<RequestView>,
    /// The gate's ledger of consumed proofs (transaction hashes, …).
    pub proofs: Proofs,
    /// When the gate issued the challenge: its expiry less the gate's
    /// challenge lifetime. A payment made on chain before this moment was
    /// not made for this challenge.
    pub issued_at: Timestamp,
}

/// The ledger of proofs a rail has consumed, kept in the gate's store, so a
/// transaction hash or signed authorization pays for one challenge only,
/// across every process sharing the store.
///
/// ```
/// # tokio_test_block_on(async {
/// use std::sync::Arc;
/// use std::time::Duration;
/// use mpp_runtime::{MemoryStore, Proofs};
///
/// let proofs = Proofs::new(Arc::new(MemoryStore::new()));
/// let day = Duration::from_secs(86_400);
/// assert!(!proofs.is_used("tempo", "0xabc").await?);
/// assert!(proofs.consume("tempo", "0xabc", day).await?);
/// assert!(!proofs.consume("tempo", "0xabc", day).await?, "a proof pays once");
/// # Ok::<(), mpp_runtime::StoreError>(())
/// # }).unwrap();
/// # fn tokio_test_block_on<F: std::future::Future>(f: F) -> F::Output {
/// #     tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(f)
/// # }
/// ```
#[derive(Clone)]
pub struct Proofs {
    store: Arc<dyn Store>,
}

impl fmt::Debug for Proofs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Proofs").finish_non_exhaustive()
    }
}

impl Proofs {
    /// A ledger kept in `store`.
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self { store }
    }

    fn key(method: &str, proof: &str) -> String {
        format!("mpp:proof:{method}:{}", proof.to_ascii_lowercase())
    }

    /// Whether `method` already consumed `proof`.
    pub async fn is_used(&self, method: &str, proof: &str) -> Result<bool, StoreError> {
        self.store.is_claimed(&Self::key(method, proof)).await
    }

    /// Marks `proof` consumed for `ttl`. Returns `false` if it already was.
    /// Keep `ttl` at least as long as the proof could be presented again.
    pub async fn consume(
        &self,
        method: &str,
        proof: &str,
        ttl: std::time::Duration,
    ) -> Result<bool, StoreError> {
        self.store.claim(&Self::key(method, proof), ttl).await
    }
}

impl fmt::Debug for SettleRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SettleRequest")
            .field("challenge", &self.challenge)
            .field(
                "payload",
                &format_args!("<{} fields redacted>", self.payload.len()),
            )
            .field("source", &self.source.as_ref().map(|_| "<redacted>"))
            .field("request", &self.request)
            .field("price", &self.price)
            .field("route", &self.route)
            .field("idempotency_key", &self.idempotency_key)
            .field("issued_at", &self.issued_at)
            .finish_non_exhaustive()
    }
}

/// A successful settlement.
#[derive(Debug, Clone, PartialEq)]
pub struct Settlement {
    /// The provider's reference (`pi_…`, a transaction hash, …).
    pub reference: String,
    /// The amount actually settled, in the units of the request's `amount`.
    pub amount: String,
    /// The currency actually settled, as in the request's `currency`.
    pub currency: String,
    /// Who paid, when the rail knows.
    pub payer: Option<String>,
    /// A merchant correlation id for the receipt.
    pub external_id: Option<String>,
    /// Extra fields for the receipt.
    pub receipt_fields: Map<String, Value>,
}

impl Settlement {
    /// A settlement of `amount` `currency` with `reference`.
    pub fn new(
        reference: impl Into<String>,
        amount: impl Into<String>,
        currency: impl Into<String>,
    ) -> Self {
        Self {
            reference: reference.into(),
            amount: amount.into(),
            currency: currency.into(),
            payer: None,
            external_id: None,
            receipt_fields: Map::new(),
        }
    }
}

/// Why a rail did not settle. Only [`SettleErrorKind::Internal`] is a server
/// fault (500); the others are the payer's to fix and answer with a 402.
/// The challenge is never burned when settlement fails.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{kind:?}: {detail}")]
pub struct SettleError {
    /// What went wrong.
    pub kind: SettleErrorKind,
    /// A message for the payer (sent in the problem's `detail`).
    pub detail: String,
}

/// The classes of settlement failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SettleErrorKind {
    /// The payload is not what this method expects.
    InvalidPayload,
    /// The provider rejected the proof (declined card, bad signature, …).
    VerificationFailed,
    /// Less was paid than the price.
    Insufficient,
    /// The payer must complete an action (e.g. 3-D Secure) first.
    ActionRequired,
    /// The provider or network failed; the payer may retry the same credential.
    Internal,
}

impl SettleErrorKind {
    /// The problem type the gate answers with.
    pub const fn problem(self) -> ProblemType {
        match self {
            Self::InvalidPayload => ProblemType::InvalidPayload,
            Self::VerificationFailed => ProblemType::VerificationFailed,
            Self::Insufficient => ProblemType::PaymentInsufficient,
            Self::ActionRequired => ProblemType::PaymentActionRequired,
            Self::Internal => ProblemType::InternalPaymentError,
        }
    }
}

impl SettleError {
    fn new(kind: SettleErrorKind, detail: impl Into<String>) -> Self {
        Self {
            kind,
            detail: detail.into(),
        }
    }

    /// The payload is not what this method expects.
    pub fn invalid_payload(detail: impl Into<String>) -> Self {
        Self::new(SettleErrorKind::InvalidPayload, detail)
    }

    /// The provider rejected the proof.
    pub fn verification_failed(detail: impl Into<String>) -> Self {
        Self::new(SettleErrorKind::VerificationFailed, detail)
    }

    /// Less was paid than the price.
    pub fn insufficient(detail: impl Into<String>) -> Self {
        Self::new(SettleErrorKind::Insufficient, detail)
    }

    /// The payer must complete an action first.
    pub fn action_required(detail: impl Into<String>) -> Self {
        Self::new(SettleErrorKind::ActionRequired, detail)
    }

    /// The provider or the network failed.
    pub fn internal(detail: impl Into<String>) -> Self {
        Self::new(SettleErrorKind::Internal, detail)
    }
}

/// A payment method.
///
/// ```
/// use mpp_runtime::{BoxFuture, Price, Rail, RailError, SettleError, SettleRequest, Settlement};
/// use serde_json::{Map, Value};
///
/// /// Accepts vouchers `{"code": "…"}` from an in-house ledger.
/// struct Vouchers;
///
/// impl Rail for Vouchers {
///     fn method(&self) -> &str { "voucher" }
///
///     fn challenge_request(&self, price: &Price) -> Result<Map<String, Value>, RailError> {
///         let mut request = Map::new();
///         request.insert("amount".into(), price.amount.minor_units().to_string().into());
///         request.insert("currency".into(), price.amount.currency().code().to_lowercase().into());
///         Ok(request)
///     }
///
///     fn settle(&self, req: SettleRequest) -> BoxFuture<'_, Result<Settlement, SettleError>> {
///         Box::pin(async move {
///             let code = req.payload.get("code").and_then(Value::as_str)
///                 .ok_or_else(|| SettleError::invalid_payload("missing `code`"))?;
///             // … redeem `code` for exactly the request's amount, idempotently
///             // keyed by `req.idempotency_key` …
///             Ok(Settlement::new(
///                 format!("voucher_{code}"),
///                 req.request.str_field("amount").unwrap_or_default(),
///                 req.request.str_field("currency").unwrap_or_default(),
///             ))
///         })
///     }
/// }
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a payment rail",
    note = "implement `mpp_runtime::Rail` (method, challenge_request, settle) for it"
)]
pub trait Rail: Send + Sync + 'static {
    /// The method name on the wire (lowercase, e.g. `stripe`).
    fn method(&self) -> &str;

    /// The intent this rail settles. Defaults to `charge`.
    fn intent(&self) -> &str {
        "charge"
    }

    /// Checks the rail's own configuration once at startup. Return an error
    /// when challenges would be unpayable or unsafe (no recipient); log and
    /// return `Ok` when only settlement is impossible (a missing API key),
    /// so 402s are still emitted.
    fn check_config(&self) -> Result<(), RailError> {
        Ok(())
    }

    /// The `request` object of this rail's challenge for a price (amount in
    /// the rail's units, currency, recipient, `methodDetails`, …). Called
    /// once per route when the route is prepared; an error there (such as a
    /// price below the provider's minimum) is a startup error.
    fn challenge_request(&self, price: &Price) -> Result<Map<String, Value>, RailError>;

    /// Verifies the credential payload against the rail's source of truth and
    /// settles it. Must succeed only when exactly the request's amount and
    /// currency were paid to the request's recipient, and report them in the
    /// [`Settlement`] in the request's own units.
    ///
    /// The gate settles each challenge at most once, but it cannot know what
    /// a proof is: the rail must make sure one proof pays for one challenge
    /// only (bind it to `idempotency_key`, as a provider idempotency key or a
    /// memo, or consume it, as a claimed transaction hash).
    fn settle(&self, request: SettleRequest) -> BoxFuture<'_, Result<Settlement, SettleError>>;

    /// Whether this rail can authorize a payment before the handler runs and
    /// take it afterwards (`capture = "after"`). Rails that say so implement
    /// [`Rail::authorize`], [`Rail::capture`] and [`Rail::release`]; a route
    /// asking for deferred capture from a rail that cannot is a startup
    /// error.
    fn defers_capture(&self) -> bool {
        false
    }

    /// Like [`Rail::settle`], but only reserves the money (a card
    /// authorization). Must succeed only when exactly the request's amount
    /// and currency are reserved; the [`Settlement`] names the reservation
    /// (its `reference` is what [`Rail::capture`] and [`Rail::release`]
    /// get).
    fn authorize(&self, request: SettleRequest) -> BoxFuture<'_, Result<Settlement, SettleError>> {
        let _ = request;
        Box::pin(async {
            Err(SettleError::internal(
                "this payment method cannot defer capture",
            ))
        })
    }

    /// Takes an authorized payment. Must be idempotent: the gate may retry
    /// it. Returns the captured settlement (its amount and currency are
    /// checked against the challenge again).
    fn capture<'a>(
        &'a self,
        authorization: &'a Settlement,
    ) -> BoxFuture<'a, Result<Settlement, SettleError>> {
        let _ = authorization;
        Box::pin(async {
            Err(SettleError::internal(
                "this payment method cannot defer capture",
            ))
        })
    }

    /// Releases an authorization that will not be captured. Must be
    /// idempotent.
    fn release<'a>(
        &'a self,
        authorization: &'a Settlement,
    ) -> BoxFuture<'a, Result<(), SettleError>> {
        let _ = authorization;
        Box::pin(async {
            Err(SettleError::internal(
                "this payment method cannot defer capture",
            ))
        })
    }

    /// The verifier of this provider's notifications (webhooks), when the
    /// rail has one configured. [`Gate::receive_webhook`](crate::Gate::receive_webhook)
    /// uses it.
    fn webhooks(&self) -> Option<&dyn Webhooks> {
        None
    }
}
