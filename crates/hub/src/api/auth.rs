//! Who is calling a Hub route, as axum extractors: a handler's signature says
//! who may call it.
//!
//! - [`SignedIn`]: a user with a live session (`Authorization: Bearer <token>`).
//! - [`CallingApp`]: an app with live API credentials (HTTP Basic `key:secret`).
//! - [`OrgRole<P>`]: a signed-in member of the path's `{org}` whose role grants
//!   permission `P` (the table in `access.rs`).
//!
//! The `Authorization` header is read by `mno_events::http_auth::credential`,
//! the one parser of the platform.

use std::marker::PhantomData;

use axum::extract::{FromRequestParts, RawPathParams};
use axum::http::request::Parts;
use axum::http::HeaderMap;
use mno_events::http_auth::credential;
use mno_events::idm::Credential;
use mno_events::ApiError;

use super::{db_error, AppState};
use crate::access::Role;
use crate::store::apps::AppRow;
use crate::store::orgs::{self as org_store, OrgRow};
use crate::store::users::UserRow;

/// The session token of `Authorization: Bearer <token>`, if that is what came.
pub fn bearer(headers: &HeaderMap) -> Option<String> {
    match credential::from_headers(headers) {
        Ok(Credential::Session { token }) => Some(token),
        _ => None,
    }
}

/// `(key, secret)` from `Authorization: Basic ...`, if that is what came.
pub fn basic(headers: &HeaderMap) -> Option<(String, String)> {
    match credential::from_headers(headers) {
        Ok(Credential::App { key, secret }) => Some((key, secret)),
        _ => None,
    }
}

/// The app whose live credentials these are: 401 when they are not.
pub async fn app_of(state: &AppState, key: &str, secret: &str) -> Result<AppRow, ApiError> {
    state
        .idm
        .app_by_credentials(key, secret)
        .await
        .map_err(db_error)?
        .ok_or_else(|| {
            ApiError::unauthorized(
                "the API key and secret are not valid (unknown, wrong or expired after rotation)",
            )
        })
}

/// The signed-in user (`Authorization: Bearer <token>`).
pub struct SignedIn {
    pub user: UserRow,
    pub session_id: String,
}

impl FromRequestParts<AppState> for SignedIn {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let Some(token) = bearer(&parts.headers) else {
            // Valid app credentials are not the problem: the route is a user's.
            if let Some((key, secret)) = basic(&parts.headers) {
                if app_of(state, &key, &secret).await.is_ok() {
                    return Err(ApiError::forbidden(
                        "this route is a user's: an app's credentials are valid here only on the routes hub.md marks for the app; sign in as a user (POST /hub/v1/sessions) and send Authorization: Bearer <token>",
                    ));
                }
            }
            return Err(ApiError::unauthorized(
                "sign in first: send Authorization: Bearer <token>, the token from POST /hub/v1/sessions",
            ));
        };
        match state.idm.session_user(&token).await.map_err(db_error)? {
            Some(session) => Ok(SignedIn {
                user: session.user,
                session_id: session.session_id,
            }),
            None => Err(ApiError::unauthorized(
                "the session token is unknown, expired or revoked; sign in again (POST /hub/v1/sessions)",
            )),
        }
    }
}

/// The app whose live API credentials came with the request.
pub struct CallingApp(pub AppRow);

impl FromRequestParts<AppState> for CallingApp {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let Some((key, secret)) = basic(&parts.headers) else {
            return Err(ApiError::unauthorized(
                "this route is an app's: send its API credentials as HTTP Basic key:secret (Authorization: Basic base64(key:secret))",
            ));
        };
        Ok(CallingApp(app_of(state, &key, &secret).await?))
    }
}

/// A permission of the role table, as a type.
pub trait OrgPermission: Send + Sync + 'static {
    /// Whether `role` has it.
    fn allows(role: Role) -> bool;
    /// The roles that have it, for the refusal.
    const NEEDED: &'static str;
}

/// Reading the org, its members and installs: every member.
pub struct ReadOrg;
/// `PATCH /orgs/{org}`.
pub struct UpdateOrg;
/// Installing, uninstalling apps, switching data sharing.
pub struct ManageInstalls;
/// Inviting, changing and removing members (up to admin; super_admin for more).
pub struct ManageMembers;
/// Reading the org's invoices.
pub struct ReadInvoices;

impl OrgPermission for ReadOrg {
    fn allows(_: Role) -> bool {
        true
    }
    const NEEDED: &'static str = "member or above";
}

impl OrgPermission for UpdateOrg {
    fn allows(role: Role) -> bool {
        role.can_update_org()
    }
    const NEEDED: &'static str = "admin or super_admin";
}

