//! What a route declares about its price (`#[paid(...)]` builds one of
//! these), the price book, and the defaults that fill the gaps.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::Deserialize;

use crate::precondition::PreconditionRef;

/// The payment terms a route declares. Every field is optional: what is left
/// out comes from the price book (`price`) or the configured defaults.
///
/// ```
/// use mpp_runtime::PaymentSpec;
/// let spec = PaymentSpec::new()
///     .amount("5.00")
///     .currency("USD")
///     .grants(10)
///     .scope("report.basic")
///     .method("stripe");
/// assert_eq!(spec.grants, Some(10));
/// ```
#[derive(Debug, Clone, Default)]
pub struct PaymentSpec {
    /// Decimal amount in the currency's major unit (`"5.00"`).
    pub amount: Option<String>,
    /// ISO 4217 code (`"USD"`).
    pub currency: Option<String>,
    /// Accesses one payment buys (more than 1 makes a metered session).
    pub grants: Option<u32>,
    /// The label sessions are locked to.
    pub scope: Option<String>,
    /// Offered methods, primary first.
    pub methods: Vec<String>,
    /// A price-book key (sets amount, currency and grants).
    pub price: Option<String>,
    /// Checks to run before the gate, after the global ones.
    pub preconditions: Vec<PreconditionRef>,
    /// A human-readable description for the challenge.
    pub description: Option<String>,
    /// When the payment is taken (default: the configured default, else
    /// [`Capture::Immediate`]).
    pub capture: Option<Capture>,
}

/// When a payment is taken.
///
/// ```
/// use mpp_runtime::Capture;
/// assert_eq!("after".parse::<Capture>(), Ok(Capture::After));
/// assert!("later".parse::<Capture>().is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Capture {
    /// Settle before the handler runs (every rail supports it).
    #[default]
    Immediate,
    /// Only authorize before the handler runs; capture when it answers 2xx
    /// and release the authorization otherwise (an error status, a panic, a
    /// client that went away). Rails that settle at once (on-chain
    /// transfers) cannot do this. On metered routes the payment is captured
    /// when the session is created, before the first access.
    After,
}

impl Capture {
    /// The spelling used in `#[paid(capture = "…")]` and `MPP_CAPTURE`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Immediate => "immediate",
            Self::After => "after",
        }
    }
}

impl fmt::Display for Capture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A capture mode that is neither `immediate` nor `after`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("capture must be \"immediate\" or \"after\", not {0:?}")]
pub struct UnknownCapture(pub String);

impl FromStr for Capture {
    type Err = UnknownCapture;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.trim() {
            "immediate" => Ok(Self::Immediate),
            "after" => Ok(Self::After),
            other => Err(UnknownCapture(other.to_owned())),
        }
    }
}

impl PaymentSpec {
    /// An empty spec: everything from defaults.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the amount.
    pub fn amount(mut self, amount: impl Into<String>) -> Self {
        self.amount = Some(amount.into());
        self
    }

    /// Sets the currency.
    pub fn currency(mut self, currency: impl Into<String>) -> Self {
        self.currency = Some(currency.into());
        self
    }

    /// Sets the number of accesses one payment buys.
    pub fn grants(mut self, grants: u32) -> Self {
        self.grants = Some(grants);
        self
    }

    /// Sets the scope.
    pub fn scope(mut self, scope: impl Into<String>) -> Self {
        self.scope = Some(scope.into());
        self
    }

    /// Adds an offered method (the first added is the primary).
    pub fn method(mut self, method: impl Into<String>) -> Self {
        self.methods.push(method.into());
        self
    }

    /// Uses a price-book entry.
    pub fn price(mut self, key: impl Into<String>) -> Self {
        self.price = Some(key.into());
        self
    }

    /// Adds a precondition.
    pub fn precondition(mut self, precondition: PreconditionRef) -> Self {
        self.preconditions.push(precondition);
        self
    }

    /// Sets the description.
    pub fn description(mut self, description: impl Into<String>) -> Self {
        self.description = Some(description.into());
        self
    }

    /// Sets when the payment is taken.
    pub fn capture(mut self, capture: Capture) -> Self {
        self.capture = Some(capture);
        self
    }
}

/// A route's identity plus its payment terms.
#[derive(Debug, Clone)]
pub struct RouteSpec {
    /// The HTTP method of the route (`GET`).
    pub method: String,
    /// The route's path template as the framework writes it (`/posts/<id>`).
    pub path: String,
    /// The handler's full path (`my_app::api::report`), when known: it
    /// tells apart handlers that share a method and relative path.
    pub handler: Option<String>,
    /// The payment terms.
    pub spec: PaymentSpec,
}

impl RouteSpec {
    /// A route spec.
    pub fn new(method: impl Into<String>, path: impl Into<String>, spec: PaymentSpec) -> Self {
        Self {
            method: method.into(),
            path: path.into(),
            handler: None,
            spec,
        }
    }

    /// Names the handler (see [`RouteSpec::handler`]).
    pub fn with_handler(mut self, handler: impl Into<String>) -> Self {
        self.handler = Some(handler.into());
        self
    }

    /// The identity bound into every challenge for the route, so a credential
    /// paid on one route is refused on another: `"GET /posts/<id>"`, followed
    /// by the handler's path when known.
    pub fn id(&self) -> String {
        match &self.handler {
            Some(handler) => format!(
                "{} {} {handler}",
                self.method.to_ascii_uppercase(),
                self.path
            ),
            None => format!("{} {}", self.method.to_ascii_uppercase(), self.path),
        }
    }
}

/// A named price preset. Its key is the default scope of routes using it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PriceEntry {
    /// Decimal amount.
    pub amount: String,
    /// ISO 4217 code; the default currency if absent.
    #[serde(default)]
    pub currency: Option<String>,
    /// Accesses per payment; the default grants if absent.
    #[serde(default)]
    pub grants: Option<u32>,
    /// Offered methods; the default method if absent.
    #[serde(default)]
    pub methods: Option<Vec<String>>,
    /// Description for the challenge.
    #[serde(default)]
    pub description: Option<String>,
}

impl PriceEntry {
    /// An entry with an amount and everything else defaulted.
    pub fn new(amount: impl Into<String>) -> Self {
        Self {
            amount: amount.into(),
            currency: None,
            grants: None,
            methods: None,
            description: None,
        }
    }

    /// Sets the currency.
    pub fn currency(mut self, currency: impl Into<String>) -> Self {
        self.currency = Some(currency.into());
        self
    }

    /// Sets the grants.
    pub fn grants(mut self, grants: u32) -> Self {
        self.grants = Some(grants);
        self
    }

    /// Adds a method.
    pub fn method(mut self, method: impl Into<String>) -> Self {
        self.methods
            .get_or_insert_with(Vec::new)
            .push(method.into());
        self
    }
}

/// Named price presets.
pub type PriceBook = BTreeMap<String, PriceEntry>;
