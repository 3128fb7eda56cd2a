//! What delivery borrows from the record side: each app's local ids (the id
//! map, and recording the ids apps send back as `id_mapped` events) and the
//! catalogue's reference fields.

use async_trait::async_trait;
use mno_events::idm::{Principal, PrincipalKind};
use mno_events::subject::Token;

use crate::delivery::view::{LocalIds, ReferenceFields};
use crate::entities;
use crate::idmap::AppIds;
use crate::write::{WriteContext, Writer};

pub struct IdMapLinks {
    pub writer: Writer,
}

#[async_trait]
impl LocalIds for IdMapLinks {
    async fn local_for_global(
        &self,
        org: &str,
        app: &str,
        entity: &str,
        global: &str,
    ) -> Option<String> {
        self.writer
            .idmap
            .local_for_global(AppIds { org, app, entity }, global)
            .await
            .ok()
            .flatten()
    }

    async fn record_mapping(
        &self,
        org: &str,
        app: &str,
        entity: &str,
        global: &str,
        local: &str,
    ) -> Result<(), String> {
        let def = entities::lookup(entity).ok_or_else(|| format!("unknown collection {entity}"))?;
        let ctx = WriteContext {
            org: Token::parse("org", org).map_err(|e| e.to_string())?,
            entity: def,
            principal: Principal {
                kind: PrincipalKind::App,
                id: app.to_owned(),
                name: String::new(),
                role: None,
            },
            correlation_id: uuid::Uuid::now_v7().to_string(),
            event_id: None,
            stage: None,
        };
        self.writer
            .map_id(&ctx, app, global, local)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    }
}

pub struct CatalogueReferences;

impl ReferenceFields for CatalogueReferences {
    fn references(&self, entity: &str) -> Vec<(String, String)> {
        entities::references(entity)
            .into_iter()
            .map(|r| (r.path, r.entity.to_owned()))
            .collect()
    }
}
