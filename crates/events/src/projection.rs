//! The checkpointed projection runner: one durable consumer folding a stream
//! into a store, batch by batch, for every projection (Connec!'s record
//! store, each version of Impac!'s records projection, the next ones).
//!
//! A projection says how to read its checkpoint, claim a lease's fence and
//! apply one batch ([`Projection`]); the runner does the rest, the same way
//! for all of them:
//! - one process at a time folds, the holder of the projection's lease
//!   ([`crate::lease`]); at each take-over it claims the fence, then recreates
//!   the consumer from the checkpoint, which no older holder can move any more;
//! - each batch is applied with the checkpoint in one transaction that checks
//!   the fence, and acknowledged after the commit, so a crash or a redelivery
//!   never skips an event;
//! - a failed batch is retried as it is, with a growing pause, for as long as
//!   the lease is held, so that batches commit in order;
//! - "applied", the last sequence a reader may count on (read-your-writes
//!   waits on it), is watched; processes that do not fold follow the
//!   checkpoint instead;
//! - stopping ends the fold at once (a batch in flight is simply not acked:
//!   the next holder folds it again) and releases the lease.

use std::collections::BTreeSet;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream;
use bytes::Bytes;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::consume::{self, DurableSpec, ReplayFrom};
use crate::lease::{self, Fence, Kept, Leases, Turn};

/// One event of the stream, as a projection folds it.
#[derive(Debug, Clone)]
pub struct Event {
    /// Its stream sequence.
    pub seq: u64,
    pub payload: Bytes,
}

/// What a projection provides to be run; the runner owns everything else.
///
/// `apply` must be idempotent per event: a delivery can come again (a crash
/// between commit and ack) or out of order, so what it writes keeps the
/// sequence it holds and takes only newer ones.
pub trait Projection: Send + Sync + 'static {
    /// The last stream sequence committed (0 before the first batch).
    fn checkpoint(&self) -> impl Future<Output = anyhow::Result<u64>> + Send;

    /// Record in the projection's store that `fence`'s holder took over
    /// ([`lease::claim_fence`]): from now on an older holder's commit fails.
    fn claim(&self, fence: &Fence) -> impl Future<Output = anyhow::Result<()>> + Send;

    /// Fold `events` and move the checkpoint up to `through`, in one
    /// transaction that checks `fence` ([`lease::check_fence`]); a fenced
    /// commit returns that error and writes nothing. `events` is empty when
    /// only the checkpoint moves (see [`Coverage::Part`]).
    fn apply(
        &self,
        events: &[Event],
        through: u64,
        fence: &Fence,
    ) -> impl Future<Output = anyhow::Result<()>> + Send;
}

/// Which sequences of the stream come to the projection's consumer: this
/// decides how far "applied" may move.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Coverage {
    /// Every sequence (the filters cover the whole stream): "applied" moves
    /// only over gap-free runs of committed sequences, so a batch redelivered
    /// late never lets a reader count on one still missing.
    EverySequence,
    /// Some subjects only: "applied" is the highest sequence committed and,
    /// once nothing is pending, the stream's end (committed as the checkpoint
    /// too, for the processes that do not fold).
    Part,
}

/// How a projection is run.
#[derive(Debug, Clone)]
pub struct Spec {
    /// What logs call it ("record store").
    pub what: String,
    /// The lease one process at a time folds under.
    pub lease: String,
    /// The stream folded.
    pub stream: String,
    /// Its durable consumer; `start` is set from the checkpoint at each take-over.
    pub consumer: DurableSpec,
    /// Most events per batch (per transaction).
    pub batch: usize,
    pub coverage: Coverage,
}

/// How long a fold waits for a first event before it counts as idle.
const IDLE: Duration = Duration::from_millis(500);
/// How often a process that does not fold reads how far the projection is.
const FOLLOW_EVERY: Duration = Duration::from_millis(50);
/// The pause after a read failed, before the consumer is taken over again.
const REREAD_AFTER: Duration = Duration::from_millis(500);
/// How often a take-over that failed (the bus or the database not answering) is tried again.
const RETAKE_EVERY: Duration = Duration::from_millis(500);

