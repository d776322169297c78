//! The payment gate: everything between an incoming request and either the
//! handler (with a receipt) or a problem response (with a fresh challenge).

mod admit;
mod capture;
mod pending;
mod reconcile;
mod route;
pub mod verify;

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::{Arc, RwLock};
use std::time::Duration;

pub(crate) use admit::Read;
pub use route::Route;

use crate::clock::{Clock, SystemClock};
use crate::config::{Config, ConfigBuilder, Settings};
use crate::error::ConfigError;
use crate::events::{Event, Hook};
use crate::precondition::{Precondition, Registry};
use crate::rail::Rail;
use crate::request::RequestView;
use crate::response::Response;
use crate::spec::RouteSpec;
use crate::state::State;
use crate::store::{MemoryStore, Store};
use crate::suggest;
use crate::wire::{Credential, EncodedReceipt, Problem, Receipt, SessionInfo, headers};

/// The outcome of [`Gate::admit`].
#[derive(Debug)]
pub enum Admission {
    /// Paid (or a session credit spent): run the handler, then add
    /// [`Grant::headers`] to its response.
    Granted(Box<Grant>),
    /// Send this response instead of running the handler: a 402 with fresh
    /// challenges, another payment problem, or a precondition's rejection.
    Denied(Response),
}

/// Access granted by a payment or a session credit.
///
/// On a `capture = "after"` route the payment is only authorized: call
/// [`Grant::complete`] with the handler's status to capture it (2xx) or
/// release it (anything else). Until it is captured, [`Grant::headers`]
/// yields nothing, so no receipt is ever sent for money not taken; a grant
/// dropped undecided releases its authorization.
pub struct Grant {
    pub(crate) receipt: EncodedReceipt,
    pub(crate) credential: Option<Credential>,
    pub(crate) session: Option<SessionInfo>,
    pub(crate) session_header: Option<String>,
    pub(crate) deferred: Option<Box<capture::Deferred>>,
    /// The authorization was released: nothing was paid.
    pub(crate) released: bool,
}

impl fmt::Debug for Grant {
    /// The credential and session show redacted; the header values (which
    /// carry the session id) are left out.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Grant")
            .field("receipt", &self.receipt)
            .field("credential", &self.credential)
            .field("session", &self.session)
            .field("awaiting_capture", &self.deferred.is_some())
            .field("released", &self.released)
            .finish()
    }
}

impl Grant {
    pub(crate) fn new(
        receipt: EncodedReceipt,
        credential: Option<Credential>,
        session: Option<SessionInfo>,
    ) -> Self {
        Self {
            session_header: session.as_ref().map(SessionInfo::to_header),
            receipt,
            credential,
            session,
            deferred: None,
            released: false,
        }
    }

    pub(crate) fn deferred(mut self, deferred: capture::Deferred) -> Self {
        self.deferred = Some(Box::new(deferred));
        self
    }

    /// Whether the payment is authorized and waits for [`Grant::complete`]
    /// (`capture = "after"`).
    pub fn awaits_capture(&self) -> bool {
        self.deferred.is_some()
    }

    /// Finishes the payment once the handler's response status is known.
    /// On a `capture = "after"` route, a 2xx status captures the payment
    /// and any other status releases the authorization; elsewhere this does
    /// nothing. `Err` carries the response to send instead of the
    /// handler's: the capture failed (the authorization is released and
    /// nothing is charged), so the handler's answer must not be delivered.
    pub async fn complete(&mut self, status: u16) -> Result<(), Response> {
        let Some(deferred) = self.deferred.take() else {
            return Ok(());
        };
        // The provider calls are boxed: their state is large, and every
        // paid handler's future would otherwise carry it.
        if (200..300).contains(&status) {
            let captured = Box::pin(deferred.capture()).await;
            self.released = captured.is_err();
            captured
        } else {
            Box::pin(deferred.release(format!("the handler answered {status}"))).await;
            self.released = true;
            Ok(())
        }
    }

    /// The receipt of the payment (for a session credit, the payment that
    /// bought the session).
    pub fn receipt(&self) -> &Receipt {
        &self.receipt
    }

    /// The credential, when this request carried the payment itself.
    pub fn credential(&self) -> Option<&Credential> {
        self.credential.as_ref()
    }

    /// The metered session after this request, on metered routes.
    pub fn session(&self) -> Option<&SessionInfo> {
        self.session.as_ref()
    }

