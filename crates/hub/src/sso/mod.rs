//! Single sign-on: the Hub as an OpenID Connect provider (docs/api/sso.md).
//!
//! The authorization code flow with PKCE (S256 only) for the apps of the
//! catalogue: the app's API key is its `client_id`, its secret the client
//! secret. One concern per module:
//! - [`discovery`] and [`jwks`]: what a relying party reads first;
//! - [`authorize`]: the sign-in and organisation pages, which issue codes;
//! - [`token`]: codes for ID and access tokens; [`claims`] says what they carry;
//! - [`userinfo`], [`end_session`], [`session_check`];
//! - [`backchannel`]: logout tokens sent to apps when a session ends;
//! - [`keys`]: the RS256 signing keys and their rotation;
//! - [`browser`]: the browser session cookie and CSRF tokens; [`pages`]: HTML;
//! - [`oauth_error`]: the error answers of RFC 6749 / OIDC; [`openapi`]: their description;
//! - [`store`]: the SQL.

pub mod authorize;
pub mod backchannel;
pub mod browser;
pub mod claims;
pub mod discovery;
pub mod end_session;
pub mod jwks;
pub mod keys;
pub mod oauth_error;
pub mod openapi;
pub mod pages;
pub mod session_check;
pub mod store;
pub mod token;
pub mod userinfo;

use std::time::Duration;

use axum::routing::{get, post};
use axum::Router;

use crate::api::AppState;

/// Settings of the provider. The defaults are what `mno up` uses.
#[derive(Debug, Clone)]
pub struct SsoConfig {
    /// The issuer: the platform's public URL, without a trailing slash.
    pub issuer: String,
    /// How long an authorization code may wait to be exchanged.
    pub code_ttl: Duration,
    /// Life of an ID token; a retired signing key stays published this long.
    pub id_token_ttl: Duration,
    /// Life of an access token (for userinfo).
    pub access_token_ttl: Duration,
    /// How long an app may trust a session check's `valid: true`.
    pub recheck_interval: Duration,
    /// Delays between back-channel logout retries; then the logout is dropped (logged).
    pub logout_retry_schedule: Vec<Duration>,
}

impl Default for SsoConfig {
    fn default() -> Self {
        Self {
            issuer: "http://127.0.0.1:8080".to_owned(),
            code_ttl: Duration::from_secs(60),
            id_token_ttl: Duration::from_secs(3600),
            access_token_ttl: Duration::from_secs(3600),
            recheck_interval: Duration::from_secs(300),
            logout_retry_schedule: [5, 300, 1800, 7200, 18000, 36000, 36000]
                .into_iter()
                .map(Duration::from_secs)
                .collect(),
        }
    }
}

impl SsoConfig {
    /// An endpoint's absolute URL.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.issuer.trim_end_matches('/'))
    }

    /// Whether the issuer is served over TLS (cookies are then `Secure`).
    pub fn secure(&self) -> bool {
        self.issuer.starts_with("https://")
    }
}

pub const AUTHORIZE_PATH: &str = "/sso/v1/authorize";
pub const TOKEN_PATH: &str = "/sso/v1/token";
pub const USERINFO_PATH: &str = "/sso/v1/userinfo";
pub const JWKS_PATH: &str = "/sso/v1/jwks";
pub const END_SESSION_PATH: &str = "/sso/v1/end_session";
pub const SESSION_CHECK_PATH: &str = "/sso/v1/session_check";

/// The provider's routes.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route(
            "/.well-known/openid-configuration",
            get(discovery::configuration),
        )
        .route(JWKS_PATH, get(jwks::jwks))
        .route(
            AUTHORIZE_PATH,
            get(authorize::start).post(authorize::submit),
        )
        .route(TOKEN_PATH, post(token::exchange))
        .route(
            USERINFO_PATH,
            get(userinfo::userinfo).post(userinfo::userinfo),
        )
        .route(
            END_SESSION_PATH,
            get(end_session::start).post(end_session::confirm),
        )
        .route(SESSION_CHECK_PATH, post(session_check::check))
        .with_state(state)
}