/// A running projection; stop it with [`Runner::stop`].
pub struct Runner {
    /// The last sequence applied (see [`Coverage`]).
    pub applied: watch::Receiver<u64>,
    folding: Arc<AtomicBool>,
    stop: watch::Sender<bool>,
    handles: Vec<JoinHandle<()>>,
}

impl Runner {
    /// Keep `projection` current. With `fold`, this process folds whenever
    /// it holds the projection's lease; whenever it does not (another
    /// process folds), `applied` follows the checkpoint.
    pub async fn start<P: Projection>(
        js: &jetstream::Context,
        spec: Spec,
        projection: P,
        fold: Option<Leases>,
    ) -> anyhow::Result<Runner> {
        let projection = Arc::new(projection);
        let (applied_tx, applied) = watch::channel(projection.checkpoint().await?);
        let (stop, stopped) = watch::channel(false);
        let folding = Arc::new(AtomicBool::new(false));
        let mut handles = vec![tokio::spawn(follow_checkpoint(
            projection.clone(),
            folding.clone(),
            applied_tx.clone(),
            stopped.clone(),
        ))];
        if let Some(leases) = fold {
            let lease_name = spec.lease.clone();
            let folder = Folder {
                js: js.clone(),
                spec,
                projection,
                applied_tx,
            };
            let folding = folding.clone();
            handles.push(tokio::spawn(async move {
                lease::run_under_lease(leases, lease_name, folding, stopped, &folder).await
            }));
        }
        Ok(Runner {
            applied,
            folding,
            stop,
            handles,
        })
    }

    /// The last sequence applied.
    pub fn applied(&self) -> u64 {
        *self.applied.borrow()
    }

    /// Wait until `seq` is applied, at most `timeout`; whether it was.
    pub async fn wait_for(&self, seq: u64, timeout: Duration) -> bool {
        wait_until_applied(&self.applied, seq, timeout).await
    }

    /// Whether this process folds now (holds the lease).
    pub fn folds_here(&self) -> bool {
        self.folding.load(Ordering::Relaxed)
    }

    /// Stop folding and following, and release the lease.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        for handle in self.handles {
            let _ = handle.await;
        }
    }
}

/// Wait until `applied` reaches `seq`, at most `timeout`; whether it did.
pub async fn wait_until_applied(
    applied: &watch::Receiver<u64>,
    seq: u64,
    timeout: Duration,
) -> bool {
    let mut applied = applied.clone();
    tokio::time::timeout(timeout, applied.wait_for(|&s| s >= seq))
        .await
        .is_ok_and(|r| r.is_ok())
}

/// Folds the stream into the projection while this process holds the lease.
struct Folder<P> {
    js: jetstream::Context,
    spec: Spec,
    projection: Arc<P>,
    applied_tx: watch::Sender<u64>,
}

impl<P: Projection> lease::TurnWork for Folder<P> {
    fn turn<'a>(
        &'a self,
        fence: &'a Fence,
        kept: &'a mut Kept,
        stopped: &'a mut watch::Receiver<bool>,
    ) -> std::pin::Pin<Box<dyn Future<Output = Turn> + Send + 'a>> {
        Box::pin(self.fold_while_held(fence, kept, stopped))
    }
}

