//! The IDM check, answered from the Hub's SQL.
//!
//! - A session: the user may read an org's records when a member, and write
//!   when the role allows it (see [`crate::access`]).
//! - An app: only inside orgs that installed it, only while data sharing is on,
//!   per entity as its `shared_entities` read/write flags say, and only the
//!   entities the org shares with it (all of them unless the org narrowed them).
//!
//! A credential that is not valid gets `principal: None` (answer 401); a valid
//! one that may not do this gets `allow: false` with the principal (403).

use async_trait::async_trait;
use mno_events::idm::*;

use crate::secrets;
use crate::store::{apps, installs, orgs, users, Store};

#[derive(Clone)]
pub struct HubIdm {
    store: Store,
}

/// Why a check could not be answered.
fn unavailable(e: sqlx::Error) -> IdmError {
    tracing::error!(error = %e, "IDM check could not read the database");
    IdmError::Unavailable("the Hub database did not answer".into())
}

impl HubIdm {
    pub fn new(store: Store) -> Self {
        Self { store }
    }

    /// The user of a live session token.
    pub async fn session_user(
        &self,
        token: &str,
    ) -> Result<Option<users::SessionUser>, sqlx::Error> {
        users::live_session(&self.store.pool, &secrets::sha256_hex(token)).await
    }

    /// The app whose live credentials these are. An unknown key still costs a
    /// hash and a constant-time comparison, like a wrong secret.
    pub async fn app_by_credentials(
        &self,
        key: &str,
        secret: &str,
    ) -> Result<Option<apps::AppRow>, sqlx::Error> {
        self.app_by_key_and_hash(key, &secrets::sha256_hex(secret))
            .await
    }

    /// As [`HubIdm::app_by_credentials`], given the SHA-256 (hex) of the secret.
    async fn app_by_key_and_hash(
        &self,
        key: &str,
        secret_hash: &str,
    ) -> Result<Option<apps::AppRow>, sqlx::Error> {
        let found = apps::key_lookup(&self.store.pool, key).await?;
        let (app_id, stored) = match &found {
            Some((app_id, hash)) => (Some(app_id.as_str()), hash.as_str()),
            None => (
                None,
                "0000000000000000000000000000000000000000000000000000000000000000",
            ),
        };
        let matches = secrets::hashes_match(secret_hash, stored);
        match (app_id, matches) {
            (Some(app_id), true) => apps::get(&self.store.pool, app_id).await,
            _ => Ok(None),
        }
    }

    /// The check as asked on NATS, where credentials travel hashed
    /// ([`mno_events::idm::hashed_for_wire`]) so that no secret is on the bus or
    /// in a NATS trace. Only the NATS responder calls this: a stored hash is
    /// never accepted in place of a secret anywhere an app or user connects.
    pub async fn check_hashed(&self, request: &IdmRequest) -> Result<IdmDecision, IdmError> {
        let unhashed = || {
            Ok(deny(
                None,
                "credentials on NATS must be hashed (sha256:<hex>); use mno_events::idm::NatsIdm",
            ))
        };
        match &request.credential {
            Credential::Session { token } => match token.strip_prefix(HASHED_PREFIX) {
                Some(hash) => self.check_session(hash, request).await,
                None => unhashed(),
            },
            Credential::App { key, secret } => match secret.strip_prefix(HASHED_PREFIX) {
                Some(hash) => self.check_app(key, hash, request).await,
                None => unhashed(),
            },
        }
        .map_err(unavailable)
    }

