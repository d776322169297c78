//! The contract between `#[paid]`-generated handlers and the gate, shared by
//! the Rocket and Actix adapters so that neither holds protocol logic.
//!
//! For every annotated handler the macro generates a type implementing
//! [`PaidRoute`] (its [`RouteSpec`], built once), a framework guard or
//! extractor that builds a [`RequestView`], and a body that calls [`admit`]
//! after every other guard and extractor has run, then hands the handler
//! the values it asked for through [`FromGrant`].

use std::sync::{Arc, OnceLock, Weak};

use crate::engine::{Admission, Gate, GateInner, Grant, Route};
use crate::error::ConfigError;
use crate::request::RequestView;
use crate::response::Response;
use crate::spec::RouteSpec;
use crate::wire::{Credential, ProblemType, Receipt, SessionInfo, headers};

/// A handler annotated with `#[paid]`.
pub trait PaidRoute: Send + Sync + 'static {
    /// The route's method, path template, handler name and payment terms.
    fn route_spec() -> &'static RouteSpec;

    /// Whether the handler takes a `Credential` (rather than
    /// `Option<Credential>`): only possible on routes that are not metered,
    /// since session follow-ups carry no credential.
    const NEEDS_CREDENTIAL: bool = false;

    /// Where the route prepared for the gate is kept between requests
    /// (`#[paid]` gives each handler one). `None`: it is looked up in the
    /// gate on every request.
    fn prepared() -> Option<&'static PreparedRoute> {
        None
    }
}

/// The route a `#[paid]` handler prepared for its gate, kept so that later
/// requests skip the gate's route table (no allocation, no shared lock).
/// It belongs to the first gate that prepared it; other gates (tests often
/// build several) look their route up as before.
pub struct PreparedRoute(OnceLock<(Weak<GateInner>, Route)>);

impl PreparedRoute {
    /// An empty slot.
    pub const fn new() -> Self {
        Self(OnceLock::new())
    }

    /// The route kept for `gate`. The `Weak` keeps the first gate's
    /// allocation alive, so no later gate can have its address.
    fn get(&self, gate: &Gate) -> Option<&Route> {
        self.0
            .get()
            .filter(|(owner, _)| std::ptr::eq(owner.as_ptr(), Arc::as_ptr(&gate.0)))
            .map(|(_, route)| route)
    }

    fn keep(&self, gate: &Gate, route: &Route) {
        let _ = self.0.set((Arc::downgrade(&gate.0), route.clone()));
    }
}

impl Default for PreparedRoute {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for PreparedRoute {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("PreparedRoute")
            .field(&self.0.get().map(|(_, route)| route.id()))
            .finish()
    }
}

/// Prepares the route of `R` on `gate`, checking what the handler asks for
/// against the resolved terms. Adapters call this at startup for every paid
/// route, so configuration errors stop the launch.
pub fn prepare<R: PaidRoute>(gate: &Gate) -> Result<Route, ConfigError> {
    let spec = R::route_spec();
    let route = gate.route(spec)?;
    if R::NEEDS_CREDENTIAL && route.grants() > 1 {
        return Err(ConfigError::Invalid(format!(
            "route `{}`: the handler takes `Credential`, but the route is metered (grants = {}) \
             and session follow-ups carry no credential; take `Option<Credential>` instead",
            spec.id(),
            route.grants()
        )));
    }
    Ok(route)
}

/// Decides a request for the handler of `R`: `Ok` with the grant to run the
/// handler, `Err` with the response to send instead.
pub async fn admit<R: PaidRoute>(
    gate: &Gate,
    request: RequestView,
) -> Result<Box<Grant>, Response> {
    let slot = R::prepared();
    let prepared;
    let route = match slot.and_then(|slot| slot.get(gate)) {
        Some(route) => route,
        None => match prepare::<R>(gate) {
            Ok(route) => {
                if let Some(slot) = slot {
                    slot.keep(gate, &route);
                }
                prepared = route;
                &prepared
            }
            Err(e) => {
                tracing::error!(route = %R::route_spec().id(), error = %e, "a paid route is misconfigured; refusing access");
                return Err(internal_error("This payment route is misconfigured."));
            }
        },
    };
    match gate.admit(route, request).await {
        Admission::Granted(grant) => Ok(grant),
        Admission::Denied(response) => Err(response),
    }
}

/// A 500 problem for a server that cannot gate a route (missing setup, a
/// misconfigured route). No challenge can be minted, and nothing is granted.
pub fn internal_error(detail: &str) -> Response {
    let body = crate::wire::problem::problem_json(ProblemType::InternalPaymentError, detail, None);
    Response::new(ProblemType::InternalPaymentError.status())
        .with_header(headers::CACHE_CONTROL, "no-store")
        .with_body(headers::PROBLEM_JSON, body)
}

/// A value a paid handler can take as a parameter, read from the grant.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be taken from a payment",
    note = "a #[paid] handler can take `Receipt`, `Credential`, `Option<Credential>` or `Option<SessionInfo>`"
)]
pub trait FromGrant: Sized {
    /// The value, or `None` when this grant does not carry it.
    fn from_grant(grant: &Grant) -> Option<Self>;
}

impl FromGrant for Receipt {
    fn from_grant(grant: &Grant) -> Option<Self> {
        Some(grant.receipt().clone())
    }
}

impl FromGrant for Credential {
    fn from_grant(grant: &Grant) -> Option<Self> {
        grant.credential().cloned()
    }
}

impl FromGrant for Option<Credential> {
    fn from_grant(grant: &Grant) -> Option<Self> {
        Some(grant.credential().cloned())
    }
}

impl FromGrant for Option<SessionInfo> {
    fn from_grant(grant: &Grant) -> Option<Self> {
        Some(grant.session().cloned())
    }
}

/// Takes a handler parameter from the grant; a value the grant cannot
/// provide (which startup checks rule out) is a 500, never a panic.
pub fn take<T: FromGrant>(grant: &Grant, route: &str) -> Result<T, Response> {
    T::from_grant(grant).ok_or_else(|| {
        tracing::error!(
            route,
            "a paid handler asked for a value this payment does not carry"
        );
        internal_error("An internal payment error occurred.")
    })
}

/// The problem for a request that reached a paid handler on a server where
/// the payment runtime was never set up. The message says what to do.
pub fn missing_runtime(setup: &str) -> Response {
    tracing::error!(
        "a #[paid] route was called but the payment runtime is not configured: {setup}"
    );
    internal_error("The payment runtime is not configured on this server.")
}
