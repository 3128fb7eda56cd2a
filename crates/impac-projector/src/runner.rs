//! The projection runner: a durable consumer per projection version, folding
//! events into SQL in batches. Each batch commits its rows and the checkpoint
//! (the highest stream sequence applied) in one transaction, and is
//! acknowledged after the commit. Each row remembers the sequence of the event
//! it holds and takes only newer ones, so a crash or a redelivery (even out of
//! order) never counts an event twice.
//!
//! Several processes may run a version; one folds at a time, the holder of
//! its lease on the bus ([`lease_name`]); every commit checks the holder's
//! fencing token in its transaction, so a holder that lost the lease cannot
//! commit after the next one took over. The others follow the checkpoint.
//!
//! Poison events (not a record event, or a fold error) are written to
//! `impac_dead_letters` and skipped: one bad event must not stop every report.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream;
use mno_events::consume::{self, DurableSpec, ReplayFrom};
use mno_events::lease::{self, raise, Fence, LeaseError, Leases, Turn};
use sqlx::AnyPool;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::batch::LatestBatch;
use crate::records;

/// Most events folded per transaction (the consumer lets 10 000 out unacknowledged).
const BATCH: usize = 2000;

/// A running projection version.
pub struct Runner {
    stop: watch::Sender<bool>,
    handles: Vec<JoinHandle<()>>,
    pub applied: watch::Receiver<u64>,
    folding: Arc<AtomicBool>,
}

pub fn consumer_name(projection: &str, version: i64) -> String {
    format!("impac-{projection}-v{version}")
}

pub async fn checkpoint(
    pool: &AnyPool,
    projection: &str,
    version: i64,
) -> Result<u64, sqlx::Error> {
    let seq: Option<i64> = sqlx::query_scalar(
        "SELECT seq FROM impac_checkpoints WHERE projection = $1 AND version = $2",
    )
    .bind(projection)
    .bind(version)
    .fetch_optional(pool)
    .await?;
    Ok(seq.unwrap_or(0) as u64)
}

impl Runner {
    /// Keep `projection` version `version` current. With `fold`, this process
    /// folds RECORDS whenever it holds the version's lease; whenever it does
    /// not (another process folds), `applied` follows the checkpoint in SQL.
    pub async fn start(
        js: &jetstream::Context,
        pool: AnyPool,
        projection: &'static str,
        version: i64,
        fold: Option<Leases>,
    ) -> anyhow::Result<Runner> {
        lease::ensure_fence_table(&pool).await?;
        let start = checkpoint(&pool, projection, version).await?;
        let (applied_tx, applied) = watch::channel(start);
        let (stop, stopped) = watch::channel(false);
        let folding = Arc::new(AtomicBool::new(false));
        let follow_pool = pool.clone();
        let mut handles = vec![tokio::spawn(lease::follow_checkpoint(
            FOLLOW_EVERY,
            folding.clone(),
            applied_tx.clone(),
            stopped.clone(),
            async move || checkpoint(&follow_pool, projection, version).await.ok(),
        ))];
        if let Some(leases) = fold {
            let folder = Folder {
                js: js.clone(),
                pool,
                projection,
                version,
                applied_tx,
                folding: folding.clone(),
            };
            handles.push(tokio::spawn(folder.run(leases, stopped)));
        }
        Ok(Runner {
            stop,
            handles,
            applied,
            folding,
        })
    }

    /// Wait until `seq` is folded, at most `timeout`.
    pub async fn wait_for(&self, seq: u64, timeout: Duration) -> bool {
        let mut applied = self.applied.clone();
        tokio::time::timeout(timeout, applied.wait_for(|&s| s >= seq))
            .await
            .is_ok_and(|r| r.is_ok())
    }

    /// Whether this process folds the version now (holds its lease).
    pub fn folds_here(&self) -> bool {
        self.folding.load(Ordering::Relaxed)
    }

    pub async fn stop(self) {
        let _ = self.stop.send(true);
        for handle in self.handles {
            let _ = handle.await;
        }
    }
}

/// The lease of one projection version: one process at a time folds it.
pub fn lease_name(projection: &str, version: i64) -> String {
    format!("fold.{}", consumer_name(projection, version))
}

/// How often a process that does not fold reads how far the version is.
const FOLLOW_EVERY: Duration = Duration::from_millis(50);

/// Folds RECORDS into one projection version while this process holds its lease.
struct Folder {
    js: jetstream::Context,
    pool: AnyPool,
    projection: &'static str,
    version: i64,
    applied_tx: watch::Sender<u64>,
    folding: Arc<AtomicBool>,
}

