//! A framework-neutral view of an Actix request.

use std::borrow::Cow;

use actix_web::HttpRequest;
use mpp_runtime::RequestView;
use mpp_runtime::handler::RequestSource;

/// Method, path, query, headers, and the route's dynamic segments by name.
pub(crate) fn view(req: &HttpRequest) -> RequestView {
    let mut view = RequestView::new(req.method().as_str(), req.path());
    if !req.query_string().is_empty() {
        view = view.with_query(req.query_string());
    }
    for (name, value) in req.headers() {
        view.push_header(name.as_str(), &String::from_utf8_lossy(value.as_bytes()));
    }
    for (name, value) in req.match_info().iter() {
        view.push_param(name, value);
    }
    view
}

/// An Actix request as the gate reads it: headers in place, the whole view
/// only on demand.
pub(crate) struct Source<'a>(pub(crate) &'a HttpRequest);

impl RequestSource for Source<'_> {
    fn header_values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = Cow<'a, str>> + 'a {
        self.0
            .headers()
            .get_all(name)
            .map(|value| match value.to_str() {
                Ok(text) => Cow::Borrowed(text),
                Err(_) => String::from_utf8_lossy(value.as_bytes()),
            })
    }

    fn view(&self) -> RequestView {
        view(self.0)
    }
}
