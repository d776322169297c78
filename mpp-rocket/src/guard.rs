//! The request guard `#[paid]` adds to a handler.

use std::marker::PhantomData;

use mpp_runtime::handler::{self, PaidRoute};
use mpp_runtime::{Gate, Grant, RequestView, Response};
use rocket::request::{FromRequest, Outcome};
use rocket::{Ignite, Request, Rocket, Sentinel};

/// Captures what the payment gate needs from the request. It never fails:
/// the payment is decided inside the handler ([`PaidContext::admit`]), after
/// every other guard and the body have succeeded.
pub struct PaidContext<R> {
    gate: Option<Gate>,
    view: RequestView,
    _route: PhantomData<fn() -> R>,
}

impl<R: PaidRoute> PaidContext<R> {
    /// Decides the payment: the grant, or the response to send instead.
    pub async fn admit(self) -> Result<Box<Grant>, Response> {
        match &self.gate {
            Some(gate) => handler::admit::<R>(gate, self.view).await,
            None => Err(handler::missing_runtime(
                "attach mpp_rocket::Mpp::fairing(...) to the Rocket instance",
            )),
        }
    }
}

#[rocket::async_trait]
impl<'r, R: PaidRoute> FromRequest<'r> for PaidContext<R> {
    type Error = std::convert::Infallible;

    async fn from_request(req: &'r Request<'_>) -> Outcome<Self, Self::Error> {
        Outcome::Success(Self {
            gate: req.rocket().state::<Gate>().cloned(),
            view: crate::request::view(req),
            _route: PhantomData,
        })
    }
}

/// Aborts launch when a paid route is mounted without the fairing, or when
/// its terms cannot be priced with the configuration.
impl<R: PaidRoute> Sentinel for PaidContext<R> {
    fn abort(rocket: &Rocket<Ignite>) -> bool {
        let id = R::route_spec().id();
        match rocket.state::<Gate>() {
            None => {
                rocket::error!(
                    "mpp: route `{id}` is paid, but no payment runtime is attached: \
                     add `.attach(mpp_rocket::Mpp::fairing(mpp_rocket::Mpp::builder().rail(…)))`"
                );
                true
            }
            Some(gate) => match handler::prepare::<R>(gate) {
                Ok(_) => false,
                Err(e) => {
                    rocket::error!("mpp: {e}");
                    true
                }
            },
        }
    }
}
