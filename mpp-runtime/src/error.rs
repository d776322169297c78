//! Startup errors. Everything here stops the service from starting, with a
//! message that says exactly what to set: misconfiguration fails closed.

use thiserror::Error;

use crate::binding::SecretTooShort;
use crate::price::{AmountError, CurrencyError, GrantsError, ScopeError};
use crate::rail::RailError;

/// A configuration problem found at startup (or when a route is prepared).
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// No challenge secret.
    #[error(
        "no challenge secret: set MPP_SECRET_KEY to a random value of at least 32 bytes \
         (e.g. `openssl rand -base64 48`), or call ConfigBuilder::secret"
    )]
    MissingSecret,
    /// The challenge secret is too short.
    #[error(transparent)]
    SecretTooShort(#[from] SecretTooShort),
    /// No realm.
    #[error(
        "no realm: set MPP_REALM to the host name clients pay (e.g. `api.example.com`), \
         or call ConfigBuilder::realm"
    )]
    MissingRealm,
    /// An environment variable or setting has an unusable value.
    #[error("{name} = {value:?} is invalid: {reason}")]
    InvalidSetting {
        /// The variable or setting.
        name: String,
        /// Its value (never a secret).
        value: String,
        /// Why.
        reason: String,
    },
    /// A setting is not a valid realm or header name.
    #[error("{0}")]
    Invalid(String),
    /// Two rails claim the same method name.
    #[error("two payment rails are registered for method `{0}`")]
    DuplicateRail(String),
    /// A rail's own configuration makes its challenges unpayable or unsafe.
    #[error("payment method `{method}` is misconfigured: {source}")]
    Rail {
        /// The method.
        method: String,
        /// What the rail reported.
        #[source]
        source: RailError,
    },
    /// The store the settings name could not be opened, or is ambiguous.
    #[error("MPP_STORE = {store:?}: {reason}")]
    Store {
        /// The store setting, without credentials.
        store: String,
        /// What went wrong and what to do.
        reason: String,
    },
    /// A route or default names a method no rail provides.
    #[error("{context}: unknown payment method `{method}` (registered: {known}){}", hint(.suggestion))]
    UnknownMethod {
        /// Where it was named.
        context: String,
        /// The name.
        method: String,
        /// Registered methods.
        known: String,
        /// The closest registered name.
        suggestion: Option<String>,
    },
    /// No method for a route and no way to choose one.
    #[error(
        "{0}: no payment method; name one on the route (`method = \"…\"`), set \
         MPP_DEFAULT_METHOD, or register exactly one rail"
    )]
    NoMethod(String),
    /// A route has no price and there is no default.
    #[error(
        "{0}: no amount; set `amount` on the route, use a price-book entry (`price = \"…\"`), \
         or set MPP_DEFAULT_AMOUNT"
    )]
    NoAmount(String),
    /// A route names a price-book key that does not exist.
    #[error("{context}: unknown price-book entry `{key}`{}", hint(.suggestion))]
    UnknownPrice {
        /// The route.
        context: String,
        /// The key.
        key: String,
        /// The closest key.
        suggestion: Option<String>,
    },
    /// A route names a price-book key and also an amount or currency.
    #[error("{0}: `price` already sets the amount and currency; remove `amount`/`currency`")]
    PriceWithAmount(String),
    /// A precondition name is not registered.
    #[error("{context}: unknown precondition `{name}` (registered: {known}){}", hint(.suggestion))]
    UnknownPrecondition {
        /// Where it was named.
        context: String,
        /// The name.
        name: String,
        /// Registered names.
        known: String,
        /// The closest registered name.
        suggestion: Option<String>,
    },
    /// An amount does not parse.
    #[error("{context}: amount {text:?}: {source}")]
    Amount {
        /// Where.
        context: String,
        /// The text.
        text: String,
        /// Why.
        #[source]
        source: AmountError,
    },
    /// A currency code is unknown.
    #[error("{context}: {source}")]
    Currency {
        /// Where.
        context: String,
        /// Why.
        #[source]
        source: CurrencyError,
    },
    /// A scope is invalid.
    #[error("{context}: scope {scope:?}: {source}")]
    Scope {
        /// Where.
        context: String,
        /// The scope.
        scope: String,
        /// Why.
        #[source]
        source: ScopeError,
    },
    /// A grant count is invalid.
    #[error("{context}: {source}")]
    Grants {
        /// Where.
        context: String,
        /// Why.
        #[source]
        source: GrantsError,
    },
    /// Two routes share a scope but not a price, so one route's sessions
    /// would be spendable on the other at the wrong price.
    #[error(
        "scope `{scope}` is priced {first} on {first_route} but {second} on {second_route}; \
         metered sessions are locked to a scope, so give these routes different scopes"
    )]
    ScopeConflict {
        /// The scope.
        scope: String,
        /// The first route.
        first_route: String,
        /// Its terms.
        first: String,
        /// The second route.
        second_route: String,
        /// Its terms.
        second: String,
    },
}

fn hint(suggestion: &Option<String>) -> String {
    suggestion
        .as_ref()
        .map(|s| format!("; did you mean `{s}`?"))
        .unwrap_or_default()
}
