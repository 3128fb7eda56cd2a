//! The record store: current state of every record in SQL, for list and
//! filter queries. A projection of stream RECORDS, run by
//! [`mno_events::projection`]: each batch of rows is committed in one
//! transaction with the checkpoint (the last stream sequence applied), and
//! acknowledged after the commit, so a crash or a redelivery never applies an
//! event twice or skips one. It catches up from its checkpoint at start and
//! can be rebuilt from sequence 1 by dropping its rows and its consumer.
//!
//! Several processes may run the store; one folds at a time, the holder of
//! the lease [`LEASE`] on the bus. Each commit checks the holder's fencing
//! token in its transaction, so a holder that lost the lease (paused, cut off)
//! cannot commit after the next one took over. The others read the
//! checkpoint from SQL to know how far the store is.

use std::borrow::Cow;
use std::collections::HashMap;
use std::time::Duration;

use async_nats::jetstream;
use mno_events::consume::DurableSpec;
use mno_events::db;
use mno_events::lease::{self, Fence, Leases};
use mno_events::projection::{self, Coverage, Event, Projection, Runner};
use mno_events::proto::{Op, RecordEvent};
use sqlx::AnyPool;
use tokio::sync::watch;

pub const CONSUMER: &str = "connec-record-store";
const BATCH: usize = 500;

/// Which SQL the store speaks: JSON access differs between SQLite and PostgreSQL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

#[derive(Clone)]
pub struct RecordStore {
    pub pool: AnyPool,
    pub dialect: Dialect,
    applied: watch::Receiver<u64>,
}

/// The task that keeps the store current; stop it with [`StoreTask::stop`].
pub struct StoreTask {
    runner: Runner,
}

impl StoreTask {
    pub async fn stop(self) {
        self.runner.stop().await;
    }
}

/// The store's lease on the bus: one process at a time folds RECORDS into it.
pub const LEASE: &str = "fold.connec-record-store";

/// How the store is run: every RECORDS sequence is its (the filter is
/// `rec.>`, deletes are denied), so "applied" counts only gap-free runs.
fn spec() -> projection::Spec {
    projection::Spec {
        what: "record store".into(),
        lease: LEASE.into(),
        stream: mno_events::streams::RECORDS.into(),
        consumer: DurableSpec {
            description: Some("Connec! record store (list and filter queries)".into()),
            ..DurableSpec::new(CONSUMER, vec!["rec.>".into()])
        },
        batch: BATCH,
        coverage: Coverage::EverySequence,
    }
}

/// The store's rows, as the projection runner folds into them.
struct StoreRows {
    pool: AnyPool,
}

impl Projection for StoreRows {
    async fn checkpoint(&self) -> anyhow::Result<u64> {
        Ok(checkpoint(&self.pool).await?)
    }

    async fn claim(&self, fence: &Fence) -> anyhow::Result<()> {
        Ok(lease::claim_fence(&self.pool, fence).await?)
    }

    async fn apply(&self, events: &[Event], through: u64, fence: &Fence) -> anyhow::Result<()> {
        apply(&self.pool, events, through, fence).await
    }
}

impl RecordStore {
    /// Run the migrations, then keep the store current: with `fold`, this
    /// process folds RECORDS whenever it holds the store's lease; whenever it
    /// does not (another process folds), it follows the checkpoint in SQL.
    pub async fn start(
        js: &jetstream::Context,
        pool: AnyPool,
        fold: Option<Leases>,
    ) -> anyhow::Result<(RecordStore, StoreTask)> {
        let mut migrator = sqlx::migrate!("./migrations");
        // Other parts' migrations share the table; they are not ours to check.
        migrator.set_ignore_missing(true);
        migrator
            .run(&pool)
            .await
            .map_err(|e| anyhow::anyhow!("Connec! record store migrations failed: {e}"))?;
        lease::ensure_fence_table(&pool).await?;
        let dialect = {
            let conn = pool.acquire().await?;
            if conn
                .backend_name()
                .to_ascii_lowercase()
                .contains("postgres")
            {
                Dialect::Postgres
            } else {
                Dialect::Sqlite
            }
        };
        let rows = StoreRows { pool: pool.clone() };
        let runner = Runner::start(js, spec(), rows, fold).await?;
        Ok((
            RecordStore {
                pool,
                dialect,
                applied: runner.applied.clone(),
            },
            StoreTask { runner },
        ))
    }

    /// The last stream sequence the store has applied.
    pub fn applied(&self) -> u64 {
        *self.applied.borrow()
    }

