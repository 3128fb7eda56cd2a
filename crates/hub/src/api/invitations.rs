//! Invitations: how a user joins an org (docs/api/hub.md, "Members and roles").
//! Inviting answers the same whether or not the address has an account, and
//! tells the inviter nothing about it; the invitee accepts or declines.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Json;
use mno_events::api_error::ApiJson;
use mno_events::ApiError;
use serde::Deserialize;
use serde_json::json;

use super::auth::{ManageMembers, OrgRole, SignedIn};
use super::{db_error, AppState};
use crate::access::Role;
use crate::store::invitations::{self, InvitationError};
use crate::validate::{self, Problems};
use mno_events::openapi::{Conflict, Forbidden, JsonBodyErrors, NotFound, Unauthorized};

fn invitation_error(e: InvitationError, org: &str, actor_role: Option<Role>) -> ApiError {
    match e {
        InvitationError::NotFound => ApiError::not_found(
            "no pending invitation with this id for you; GET /hub/v1/invitations lists yours",
        )
        .at_parameter("invitation"),
        InvitationError::AlreadyMember => ApiError::conflict(
            "already_member",
            format!("this address's user is already a member of {org}; change their role with PATCH .../members/{{user}}"),
        ),
        InvitationError::AlreadyInvited => ApiError::conflict(
            "already_invited",
            format!("this address already has a pending invitation to {org}; GET .../invitations lists them, DELETE one to invite again with another role"),
        ),
        InvitationError::RoleTooHigh => ApiError::forbidden(format!(
            "your role {} may not grant this role; only a super_admin invites or manages super_admins",
            actor_role.map(|r| r.to_string()).unwrap_or_default()
        )),
        InvitationError::Db(e) => db_error(e),
    }
}

/// Unknown fields are refused: a misspelled one would otherwise be ignored.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewInvitation {
    email: Option<String>,
    role: Option<String>,
}

/// `POST /hub/v1/orgs/{org}/members`: the same as inviting (described apart
/// so that `/openapi.json` lists both paths).
#[utoipa::path(
    post,
    path = "/hub/v1/orgs/{org}/members",
    tag = "hub",
    params(super::openapi::OrgPath),
    request_body = NewInvitation,
    responses((status = 201, description = "The pending invitation: the user becomes a member when they accept it", body = super::openapi::Invitation), JsonBodyErrors, Unauthorized, Forbidden, NotFound, Conflict),
    security(("user" = []))
)]
pub async fn add_member(
    state: State<AppState>,
    caller: OrgRole<ManageMembers>,
    org: Path<String>,
    body: ApiJson<NewInvitation>,
) -> Result<impl IntoResponse, ApiError> {
    create(state, caller, org, body).await
}

/// `POST /hub/v1/orgs/{org}/invitations` {email, role} (admin and above) →
/// 201 the pending invitation.
#[utoipa::path(
    post,
    path = "/hub/v1/orgs/{org}/invitations",
    tag = "hub",
    params(super::openapi::OrgPath),
    request_body = NewInvitation,
    responses((status = 201, description = "The pending invitation", body = super::openapi::Invitation), JsonBodyErrors, Unauthorized, Forbidden, NotFound, Conflict),
    security(("user" = []))
)]
pub async fn create(
    State(state): State<AppState>,
    caller: OrgRole<ManageMembers>,
    Path(org): Path<String>,
    ApiJson(body): ApiJson<NewInvitation>,
) -> Result<impl IntoResponse, ApiError> {
    let actor_role = caller.role;
    let mut problems = Problems::default();
    let email = problems.check("/email", validate::email(body.email.as_deref()));
    let role = problems.check("/role", validate::role(body.role.as_deref()));
    problems.into_result()?;
    let invitation = invitations::invite(
        &state.store,
        &caller.me.user.id,
        actor_role,
        &org,
        &email.unwrap(),
        role.unwrap(),
    )
    .await
    .map_err(|e| invitation_error(e, &org, Some(actor_role)))?;
    Ok((StatusCode::CREATED, Json(invitation.to_json())))
}

