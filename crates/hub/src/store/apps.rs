//! The app catalogue, API credentials and webhook signing secrets.

use serde_json::json;
use sqlx::AnyPool;

use super::{new_id, now_ms, rfc3339, NewEvent, Store, WriteTx};
use crate::secrets;
use mno_events::directory::{AppStack, SharedEntity};
use mno_events::subject::{hub_kind, PLATFORM_ORG};

#[derive(Debug, Clone)]
pub struct AppRow {
    pub id: String,
    pub owner_id: String,
    pub name: String,
    pub stack: AppStack,
    pub webhook_url: Option<String>,
    pub account_webhook_url: Option<String>,
    pub shared_entities: Vec<SharedEntity>,
    pub webhook_disabled: bool,
    pub webhook_disabled_reason: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

pub fn stack_name(stack: AppStack) -> &'static str {
    match stack {
        AppStack::Cloud => "cloud",
        AppStack::Connector => "connector",
    }
}

pub fn parse_stack(s: &str) -> Option<AppStack> {
    match s {
        "cloud" => Some(AppStack::Cloud),
        "connector" => Some(AppStack::Connector),
        _ => None,
    }
}

impl AppRow {
    /// What anyone may see in the catalogue.
    pub fn to_public_json(&self) -> serde_json::Value {
        json!({
            "id": self.id,
            "name": self.name,
            "stack": stack_name(self.stack),
            "shared_entities": self.shared_entities,
        })
    }

    /// What the owner sees (still no secret).
    pub fn to_owner_json(&self) -> serde_json::Value {
        json!({
            "id": self.id,
            "owner_id": self.owner_id,
            "name": self.name,
            "stack": stack_name(self.stack),
            "webhook_url": self.webhook_url,
            "account_webhook_url": self.account_webhook_url,
            "shared_entities": self.shared_entities,
            "webhook_disabled": self.webhook_disabled,
            "webhook_disabled_reason": self.webhook_disabled_reason,
            "created_at": rfc3339(self.created_at),
            "updated_at": rfc3339(self.updated_at),
        })
    }

    /// The event payload: no secret, no URL credentials beyond what the owner set.
    fn event_payload(&self) -> serde_json::Value {
        let mut payload = self.to_owner_json();
        payload["app_id"] = json!(self.id);
        payload
    }
}

type AppTuple = (
    String,
    String,
    String,
    String,
    Option<String>,
    Option<String>,
    String,
    i64,
    Option<String>,
    i64,
    i64,
);

const APP_COLUMNS: &str = "id, owner_id, name, stack, webhook_url, account_webhook_url, shared_entities, webhook_disabled, webhook_disabled_reason, created_at, updated_at";

fn app_from(row: AppTuple) -> AppRow {
    let (
        id,
        owner_id,
        name,
        stack,
        webhook_url,
        account_webhook_url,
        shared,
        disabled,
        reason,
        created_at,
        updated_at,
    ) = row;
    AppRow {
        id,
        owner_id,
        name,
        stack: parse_stack(&stack).unwrap_or(AppStack::Cloud),
        webhook_url,
        account_webhook_url,
        shared_entities: serde_json::from_str(&shared).unwrap_or_default(),
        webhook_disabled: disabled != 0,
        webhook_disabled_reason: reason,
        created_at,
        updated_at,
    }
}

/// The fields of a new app, or of a change to one; already validated.
#[derive(Debug, Clone, Default)]
pub struct AppFields {
    pub name: Option<String>,
    pub stack: Option<AppStack>,
    /// `Some(None)` clears the URL.
    pub webhook_url: Option<Option<String>>,
    pub account_webhook_url: Option<Option<String>>,
    pub shared_entities: Option<Vec<SharedEntity>>,
    /// Sign-in settings (redirect URIs, back-channel logout URI).
    pub sso: crate::sso::store::ClientChange,
}

/// Credentials handed out once, at creation or rotation.
#[derive(Debug)]
pub struct NewCredentials {
    pub key: String,
    pub secret: String,
    pub webhook_secret: String,
}

async fn insert_credentials(w: &mut WriteTx, app: &str) -> Result<NewCredentials, sqlx::Error> {
    let now = now_ms();
    let creds = NewCredentials {
        key: secrets::new_key_id(),
        secret: secrets::new_api_secret(),
        webhook_secret: secrets::new_webhook_secret(),
    };
    sqlx::query(
        "INSERT INTO hub_app_credentials (key_id, app_id, secret_hash, created_at) VALUES ($1, $2, $3, $4)",
    )
    .bind(&creds.key)
    .bind(app)
    .bind(secrets::sha256_hex(&creds.secret))
    .bind(now)
    .execute(&mut *w.tx)
    .await?;
    sqlx::query(
        "INSERT INTO hub_webhook_secrets (id, app_id, secret, created_at) VALUES ($1, $2, $3, $4)",
    )
    .bind(new_id())
    .bind(app)
    .bind(&creds.webhook_secret)
    .bind(now)
    .execute(&mut *w.tx)
    .await?;
    Ok(creds)
}

