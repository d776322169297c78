//! A framework-neutral view of an Actix request.

use actix_web::HttpRequest;
use mpp_runtime::RequestView;

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
