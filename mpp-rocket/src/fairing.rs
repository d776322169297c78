//! The fairing that builds the payment gate at ignition and manages it.

use std::sync::Mutex;

use mpp_runtime::{ConfigBuilder, Gate, GateBuilder, Settings};
use rocket::fairing::{self, Fairing, Info, Kind};
use rocket::{Build, Request, Response, Rocket};

use crate::paid::{AwaitingCapture, add_payment_headers, to_rocket};

/// Managed by the fairing: tells guards and responders that responses pass
/// through it (deferred captures need that).
pub(crate) struct FairingAttached;

/// Entry points for setting up payments on a Rocket instance.
#[derive(Debug, Clone, Copy)]
pub struct Mpp;

impl Mpp {
    /// A gate builder with an empty configuration: register rails, a store,
    /// preconditions and hooks on it, set configuration in code if you like,
    /// and hand it to [`Mpp::fairing`].
    pub fn builder() -> GateBuilder {
        Self::configure(ConfigBuilder::default())
    }

    /// A gate builder starting from configuration set in code; Rocket's
    /// configuration and the environment are overlaid on it at ignition.
    pub fn configure(config: ConfigBuilder) -> GateBuilder {
        Gate::configure(config)
    }

    /// The fairing. At ignition it overlays the `mpp` table of Rocket's
    /// configuration and then the `MPP_*` environment variables on the
    /// builder's configuration, opens the store they name (`store`,
    /// `MPP_STORE`), builds the [`Gate`] and manages it; a configuration
    /// error or an unreachable store aborts launch with the reason.
    ///
    /// ```toml
    /// # Rocket.toml
    /// [default.mpp]
    /// realm = "api.example.com"
    /// default_amount = "0.50"
    /// store = "sqlite://mpp.db"   # or postgres://…, redis://…; default: memory
    /// [default.mpp.price_book."report.basic"]
    /// amount = "5.00"
    /// grants = 10
    /// ```
    pub fn fairing(builder: GateBuilder) -> MppFairing {
        MppFairing {
            builder: Mutex::new(Some(builder)),
        }
    }
}

/// Builds and manages the [`Gate`]; see [`Mpp::fairing`].
pub struct MppFairing {
    builder: Mutex<Option<GateBuilder>>,
}

impl std::fmt::Debug for MppFairing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MppFairing")
    }
}

fn settings_from_rocket(rocket: &Rocket<Build>) -> Result<Settings, String> {
    let figment = rocket.figment();
    if figment.find_value("mpp").is_err() {
        return Ok(Settings::default());
    }
    figment
        .extract_inner::<Settings>("mpp")
        .map_err(|e| format!("the `mpp` table of Rocket's configuration is invalid: {e}"))
}

#[rocket::async_trait]
impl Fairing for MppFairing {
    fn info(&self) -> Info {
        Info {
            name: "Machine Payments Protocol",
            kind: Kind::Ignite | Kind::Response | Kind::Singleton,
        }
    }

    async fn on_ignite(&self, rocket: Rocket<Build>) -> fairing::Result {
        let builder = match self.builder.lock() {
            Ok(mut slot) => slot.take(),
            Err(poisoned) => poisoned.into_inner().take(),
        };
        let Some(builder) = builder else {
            rocket::error!(
                "mpp: this fairing was already used by another Rocket instance; create one per instance"
            );
            return Err(rocket);
        };
        let file = match settings_from_rocket(&rocket) {
            Ok(settings) => settings,
            Err(e) => {
                rocket::error!("mpp: {e}");
                return Err(rocket);
            }
        };
        let env = match Settings::from_env() {
            Ok(settings) => settings,
            Err(e) => {
                rocket::error!("mpp: {e}");
                return Err(rocket);
            }
        };
        let builder = match builder.overlay(file).overlay(env).open_store().await {
            Ok(builder) => builder,
            Err(e) => {
                rocket::error!("mpp: {e}");
                return Err(rocket);
            }
        };
        match builder.build() {
            Ok(gate) => {
                rocket::info!(
                    "mpp: payments enabled for realm {} (methods: {})",
                    gate.config().realm(),
                    gate.methods().collect::<Vec<_>>().join(", ")
                );
                Ok(rocket.manage(gate).manage(FairingAttached))
            }
            Err(e) => {
                rocket::error!("mpp: {e}");
                Err(rocket)
            }
        }
    }

    /// Finishes deferred payments (`capture = "after"`): a 2xx response
    /// captures and gets its receipt; anything else, catchers' error pages
    /// included, releases the authorization. A failed capture replaces the
    /// response with the gate's problem, so nothing unpaid is delivered.
    async fn on_response<'r>(&self, req: &'r Request<'_>, res: &mut Response<'r>) {
        if !AwaitingCapture::any() {
            return;
        }
        let Some(mut grant) = req.local_cache(AwaitingCapture::default).take() else {
            return;
        };
        match grant.complete(res.status().code).await {
            Ok(()) => add_payment_headers(res, &grant),
            Err(refusal) => *res = to_rocket(refusal),
        }
    }
}
