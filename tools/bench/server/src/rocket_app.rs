//! The Rocket bench server.

use mpp_rocket::{ConfigBuilder, Mpp, paid};
use rocket::config::LogLevel;
use rocket::{Build, Rocket, get, routes};

use crate::InstantTestRail;

/// The framework alone.
#[get("/bare")]
fn bare() -> &'static str {
    "ok"
}

/// One payment, one access.
#[paid(amount = "0.50")]
#[get("/paid")]
async fn paid_route() -> &'static str {
    "ok"
}

/// One payment buys a session of a million accesses.
#[paid(amount = "5.00", grants = 1000000, scope = "bench.metered")]
#[get("/metered")]
async fn metered() -> &'static str {
    "ok"
}

/// The Rocket instance on 127.0.0.1:`port`, logging off (Rocket's
/// environment, `ROCKET_*`, still wins): only `/bare` when `bare` is true;
/// otherwise every route behind the fairing with [`InstantTestRail`] and
/// `config` (Rocket's `mpp` table and `MPP_*` overlaid; the fairing opens
/// the store `MPP_STORE` names).
pub fn rocket(bare: bool, port: u16, config: ConfigBuilder) -> Rocket<Build> {
    let figment = rocket::Config::figment()
        .join(("address", "127.0.0.1"))
        .join(("port", port))
        .join(("log_level", LogLevel::Off));
    let rocket = rocket::custom(figment).mount("/", routes![bare]);
    if bare {
        return rocket;
    }
    let builder = Mpp::configure(config).rail(InstantTestRail::new());
    rocket
        .attach(Mpp::fairing(builder))
        .mount("/", routes![paid_route, metered])
}
