//! `GET/POST /impac/api/v2/rates`: the loaded exchange rates, read and loaded
//! by the admins of the orgs the operator allowed ([`RateLoader`]).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Json;
use mno_events::api_error::ApiJson;
use mno_events::openapi::{Forbidden, JsonBodyErrors, Unauthorized, Unavailable};
use mno_events::ApiError;
use serde_json::{json, Value};

use super::{list, store, validate_body, RatesIn};
use crate::access::RateLoader;
use crate::ImpacState;

/// `POST /impac/api/v2/rates` → 201 `{"rates": [...stored]}`; all or nothing.
#[utoipa::path(
    post,
    path = "/impac/api/v2/rates",
    tag = "impac",
    request_body = crate::openapi::Rates,
    responses((status = 201, description = "Stored, all of them", body = crate::openapi::Rates), JsonBodyErrors, Unauthorized, Forbidden, Unavailable),
    security(("user" = []))
)]
pub async fn load_handler(
    State(state): State<ImpacState>,
    RateLoader(principal): RateLoader,
    ApiJson(body): ApiJson<RatesIn>,
) -> Result<impl IntoResponse, ApiError> {
    let rows = validate_body(&body)?;
    store(&state.db, &rows).await.map_err(ApiError::internal)?;
    tracing::info!(loaded = rows.len(), by = %principal.id, "exchange rates loaded");
    Ok((StatusCode::CREATED, Json(json!({"rates": rows}))))
}

/// `GET /impac/api/v2/rates` → `{"rates": [...]}` (same callers as loading).
#[utoipa::path(
    get,
    path = "/impac/api/v2/rates",
    tag = "impac",
    responses((status = 200, description = "The loaded rates", body = crate::openapi::Rates), Unauthorized, Forbidden, Unavailable),
    security(("user" = []))
)]
pub async fn list_handler(
    State(state): State<ImpacState>,
    _: RateLoader,
) -> Result<Json<Value>, ApiError> {
    let rows = list(&state.db).await.map_err(ApiError::internal)?;
    Ok(Json(json!({"rates": rows})))
}
