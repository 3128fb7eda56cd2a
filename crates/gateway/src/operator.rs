//! `GET /operator/v1/bus`: the streams, consumers and lag that `mno streams`
//! and `mno consumers` print, for the platform's operators: users whose email
//! is listed in `MNO_OPERATORS`. The portal's operator page reads it.
//!
//! Who the caller is comes from the Hub's public `GET /hub/v1/users/me`,
//! asked in process through the Hub's router, as any client would ask it.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, Request};
use axum::routing::get;
use axum::{Json, Router};
use mno_events::ApiError;
use serde_json::{json, Value};
use tower::ServiceExt;

use crate::cli::{consumers, streams};
use mno_events::openapi::{Forbidden, Unauthorized, Unavailable};

/// `GET /operator/v1/bus`: what `mno streams` and `mno consumers --json` print.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)] // describes the answer; never built
pub struct BusReport {
    streams: Vec<streams::StreamRow>,
    consumers: Vec<streams::ConsumerRow>,
    /// Each app's delivery consumer and each projection's consumer, with their lag.
    apps: Vec<consumers::AppLag>,
    /// Each projection's consumer and its lag.
    projections: Vec<consumers::ProjectionLag>,
}

#[derive(Clone)]
pub struct OperatorState {
    pub js: async_nats::jetstream::Context,
    pub hub: Router,
    /// Lower-cased emails of the platform's operators.
    pub operators: Arc<Vec<String>>,
}

pub fn router(state: OperatorState) -> Router {
    Router::new()
        .route("/operator/v1/bus", get(bus))
        .with_state(state)
}

/// A signed-in user whose email is listed in `MNO_OPERATORS`: 401 without a
/// session (as the Hub answers it), 403 for anyone else.
pub struct Operator {
    pub email: String,
}

impl FromRequestParts<OperatorState> for Operator {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &OperatorState,
    ) -> Result<Self, ApiError> {
        let email = caller_email(state, &parts.headers).await?;
        if !state.operators.contains(&email) {
            return Err(ApiError::forbidden(
                "only the platform's operators see the bus: list their emails in MNO_OPERATORS",
            ));
        }
        Ok(Operator { email })
    }
}

/// The signed-in user's email, from the Hub (401 as the Hub answers it).
async fn caller_email(state: &OperatorState, headers: &HeaderMap) -> Result<String, ApiError> {
    let mut request = Request::get("/hub/v1/users/me");
    if let Some(auth) = headers.get(header::AUTHORIZATION) {
        request = request.header(header::AUTHORIZATION, auth);
    }
    let request = request.body(Body::empty()).map_err(ApiError::internal)?;
    let response = state
        .hub
        .clone()
        .oneshot(request)
        .await
        .map_err(ApiError::internal)?;
    let ok = response.status().is_success();
    let body = axum::body::to_bytes(response.into_body(), 1 << 16)
        .await
        .map_err(ApiError::internal)?;
    let me: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    match me["email"].as_str() {
        Some(email) if ok => Ok(email.to_lowercase()),
        _ => Err(ApiError::unauthorized(
            "sign in as a user (Bearer session) to see the bus",
        )),
    }
}

#[utoipa::path(
    get,
    path = "/operator/v1/bus",
    tag = "operator",
    responses((status = 200, description = "Every stream and consumer, and how far behind each app and projection is", body = BusReport), Unauthorized, Forbidden, Unavailable),
    security(("user" = []))
)]
pub async fn bus(
    State(state): State<OperatorState>,
    _operator: Operator,
) -> Result<Json<Value>, ApiError> {
    let unavailable =
        |e: anyhow::Error| ApiError::unavailable(format!("the bus does not answer: {e}"));
    let report = streams::collect(&state.js).await.map_err(unavailable)?;
    let apps = consumers::collect(&state.js).await.map_err(unavailable)?;
    let projections = consumers::collect_projections(&state.js)
        .await
        .map_err(unavailable)?;
    Ok(Json(json!({
        "streams": report.streams,
        "consumers": report.consumers,
        "apps": apps,
        "projections": projections,
    })))
}