/// Create an app owned by `owner`, with its first credentials.
#[allow(clippy::too_many_arguments)] // one per field of a new app, all required
pub async fn create(
    store: &Store,
    owner: &str,
    name: String,
    stack: AppStack,
    webhook_url: Option<String>,
    account_webhook_url: Option<String>,
    shared_entities: Vec<SharedEntity>,
    sso: crate::sso::store::ClientChange,
) -> Result<(AppRow, NewCredentials), sqlx::Error> {
    let now = now_ms();
    let app = AppRow {
        id: new_id(),
        owner_id: owner.to_owned(),
        name,
        stack,
        webhook_url,
        account_webhook_url,
        shared_entities,
        webhook_disabled: false,
        webhook_disabled_reason: None,
        created_at: now,
        updated_at: now,
    };
    let mut w = store.begin_write().await?;
    sqlx::query(&format!(
        "INSERT INTO hub_apps ({APP_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, 0, NULL, $8, $8)"
    ))
    .bind(&app.id)
    .bind(&app.owner_id)
    .bind(&app.name)
    .bind(stack_name(app.stack))
    .bind(&app.webhook_url)
    .bind(&app.account_webhook_url)
    .bind(serde_json::to_string(&app.shared_entities).expect("serialisable"))
    .bind(now)
    .execute(&mut *w.tx)
    .await?;
    let creds = insert_credentials(&mut w, &app.id).await?;
    crate::sso::store::save_client(&mut w.tx, &app.id, sso).await?;
    w.emit(
        NewEvent::new(
            PLATFORM_ORG,
            hub_kind::APP_CREATED,
            ("user", owner.to_owned()),
        )
        .user(owner)
        .app(&app.id)
        .payload(app.event_payload()),
    )
    .await?;
    w.commit().await?;
    Ok((app, creds))
}

pub async fn get(pool: &AnyPool, app: &str) -> Result<Option<AppRow>, sqlx::Error> {
    let row: Option<AppTuple> =
        sqlx::query_as(&format!("SELECT {APP_COLUMNS} FROM hub_apps WHERE id = $1"))
            .bind(app)
            .fetch_optional(pool)
            .await?;
    Ok(row.map(app_from))
}

pub async fn all(pool: &AnyPool) -> Result<Vec<AppRow>, sqlx::Error> {
    let rows: Vec<AppTuple> = sqlx::query_as(&format!(
        "SELECT {APP_COLUMNS} FROM hub_apps ORDER BY created_at, id"
    ))
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(app_from).collect())
}

/// Apply a change; a new webhook URL also re-enables a disabled webhook.
pub async fn update(
    store: &Store,
    actor: &str,
    app_id: &str,
    fields: AppFields,
) -> Result<Option<AppRow>, sqlx::Error> {
    let mut w = store.begin_write().await?;
    let row: Option<AppTuple> =
        sqlx::query_as(&format!("SELECT {APP_COLUMNS} FROM hub_apps WHERE id = $1"))
            .bind(app_id)
            .fetch_optional(&mut *w.tx)
            .await?;
    let Some(mut app) = row.map(app_from) else {
        return Ok(None);
    };
    let mut changed: Vec<&str> = Vec::new();
    if let Some(name) = fields.name.filter(|n| *n != app.name) {
        app.name = name;
        changed.push("name");
    }
    if let Some(stack) = fields.stack.filter(|s| *s != app.stack) {
        app.stack = stack;
        changed.push("stack");
    }
    if let Some(url) = fields.webhook_url {
        if url != app.webhook_url || app.webhook_disabled {
            app.webhook_url = url;
            app.webhook_disabled = false;
            app.webhook_disabled_reason = None;
            changed.push("webhook_url");
        }
    }
    if let Some(url) = fields
        .account_webhook_url
        .filter(|u| *u != app.account_webhook_url)
    {
        app.account_webhook_url = url;
        changed.push("account_webhook_url");
    }
    if let Some(shared) = fields.shared_entities.filter(|s| *s != app.shared_entities) {
        app.shared_entities = shared;
        changed.push("shared_entities");
    }
    let (_, sso_changed) = crate::sso::store::save_client(&mut w.tx, app_id, fields.sso).await?;
    changed.extend(sso_changed);
    if changed.is_empty() {
        return Ok(Some(app));
    }
    app.updated_at = now_ms();
    sqlx::query(
        "UPDATE hub_apps SET name = $1, stack = $2, webhook_url = $3, account_webhook_url = $4, shared_entities = $5,
         webhook_disabled = $6, webhook_disabled_reason = $7, updated_at = $8 WHERE id = $9",
    )
    .bind(&app.name)
    .bind(stack_name(app.stack))
    .bind(&app.webhook_url)
    .bind(&app.account_webhook_url)
    .bind(serde_json::to_string(&app.shared_entities).expect("serialisable"))
    .bind(app.webhook_disabled as i64)
    .bind(&app.webhook_disabled_reason)
    .bind(app.updated_at)
    .bind(app_id)
    .execute(&mut *w.tx)
    .await?;
    let mut payload = app.event_payload();
    payload["changed_fields"] = json!(changed);
    w.emit(
        NewEvent::new(
            PLATFORM_ORG,
            hub_kind::APP_UPDATED,
            ("user", actor.to_owned()),
        )
        .user(actor)
        .app(app_id)
        .payload(payload),
    )
    .await?;
    w.commit().await?;
    Ok(Some(app))
}

