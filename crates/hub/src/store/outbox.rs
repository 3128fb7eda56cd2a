//! The outbox table: Hub events written with the change they describe.

use sqlx::{Any, Transaction};

use super::{new_id, now_ms};

/// A Hub event about to be written.
#[derive(Debug, Clone)]
pub struct NewEvent {
    /// The org concerned, or [`mno_events::subject::PLATFORM_ORG`].
    pub org: String,
    /// One of [`mno_events::subject::hub_kind`].
    pub kind: &'static str,
    /// Who did it: ("user", id), ("app", id) or ("system", component).
    pub actor: (&'static str, String),
    pub user_id: String,
    pub app_id: String,
    /// Details; never a secret.
    pub payload: serde_json::Value,
}

impl NewEvent {
    pub fn new(org: &str, kind: &'static str, actor: (&'static str, String)) -> Self {
        Self {
            org: org.to_owned(),
            kind,
            actor,
            user_id: String::new(),
            app_id: String::new(),
            payload: serde_json::Value::Object(Default::default()),
        }
    }

    pub fn user(mut self, user_id: &str) -> Self {
        self.user_id = user_id.to_owned();
        self
    }

    pub fn app(mut self, app_id: &str) -> Self {
        self.app_id = app_id.to_owned();
        self
    }

    pub fn payload(mut self, payload: serde_json::Value) -> Self {
        self.payload = payload;
        self
    }
}

/// A row of the outbox.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct OutboxRow {
    pub id: i64,
    pub event_id: String,
    pub org: String,
    pub kind: String,
    pub actor_kind: String,
    pub actor_id: String,
    pub user_id: String,
    pub app_id: String,
    pub payload: String,
    pub occurred_at: i64,
}

/// Append an event; the id comes from the counter row, locked until commit.
pub async fn append(
    tx: &mut Transaction<'static, Any>,
    event: NewEvent,
) -> Result<i64, sqlx::Error> {
    let id: i64 = sqlx::query_scalar(
        "UPDATE hub_counters SET value = value + 1 WHERE name = 'outbox' RETURNING value",
    )
    .fetch_one(&mut **tx)
    .await?;
    let payload = String::from_utf8(mno_events::envelope::canonical_json(&event.payload))
        .expect("serde_json writes UTF-8");
    sqlx::query(
        "INSERT INTO hub_outbox (id, event_id, org, kind, actor_kind, actor_id, user_id, app_id, payload, occurred_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(id)
    .bind(new_id())
    .bind(&event.org)
    .bind(event.kind)
    .bind(event.actor.0)
    .bind(&event.actor.1)
    .bind(&event.user_id)
    .bind(&event.app_id)
    .bind(payload)
    .bind(now_ms())
    .execute(&mut **tx)
    .await?;
    Ok(id)
}

/// The oldest rows not yet published, in id order.
pub async fn unpublished(pool: &sqlx::AnyPool, limit: i64) -> Result<Vec<OutboxRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, event_id, org, kind, actor_kind, actor_id, user_id, app_id, payload, occurred_at
         FROM hub_outbox WHERE published_at IS NULL ORDER BY id LIMIT $1",
    )
    .bind(limit)
    .fetch_all(pool)
    .await
}

/// Mark rows `first..=last` published. Ids are handed out under the counter's
/// row lock held until commit, so no row in the range can commit later.
pub async fn mark_published(
    pool: &sqlx::AnyPool,
    first: i64,
    last: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE hub_outbox SET published_at = $1 WHERE id >= $2 AND id <= $3 AND published_at IS NULL",
    )
    .bind(now_ms())
    .bind(first)
    .bind(last)
    .execute(pool)
    .await?;
    Ok(())
}

/// How many rows wait to be published (for metrics and tests).
pub async fn backlog(pool: &sqlx::AnyPool) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT COUNT(*) FROM hub_outbox WHERE published_at IS NULL")
        .fetch_one(pool)
        .await
}
