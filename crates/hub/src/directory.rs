//! The [`Directory`] view of apps, installs and orgs, read from the Hub's SQL.

use async_trait::async_trait;
use mno_events::directory::*;

use crate::store::{apps, installs, orgs, Store};

#[derive(Clone)]
pub struct HubDirectory {
    store: Store,
}

impl HubDirectory {
    pub fn new(store: Store) -> Self {
        Self { store }
    }

    async fn profile(&self, app: apps::AppRow) -> Result<AppProfile, sqlx::Error> {
        let webhook_secrets = apps::webhook_secrets(&self.store.pool, &app.id).await?;
        Ok(AppProfile {
            app_id: app.id,
            name: app.name,
            stack: app.stack,
            webhook_url: app.webhook_url,
            webhook_disabled: app.webhook_disabled,
            webhook_secrets,
            shared_entities: app.shared_entities,
            owner_id: Some(app.owner_id),
        })
    }
}

fn unavailable(e: sqlx::Error) -> DirectoryError {
    tracing::error!(error = %e, "directory could not read the database");
    DirectoryError::Unavailable("the Hub database did not answer".into())
}

#[async_trait]
impl Directory for HubDirectory {
    async fn apps(&self) -> Result<Vec<AppProfile>, DirectoryError> {
        let mut out = Vec::new();
        for app in apps::all(&self.store.pool).await.map_err(unavailable)? {
            out.push(self.profile(app).await.map_err(unavailable)?);
        }
        Ok(out)
    }

    async fn app(&self, app_id: &str) -> Result<Option<AppProfile>, DirectoryError> {
        match apps::get(&self.store.pool, app_id)
            .await
            .map_err(unavailable)?
        {
            Some(app) => Ok(Some(self.profile(app).await.map_err(unavailable)?)),
            None => Ok(None),
        }
    }

    async fn installs_of_app(&self, app_id: &str) -> Result<Vec<InstallInfo>, DirectoryError> {
        Ok(installs::of_app(&self.store.pool, app_id)
            .await
            .map_err(unavailable)?
            .into_iter()
            .map(|i| InstallInfo {
                org: i.org_id,
                app_id: i.app_id,
                data_sharing: i.data_sharing,
                sharing_since_ms: i.updated_at,
                entities: i.entities,
            })
            .collect())
    }

    async fn org(&self, org: &str) -> Result<Option<OrgProfile>, DirectoryError> {
        Ok(orgs::get(&self.store.pool, org)
            .await
            .map_err(unavailable)?
            .map(|o| OrgProfile {
                org: o.id,
                name: o.name,
                currency: o.currency,
                timezone: o.timezone,
                country: o.country,
            }))
    }

    async fn member_role(
        &self,
        org: &str,
        user_id: &str,
    ) -> Result<Option<String>, DirectoryError> {
        Ok(orgs::role_of(&self.store.pool, org, user_id)
            .await
            .map_err(unavailable)?
            .map(|role| role.as_str().to_owned()))
    }

    async fn disable_webhook(&self, app_id: &str, reason: &str) -> Result<(), DirectoryError> {
        let found = apps::disable_webhook(&self.store, app_id, reason)
            .await
            .map_err(unavailable)?;
        if !found {
            tracing::warn!(%app_id, "asked to disable the webhook of an unknown app");
        }
        Ok(())
    }
}
