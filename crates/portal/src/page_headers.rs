//! Headers on every portal answer that protect a signed-in person: pages may
//! not be framed by another site (its forms clickjacked), the browser keeps
//! no copy of a signed-in page (a shared computer's back button or cache),
//! and sends no more of the URL than the origin to other sites.

use axum::extract::Request;
use axum::http::{header, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;

/// The portal's pages: its own scripts (htmx, uPlot, portal.js under
/// /assets), inline styles (htmx's indicator style, uPlot's), nothing framed.
pub const PAGE_POLICY: &str =
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
     img-src 'self' data:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'";

pub async fn add(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    // Scripts only from the portal's own assets: were some text ever to slip
    // past escaping, a browser still runs none of it. A page that set its own,
    // stricter policy (the printable invoice: no script at all) keeps it.
    let policy = match headers.get(header::CONTENT_SECURITY_POLICY) {
        Some(own) => HeaderValue::from_str(&format!(
            "{}; frame-ancestors 'none'",
            own.to_str().unwrap_or("default-src 'none'")
        ))
        .unwrap_or(HeaderValue::from_static(
            "default-src 'none'; frame-ancestors 'none'",
        )),
        None => HeaderValue::from_static(PAGE_POLICY),
    };
    headers.insert(header::CONTENT_SECURITY_POLICY, policy);
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("strict-origin-when-cross-origin"),
    );
    // The static assets say how long they may be kept; nothing else is kept.
    if !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}
