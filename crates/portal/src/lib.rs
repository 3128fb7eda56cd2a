//! The portal: the customers' web front of Mno, served at `/` by `mno up`.
//!
//! Server-rendered HTML (maud) with htmx, its SSE extension and uPlot shipped
//! as static files. Like any frontend of the platform it talks to the parts
//! only through their public HTTP APIs ([`api::Api`], reqwest to the
//! platform's own base URL), with the signed-in user's Hub session token.
//!
//! One module per concern: [`api`] (the calls), [`session`] (cookie, CSRF),
//! [`error`] (what goes wrong, sign-in redirects), [`layout`], [`bare`] and
//! [`forms`] (the page shell, the bare page for sign-in and errors, and form
//! fields with the API's errors beside them), [`page_headers`] (framing,
//! caching), [`fallback`] (what a browser gets at an address that is no
//! page), and one module per page under
//! [`pages`], so that later pages (SSO sign-in) slot in beside them.

pub mod api;
pub mod assets;
pub mod bare;
pub mod demo;
pub mod error;
pub mod fallback;
pub mod forms;
pub mod layout;
pub mod page_headers;
pub mod pages;
pub mod session;

use std::sync::Arc;

use axum::routing::{get, post};
use axum::Router;

/// What the portal needs: where the platform's public API answers.
#[derive(Debug, Clone)]
pub struct PortalConfig {
    /// The platform's base URL as the portal reaches it, e.g. `http://127.0.0.1:8080`.
    pub api_base: String,
    /// The Hub's key for this front (`HubConfig::frontend_key`): with it,
    /// sign-ins are counted at each visitor's address. `None`: at the portal's.
    pub frontend_key: Option<String>,
    /// Whether the platform is reached over https (`MNO_PUBLIC_URL`): its
    /// cookies are then `Secure`, never sent over plain http.
    pub secure_cookies: bool,
}

#[derive(Clone)]
pub struct PortalState {
    pub api: api::Api,
    /// Keys the CSRF tokens (HMAC of the session); new at each start, so a
    /// form rendered before a restart is refused and simply shown again.
    pub csrf_key: Arc<[u8; 32]>,
    /// See [`PortalConfig::secure_cookies`].
    pub secure_cookies: bool,
}

/// The portal's routes: pages, their form posts, the live stream and the assets.
pub fn router(config: PortalConfig) -> Router {
    let state = PortalState {
        api: api::Api::new(&config.api_base, config.frontend_key),
        csrf_key: Arc::new(rand::random()),
        secure_cookies: config.secure_cookies,
    };
    use pages::{
        account, auth, dashboard, home, invitations, invoices, marketplace, members, operator,
        orgs, password_reset, sync,
    };
    let router = Router::new()
        .route("/", get(home::home))
        .route("/assets/{file}", get(assets::serve))
        .route("/favicon.ico", get(assets::no_favicon))
        .route("/signin", get(auth::signin_page).post(auth::signin))
        .route("/signup", get(auth::signup_page).post(auth::signup))
        .route("/signout", post(auth::signout))
        .route("/account", get(account::page))
        .route("/account/name", post(account::rename))
        .route("/account/password", post(account::change_password))
        .route(
            "/account/signout-everywhere",
            get(account::everywhere_page).post(account::everywhere),
        )
        .route(
            "/reset/{token}",
            get(password_reset::page).post(password_reset::reset),
        )
        .route("/orgs", get(orgs::page).post(orgs::create))
        .route("/switch", get(orgs::switch))
        .route("/invitations/{id}/accept", post(invitations::accept))
        .route(
            "/invitations/{id}/decline",
            get(invitations::decline_page).post(invitations::decline),
        )
        .route("/operator", get(operator::page))
        .route("/o/{org}/dashboard", get(dashboard::first))
        .route("/o/{org}/dashboards", post(dashboard::create))
        .route("/o/{org}/dashboards/{id}", get(dashboard::page))
        .route(
            "/o/{org}/dashboards/{id}/delete",
            get(dashboard::delete_page).post(dashboard::delete),
        )
        .route(
            "/o/{org}/dashboards/{id}/widgets",
            post(dashboard::add_widget),
        )
        .route(
            "/o/{org}/dashboards/{id}/widgets/{index}/move",
            post(dashboard::move_widget),
        )
        .route(
            "/o/{org}/dashboards/{id}/widgets/{index}/remove",
            get(dashboard::remove_widget_page).post(dashboard::remove_widget),
        )
        .route("/o/{org}/widget/{category}/{name}", get(dashboard::widget))
        .route("/o/{org}/live", get(dashboard::live))
        .route("/o/{org}/kpis", post(dashboard::create_kpi))
        .route(
            "/o/{org}/kpis/{id}/delete",
            get(dashboard::delete_kpi_page).post(dashboard::delete_kpi),
        )
        .route("/o/{org}/marketplace", get(marketplace::page))
        .route("/o/{org}/installs", post(marketplace::install))
        .route(
            "/o/{org}/installs/{app}/uninstall",
            get(marketplace::uninstall_page).post(marketplace::uninstall),
        )
        .route(
            "/o/{org}/installs/{app}/sharing",
            get(marketplace::sharing_page).post(marketplace::sharing),
        )
        .route(
            "/o/{org}/installs/{app}/entities",
            post(marketplace::save_entities),
        )
        .route("/o/{org}/members", get(members::page).post(members::add))
        .route(
            "/o/{org}/leave",
            get(members::leave_page).post(members::leave),
        )
        .route("/o/{org}/members/{user}/role", post(members::change_role))
        .route(
            "/o/{org}/members/{user}/remove",
            get(members::remove_page).post(members::remove),
        )
        .route(
            "/o/{org}/invitations/{id}/revoke",
            get(members::revoke_invitation_page).post(members::revoke_invitation),
        )
        .route("/o/{org}/invoices", get(invoices::page))
        .route("/o/{org}/invoices/{id}", get(invoices::invoice))
        .route("/o/{org}/sync", get(sync::page))
        .route("/o/{org}/sync/{app}/dlq/{seq}/redrive", post(sync::redrive))
        .layer(axum::middleware::from_fn(page_headers::add));
    let router = match state.secure_cookies {
        true => router.layer(axum::middleware::from_fn(page_headers::secure_cookies)),
        false => router,
    };
    router.with_state(state)
}
