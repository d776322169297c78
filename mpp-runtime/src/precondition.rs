//! Preconditions: named checks that run before any 402 is minted or any
//! payment settled, so an agent is never asked to pay for something that
//! cannot be served (a missing post, a blocked user).
//!
//! Global checks run first, then the route's own, de-duplicated by name, in
//! order; the first rejection wins and the rest do not run. An unknown name is
//! a startup error.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::sync::Arc;

use crate::engine::Route;
use crate::error::ConfigError;
use crate::rail::Price;
use crate::request::RequestView;
use crate::response::Rejection;
use crate::state::State;
use crate::{BoxFuture, suggest};

/// What a precondition sees: the request, the route's resolved price, and the
/// application state registered with the gate.
#[derive(Clone)]
pub struct Check {
    pub(crate) request: Arc<RequestView>,
    pub(crate) route: Route,
    pub(crate) state: Arc<State>,
}

impl Check {
    /// The request.
    pub fn request(&self) -> &RequestView {
        &self.request
    }

    /// A route parameter by name.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.request.param(name)
    }

    /// The first value of a request header.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.request.header(name)
    }

    /// The gated route.
    pub fn route(&self) -> &Route {
        &self.route
    }

    /// The route's resolved price.
    pub fn price(&self) -> &Price {
        self.route.price()
    }

    /// Application state of type `T`, as registered with
    /// [`GateBuilder::state`](crate::GateBuilder::state).
    pub fn state<T: Send + Sync + 'static>(&self) -> Option<&T> {
        self.state.get::<T>()
    }
}

impl fmt::Debug for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Check")
            .field("request", &self.request)
            .field("route", &self.route.id())
            .finish()
    }
}

/// What a precondition may return: `None` (or `Ok(())`) to proceed, a
/// [`Rejection`] to answer with it instead.
pub trait Verdict {
    /// The rejection, if the request must stop here.
    fn into_rejection(self) -> Option<Rejection>;
}

impl Verdict for Option<Rejection> {
    fn into_rejection(self) -> Option<Rejection> {
        self
    }
}

impl Verdict for Result<(), Rejection> {
    fn into_rejection(self) -> Option<Rejection> {
        self.err()
    }
}

/// A check run before the payment gate. Any
/// `async fn(Check) -> Option<Rejection>` (or `-> Result<(), Rejection>`)
/// is one, as is a closure returning such a future.
///
/// ```
/// use mpp_runtime::{Check, Rejection};
///
/// struct Posts(Vec<u64>);
///
/// async fn post_exists(check: Check) -> Result<(), Rejection> {
///     let missing = || Rejection::not_found("No such post.");
///     let id: u64 = check.param("post").and_then(|p| p.parse().ok()).ok_or_else(missing)?;
///     let posts = check
///         .state::<Posts>()
///         .ok_or_else(|| Rejection::problem(500, "Internal Server Error", "no post index"))?;
///     if posts.0.contains(&id) { Ok(()) } else { Err(missing()) }
/// }
/// # fn assert_precondition<P: mpp_runtime::Precondition>(_: P) {}
/// # assert_precondition(post_exists);
/// ```
///
/// With the `Option` form, beware `?` on an `Option`: it returns `None`,
/// which means "proceed". The `Result` form makes `?` reject instead.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a valid precondition",
    label = "expected `async fn(mpp_runtime::Check) -> Option<mpp_runtime::Rejection>`",
    note = "a precondition is an `async fn(check: Check) -> Option<Rejection>` (or `-> Result<(), Rejection>`); \
            `None`/`Ok(())` proceeds to the payment gate, a `Rejection` is sent instead"
)]
pub trait Precondition: Send + Sync + 'static {
    /// Runs the check.
    fn check(&self, check: Check) -> BoxFuture<'static, Option<Rejection>>;
}

impl<F, Fut> Precondition for F
where
    F: Fn(Check) -> Fut + Send + Sync + 'static,
    Fut: Future + Send + 'static,
    Fut::Output: Verdict,
{
    fn check(&self, check: Check) -> BoxFuture<'static, Option<Rejection>> {
        let fut = self(check);
        Box::pin(async move { fut.await.into_rejection() })
    }
}

/// A precondition named by a route: by name (looked up in the gate's
/// registry) or carrying its own function.
#[derive(Clone)]
pub struct PreconditionRef {
    name: String,
    check: Option<Arc<dyn Precondition>>,
}

impl PreconditionRef {
    /// A check registered with the gate under `name`.
    pub fn named(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            check: None,
        }
    }

    /// A check given directly (as `#[paid(preconditions = [path::to::fn])]`
    /// does); `name` identifies it for de-duplication and logs.
    pub fn function(name: impl Into<String>, check: impl Precondition) -> Self {
        Self {
            name: name.into(),
            check: Some(Arc::new(check)),
        }
    }

    /// The name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl fmt::Debug for PreconditionRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PreconditionRef({})", self.name)
    }
}

/// A resolved, ordered list of checks for one route.
pub(crate) type Checks = Vec<(String, Arc<dyn Precondition>)>;

/// Named checks plus the global list.
#[derive(Default, Clone)]
pub(crate) struct Registry {
    checks: HashMap<String, Arc<dyn Precondition>>,
    global: Vec<String>,
}

impl Registry {
    pub(crate) fn register(&mut self, name: String, check: Arc<dyn Precondition>) {
        self.checks.insert(name, check);
    }

    pub(crate) fn set_global(&mut self, names: Vec<String>) {
        self.global = names;
    }

    /// Fails if a global name is unknown.
    pub(crate) fn validate_global(&self) -> Result<(), ConfigError> {
        for name in &self.global {
            self.lookup("global preconditions (MPP_GLOBAL_PRECONDITIONS)", name)?;
        }
        Ok(())
    }

    fn lookup(&self, context: &str, name: &str) -> Result<Arc<dyn Precondition>, ConfigError> {
        self.checks.get(name).cloned().ok_or_else(|| {
            let mut known: Vec<&str> = self.checks.keys().map(String::as_str).collect();
            known.sort_unstable();
            ConfigError::UnknownPrecondition {
                context: context.to_owned(),
                name: name.to_owned(),
                known: if known.is_empty() {
                    "none".to_owned()
                } else {
                    known.join(", ")
                },
                suggestion: suggest::closest(name, known.iter().copied()).map(str::to_owned),
            }
        })
    }

    /// The global checks followed by the route's, de-duplicated by name.
    pub(crate) fn resolve(
        &self,
        context: &str,
        route: &[PreconditionRef],
    ) -> Result<Checks, ConfigError> {
        let mut out: Checks = Vec::with_capacity(self.global.len() + route.len());
        for name in &self.global {
            if !out.iter().any(|(n, _)| n == name) {
                out.push((name.clone(), self.lookup(context, name)?));
            }
        }
        for reference in route {
            if out.iter().any(|(n, _)| *n == reference.name) {
                continue;
            }
            let check = match &reference.check {
                Some(check) => check.clone(),
                None => self.lookup(context, &reference.name)?,
            };
            out.push((reference.name.clone(), check));
        }
        Ok(out)
    }
}
