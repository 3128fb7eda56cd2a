//! Which org installed which app, whether data sharing is on, and which of
//! the app's shared entities the org shares with it.

use serde_json::json;
use sqlx::AnyPool;

use super::{now_ms, rfc3339, NewEvent, Store, WriteTx};
use mno_events::directory::SharedEntity;
use mno_events::subject::hub_kind;

#[derive(Debug, Clone)]
pub struct InstallRow {
    pub org_id: String,
    pub app_id: String,
    pub app_name: String,
    pub data_sharing: bool,
    /// The entities the org shares with the app; `None`: all the app's shared entities.
    pub entities: Option<Vec<String>>,
    pub installed_by: String,
    pub created_at: i64,
    pub updated_at: i64,
}

impl InstallRow {
    pub fn to_json(&self) -> serde_json::Value {
        json!({
            "org_id": self.org_id,
            "app_id": self.app_id,
            "app_name": self.app_name,
            "data_sharing": self.data_sharing,
            "entities": self.entities,
            "installed_by": self.installed_by,
            "installed_at": rfc3339(self.created_at),
            "updated_at": rfc3339(self.updated_at),
        })
    }
}

type InstallTuple = (
    String,
    String,
    String,
    i64,
    Option<String>,
    String,
    i64,
    i64,
);

const INSTALL_SELECT: &str =
    "SELECT i.org_id, i.app_id, a.name, i.data_sharing, i.entities, i.installed_by, i.created_at, i.updated_at
     FROM hub_installs i JOIN hub_apps a ON a.id = i.app_id";

fn install_from(row: InstallTuple) -> InstallRow {
    let (org_id, app_id, app_name, sharing, entities, installed_by, created_at, updated_at) = row;
    InstallRow {
        org_id,
        app_id,
        app_name,
        data_sharing: sharing != 0,
        // Written by `update` only, always a JSON list.
        entities: entities.and_then(|list| serde_json::from_str(&list).ok()),
        installed_by,
        created_at,
        updated_at,
    }
}

#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    #[error("no such app")]
    UnknownApp,
    #[error("already installed")]
    AlreadyInstalled,
    #[error("not installed")]
    NotInstalled,
    /// Entities (with their index in the request) the app does not share,
    /// and the ones it does.
    #[error("the app does not share these entities")]
    UnsharedEntities {
        bad: Vec<(usize, String)>,
        valid: Vec<String>,
    },
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

pub async fn install(
    store: &Store,
    actor: &str,
    org: &str,
    app: &str,
    data_sharing: bool,
) -> Result<InstallRow, InstallError> {
    let mut w = store.begin_write().await?;
    let name: Option<String> = sqlx::query_scalar("SELECT name FROM hub_apps WHERE id = $1")
        .bind(app)
        .fetch_optional(&mut *w.tx)
        .await?;
    let name = name.ok_or(InstallError::UnknownApp)?;
    let existing: Option<i64> = sqlx::query_scalar(
        "SELECT data_sharing FROM hub_installs WHERE org_id = $1 AND app_id = $2",
    )
    .bind(org)
    .bind(app)
    .fetch_optional(&mut *w.tx)
    .await?;
    if existing.is_some() {
        return Err(InstallError::AlreadyInstalled);
    }
    let now = now_ms();
    sqlx::query(
        "INSERT INTO hub_installs (org_id, app_id, data_sharing, installed_by, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $5)",
    )
    .bind(org)
    .bind(app)
    .bind(data_sharing as i64)
    .bind(actor)
    .bind(now)
    .execute(&mut *w.tx)
    .await?;
    let row = InstallRow {
        org_id: org.to_owned(),
        app_id: app.to_owned(),
        app_name: name,
        data_sharing,
        entities: None,
        installed_by: actor.to_owned(),
        created_at: now,
        updated_at: now,
    };
    w.emit(
        NewEvent::new(org, hub_kind::INSTALL_CREATED, ("user", actor.to_owned()))
            .app(app)
            .payload(json!({"org": org, "app_id": app, "data_sharing": data_sharing})),
    )
    .await?;
    w.commit().await?;
    Ok(row)
}

pub async fn of_org(pool: &AnyPool, org: &str) -> Result<Vec<InstallRow>, sqlx::Error> {
    let rows: Vec<InstallTuple> = sqlx::query_as(&format!(
        "{INSTALL_SELECT} WHERE i.org_id = $1 ORDER BY i.created_at, i.app_id"
    ))
    .bind(org)
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(install_from).collect())
}

pub async fn of_app(pool: &AnyPool, app: &str) -> Result<Vec<InstallRow>, sqlx::Error> {
    let rows: Vec<InstallTuple> = sqlx::query_as(&format!(
        "{INSTALL_SELECT} WHERE i.app_id = $1 ORDER BY i.created_at, i.org_id"
    ))
    .bind(app)
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(install_from).collect())
}

