//! Who may call a record route, as an axum extractor: `RecordAccess<Write>` in
//! a handler's signature is the check, made before the body is read.
//!
//! The collection comes from the path's `{entity}` (404 if unknown), the org
//! from `{org}` (404 if it cannot be one), and the decision from the Hub's IDM
//! check through `mno_events::http_auth` (401 for no or bad credentials, 403
//! for valid ones without the right). Connec! keeps no ACLs of its own.

use std::marker::PhantomData;
use std::sync::Arc;

use axum::extract::{FromRequestParts, RawPathParams};
use axum::http::request::Parts;
use axum::http::HeaderMap;
use mno_events::http_auth::{authorize, RequiredAction};
use mno_events::idm::{Action, Principal, PrincipalKind};
use mno_events::subject::Token;
use mno_events::ApiError;

use super::catalogue::{entity_or_404, org_or_404};
use super::ApiState;
use crate::entities::EntityDef;
use crate::write::WriteContext;

pub use mno_events::http_auth::{Read, Write};

/// Who calls, in which org, on which collection: the outcome of the check.
#[derive(Clone)]
pub struct Access {
    pub def: &'static EntityDef,
    pub org: Token,
    pub principal: Principal,
}

impl Access {
    /// 404 for an unknown collection or an org that cannot be one, then the
    /// IDM's answer for `action` (a batch asks this for each of its ops).
    pub async fn check(
        state: &ApiState,
        headers: &HeaderMap,
        org: &str,
        entity: &str,
        action: Action,
    ) -> Result<Access, ApiError> {
        let def = entity_or_404(entity)?;
        let org = org_or_404(org)?;
        let principal = authorize(
            state.idm.as_ref(),
            headers,
            org.as_str(),
            Some(def.name),
            action,
        )
        .await?;
        Ok(Access {
            def,
            org,
            principal,
        })
    }

    /// The context of a write made with this access.
    pub fn context(&self, correlation_id: String, event_id: Option<String>) -> WriteContext {
        WriteContext {
            org: self.org.clone(),
            entity: self.def,
            principal: self.principal.clone(),
            correlation_id,
            event_id,
            stage: None,
        }
    }
}

/// A caller allowed action `A` on the path's collection of the path's org.
pub struct RecordAccess<A> {
    pub access: Access,
    action: PhantomData<A>,
}

impl<A> std::ops::Deref for RecordAccess<A> {
    type Target = Access;

    fn deref(&self) -> &Access {
        &self.access
    }
}

impl<A: RequiredAction> FromRequestParts<Arc<ApiState>> for RecordAccess<A> {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<ApiState>,
    ) -> Result<Self, ApiError> {
        // The one way this fails on a route with parameters: a value that is
        // not UTF-8 once percent-decoded (`%ff`), the caller's to fix.
        let params = RawPathParams::from_request_parts(parts, state)
            .await
            .map_err(|e| {
                ApiError::bad_request(
                    "invalid_parameter",
                    format!(
                        "{}; path values are UTF-8 text, percent-encoded",
                        e.body_text()
                    ),
                )
            })?;
        let param = |name: &str| {
            params
                .iter()
                .find(|(key, _)| *key == name)
                .map(|(_, value)| value.to_owned())
        };
        let entity = collection_named(param("entity"), parts.uri.path());
        let org = param("org").ok_or_else(|| ApiError::internal("a record route has {org}"))?;
        let access = Access::check(state, &parts.headers, &org, &entity, A::ACTION).await?;
        Ok(RecordAccess {
            access,
            action: PhantomData,
        })
    }
}

/// The collection a record route names: its `{entity}`, or for a route of a
/// singular collection, which names it itself (`/{org}/company`), the path's
/// last segment.
fn collection_named(entity: Option<String>, path: &str) -> String {
    entity.unwrap_or_else(|| path.rsplit('/').next().unwrap_or_default().to_owned())
}

/// An app allowed to read the path's collection: only an app has ids of its
/// own to map (403 for a user). Reading suffices: mapping its id of a record
/// changes only the app's own ids, not the record, as an `id_map` answer to a
/// webhook does for a subscriber that only reads.
pub struct AppAccess(pub RecordAccess<Read>);

impl FromRequestParts<Arc<ApiState>> for AppAccess {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<ApiState>,
    ) -> Result<Self, ApiError> {
        let access = RecordAccess::<Read>::from_request_parts(parts, state).await?;
        if access.principal.kind != PrincipalKind::App {
            return Err(ApiError::forbidden(
                "only an app maps its own ids; call with the app's API key",
            ));
        }
        Ok(AppAccess(access))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_collection_is_the_paths_entity_or_the_singular_route_itself() {
        let named = collection_named(Some("invoices".into()), "/connec/api/v2/o/invoices/1");
        assert_eq!(named, "invoices");
        assert_eq!(
            collection_named(None, "/connec/api/v2/o/company"),
            "company"
        );
        // Whatever it yields is then looked up: an unknown name is a 404 there.
        assert!(entity_or_404(&collection_named(None, "/connec/api/v2/o/nope")).is_err());
    }

    #[test]
    fn each_access_type_asks_for_its_action() {
        assert_eq!(Read::ACTION, Action::Read);
        assert_eq!(Write::ACTION, Action::Write);
    }
}