impl<P: Projection> Folder<P> {
    /// Take over, then fold batch after batch until the turn ends.
    async fn fold_while_held(
        &self,
        fence: &Fence,
        kept: &mut Kept,
        stopped: &mut watch::Receiver<bool>,
    ) -> Turn {
        let what = self.spec.what.as_str();
        // The turn's first step; retried while the bus or the database does not answer.
        let cannot_take_over = format!("{what}: cannot take over yet; retrying");
        let take_over = || self.take_over(fence);
        let taken = retry_while_held(
            &cannot_take_over,
            fence,
            kept,
            stopped,
            |_| RETAKE_EVERY,
            take_over,
        )
        .await;
        let (mut batches, checkpoint) = match taken {
            Ok(taken) => taken,
            Err(turn) => return turn,
        };
        tracing::info!(
            from = checkpoint + 1,
            token = fence.token,
            "{what}: folding"
        );
        raise(&self.applied_tx, checkpoint);
        let mut progress = Progress::new(self.spec.coverage, checkpoint);
        let batch_failed = format!("{what}: a batch failed; retrying it");
        loop {
            let next = tokio::select! {
                next = batches.next(self.spec.batch, IDLE) => next,
                _ = kept.lost(fence.token) => return Turn::LeaseLost,
                _ = stopped.changed() => return Turn::Stopped,
            };
            let messages = match next {
                Ok(Some(messages)) => messages,
                Ok(None) => {
                    if let Err(turn) = self.checkpoint_when_caught_up(fence).await {
                        return turn;
                    }
                    continue;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "{what}: read failed; taking over the consumer again");
                    tokio::time::sleep(REREAD_AFTER).await;
                    return Turn::Retake;
                }
            };
            let events = match events_of(&messages) {
                Ok(events) => events,
                Err(e) => {
                    tracing::warn!(error = %e, "{what}: a delivery has no stream sequence; taking over the consumer again");
                    tokio::time::sleep(REREAD_AFTER).await;
                    return Turn::Retake;
                }
            };
            // A failed batch is retried as it is, so that batches commit in order.
            let through = events.iter().map(|e| e.seq).max().unwrap_or(0);
            let apply = || self.projection.apply(&events, through, fence);
            if let Err(turn) =
                retry_while_held(&batch_failed, fence, kept, stopped, retry_pause, apply).await
            {
                return turn;
            }
            for message in &messages {
                let _ = message.ack().await;
            }
            if let Some(applied) = progress.committed(&events) {
                raise(&self.applied_tx, applied);
            }
        }
    }

    /// Claim the fence, then restart the consumer after the checkpoint.
    async fn take_over(&self, fence: &Fence) -> anyhow::Result<(consume::Batches, u64)> {
        self.projection.claim(fence).await?;
        let checkpoint = self.projection.checkpoint().await?;
        let consumer = consume::recreate_durable(
            &self.js,
            &self.spec.stream,
            &DurableSpec {
                start: ReplayFrom::Sequence(checkpoint + 1),
                ..self.spec.consumer.clone()
            },
        )
        .await?;
        let batches = consume::Batches::open(&consumer, self.spec.batch).await?;
        Ok((batches, checkpoint))
    }

    /// Idle, with [`Coverage::Part`]: if nothing is pending, everything in the
    /// stream that concerns the projection is folded, so it is current up to
    /// the stream's end; the checkpoint says so too.
    async fn checkpoint_when_caught_up(&self, fence: &Fence) -> Result<(), Turn> {
        if self.spec.coverage != Coverage::Part {
            return Ok(());
        }
        let Some(end) = self.caught_up_to().await else {
            return Ok(());
        };
        if end <= *self.applied_tx.borrow() {
            return Ok(());
        }
        match self.projection.apply(&[], end, fence).await {
            Ok(()) => raise(&self.applied_tx, end),
            Err(e) if lease::is_fenced(&e) => return Err(Turn::LeaseLost),
            Err(e) => {
                tracing::debug!(error = %e, "{}: checkpoint not moved to the stream's end", self.spec.what)
            }
        }
        Ok(())
    }

    /// The stream's last sequence, when the consumer has nothing pending or unacknowledged.
    async fn caught_up_to(&self) -> Option<u64> {
        let mut stream = self.js.get_stream(&self.spec.stream).await.ok()?;
        // Read the end first: anything published after it is not claimed.
        let end = stream.info().await.ok()?.state.last_sequence;
        let info = stream.consumer_info(&self.spec.consumer.name).await.ok()?;
        (info.num_pending == 0 && info.num_ack_pending == 0).then_some(end)
    }
}

/// Run `step` until it succeeds, pausing `pause(attempt)` after each failure
/// (logged as `failed`), for as long as the lease is held. `Err` is how the
/// turn ends instead: the lease was lost (or a newer holder's fence refused
/// the step), or the process is stopping.
async fn retry_while_held<T, Fut>(
    failed: &str,
    fence: &Fence,
    kept: &mut Kept,
    stopped: &mut watch::Receiver<bool>,
    pause: fn(u64) -> Duration,
    mut step: impl FnMut() -> Fut,
) -> Result<T, Turn>
where
    Fut: Future<Output = anyhow::Result<T>>,
{
    let mut attempt = 0u64;
    loop {
        match step().await {
            Ok(done) => return Ok(done),
            Err(e) if lease::is_fenced(&e) => return Err(Turn::LeaseLost),
            Err(e) => {
                attempt += 1;
                tracing::warn!(error = %e, attempt, "{failed}");
                tokio::select! {
                    _ = tokio::time::sleep(pause(attempt)) => {}
                    _ = kept.lost(fence.token) => return Err(Turn::LeaseLost),
                    _ = stopped.changed() => return Err(Turn::Stopped),
                }
            }
        }
    }
}

