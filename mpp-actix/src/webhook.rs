//! The webhook endpoint: provider notifications (Stripe's, for example) are
//! verified, deduplicated and reconciled by the gate.

use actix_web::{HttpRequest, HttpResponse, ResponseError, web};
use mpp_runtime::handler;

use crate::paid::PaymentError;

/// The largest delivery read (Stripe's events are far smaller).
const MAX_BODY: usize = 1 << 20;

/// The resource receiving provider notifications at `{prefix}/{method}`,
/// e.g. `webhooks("/webhooks")` answers Stripe at `POST /webhooks/stripe`.
///
/// ```
/// use actix_web::App;
///
/// fn app(gate: mpp_actix::Gate) {
///     let _app = App::new()
///         .app_data(gate)
///         .service(mpp_actix::webhooks("/webhooks"));
/// }
/// ```
///
/// The signature is checked before anything is parsed (a bad one is a
/// 400); each event is processed once; see
/// [`Gate::receive_webhook`](mpp_runtime::Gate::receive_webhook). Without
/// the gate in `app_data` it answers 500 and logs what to register.
pub fn webhooks(prefix: &str) -> actix_web::Resource {
    web::resource(format!("{}/{{method}}", prefix.trim_end_matches('/')))
        .app_data(web::PayloadConfig::new(MAX_BODY))
        .route(web::post().to(webhook))
}

/// The handler behind [`webhooks`], for apps that route it themselves
/// (`.route("/hooks/{method}", web::post().to(mpp_actix::webhook))`).
pub async fn webhook(
    req: HttpRequest,
    method: web::Path<String>,
    body: web::Bytes,
) -> HttpResponse {
    let response = match crate::extract::gate(&req) {
        Some(gate) => {
            gate.receive_webhook(&method, &crate::request::view(&req), &body)
                .await
        }
        None => handler::missing_runtime(
            "register the gate with App::app_data(mpp_actix::Mpp::build(…)?)",
        ),
    };
    PaymentError(response).error_response()
}
