//! The error answers of the token and userinfo endpoints: RFC 6749 §5.2 and
//! RFC 6750 §3 (`{"error", "error_description"}` with the standard codes), so
//! that any OAuth client understands them. Errors at the authorization
//! endpoint go back to the app's redirect URI instead ([`super::authorize`]).

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

#[derive(Debug, Clone)]
pub struct OAuthError {
    pub status: StatusCode,
    /// `invalid_request`, `invalid_client`, `invalid_grant`, `unsupported_grant_type`, `invalid_token`, ...
    pub code: &'static str,
    pub description: String,
    /// The `WWW-Authenticate` challenge, where the spec asks for one.
    pub challenge: Option<String>,
}

impl OAuthError {
    fn new(status: StatusCode, code: &'static str, description: impl Into<String>) -> Self {
        Self {
            status,
            code,
            description: description.into(),
            challenge: None,
        }
    }

    pub fn invalid_request(description: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", description)
    }

    pub fn invalid_grant(description: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_grant", description)
    }

    pub fn unsupported_grant_type(description: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            description,
        )
    }

    /// 401 `invalid_client`; `basic` when the client tried HTTP Basic (RFC 6749 asks for the challenge then).
    pub fn invalid_client(description: impl Into<String>, basic: bool) -> Self {
        let mut error = Self::new(StatusCode::UNAUTHORIZED, "invalid_client", description);
        if basic {
            error.challenge = Some(r#"Basic realm="mno""#.to_owned());
        }
        error
    }

    /// 401 `invalid_token` with a Bearer challenge (RFC 6750).
    pub fn invalid_token(description: impl Into<String>) -> Self {
        let description = description.into();
        let mut error = Self::new(
            StatusCode::UNAUTHORIZED,
            "invalid_token",
            description.clone(),
        );
        error.challenge = Some(format!(
            r#"Bearer realm="mno", error="invalid_token", error_description="{}""#,
            description.replace(['"', '\\'], "'")
        ));
        error
    }

    /// A failure of ours (the database): logged, answered 500 `server_error`.
    pub fn server(e: impl std::fmt::Display) -> Self {
        tracing::error!(error = %e, "single sign-on request failed");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            "the platform could not answer; try again shortly",
        )
    }
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let mut response = (
            self.status,
            Json(json!({"error": self.code, "error_description": self.description})),
        )
            .into_response();
        let headers = response.headers_mut();
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if let Some(challenge) = self.challenge.and_then(|c| HeaderValue::from_str(&c).ok()) {
            headers.insert(header::WWW_AUTHENTICATE, challenge);
        }
        response
    }
}
