//! The webhook route: provider notifications (Stripe's, for example) are
//! verified, deduplicated and reconciled by the gate.

use mpp_runtime::{Gate, RequestView};
use rocket::data::{Data, ToByteUnit};
use rocket::request::{FromRequest, Outcome, Request};
use rocket::{State, post, routes};

use crate::paid::Reply;

/// The largest delivery read (Stripe's events are far smaller).
const MAX_BODY_KIB: u64 = 1024;

/// The routes receiving provider notifications: `POST /<method>`. Mount
/// them under a prefix of your choice; Stripe's endpoint is then
/// `https://your.host/<prefix>/stripe`.
///
/// ```no_run
/// # use mpp_rocket::Mpp;
/// let rocket = rocket::build()
///     .attach(Mpp::fairing(Mpp::builder()))
///     .mount("/webhooks", mpp_rocket::webhooks()); // POST /webhooks/stripe
/// ```
///
/// The signature is checked before anything is parsed (a bad one is a
/// 400); each event is processed once; see
/// [`Gate::receive_webhook`](mpp_runtime::Gate::receive_webhook). Mounting
/// them without the fairing aborts launch.
pub fn webhooks() -> Vec<rocket::Route> {
    routes![receive]
}

/// The delivery's headers, as the verifier needs them.
struct Delivery(RequestView);

#[rocket::async_trait]
impl<'r> FromRequest<'r> for Delivery {
    type Error = std::convert::Infallible;

    async fn from_request(req: &'r Request<'_>) -> Outcome<Self, Self::Error> {
        Outcome::Success(Self(crate::request::view(req)))
    }
}

#[post("/<method>", data = "<body>")]
async fn receive(method: &str, gate: &State<Gate>, delivery: Delivery, body: Data<'_>) -> Reply {
    let bytes = match body.open(MAX_BODY_KIB.kibibytes()).into_bytes().await {
        Ok(bytes) if bytes.is_complete() => bytes.into_inner(),
        Ok(_) => {
            return Reply(
                mpp_runtime::Rejection::problem(
                    413,
                    "Content Too Large",
                    "The webhook delivery is larger than this endpoint accepts.",
                )
                .into_response(),
            );
        }
        Err(e) => {
            tracing::warn!(%e, "could not read a webhook delivery");
            return Reply(
                mpp_runtime::Rejection::problem(
                    400,
                    "Bad Request",
                    "The webhook delivery could not be read.",
                )
                .into_response(),
            );
        }
    };
    Reply(gate.receive_webhook(method, &delivery.0, &bytes).await)
}
