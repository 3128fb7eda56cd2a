//! Installs: which apps an org lets in, whether data sharing is on, and which
//! of the app's shared entities the org shares with it.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Json;
use mno_events::api_error::ApiJson;
use mno_events::ApiError;
use serde::Deserialize;
use serde_json::json;

use super::auth::{ManageInstalls, OrgRole, ReadOrg};
use super::{db_error, not_null, present, AppState};
use crate::store::installs::{self, InstallChange, InstallError};
use crate::validate::Problems;
use mno_events::openapi::{Conflict, Forbidden, JsonBodyErrors, NotFound, Unauthorized};

fn install_error(e: InstallError, org: &str, app: &str) -> ApiError {
    match e {
        InstallError::UnknownApp => ApiError::unprocessable(
            "unknown_app",
            format!("there is no app {app}; list the catalogue with GET /hub/v1/apps"),
        )
        .at_pointer("/app_id"),
        InstallError::AlreadyInstalled => ApiError::conflict(
            "already_installed",
            format!("app {app} is already installed in {org}; change data sharing with PATCH .../installs/{app}"),
        ),
        InstallError::NotInstalled => ApiError::not_found(format!(
            "app {app} is not installed in organisation {org}"
        ))
        .at_parameter("app"),
        InstallError::UnsharedEntities { bad, valid } => {
            let mut problems = Problems::default();
            for (i, entity) in bad {
                problems.add(
                    &format!("/entities/{i}"),
                    format!(
                        "app {app} does not share {entity:?}; the entities it shares are: {}",
                        valid.join(", ")
                    ),
                );
            }
            problems
                .into_result()
                .expect_err("an UnsharedEntities error names at least one entity")
        }
        InstallError::Db(e) => db_error(e),
    }
}

/// Unknown fields are refused: a misspelled one would otherwise be ignored.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewInstall {
    app_id: Option<String>,
    data_sharing: Option<bool>,
}

/// `POST /hub/v1/orgs/{org}/installs` {app_id, data_sharing?=true} (admin and above) → 201.
#[utoipa::path(
    post,
    path = "/hub/v1/orgs/{org}/installs",
    tag = "hub",
    params(super::openapi::OrgPath),
    request_body = NewInstall,
    responses((status = 201, description = "The install", body = super::openapi::Install), JsonBodyErrors, Unauthorized, Forbidden, NotFound, Conflict),
    security(("user" = []))
)]
pub async fn create(
    State(state): State<AppState>,
    caller: OrgRole<ManageInstalls>,
    Path(org): Path<String>,
    ApiJson(body): ApiJson<NewInstall>,
) -> Result<impl IntoResponse, ApiError> {
    let Some(app) = body.app_id.filter(|a| !a.is_empty()) else {
        return Err(ApiError::unprocessable(
            "invalid_field",
            "app_id is required; the id of an app from GET /hub/v1/apps",
        )
        .at_pointer("/app_id"));
    };
    let row = installs::install(
        &state.store,
        &caller.me.user.id,
        &org,
        &app,
        body.data_sharing.unwrap_or(true),
    )
    .await
    .map_err(|e| install_error(e, &org, &app))?;
    Ok((StatusCode::CREATED, Json(row.to_json())))
}

/// `GET /hub/v1/orgs/{org}/installs` (members).
#[utoipa::path(
    get,
    path = "/hub/v1/orgs/{org}/installs",
    tag = "hub",
    params(super::openapi::OrgPath),
    responses((status = 200, description = "The apps installed in the organisation", body = super::openapi::InstallList), Unauthorized, Forbidden, NotFound),
    security(("user" = []))
)]
pub async fn list(
    State(state): State<AppState>,
    _caller: OrgRole<ReadOrg>,
    Path(org): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let rows = installs::of_org(&state.store.pool, &org)
        .await
        .map_err(db_error)?;
    let list: Vec<_> = rows.iter().map(|r| r.to_json()).collect();
    Ok(Json(json!({ "installs": list })))
}

/// `GET /hub/v1/orgs/{org}/installs/{app}` (members).
#[utoipa::path(
    get,
    path = "/hub/v1/orgs/{org}/installs/{app}",
    tag = "hub",
    params(super::openapi::OrgAppPath),
    responses((status = 200, description = "The install", body = super::openapi::Install), Unauthorized, Forbidden, NotFound),
    security(("user" = []))
)]
pub async fn show(
    State(state): State<AppState>,
    _caller: OrgRole<ReadOrg>,
    Path((org, app)): Path<(String, String)>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let row = installs::get(&state.store.pool, &org, &app)
        .await
        .map_err(db_error)?
        .ok_or_else(|| install_error(InstallError::NotInstalled, &org, &app))?;
    Ok(Json(row.to_json()))
}

/// Unknown fields are refused: a misspelled one would otherwise be ignored.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InstallPatch {
    /// Whether the org shares its records with the app (`null` is refused).
    #[serde(default, deserialize_with = "not_null")]
    #[schema(nullable = false)]
    data_sharing: Option<bool>,
    /// The entities the org shares with the app, each one of the app's
    /// `shared_entities`; `null` shares all of them (the default).
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<Vec<String>>)]
    entities: Option<Option<Vec<String>>>,
}

/// `PATCH /hub/v1/orgs/{org}/installs/{app}` {data_sharing?, entities?} (admin and above).
#[utoipa::path(
    patch,
    path = "/hub/v1/orgs/{org}/installs/{app}",
    tag = "hub",
    params(super::openapi::OrgAppPath),
    request_body = InstallPatch,
    responses((status = 200, description = "The install as changed", body = super::openapi::Install), JsonBodyErrors, Unauthorized, Forbidden, NotFound),
    security(("user" = []))
)]
pub async fn update(
    State(state): State<AppState>,
    caller: OrgRole<ManageInstalls>,
    Path((org, app)): Path<(String, String)>,
    ApiJson(body): ApiJson<InstallPatch>,
) -> Result<Json<serde_json::Value>, ApiError> {
    if body.data_sharing.is_none() && body.entities.is_none() {
        return Err(ApiError::unprocessable(
            "invalid_field",
            "give data_sharing (true or false), entities (a list of the app's shared entities, or null for all of them), or both",
        )
        .at_pointer("/data_sharing"));
    }
    if body
        .entities
        .as_ref()
        .is_some_and(|e| e.as_ref().is_some_and(Vec::is_empty))
    {
        return Err(ApiError::unprocessable(
            "invalid_field",
            "entities may not be empty: list at least one entity to share, or set data_sharing to false to share none",
        )
        .at_pointer("/entities"));
    }
    let change = InstallChange {
        data_sharing: body.data_sharing,
        entities: body.entities,
    };
    let row = installs::update(&state.store, &caller.me.user.id, &org, &app, change)
        .await
        .map_err(|e| install_error(e, &org, &app))?;
    Ok(Json(row.to_json()))
}

/// `DELETE /hub/v1/orgs/{org}/installs/{app}` (admin and above) → 204.
#[utoipa::path(
    delete,
    path = "/hub/v1/orgs/{org}/installs/{app}",
    tag = "hub",
    params(super::openapi::OrgAppPath),
    responses((status = 204, description = "Uninstalled"), Unauthorized, Forbidden, NotFound),
    security(("user" = []))
)]
pub async fn remove(
    State(state): State<AppState>,
    caller: OrgRole<ManageInstalls>,
    Path((org, app)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    installs::uninstall(&state.store, &caller.me.user.id, &org, &app)
        .await
        .map_err(|e| install_error(e, &org, &app))?;
    Ok(StatusCode::NO_CONTENT)
}
