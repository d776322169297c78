//! The extractor `#[paid]` adds to a handler.

use std::future::{Ready, ready};
use std::marker::PhantomData;

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest, Responder, web};
use mpp_runtime::handler::{self, Intake, PaidRoute};
use mpp_runtime::{Gate, Grant, Response};

use crate::paid::{Paid, add_payment_headers};

/// Captures what the payment gate needs from the request. It never fails:
/// the payment is decided inside the handler ([`PaidContext::admit`]), after
/// every other extractor and the body have succeeded.
pub struct PaidContext<R> {
    gate: Option<Gate>,
    intake: Option<Intake>,
    request: HttpRequest,
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
                "register the gate with App::app_data(mpp_actix::Mpp::build(…)?)",
            )),
        }
    }

    /// Turns the handler's value into the response. A deferred payment
    /// (`capture = "after"`) is captured when that response is a 2xx (and
    /// then gets its receipt) and released otherwise; a failed capture
    /// answers with the gate's problem instead, so nothing unpaid is
    /// delivered. If the handler panics or the client goes away first, the
    /// dropped grant releases the authorization.
    pub async fn finish<T: Responder>(self, value: T, mut grant: Box<Grant>) -> Paid<T> {
        if !grant.awaits_capture() {
            return Paid::granted(value, grant);
        }
        let mut response = value.respond_to(&self.request).map_into_boxed_body();
        match grant.complete(response.status().as_u16()).await {
            Ok(()) => {
                add_payment_headers(&mut response, &grant);
                Paid::Ready(response)
            }
            Err(refusal) => Paid::denied(refusal),
        }
    }
}

impl<R: PaidRoute> FromRequest for PaidContext<R> {
    type Error = actix_web::Error;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _payload: &mut Payload) -> Self::Future {
        let gate = gate(req);
        let intake = gate
            .as_ref()
            .map(|gate| handler::intake::<R>(gate, &crate::request::Source(req)));
        ready(Ok(Self {
            gate,
            intake,
            request: req.clone(),
            _route: PhantomData,
        }))
    }
}

/// The gate registered in `app_data`, as `Gate` or `web::Data<Gate>`.
pub(crate) fn gate(req: &HttpRequest) -> Option<Gate> {
    req.app_data::<Gate>().cloned().or_else(|| {
        req.app_data::<web::Data<Gate>>()
            .map(|data| data.get_ref().clone())
    })
}
