//! What the edge says of itself: `/healthz` (the process is up), `/readyz`
//! (the bus and the database answer) and the operator's `/metrics`, served on
//! its own address (`MNO_METRICS_ADDR`), never on the edge: metrics need no
//! credentials and name apps and consumers.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Json;
use mno_events::ApiError;
use serde_json::json;

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
pub(crate) async fn metrics(State(state): State<EdgeState>) -> Response {
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
            // Durable consumers only: short-lived ones (KV watchers, replays) have
            // random names, and a series for each would grow without bound.
            let durable: Vec<_> = report.consumers.iter().filter(|k| k.durable).collect();
            let _ = writeln!(out, "# TYPE mno_consumer_pending gauge");
            for k in &durable {
                let _ = writeln!(
                    out,
                    "mno_consumer_pending{{stream=\"{}\",consumer=\"{}\"}} {}",
                    k.stream, k.name, k.pending
                );
            }
            let _ = writeln!(out, "# TYPE mno_consumer_ack_pending gauge");
            for k in &durable {
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
