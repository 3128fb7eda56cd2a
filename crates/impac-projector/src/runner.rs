//! How each version of the records projection is run: by
//! [`mno_events::projection`], one durable consumer per version, folding
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

use async_nats::jetstream;
use mno_events::consume::DurableSpec;
use mno_events::lease::{self, Fence, Leases};
use mno_events::projection::{self, Coverage, Event, Projection};
use sqlx::AnyPool;

pub use mno_events::projection::Runner;

use crate::batch::LatestBatch;
use crate::records;

/// Most events folded per transaction (the consumer lets 10 000 out unacknowledged).
const BATCH: usize = 2000;

pub fn consumer_name(projection: &str, version: i64) -> String {
    format!("impac-{projection}-v{version}")
}

/// The lease of one projection version: one process at a time folds it.
pub fn lease_name(projection: &str, version: i64) -> String {
    format!("fold.{}", consumer_name(projection, version))
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
    let spec = projection::Spec {
        what: format!("projection {projection} v{version}"),
        lease: lease_name(projection, version),
        stream: mno_events::streams::RECORDS.into(),
        consumer: DurableSpec {
            description: Some(format!("Impac! projection {projection} v{version}")),
            ..DurableSpec::new(consumer_name(projection, version), records::filters())
        },
        batch: BATCH,
        // The filters take the collections reports read, not the whole stream.
        coverage: Coverage::Part,
    };
    let rows = VersionRows {
        pool,
        projection,
        version,
    };
    Runner::start(js, spec, rows, fold).await
}

/// One projection version's rows, as the projection runner folds into them.
struct VersionRows {
    pool: AnyPool,
    projection: &'static str,
    version: i64,
}

impl Projection for VersionRows {
    async fn checkpoint(&self) -> anyhow::Result<u64> {
        Ok(checkpoint(&self.pool, self.projection, self.version).await?)
    }

    async fn claim(&self, fence: &Fence) -> anyhow::Result<()> {
        Ok(lease::claim_fence(&self.pool, fence).await?)
    }

    async fn apply(&self, events: &[Event], through: u64, fence: &Fence) -> anyhow::Result<()> {
        // No skipping by checkpoint: a delivery can come back out of order. Each
        // row keeps the sequence of the event it holds and takes only newer ones,
        // so applying an event twice changes nothing.
        let mut batch = LatestBatch::default();
        for event in events {
            batch.add(event.seq, &event.payload);
        }
        batch.last_seq = batch.last_seq.max(through);
        batch
            .commit(&self.pool, self.projection, self.version, Some(fence))
            .await?;
        Ok(())
    }
}
