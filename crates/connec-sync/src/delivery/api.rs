//! HTTP routes of delivery under `/connec/api/v2`: the delivery log, dead
//! letters and their redrive, recovery, each app's consumer lag, and SSE.

use std::collections::HashSet;

use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use mno_events::api_error::ApiJson;
use mno_events::streams::RECORDS;
use mno_events::ApiError;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::auth;
use super::dlq::{self, DlqError};
use super::http_state::ApiState;
use super::log::AttemptStatus;
use super::outcomes::{Redriven, Since, SupervisorError};
use super::sse;
use super::supervisor::consumer_name;
use mno_events::openapi::{
    BadRequest, Conflict, Forbidden, JsonBodyErrors, NotFound, Unauthorized, Unavailable,
};

pub fn router(state: ApiState) -> Router {
    Router::new()
        .route("/connec/api/v2/deliveries", get(list_deliveries))
        .route(
            "/connec/api/v2/deliveries/{app}/consumer",
            get(consumer_lag),
        )
        .route(
            "/connec/api/v2/deliveries/{app}/dlq",
            get(list_dead_letters),
        )
        .route(
            "/connec/api/v2/deliveries/{app}/dlq/redrive",
            post(redrive_all),
        )
        .route(
            "/connec/api/v2/deliveries/{app}/dlq/{seq}",
            get(show_dead_letter),
        )
        .route(
            "/connec/api/v2/deliveries/{app}/dlq/{seq}/redrive",
            post(redrive_one),
        )
        .route("/connec/api/v2/deliveries/{app}/recover", post(recover))
        .route("/connec/api/v2/{org}/stream", get(sse::stream))
        .with_state(state)
}

impl From<SupervisorError> for ApiError {
    fn from(e: SupervisorError) -> Self {
        match e {
            SupervisorError::NoApp(_) => ApiError::not_found(e.to_string()),
            SupervisorError::NotSubscribed(_) | SupervisorError::Disabled(_) => {
                ApiError::conflict("not_delivering", e.to_string())
            }
            SupervisorError::Dlq(inner) => inner.into(),
            SupervisorError::Unavailable(_) => ApiError::unavailable(e.to_string()),
        }
    }
}

impl From<DlqError> for ApiError {
    fn from(e: DlqError) -> Self {
        match e {
            DlqError::NotFound(_) | DlqError::Unreadable(_) => ApiError::not_found(e.to_string()),
            DlqError::Token(_) => ApiError::bad_request("invalid_parameter", e.to_string()),
            DlqError::Bus(_) => ApiError::unavailable(e.to_string()),
        }
    }
}

async fn visible(
    state: &ApiState,
    headers: &HeaderMap,
    app: &str,
) -> Result<HashSet<String>, ApiError> {
    // The app id names a consumer and DLQ subjects on the bus: check it first.
    mno_events::subject::Token::parse("app", app).map_err(|e| {
        ApiError::bad_request("invalid_parameter", e.to_string()).at_parameter("app")
    })?;
    let credential = mno_events::http_auth::credential(headers)?;
    auth::visible_orgs(
        &*state.idm,
        &*state.supervisor.ctx.directory,
        &credential,
        app,
    )
    .await
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct LogQuery {
    app: Option<String>,
    status: Option<String>,
    limit: Option<usize>,
}

/// `GET /connec/api/v2/deliveries?app=&status=&limit=`: recent attempts, newest first.
#[utoipa::path(
    get,
    path = "/connec/api/v2/deliveries",
    tag = "delivery",
    params(LogQuery),
    responses((status = 200, description = "Recent delivery attempts, newest first", body = crate::api::openapi::DeliveryList), BadRequest, Unauthorized, Forbidden, NotFound),
    security(("app" = []), ("user" = []))
)]
async fn list_deliveries(
    State(state): State<ApiState>,
    headers: HeaderMap,
    Query(query): Query<LogQuery>,
) -> Result<Json<Value>, ApiError> {
    let app = query.app.ok_or_else(|| {
        ApiError::bad_request(
            "missing_parameter",
            "give the app whose deliveries to list: ?app=<app id>",
        )
        .at_parameter("app")
    })?;
    let status = match query.status.as_deref() {
        None | Some("") => None,
        Some(text) => Some(AttemptStatus::parse(text).ok_or_else(|| {
            ApiError::bad_request(
                "invalid_parameter",
                format!("status {text:?} is not one of delivered, failed, dead_lettered, disabled"),
            )
            .at_parameter("status")
        })?),
    };
    let orgs = visible(&state, &headers, &app).await?;
    let limit = query.limit.unwrap_or(100).clamp(1, 1000);
    let entries = state
        .supervisor
        .ctx
        .log
        .query(&app, |org| orgs.contains(org), status, limit)
        .await
        .map_err(ApiError::internal)?;
    Ok(Json(json!({"deliveries": entries})))
}

#[derive(Serialize)]
struct Lag {
    app_id: String,
    consumer: String,
    /// Events not yet read by delivery.
    pending: u64,
    /// Read but not yet delivered (waiting, in flight or retrying).
    ack_pending: usize,
    redelivered: usize,
    delivered_seq: u64,
    ack_floor_seq: u64,
}