/// `GET /hub/v1/orgs/{org}/invitations` (admin and above) → the pending ones.
#[utoipa::path(
    get,
    path = "/hub/v1/orgs/{org}/invitations",
    tag = "hub",
    params(super::openapi::OrgPath),
    responses((status = 200, description = "The pending invitations", body = super::openapi::InvitationList), Unauthorized, Forbidden, NotFound),
    security(("user" = []))
)]
pub async fn of_org(
    State(state): State<AppState>,
    _caller: OrgRole<ManageMembers>,
    Path(org): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let pending = invitations::of_org(&state.store.pool, &org)
        .await
        .map_err(db_error)?;
    let list: Vec<_> = pending.iter().map(|i| i.to_json()).collect();
    Ok(Json(json!({ "invitations": list })))
}

/// `DELETE /hub/v1/orgs/{org}/invitations/{invitation}` (admin and above) → 204.
#[utoipa::path(
    delete,
    path = "/hub/v1/orgs/{org}/invitations/{invitation}",
    tag = "hub",
    params(super::openapi::OrgInvitationPath),
    responses((status = 204, description = "Revoked"), Unauthorized, Forbidden, NotFound),
    security(("user" = []))
)]
pub async fn revoke(
    State(state): State<AppState>,
    caller: OrgRole<ManageMembers>,
    Path((org, id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let actor_role = caller.role;
    invitations::revoke(&state.store, actor_role, &org, &id)
        .await
        .map_err(|e| match e {
            InvitationError::NotFound => ApiError::not_found(format!(
                "no pending invitation {id} to {org}; GET .../invitations lists them"
            ))
            .at_parameter("invitation"),
            other => invitation_error(other, &org, Some(actor_role)),
        })?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /hub/v1/invitations` → the pending invitations to my email.
#[utoipa::path(
    get,
    path = "/hub/v1/invitations",
    tag = "hub",
    responses((status = 200, description = "The pending invitations to the caller's email", body = super::openapi::ReceivedInvitationList), Unauthorized, Forbidden),
    security(("user" = []))
)]
pub async fn mine(
    State(state): State<AppState>,
    me: SignedIn,
) -> Result<Json<serde_json::Value>, ApiError> {
    let received = invitations::for_email(&state.store.pool, &me.user.email)
        .await
        .map_err(db_error)?;
    let list: Vec<_> = received.iter().map(|r| r.to_json()).collect();
    Ok(Json(json!({ "invitations": list })))
}

/// `POST /hub/v1/invitations/{invitation}/accept` → 201 the membership.
#[utoipa::path(
    post,
    path = "/hub/v1/invitations/{invitation}/accept",
    tag = "hub",
    params(super::openapi::InvitationPath),
    responses((status = 201, description = "The new membership (a member, with `org_id`)", body = super::openapi::Member), Unauthorized, Forbidden, NotFound, Conflict),
    security(("user" = []))
)]
pub async fn accept(
    State(state): State<AppState>,
    me: SignedIn,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    match invitations::accept(&state.store, &id, &me.user.id, &me.user.email).await {
        Ok((org, member)) => {
            let mut body = member.to_json();
            body["org_id"] = json!(org);
            Ok((StatusCode::CREATED, Json(body)))
        }
        Err(e) => Err(invitation_error(e, "the organisation", None)),
    }
}

/// `POST /hub/v1/invitations/{invitation}/decline` → 204.
#[utoipa::path(
    post,
    path = "/hub/v1/invitations/{invitation}/decline",
    tag = "hub",
    params(super::openapi::InvitationPath),
    responses((status = 204, description = "Declined: the invitation is gone"), Unauthorized, Forbidden, NotFound),
    security(("user" = []))
)]
pub async fn decline(
    State(state): State<AppState>,
    me: SignedIn,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    invitations::decline(&state.store, &id, &me.user.email)
        .await
        .map_err(|e| invitation_error(e, "the organisation", None))?;
    Ok(StatusCode::NO_CONTENT)
}