    /// The headers to add to the handler's response: `Payment-Receipt`, and
    /// `Payment-Session` on metered routes. Also set `Cache-Control` with
    /// [`private_cache_control`](crate::response::private_cache_control).
    /// Empty while a deferred payment awaits capture and after it was
    /// released.
    pub fn headers(&self) -> impl Iterator<Item = (&'static str, &str)> {
        let paid = self.payment_headers();
        let receipt = paid.map(|p| (headers::PAYMENT_RECEIPT, p.receipt.header()));
        let session = paid
            .and_then(|p| p.session)
            .map(|h| (headers::PAYMENT_SESSION, h));
        receipt.into_iter().chain(session)
    }

    /// The payment headers by kind, for adapters that keep their own form
    /// of the receipt header ([`EncodedReceipt::cached`]); `None` exactly
    /// when [`Grant::headers`] yields nothing.
    pub fn payment_headers(&self) -> Option<PaymentHeaders<'_>> {
        (self.deferred.is_none() && !self.released).then_some(PaymentHeaders {
            receipt: &self.receipt,
            session: self.session_header.as_deref(),
        })
    }

    /// The receipt, credential and session, by value. A deferred payment
    /// still awaiting capture is released.
    pub fn into_parts(self) -> (Receipt, Option<Credential>, Option<SessionInfo>) {
        (self.receipt.into_receipt(), self.credential, self.session)
    }
}

/// The headers a paid response carries (see [`Grant::payment_headers`]).
#[derive(Debug, Clone, Copy)]
pub struct PaymentHeaders<'a> {
    /// The `Payment-Receipt` value, encoded once.
    pub receipt: &'a EncodedReceipt,
    /// The `Payment-Session` value, on metered routes.
    pub session: Option<&'a str>,
}

pub(crate) struct GateInner {
    pub(crate) config: Config,
    pub(crate) rails: BTreeMap<String, Arc<dyn Rail>>,
    pub(crate) store: Arc<dyn Store>,
    pub(crate) preconditions: Registry,
    pub(crate) hooks: Vec<Hook>,
    pub(crate) state: Arc<State>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) nonces: crate::random::NonceSource,
    routes: RwLock<HashMap<String, Route>>,
    /// Paid sessions the store refused, written in the background.
    pub(crate) pending: pending::PendingSessions,
}

impl GateInner {
    pub(crate) fn rail(&self, context: &str, method: &str) -> Result<Arc<dyn Rail>, ConfigError> {
        self.rails
            .get(method)
            .cloned()
            .ok_or_else(|| ConfigError::UnknownMethod {
                context: context.to_owned(),
                method: method.to_owned(),
                known: self.known_methods(),
                suggestion: suggest::closest(method, self.rails.keys().map(String::as_str))
                    .map(str::to_owned),
            })
    }

    fn known_methods(&self) -> String {
        if self.rails.is_empty() {
            "none".to_owned()
        } else {
            self.rails.keys().cloned().collect::<Vec<_>>().join(", ")
        }
    }

    pub(crate) fn emit(&self, event: &Event<'_>) {
        if !self.hooks.is_empty() {
            crate::events::emit(&self.hooks, event);
        }
    }

    /// How long a settlement lock is held at most.
    pub(crate) fn lock_ttl(&self) -> Duration {
        self.config.settlement_timeout + Duration::from_secs(30)
    }
}

/// The payment gate: one per application, shared by every gated route.
/// Cheap to clone.
///
/// ```
/// # use mpp_runtime::*;
/// # use serde_json::{Map, Value};
/// # struct Card;
/// # impl Rail for Card {
/// #     fn method(&self) -> &str { "card" }
/// #     fn challenge_request(&self, p: &Price) -> Result<Map<String, Value>, RailError> {
/// #         let mut m = Map::new();
/// #         m.insert("amount".into(), p.amount.minor_units().to_string().into());
/// #         Ok(m)
/// #     }
/// #     fn settle(&self, _: SettleRequest) -> BoxFuture<'_, Result<Settlement, SettleError>> {
/// #         Box::pin(async { Err(SettleError::verification_failed("declined")) })
/// #     }
/// # }
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let config = Config::builder()
///     .secret("a-secret-of-at-least-thirty-two-bytes!")
///     .realm("api.example.com")
///     .build()?;
/// let gate = Gate::builder(config).rail(Card).build()?;
/// let route = gate.route(&RouteSpec::new("GET", "/report", PaymentSpec::new().amount("5.00")))?;
///
/// match gate.admit(&route, RequestView::new("GET", "/report")).await {
///     Admission::Denied(response) => {
///         assert_eq!(response.status, 402);
///         assert!(response.header("www-authenticate").unwrap().starts_with("Payment id="));
///     }
///     Admission::Granted(_) => unreachable!("no credential was sent"),
/// }
/// # Ok::<(), ConfigError>(()) }).unwrap();
/// ```
#[derive(Clone)]
pub struct Gate(pub(crate) Arc<GateInner>);