/// `GET /connec/api/v2/deliveries/{app}/consumer`: the app's consumer lag.
#[utoipa::path(
    get,
    path = "/connec/api/v2/deliveries/{app}/consumer",
    tag = "delivery",
    params(crate::api::openapi::AppPath),
    responses((status = 200, description = "The app's delivery consumer", body = crate::api::openapi::ConsumerAnswer), Unauthorized, Forbidden, NotFound, Unavailable),
    security(("app" = []), ("user" = []))
)]
async fn consumer_lag(
    State(state): State<ApiState>,
    headers: HeaderMap,
    Path(app): Path<String>,
) -> Result<Json<Value>, ApiError> {
    visible(&state, &headers, &app).await?;
    let js = &state.supervisor.ctx.js;
    let stream = js
        .get_stream_no_info(RECORDS)
        .await
        .map_err(|e| ApiError::unavailable(format!("the bus did not answer: {e}")))?;
    let name = consumer_name(&app);
    let mut consumer = stream
        .get_consumer::<async_nats::jetstream::consumer::pull::Config>(&name)
        .await
        .map_err(|_| {
            ApiError::not_found(format!(
                "app {app} has no delivery consumer: it needs a webhook URL and a shared entity with read on"
            ))
        })?;
    let info = consumer
        .info()
        .await
        .map_err(|e| ApiError::unavailable(format!("the bus did not answer: {e}")))?;
    Ok(Json(json!({"consumer": Lag {
        app_id: app.clone(),
        consumer: name,
        pending: info.num_pending,
        ack_pending: info.num_ack_pending,
        redelivered: info.num_redelivered,
        delivered_seq: info.delivered.stream_sequence,
        ack_floor_seq: info.ack_floor.stream_sequence,
    }})))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct DlqQuery {
    org: Option<String>,
    after: Option<u64>,
    limit: Option<usize>,
}

/// `GET /connec/api/v2/deliveries/{app}/dlq?org=&after=&limit=`: dead letters, oldest first.
#[utoipa::path(
    get,
    path = "/connec/api/v2/deliveries/{app}/dlq",
    tag = "delivery",
    params(crate::api::openapi::AppPath, DlqQuery),
    responses((status = 200, description = "Dead letters, oldest first", body = crate::api::openapi::DeadLetters), BadRequest, Unauthorized, Forbidden, NotFound, Unavailable),
    security(("app" = []), ("user" = []))
)]
async fn list_dead_letters(
    State(state): State<ApiState>,
    headers: HeaderMap,
    Path(app): Path<String>,
    Query(query): Query<DlqQuery>,
) -> Result<Json<Value>, ApiError> {
    let orgs = visible(&state, &headers, &app).await?;
    if let Some(org) = &query.org {
        if !orgs.contains(org) {
            return Err(ApiError::forbidden(format!(
                "you may not see app {app}'s dead letters of organisation {org}"
            ))
            .at_parameter("org"));
        }
    }
    let filter = dlq::filter(Some(&app), query.org.as_deref())?;
    let limit = query.limit.unwrap_or(100).clamp(1, 1000);
    let letters = dlq::list(
        &state.supervisor.ctx.js,
        &filter,
        query.after.unwrap_or(0),
        limit,
    )
    .await?
    .into_iter()
    .filter(|l| orgs.contains(&l.letter.org))
    .collect::<Vec<_>>();
    Ok(Json(json!({"dead_letters": letters})))
}

async fn visible_letter(
    state: &ApiState,
    headers: &HeaderMap,
    app: &str,
    seq: u64,
) -> Result<dlq::StoredLetter, ApiError> {
    let orgs = visible(state, headers, app).await?;
    let stored = dlq::get(&state.supervisor.ctx.js, seq).await?;
    if stored.letter.app_id != app || !orgs.contains(&stored.letter.org) {
        return Err(DlqError::NotFound(seq).into());
    }
    Ok(stored)
}

