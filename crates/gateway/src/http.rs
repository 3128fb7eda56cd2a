//! The edge router: each part's routes, plus health, readiness, and JSON
//! answers for unknown routes and oversized bodies; and the operator's metrics
//! router, served on its own address (`MNO_METRICS_ADDR`), never on the edge:
//! metrics need no credentials and name apps and consumers.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use mno_events::ApiError;
use serde_json::json;

/// Largest request body accepted anywhere (1 MiB).
pub const MAX_BODY_BYTES: usize = 1 << 20;

/// What readiness and metrics look at.
#[derive(Clone)]
pub struct EdgeState {
    pub bus: mno_events::bus::Bus,
    pub db: sqlx::AnyPool,
    pub counters: Arc<HttpCounters>,
}

#[derive(Default)]
pub struct HttpCounters {
    pub requests: AtomicU64,
    pub client_errors: AtomicU64,
    pub server_errors: AtomicU64,
}

/// Compose the parts' routers with the edge's own routes.
pub fn router(parts: Vec<Router>, state: EdgeState) -> Router {
    let counters = state.counters.clone();
    let mut app: Router = Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
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
        .route("/metrics", get(metrics))
        // Every process answers these here, edge or not (a worker has no other listener).
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .with_state(state)
        .fallback(not_found)
}

#[utoipa::path(
    get,
    path = "/healthz",
    tag = "edge",
    responses((status = 200, description = "The process is up", body = Object, example = json!({"status": "ok"})))
)]
pub(crate) async fn healthz() -> Json<serde_json::Value> {
    Json(json!({"status": "ok"}))
}

/// Ready only when the bus and the database both answer.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "edge",
    responses(
        (status = 200, description = "The bus and the database answer", body = Object, example = json!({"status": "ready", "bus": "ok", "database": "ok"})),
        mno_events::openapi::Unavailable
    )
)]
pub(crate) async fn readyz(State(state): State<EdgeState>) -> Response {
    let timeout = Duration::from_secs(2);
    let bus = tokio::time::timeout(timeout, state.bus.js.query_account()).await;
    let bus_ok = matches!(bus, Ok(Ok(_)));
    let db = tokio::time::timeout(
        timeout,
        sqlx::query_scalar::<_, i64>("SELECT 1").fetch_one(&state.db),
    )
    .await;
    let db_ok = matches!(db, Ok(Ok(1)));
    if bus_ok && db_ok {
        return Json(json!({"status": "ready", "bus": "ok", "database": "ok"})).into_response();
    }
    let mut problems = Vec::new();
    if !bus_ok {
        problems.push("the bus (JetStream) does not answer");
    }
    if !db_ok {
        problems.push("the database does not answer");
    }
    ApiError::unavailable(format!("not ready: {}", problems.join(" and "))).into_response()
}

/// Prometheus text: HTTP counters, and every stream's size and every consumer's lag.
/// Served on the operator's address only, so it is not in `/openapi.json`.
async fn metrics(State(state): State<EdgeState>) -> Response {
    use std::fmt::Write;
    let mut out = String::new();
    let c = &state.counters;
    let _ = writeln!(out, "# TYPE mno_http_requests_total counter");
    let _ = writeln!(
        out,
        "mno_http_requests_total {}",
        c.requests.load(Ordering::Relaxed)
    );
    let _ = writeln!(out, "# TYPE mno_http_client_errors_total counter");
    let _ = writeln!(
        out,
        "mno_http_client_errors_total {}",
        c.client_errors.load(Ordering::Relaxed)
    );
    let _ = writeln!(out, "# TYPE mno_http_server_errors_total counter");
    let _ = writeln!(
        out,
        "mno_http_server_errors_total {}",
        c.server_errors.load(Ordering::Relaxed)
    );
    match crate::cli::streams::collect(&state.bus.js).await {
        Ok(report) => {
            let _ = writeln!(out, "# TYPE mno_stream_messages gauge");
            for s in &report.streams {
                let _ = writeln!(
                    out,
                    "mno_stream_messages{{stream=\"{}\"}} {}",
                    s.name, s.messages
                );
            }
            let _ = writeln!(out, "# TYPE mno_stream_bytes gauge");
            for s in &report.streams {
                let _ = writeln!(out, "mno_stream_bytes{{stream=\"{}\"}} {}", s.name, s.bytes);
            }
            let _ = writeln!(out, "# TYPE mno_consumer_pending gauge");
            for k in &report.consumers {
                let _ = writeln!(
                    out,
                    "mno_consumer_pending{{stream=\"{}\",consumer=\"{}\"}} {}",
                    k.stream, k.name, k.pending
                );
            }
            let _ = writeln!(out, "# TYPE mno_consumer_ack_pending gauge");
            for k in &report.consumers {
                let _ = writeln!(
                    out,
                    "mno_consumer_ack_pending{{stream=\"{}\",consumer=\"{}\"}} {}",
                    k.stream, k.name, k.ack_pending
                );
            }
        }
        Err(e) => {
            let _ = writeln!(out, "# streams unavailable: {e}");
        }
    }
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        out,
    )
        .into_response()
}

/// The path exists, the method does not (the `Allow` header lists those that do).
async fn method_not_allowed(request: Request) -> ApiError {
    ApiError::new(
        axum::http::StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!(
            "{} is not served on {}; the Allow header lists the methods that are, and docs/api describes them",
            request.method(),
            request.uri().path()
        ),
    )
}

async fn not_found(request: Request) -> ApiError {
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
