//! Catching a projection version up from far behind (a rebuild from
//! sequence 1): read the stream with an ordered consumer (no acks), fold big
//! batches in memory keeping the last state per record, and commit each
//! batch with its checkpoint while the next one is read. Afterwards the
//! version's durable runner starts after the checkpoint and keeps it current.

use std::time::{Duration, Instant};

use async_nats::jetstream;
use futures::StreamExt;
use sqlx::AnyPool;
use tokio::task::JoinHandle;

use crate::batch::LatestBatch;
use crate::{records, runner};

/// Events folded per transaction while catching up.
pub const EVENTS_PER_BATCH: usize = 250_000;

/// How far a catch-up got.
#[derive(Debug, Clone, Copy)]
pub struct Progress {
    /// Events folded (of the collections the projection reads).
    pub events: u64,
    /// Of how many there were to fold when it started.
    pub total: u64,
    /// The checkpoint committed.
    pub seq: u64,
    pub target: u64,
    pub elapsed: Duration,
}

impl Progress {
    pub fn events_per_second(&self) -> f64 {
        self.events as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

impl std::fmt::Display for Progress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "folded {} / {} events ({:.0} events/s), sequence {} / {}",
            self.events,
            self.total,
            self.events_per_second(),
            self.seq,
            self.target
        )
    }
}

/// Fold the records projection `version` from its checkpoint up to stream
/// sequence `target`, calling `progress` after each committed batch.
pub async fn catch_up(
    js: &jetstream::Context,
    pool: &AnyPool,
    version: i64,
    target: u64,
    mut progress: impl FnMut(&Progress),
) -> anyhow::Result<Progress> {
    let started = Instant::now();
    let from = runner::checkpoint(pool, records::PROJECTION, version).await? + 1;
    let mut state = Progress {
        events: 0,
        total: 0,
        seq: from - 1,
        target,
        elapsed: Duration::ZERO,
    };
    if from > target {
        return Ok(state);
    }
    let (total, mut messages) = mno_events::consume::replay_ordered_counted(
        js,
        mno_events::streams::RECORDS,
        &records::filters(),
        mno_events::consume::ReplayFrom::Sequence(from),
    )
    .await?;
    state.total = total;
    let mut batch = LatestBatch::default();
    let mut committing: Option<JoinHandle<Result<LatestBatch, mno_events::lease::LeaseError>>> =
        None;
    let mut finished = state.total == 0;
    while !finished {
        let message = messages
            .next()
            .await
            .ok_or_else(|| anyhow::anyhow!("the replay of RECORDS ended early"))??;
        let info = message.info().map_err(|e| anyhow::anyhow!("{e}"))?;
        let seq = info.stream_sequence;
        if seq > target {
            break;
        }
        batch.add(seq, &message.payload);
        // Nothing more matches now, or the target is reached: this is the last batch.
        finished = info.pending == 0 || seq >= target;
        if batch.events as usize >= EVENTS_PER_BATCH || finished {
            if finished {
                // Sequences up to the target that are not ours are folded trivially.
                batch.last_seq = target;
            }
            // Commits stay in order: wait for the previous one before starting this one.
            if let Some(previous) = committing.take() {
                report(previous.await??, &mut state, started, &mut progress);
            }
            let full = std::mem::take(&mut batch);
            let pool = pool.clone();
            committing = Some(tokio::spawn(async move {
                full.commit(&pool, records::PROJECTION, version, None)
                    .await?;
                Ok(full)
            }));
        }
    }
    if let Some(previous) = committing.take() {
        report(previous.await??, &mut state, started, &mut progress);
    }
    if state.seq < target {
        // Stopped on an event past the target, or nothing of ours in the stream:
        // everything up to the target is folded.
        batch.last_seq = target;
        batch
            .commit(pool, records::PROJECTION, version, None)
            .await?;
        report(batch, &mut state, started, &mut progress);
    }
    Ok(state)
}

fn report(
    committed: LatestBatch,
    state: &mut Progress,
    started: Instant,
    progress: &mut impl FnMut(&Progress),
) {
    state.events += committed.events;
    state.seq = state.seq.max(committed.last_seq);
    state.elapsed = started.elapsed();
    progress(state);
}