/// `GET /connec/api/v2/deliveries/{app}/dlq/{seq}`.
#[utoipa::path(
    get,
    path = "/connec/api/v2/deliveries/{app}/dlq/{seq}",
    tag = "delivery",
    params(crate::api::openapi::AppLetterPath),
    responses((status = 200, description = "The dead letter", body = crate::api::openapi::DeadLetterAnswer), BadRequest, Unauthorized, Forbidden, NotFound, Unavailable),
    security(("app" = []), ("user" = []))
)]
async fn show_dead_letter(
    State(state): State<ApiState>,
    headers: HeaderMap,
    Path((app, seq)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let seq = letter_seq(&seq)?;
    let stored = visible_letter(&state, &headers, &app, seq).await?;
    Ok(Json(json!({"dead_letter": stored})))
}

/// The path's `{seq}`: a dead letter's sequence number, as the DLQ list gives it.
fn letter_seq(seq: &str) -> Result<u64, ApiError> {
    seq.parse().map_err(|_| {
        ApiError::bad_request(
            "invalid_parameter",
            format!(
                "{seq:?} is not a dead letter's sequence number; send the whole number `seq` of a letter from GET /connec/api/v2/deliveries/{{app}}/dlq"
            ),
        )
        .at_parameter("seq")
    })
}

/// `POST /connec/api/v2/deliveries/{app}/dlq/{seq}/redrive`: 202; it leaves the DLQ once delivered.
#[utoipa::path(
    post,
    path = "/connec/api/v2/deliveries/{app}/dlq/{seq}/redrive",
    tag = "delivery",
    params(crate::api::openapi::AppLetterPath),
    responses((status = 202, description = "Sent again; it leaves the DLQ once delivered", body = crate::api::openapi::RedriveAnswer), BadRequest, Unauthorized, Forbidden, NotFound, Conflict, Unavailable),
    security(("app" = []), ("user" = []))
)]
async fn redrive_one(
    State(state): State<ApiState>,
    headers: HeaderMap,
    Path((app, seq)): Path<(String, String)>,
) -> Result<(axum::http::StatusCode, Json<Value>), ApiError> {
    let seq = letter_seq(&seq)?;
    visible_letter(&state, &headers, &app, seq).await?;
    let outcome = state.supervisor.redrive(&app, seq).await?;
    Ok((
        axum::http::StatusCode::ACCEPTED,
        Json(Redriven::answer(&[outcome])),
    ))
}

/// `POST /connec/api/v2/deliveries/{app}/dlq/redrive`: every dead letter you may see.
#[utoipa::path(
    post,
    path = "/connec/api/v2/deliveries/{app}/dlq/redrive",
    tag = "delivery",
    params(crate::api::openapi::AppPath),
    responses((status = 202, description = "Every dead letter the caller may see, sent again", body = crate::api::openapi::RedriveAnswer), BadRequest, Unauthorized, Forbidden, NotFound, Conflict, Unavailable),
    security(("app" = []), ("user" = []))
)]
async fn redrive_all(
    State(state): State<ApiState>,
    headers: HeaderMap,
    Path(app): Path<String>,
) -> Result<(axum::http::StatusCode, Json<Value>), ApiError> {
    let orgs = visible(&state, &headers, &app).await?;
    let filter = dlq::filter(Some(&app), None)?;
    let letters = dlq::list(&state.supervisor.ctx.js, &filter, 0, 10_000).await?;
    // Oldest first: of several letters of one record, the older ones are superseded.
    let mut outcomes = Vec::new();
    for letter in letters.into_iter().filter(|l| orgs.contains(&l.letter.org)) {
        outcomes.push(state.supervisor.redrive(&app, letter.seq).await?);
    }
    Ok((
        axum::http::StatusCode::ACCEPTED,
        Json(Redriven::answer(&outcomes)),
    ))
}

#[derive(Deserialize)]
struct RecoverBody {
    /// An RFC 3339 time, or a RECORDS sequence number.
    since: Value,
}

/// `POST /connec/api/v2/deliveries/{app}/recover {"since": "<RFC 3339>" | <sequence>}`.
#[utoipa::path(
    post,
    path = "/connec/api/v2/deliveries/{app}/recover",
    tag = "delivery",
    params(crate::api::openapi::AppPath),
    request_body = crate::api::openapi::Recover,
    responses((status = 202, description = "The app's changes since then are being sent again", body = crate::api::openapi::RecoveryAnswer), JsonBodyErrors, Unauthorized, Forbidden, NotFound, Conflict, Unavailable),
    security(("app" = []), ("user" = []))
)]
async fn recover(
    State(state): State<ApiState>,
    headers: HeaderMap,
    Path(app): Path<String>,
    ApiJson(body): ApiJson<RecoverBody>,
) -> Result<(axum::http::StatusCode, Json<Value>), ApiError> {
    let since = match &body.since {
        Value::Number(n) => n.as_u64().map(Since::Sequence),
        Value::String(s) => s.parse::<u64>().ok().map(Since::Sequence).or_else(|| {
            DateTime::parse_from_rfc3339(s)
                .ok()
                .map(|t| Since::Time(t.with_timezone(&Utc)))
        }),
        _ => None,
    }
    .ok_or_else(|| {
        ApiError::unprocessable(
            "invalid_field",
            "since must be an RFC 3339 time (\"2026-01-31T12:00:00Z\") or a stream sequence number",
        )
        .at_pointer("/since")
    })?;
    let orgs = visible(&state, &headers, &app).await?;
    let installs = state
        .supervisor
        .ctx
        .directory
        .installs_of_app(&app)
        .await
        .map_err(|e| ApiError::unavailable(e.to_string()))?;
    // Recovery re-sends for every org of the app: only the app itself (or an admin of each of them) may ask.
    if installs.iter().any(|i| !orgs.contains(&i.org)) {
        return Err(ApiError::forbidden(format!(
            "recovery re-sends app {app}'s changes of every organisation that installed it; ask with the app's own credentials"
        )));
    }
    let recovered = state.supervisor.recover(&app, since).await?;
    Ok((
        axum::http::StatusCode::ACCEPTED,
        Json(json!({"recovery": recovered})),
    ))
}
