//! Who is calling, asked of the Hub through the [`Idm`] trait.

use std::collections::HashSet;

use axum::http::{header, HeaderMap};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use mno_events::directory::Directory;
use mno_events::idm::{Action, Credential, Idm, IdmRequest, Principal, PrincipalKind};
use mno_events::ApiError;

/// The credential of a request: `Bearer <session>` or HTTP Basic `key:secret`.
pub fn credential(headers: &HeaderMap) -> Result<Credential, ApiError> {
    let missing = || {
        ApiError::unauthorized(
            "no credentials: send Authorization: Basic <app key:secret> or Bearer <session token>",
        )
    };
    let value = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(missing)?;
    if let Some(token) = value.strip_prefix("Bearer ") {
        return Ok(Credential::Session {
            token: token.trim().to_owned(),
        });
    }
    if let Some(encoded) = value.strip_prefix("Basic ") {
        let decoded = STANDARD
            .decode(encoded.trim())
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .ok_or_else(|| {
                ApiError::unauthorized("the Basic credentials are not base64 of key:secret")
            })?;
        let (key, secret) = decoded
            .split_once(':')
            .ok_or_else(|| ApiError::unauthorized("the Basic credentials are not key:secret"))?;
        return Ok(Credential::App {
            key: key.to_owned(),
            secret: secret.to_owned(),
        });
    }
    Err(missing())
}

/// Ask the IDM; 401 for a bad credential, 403 for a valid one not allowed.
pub async fn check(
    idm: &dyn Idm,
    credential: &Credential,
    org: &str,
    entity: Option<&str>,
) -> Result<Principal, ApiError> {
    let decision = idm
        .check(&IdmRequest {
            credential: credential.clone(),
            org: org.to_owned(),
            entity: entity.map(str::to_owned),
            action: Action::Read,
        })
        .await
        .map_err(|e| ApiError::unavailable(e.to_string()))?;
    match (decision.allow, decision.principal) {
        (true, Some(principal)) => Ok(principal),
        (_, None) => Err(ApiError::unauthorized(decision.reason)),
        (false, Some(_)) => Err(ApiError::forbidden(decision.reason)),
    }
}

/// The orgs whose deliveries to `app` the caller may see: the app itself, in
/// every org that installed it; an org admin, in that org.
pub async fn visible_orgs(
    idm: &dyn Idm,
    directory: &dyn Directory,
    credential: &Credential,
    app: &str,
) -> Result<HashSet<String>, ApiError> {
    let installs = directory
        .installs_of_app(app)
        .await
        .map_err(|e| ApiError::unavailable(e.to_string()))?;
    let mut visible = HashSet::new();
    let mut authenticated = false;
    for install in installs {
        match check(idm, credential, &install.org, None).await {
            Ok(principal) => {
                authenticated = true;
                let is_the_app = principal.kind == PrincipalKind::App && principal.id == app;
                let is_admin = principal.kind == PrincipalKind::User
                    && matches!(principal.role.as_deref(), Some("admin" | "super_admin"));
                if is_the_app || is_admin {
                    visible.insert(install.org);
                }
            }
            Err(e) if e.status == axum::http::StatusCode::UNAUTHORIZED => return Err(e),
            Err(_) => authenticated = true,
        }
    }
    if visible.is_empty() {
        let detail = format!(
            "app {app} has no deliveries you may see: use the app's own credentials, or those of an admin of an organisation that installed it"
        );
        return Err(if authenticated {
            ApiError::forbidden(detail)
        } else {
            ApiError::not_found(detail)
        });
    }
    Ok(visible)
}
