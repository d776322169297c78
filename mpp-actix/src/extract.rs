//! The extractor `#[paid]` adds to a handler.

use std::future::{Ready, ready};
use std::marker::PhantomData;

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest, web};
use mpp_runtime::handler::{self, PaidRoute};
use mpp_runtime::{Gate, Grant, RequestView, Response};

/// Captures what the payment gate needs from the request. It never fails:
/// the payment is decided inside the handler ([`PaidContext::admit`]), after
/// every other extractor and the body have succeeded.
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
                "register the gate with App::app_data(mpp_actix::Mpp::build(…)?)",
            )),
        }
    }
}

impl<R: PaidRoute> FromRequest for PaidContext<R> {
    type Error = actix_web::Error;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _payload: &mut Payload) -> Self::Future {
        let gate = req.app_data::<Gate>().cloned().or_else(|| {
            req.app_data::<web::Data<Gate>>()
                .map(|data| data.get_ref().clone())
        });
        ready(Ok(Self {
            gate,
            view: crate::request::view(req),
            _route: PhantomData,
        }))
    }
}
