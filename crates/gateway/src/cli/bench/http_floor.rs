//! The HTTP floor: the least any HTTP write API on this bus can cost. A
//! minimal handler parses the JSON body and does one acknowledged publish to
//! a per-record subject, nothing else: no authentication, validation, id map
//! or idempotency. `bench ingest` drives it with the same clients and bodies
//! as the platform's write API, so their ratio says what the platform's own
//! work costs over HTTP plus one publish.

use std::net::SocketAddr;

use anyhow::{Context, Result};
use async_nats::jetstream;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::post;
use axum::{Json, Router};
use bytes::Bytes;
use serde_json::{json, Value};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::bus::fresh_stream;

/// The stream the floor publishes into (subjects `BENCH_HTTP_FLOOR.<org>.<entity>.<id>`).
const STREAM: &str = "BENCH_HTTP_FLOOR";

/// The floor's server, on a loopback port of its own.
pub struct HttpFloor {
    addr: SocketAddr,
    stop: oneshot::Sender<()>,
    server: JoinHandle<std::io::Result<()>>,
    js: jetstream::Context,
}

impl HttpFloor {
    pub async fn start(js: &jetstream::Context) -> Result<HttpFloor> {
        fresh_stream(js, STREAM).await?;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .context("bind the HTTP floor's port")?;
        let addr = listener.local_addr()?;
        let app = Router::new()
            .route("/floor/{org}/{entity}", post(create))
            .with_state(js.clone());
        let (stop, stopped) = oneshot::channel::<()>();
        let server = tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await
        });
        Ok(HttpFloor {
            addr,
            stop,
            server,
            js: js.clone(),
        })
    }

    /// Where `org`'s records of `entity` are posted.
    pub fn url(&self, org: &str, entity: &str) -> String {
        format!("http://{}/floor/{org}/{entity}", self.addr)
    }

    pub async fn stop(self) -> Result<()> {
        let _ = self.stop.send(());
        self.server.await??;
        let _ = self.js.delete_stream(STREAM).await;
        Ok(())
    }
}

/// Parse the body, publish it to the record's own subject, answer once the bus acknowledged it.
async fn create(
    State(js): State<jetstream::Context>,
    Path((org, entity)): Path<(String, String)>,
    body: Bytes,
) -> impl IntoResponse {
    let record: Value = match serde_json::from_slice(&body) {
        Ok(record) => record,
        Err(e) => {
            return (
                StatusCode::BAD_REQUEST,
                Json(json!({"error": format!("the body is not JSON: {e}")})),
            )
        }
    };
    let id = uuid::Uuid::now_v7().to_string();
    let subject = format!("{STREAM}.{org}.{entity}.{id}");
    let published = match js.publish(subject, body).await {
        Ok(ack) => ack.await,
        Err(e) => Err(e),
    };
    match published {
        Ok(_) => (
            StatusCode::CREATED,
            Json(json!({"id": id, "fields": record.as_object().map_or(0, |o| o.len())})),
        ),
        Err(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"error": format!("the bus did not acknowledge: {e}")})),
        ),
    }
}
