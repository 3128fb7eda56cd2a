//! Members of an org: list, change role, remove (they join by invitation: `invitations`).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use mno_events::api_error::ApiJson;
use mno_events::ApiError;
use serde::Deserialize;
use serde_json::json;

use super::auth::{ManageMembers, OrgRole, ReadOrg};
use super::{db_error, AppState};
use crate::access::Role;
use crate::store::orgs::{self, MemberError};
use crate::validate::{self, Problems};
use mno_events::openapi::{Conflict, Forbidden, JsonBodyErrors, NotFound, Unauthorized};

fn member_error(e: MemberError, org: &str, actor_role: Role) -> ApiError {
    match e {
        MemberError::NotAMember => ApiError::not_found(format!(
            "this user is not a member of organisation {org}"
        ))
        .at_parameter("user"),
        MemberError::RoleTooHigh => ApiError::forbidden(format!(
            "your role {actor_role} may not manage this member or grant this role; only a super_admin manages super_admins"
        )),
        MemberError::LastSuperAdmin => ApiError::conflict(
            "last_super_admin",
            format!("this is the last super_admin of {org}; make another member super_admin first"),
        ),
        MemberError::Db(e) => db_error(e),
    }
}

/// `GET /hub/v1/orgs/{org}/members` (members).
#[utoipa::path(
    get,
    path = "/hub/v1/orgs/{org}/members",
    tag = "hub",
    params(super::openapi::OrgPath),
    responses((status = 200, description = "The members", body = super::openapi::MemberList), Unauthorized, Forbidden, NotFound),
    security(("user" = []))
)]
pub async fn list(
    State(state): State<AppState>,
    _caller: OrgRole<ReadOrg>,
    Path(org): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let members = orgs::members(&state.store.pool, &org)
        .await
        .map_err(db_error)?;
    let list: Vec<_> = members.iter().map(|m| m.to_json()).collect();
    Ok(Json(json!({ "members": list })))
}

/// Unknown fields are refused: a misspelled one would otherwise be ignored.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MemberPatch {
    role: Option<String>,
}

/// `PATCH /hub/v1/orgs/{org}/members/{user}` {role} (admin and above).
#[utoipa::path(
    patch,
    path = "/hub/v1/orgs/{org}/members/{user}",
    tag = "hub",
    params(super::openapi::OrgUserPath),
    request_body = MemberPatch,
    responses((status = 200, description = "The member with the new role", body = super::openapi::Member), JsonBodyErrors, Unauthorized, Forbidden, NotFound, Conflict),
    security(("user" = []))
)]
pub async fn update(
    State(state): State<AppState>,
    caller: OrgRole<ManageMembers>,
    Path((org, user)): Path<(String, String)>,
    ApiJson(body): ApiJson<MemberPatch>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let actor_role = caller.role;
    let mut problems = Problems::default();
    let role = problems.check("/role", validate::role(body.role.as_deref()));
    problems.into_result()?;
    let member = orgs::set_role(
        &state.store,
        &caller.me.user.id,
        actor_role,
        &org,
        &user,
        role.unwrap(),
    )
    .await
    .map_err(|e| member_error(e, &org, actor_role))?;
    Ok(Json(member.to_json()))
}

/// `DELETE /hub/v1/orgs/{org}/members/{user}` (admin and above, or the member
/// themselves) → 204. The last super_admin cannot be removed.
#[utoipa::path(
    delete,
    path = "/hub/v1/orgs/{org}/members/{user}",
    tag = "hub",
    params(super::openapi::OrgUserPath),
    responses((status = 204, description = "Removed"), Unauthorized, Forbidden, NotFound, Conflict),
    security(("user" = []))
)]
pub async fn remove(
    State(state): State<AppState>,
    caller: OrgRole<ReadOrg>,
    Path((org, user)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    // Any member may leave; removing someone else takes an admin.
    if user != caller.me.user.id {
        caller.require::<ManageMembers>()?;
    }
    let actor_role = caller.role;
    orgs::remove_member(&state.store, &caller.me.user.id, actor_role, &org, &user)
        .await
        .map_err(|e| member_error(e, &org, actor_role))?;
    Ok(StatusCode::NO_CONTENT)
}
