//! Building the gate for an Actix app, and checking every paid route at
//! startup.

use mpp_runtime::handler::{self, PaidRoute};
use mpp_runtime::{ConfigBuilder, ConfigError, Gate, GateBuilder, Route, Settings};

/// Entry points for setting up payments in an Actix app.
#[derive(Debug, Clone, Copy)]
pub struct Mpp;

impl Mpp {
    /// A gate builder with an empty configuration: register rails, a store,
    /// preconditions and hooks on it, then call [`Mpp::build`].
    pub fn builder() -> GateBuilder {
        Self::configure(ConfigBuilder::default())
    }

    /// A gate builder starting from configuration set in code; the
    /// environment is overlaid on it by [`Mpp::build`].
    pub fn configure(config: ConfigBuilder) -> GateBuilder {
        Gate::configure(config)
    }

    /// Overlays the `MPP_*` environment variables, builds the gate, and
    /// prepares every `#[paid]` route in the program: any configuration
    /// error (a short secret, an unknown method or precondition, a route
    /// without a price) is returned here, before the server starts.
    pub fn build(builder: GateBuilder) -> Result<Gate, ConfigError> {
        Self::build_with(builder, Settings::from_env()?)
    }

    /// [`Mpp::build`] that also opens the store the settings name
    /// (`MPP_STORE` = `sqlite://…`, `postgres://…` or `redis://…`, with
    /// `MPP_STORE_PREFIX`; see [`GateBuilder::open_store`]). Use it whenever
    /// the deployment may choose its store: [`Mpp::build`] refuses a
    /// configuration that names a store it has not opened.
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), mpp_runtime::ConfigError> {
    /// let gate = mpp_actix::Mpp::connect(mpp_actix::Mpp::builder()).await?;
    /// # Ok(()) }
    /// ```
    pub async fn connect(builder: GateBuilder) -> Result<Gate, ConfigError> {
        Self::connect_with(builder, Settings::from_env()?).await
    }

    /// [`Mpp::connect`] with explicit settings instead of the environment.
    pub async fn connect_with(
        builder: GateBuilder,
        settings: Settings,
    ) -> Result<Gate, ConfigError> {
        let builder = builder.overlay(settings).open_store().await?;
        Self::build_with(builder, Settings::default())
    }

    /// [`Mpp::build`] with explicit settings instead of the environment.
    pub fn build_with(builder: GateBuilder, settings: Settings) -> Result<Gate, ConfigError> {
        let gate = builder.overlay(settings).build()?;
        for registration in inventory::iter::<Registration> {
            (registration.prepare)(&gate)?;
        }
        Ok(gate)
    }
}

/// A `#[paid]` handler, registered at compile time so [`Mpp::build`] can
/// check it at startup.
pub struct Registration {
    prepare: fn(&Gate) -> Result<Route, ConfigError>,
}

impl Registration {
    /// The registration of the handler behind `R`.
    pub const fn new<R: PaidRoute>() -> Self {
        Self {
            prepare: handler::prepare::<R>,
        }
    }
}

inventory::collect!(Registration);