    async fn check_session(
        &self,
        token_hash: &str,
        request: &IdmRequest,
    ) -> Result<IdmDecision, sqlx::Error> {
        let Some(session) = users::live_session(&self.store.pool, token_hash).await? else {
            return Ok(deny(None, "the session token is unknown, expired or revoked; sign in again (POST /hub/v1/sessions)"));
        };
        let user = session.user;
        let mut principal = Principal {
            kind: PrincipalKind::User,
            id: user.id.clone(),
            name: user.name.clone(),
            role: None,
        };
        if orgs::get(&self.store.pool, &request.org).await?.is_none() {
            return Ok(deny(
                Some(principal),
                &format!("there is no organisation {}", request.org),
            ));
        }
        let Some(role) = orgs::role_of(&self.store.pool, &request.org, &user.id).await? else {
            return Ok(deny(
                Some(principal),
                &format!("the user is not a member of organisation {}; ask one of its admins to add them", request.org),
            ));
        };
        principal.role = Some(role.as_str().to_owned());
        let allowed = match request.action {
            Action::Read => role.can_read_records(),
            Action::Write => role.can_write_records(),
        };
        Ok(if allowed {
            allow(principal, &format!("member with role {role}"))
        } else {
            deny(
                Some(principal),
                &format!(
                    "role {role} may only read; writing needs power_user or above (ask an admin)"
                ),
            )
        })
    }

    async fn check_app(
        &self,
        key: &str,
        secret_hash: &str,
        request: &IdmRequest,
    ) -> Result<IdmDecision, sqlx::Error> {
        let Some(app) = self.app_by_key_and_hash(key, secret_hash).await? else {
            return Ok(deny(
                None,
                "the API key and secret are not valid (unknown, wrong or expired after rotation)",
            ));
        };
        let principal = Principal {
            kind: PrincipalKind::App,
            id: app.id.clone(),
            name: app.name.clone(),
            role: None,
        };
        let Some(install) = installs::get(&self.store.pool, &request.org, &app.id).await? else {
            return Ok(deny(
                Some(principal),
                &format!("the app is not installed in organisation {}; an admin of the org must install it", request.org),
            ));
        };
        if !install.data_sharing {
            return Ok(deny(
                Some(principal),
                &format!("data sharing is off for this app in organisation {}; an admin of the org can turn it on", request.org),
            ));
        }
        let Some(entity) = &request.entity else {
            return Ok(allow(principal, "installed with data sharing on"));
        };
        let flags = app.shared_entities.iter().find(|s| &s.entity == entity);
        let (allowed, verb) = match request.action {
            Action::Read => (flags.is_some_and(|f| f.read), "read"),
            Action::Write => (flags.is_some_and(|f| f.write), "write"),
        };
        if !allowed {
            return Ok(deny(
                Some(principal),
                &format!("the app's shared_entities do not grant {verb} on {entity}; its owner can change them (PATCH /hub/v1/apps/{{app}})"),
            ));
        }
        if install
            .entities
            .as_ref()
            .is_some_and(|shared| !shared.contains(entity))
        {
            return Ok(deny(
                Some(principal),
                &format!(
                    "organisation {} does not share {entity} with this app; an admin of the org can share it (PATCH /hub/v1/orgs/{}/installs/{} with entities)",
                    request.org, request.org, app.id
                ),
            ));
        }
        Ok(allow(
            principal,
            &format!("installed with data sharing on; {entity} {verb} is shared"),
        ))
    }
}

fn allow(principal: Principal, reason: &str) -> IdmDecision {
    IdmDecision {
        allow: true,
        principal: Some(principal),
        reason: reason.to_owned(),
    }
}

fn deny(principal: Option<Principal>, reason: &str) -> IdmDecision {
    IdmDecision {
        allow: false,
        principal,
        reason: reason.to_owned(),
    }
}

#[async_trait]
impl Idm for HubIdm {
    async fn check(&self, request: &IdmRequest) -> Result<IdmDecision, IdmError> {
        match &request.credential {
            Credential::Session { token } => {
                self.check_session(&secrets::sha256_hex(token), request)
                    .await
            }
            Credential::App { key, secret } => {
                self.check_app(key, &secrets::sha256_hex(secret), request)
                    .await
            }
        }
        .map_err(unavailable)
    }
}
