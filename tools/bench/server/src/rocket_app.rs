//! The Rocket bench server.

use mpp_rocket::{ConfigBuilder, Mpp, paid};
use rocket::config::LogLevel;
use rocket::request::Request;
use rocket::response::{self, Responder};
use rocket::{Build, Rocket, get, routes};

use crate::InstantTestRail;

/// The framework alone.
#[get("/bare")]
fn bare() -> &'static str {
    "ok"
}

/// `ok` with the three headers a session spend adds, set as the adapter
/// sets them (owned values).
struct WithSpendHeaders;

impl<'r> Responder<'r, 'static> for WithSpendHeaders {
    fn respond_to(self, req: &'r Request<'_>) -> response::Result<'static> {
        let spend = &*crate::SPEND_HEADERS;
        let mut response = "ok".respond_to(req)?;
        response.set_raw_header("Payment-Receipt", spend.receipt.clone());
        response.set_raw_header("Payment-Session", spend.session.clone());
        response.set_raw_header("Cache-Control", "private");
        Ok(response)
    }
}

/// The framework alone, answering with the three headers a session spend
/// adds.
#[get("/headers")]
fn headers() -> WithSpendHeaders {
    WithSpendHeaders
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
/// environment, `ROCKET_*`, still wins): only `/bare` and `/headers` when `bare` is true;
/// otherwise every route behind the fairing with [`InstantTestRail`] and
/// `config` (Rocket's `mpp` table and `MPP_*` overlaid; the fairing opens
/// the store `MPP_STORE` names).
pub fn rocket(bare: bool, port: u16, config: ConfigBuilder) -> Rocket<Build> {
    let figment = rocket::Config::figment()
        .join(("address", "127.0.0.1"))
        .join(("port", port))
        .join(("log_level", LogLevel::Off));
    let rocket = rocket::custom(figment).mount("/", routes![bare, headers]);
    if bare {
        return rocket;
    }
    let builder = Mpp::configure(config).rail(InstantTestRail::new());
    rocket
        .attach(Mpp::fairing(builder))
        .mount("/", routes![paid_route, metered])
}
