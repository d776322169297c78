//! The Actix-web bench server.

use actix_web::http::header::{CACHE_CONTROL, HeaderName, HeaderValue};
use actix_web::{App, HttpResponse, HttpServer, get};
use mpp_actix::{ConfigBuilder, Gate, Mpp, paid};

use crate::InstantTestRail;

/// The framework alone.
#[get("/bare")]
async fn bare() -> &'static str {
    "ok"
}

/// The framework alone, answering with the three headers a session spend
/// adds (values validated per request, as any handler's would be).
#[get("/headers")]
async fn headers() -> HttpResponse {
    let spend = &*crate::SPEND_HEADERS;
    let mut response = HttpResponse::Ok()
        .content_type("text/plain; charset=utf-8")
        .body("ok");
    let headers = response.headers_mut();
    for (name, value) in [
        ("payment-receipt", spend.receipt.as_str()),
        ("payment-session", spend.session.as_str()),
    ] {
        if let Ok(value) = HeaderValue::from_str(value) {
            headers.insert(HeaderName::from_static(name), value);
        }
    }
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("private"));
    response
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

/// The gate: [`InstantTestRail`], `config` with `MPP_*` overlaid, the store
/// `MPP_STORE` names opened, every paid route checked.
pub async fn gate(config: ConfigBuilder) -> Result<Gate, Box<dyn std::error::Error>> {
    let builder = Mpp::configure(config).rail(InstantTestRail::new());
    Ok(Mpp::connect(builder).await?)
}

/// The app: only `/bare` and `/headers` without a gate, every route with one.
pub fn app(
    gate: Option<Gate>,
) -> App<
    impl actix_web::dev::ServiceFactory<
        actix_web::dev::ServiceRequest,
        Config = (),
        Response = actix_web::dev::ServiceResponse,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    let app = App::new().service(bare).service(headers);
    match gate {
        Some(gate) => app.app_data(gate).service(paid_route).service(metered),
        None => app,
    }
}

/// Serves [`app`] on 127.0.0.1:`port` (0: any free port) with `workers`
/// workers; returns the server and its port.
pub fn server(
    gate: Option<Gate>,
    port: u16,
    workers: usize,
) -> std::io::Result<(actix_web::dev::Server, u16)> {
    let server = HttpServer::new(move || app(gate.clone()))
        .workers(workers)
        .bind(("127.0.0.1", port))?;
    let port = server.addrs().first().map_or(port, |a| a.port());
    Ok((server.run(), port))
}