/// New credentials and webhook secret; the old ones expire after `overlap_ms`.
/// Returns the new credentials and when the old ones stop working.
pub async fn rotate(
    store: &Store,
    actor: &str,
    app_id: &str,
    overlap_ms: i64,
) -> Result<(NewCredentials, i64), sqlx::Error> {
    let now = now_ms();
    let until = now + overlap_ms;
    let mut w = store.begin_write().await?;
    // Shorten (never lengthen) the life of every older credential and secret.
    for table in ["hub_app_credentials", "hub_webhook_secrets"] {
        sqlx::query(&format!(
            "UPDATE {table} SET expires_at = $1 WHERE app_id = $2 AND (expires_at IS NULL OR expires_at > $1)"
        ))
        .bind(until)
        .bind(app_id)
        .execute(&mut *w.tx)
        .await?;
    }
    let creds = insert_credentials(&mut w, app_id).await?;
    w.emit(
        NewEvent::new(
            PLATFORM_ORG,
            hub_kind::CREDENTIALS_ROTATED,
            ("user", actor.to_owned()),
        )
        .user(actor)
        .app(app_id)
        .payload(
            json!({"app_id": app_id, "key": creds.key, "previous_valid_until": rfc3339(until)}),
        ),
    )
    .await?;
    w.commit().await?;
    Ok((creds, until))
}

/// The API keys of an app (never their secrets), newest first.
pub async fn credentials(pool: &AnyPool, app: &str) -> Result<Vec<serde_json::Value>, sqlx::Error> {
    let rows: Vec<(String, i64, Option<i64>)> = sqlx::query_as(
        "SELECT key_id, created_at, expires_at FROM hub_app_credentials
         WHERE app_id = $1 AND (expires_at IS NULL OR expires_at > $2) ORDER BY created_at DESC",
    )
    .bind(app)
    .bind(now_ms())
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(key, created, expires)| {
            json!({"key": key, "created_at": rfc3339(created), "expires_at": expires.map(rfc3339)})
        })
        .collect())
}

/// The app of a live API key and the stored hash of its secret.
pub async fn key_lookup(
    pool: &AnyPool,
    key: &str,
) -> Result<Option<(String, String)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT app_id, secret_hash FROM hub_app_credentials
         WHERE key_id = $1 AND (expires_at IS NULL OR expires_at > $2)",
    )
    .bind(key)
    .bind(now_ms())
    .fetch_optional(pool)
    .await
}

/// Live webhook signing secrets of an app, newest first.
pub async fn webhook_secrets(pool: &AnyPool, app: &str) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT secret FROM hub_webhook_secrets
         WHERE app_id = $1 AND (expires_at IS NULL OR expires_at > $2) ORDER BY created_at DESC, id DESC",
    )
    .bind(app)
    .bind(now_ms())
    .fetch_all(pool)
    .await
}

/// Mark the app's webhook disabled (its receiver answered 410); `false` if unknown.
pub async fn disable_webhook(
    store: &Store,
    app_id: &str,
    reason: &str,
) -> Result<bool, sqlx::Error> {
    let mut w = store.begin_write().await?;
    let done = sqlx::query(
        "UPDATE hub_apps SET webhook_disabled = 1, webhook_disabled_reason = $1, updated_at = $2 WHERE id = $3",
    )
    .bind(reason)
    .bind(now_ms())
    .bind(app_id)
    .execute(&mut *w.tx)
    .await?
    .rows_affected();
    if done == 0 {
        return Ok(false);
    }
    w.emit(
        NewEvent::new(
            PLATFORM_ORG,
            hub_kind::WEBHOOK_DISABLED,
            ("system", "delivery".to_owned()),
        )
        .app(app_id)
        .payload(json!({"app_id": app_id, "reason": reason})),
    )
    .await?;
    w.commit().await?;
    Ok(true)
}
