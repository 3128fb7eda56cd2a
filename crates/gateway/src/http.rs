//! The edge router: each part's routes, plus health, readiness and this
//! document ([`crate::health`], [`crate::openapi`]), and JSON answers for
//! unknown routes, refused requests and oversized bodies; every request
//! counted. And the operator's listener, which serves the metrics.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use mno_events::ApiError;

use crate::health::{self, EdgeState, HttpCounters};

/// Largest request body accepted anywhere (1 MiB).
pub const MAX_BODY_BYTES: usize = 1 << 20;

/// Compose the parts' routers with the edge's own routes.
pub fn router(parts: Vec<Router>, state: EdgeState) -> Router {
    let counters = state.counters.clone();
    let mut app: Router = Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/openapi.json", get(crate::openapi::document))
        .with_state(state);
    for part in parts {
        app = app.merge(part);
    }
    app.method_not_allowed_fallback(method_not_allowed)
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(middleware::from_fn_with_state(counters, count_requests))
        .layer(tower_http::trace::TraceLayer::new_for_http())
}

/// The operator's listener: `/metrics` only (unknown paths answer the JSON 404).
pub fn metrics_router(state: EdgeState) -> Router {
    Router::new()
        .route("/metrics", get(health::metrics))
        // Every process answers these here, edge or not (a worker has no other listener).
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .with_state(state)
        .fallback(api_not_found)
}

/// The first path segments of the APIs (and the edge's own JSON routes):
/// every other path is the portal's, whose unknown addresses a browser is
/// shown as pages.
const API_ROOTS: &[&str] = &[
    "hub",
    "idm",
    "connec",
    "impac",
    ".well-known",
    "openapi.json",
    "healthz",
    "readyz",
];

/// A browser's request for a page of the portal (not an API client's).
fn wants_portal_page(request: &Request) -> bool {
    let path = request.uri().path();
    let root = path.trim_start_matches('/').split('/').next().unwrap_or("");
    let api = API_ROOTS.contains(&root) || path.starts_with("/operator/v1");
    !api && mno_portal::fallback::wants_page(request.headers())
}

/// The path exists, the method does not (the `Allow` header lists those that do).
/// A browser's GET of a portal form's address is sent to the form's page.
async fn method_not_allowed(request: Request) -> Response {
    if request.method() == axum::http::Method::GET && wants_portal_page(&request) {
        return mno_portal::fallback::post_only(request.uri().path());
    }
    ApiError::new(
        axum::http::StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!(
            "{} is not served on {}; the Allow header lists the methods that are, and docs/api describes them",
            request.method(),
            request.uri().path()
        ),
    )
    .into_response()
}

/// No route: the JSON 404, or the portal's "Page not found" for a browser.
async fn not_found(request: Request) -> Response {
    if wants_portal_page(&request) {
        return mno_portal::fallback::not_found(request.uri().path());
    }
    api_not_found(request).await.into_response()
}

async fn api_not_found(request: Request) -> ApiError {
    ApiError::not_found(format!(
        "no route {} {}; see docs/api for the routes",
        request.method(),
        request.uri().path()
    ))
}

async fn count_requests(
    State(counters): State<Arc<HttpCounters>>,
    request: Request,
    next: Next,
) -> Response {
    let response = next.run(request).await;
    counters.requests.fetch_add(1, Ordering::Relaxed);
    let status = response.status();
    if status.is_client_error() {
        counters.client_errors.fetch_add(1, Ordering::Relaxed);
    } else if status.is_server_error() {
        counters.server_errors.fetch_add(1, Ordering::Relaxed);
    }
    if status.is_client_error() && is_plain_text(&response) {
        return json_rejection(response).await;
    }
    response
}

/// axum's rejections are `text/plain` (or have no type). JSON errors and the
/// HTML pages of the sign-in flow and the portal are answered as they are.
fn is_plain_text(response: &Response) -> bool {
    response
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .is_none_or(|v| v.as_bytes().starts_with(b"text/plain"))
}

/// axum's own rejections (a path or query value that does not parse, an
/// oversized body, ...) are plain text; every part's routes answer the JSON
/// error shape instead, with axum's words as the detail.
async fn json_rejection(response: Response) -> Response {
    let status = response.status();
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        return ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("the body is larger than the {MAX_BODY_BYTES}-byte limit; split it into smaller requests"),
        )
        .into_response();
    }
    let (parts, body) = response.into_parts();
    // Rejection texts are short; anything longer is not one of them.
    let text = axum::body::to_bytes(body, 4096)
        .await
        .map(|b| String::from_utf8_lossy(&b).trim().to_owned())
        .unwrap_or_default();
    let (code, advice) = match status {
        StatusCode::BAD_REQUEST => (
            "invalid_parameter",
            "; check the path and query parameters against docs/api",
        ),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => (
            "unsupported_media_type",
            "; send Content-Type: application/json",
        ),
        _ => ("bad_request", ""),
    };
    let detail = if text.is_empty() {
        format!("the request was refused ({status}){advice}")
    } else {
        format!("{text}{advice}")
    };
    let mut answer = ApiError::new(status, code, detail).into_response();
    // Keep what the refusal said beside its body (Allow, Retry-After, ...).
    for (name, value) in &parts.headers {
        if name != axum::http::header::CONTENT_TYPE && name != axum::http::header::CONTENT_LENGTH {
            answer.headers_mut().entry(name).or_insert(value.clone());
        }
    }
    answer
}
