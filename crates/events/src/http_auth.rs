//! Who is calling an HTTP route, and may they: credentials from the
//! `Authorization` header, decided by the IDM check.
//!
//! Apps authenticate with HTTP Basic `key:secret`, users with
//! `Authorization: Bearer <session token>`. Parts keep no ACLs of their own.

use axum::http::{header, HeaderMap};
use base64::Engine;

use crate::idm::{Action, Credential, Idm, IdmRequest, Principal};
use crate::ApiError;

/// Read the credential from the `Authorization` header.
pub fn credential(headers: &HeaderMap) -> Result<Credential, ApiError> {
    let missing = || {
        ApiError::unauthorized(
            "send credentials: HTTP Basic with your app's API key and secret, or Authorization: Bearer <session token>",
        )
    };
    let value = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(missing)?;
    let (scheme, rest) = value.split_once(' ').ok_or_else(missing)?;
    match scheme.to_ascii_lowercase().as_str() {
        "bearer" if !rest.trim().is_empty() => Ok(Credential::Session {
            token: rest.trim().to_owned(),
        }),
        "basic" => {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(rest.trim())
                .map_err(|_| {
                    ApiError::unauthorized(
                        "the Basic credentials are not valid base64 of key:secret",
                    )
                })?;
            let text = String::from_utf8(decoded)
                .map_err(|_| ApiError::unauthorized("the Basic credentials are not UTF-8"))?;
            let (key, secret) = text.split_once(':').ok_or_else(|| {
                ApiError::unauthorized("the Basic credentials must be key:secret")
            })?;
            Ok(Credential::App {
                key: key.to_owned(),
                secret: secret.to_owned(),
            })
        }
        _ => Err(missing()),
    }
}

/// Ask the IDM whether the caller may `action` on `entity` of `org`.
/// Invalid credentials answer 401; valid ones without the right answer 403.
pub async fn authorize(
    idm: &dyn Idm,
    headers: &HeaderMap,
    org: &str,
    entity: Option<&str>,
    action: Action,
) -> Result<Principal, ApiError> {
    let (principal, decision) = decide(idm, headers, org, entity, action).await?;
    if decision.allow {
        Ok(principal)
    } else {
        Err(ApiError::forbidden(decision.reason))
    }
}

/// Who the caller is, whatever they may do in `org`: 401 when the
/// credentials are missing or not accepted. For a request whose parts name
/// several organisations (a batch), each part then asks [`authorize`].
pub async fn authenticate(
    idm: &dyn Idm,
    headers: &HeaderMap,
    org: &str,
) -> Result<Principal, ApiError> {
    Ok(decide(idm, headers, org, None, Action::Read).await?.0)
}

async fn decide(
    idm: &dyn Idm,
    headers: &HeaderMap,
    org: &str,
    entity: Option<&str>,
    action: Action,
) -> Result<(Principal, crate::idm::IdmDecision), ApiError> {
    let credential = credential(headers)?;
    let mut decision = idm
        .check(&IdmRequest {
            credential,
            org: org.to_owned(),
            entity: entity.map(str::to_owned),
            action,
        })
        .await
        .map_err(|e| ApiError::unavailable(e.to_string()))?;
    match decision.principal.take() {
        None => Err(ApiError::unauthorized(format!(
            "the credentials were not accepted: {}",
            decision.reason
        ))),
        Some(principal) => Ok((principal, decision)),
    }
}
