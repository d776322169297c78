//! The responder a `#[paid]` handler returns, and the error type refusals
//! travel as.

use std::borrow::Cow;
use std::fmt;

use actix_web::body::BoxBody;
use actix_web::http::StatusCode;
use actix_web::http::header::{
    CACHE_CONTROL, CONTENT_TYPE, HeaderName, HeaderValue, InvalidHeaderName, WWW_AUTHENTICATE,
};
use actix_web::web::Bytes;
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
        to_actix(self.0.clone())
    }
}

impl PaymentError {
    /// The response, by value: header values and the body are moved, not
    /// copied.
    pub fn into_response(self) -> HttpResponse {
        to_actix(self.0)
    }
}

/// Converts the gate's framework-neutral response.
fn to_actix(response: Response) -> HttpResponse {
    let status = StatusCode::from_u16(response.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut builder = HttpResponse::build(status);
    for (name, value) in response.headers {
        // Moved (or borrowed for 'static), never copied; still validated.
        let value = match value {
            Cow::Borrowed(value) => {
                HeaderValue::from_maybe_shared(Bytes::from_static(value.as_bytes()))
            }
            Cow::Owned(value) => HeaderValue::from_maybe_shared(Bytes::from(value)),
        };
        match (header_name(&name), value) {
            (Ok(name), Ok(value)) => {
                builder.append_header((name, value));
            }
            _ => {
                tracing::error!(header = %name, "dropped a payment header that is not a valid HTTP header");
            }
        }
    }
    builder.body(response.body)
}

static PAYMENT_RECEIPT: HeaderName = HeaderName::from_static("payment-receipt");
static PAYMENT_SESSION: HeaderName = HeaderName::from_static("payment-session");
static PRIVATE: HeaderValue = HeaderValue::from_static("private");

/// The header names the gate writes, without parsing them again.
fn header_name(name: &str) -> Result<HeaderName, InvalidHeaderName> {
    use mpp_runtime::wire::headers;
    Ok(if name.eq_ignore_ascii_case(headers::WWW_AUTHENTICATE) {
        WWW_AUTHENTICATE
    } else if name.eq_ignore_ascii_case(headers::CACHE_CONTROL) {
        CACHE_CONTROL
    } else if name.eq_ignore_ascii_case(headers::CONTENT_TYPE) {
        CONTENT_TYPE
    } else if name.eq_ignore_ascii_case(headers::PAYMENT_RECEIPT) {
        PAYMENT_RECEIPT.clone()
    } else if name.eq_ignore_ascii_case(headers::PAYMENT_SESSION) {
        PAYMENT_SESSION.clone()
    } else {
        HeaderName::from_bytes(name.as_bytes())?
    })
}

/// Adds the payment headers of a paid (or captured) grant to a successful
/// response: `Payment-Receipt`, `Payment-Session`, `Cache-Control: private`.
pub(crate) fn add_payment_headers(response: &mut HttpResponse, grant: &Grant) {
    // Receipts go only on successful responses.
    let Some(paid) = grant.payment_headers() else {
        return;
    };
    if !response.status().is_success() {
        return;
    }
    let headers = response.headers_mut();
    // A session's receipt is the same for every credit: validated once.
    if let Some(value) = paid
        .receipt
        .cached(|header| HeaderValue::from_str(header).ok())
    {
        headers.insert(PAYMENT_RECEIPT.clone(), value);
    }
    if let Some(value) = paid.session.and_then(|s| HeaderValue::from_str(s).ok()) {
        headers.insert(PAYMENT_SESSION.clone(), value);
    }
    let value = match headers.get(CACHE_CONTROL) {
        None => Ok(PRIVATE.clone()),
        Some(existing) => match private_cache_control(existing.to_str().ok()) {
            Cow::Borrowed("private") => Ok(PRIVATE.clone()),
            cache => HeaderValue::from_str(&cache),
        },
    };
    if let Ok(value) = value {
        headers.insert(CACHE_CONTROL, value);
    }
}

impl<T: Responder> Responder for Paid<T> {
    type Body = BoxBody;

    fn respond_to(self, req: &HttpRequest) -> HttpResponse<Self::Body> {
        match self {
            Paid::Denied(error) => error.into_response(),
            Paid::Ready(response) => response,
            Paid::Granted(value, grant) => {
                let mut response = value.respond_to(req).map_into_boxed_body();
                add_payment_headers(&mut response, &grant);
                response
            }
        }
    }
}
