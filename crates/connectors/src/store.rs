//! The runtime's SQL tables (migrations 5000s): installs, their entities,
//! per-record sync state, the log of conflicts and refusals, and the
//! connector apps' own credentials registered by their owners.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use sqlx::{AnyPool, Row};

/// Which way an entity flows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// Outside changes are written to Connec!.
    ToConnec,
    /// Connec! changes are written to the outside API.
    FromConnec,
    Both,
}

impl Direction {
    pub fn pulls(self) -> bool {
        matches!(self, Direction::ToConnec | Direction::Both)
    }
    pub fn pushes(self) -> bool {
        matches!(self, Direction::FromConnec | Direction::Both)
    }
    pub fn name(self) -> &'static str {
        match self {
            Direction::ToConnec => "to_connec",
            Direction::FromConnec => "from_connec",
            Direction::Both => "both",
        }
    }
    pub fn parse(text: &str) -> Option<Direction> {
        serde_json::from_value(serde_json::Value::String(text.to_owned())).ok()
    }
}

/// Which side wins a conflict (a record changed on both sides since the last sync).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Prefer {
    /// The side with the later `updated_at` (the default).
    Newest,
    Connec,
    Outside,
}

impl Prefer {
    pub fn name(self) -> &'static str {
        match self {
            Prefer::Newest => "newest",
            Prefer::Connec => "connec",
            Prefer::Outside => "outside",
        }
    }
    pub fn parse(text: &str) -> Option<Prefer> {
        serde_json::from_value(serde_json::Value::String(text.to_owned())).ok()
    }
}

#[derive(Debug, Clone)]
pub struct InstallRow {
    pub org: String,
    pub app_id: String,
    pub kind: String,
    pub settings: serde_json::Value,
    pub sealed_credentials: String,
    pub prefer: Prefer,
    pub interval_secs: i64,
    pub push_cursor: i64,
    pub last_success_at: Option<String>,
    pub last_error: Option<String>,
    pub last_error_at: Option<String>,
    pub failures: i64,
    pub next_attempt_at: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct EntityRow {
    pub entity: String,
    pub direction: Direction,
    #[serde(skip)]
    pub cursor: Option<String>,
    pub cutoff: Option<String>,
    pub pulled: i64,
    pub pushed: i64,
    pub conflicts: i64,
    pub rejected: i64,
    /// Records deleted in Connec! because the outside API no longer has them.
    pub deleted: i64,
    /// Outside records parked: refused for a reference that never came (see `parking`).
    pub parked: i64,
}

/// What one record looked like on both sides at its last sync.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordState {
    pub outside_tag: String,
    pub connec_version: i64,
}

/// An outside record refused for a reference that names no record: counted
/// per sync, and parked (`parked_at`) once it no longer holds its entity's cursor.
#[derive(Debug, Clone, Serialize)]
pub struct ParkedRow {
    pub entity: String,
    pub record: String,
    pub reason: String,
    pub passes: i64,
    /// When it was first refused.
    pub since: String,
    pub parked_at: Option<String>,
}

/// A create outside not known to be done (see `runtime/creating.rs`).
#[derive(Debug, Clone)]
pub struct PendingCreate {
    /// Sent as the idempotency key with every attempt.
    pub key: String,
    /// The outside id and tag, once the outside API answered.
    pub answered: Option<(String, String)>,
}

/// A conflict settled or a record refused.
#[derive(Debug, Clone, Serialize)]
pub struct LogEntry {
    pub entity: String,
    pub kind: String,
    pub record: String,
    pub detail: String,
    pub at: String,
}

/// Counts to add to an entity's totals.
#[derive(Debug, Clone, Copy, Default)]
pub struct Counts {
    pub pulled: i64,
    pub pushed: i64,
    pub conflicts: i64,
    pub rejected: i64,
    pub deleted: i64,
}

pub fn now_text() -> String {
    time_text(Utc::now())
}

