//! The projection runner: a durable consumer per projection version, folding
//! events into SQL in batches. Each batch commits its rows and the checkpoint
//! (the highest stream sequence applied) in one transaction, and is
//! acknowledged after the commit. Each row remembers the sequence of the event
//! it holds and takes only newer ones, so a crash or a redelivery (even out of
//! order) never counts an event twice.
//!
//! Poison events (not a record event, or a fold error) are written to
//! `impac_dead_letters` and skipped: one bad event must not stop every report.

use std::time::Duration;

use async_nats::jetstream;
use mno_events::consume::{self, DurableSpec, ReplayFrom};
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
    handle: JoinHandle<()>,
    pub applied: watch::Receiver<u64>,
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
    /// Follow RECORDS for `projection` version `version` from its checkpoint.
    pub async fn start(
        js: &jetstream::Context,
        pool: AnyPool,
        projection: &'static str,
        version: i64,
    ) -> anyhow::Result<Runner> {
        let start = checkpoint(&pool, projection, version).await?;
        let (applied_tx, applied) = watch::channel(start);
        // A new consumer starts after the checkpoint (a rebuild may have folded
        // up to there already); an existing one keeps its own position.
        let consumer = consume::durable_pull(
            js,
            mno_events::streams::RECORDS,
            &DurableSpec {
                description: Some(format!("Impac! projection {projection} v{version}")),
                start: ReplayFrom::Sequence(start + 1),
                ..DurableSpec::new(consumer_name(projection, version), records::filters())
            },
        )
        .await?;
        let (stop, mut stopped) = watch::channel(false);
        let js = js.clone();
        let name = consumer_name(projection, version);
        let handle = tokio::spawn(async move {
            let mut batches = match consume::Batches::open(&consumer, BATCH).await {
                Ok(b) => b,
                Err(e) => {
                    tracing::error!(error = %e, projection, "cannot read the projection's consumer");
                    return;
                }
            };
            loop {
                let next = tokio::select! {
                    next = batches.next(BATCH, Duration::from_millis(500)) => next,
                    _ = stopped.changed() => break,
                };
                let messages = match next {
                    Ok(Some(messages)) => messages,
                    Ok(None) => {
                        // Idle: if nothing is pending, everything in the stream that concerns
                        // us is folded, so the projection is current up to the stream's end.
                        if let Some(end) = caught_up_to(&js, &name).await {
                            applied_tx.send_if_modified(|seq| {
                                let moved = end > *seq;
                                *seq = (*seq).max(end);
                                moved
                            });
                        }
                        continue;
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, projection, "read failed; retrying");
                        tokio::time::sleep(Duration::from_millis(500)).await;
                        continue;
                    }
                };
                // A failed batch is retried as it is, so that batches commit in order.
                let mut attempt = 0;
                let seq = loop {
                    match apply_batch(&pool, projection, version, &messages).await {
                        Ok(seq) => break Some(seq),
                        Err(e) if attempt < 50 => {
                            attempt += 1;
                            tracing::warn!(error = %e, projection, attempt, "a batch failed; retrying it");
                            tokio::time::sleep(Duration::from_millis(100 * attempt.min(10))).await;
                        }
                        Err(e) => {
                            tracing::error!(error = %e, projection, "a batch keeps failing; it will be redelivered");
                            break None;
                        }
                    }
                };
                let Some(seq) = seq else { continue };
                for message in &messages {
                    let _ = message.ack().await;
                }
                applied_tx.send_if_modified(|applied| {
                    let moved = seq > *applied;
                    *applied = (*applied).max(seq);
                    moved
                });
            }
        });
        Ok(Runner {
            stop,
            handle,
            applied,
        })
    }

    /// Wait until `seq` is folded, at most `timeout`.
    pub async fn wait_for(&self, seq: u64, timeout: Duration) -> bool {
        let mut applied = self.applied.clone();
        tokio::time::timeout(timeout, applied.wait_for(|&s| s >= seq))
            .await
            .is_ok_and(|r| r.is_ok())
    }

    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.handle.await;
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
    batch.commit(pool, projection, version).await?;
    Ok(batch.last_seq)
}