impl fmt::Debug for Gate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Gate")
            .field("config", &self.0.config)
            .field("methods", &self.0.rails.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Gate {
    /// Starts building a gate with a validated configuration.
    pub fn builder(config: Config) -> GateBuilder {
        Self::with_config(PendingConfig::Built(Box::new(config)))
    }

    /// Starts building a gate whose configuration is validated by
    /// [`GateBuilder::build`], after the settings a framework reads from its
    /// own config system and the environment are overlaid with
    /// [`GateBuilder::overlay`].
    pub fn configure(config: ConfigBuilder) -> GateBuilder {
        Self::with_config(PendingConfig::Pending(Box::new(config)))
    }

    fn with_config(config: PendingConfig) -> GateBuilder {
        GateBuilder {
            config,
            rails: Vec::new(),
            store: None,
            store_from_settings: false,
            registry: Registry::default(),
            hooks: Vec::new(),
            state: State::default(),
            clock: Arc::new(SystemClock),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.0.config
    }

    /// The registered payment methods.
    pub fn methods(&self) -> impl Iterator<Item = &str> {
        self.0.rails.keys().map(String::as_str)
    }

    /// Prepares (once) and returns the route for `spec`. Errors are
    /// configuration errors: call this for every route at startup
    /// (see [`Gate::prepare_all`]) so they stop the launch.
    ///
    /// Routes are cached by [`RouteSpec::id`]; one id has one spec.
    pub fn route(&self, spec: &RouteSpec) -> Result<Route, ConfigError> {
        let id = spec.id();
        if let Some(route) = self.read_routes().get(&id) {
            return Ok(route.clone());
        }
        let route = Route(Arc::new(route::prepare(&self.0, spec)?));
        let mut routes = self
            .0
            .routes
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(existing) = routes.get(&id) {
            return Ok(existing.clone());
        }
        if let Some(other) = routes
            .values()
            .find(|r| r.0.price.scope == route.0.price.scope && r.0.terms != route.0.terms)
        {
            return Err(ConfigError::ScopeConflict {
                scope: route.0.price.scope.clone(),
                first_route: other.0.id.clone(),
                first: other.0.terms.clone(),
                second_route: route.0.id.clone(),
                second: route.0.terms.clone(),
            });
        }
        routes.insert(id, route.clone());
        Ok(route)
    }

    /// Prepares every route, stopping at the first configuration error.
    pub fn prepare_all<'a>(
        &self,
        specs: impl IntoIterator<Item = &'a RouteSpec>,
    ) -> Result<(), ConfigError> {
        for spec in specs {
            self.route(spec)?;
        }
        Ok(())
    }

    /// A prepared route by id, if [`Gate::route`] prepared it.
    pub fn prepared(&self, id: &str) -> Option<Route> {
        self.read_routes().get(id).cloned()
    }

    fn read_routes(&self) -> std::sync::RwLockReadGuard<'_, HashMap<String, Route>> {
        self.0
            .routes
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Decides one request: runs the preconditions, then spends a session
    /// credit, verifies and settles a credential, or answers with a 402.
    ///
    /// Must run inside a Tokio runtime with timers enabled (Rocket's and
    /// Actix's are): settlement runs in a task of its own under a timeout.
    /// Elsewhere, a paid retry is refused with a 500 problem.
    pub async fn admit(&self, route: &Route, request: RequestView) -> Admission {
        admit::admit(&self.0, route, request).await
    }

    /// Decides a request whose credential header was already read (routes
    /// without preconditions; see [`crate::handler::intake`]).
    pub(crate) async fn admit_read(&self, route: &Route, read: admit::Read) -> Admission {
        admit::decide(&self.0, route, read).await
    }

    /// The header the credential travels in (`Authorization` unless
    /// configured otherwise).
    pub(crate) fn credential_header(&self) -> &str {
        self.0.config.credential_header()
    }

    /// Checks a credential against `route` without settling it: the HMAC
    /// binding, the route pinning and expiry. (Replay is judged at
    /// settlement, by [`Gate::admit`].) The error is the problem `admit`
    /// would answer with.
    pub fn verify_credential(&self, route: &Route, credential: &Credential) -> Result<(), Problem> {
        admit::check_credential(&self.0, &route.0, &credential.challenge).map(|_| ())
    }

    /// A 402 with fresh challenges for `route` (no credential involved).
    pub fn challenge(&self, route: &Route) -> Response {
        admit::payment_required(&self.0, route)
    }
}

enum PendingConfig {
    Built(Box<Config>),
    Pending(Box<ConfigBuilder>),
    /// Settings were overlaid on an already validated configuration.
    Overlaid,
}

fn store_conflict(spec: &str) -> ConfigError {
    ConfigError::Store {
        store: crate::wire::redact_url(spec),
        reason: "a store was also set in code (`GateBuilder::store`); keep one: unset MPP_STORE \
                 (and the `store` setting) or stop setting the store in code"
            .into(),
    }
}

/// Builds a [`Gate`].
pub struct GateBuilder {
    config: PendingConfig,
    rails: Vec<Arc<dyn Rail>>,
    store: Option<Arc<dyn Store>>,
    /// The store was opened from the settings by [`GateBuilder::open_store`].
    store_from_settings: bool,
    registry: Registry,
    hooks: Vec<Hook>,
    state: State,
    clock: Arc<dyn Clock>,
}

impl fmt::Debug for GateBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let config: &dyn fmt::Debug = match &self.config {
            PendingConfig::Built(config) => config,
            PendingConfig::Pending(builder) => builder,
            PendingConfig::Overlaid => &"<invalid: settings overlaid on a built Config>",
        };
        f.debug_struct("GateBuilder")
            .field("config", config)
            .field(
                "rails",
                &self
                    .rails
                    .iter()
                    .map(|r| r.method().to_owned())
                    .collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl GateBuilder {
    /// Overlays settings (fields set in `settings` win) on a configuration
    /// started with [`Gate::configure`]. Overlaying a validated [`Config`]
    /// (from [`Gate::builder`]) makes [`GateBuilder::build`] fail, since the
    /// settings would be silently lost.
    pub fn overlay(mut self, settings: Settings) -> Self {
        self.config = match self.config {
            PendingConfig::Pending(builder) => {
                PendingConfig::Pending(Box::new(builder.merge(settings)))
            }
            unchanged if settings == Settings::default() => unchanged,
            PendingConfig::Built(_) | PendingConfig::Overlaid => PendingConfig::Overlaid,
        };
        self
    }

    /// Registers a payment rail.
    pub fn rail(self, rail: impl Rail) -> Self {
        self.rail_arc(Arc::new(rail))
    }

    /// Registers a shared payment rail.
    pub fn rail_arc(mut self, rail: Arc<dyn Rail>) -> Self {
        self.rails.push(rail);
        self
    }

    /// Opens the store the settings name (`store` in the framework's
    /// configuration, or `MPP_STORE`, with `MPP_STORE_PREFIX`; see
    /// [`store::open`](crate::store::open)) and uses it. Without such a
    /// setting, or with `memory`, nothing changes. Call it after the last
    /// [`GateBuilder::overlay`]; the Rocket fairing and `mpp_actix::Mpp::connect`
    /// do. A store that cannot be opened, or one set in code with
    /// [`GateBuilder::store`] while the settings also name one, is an error.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// use mpp_runtime::{ConfigBuilder, Gate, Settings};
    /// let settings = Settings { store: Some("memory".into()), ..Settings::default() };
    /// let gate = Gate::configure(ConfigBuilder::default().secret("x".repeat(32)).realm("api.example.com"))
    ///     .overlay(settings)
    ///     .open_store()
    ///     .await?
    ///     .build()?;
    /// # Ok::<(), mpp_runtime::ConfigError>(())
    /// # }).unwrap();
    /// ```
    pub async fn open_store(mut self) -> Result<Self, ConfigError> {
        let (spec, prefix) = match &self.config {
            PendingConfig::Pending(builder) => {
                let s = builder.settings();
                (s.store.clone(), s.store_prefix.clone())
            }
            PendingConfig::Built(config) => (
                config.store().map(str::to_owned),
                config.store_prefix().map(str::to_owned),
            ),
            PendingConfig::Overlaid => return Ok(self),
        };
        let Some(spec) = spec.filter(|s| !matches!(s.trim(), "" | "memory")) else {
            return Ok(self);
        };
        if self.store.is_some() {
            return Err(store_conflict(&spec));
        }
        let store = crate::store::open(&spec, prefix.as_deref())
            .await
            .map_err(|e| ConfigError::Store {
                store: crate::wire::redact_url(&spec),
                reason: e.0,
            })?;
        tracing::info!(store = %crate::wire::redact_url(&spec), "mpp: store opened");
        self.store = Some(store);
        self.store_from_settings = true;
        Ok(self)
    }

    /// Uses `store` for replay protection, settlement locks and sessions
    /// (default: a [`MemoryStore`], or what the settings name, opened by
    /// [`GateBuilder::open_store`]).
    pub fn store(self, store: impl Store) -> Self {
        self.store_arc(Arc::new(store))
    }

    /// Uses a shared store.
    pub fn store_arc(mut self, store: Arc<dyn Store>) -> Self {
        self.store = Some(store);
        self
    }

    /// Registers a named precondition.
    pub fn precondition(mut self, name: impl Into<String>, check: impl Precondition) -> Self {
        self.registry.register(name.into(), Arc::new(check));
        self
    }

    /// Registers an event hook.
    pub fn on_event(mut self, hook: impl Fn(&Event<'_>) + Send + Sync + 'static) -> Self {
        self.hooks.push(Arc::new(hook));
        self
    }

    /// Makes `value` available to preconditions through
    /// [`Check::state`](crate::Check::state).
    pub fn state<T: Send + Sync + 'static>(mut self, value: T) -> Self {
        self.state.insert(value);
        self
    }

    /// Uses another clock (tests, simulations).
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// Checks the rails, defaults, price book and global preconditions, and
    /// builds the gate.
    pub fn build(self) -> Result<Gate, ConfigError> {
        let config = match self.config {
            PendingConfig::Built(config) => *config,
            PendingConfig::Pending(builder) => builder.build()?,
            PendingConfig::Overlaid => {
                return Err(ConfigError::Invalid(
                    "settings were overlaid on an already validated Config; start the gate with \
                     Gate::configure(ConfigBuilder) so they can be merged"
                        .into(),
                ));
            }
        };
        let mut rails = BTreeMap::new();
        for rail in self.rails {
            let method = rail.method().to_owned();
            crate::config::check_method_syntax("a rail's method name", &method)?;
            rail.check_config().map_err(|source| ConfigError::Rail {
                method: method.clone(),
                source,
            })?;
            if rails.insert(method.clone(), rail).is_some() {
                return Err(ConfigError::DuplicateRail(method));
            }
        }
        if let Some(spec) = config.store() {
            if self.store.is_none() {
                return Err(ConfigError::Store {
                    store: crate::wire::redact_url(spec),
                    reason: "the store must be opened before the gate is built: call \
                             `GateBuilder::open_store().await` (the Rocket fairing and \
                             `mpp_actix::Mpp::connect` do), or unset MPP_STORE"
                        .into(),
                });
            }
            if !self.store_from_settings {
                return Err(store_conflict(spec));
            }
        }
        let mut registry = self.registry;
        registry.set_global(config.global_preconditions.clone());
        registry.validate_global()?;
        let inner = GateInner {
            config,
            rails,
            store: self.store.unwrap_or_else(|| Arc::new(MemoryStore::new())),
            preconditions: registry,
            hooks: self.hooks,
            state: Arc::new(self.state),
            clock: self.clock,
            nonces: crate::random::NonceSource::new(),
            routes: RwLock::new(HashMap::new()),
            pending: pending::PendingSessions::default(),
        };
        if let Some(method) = &inner.config.defaults.method {
            inner.rail("MPP_DEFAULT_METHOD", method)?;
        }
        for (key, entry) in &inner.config.price_book {
            for method in entry.methods.iter().flatten() {
                inner.rail(&format!("price-book entry `{key}`"), method)?;
            }
        }
        Ok(Gate(Arc::new(inner)))
    }
}