impl OrgPermission for ManageInstalls {
    fn allows(role: Role) -> bool {
        role.can_manage_installs()
    }
    const NEEDED: &'static str = "admin or super_admin";
}

impl OrgPermission for ManageMembers {
    fn allows(role: Role) -> bool {
        role.can_manage_member_with(Role::Member)
    }
    const NEEDED: &'static str = "admin or super_admin";
}

impl OrgPermission for ReadInvoices {
    fn allows(role: Role) -> bool {
        role.can_read_invoices()
    }
    const NEEDED: &'static str = "admin or super_admin";
}

/// A signed-in member of the path's `{org}` whose role grants `P`: 404 if
/// there is no such org, 403 if the caller is not a member (org ids are
/// random, so this reveals little) or the role falls short.
pub struct OrgRole<P> {
    pub me: SignedIn,
    pub org: OrgRow,
    pub role: Role,
    permission: PhantomData<P>,
}

impl<P> OrgRole<P> {
    /// 403 unless the role also grants `Q` (a rule that depends on the request).
    pub fn require<Q: OrgPermission>(&self) -> Result<(), ApiError> {
        refuse_unless::<Q>(self.role)
    }
}

fn refuse_unless<P: OrgPermission>(role: Role) -> Result<(), ApiError> {
    if P::allows(role) {
        Ok(())
    } else {
        Err(ApiError::forbidden(format!(
            "your role {role} may not do this; it needs {} (see the permission table in docs/api/hub.md)",
            P::NEEDED
        )))
    }
}

impl<P: OrgPermission> FromRequestParts<AppState> for OrgRole<P> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let me = SignedIn::from_request_parts(parts, state).await?;
        let params = RawPathParams::from_request_parts(parts, state)
            .await
            .map_err(ApiError::internal)?;
        let org = params
            .iter()
            .find(|(name, _)| *name == "org")
            .map(|(_, value)| value.to_owned())
            .ok_or_else(|| ApiError::internal("OrgRole on a route without {org}"))?;
        let (org, role) = org_role(state, &org, &me.user.id).await?;
        refuse_unless::<P>(role)?;
        Ok(OrgRole {
            me,
            org,
            role,
            permission: PhantomData,
        })
    }
}

/// The org and the user's role in it (404 / 403 as [`OrgRole`] answers).
async fn org_role(state: &AppState, org: &str, user: &str) -> Result<(OrgRow, Role), ApiError> {
    let Some(row) = org_store::get(&state.store.pool, org)
        .await
        .map_err(db_error)?
    else {
        return Err(ApiError::not_found(format!(
            "there is no organisation {org}; list yours with GET /hub/v1/orgs"
        ))
        .at_parameter("org"));
    };
    match org_store::role_of(&state.store.pool, org, user)
        .await
        .map_err(db_error)?
    {
        Some(role) => Ok((row, role)),
        None => Err(ApiError::forbidden(format!(
            "you are not a member of organisation {org}; ask one of its admins to add you"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_permission_follows_the_role_table() {
        use Role::*;
        let all = [Member, PowerUser, Admin, SuperAdmin];
        for role in all {
            assert!(ReadOrg::allows(role));
            let admin = role >= Admin;
            assert_eq!(UpdateOrg::allows(role), admin, "{role}");
            assert_eq!(ManageInstalls::allows(role), admin, "{role}");
            assert_eq!(ManageMembers::allows(role), admin, "{role}");
            assert_eq!(ReadInvoices::allows(role), admin, "{role}");
        }
    }

    #[test]
    fn a_wrong_role_is_a_403_naming_the_roles_needed() {
        let refusal = refuse_unless::<ManageInstalls>(Role::PowerUser).unwrap_err();
        assert_eq!(refusal.status, axum::http::StatusCode::FORBIDDEN);
        let detail = &refusal.errors[0].detail;
        assert!(detail.contains("your role power_user"), "{detail}");
        assert!(detail.contains("admin or super_admin"), "{detail}");
        assert!(refuse_unless::<ManageInstalls>(Role::Admin).is_ok());
    }

    #[test]
    fn bearer_and_basic_read_the_one_parser() {
        use axum::http::header::AUTHORIZATION;
        let mut headers = HeaderMap::new();
        headers.insert(AUTHORIZATION, "bearer tok".parse().unwrap());
        assert_eq!(bearer(&headers).as_deref(), Some("tok"));
        assert_eq!(basic(&headers), None);
        headers.insert(AUTHORIZATION, "BASIC azpz".parse().unwrap());
        assert_eq!(basic(&headers), Some(("k".into(), "s".into())));
        assert_eq!(bearer(&headers), None);
        headers.insert(AUTHORIZATION, "Basic not-base64!".parse().unwrap());
        assert_eq!(basic(&headers), None);
    }
}
