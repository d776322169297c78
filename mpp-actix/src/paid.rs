//! The responder a `#[paid]` handler returns, and the error type refusals
//! travel as.

use std::fmt;

use actix_web::body::BoxBody;
use actix_web::http::StatusCode;
use actix_web::http::header::{CACHE_CONTROL, HeaderName, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, Responder, ResponseError};
use mpp_runtime::response::private_cache_control;
use mpp_runtime::{Grant, Response};

/// What a `#[paid]` handler returns: the handler's own response with the
/// payment headers added, or the refusal when the payment did not go through.
#[derive(Debug)]
pub enum Paid<T> {
    /// Paid: the handler ran.
    Granted(T, Box<Grant>),
    /// Paid after the handler ran (`capture = "after"`): its response, with
    /// the payment headers already added.
    Ready(HttpResponse),
    /// Not paid: answer with this error.
    Denied(PaymentError),
}

impl<T> Paid<T> {
    /// The handler's value with its grant.
    pub fn granted(value: T, grant: Box<Grant>) -> Self {
        Self::Granted(value, grant)
    }

    /// The gate's response.
    pub fn denied(response: Response) -> Self {
        Self::Denied(PaymentError(response))
    }
}

/// A payment refusal: a 402 with fresh challenges and a problem body, a
/// precondition's rejection, or a 500/503 problem. Its `ResponseError`
/// renders the gate's response exactly.
pub struct PaymentError(pub Response);

impl fmt::Debug for PaymentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PaymentError({})", self.0.status)
    }
}

impl fmt::Display for PaymentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "payment refused with status {}", self.0.status)
    }
}

impl ResponseError for PaymentError {
    fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.0.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status_code());
        for (name, value) in &self.0.headers {
            if let (Ok(name), Ok(value)) = (
                HeaderName::from_bytes(name.as_bytes()),
                HeaderValue::from_str(value),
            ) {
                response.append_header((name, value));
            } else {
                tracing::error!(header = %name, "dropped a payment header that is not a valid HTTP header");
            }
        }
        response.body(self.0.body.clone())
    }
}

/// Adds the payment headers of a paid (or captured) grant to a successful
/// response: `Payment-Receipt`, `Payment-Session`, `Cache-Control: private`.
pub(crate) fn add_payment_headers(response: &mut HttpResponse, grant: &Grant) {
    // Receipts go only on successful responses.
    if !response.status().is_success() || grant.headers().next().is_none() {
        return;
    }
    let headers = response.headers_mut();
    for (name, value) in grant.headers() {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            headers.insert(name, value);
        }
    }
    let existing = headers.get(CACHE_CONTROL).and_then(|v| v.to_str().ok());
    let cache = private_cache_control(existing).into_owned();
    if let Ok(value) = HeaderValue::from_str(&cache) {
        headers.insert(CACHE_CONTROL, value);
    }
}

impl<T: Responder> Responder for Paid<T> {
    type Body = BoxBody;

    fn respond_to(self, req: &HttpRequest) -> HttpResponse<Self::Body> {
        match self {
            Paid::Denied(error) => error.error_response(),
            Paid::Ready(response) => response,
            Paid::Granted(value, grant) => {
                let mut response = value.respond_to(req).map_into_boxed_body();
                add_payment_headers(&mut response, &grant);
                response
            }
        }
    }
}
