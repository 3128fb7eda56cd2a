//! The provider's part of `/openapi.json`: the answer shapes of the OpenID
//! Connect endpoints (the handlers write them as JSON or HTML; these types
//! only describe them). The token and userinfo endpoints answer OAuth's error
//! shape, not the platform's: any OAuth client reads it (RFC 6749 §5.2).

#![allow(dead_code)] // the types describe requests and answers; they are never built

use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{IntoResponses, Modify, ToSchema};

/// Security scheme of the userinfo endpoint: the access token from the token endpoint.
pub const ACCESS_TOKEN_AUTH: &str = "sso_access_token";

/// `{"error", "error_description"}`: the errors of the token and userinfo endpoints.
#[derive(ToSchema)]
pub struct OAuthErrorBody {
    /// `invalid_request`, `invalid_client`, `invalid_grant`,
    /// `unsupported_grant_type` or `invalid_token`.
    error: String,
    /// What was wrong and what to do, in words.
    error_description: String,
}

#[derive(IntoResponses)]
#[response(
    status = 400,
    description = "`invalid_request`, `invalid_grant` or `unsupported_grant_type`; the description says which parameter"
)]
pub struct OAuthBadRequest(OAuthErrorBody);

#[derive(IntoResponses)]
#[response(
    status = 401,
    description = "`invalid_client` (token endpoint) or `invalid_token` (userinfo), with a WWW-Authenticate challenge"
)]
pub struct OAuthUnauthorized(OAuthErrorBody);

/// The provider's metadata (OpenID Connect Discovery 1.0); more fields than
/// these are listed, as the specification allows.
#[derive(ToSchema)]
pub struct OpenIdConfiguration {
    issuer: String,
    authorization_endpoint: String,
    token_endpoint: String,
    userinfo_endpoint: String,
    jwks_uri: String,
    end_session_endpoint: String,
    response_types_supported: Vec<String>,
    grant_types_supported: Vec<String>,
    id_token_signing_alg_values_supported: Vec<String>,
    code_challenge_methods_supported: Vec<String>,
    scopes_supported: Vec<String>,
}

/// An RSA public key (RFC 7517).
#[derive(ToSchema)]
pub struct Jwk {
    kty: String,
    #[schema(rename = "use")]
    #[serde(rename = "use")]
    use_: String,
    alg: String,
    kid: String,
    n: String,
    e: String,
}

#[derive(ToSchema)]
pub struct Jwks {
    keys: Vec<Jwk>,
}

/// The organisation the user signed in with, and their role in it.
#[derive(ToSchema)]
pub struct OrgClaim {
    id: String,
    name: String,
    role: String,
    currency: String,
    timezone: String,
    /// ISO 3166 alpha-2; empty when the org did not say.
    country: String,
}

/// The claims about the user of an access token.
#[derive(ToSchema)]
pub struct UserInfo {
    sub: String,
    email: String,
    name: String,
    org: OrgClaim,
}

/// `POST /sso/v1/token`: an authorization code for tokens.
#[derive(ToSchema)]
pub struct TokenAnswer {
    access_token: String,
    /// `Bearer`.
    token_type: String,
    /// Seconds the access token lives.
    expires_in: i64,
    /// The signed ID token (RS256; verify with the keys at `/sso/v1/jwks`).
    id_token: String,
    scope: String,
}

/// The form of `POST /sso/v1/token` (application/x-www-form-urlencoded).
#[derive(ToSchema)]
pub struct TokenForm {
    /// `authorization_code`.
    grant_type: String,
    code: String,
    /// The same redirect URI as in the authorization request.
    redirect_uri: String,
    /// The PKCE verifier whose S256 hash was the `code_challenge`.
    code_verifier: String,
    /// The app's API key, when not sent with HTTP Basic.
    client_id: Option<String>,
    /// The app's API secret (`client_secret_post`), when not sent with HTTP Basic.
    client_secret: Option<String>,
}

/// `POST /sso/v1/session_check`.
#[derive(ToSchema)]
pub struct SessionCheck {
    /// The `sid` claim of the user's ID token.
    sid: String,
}

#[derive(ToSchema)]
pub struct SessionCheckAnswer {
    /// Whether the Hub session is live and the app signed in with it.
    valid: bool,
    /// When to ask again; `null` when not valid.
    #[schema(format = DateTime)]
    recheck_at: Option<String>,
}

/// Adds the userinfo endpoint's access-token scheme to a document.
pub struct AccessTokenScheme;

impl Modify for AccessTokenScheme {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            ACCESS_TOKEN_AUTH,
            SecurityScheme::Http(
                Http::builder()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "An access token from POST /sso/v1/token (not a Hub session token)",
                    ))
                    .build(),
            ),
        );
    }
}
