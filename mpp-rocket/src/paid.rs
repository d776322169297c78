//! The responder a `#[paid]` handler returns.

use std::io::Cursor;

use mpp_runtime::response::private_cache_control;
use mpp_runtime::{Grant, Response};
use rocket::http::{Header, Status};
use rocket::request::Request;
use rocket::response::{self, Responder};

/// What a `#[paid]` handler returns: the handler's own response with the
/// payment headers added, or the gate's response (a 402 with fresh
/// challenges, a precondition's 404, …) when the payment did not go through.
#[derive(Debug)]
pub enum Paid<T> {
    /// Paid: the handler ran.
    Granted(T, Box<Grant>),
    /// Not paid: send this instead.
    Denied(Response),
}

impl<T> Paid<T> {
    /// The handler's value with its grant.
    pub fn granted(value: T, grant: Box<Grant>) -> Self {
        Self::Granted(value, grant)
    }

    /// The gate's response.
    pub fn denied(response: Response) -> Self {
        Self::Denied(response)
    }
}

/// Converts the gate's framework-neutral response.
fn to_rocket<'o>(response: Response) -> rocket::Response<'o> {
    let mut builder = rocket::Response::build();
    builder.status(Status::new(response.status));
    for (name, value) in response.headers {
        builder.header_adjoin(Header::new(name, value));
    }
    let len = response.body.len();
    builder.sized_body(len, Cursor::new(response.body));
    builder.finalize()
}

impl<'r, 'o: 'r, T: Responder<'r, 'o>> Responder<'r, 'o> for Paid<T> {
    fn respond_to(self, req: &'r Request<'_>) -> response::Result<'o> {
        match self {
            Paid::Denied(response) => Ok(to_rocket(response)),
            Paid::Granted(value, grant) => {
                let mut response = value.respond_to(req)?;
                // Receipts go only on successful responses.
                if response.status().class().is_success() {
                    for (name, value) in grant.headers() {
                        response.set_raw_header(name, value.to_owned());
                    }
                    let cache = private_cache_control(response.headers().get_one("Cache-Control"))
                        .into_owned();
                    response.set_raw_header("Cache-Control", cache);
                }
                Ok(response)
            }
        }
    }
}