    /// Wait until the store has applied `seq`, at most `timeout`; whether it did.
    pub async fn wait_for(&self, seq: u64, timeout: Duration) -> bool {
        projection::wait_until_applied(&self.applied, seq, timeout).await
    }
}

async fn checkpoint(pool: &AnyPool) -> Result<u64, sqlx::Error> {
    let seq: Option<i64> = sqlx::query_scalar("SELECT seq FROM connec_checkpoints WHERE name = $1")
        .bind(CONSUMER)
        .fetch_optional(pool)
        .await?;
    Ok(seq.unwrap_or(0) as u64)
}

/// Most rows per upsert statement (9 parameters each; well under SQLite's and
/// PostgreSQL's limits); a power of two, see [`db::power_of_two_chunks`].
const ROWS_PER_STATEMENT: usize = 64;

/// Apply one batch in one transaction with the checkpoint (`through`).
///
/// No skipping by checkpoint: a delivery can come back out of order. Each row
/// keeps the sequence of the event it holds and takes only newer ones, so
/// applying an event twice changes nothing. A record changed several times in
/// one batch is written once, with its last event (each event carries the
/// whole state).
async fn apply(pool: &AnyPool, batch: &[Event], through: u64, fence: &Fence) -> anyhow::Result<()> {
    let mut events = Vec::with_capacity(batch.len());
    for Event { seq, payload } in batch {
        match RecordEvent::from_bytes(payload) {
            Ok(event) => events.push((*seq, event)),
            Err(e) => {
                tracing::warn!(seq, error = %e, "record store: skipping a message that is not a record event")
            }
        }
    }
    let mut last: HashMap<(&str, &str, &str), &(u64, RecordEvent)> =
        HashMap::with_capacity(events.len());
    for entry in &events {
        let (seq, event) = entry;
        let key = (
            event.org.as_str(),
            event.entity.as_str(),
            event.record_id.as_str(),
        );
        let newer = last.get(&key).is_none_or(|(held, _)| held < seq);
        if newer {
            last.insert(key, entry);
        }
    }
    let rows: Vec<&(u64, RecordEvent)> = last.into_values().collect();

    let sqlite = db::is_sqlite(pool);
    let mut tx = pool.begin().await?;
    for chunk in db::power_of_two_chunks(&rows, ROWS_PER_STATEMENT) {
        upsert_rows(&mut tx, chunk, sqlite).await?;
    }
    sqlx::query(&db::positional(
        "INSERT INTO connec_checkpoints (name, seq) VALUES ($1, $2)
         ON CONFLICT (name) DO UPDATE SET seq = excluded.seq WHERE connec_checkpoints.seq < excluded.seq",
        sqlite,
    ))
    .bind(CONSUMER)
    .bind(through as i64)
    .execute(&mut *tx)
    .await?;
    // Last, so that the fence row is locked for the shortest time.
    lease::check_fence(&mut tx, fence, sqlite).await?;
    tx.commit().await?;
    Ok(())
}

/// The two times the store keeps in columns, read without parsing the rest of the state.
#[derive(Default, serde::Deserialize)]
struct Times<'a> {
    #[serde(borrow, default)]
    created_at: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    updated_at: Option<Cow<'a, str>>,
}

/// One multi-row upsert of records' last events.
async fn upsert_rows(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    rows: &[&(u64, RecordEvent)],
    sqlite: bool,
) -> anyhow::Result<()> {
    let sql = format!(
        "INSERT INTO connec_records (org, entity, id, version, seq, state, created_at, updated_at, deleted)
         VALUES {}
         ON CONFLICT (org, entity, id) DO UPDATE SET
           version = excluded.version, seq = excluded.seq, state = excluded.state,
           updated_at = excluded.updated_at, deleted = excluded.deleted
         WHERE connec_records.seq < excluded.seq",
        db::row_placeholders(rows.len(), 9, sqlite)
    );
    let mut query = sqlx::query(&sql);
    for (seq, event) in rows.iter().copied() {
        let times: Times = serde_json::from_slice(&event.state).unwrap_or_default();
        let deleted = i32::from(event.op_kind() == Op::Deleted);
        query = query
            .bind(event.org.as_str())
            .bind(event.entity.as_str())
            .bind(event.record_id.as_str())
            .bind(event.version as i64)
            .bind(*seq as i64)
            .bind(String::from_utf8_lossy(&event.state).into_owned())
            .bind(times.created_at.unwrap_or_default().into_owned())
            .bind(times.updated_at.unwrap_or_default().into_owned())
            .bind(deleted);
    }
    query.execute(&mut **tx).await?;
    Ok(())
}
