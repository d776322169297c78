//! The contract between `#[paid]`-generated handlers and the gate, shared by
//! the Rocket and Actix adapters so that neither holds protocol logic.
//!
//! For every annotated handler the macro generates a type implementing
//! [`PaidRoute`] (its [`RouteSpec`], built once), a framework guard or
//! extractor that builds a [`RequestView`], and a body that calls [`admit`]
//! after every other guard and extractor has run, then hands the handler
//! the values it asked for through [`FromGrant`].

use std::borrow::Cow;
use std::sync::{Arc, OnceLock, Weak};

use crate::engine::{Admission, Gate, GateInner, Grant, Read, Route};
use crate::error::ConfigError;
use crate::request::RequestView;
use crate::response::Response;
use crate::spec::RouteSpec;
use crate::wire::{Authorization, Credential, ProblemType, Receipt, SessionInfo, headers};

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

/// The route of `R` on `gate`: the one the handler kept, or prepared now
/// (and kept). A misconfigured route is a 500, never access.
fn route_of<R: PaidRoute>(gate: &Gate) -> Result<Route, Response> {
    let slot = R::prepared();
    if let Some(route) = slot.and_then(|slot| slot.get(gate)) {
        return Ok(route.clone());
    }
    match prepare::<R>(gate) {
        Ok(route) => {
            if let Some(slot) = slot {
                slot.keep(gate, &route);
            }
            Ok(route)
        }
        Err(e) => {
            tracing::error!(route = %R::route_spec().id(), error = %e, "a paid route is misconfigured; refusing access");
            Err(internal_error("This payment route is misconfigured."))
        }
    }
}

/// Decides a request for the handler of `R`: `Ok` with the grant to run the
/// handler, `Err` with the response to send instead.
pub async fn admit<R: PaidRoute>(
    gate: &Gate,
    request: RequestView,
) -> Result<Box<Grant>, Response> {
    let route = route_of::<R>(gate)?;
    match gate.admit(&route, request).await {
        Admission::Granted(grant) => Ok(grant),
        Admission::Denied(response) => Err(response),
    }
}

/// A framework's request, as [`intake`] reads it: the credential header in
/// place, and a whole [`RequestView`] only when something keeps the request
/// (a precondition, a settlement). A 402 or a session spend never copies
/// the request.
pub trait RequestSource {
    /// Every value of the header `name` (ASCII case-insensitive), in order.
    /// A value that is not UTF-8 is given lossily (it then fails to parse
    /// as a credential, as it should).
    fn header_values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = Cow<'a, str>> + 'a;

    /// The whole request.
    fn view(&self) -> RequestView;
}

/// A request taken in for a paid handler by [`intake`], to be decided by
/// [`decide`] once every other guard or extractor has run.
pub struct Intake(Result<(Route, Taken), Response>);

enum Taken {
    /// The route has preconditions: they see the whole request first
    /// (boxed, so that the common case's futures stay small).
    Whole(Box<RequestView>),
    /// The credential header, read.
    Read(Read),
}

impl std::fmt::Debug for Intake {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = match &self.0 {
            Ok((_, Taken::Whole(_))) => "whole request",
            Ok((_, Taken::Read(Read::Missing))) => "no credential",
            Ok((_, Taken::Read(Read::Malformed(_)))) => "malformed credential",
            Ok((_, Taken::Read(Read::Session(_)))) => "session",
            Ok((_, Taken::Read(Read::Credential(..)))) => "credential",
            Err(_) => "refused",
        };
        f.debug_tuple("Intake").field(&state).finish()
    }
}

/// Reads what the gate needs of `request` for the handler of `R`, without
/// waiting on anything: the route, and either the parsed credential header
/// (with the whole request only for a credential to settle) or, on a route
/// with preconditions, the whole request.
pub fn intake<R: PaidRoute>(gate: &Gate, request: &impl RequestSource) -> Intake {
    Intake(route_of::<R>(gate).map(|route| {
        let taken = if route.has_preconditions() {
            Taken::Whole(Box::new(request.view()))
        } else {
            let authorization =
                Authorization::from_values(request.header_values(gate.credential_header()));
            Taken::Read(Read::new(authorization, || Arc::new(request.view())))
        };
        (route, taken)
    }))
}

/// Decides a request [`intake`] took in: `Ok` with the grant to run the
/// handler, `Err` with the response to send instead.
pub async fn decide(gate: &Gate, intake: Intake) -> Result<Box<Grant>, Response> {
    let admission = match intake.0? {
        // Boxed: the whole request and the preconditions' state are kept
        // out of the common path's future.
        (route, Taken::Whole(request)) => Box::pin(gate.admit(&route, *request)).await,
        (route, Taken::Read(read)) => gate.admit_read(&route, read).await,
    };
    match admission {
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
