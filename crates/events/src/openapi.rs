//! What every part's OpenAPI annotations share: the JSON error shape, the two
//! security schemes, and the error answers as reusable response sets, so that
//! `#[utoipa::path(responses(..., Unauthorized, NotFound))]` stays one line.
//!
//! The gateway merges each part's document and serves it at `/openapi.json`.

use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{IntoParams, IntoResponses, Modify, ToSchema};

use crate::api_error::ErrorObject;

/// Security scheme of apps: HTTP Basic with the app's API key and secret.
pub const APP_AUTH: &str = "app";
/// Security scheme of users: `Authorization: Bearer <session token>`.
pub const USER_AUTH: &str = "user";

/// `{"errors":[{"status","code","title","detail","source"?}]}`: every error answer.
#[derive(ToSchema)]
#[allow(dead_code)] // describes the body ApiError writes; never built
pub struct ErrorBody {
    errors: Vec<ErrorObject>,
}

/// The `{org}` of a route's path.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)] // describes a parameter; never built
pub struct OrgPath {
    /// The organisation's id.
    org: String,
}

/// The `{app}` of a route's path.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)] // describes a parameter; never built
pub struct AppPath {
    /// The app's id.
    app: String,
}

/// Adds the `app` (Basic) and `user` (Bearer) security schemes to a document.
pub struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            APP_AUTH,
            SecurityScheme::Http(
                Http::builder()
                    .scheme(HttpAuthScheme::Basic)
                    .description(Some(
                        "An app: its API key and secret (POST /hub/v1/apps) as HTTP Basic user and password",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            USER_AUTH,
            SecurityScheme::Http(
                Http::builder()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("A user: the session token from POST /hub/v1/sessions"))
                    .build(),
            ),
        );
    }
}

/// One error answer per status; a route lists those it can give.
macro_rules! error_response {
    ($name:ident, $status:literal, $description:literal) => {
        #[derive(IntoResponses)]
        #[response(status = $status, description = $description)]
        #[allow(dead_code)] // describes an answer; never built
        pub struct $name(ErrorBody);
    };
}

error_response!(
    BadRequest,
    400,
    "A parameter or the body is malformed; the error names it"
);
error_response!(
    Unauthorized,
    401,
    "No credentials, or unknown, expired or revoked ones"
);
error_response!(
    Forbidden,
    403,
    "The credentials are valid but may not do this"
);
error_response!(
    NotFound,
    404,
    "No such resource, or none the caller may see"
);
error_response!(
    Conflict,
    409,
    "The request conflicts with the current state (the error's code says how)"
);
error_response!(
    MethodNotAllowed,
    405,
    "Not served for this resource: the org's company record (`company`) is read and written at /connec/api/v2/{org}/company, never created with POST nor deleted"
);
error_response!(PayloadTooLarge, 413, "The body is larger than 1 MiB");
error_response!(
    UnsupportedMediaType,
    415,
    "The body is not sent as Content-Type: application/json"
);
error_response!(
    Unprocessable,
    422,
    "The body or a parameter is well-formed but not valid; each error points at a field"
);
error_response!(
    FailedDependency,
    424,
    "Another op of the same atomic batch failed; nothing was stored"
);
error_response!(
    TooManyRequests,
    429,
    "Too many attempts; wait Retry-After seconds"
);
error_response!(
    Unavailable,
    503,
    "The bus or the database does not answer now; retry after Retry-After seconds"
);

/// The answers of any route that reads a JSON body.
#[derive(IntoResponses)]
#[allow(dead_code)] // describes answers; never built
pub enum JsonBodyErrors {
    #[response(status = 400, description = "The body is not valid JSON")]
    Malformed(ErrorBody),
    #[response(status = 413, description = "The body is larger than 1 MiB")]
    TooLarge(ErrorBody),
    #[response(
        status = 415,
        description = "The body is not sent as Content-Type: application/json"
    )]
    NotJson(ErrorBody),
    #[response(
        status = 422,
        description = "The body is JSON of the wrong shape, or a field is not valid; each error points at a field"
    )]
    Invalid(ErrorBody),
}
