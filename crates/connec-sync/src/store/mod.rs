//! The record store: current state of every record in SQL, for list and
//! filter queries. A projection of stream RECORDS, kept by one durable
//! consumer; each batch of rows is committed in one transaction with the
//! checkpoint (the last stream sequence applied), and acknowledged after the
//! commit, so a crash or a redelivery never applies an event twice or skips
//! one. It catches up from its checkpoint at start and can be rebuilt from
//! sequence 1 by dropping its rows and its consumer.
//!
//! Several processes may run the store; one folds at a time, the holder of
//! the lease [`LEASE`] on the bus. Each commit checks the holder's fencing
//! token in its transaction, so a holder that lost the lease (paused, cut off)
//! cannot commit after the next one took over. The others read the
//! checkpoint from SQL to know how far the store is.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream;
use mno_events::consume::{self, DurableSpec, ReplayFrom};
use mno_events::db;
use mno_events::lease::{self, raise, Fence, Leases, Turn};
use mno_events::proto::{Op, RecordEvent};
use sqlx::AnyPool;
use tokio::sync::watch;
use tokio::task::JoinHandle;

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
    stop: watch::Sender<bool>,
    handles: Vec<JoinHandle<()>>,
}

impl StoreTask {
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        for handle in self.handles {
            let _ = handle.await;
        }
    }
}

/// The store's lease on the bus: one process at a time folds RECORDS into it.
pub const LEASE: &str = "fold.connec-record-store";

/// How often a process that does not fold reads how far the store is.
const FOLLOW_EVERY: Duration = Duration::from_millis(50);

/// Folds RECORDS into the store while this process holds [`LEASE`].
struct Folder {
    js: jetstream::Context,
    pool: AnyPool,
    applied_tx: watch::Sender<u64>,
    folding_here: Arc<AtomicBool>,
}

impl Folder {
    async fn run(self, leases: Leases, stopped: watch::Receiver<bool>) {
        let folding = self.folding_here.clone();
        lease::run_under_lease(leases, LEASE.to_owned(), folding, stopped, &self).await;
    }
}

impl lease::TurnWork for Folder {
    fn turn<'a>(
        &'a self,
        fence: &'a Fence,
        kept: &'a mut lease::Kept,
        stopped: &'a mut watch::Receiver<bool>,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Turn> + Send + 'a>> {
        Box::pin(self.fold_while_held(fence, kept, stopped))
    }
}

impl Folder {
    /// Take over (claim the fence, then restart the consumer from the
    /// checkpoint that no older holder can move any more) and fold.
    async fn fold_while_held(
        &self,
        fence: &Fence,
        kept: &mut lease::Kept,
        stopped: &mut watch::Receiver<bool>,
    ) -> Turn {
        let consumer = lease::take_over_while_held("record store", fence, kept, stopped, || {
            self.take_over(fence)
        })
        .await;
        let (mut batches, checkpoint) = match consumer {
            Ok(consumer) => consumer,
            Err(turn) => return turn,
        };
        tracing::info!(
            from = checkpoint + 1,
            token = fence.token,
            "record store: folding"
        );
        raise(&self.applied_tx, checkpoint);
        // Every RECORDS sequence is ours (the filter is rec.>, deletes are denied), so
        // "applied up to N" advances only when every sequence up to N is committed.
        let mut floor = checkpoint;
        let mut above = std::collections::BTreeSet::new();
        loop {
            let next = tokio::select! {
                next = batches.next(BATCH, Duration::from_millis(500)) => next,
                _ = kept.lost(fence.token) => return Turn::LeaseLost,
                _ = stopped.changed() => return Turn::Stopped,
            };
            let messages = match next {
                Ok(Some(messages)) => messages,
                Ok(None) => continue,
                Err(e) => {
                    tracing::warn!(error = %e, "record store: read failed; taking over the consumer again");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    return Turn::Retake;
                }
            };
            // A failed batch is retried as it is, for as long as the lease is
            // held, so that batches commit in order and the checkpoint is a floor.
            let mut attempt = 0u64;
            let seqs = loop {
                match apply(&self.pool, &messages, fence).await {
                    Ok(seqs) => break seqs,
                    Err(e) if lease::is_fenced(&e) => return Turn::LeaseLost,
                    Err(e) => {
                        attempt += 1;
                        tracing::warn!(error = %e, attempt, "record store: a batch failed; retrying it");
                        tokio::select! {
                            _ = tokio::time::sleep(Duration::from_millis(100 * attempt.min(10))) => {}
                            _ = kept.lost(fence.token) => return Turn::LeaseLost,
                            _ = stopped.changed() => return Turn::Stopped,
                        }
                    }
                }
            };
            for message in &messages {
                let _ = message.ack().await;
            }
            above.extend(seqs.into_iter().filter(|s| *s > floor));
            while above.remove(&(floor + 1)) {
                floor += 1;
            }
            raise(&self.applied_tx, floor);
        }
    }

