//! The OpenAPI document of the Hub's routes and single sign-on (part of the
//! gateway's `/openapi.json`). Apart from the schemas in [`super::openapi`],
//! which the handlers name, so that neither imports the other's importer.

use mno_events::idm::{Credential, IdmDecision, IdmRequest, Principal, PrincipalKind};
use mno_events::openapi::{ErrorBody, SecuritySchemes};
use utoipa::OpenApi;

use super::{
    account, apps, billing, check, customers, installs, invitations, members, orgs,
    password_resets, users,
};
use crate::sso;
use crate::sso::openapi::AccessTokenScheme;

/// Every route of the Hub.
#[derive(OpenApi)]
#[openapi(
    paths(
        users::signup,
        users::me,
        users::login,
        users::logout,
        account::update_me,
        account::change_password,
        account::end_all_sessions,
        password_resets::lookup,
        password_resets::redeem,
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
        billing::create,
        billing::list,
        billing::show,
        billing::cancel,
        billing::create_recurring,
        billing::list_recurring,
        billing::show_recurring,
        billing::cancel_recurring,
        billing::org_bills,
        billing::invoices,
        billing::invoice,
        billing::invoice_html,
        customers::list,
        customers::show,
        customers::members,
        sso::discovery::configuration,
        sso::jwks::jwks,
        sso::authorize::start,
        sso::authorize::submit,
        sso::token::exchange,
        sso::userinfo::userinfo,
        sso::end_session::start,
        sso::end_session::confirm,
        sso::session_check::check,
    ),
    components(schemas(
        ErrorBody,
        sso::openapi::OAuthErrorBody,
        Credential,
        IdmRequest,
        IdmDecision,
        Principal,
        PrincipalKind
    )),
    modifiers(&SecuritySchemes, &AccessTokenScheme),
    tags(
        (name = "hub", description = "Users, sessions, organisations, members, invitations, apps and installs (docs/api/hub.md)"),
        (name = "idm", description = "The IDM check (docs/api/hub.md)"),
        (name = "billing", description = "Bills and recurring bills of apps, invoices of organisations, an app's customers (docs/api/billing.md)"),
        (name = "sso", description = "The Hub as an OpenID Connect provider: discovery, sign-in pages, tokens, userinfo, sign-out, session checks (docs/api/sso.md)")
    )
)]
pub struct HubApi;