impl Folder {
    async fn run(self, leases: Leases, stopped: watch::Receiver<bool>) {
        let name = lease_name(self.projection, self.version);
        let folding = self.folding.clone();
        lease::run_under_lease(leases, name, folding, stopped, &self).await;
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
    /// Take over (claim the fence, then restart the consumer after the
    /// checkpoint, which no older holder can move any more) and fold.
    async fn fold_while_held(
        &self,
        fence: &Fence,
        kept: &mut lease::Kept,
        stopped: &mut watch::Receiver<bool>,
    ) -> Turn {
        let projection = self.projection;
        let what = format!("projection {projection}");
        let taken =
            lease::take_over_while_held(&what, fence, kept, stopped, || self.take_over(fence))
                .await;
        let mut batches = match taken {
            Ok(batches) => batches,
            Err(turn) => return turn,
        };
        let name = consumer_name(projection, self.version);
        loop {
            let next = tokio::select! {
                next = batches.next(BATCH, Duration::from_millis(500)) => next,
                _ = kept.lost(fence.token) => return Turn::LeaseLost,
                _ = stopped.changed() => return Turn::Stopped,
            };
            let messages = match next {
                Ok(Some(messages)) => messages,
                Ok(None) => {
                    // Idle: if nothing is pending, everything in the stream that concerns
                    // us is folded, so the projection is current up to the stream's end.
                    // The checkpoint says so too, for the processes that do not fold.
                    if let Some(end) = caught_up_to(&self.js, &name).await {
                        if end > *self.applied_tx.borrow() {
                            let mut batch = LatestBatch::default();
                            batch.last_seq = end;
                            match batch
                                .commit(&self.pool, projection, self.version, Some(fence))
                                .await
                            {
                                Ok(()) => raise(&self.applied_tx, end),
                                Err(LeaseError::Fenced(_)) => return Turn::LeaseLost,
                                Err(e) => {
                                    tracing::debug!(error = %e, projection, "checkpoint not moved to the stream's end")
                                }
                            }
                        }
                    }
                    continue;
                }
                Err(e) => {
                    tracing::warn!(error = %e, projection, "read failed; taking over the consumer again");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    return Turn::Retake;
                }
            };
            // A failed batch is retried as it is, for as long as the lease is
            // held, so that batches commit in order.
            let mut attempt = 0u64;
            let seq = loop {
                match apply_batch(&self.pool, projection, self.version, &messages, fence).await {
                    Ok(seq) => break seq,
                    Err(e) if lease::is_fenced(&e) => return Turn::LeaseLost,
                    Err(e) => {
                        attempt += 1;
                        tracing::warn!(error = %e, projection, attempt, "a batch failed; retrying it");
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
            raise(&self.applied_tx, seq);
        }
    }

    async fn take_over(&self, fence: &Fence) -> anyhow::Result<consume::Batches> {
        lease::claim_fence(&self.pool, fence).await?;
        let start = checkpoint(&self.pool, self.projection, self.version).await?;
        raise(&self.applied_tx, start);
        let consumer = consume::recreate_durable(
            &self.js,
            mno_events::streams::RECORDS,
            &DurableSpec {
                description: Some(format!(
                    "Impac! projection {} v{}",
                    self.projection, self.version
                )),
                start: ReplayFrom::Sequence(start + 1),
                ..DurableSpec::new(
                    consumer_name(self.projection, self.version),
                    records::filters(),
                )
            },
        )
        .await?;
        tracing::info!(
            projection = self.projection,
            version = self.version,
            from = start + 1,
            token = fence.token,
            "folding"
        );
        Ok(consume::Batches::open(&consumer, BATCH).await?)
    }
}

/// The stream's last sequence, when this consumer has nothing pending or unacknowledged.
async fn caught_up_to(js: &jetstream::Context, consumer: &str) -> Option<u64> {
    let mut stream = js.get_stream(mno_events::streams::RECORDS).await.ok()?;
    // Read the end first: anything published after it is not claimed.
    let end = stream.info().await.ok()?.state.last_sequence;
    let info = stream.consumer_info(consumer).await.ok()?;
    (info.num_pending == 0 && info.num_ack_pending == 0).then_some(end)
}

async fn apply_batch(
    pool: &AnyPool,
    projection: &str,
    version: i64,
    messages: &[jetstream::Message],
    fence: &Fence,
) -> anyhow::Result<u64> {
    // No skipping by checkpoint: a delivery can come back out of order. Each
    // row keeps the sequence of the event it holds and takes only newer ones,
    // so applying an event twice changes nothing.
    let mut batch = LatestBatch::default();
    for message in messages {
        let seq = message
            .info()
            .map_err(|e| anyhow::anyhow!("{e}"))?
            .stream_sequence;
        batch.add(seq, &message.payload);
    }
    batch.commit(pool, projection, version, Some(fence)).await?;
    Ok(batch.last_seq)
}