    async fn take_over(&self, fence: &Fence) -> anyhow::Result<(consume::Batches, u64)> {
        lease::claim_fence(&self.pool, fence).await?;
        let checkpoint = checkpoint(&self.pool).await?;
        let consumer = consume::recreate_durable(
            &self.js,
            mno_events::streams::RECORDS,
            &DurableSpec {
                description: Some("Connec! record store (list and filter queries)".into()),
                start: ReplayFrom::Sequence(checkpoint + 1),
                ..DurableSpec::new(CONSUMER, vec!["rec.>".into()])
            },
        )
        .await?;
        Ok((consume::Batches::open(&consumer, BATCH).await?, checkpoint))
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
        let checkpoint = checkpoint(&pool).await?;
        let (applied_tx, applied) = watch::channel(checkpoint);
        let (stop, stopped) = watch::channel(false);
        let folding_here = Arc::new(AtomicBool::new(false));
        let follow_pool = pool.clone();
        let mut handles = vec![tokio::spawn(lease::follow_checkpoint(
            FOLLOW_EVERY,
            folding_here.clone(),
            applied_tx.clone(),
            stopped.clone(),
            async move || self::checkpoint(&follow_pool).await.ok(),
        ))];
        if let Some(leases) = fold {
            let folder = Folder {
                js: js.clone(),
                pool: pool.clone(),
                applied_tx,
                folding_here,
            };
            handles.push(tokio::spawn(folder.run(leases, stopped)));
        }
        Ok((
            RecordStore {
                pool,
                dialect,
                applied,
            },
            StoreTask { stop, handles },
        ))
    }

    /// The last stream sequence the store has applied.
    pub fn applied(&self) -> u64 {
        *self.applied.borrow()
    }

    /// Wait until the store has applied `seq`, at most `timeout`; whether it did.
    pub async fn wait_for(&self, seq: u64, timeout: Duration) -> bool {
        let mut applied = self.applied.clone();
        tokio::time::timeout(timeout, applied.wait_for(|&s| s >= seq))
            .await
            .is_ok_and(|r| r.is_ok())
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

/// Apply one batch in one transaction with the checkpoint; the sequences applied.
///
/// No skipping by checkpoint: a delivery can come back out of order. Each row
/// keeps the sequence of the event it holds and takes only newer ones, so
/// applying an event twice changes nothing. A record changed several times in
/// one batch is written once, with its last event (each event carries the
/// whole state).
async fn apply(
    pool: &AnyPool,
    messages: &[jetstream::Message],
    fence: &Fence,
) -> anyhow::Result<Vec<u64>> {
    let mut seqs = Vec::with_capacity(messages.len());
    let mut events = Vec::with_capacity(messages.len());
    for message in messages {
        let seq = message
            .info()
            .map_err(|e| anyhow::anyhow!("{e}"))?
            .stream_sequence;
        match RecordEvent::from_bytes(&message.payload) {
            Ok(event) => events.push((seq, event)),
            Err(e) => {
                tracing::warn!(seq, error = %e, "record store: skipping a message that is not a record event")
            }
        }
        seqs.push(seq);
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
    let highest = seqs.iter().copied().max().unwrap_or(0);
    sqlx::query(&db::positional(
        "INSERT INTO connec_checkpoints (name, seq) VALUES ($1, $2)
         ON CONFLICT (name) DO UPDATE SET seq = excluded.seq WHERE connec_checkpoints.seq < excluded.seq",
        sqlite,
    ))
    .bind(CONSUMER)
    .bind(highest as i64)
    .execute(&mut *tx)
    .await?;
    // Last, so that the fence row is locked for the shortest time.
    lease::check_fence(&mut tx, fence, sqlite).await?;
    tx.commit().await?;
    Ok(seqs)
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
