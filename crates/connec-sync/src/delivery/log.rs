//! The delivery log: the most recent attempts, newest first; in the
//! platform's database (kept across restarts, capped), or in memory when
//! delivery runs without one (benchmarks).
//!
//! It answers "what happened to my webhooks lately"; the durable record of
//! what was given up on is the DLQ stream.

use std::collections::VecDeque;
use std::sync::Mutex;

use sqlx::{AnyPool, Row};
use tokio::sync::{mpsc, oneshot};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttemptStatus {
    Delivered,
    Failed,
    DeadLettered,
    /// The receiver answered 410 Gone and the endpoint was disabled.
    Disabled,
}

impl AttemptStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Delivered => "delivered",
            Self::Failed => "failed",
            Self::DeadLettered => "dead_lettered",
            Self::Disabled => "disabled",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "delivered" => Some(Self::Delivered),
            "failed" => Some(Self::Failed),
            "dead_lettered" => Some(Self::DeadLettered),
            "disabled" => Some(Self::Disabled),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LogEntry {
    pub at: DateTime<Utc>,
    pub app_id: String,
    pub org: String,
    pub webhook_id: String,
    pub event_ids: Vec<String>,
    /// 1 for a first attempt.
    pub attempt: u32,
    pub status: AttemptStatus,
    pub http_status: Option<u16>,
    pub latency_ms: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Where entries live: a ring in memory, or (when the platform has a
/// database) a capped table written in batches by a background task.
pub struct DeliveryLog {
    recent: Mutex<VecDeque<LogEntry>>,
    capacity: usize,
    durable: Option<Durable>,
}

struct Durable {
    db: AnyPool,
    writes: mpsc::UnboundedSender<Write>,
}

enum Write {
    Entry(Box<LogEntry>),
    /// Answered once every entry sent before it is stored.
    Flush(oneshot::Sender<()>),
}

impl DeliveryLog {
    /// A log in memory only (lost on restart).
    pub fn new(capacity: usize) -> Self {
        Self {
            recent: Mutex::new(VecDeque::with_capacity(capacity.min(1024))),
            capacity: capacity.max(1),
            durable: None,
        }
    }

    /// A log in `db` (table `delivery_attempts`), keeping the newest `capacity` entries.
    pub fn durable(db: AnyPool, capacity: usize) -> Self {
        let (writes, queued) = mpsc::unbounded_channel();
        tokio::spawn(write_batches(db.clone(), queued, capacity.max(1)));
        Self {
            durable: Some(Durable { db, writes }),
            ..Self::new(capacity)
        }
    }

    pub fn push(&self, entry: LogEntry) {
        match &self.durable {
            Some(durable) => {
                let _ = durable.writes.send(Write::Entry(Box::new(entry)));
            }
            None => {
                let mut recent = self.recent.lock().expect("log lock");
                if recent.len() >= self.capacity {
                    recent.pop_back();
                }
                recent.push_front(entry);
            }
        }
    }

    /// Newest first, filtered by app, the orgs the caller may see, and status.
    pub async fn query(
        &self,
        app: &str,
        visible_org: impl Fn(&str) -> bool,
        status: Option<AttemptStatus>,
        limit: usize,
    ) -> Result<Vec<LogEntry>, sqlx::Error> {
        let Some(durable) = &self.durable else {
            let recent = self.recent.lock().expect("log lock");
            return Ok(recent
                .iter()
                .filter(|e| e.app_id == app && visible_org(&e.org))
                .filter(|e| status.is_none_or(|s| e.status == s))
                .take(limit)
                .cloned()
                .collect());
        };
        // Read your writes: what was logged before this query is stored first.
        let (flushed, done) = oneshot::channel();
        if durable.writes.send(Write::Flush(flushed)).is_ok() {
            let _ = done.await;
        }
        // Over-read a little: entries of orgs the caller may not see are dropped below.
        let read = limit.saturating_mul(4).min(self.capacity) as i64;
        let rows = match status {
            Some(status) => {
                sqlx::query(
                    "SELECT org, entry FROM delivery_attempts WHERE app_id = $1 AND status = $2 ORDER BY id DESC LIMIT $3",
                )
                .bind(app)
                .bind(status.as_str())
                .bind(read)
                .fetch_all(&durable.db)
                .await?
            }
            None => {
                sqlx::query(
                    "SELECT org, entry FROM delivery_attempts WHERE app_id = $1 ORDER BY id DESC LIMIT $2",
                )
                .bind(app)
                .bind(read)
                .fetch_all(&durable.db)
                .await?
            }
        };
        Ok(rows
            .iter()
            .filter(|row| visible_org(&row.get::<String, _>(0)))
            .filter_map(|row| serde_json::from_str(&row.get::<String, _>(1)).ok())
            .take(limit)
            .collect())
    }
}

/// Store queued entries in one transaction per batch; trim to `capacity` now and then.
async fn write_batches(db: AnyPool, mut queued: mpsc::UnboundedReceiver<Write>, capacity: usize) {
    let mut since_trim = 0usize;
    while let Some(first) = queued.recv().await {
        let mut batch = vec![first];
        while batch.len() < 500 {
            match queued.try_recv() {
                Ok(next) => batch.push(next),
                Err(_) => break,
            }
        }
        let mut flushes = Vec::new();
        let mut entries = Vec::new();
        for write in batch {
            match write {
                Write::Entry(entry) => entries.push(entry),
                Write::Flush(done) => flushes.push(done),
            }
        }
        if !entries.is_empty() {
            if let Err(e) = insert(&db, &entries).await {
                tracing::warn!(error = %e, lost = entries.len(), "could not store delivery log entries");
            }
            since_trim += entries.len();
        }
        if since_trim >= 1000 {
            since_trim = 0;
            let trimmed = sqlx::query(
                "DELETE FROM delivery_attempts WHERE id < (SELECT id FROM delivery_attempts ORDER BY id DESC LIMIT 1 OFFSET $1)",
            )
            .bind(capacity as i64)
            .execute(&db)
            .await;
            if let Err(e) = trimmed {
                tracing::warn!(error = %e, "could not trim the delivery log");
            }
        }
        for done in flushes {
            let _ = done.send(());
        }
    }
}

async fn insert(db: &AnyPool, entries: &[Box<LogEntry>]) -> Result<(), sqlx::Error> {
    let mut tx = db.begin().await?;
    for entry in entries {
        sqlx::query(
            "INSERT INTO delivery_attempts (id, app_id, org, status, entry) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(uuid::Uuid::now_v7().to_string())
        .bind(&entry.app_id)
        .bind(&entry.org)
        .bind(entry.status.as_str())
        .bind(serde_json::to_string(entry).unwrap_or_default())
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await
}
