//! Organisations: create, list mine, show, update.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Json;
use mno_events::api_error::ApiJson;
use mno_events::ApiError;
use serde::Deserialize;
use serde_json::json;

use super::auth::{OrgRole, ReadOrg, SignedIn, UpdateOrg};
use super::{db_error, not_null, present, AppState};
use crate::access::Role;
use crate::store::orgs::{self, OrgFields};
use crate::validate::{self, Problems};
use mno_events::openapi::{Forbidden, JsonBodyErrors, NotFound, Unauthorized};

/// Unknown fields are refused: a misspelled one would otherwise be ignored.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewOrg {
    #[schema(min_length = 1, max_length = 200)]
    name: Option<String>,
    /// ISO 4217.
    #[schema(pattern = "^[A-Za-z]{3}$")]
    currency: Option<String>,
    /// IANA name (default `UTC`).
    #[schema(pattern = "^[A-Za-z0-9/_+-]{1,64}$")]
    timezone: Option<String>,
    /// ISO 3166-1 alpha-2.
    #[schema(pattern = "^([A-Za-z]{2})?$")]
    country: Option<String>,
}

/// `POST /hub/v1/orgs` → 201; the creator becomes its super_admin.
#[utoipa::path(
    post,
    path = "/hub/v1/orgs",
    tag = "hub",
    request_body = NewOrg,
    responses((status = 201, description = "The new organisation; the caller is its super_admin", body = super::openapi::Org), JsonBodyErrors, Unauthorized, Forbidden),
    security(("user" = []))
)]
pub async fn create(
    State(state): State<AppState>,
    me: SignedIn,
    ApiJson(body): ApiJson<NewOrg>,
) -> Result<impl IntoResponse, ApiError> {
    let mut problems = Problems::default();
    let name = problems.check("/name", validate::name("name", body.name.as_deref()));
    let currency = problems.check("/currency", validate::currency(body.currency.as_deref()));
    let timezone = problems.check(
        "/timezone",
        validate::timezone(body.timezone.as_deref().unwrap_or("UTC")),
    );
    let country = problems.check(
        "/country",
        validate::country(body.country.as_deref().unwrap_or("")),
    );
    problems.into_result()?;
    let org = orgs::create(
        &state.store,
        &me.user.id,
        &name.unwrap(),
        &currency.unwrap(),
        &timezone.unwrap(),
        &country.unwrap(),
    )
    .await
    .map_err(db_error)?;
    Ok((
        StatusCode::CREATED,
        Json(org.to_json_with_role(Role::SuperAdmin)),
    ))
}

/// `GET /hub/v1/orgs` → the caller's orgs, with the caller's role in each.
#[utoipa::path(
    get,
    path = "/hub/v1/orgs",
    tag = "hub",
    responses((status = 200, description = "The caller's organisations", body = super::openapi::OrgList), Unauthorized, Forbidden),
    security(("user" = []))
)]
pub async fn list(
    State(state): State<AppState>,
    me: SignedIn,
) -> Result<Json<serde_json::Value>, ApiError> {
    let mine = orgs::of_user(&state.store.pool, &me.user.id)
        .await
        .map_err(db_error)?;
    let list: Vec<_> = mine
        .iter()
        .map(|(org, role)| org.to_json_with_role(*role))
        .collect();
    Ok(Json(json!({ "orgs": list })))
}

/// `GET /hub/v1/orgs/{org}` (members).
#[utoipa::path(
    get,
    path = "/hub/v1/orgs/{org}",
    tag = "hub",
    params(super::openapi::OrgPath),
    responses((status = 200, description = "The organisation", body = super::openapi::Org), Unauthorized, Forbidden, NotFound),
    security(("user" = []))
)]
pub async fn show(caller: OrgRole<ReadOrg>) -> Json<serde_json::Value> {
    Json(caller.org.to_json_with_role(caller.role))
}

/// Unknown fields are refused: a misspelled one would otherwise be ignored.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OrgPatch {
    #[serde(default, deserialize_with = "not_null")]
    name: Option<String>,
    #[serde(default, deserialize_with = "not_null")]
    currency: Option<String>,
    #[serde(default, deserialize_with = "not_null")]
    timezone: Option<String>,
    /// `null` clears it (the country is optional).
    #[serde(default, deserialize_with = "present")]
    country: Option<Option<String>>,
}

/// `PATCH /hub/v1/orgs/{org}` (admin and above): the fields given change.
#[utoipa::path(
    patch,
    path = "/hub/v1/orgs/{org}",
    tag = "hub",
    params(super::openapi::OrgPath),
    request_body = OrgPatch,
    responses((status = 200, description = "The organisation as changed", body = super::openapi::Org), JsonBodyErrors, Unauthorized, Forbidden, NotFound),
    security(("user" = []))
)]
pub async fn update(
    State(state): State<AppState>,
    caller: OrgRole<UpdateOrg>,
    Path(org): Path<String>,
    ApiJson(body): ApiJson<OrgPatch>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let mut problems = Problems::default();
    let fields = OrgFields {
        name: body
            .name
            .and_then(|v| problems.check("/name", validate::name("name", Some(&v)))),
        currency: body
            .currency
            .and_then(|v| problems.check("/currency", validate::currency(Some(&v)))),
        timezone: body
            .timezone
            .and_then(|v| problems.check("/timezone", validate::timezone(&v))),
        country: body.country.and_then(|v| {
            problems.check(
                "/country",
                validate::country(v.as_deref().unwrap_or_default()),
            )
        }),
    };
    problems.into_result()?;
    let row = orgs::update(&state.store, &caller.me.user.id, &org, &fields)
        .await
        .map_err(db_error)?
        .ok_or_else(|| ApiError::not_found(format!("there is no organisation {org}")))?;
    Ok(Json(row.to_json_with_role(caller.role)))
}
