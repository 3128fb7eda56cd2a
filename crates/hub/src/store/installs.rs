//! Which org installed which app, and whether data sharing is on.

use serde_json::json;
use sqlx::AnyPool;

use super::{now_ms, rfc3339, NewEvent, Store};
use mno_events::subject::hub_kind;

#[derive(Debug, Clone)]
pub struct InstallRow {
    pub org_id: String,
    pub app_id: String,
    pub app_name: String,
    pub data_sharing: bool,
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
            "installed_by": self.installed_by,
            "installed_at": rfc3339(self.created_at),
            "updated_at": rfc3339(self.updated_at),
        })
    }
}

type InstallTuple = (String, String, String, i64, String, i64, i64);

const INSTALL_SELECT: &str =
    "SELECT i.org_id, i.app_id, a.name, i.data_sharing, i.installed_by, i.created_at, i.updated_at
     FROM hub_installs i JOIN hub_apps a ON a.id = i.app_id";

fn install_from(row: InstallTuple) -> InstallRow {
    let (org_id, app_id, app_name, sharing, installed_by, created_at, updated_at) = row;
    InstallRow {
        org_id,
        app_id,
        app_name,
        data_sharing: sharing != 0,
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

pub async fn set_data_sharing(
    store: &Store,
    actor: &str,
    org: &str,
    app: &str,
    data_sharing: bool,
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
    if row.data_sharing == data_sharing {
        return Ok(row);
    }
    row.data_sharing = data_sharing;
    row.updated_at = now_ms();
    sqlx::query("UPDATE hub_installs SET data_sharing = $1, updated_at = $2 WHERE org_id = $3 AND app_id = $4")
        .bind(data_sharing as i64)
        .bind(row.updated_at)
        .bind(org)
        .bind(app)
        .execute(&mut *w.tx)
        .await?;
    w.emit(
        NewEvent::new(org, hub_kind::INSTALL_UPDATED, ("user", actor.to_owned()))
            .app(app)
            .payload(json!({"org": org, "app_id": app, "data_sharing": data_sharing})),
    )
    .await?;
    w.commit().await?;
    Ok(row)
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