pub fn time_text(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// How many conflict/refusal entries an install keeps.
const LOG_KEPT: i64 = 200;

#[derive(Clone)]
pub struct Store {
    db: AnyPool,
}

impl Store {
    pub async fn open(db: AnyPool) -> anyhow::Result<Store> {
        let mut migrator = sqlx::migrate!("./migrations");
        // Other parts' migrations share the database.
        migrator.set_ignore_missing(true);
        migrator.run(&db).await?;
        Ok(Store { db })
    }

    /// Create or replace an install's configuration. Entities kept with the
    /// same direction keep their cursor and counts; others start afresh.
    pub async fn configure(
        &self,
        install: &InstallRow,
        entities: &[(String, Direction, Option<String>)],
    ) -> Result<(), sqlx::Error> {
        let mut tx = self.db.begin().await?;
        sqlx::query(
            "INSERT INTO connector_installs (org, app_id, kind, settings, sealed_credentials, prefer, interval_secs,
                push_cursor, failures, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 0, $9)
             ON CONFLICT (org, app_id) DO UPDATE SET kind = $3, settings = $4, sealed_credentials = $5,
                prefer = $6, interval_secs = $7, failures = 0, next_attempt_at = NULL, updated_at = $9",
        )
        .bind(&install.org)
        .bind(&install.app_id)
        .bind(&install.kind)
        .bind(install.settings.to_string())
        .bind(&install.sealed_credentials)
        .bind(install.prefer.name())
        .bind(install.interval_secs)
        .bind(install.push_cursor)
        .bind(now_text())
        .execute(&mut *tx)
        .await?;
        let existing = sqlx::query(
            "SELECT entity, direction FROM connector_entities WHERE org = $1 AND app_id = $2",
        )
        .bind(&install.org)
        .bind(&install.app_id)
        .fetch_all(&mut *tx)
        .await?;
        for row in existing {
            let entity: String = row.get(0);
            let direction: String = row.get(1);
            let kept = entities
                .iter()
                .any(|(e, d, _)| *e == entity && d.name() == direction);
            if !kept {
                // Its records parked go with its cursor: the entity starts afresh.
                for table in ["connector_entities", "connector_parked"] {
                    sqlx::query(&format!(
                        "DELETE FROM {table} WHERE org = $1 AND app_id = $2 AND entity = $3"
                    ))
                    .bind(&install.org)
                    .bind(&install.app_id)
                    .bind(&entity)
                    .execute(&mut *tx)
                    .await?;
                }
            }
        }
        for (entity, direction, cutoff) in entities {
            sqlx::query(
                "INSERT INTO connector_entities (org, app_id, entity, direction, cutoff, pulled, pushed, conflicts, rejected)
                 VALUES ($1, $2, $3, $4, $5, 0, 0, 0, 0)
                 ON CONFLICT (org, app_id, entity) DO UPDATE SET cutoff = $5",
            )
            .bind(&install.org)
            .bind(&install.app_id)
            .bind(entity)
            .bind(direction.name())
            .bind(cutoff.clone())
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await
    }

    /// Register (or replace) a connector app's own credentials, sealed.
    pub async fn set_app_credentials(&self, app: &str, sealed: &str) -> Result<(), sqlx::Error> {
        sqlx::query(
            "INSERT INTO connector_app_credentials (app_id, sealed_credentials, updated_at)
             VALUES ($1, $2, $3)
             ON CONFLICT (app_id) DO UPDATE SET sealed_credentials = $2, updated_at = $3",
        )
        .bind(app)
        .bind(sealed)
        .bind(now_text())
        .execute(&self.db)
        .await?;
        Ok(())
    }

    /// A connector app's registered credentials (sealed) and when they were registered.
    pub async fn app_credentials(
        &self,
        app: &str,
    ) -> Result<Option<(String, String)>, sqlx::Error> {
        let row = sqlx::query(
            "SELECT sealed_credentials, updated_at FROM connector_app_credentials WHERE app_id = $1",
        )
        .bind(app)
        .fetch_optional(&self.db)
        .await?;
        Ok(row.map(|r| (r.get(0), r.get(1))))
    }

    /// Forget a connector app's registered credentials; answers whether there were any.
    pub async fn remove_app_credentials(&self, app: &str) -> Result<bool, sqlx::Error> {
        let done = sqlx::query("DELETE FROM connector_app_credentials WHERE app_id = $1")
            .bind(app)
            .execute(&self.db)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    pub async fn installs(&self) -> Result<Vec<InstallRow>, sqlx::Error> {
        let rows = sqlx::query(&format!("SELECT {INSTALL_COLUMNS} FROM connector_installs"))
            .fetch_all(&self.db)
            .await?;
        Ok(rows.iter().map(install_row).collect())
    }

    pub async fn install(&self, org: &str, app: &str) -> Result<Option<InstallRow>, sqlx::Error> {
        let row = sqlx::query(&format!(
            "SELECT {INSTALL_COLUMNS} FROM connector_installs WHERE org = $1 AND app_id = $2"
        ))
        .bind(org)
        .bind(app)
        .fetch_optional(&self.db)
        .await?;
        Ok(row.as_ref().map(install_row))
    }

    pub async fn remove(&self, org: &str, app: &str) -> Result<bool, sqlx::Error> {
        let mut tx = self.db.begin().await?;
        let mut removed = 0;
        for table in [
            "connector_installs",
            "connector_entities",
            "connector_records",
            "connector_events",
            "connector_held",
            "connector_parked",
            "connector_creates",
        ] {
            let done = sqlx::query(&format!(
                "DELETE FROM {table} WHERE org = $1 AND app_id = $2"
            ))
            .bind(org)
            .bind(app)
            .execute(&mut *tx)
            .await?;
            if table == "connector_installs" {
                removed = done.rows_affected();
            }
        }
        tx.commit().await?;
        Ok(removed > 0)
    }

    pub async fn entities(&self, org: &str, app: &str) -> Result<Vec<EntityRow>, sqlx::Error> {
        let rows = sqlx::query(
            "SELECT entity, direction, cursor, cutoff, pulled, pushed, conflicts, rejected, deleted,
                (SELECT COUNT(*) FROM connector_parked p WHERE p.org = e.org AND p.app_id = e.app_id
                    AND p.entity = e.entity AND p.parked_at IS NOT NULL)
             FROM connector_entities e WHERE org = $1 AND app_id = $2 ORDER BY entity",
        )
        .bind(org)
        .bind(app)
        .fetch_all(&self.db)
        .await?;
        Ok(rows
            .iter()
            .map(|r| EntityRow {
                entity: r.get(0),
                direction: Direction::parse(&r.get::<String, _>(1)).unwrap_or(Direction::Both),
                cursor: r.get(2),
                cutoff: r.get(3),
                pulled: r.get(4),
                pushed: r.get(5),
                conflicts: r.get(6),
                rejected: r.get(7),
                deleted: r.get(8),
                parked: r.get(9),
            })
            .collect())
    }

    pub async fn set_cursor(
        &self,
        org: &str,
        app: &str,
        entity: &str,
        cursor: Option<&str>,
    ) -> Result<(), sqlx::Error> {
        sqlx::query(
            "UPDATE connector_entities SET cursor = $1 WHERE org = $2 AND app_id = $3 AND entity = $4",
        )
        .bind(cursor.map(str::to_owned))
        .bind(org)
        .bind(app)
        .bind(entity)
        .execute(&self.db)
        .await?;
        Ok(())
    }

    pub async fn add_counts(
        &self,
        org: &str,
        app: &str,
        entity: &str,
        counts: Counts,
    ) -> Result<(), sqlx::Error> {
        sqlx::query(
            "UPDATE connector_entities SET pulled = pulled + $1, pushed = pushed + $2,
                conflicts = conflicts + $3, rejected = rejected + $4, deleted = deleted + $8
             WHERE org = $5 AND app_id = $6 AND entity = $7",
        )
        .bind(counts.pulled)
        .bind(counts.pushed)
        .bind(counts.conflicts)
        .bind(counts.rejected)
        .bind(org)
        .bind(app)
        .bind(entity)
        .bind(counts.deleted)
        .execute(&self.db)
        .await?;
        Ok(())
    }

    pub async fn record_state(
        &self,
        org: &str,
        app: &str,
        entity: &str,
        outside_id: &str,
    ) -> Result<Option<RecordState>, sqlx::Error> {
        let row = sqlx::query(
            "SELECT outside_tag, connec_version FROM connector_records
             WHERE org = $1 AND app_id = $2 AND entity = $3 AND outside_id = $4",
        )
        .bind(org)
        .bind(app)
        .bind(entity)
        .bind(outside_id)
        .fetch_optional(&self.db)
        .await?;
        Ok(row.map(|r| RecordState {
            outside_tag: r.get(0),
            connec_version: r.get(1),
        }))
    }

    /// The outside ids of every record of `entity` synced so far.
    pub async fn known_ids(
        &self,
        org: &str,
        app: &str,
        entity: &str,
    ) -> Result<Vec<String>, sqlx::Error> {
        let rows = sqlx::query(
            "SELECT outside_id FROM connector_records WHERE org = $1 AND app_id = $2 AND entity = $3",
        )
        .bind(org)
        .bind(app)
        .bind(entity)
        .fetch_all(&self.db)
        .await?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    pub async fn save_state(
        &self,
        org: &str,
        app: &str,
        entity: &str,
        outside_id: &str,
        state: &RecordState,
    ) -> Result<(), sqlx::Error> {
        sqlx::query(
            "INSERT INTO connector_records (org, app_id, entity, outside_id, outside_tag, connec_version)
             VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (org, app_id, entity, outside_id) DO UPDATE SET outside_tag = $5, connec_version = $6",
        )
        .bind(org)
        .bind(app)
        .bind(entity)
        .bind(outside_id)
        .bind(&state.outside_tag)
        .bind(state.connec_version)
        .execute(&self.db)
        .await?;
        Ok(())
    }

    pub async fn forget_state(
        &self,
        org: &str,
        app: &str,
        entity: &str,
        outside_id: &str,
    ) -> Result<(), sqlx::Error> {
        sqlx::query(
            "DELETE FROM connector_records WHERE org = $1 AND app_id = $2 AND entity = $3 AND outside_id = $4",
        )
        .bind(org)
        .bind(app)
        .bind(entity)
        .bind(outside_id)
        .execute(&self.db)
        .await?;
        Ok(())
    }

    /// Note a conflict settled (`kind` "conflict"), a record refused ("rejected"),
    /// deleted ("deleted"), held ("held"), or a problem of a listing ("withheld", "skipped").
    pub async fn log(
        &self,
        org: &str,
        app: &str,
        entity: &str,
        kind: &str,
        record: &str,
        detail: &str,
    ) -> Result<(), sqlx::Error> {
        sqlx::query(
            "INSERT INTO connector_events (id, org, app_id, entity, kind, record, detail, at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(uuid::Uuid::now_v7().to_string())
        .bind(org)
        .bind(app)
        .bind(entity)
        .bind(kind)
        .bind(record)
        .bind(detail)
        .bind(now_text())
        .execute(&self.db)
        .await?;
        sqlx::query(
            "DELETE FROM connector_events WHERE org = $1 AND app_id = $2 AND id NOT IN
               (SELECT id FROM connector_events WHERE org = $3 AND app_id = $4 ORDER BY id DESC LIMIT $5)",
        )
        .bind(org)
        .bind(app)
        .bind(org)
        .bind(app)
        .bind(LOG_KEPT)
        .execute(&self.db)
        .await?;
        Ok(())
    }

    /// The newest `limit` log entries, oldest first.
    pub async fn recent_log(
        &self,
        org: &str,
        app: &str,
        limit: i64,
    ) -> Result<Vec<LogEntry>, sqlx::Error> {
        let rows = sqlx::query(
            "SELECT entity, kind, record, detail, at FROM connector_events
             WHERE org = $1 AND app_id = $2 ORDER BY id DESC LIMIT $3",
        )
        .bind(org)
        .bind(app)
        .bind(limit)
        .fetch_all(&self.db)
        .await?;
        let mut entries: Vec<LogEntry> = rows
            .iter()
            .map(|r| LogEntry {
                entity: r.get(0),
                kind: r.get(1),
                record: r.get(2),
                detail: r.get(3),
                at: r.get(4),
            })
            .collect();
        entries.reverse();
        Ok(entries)
    }

    /// Hold a Connec! record back from the outside API (see `references`).
    pub async fn hold(
        &self,
        org: &str,
        app: &str,
        entity: &str,
        global_id: &str,
    ) -> Result<(), sqlx::Error> {
        sqlx::query(
            "INSERT INTO connector_held (org, app_id, entity, global_id, since) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (org, app_id, entity, global_id) DO NOTHING",
        )
        .bind(org)
        .bind(app)
        .bind(entity)
        .bind(global_id)
        .bind(now_text())
        .execute(&self.db)
        .await?;
        Ok(())
    }

    /// The records held back, oldest first: `(entity, global id)`.
    pub async fn held(&self, org: &str, app: &str) -> Result<Vec<(String, String)>, sqlx::Error> {
        let rows = sqlx::query(
            "SELECT entity, global_id FROM connector_held WHERE org = $1 AND app_id = $2 ORDER BY since",
        )
        .bind(org)
        .bind(app)
        .fetch_all(&self.db)
        .await?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    pub async fn release(
        &self,
        org: &str,
        app: &str,
        entity: &str,
        global_id: &str,
    ) -> Result<(), sqlx::Error> {
        sqlx::query(
            "DELETE FROM connector_held WHERE org = $1 AND app_id = $2 AND entity = $3 AND global_id = $4",
        )
        .bind(org)
        .bind(app)
        .bind(entity)
        .bind(global_id)
        .execute(&self.db)
        .await?;
        Ok(())
    }

    /// The records of the install counted or parked for a missing reference.
    pub async fn parked(&self, org: &str, app: &str) -> Result<Vec<ParkedRow>, sqlx::Error> {
        let rows = sqlx::query(
            "SELECT entity, outside_id, reason, passes, first_at, parked_at FROM connector_parked
             WHERE org = $1 AND app_id = $2 ORDER BY entity, first_at",
        )
        .bind(org)
        .bind(app)
        .fetch_all(&self.db)
        .await?;
        Ok(rows
            .iter()
            .map(|r| ParkedRow {
                entity: r.get(0),
                record: r.get(1),
                reason: r.get(2),
                passes: r.get(3),
                since: r.get(4),
                parked_at: r.get(5),
            })
            .collect())
    }

    /// Count one more sync that refused the record for `reason`; answers the
    /// passes so far and whether it is parked already.
    pub async fn count_pass(
        &self,
        org: &str,
        app: &str,
        entity: &str,
        outside_id: &str,
        reason: &str,
    ) -> Result<(i64, bool), sqlx::Error> {
        sqlx::query(
            "INSERT INTO connector_parked (org, app_id, entity, outside_id, reason, passes, first_at)
             VALUES ($1, $2, $3, $4, $5, 1, $6)
             ON CONFLICT (org, app_id, entity, outside_id) DO UPDATE
                SET passes = connector_parked.passes + 1, reason = $5",
        )
        .bind(org)
        .bind(app)
        .bind(entity)
        .bind(outside_id)
        .bind(reason)
        .bind(now_text())
        .execute(&self.db)
        .await?;
        let row = sqlx::query(
            "SELECT passes, parked_at FROM connector_parked
             WHERE org = $1 AND app_id = $2 AND entity = $3 AND outside_id = $4",
        )
        .bind(org)
        .bind(app)
        .bind(entity)
        .bind(outside_id)
        .fetch_one(&self.db)
        .await?;
        Ok((row.get(0), row.get::<Option<String>, _>(1).is_some()))
    }

    pub async fn park(
        &self,
        org: &str,
        app: &str,
        entity: &str,
        outside_id: &str,
    ) -> Result<(), sqlx::Error> {
        sqlx::query(
            "UPDATE connector_parked SET parked_at = $5
             WHERE org = $1 AND app_id = $2 AND entity = $3 AND outside_id = $4",
        )
        .bind(org)
        .bind(app)
        .bind(entity)
        .bind(outside_id)
        .bind(now_text())
        .execute(&self.db)
        .await?;
        Ok(())
    }

    /// Forget a record counted or parked (it was written, or is gone outside).
    pub async fn unpark(
        &self,
        org: &str,
        app: &str,
        entity: &str,
        outside_id: &str,
    ) -> Result<(), sqlx::Error> {
        sqlx::query(
            "DELETE FROM connector_parked WHERE org = $1 AND app_id = $2 AND entity = $3 AND outside_id = $4",
        )
        .bind(org)
        .bind(app)
        .bind(entity)
        .bind(outside_id)
        .execute(&self.db)
        .await?;
        Ok(())
    }

    /// A create outside not known to be done: its key and, when the outside
    /// API answered it, the outside id and tag.
    pub async fn pending_create(
        &self,
        org: &str,
        app: &str,
        entity: &str,
        global_id: &str,
    ) -> Result<Option<PendingCreate>, sqlx::Error> {
        let row = sqlx::query(
            "SELECT attempt_key, outside_id, outside_tag FROM connector_creates
             WHERE org = $1 AND app_id = $2 AND entity = $3 AND global_id = $4",
        )
        .bind(org)
        .bind(app)
        .bind(entity)
        .bind(global_id)
        .fetch_optional(&self.db)
        .await?;
        Ok(row.map(|r| PendingCreate {
            key: r.get(0),
            answered: r
                .get::<Option<String>, _>(1)
                .zip(r.get::<Option<String>, _>(2)),
        }))
    }

    /// Note a create about to be sent, under `key`.
    pub async fn begin_create(
        &self,
        org: &str,
        app: &str,
        entity: &str,
        global_id: &str,
        key: &str,
    ) -> Result<(), sqlx::Error> {
        sqlx::query(
            "INSERT INTO connector_creates (org, app_id, entity, global_id, attempt_key, since)
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (org, app_id, entity, global_id) DO NOTHING",
        )
        .bind(org)
        .bind(app)
        .bind(entity)
        .bind(global_id)
        .bind(key)
        .bind(now_text())
        .execute(&self.db)
        .await?;
        Ok(())
    }

    /// The outside API answered the create: its id and tag.
    pub async fn create_answered(
        &self,
        org: &str,
        app: &str,
        entity: &str,
        global_id: &str,
        outside_id: &str,
        tag: &str,
    ) -> Result<(), sqlx::Error> {
        sqlx::query(
            "UPDATE connector_creates SET outside_id = $5, outside_tag = $6
             WHERE org = $1 AND app_id = $2 AND entity = $3 AND global_id = $4",
        )
        .bind(org)
        .bind(app)
        .bind(entity)
        .bind(global_id)
        .bind(outside_id)
        .bind(tag)
        .execute(&self.db)
        .await?;
        Ok(())
    }

    /// The create is done (Connec! knows the outside id), or was refused.
    pub async fn end_create(
        &self,
        org: &str,
        app: &str,
        entity: &str,
        global_id: &str,
    ) -> Result<(), sqlx::Error> {
        sqlx::query(
            "DELETE FROM connector_creates WHERE org = $1 AND app_id = $2 AND entity = $3 AND global_id = $4",
        )
        .bind(org)
        .bind(app)
        .bind(entity)
        .bind(global_id)
        .execute(&self.db)
        .await?;
        Ok(())
    }

    pub async fn set_push_cursor(&self, org: &str, app: &str, seq: i64) -> Result<(), sqlx::Error> {
        sqlx::query(
            "UPDATE connector_installs SET push_cursor = $1 WHERE org = $2 AND app_id = $3 AND push_cursor < $1",
        )
        .bind(seq)
        .bind(org)
        .bind(app)
        .execute(&self.db)
        .await?;
        Ok(())
    }

    pub async fn mark_success(&self, org: &str, app: &str) -> Result<(), sqlx::Error> {
        sqlx::query(
            "UPDATE connector_installs SET last_success_at = $1, failures = 0, next_attempt_at = NULL
             WHERE org = $2 AND app_id = $3",
        )
        .bind(now_text())
        .bind(org)
        .bind(app)
        .execute(&self.db)
        .await?;
        Ok(())
    }

    /// Show a problem of a sync that otherwise succeeded (deletions withheld,
    /// records without an id) as the install's last error, without backing off.
    pub async fn note_error(
        &self,
        org: &str,
        app: &str,
        error: &str,
        scope: &str,
    ) -> Result<(), sqlx::Error> {
        sqlx::query(
            "UPDATE connector_installs SET last_error = $1, last_error_at = $2, last_error_scope = $5
             WHERE org = $3 AND app_id = $4",
        )
        .bind(error)
        .bind(now_text())
        .bind(org)
        .bind(app)
        .bind(scope)
        .execute(&self.db)
        .await?;
        Ok(())
    }

    /// The install's last error, when it was recorded, and the pass it came from.
    pub async fn last_error(
        &self,
        org: &str,
        app: &str,
    ) -> Result<Option<(String, String, Option<String>)>, sqlx::Error> {
        let row = sqlx::query(
            "SELECT last_error, last_error_at, last_error_scope FROM connector_installs
             WHERE org = $1 AND app_id = $2 AND last_error IS NOT NULL",
        )
        .bind(org)
        .bind(app)
        .fetch_optional(&self.db)
        .await?;
        Ok(row.map(|r| {
            (
                r.get(0),
                r.get::<Option<String>, _>(1).unwrap_or_default(),
                r.get(2),
            )
        }))
    }

    /// Clear the last error recorded at `at` (not one recorded since), with
    /// the failures in a row it counted and the back-off; answers whether it did.
    pub async fn clear_error(&self, org: &str, app: &str, at: &str) -> Result<bool, sqlx::Error> {
        let done = sqlx::query(
            "UPDATE connector_installs SET last_error = NULL, last_error_at = NULL, last_error_scope = NULL,
                failures = 0, next_attempt_at = NULL
             WHERE org = $1 AND app_id = $2 AND last_error_at = $3",
        )
        .bind(org)
        .bind(app)
        .bind(at)
        .execute(&self.db)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Record a failure and when to try next; answers the consecutive failures.
    pub async fn mark_failure(
        &self,
        org: &str,
        app: &str,
        error: &str,
        scope: &str,
        next_attempt: DateTime<Utc>,
    ) -> Result<(), sqlx::Error> {
        sqlx::query(
            "UPDATE connector_installs SET last_error = $1, last_error_at = $2, failures = failures + 1,
                next_attempt_at = $3, last_error_scope = $6 WHERE org = $4 AND app_id = $5",
        )
        .bind(error)
        .bind(now_text())
        .bind(time_text(next_attempt))
        .bind(org)
        .bind(app)
        .bind(scope)
        .execute(&self.db)
        .await?;
        Ok(())
    }
}

const INSTALL_COLUMNS: &str =
    "org, app_id, kind, settings, sealed_credentials, prefer, interval_secs, push_cursor,
    last_success_at, last_error, last_error_at, failures, next_attempt_at";

fn install_row(r: &sqlx::any::AnyRow) -> InstallRow {
    InstallRow {
        org: r.get(0),
        app_id: r.get(1),
        kind: r.get(2),
        settings: serde_json::from_str(&r.get::<String, _>(3)).unwrap_or_default(),
        sealed_credentials: r.get(4),
        prefer: Prefer::parse(&r.get::<String, _>(5)).unwrap_or(Prefer::Newest),
        interval_secs: r.get(6),
        push_cursor: r.get(7),
        last_success_at: r.get(8),
        last_error: r.get(9),
        last_error_at: r.get(10),
        failures: r.get(11),
        next_attempt_at: r.get(12),
    }
}
