//! The Hub's part of `/openapi.json`: the answer shapes (the handlers build
//! them as JSON; these types only describe them) and the document that lists
//! every `#[utoipa::path]` of `/hub/v1` and `/idm/v1`.

#![allow(dead_code)] // the types describe answers; they are never built

use mno_events::directory::SharedEntity;
use mno_events::idm::{Credential, IdmDecision, IdmRequest, Principal, PrincipalKind};
pub use mno_events::openapi::{AppPath, OrgPath};
use mno_events::openapi::{ErrorBody, SecuritySchemes};
use utoipa::{IntoParams, OpenApi, ToSchema};

use super::{apps, check, installs, invitations, members, orgs, users};

#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
pub struct OrgUserPath {
    /// The organisation's id.
    org: String,
    /// The member's user id.
    user: String,
}

#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
pub struct OrgAppPath {
    /// The organisation's id.
    org: String,
    /// The app's id.
    app: String,
}

#[derive(ToSchema)]
pub struct User {
    id: String,
    email: String,
    name: String,
    #[schema(format = DateTime)]
    created_at: String,
}

/// A session: send `token` as `Authorization: Bearer <token>`.
#[derive(ToSchema)]
pub struct Session {
    token: String,
    #[schema(format = DateTime)]
    expires_at: String,
    user: User,
}

#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum Role {
    Member,
    PowerUser,
    Admin,
    SuperAdmin,
}

/// An organisation (a tenant), with the caller's role in it.
#[derive(ToSchema)]
pub struct Org {
    id: String,
    name: String,
    /// ISO 4217 code.
    currency: String,
    /// IANA time zone.
    timezone: String,
    /// ISO 3166 alpha-2 code, `null` when not given.
    country: Option<String>,
    #[schema(format = DateTime)]
    created_at: String,
    #[schema(format = DateTime)]
    updated_at: String,
    role: Role,
}

#[derive(ToSchema)]
pub struct OrgList {
    orgs: Vec<Org>,
}

#[derive(ToSchema)]
pub struct Member {
    user_id: String,
    email: String,
    name: String,
    role: Role,
    #[schema(format = DateTime)]
    added_at: String,
}

#[derive(ToSchema)]
pub struct MemberList {
    members: Vec<Member>,
}

#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
pub struct OrgInvitationPath {
    /// The organisation's id.
    org: String,
    /// The invitation's id.
    invitation: String,
}

#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
pub struct InvitationPath {
    /// The invitation's id (from `GET /hub/v1/invitations`).
    invitation: String,
}

/// A pending invitation, as the org's admins see it.
#[derive(ToSchema)]
pub struct Invitation {
    id: String,
    org_id: String,
    email: String,
    role: Role,
    /// The inviting user's id.
    invited_by: String,
    #[schema(format = DateTime)]
    created_at: String,
}

#[derive(ToSchema)]
pub struct InvitationList {
    invitations: Vec<Invitation>,
}

#[derive(ToSchema)]
pub struct Inviter {
    id: String,
    name: String,
}

/// A pending invitation, as its invitee sees it.
#[derive(ToSchema)]
pub struct ReceivedInvitation {
    id: String,
    org_id: String,
    org_name: String,
    role: Role,
    invited_by: Inviter,
    #[schema(format = DateTime)]
    created_at: String,
}

#[derive(ToSchema)]
pub struct ReceivedInvitationList {
    invitations: Vec<ReceivedInvitation>,
}

#[derive(ToSchema)]
pub struct Install {
    org_id: String,
    app_id: String,
    app_name: String,
    data_sharing: bool,
    /// The user who installed it.
    installed_by: String,
    #[schema(format = DateTime)]
    installed_at: String,
    #[schema(format = DateTime)]
    updated_at: String,
}

#[derive(ToSchema)]
pub struct InstallList {
    installs: Vec<Install>,
}

#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum Stack {
    Cloud,
    Connector,
}

/// An app as the catalogue shows it to anyone signed in.
#[derive(ToSchema)]
pub struct PublicApp {
    id: String,
    name: String,
    stack: Stack,
    shared_entities: Vec<SharedEntity>,
}

#[derive(ToSchema)]
pub struct AppList {
    apps: Vec<PublicApp>,
}

/// A live API key of an app (never its secret).
#[derive(ToSchema)]
pub struct ApiKey {
    key: String,
    #[schema(format = DateTime)]
    created_at: String,
    /// When a rotated-out key stops working; `null` for the current one.
    #[schema(format = DateTime)]
    expires_at: Option<String>,
}

/// An app as its owner (or the app itself) sees it.
#[derive(ToSchema)]
pub struct AppSettings {
    id: String,
    owner_id: String,
    name: String,
    stack: Stack,
    webhook_url: Option<String>,
    account_webhook_url: Option<String>,
    shared_entities: Vec<SharedEntity>,
    /// Set after the webhook answered 410 Gone; setting `webhook_url` again clears it.
    webhook_disabled: bool,
    webhook_disabled_reason: Option<String>,
    #[schema(format = DateTime)]
    created_at: String,
    #[schema(format = DateTime)]
    updated_at: String,
}

/// `GET /hub/v1/apps/{app}`: the settings and the live API keys.
#[derive(ToSchema)]
pub struct AppWithKeys {
    #[schema(inline)]
    #[serde(flatten)]
    settings: AppSettings,
    credentials: Vec<ApiKey>,
}

/// An API key and its secret, shown once.
#[derive(ToSchema)]
pub struct KeyAndSecret {
    key: String,
    secret: String,
}

/// `POST /hub/v1/apps`: the app, its credentials and webhook secret (shown this once).
#[derive(ToSchema)]
pub struct NewAppAnswer {
    #[schema(inline)]
    #[serde(flatten)]
    settings: AppSettings,
    credentials: KeyAndSecret,
    /// Signs the webhooks sent to the app (Standard Webhooks, `whsec_...`).
    webhook_secret: String,
}

/// `POST /hub/v1/apps/{app}/credentials/rotate`.
#[derive(ToSchema)]
pub struct RotatedCredentials {
    app_id: String,
    credentials: KeyAndSecret,
    webhook_secret: String,
    /// Until when the previous key and webhook secret keep working.
    #[schema(format = DateTime)]
    previous_valid_until: String,
}

#[derive(OpenApi)]
#[openapi(
    paths(
        users::signup,
        users::me,
        users::login,
        users::logout,
        orgs::create,
        orgs::list,
        orgs::show,
        orgs::update,
        invitations::add_member,
        invitations::create,
        invitations::of_org,
        invitations::revoke,
        invitations::mine,
        invitations::accept,
        invitations::decline,
        members::list,
        members::update,
        members::remove,
        installs::create,
        installs::list,
        installs::show,
        installs::update,
        installs::remove,
        apps::create,
        apps::list,
        apps::show,
        apps::update,
        apps::rotate,
        apps::installs,
        check::check,
    ),
    components(schemas(
        ErrorBody,
        Credential,
        IdmRequest,
        IdmDecision,
        Principal,
        PrincipalKind
    )),
    modifiers(&SecuritySchemes),
    tags(
        (name = "hub", description = "Users, sessions, organisations, members, invitations, apps and installs (docs/api/hub.md)"),
        (name = "idm", description = "The IDM check (docs/api/hub.md)")
    )
)]
pub struct HubApi;
