//! A framework-neutral view of a Rocket request.

use std::borrow::Cow;

use mpp_runtime::RequestView;
use mpp_runtime::handler::RequestSource;
use rocket::Request;
use rocket::http::RawStr;

/// Method, path, query, headers, and the route's dynamic segments by name.
pub(crate) fn view(req: &Request<'_>) -> RequestView {
    let uri = req.uri();
    let mut view = RequestView::new(req.method().as_str(), uri.path().as_str());
    if let Some(query) = uri.query() {
        view = view.with_query(query.as_str());
    }
    for header in req.headers().iter() {
        view.push_header(header.name().as_str(), header.value());
    }
    // Only templates with dynamic segments (`<id>`) have parameters.
    if let Some(route) = req
        .route()
        .filter(|route| route.uri.unmounted_origin.path().as_str().contains('<'))
    {
        let segments: Vec<&str> = req.routed_segments(0..).collect();
        for (i, template) in route.uri.unmounted_origin.path().segments().enumerate() {
            let Some(name) = template.strip_prefix('<').and_then(|s| s.strip_suffix('>')) else {
                continue;
            };
            let value = match name.strip_suffix("..") {
                Some(_) => segments.get(i..).map(|rest| rest.join("/")),
                None => segments.get(i).map(|s| (*s).to_owned()),
            };
            if let Some(value) = value {
                let decoded = RawStr::new(&value).percent_decode_lossy();
                view.push_param(name.trim_end_matches(".."), &decoded);
            }
        }
    }
    view
}

/// A Rocket request as the gate reads it: headers in place, the whole view
/// only on demand.
pub(crate) struct Source<'r, 'i>(pub(crate) &'r Request<'i>);

impl RequestSource for Source<'_, '_> {
    fn header_values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = Cow<'a, str>> + 'a {
        // A scan, not Rocket's map lookup: a request has few headers, and
        // the map hashes names a byte at a time (several times the cost).
        self.0
            .headers()
            .iter()
            .filter(move |header| header.name().as_str().eq_ignore_ascii_case(name))
            .map(|header| header.value)
    }

    fn view(&self) -> RequestView {
        view(self.0)
    }
}
