//! Static files embedded in the binary: the client libraries (see
//! `assets/README.md` for their versions and licences) and the portal's own
//! stylesheet and script. Cached for a day; names carry the version.

use axum::extract::Path;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};

const FILES: &[(&str, &str, &[u8])] = &[
    (
        "htmx-2.0.11.min.js",
        "text/javascript",
        include_bytes!("../assets/htmx-2.0.11.min.js"),
    ),
    (
        "htmx-ext-sse-2.2.4.min.js",
        "text/javascript",
        include_bytes!("../assets/htmx-ext-sse-2.2.4.min.js"),
    ),
    (
        "uPlot-1.6.32.iife.min.js",
        "text/javascript",
        include_bytes!("../assets/uPlot-1.6.32.iife.min.js"),
    ),
    (
        "uPlot-1.6.32.min.css",
        "text/css",
        include_bytes!("../assets/uPlot-1.6.32.min.css"),
    ),
    (
        "portal.css",
        "text/css",
        include_bytes!("../assets/portal.css"),
    ),
    (
        "portal.js",
        "text/javascript",
        include_bytes!("../assets/portal.js"),
    ),
];

pub async fn serve(Path(file): Path<String>) -> Response {
    match FILES.iter().find(|(name, _, _)| *name == file) {
        Some((_, content_type, bytes)) => (
            [
                (header::CONTENT_TYPE, *content_type),
                (header::CACHE_CONTROL, "public, max-age=86400"),
            ],
            *bytes,
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "no such asset").into_response(),
    }
}

/// `/favicon.ico`: none (pages say `rel="icon" href="data:,"`), answered with
/// an empty 204 a browser may keep, so that one asked for anyway (by a page
/// of another part, or the browser itself) is no 404 in its console.
pub async fn no_favicon() -> Response {
    (
        StatusCode::NO_CONTENT,
        [(header::CACHE_CONTROL, "public, max-age=86400")],
    )
        .into_response()
}
