//! The responder a `#[paid]` handler returns.

use std::borrow::Cow;
use std::io::Cursor;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use mpp_runtime::handler;
use mpp_runtime::response::private_cache_control;
use mpp_runtime::wire::headers;
use mpp_runtime::{Grant, Response};
use rocket::http::{Header, Status};
use rocket::request::Request;
use rocket::response::{self, Responder};

use crate::fairing::FairingAttached;

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
pub(crate) fn to_rocket<'o>(response: Response) -> rocket::Response<'o> {
    let mut builder = rocket::Response::build();
    builder.status(Status::new(response.status));
    for (name, value) in response.headers {
        builder.header_adjoin(Header::new(name, value));
    }
    let len = response.body.len();
    builder.sized_body(len, Cursor::new(response.body));
    builder.finalize()
}

/// A framework-neutral response from the gate, as a responder.
pub(crate) struct Reply(pub(crate) Response);

impl<'r, 'o: 'r> Responder<'r, 'o> for Reply {
    fn respond_to(self, _req: &'r Request<'_>) -> response::Result<'o> {
        Ok(to_rocket(self.0))
    }
}

/// Adds the payment headers of a paid (or captured) grant to a successful
/// response: `Payment-Receipt`, `Payment-Session`, `Cache-Control: private`.
pub(crate) fn add_payment_headers(response: &mut rocket::Response<'_>, grant: &Grant) {
    // Receipts go only on successful responses.
    let Some(paid) = grant.payment_headers() else {
        return;
    };
    if !response.status().class().is_success() {
        return;
    }
    response.set_raw_header(headers::PAYMENT_RECEIPT, paid.receipt.header().to_owned());
    if let Some(session) = paid.session {
        response.set_raw_header(headers::PAYMENT_SESSION, session.to_owned());
    }
    // A scan, not Rocket's map lookup (which hashes the name a byte at a
    // time): a response has few headers.
    let existing = response
        .headers()
        .iter()
        .find(|h| {
            h.name()
                .as_str()
                .eq_ignore_ascii_case(headers::CACHE_CONTROL)
        })
        .map(|h| h.value);
    let cache = match private_cache_control(existing.as_deref()) {
        Cow::Borrowed("private") => Cow::Borrowed("private"),
        cache => Cow::Owned(cache.into_owned()),
    };
    response.set_raw_header(headers::CACHE_CONTROL, cache);
}

/// A payment authorized for a `capture = "after"` route, waiting in the
/// request's local cache for the fairing to see the final status.
#[derive(Default)]
pub(crate) struct AwaitingCapture(Mutex<Option<Box<Grant>>>);

/// How many grants wait in requests' local caches, process-wide. The
/// fairing sees every response; while this is zero it need not touch the
/// request's local cache (which would allocate on every request).
static AWAITING: AtomicUsize = AtomicUsize::new(0);

impl AwaitingCapture {
    /// Whether any request may hold a grant awaiting capture.
    pub(crate) fn any() -> bool {
        AWAITING.load(Ordering::SeqCst) > 0
    }

    fn slot(&self) -> std::sync::MutexGuard<'_, Option<Box<Grant>>> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Keeps `grant` for the fairing (releasing any grant kept before).
    pub(crate) fn put(&self, grant: Box<Grant>) {
        if self.slot().replace(grant).is_none() {
            AWAITING.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// The grant kept for this request, if any.
    pub(crate) fn take(&self) -> Option<Box<Grant>> {
        let grant = self.slot().take();
        if grant.is_some() {
            AWAITING.fetch_sub(1, Ordering::SeqCst);
        }
        grant
    }
}

impl Drop for AwaitingCapture {
    /// A grant dropped here (the request ended without the fairing taking
    /// it) releases its authorization on its own; only the count is kept.
    fn drop(&mut self) {
        if self.slot().is_some() {
            AWAITING.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

impl<'r, 'o: 'r, T: Responder<'r, 'o>> Responder<'r, 'o> for Paid<T> {
    fn respond_to(self, req: &'r Request<'_>) -> response::Result<'o> {
        match self {
            Paid::Denied(response) => Ok(to_rocket(response)),
            Paid::Granted(value, grant) if grant.awaits_capture() => {
                if req.rocket().state::<FairingAttached>().is_none() {
                    // Dropping the grant releases the authorization.
                    drop(grant);
                    return Ok(to_rocket(handler::missing_runtime(
                        "capture = \"after\" needs mpp_rocket::Mpp::fairing(...) attached",
                    )));
                }
                req.local_cache(AwaitingCapture::default).put(grant);
                // The fairing captures (and adds the receipt) or releases once
                // the final status is known, catchers included.
                value.respond_to(req)
            }
            Paid::Granted(value, grant) => {
                let mut response = value.respond_to(req)?;
                add_payment_headers(&mut response, &grant);
                Ok(response)
            }
        }
    }
}
