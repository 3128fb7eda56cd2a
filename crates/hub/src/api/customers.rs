//! The app's view of its customers (HTTP Basic): the orgs that installed it
//! and their members with roles. An org that did not install the app does
//! not exist for it: 404, whether or not the org exists.

use axum::extract::{Path, State};
use axum::Json;
use mno_events::ApiError;
use serde_json::{json, Value};

use super::auth::CallingApp;
use super::{db_error, AppState};
use crate::store::installs::{self, InstallRow};
use crate::store::orgs;
use mno_events::openapi::{NotFound, Unauthorized};

/// An org as its app sees it: the org, and the install.
fn customer_json(org: &orgs::OrgRow, install: &InstallRow) -> Value {
    let mut value = org.to_json();
    value["data_sharing"] = json!(install.data_sharing);
    value["entities"] = json!(install.entities);
    value["installed_at"] = install.to_json()["installed_at"].clone();
    value
}

async fn installed_org(
    state: &AppState,
    app: &str,
    org: &str,
) -> Result<(orgs::OrgRow, InstallRow), ApiError> {
    let not_found = || {
        ApiError::not_found(format!(
            "your app is not installed in an organisation {org}; GET /hub/v1/app/orgs lists the ones it is"
        ))
        .at_parameter("org")
    };
    let install = installs::get(&state.store.pool, org, app)
        .await
        .map_err(db_error)?
        .ok_or_else(not_found)?;
    let row = orgs::get(&state.store.pool, org)
        .await
        .map_err(db_error)?
        .ok_or_else(not_found)?;
    Ok((row, install))
}

/// `GET /hub/v1/app/orgs`: the orgs where the calling app is installed.
#[utoipa::path(
    get,
    path = "/hub/v1/app/orgs",
    tag = "billing",
    responses((status = 200, description = "The organisations that installed the calling app", body = super::openapi::CustomerList), Unauthorized),
    security(("app" = []))
)]
pub async fn list(
    State(state): State<AppState>,
    CallingApp(app): CallingApp,
) -> Result<Json<Value>, ApiError> {
    let mut list = Vec::new();
    for install in installs::of_app(&state.store.pool, &app.id)
        .await
        .map_err(db_error)?
    {
        if let Some(org) = orgs::get(&state.store.pool, &install.org_id)
            .await
            .map_err(db_error)?
        {
            list.push(customer_json(&org, &install));
        }
    }
    Ok(Json(json!({ "orgs": list })))
}

/// `GET /hub/v1/app/orgs/{org}`.
#[utoipa::path(
    get,
    path = "/hub/v1/app/orgs/{org}",
    tag = "billing",
    params(super::openapi::OrgPath),
    responses((status = 200, description = "The organisation, as the app sees it", body = super::openapi::Customer), Unauthorized, NotFound),
    security(("app" = []))
)]
pub async fn show(
    State(state): State<AppState>,
    CallingApp(app): CallingApp,
    Path(org): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let (row, install) = installed_org(&state, &app.id, &org).await?;
    Ok(Json(customer_json(&row, &install)))
}

/// `GET /hub/v1/app/orgs/{org}/members`: the members and their roles.
#[utoipa::path(
    get,
    path = "/hub/v1/app/orgs/{org}/members",
    tag = "billing",
    params(super::openapi::OrgPath),
    responses((status = 200, description = "The organisation's members and their roles", body = super::openapi::MemberList), Unauthorized, NotFound),
    security(("app" = []))
)]
pub async fn members(
    State(state): State<AppState>,
    CallingApp(app): CallingApp,
    Path(org): Path<String>,
) -> Result<Json<Value>, ApiError> {
    installed_org(&state, &app.id, &org).await?;
    let members = orgs::members(&state.store.pool, &org)
        .await
        .map_err(db_error)?;
    let list: Vec<_> = members.iter().map(|m| m.to_json()).collect();
    Ok(Json(json!({ "members": list })))
}
