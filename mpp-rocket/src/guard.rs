//! The request guard `#[paid]` adds to a handler.

use std::marker::PhantomData;

use mpp_runtime::handler::{self, Intake, PaidRoute};
use mpp_runtime::{Gate, Grant, Response};

use crate::Paid;
use crate::fairing::FairingAttached;
use rocket::request::{FromRequest, Outcome};
use rocket::{Ignite, Request, Rocket, Sentinel};

/// Captures what the payment gate needs from the request. It never fails:
/// the payment is decided inside the handler ([`PaidContext::admit`]), after
/// every other guard and the body have succeeded.
pub struct PaidContext<R> {
    gate: Option<Gate>,
    intake: Option<Intake>,
    _route: PhantomData<fn() -> R>,
}

impl<R: PaidRoute> PaidContext<R> {
    /// Decides the payment: the grant, or the response to send instead.
    pub async fn admit(&mut self) -> Result<Box<Grant>, Response> {
        match (&self.gate, self.intake.take()) {
            (Some(gate), Some(intake)) => handler::decide(gate, intake).await,
            (Some(_), None) => Err(handler::internal_error(
                "An internal payment error occurred.",
            )),
            (None, _) => Err(handler::missing_runtime(
                "attach mpp_rocket::Mpp::fairing(...) to the Rocket instance",
            )),
        }
    }

    /// Wraps the handler's value with its grant. A deferred payment
    /// (`capture = "after"`) is captured or released by the fairing once the
    /// final response status is known.
    pub async fn finish<T>(self, value: T, grant: Box<Grant>) -> Paid<T> {
        Paid::granted(value, grant)
    }
}

#[rocket::async_trait]
impl<'r, R: PaidRoute> FromRequest<'r> for PaidContext<R> {
    type Error = std::convert::Infallible;

    async fn from_request(req: &'r Request<'_>) -> Outcome<Self, Self::Error> {
        let gate = req.rocket().state::<Gate>().cloned();
        let intake = gate
            .as_ref()
            .map(|gate| handler::intake::<R>(gate, &crate::request::Source(req)));
        Outcome::Success(Self {
            gate,
            intake,
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
                Ok(route)
                    if route.defers_capture() && rocket.state::<FairingAttached>().is_none() =>
                {
                    rocket::error!(
                        "mpp: route `{id}` captures payments after the handler (capture = \"after\"), \
                         which needs the fairing: attach mpp_rocket::Mpp::fairing(…) instead of managing the Gate yourself"
                    );
                    true
                }
                Ok(_) => false,
                Err(e) => {
                    rocket::error!("mpp: {e}");
                    true
                }
            },
        }
    }
}
