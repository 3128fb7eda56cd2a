//! Who is calling an HTTP route, and may they: credentials from the
//! `Authorization` header ([`credential`]), decided by the IDM check.
//!
//! Apps authenticate with HTTP Basic `key:secret`, users with
//! `Authorization: Bearer <session token>`. Parts keep no ACLs of their own:
//! each builds its typed extractors (a handler's signature then says who may
//! call it) on [`authorize`] and [`authenticate`].

pub mod credential;

use axum::http::HeaderMap;

use crate::idm::{Action, Credential, Idm, IdmDecision, IdmRequest, Principal};
use crate::ApiError;

pub use credential::CredentialError;

/// Read the credential from the `Authorization` header (401 without one).
pub fn credential(headers: &HeaderMap) -> Result<Credential, ApiError> {
    Ok(credential::from_headers(headers)?)
}

/// The action a route needs, as a type: `RecordAccess<Write>` reads as the
/// permission it checks.
pub trait RequiredAction: Send + Sync + 'static {
    const ACTION: Action;
}

/// Reading an organisation's data.
pub struct Read;

/// Changing an organisation's data.
pub struct Write;

impl RequiredAction for Read {
    const ACTION: Action = Action::Read;
}

impl RequiredAction for Write {
    const ACTION: Action = Action::Write;
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
    let credential = credential(headers)?;
    decide(idm, &credential, org, entity, action).await
}

/// As [`authorize`], with a credential already read (a stream that asks
/// again for each event, a route that asks for several orgs).
pub async fn decide(
    idm: &dyn Idm,
    credential: &Credential,
    org: &str,
    entity: Option<&str>,
    action: Action,
) -> Result<Principal, ApiError> {
    let (principal, decision) = check(idm, credential, org, entity, action).await?;
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
    let credential = credential(headers)?;
    Ok(check(idm, &credential, org, None, Action::Read).await?.0)
}

/// The IDM's answer with its principal taken out: 401 when there is none.
async fn check(
    idm: &dyn Idm,
    credential: &Credential,
    org: &str,
    entity: Option<&str>,
    action: Action,
) -> Result<(Principal, IdmDecision), ApiError> {
    let mut decision = idm
        .check(&IdmRequest {
            credential: credential.clone(),
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