/// While no turn runs here (another process holds the lease), move `applied`
/// with the projection's checkpoint, every [`FOLLOW_EVERY`].
async fn follow_checkpoint<P: Projection>(
    projection: Arc<P>,
    folding: Arc<AtomicBool>,
    applied: watch::Sender<u64>,
    mut stopped: watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval(FOLLOW_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stopped.changed() => return,
        }
        if folding.load(Ordering::Relaxed) {
            continue;
        }
        if let Ok(seq) = projection.checkpoint().await {
            raise(&applied, seq);
        }
    }
}

/// Move `applied` up to `seq` (never down), telling its watchers only when it moved.
fn raise(applied: &watch::Sender<u64>, seq: u64) {
    applied.send_if_modified(|at| {
        let moved = seq > *at;
        *at = (*at).max(seq);
        moved
    });
}

/// The pause before the `attempt`th retry of a batch: 100 ms more each time, at most a second.
fn retry_pause(attempt: u64) -> Duration {
    Duration::from_millis(100 * attempt.clamp(1, 10))
}

fn events_of(messages: &[jetstream::Message]) -> anyhow::Result<Vec<Event>> {
    messages
        .iter()
        .map(|message| {
            let seq = message
                .info()
                .map_err(|e| anyhow::anyhow!("{e}"))?
                .stream_sequence;
            Ok(Event {
                seq,
                payload: message.payload.clone(),
            })
        })
        .collect()
}

/// How far "applied" may move as batches commit (see [`Coverage`]).
enum Progress {
    /// The highest sequence below which every one is committed, and the
    /// committed ones above it.
    GapFree {
        floor: u64,
        above: BTreeSet<u64>,
    },
    Highest,
}

impl Progress {
    fn new(coverage: Coverage, checkpoint: u64) -> Progress {
        match coverage {
            Coverage::EverySequence => Progress::GapFree {
                floor: checkpoint,
                above: BTreeSet::new(),
            },
            Coverage::Part => Progress::Highest,
        }
    }

    /// `events` are committed: what "applied" may move to.
    fn committed(&mut self, events: &[Event]) -> Option<u64> {
        match self {
            Progress::Highest => events.iter().map(|e| e.seq).max(),
            Progress::GapFree { floor, above } => {
                above.extend(events.iter().map(|e| e.seq).filter(|s| *s > *floor));
                while above.remove(&(*floor + 1)) {
                    *floor += 1;
                }
                Some(*floor)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn events(seqs: &[u64]) -> Vec<Event> {
        seqs.iter()
            .map(|&seq| Event {
                seq,
                payload: Bytes::new(),
            })
            .collect()
    }

    #[test]
    fn every_sequence_moves_applied_only_over_gap_free_runs() {
        let mut progress = Progress::new(Coverage::EverySequence, 10);
        assert_eq!(progress.committed(&events(&[11, 12])), Some(12));
        // 13 and 14 come late (a redelivery): 15 and 16 do not count yet.
        assert_eq!(progress.committed(&events(&[15, 16])), Some(12));
        assert_eq!(progress.committed(&events(&[14, 13])), Some(16));
        // Sequences at or below the floor (a redelivery of committed ones) change nothing.
        assert_eq!(progress.committed(&events(&[9, 16])), Some(16));
    }

    #[test]
    fn part_of_a_stream_moves_applied_to_the_highest_committed() {
        let mut progress = Progress::new(Coverage::Part, 10);
        assert_eq!(progress.committed(&events(&[20, 14])), Some(20));
    }

    #[test]
    fn retries_pause_longer_each_time_up_to_a_second() {
        assert_eq!(retry_pause(1), Duration::from_millis(100));
        assert_eq!(retry_pause(3), Duration::from_millis(300));
        assert_eq!(retry_pause(50), Duration::from_secs(1));
    }
}
