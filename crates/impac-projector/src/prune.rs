//! Removing what rebuilds left behind: every version of the records
//! projection below the one readers use, with its rows, checkpoint, dead
//! letters and durable consumer. Versions above it (a rebuild under way) are
//! left alone.
//!
//! A running `mno up` stops following a version within a second of readers
//! switching away from it, so pruning right after `mno impac rebuild` is safe.

use serde::Serialize;

use crate::{active_version, records, runner};

#[derive(Debug, Serialize)]
pub struct Pruned {
    pub projection: &'static str,
    /// The version readers use, kept.
    pub active_version: i64,
    /// The versions removed.
    pub versions: Vec<i64>,
    /// Their rows deleted.
    pub rows: u64,
}

pub async fn prune_old_versions(
    js: &async_nats::jetstream::Context,
    db: &sqlx::AnyPool,
) -> anyhow::Result<Pruned> {
    let active = active_version(db).await?.unwrap_or(records::VERSION);
    let mut versions: Vec<i64> = sqlx::query_scalar(
        "SELECT version FROM impac_checkpoints WHERE projection = $1 AND version < $2
         UNION SELECT DISTINCT version FROM impac_records WHERE version < $2",
    )
    .bind(records::PROJECTION)
    .bind(active)
    .fetch_all(db)
    .await?;
    versions.sort_unstable();
    // The consumers first: nothing folds into an old version once its rows go.
    let stream = js
        .get_stream_no_info(mno_events::streams::RECORDS)
        .await
        .map_err(|e| anyhow::anyhow!("the bus did not answer ({e}); retry when it is up"))?;
    for version in &versions {
        let name = runner::consumer_name(records::PROJECTION, *version);
        if let Err(e) = stream.delete_consumer(&name).await {
            tracing::debug!(consumer = %name, error = %e, "no consumer to delete");
        }
    }
    let mut tx = db.begin().await?;
    let rows = sqlx::query("DELETE FROM impac_records WHERE version < $1")
        .bind(active)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    for table in ["impac_checkpoints", "impac_dead_letters"] {
        sqlx::query(&format!(
            "DELETE FROM {table} WHERE projection = $1 AND version < $2"
        ))
        .bind(records::PROJECTION)
        .bind(active)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(Pruned {
        projection: records::PROJECTION,
        active_version: active,
        versions,
        rows,
    })
}
