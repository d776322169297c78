//! A framework-neutral view of an incoming request: what the gate and
//! preconditions may look at. Each adapter fills one from its framework's
//! request; nothing here depends on a framework.

use std::fmt;

/// Name/value pairs stored in one buffer (two allocations however many
/// entries). Names are stored lowercase.
#[derive(Clone, Default)]
struct Fields {
    buf: String,
    /// `(name_start, value_start, value_end)` into `buf`.
    index: Vec<(u32, u32, u32)>,
}

impl Fields {
    fn push(&mut self, name: &str, value: &str) {
        // One allocation for a typical request's fields, not one per field.
        if self.index.capacity() == 0 {
            self.buf.reserve((name.len() + value.len()).max(512));
            self.index.reserve(16);
        }
        let start = self.buf.len();
        self.buf.push_str(name);
        self.buf[start..].make_ascii_lowercase();
        let value_start = self.buf.len();
        self.buf.push_str(value);
        let end = self.buf.len();
        // Requests larger than 4 GiB are not representable, nor sensible.
        if let (Ok(s), Ok(v), Ok(e)) = (
            u32::try_from(start),
            u32::try_from(value_start),
            u32::try_from(end),
        ) {
            self.index.push((s, v, e));
        } else {
            self.buf.truncate(start);
        }
    }

    fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.index.iter().map(|&(s, v, e)| {
            (
                &self.buf[s as usize..v as usize],
                &self.buf[v as usize..e as usize],
            )
        })
    }

    fn get_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }
}

/// The parts of an HTTP request the payment gate and preconditions use.
///
/// ```
/// use mpp_runtime::RequestView;
/// let request = RequestView::new("GET", "/posts/42")
///     .with_header("Authorization", "Payment session=\"sess_1\"")
///     .with_param("post", "42");
/// assert_eq!(request.header("authorization"), Some("Payment session=\"sess_1\""));
/// assert_eq!(request.param("post"), Some("42"));
/// ```
#[derive(Clone)]
pub struct RequestView {
    method: String,
    path: String,
    query: Option<String>,
    headers: Fields,
    params: Fields,
}

impl RequestView {
    /// A request with an HTTP method and a path (without the query string).
    pub fn new(method: impl Into<String>, path: impl Into<String>) -> Self {
        Self {
            method: method.into(),
            path: path.into(),
            query: None,
            headers: Fields::default(),
            params: Fields::default(),
        }
    }

    /// Sets the raw query string (without `?`).
    pub fn with_query(mut self, query: impl Into<String>) -> Self {
        self.query = Some(query.into());
        self
    }

    /// Adds a header (several values for one name are kept in order).
    pub fn with_header(mut self, name: &str, value: &str) -> Self {
        self.push_header(name, value);
        self
    }

    /// Adds a header in place.
    pub fn push_header(&mut self, name: &str, value: &str) {
        self.headers.push(name, value);
    }

    /// Adds a route parameter (a dynamic path segment, by name).
    pub fn with_param(mut self, name: &str, value: &str) -> Self {
        self.push_param(name, value);
        self
    }

    /// Adds a route parameter in place.
    pub fn push_param(&mut self, name: &str, value: &str) {
        self.params.push(name, value);
    }

    /// The HTTP method.
    pub fn method(&self) -> &str {
        &self.method
    }

    /// The request path.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The raw query string, if any.
    pub fn query(&self) -> Option<&str> {
        self.query.as_deref()
    }

    /// The first value of a header (case-insensitive name).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name)
    }

    /// Every value of a header, in order.
    pub fn header_values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers.get_all(name)
    }

    /// All headers, names lowercase.
    pub fn headers(&self) -> impl Iterator<Item = (&str, &str)> {
        self.headers.iter()
    }

    /// A route parameter by name (names are compared case-insensitively).
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params.get(name)
    }

    /// All route parameters.
    pub fn params(&self) -> impl Iterator<Item = (&str, &str)> {
        self.params.iter()
    }
}

impl fmt::Debug for RequestView {
    /// Header values are left out: they may carry credentials, which must
    /// never reach a log.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequestView")
            .field("method", &self.method)
            .field("path", &self.path)
            .field(
                "headers",
                &self.headers.iter().map(|(n, _)| n).collect::<Vec<_>>(),
            )
            .field("params", &self.params.iter().collect::<Vec<_>>())
            .finish()
    }
}
