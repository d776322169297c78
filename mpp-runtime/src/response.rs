//! Framework-neutral responses: the 402s and errors the gate produces, and
//! the rejections preconditions return. Adapters translate them verbatim.

use std::borrow::Cow;

use crate::wire::{headers, jcs};

/// A complete HTTP response: status, headers (a name may repeat) and body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// HTTP status code.
    pub status: u16,
    /// Header name/value pairs, in order; `WWW-Authenticate` may repeat.
    pub headers: Vec<(Cow<'static, str>, Cow<'static, str>)>,
    /// The body bytes.
    pub body: Vec<u8>,
}

impl Response {
    /// An empty response with `status`.
    pub fn new(status: u16) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    /// The first value of a header (case-insensitive name).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_ref())
    }

    /// Every value of a header, in order.
    pub fn header_values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_ref())
    }

    /// Adds a header.
    pub fn with_header(
        mut self,
        name: impl Into<Cow<'static, str>>,
        value: impl Into<Cow<'static, str>>,
    ) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Sets the body and its `Content-Type`.
    pub fn with_body(
        mut self,
        content_type: impl Into<Cow<'static, str>>,
        body: impl Into<Vec<u8>>,
    ) -> Self {
        self.headers
            .retain(|(n, _)| !n.eq_ignore_ascii_case(headers::CONTENT_TYPE));
        self.headers
            .push((Cow::Borrowed(headers::CONTENT_TYPE), content_type.into()));
        self.body = body.into();
        self
    }

    /// The body as UTF-8 text (lossy).
    pub fn body_text(&self) -> Cow<'_, str> {
        String::from_utf8_lossy(&self.body)
    }
}

/// What a precondition returns to stop a request before any 402 is minted or
/// any payment settled: an ordinary response such as a 404.
///
/// ```
/// use mpp_runtime::Rejection;
/// let r = Rejection::not_found("No such post.");
/// assert_eq!(r.response().status, 404);
/// assert_eq!(r.response().header("content-type"), Some("application/problem+json"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection(Response);

impl Rejection {
    /// Rejects with an arbitrary response.
    pub fn new(response: Response) -> Self {
        Self(response)
    }

    /// Rejects with an RFC 9457 problem (`type` `about:blank`).
    pub fn problem(status: u16, title: &str, detail: &str) -> Self {
        let mut body = String::with_capacity(64 + title.len() + detail.len());
        body.push_str("{\"type\":\"about:blank\",\"title\":");
        jcs::write_string(title, &mut body);
        body.push_str(",\"status\":");
        body.push_str(&status.to_string());
        body.push_str(",\"detail\":");
        jcs::write_string(detail, &mut body);
        body.push('}');
        Self(Response::new(status).with_body(headers::PROBLEM_JSON, body))
    }

    /// 404 Not Found.
    pub fn not_found(detail: &str) -> Self {
        Self::problem(404, "Not Found", detail)
    }

    /// 403 Forbidden.
    pub fn forbidden(detail: &str) -> Self {
        Self::problem(403, "Forbidden", detail)
    }

    /// 410 Gone.
    pub fn gone(detail: &str) -> Self {
        Self::problem(410, "Gone", detail)
    }

    /// 409 Conflict.
    pub fn conflict(detail: &str) -> Self {
        Self::problem(409, "Conflict", detail)
    }

    /// 422 Unprocessable Content.
    pub fn unprocessable(detail: &str) -> Self {
        Self::problem(422, "Unprocessable Content", detail)
    }

    /// The response that will be sent.
    pub fn response(&self) -> &Response {
        &self.0
    }

    /// Consumes the rejection, returning the response.
    pub fn into_response(self) -> Response {
        self.0
    }
}

impl From<Response> for Rejection {
    fn from(response: Response) -> Self {
        Self(response)
    }
}

/// Adds `private` to a `Cache-Control` value, as responses carrying a
/// `Payment-Receipt` must have.
///
/// ```
/// use mpp_runtime::response::private_cache_control;
/// assert_eq!(private_cache_control(None), "private");
/// assert_eq!(private_cache_control(Some("max-age=60")), "max-age=60, private");
/// assert_eq!(private_cache_control(Some("Private, max-age=60")), "Private, max-age=60");
/// ```
pub fn private_cache_control(existing: Option<&str>) -> Cow<'_, str> {
    match existing.map(str::trim).filter(|v| !v.is_empty()) {
        None => Cow::Borrowed("private"),
        Some(value)
            if value
                .split(',')
                .any(|d| d.trim().eq_ignore_ascii_case("private")) =>
        {
            Cow::Borrowed(value)
        }
        Some(value)
            if value
                .split(',')
                .any(|d| d.trim().eq_ignore_ascii_case("public")) =>
        {
            // A public cache must never store a receipt.
            let kept: Vec<&str> = value
                .split(',')
                .map(str::trim)
                .filter(|d| !d.eq_ignore_ascii_case("public"))
                .collect();
            let mut out = kept.join(", ");
            if !out.is_empty() {
                out.push_str(", ");
            }
            out.push_str("private");
            Cow::Owned(out)
        }
        Some(value) => Cow::Owned(format!("{value}, private")),
    }
}