pub async fn get(pool: &AnyPool, org: &str, app: &str) -> Result<Option<InstallRow>, sqlx::Error> {
    let row: Option<InstallTuple> = sqlx::query_as(&format!(
        "{INSTALL_SELECT} WHERE i.org_id = $1 AND i.app_id = $2"
    ))
    .bind(org)
    .bind(app)
    .fetch_optional(pool)
    .await?;
    Ok(row.map(install_from))
}

/// What a PATCH of an install changes; `None` keeps the value.
#[derive(Debug, Default, Clone)]
pub struct InstallChange {
    pub data_sharing: Option<bool>,
    /// `Some(None)`: share all the app's entities again.
    pub entities: Option<Option<Vec<String>>>,
}

impl InstallChange {
    pub fn sharing(on: bool) -> Self {
        Self {
            data_sharing: Some(on),
            ..Self::default()
        }
    }

    pub fn entities(entities: Option<Vec<String>>) -> Self {
        Self {
            entities: Some(entities),
            ..Self::default()
        }
    }
}

/// Change data sharing and the entities shared; each entity must be one the
/// app shares, else nothing changes. The `install_updated` event carries both.
pub async fn update(
    store: &Store,
    actor: &str,
    org: &str,
    app: &str,
    change: InstallChange,
) -> Result<InstallRow, InstallError> {
    let mut w = store.begin_write().await?;
    let row: Option<InstallTuple> = sqlx::query_as(&format!(
        "{INSTALL_SELECT} WHERE i.org_id = $1 AND i.app_id = $2"
    ))
    .bind(org)
    .bind(app)
    .fetch_optional(&mut *w.tx)
    .await?;
    let mut row = row.map(install_from).ok_or(InstallError::NotInstalled)?;
    let entities = match change.entities {
        Some(Some(list)) => Some(Some(shared_subset(&mut w, app, list).await?)),
        other => other,
    };
    let sharing = change.data_sharing.unwrap_or(row.data_sharing);
    let entities = entities.unwrap_or_else(|| row.entities.clone());
    if row.data_sharing == sharing && row.entities == entities {
        return Ok(row);
    }
    row.data_sharing = sharing;
    row.entities = entities;
    row.updated_at = now_ms();
    let stored = row
        .entities
        .as_ref()
        .map(|list| serde_json::to_string(list).expect("a list of strings serialises"));
    sqlx::query(
        "UPDATE hub_installs SET data_sharing = $1, entities = $2, updated_at = $3 WHERE org_id = $4 AND app_id = $5",
    )
    .bind(sharing as i64)
    .bind(stored)
    .bind(row.updated_at)
    .bind(org)
    .bind(app)
    .execute(&mut *w.tx)
    .await?;
    w.emit(
        NewEvent::new(org, hub_kind::INSTALL_UPDATED, ("user", actor.to_owned()))
            .app(app)
            .payload(json!({"org": org, "app_id": app, "data_sharing": sharing, "entities": row.entities})),
    )
    .await?;
    w.commit().await?;
    Ok(row)
}

/// `wanted` without repeats, in the order the app lists its shared entities;
/// refused, naming each one, when the app does not share them all.
async fn shared_subset(
    w: &mut WriteTx,
    app: &str,
    wanted: Vec<String>,
) -> Result<Vec<String>, InstallError> {
    let shared: String = sqlx::query_scalar("SELECT shared_entities FROM hub_apps WHERE id = $1")
        .bind(app)
        .fetch_one(&mut *w.tx)
        .await?;
    let valid: Vec<String> = serde_json::from_str::<Vec<SharedEntity>>(&shared)
        .unwrap_or_default()
        .into_iter()
        .map(|s| s.entity)
        .collect();
    let bad: Vec<(usize, String)> = wanted
        .iter()
        .enumerate()
        .filter(|(_, e)| !valid.contains(e))
        .map(|(i, e)| (i, e.clone()))
        .collect();
    if !bad.is_empty() {
        return Err(InstallError::UnsharedEntities { bad, valid });
    }
    Ok(valid.into_iter().filter(|e| wanted.contains(e)).collect())
}

pub async fn uninstall(
    store: &Store,
    actor: &str,
    org: &str,
    app: &str,
) -> Result<(), InstallError> {
    let mut w = store.begin_write().await?;
    let removed = sqlx::query("DELETE FROM hub_installs WHERE org_id = $1 AND app_id = $2")
        .bind(org)
        .bind(app)
        .execute(&mut *w.tx)
        .await?
        .rows_affected();
    if removed == 0 {
        return Err(InstallError::NotInstalled);
    }
    w.emit(
        NewEvent::new(org, hub_kind::INSTALL_REMOVED, ("user", actor.to_owned()))
            .app(app)
            .payload(json!({"org": org, "app_id": app})),
    )
    .await?;
    w.commit().await?;
    Ok(())
}
