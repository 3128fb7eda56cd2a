//! The projection runner against a real nats-server and a SQLite projection:
//! batches commit in order and a restart resumes after the checkpoint, a
//! failing batch is retried until it commits, a commit under a fence a newer
//! holder claimed is refused (nothing written, nothing acked), and stopping
//! ends a fold stuck retrying and releases the lease. A projection of part of
//! the stream is current up to the stream's end once nothing is pending.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::jetstream;
use mno_events::consume::DurableSpec;
use mno_events::db;
use mno_events::lease::{self, Fence, LeaseError, Leases};
use mno_events::projection::{Coverage, Event, Projection, Runner, Spec};
use mno_harness::NatsServer;
use sqlx::AnyPool;

const STREAM: &str = "PROJECTION_TEST";
const LEASE: &str = "fold.projection-test";
const CONSUMER: &str = "projection-test";
const WAIT: Duration = Duration::from_secs(30);

/// A projection that keeps each event's sequence and payload in SQLite, and
/// tells the test what it was asked to do.
#[derive(Clone)]
struct Folded {
    pool: AnyPool,
    /// The sequences of each committed batch, in commit order.
    committed: Arc<Mutex<Vec<Vec<u64>>>>,
    /// How many of the next applies fail (the store is down).
    failures_left: Arc<AtomicU64>,
    attempts: Arc<AtomicU64>,
    refused: Arc<AtomicU64>,
}

impl Folded {
    async fn new(pool: AnyPool) -> Folded {
        lease::ensure_fence_table(&pool).await.unwrap();
        sqlx::query(
            "CREATE TABLE IF NOT EXISTS folded (seq BIGINT PRIMARY KEY, payload TEXT NOT NULL)",
        )
        .execute(&pool)
        .await
        .unwrap();
        sqlx::query(
            "CREATE TABLE IF NOT EXISTS checkpoint (name TEXT PRIMARY KEY, seq BIGINT NOT NULL)",
        )
        .execute(&pool)
        .await
        .unwrap();
        Folded {
            pool,
            committed: Arc::default(),
            failures_left: Arc::default(),
            attempts: Arc::default(),
            refused: Arc::default(),
        }
    }

    fn committed_seqs(&self) -> Vec<u64> {
        self.committed.lock().unwrap().concat()
    }

    async fn rows(&self) -> Vec<(i64, String)> {
        sqlx::query_as("SELECT seq, payload FROM folded ORDER BY seq")
            .fetch_all(&self.pool)
            .await
            .unwrap()
    }
}

impl Projection for Folded {
    async fn checkpoint(&self) -> anyhow::Result<u64> {
        let seq: Option<i64> = sqlx::query_scalar("SELECT seq FROM checkpoint WHERE name = 'test'")
            .fetch_optional(&self.pool)
            .await?;
        Ok(seq.unwrap_or(0) as u64)
    }

    async fn claim(&self, fence: &Fence) -> anyhow::Result<()> {
        Ok(lease::claim_fence(&self.pool, fence).await?)
    }

    async fn apply(&self, events: &[Event], through: u64, fence: &Fence) -> anyhow::Result<()> {
        self.attempts.fetch_add(1, Ordering::SeqCst);
        let down = self
            .failures_left
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1));
        if down.is_ok() {
            anyhow::bail!("the test store is down");
        }
        let mut tx = self.pool.begin().await?;
        for event in events {
            sqlx::query("INSERT INTO folded (seq, payload) VALUES (?, ?) ON CONFLICT DO NOTHING")
                .bind(event.seq as i64)
                .bind(String::from_utf8_lossy(&event.payload).into_owned())
                .execute(&mut *tx)
                .await?;
        }
        sqlx::query(
            "INSERT INTO checkpoint (name, seq) VALUES ('test', ?)
             ON CONFLICT (name) DO UPDATE SET seq = excluded.seq WHERE checkpoint.seq < excluded.seq",
        )
        .bind(through as i64)
        .execute(&mut *tx)
        .await?;
        if let Err(e) = lease::check_fence(&mut tx, fence, true).await {
            if matches!(e, LeaseError::Fenced(_)) {
                self.refused.fetch_add(1, Ordering::SeqCst);
            }
            return Err(e.into());
        }
        tx.commit().await?;
        let seqs = events.iter().map(|e| e.seq).collect();
        self.committed.lock().unwrap().push(seqs);
        Ok(())
    }
}

struct Setup {
    _server: NatsServer,
    _dir: tempfile::TempDir,
    js: jetstream::Context,
    pool: AnyPool,
}

async fn setup() -> Setup {
    let server = NatsServer::start().await;
    let bus = mno_events::bus::connect(&server.url()).await.unwrap();
    bus.js
        .create_stream(jetstream::stream::Config {
            name: STREAM.into(),
            subjects: vec!["pt.>".into()],
            ..Default::default()
        })
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let pool = db::open(&db::sqlite_url(dir.path())).await.unwrap();
    Setup {
        _server: server,
        _dir: dir,
        js: bus.js,
        pool,
    }
}

fn spec(batch: usize) -> Spec {
    Spec {
        what: "test projection".into(),
        lease: LEASE.into(),
        stream: STREAM.into(),
        consumer: DurableSpec::new(CONSUMER, vec!["pt.>".into()]),
        batch,
        coverage: Coverage::EverySequence,
    }
}

/// Publish events `from..=to` (their payload says which), acknowledged.
async fn publish(js: &jetstream::Context, from: u64, to: u64) {
    for n in from..=to {
        js.publish(format!("pt.{n}"), format!("event {n}").into())
            .await
            .unwrap()
            .await
            .unwrap();
    }
}

async fn leases(js: &jetstream::Context, holder: &str) -> Leases {
    Leases::open(js, Some(1), holder).await.unwrap()
}

/// A runner that folds `folded` as process `holder`, `batch` events at a time.
async fn fold(js: &jetstream::Context, batch: usize, folded: &Folded, holder: &str) -> Runner {
    let leases = leases(js, holder).await;
    Runner::start(js, spec(batch), folded.clone(), Some(leases))
        .await
        .unwrap()
}

async fn stop_promptly(runner: Runner) {
    tokio::time::timeout(Duration::from_secs(10), runner.stop())
        .await
        .expect("the runner must stop without waiting for its lease to expire");
}

#[tokio::test]
async fn batches_commit_in_order_and_a_restart_resumes_after_the_checkpoint() {
    let s = setup().await;
    publish(&s.js, 1, 30).await;
    let first = Folded::new(s.pool.clone()).await;
    let runner = fold(&s.js, 4, &first, "p1").await;
    // A process that does not fold follows the checkpoint.
    let follower = Runner::start(&s.js, spec(4), Folded::new(s.pool.clone()).await, None)
        .await
        .unwrap();
    assert!(runner.wait_for(30, WAIT).await, "all 30 events applied");
    assert!(follower.wait_for(30, WAIT).await, "the follower sees 30");
    assert_eq!(first.committed_seqs(), (1..=30).collect::<Vec<_>>());
    assert!(first.committed.lock().unwrap().iter().all(|b| b.len() <= 4));
    assert_eq!(first.checkpoint().await.unwrap(), 30);
    stop_promptly(runner).await;
    stop_promptly(follower).await;

    publish(&s.js, 31, 40).await;
    let second = Folded::new(s.pool.clone()).await;
    let runner = fold(&s.js, 4, &second, "p1").await;
    assert_eq!(runner.applied(), 30, "starts at the checkpoint");
    assert!(runner.wait_for(40, WAIT).await);
    assert_eq!(
        second.committed_seqs(),
        (31..=40).collect::<Vec<_>>(),
        "a restart folds from the checkpoint on, nothing twice"
    );
    let rows = second.rows().await;
    assert_eq!(rows.len(), 40);
    assert_eq!(rows[39], (40, "event 40".to_owned()));
    stop_promptly(runner).await;
}

#[tokio::test]
async fn a_failing_batch_is_retried_until_it_commits() {
    let s = setup().await;
    let folded = Folded::new(s.pool.clone()).await;
    folded.failures_left.store(3, Ordering::SeqCst);
    publish(&s.js, 1, 5).await;
    let runner = fold(&s.js, 100, &folded, "p1").await;
    assert!(runner.wait_for(5, WAIT).await);
    assert_eq!(folded.committed_seqs(), vec![1, 2, 3, 4, 5]);
    let batches = folded.committed.lock().unwrap().len() as u64;
    assert_eq!(
        folded.attempts.load(Ordering::SeqCst),
        3 + batches,
        "three failed attempts, then one per committed batch"
    );
    assert_eq!(folded.rows().await.len(), 5);
    stop_promptly(runner).await;
}

#[tokio::test]
async fn a_commit_under_a_fence_a_newer_holder_claimed_is_refused() {
    let s = setup().await;
    let folded = Folded::new(s.pool.clone()).await;
    let old_holder = leases(&s.js, "paused-process").await;
    publish(&s.js, 1, 1).await;
    let runner = Runner::start(&s.js, spec(10), folded.clone(), Some(old_holder.clone()))
        .await
        .unwrap();
    assert!(runner.wait_for(1, WAIT).await);

    // A newer holder claims the fence (as after this process was paused past its lease).
    let newer = Fence::new(&old_holder, LEASE, 1_000_000);
    lease::claim_fence(&s.pool, &newer).await.unwrap();
    publish(&s.js, 2, 2).await;
    mno_harness::wait_for("the fenced commit", WAIT, || async {
        (folded.refused.load(Ordering::SeqCst) > 0).then_some(())
    })
    .await;
    mno_harness::wait_for("the fold to end", WAIT, || async {
        (!runner.folds_here()).then_some(())
    })
    .await;

    assert_eq!(folded.committed_seqs(), vec![1]);
    assert_eq!(
        folded.rows().await.len(),
        1,
        "the refused batch wrote nothing"
    );
    assert_eq!(folded.checkpoint().await.unwrap(), 1);
    assert_eq!(runner.applied(), 1);
    let stream = s.js.get_stream(STREAM).await.unwrap();
    let consumer = stream.consumer_info(CONSUMER).await.unwrap();
    assert_eq!(
        consumer.num_ack_pending, 1,
        "the refused event is not acknowledged: the newer holder folds it"
    );
    stop_promptly(runner).await;
}

#[tokio::test]
async fn stopping_ends_a_fold_stuck_retrying_and_releases_the_lease() {
    let s = setup().await;
    let folded = Folded::new(s.pool.clone()).await;
    folded.failures_left.store(u64::MAX, Ordering::SeqCst);
    publish(&s.js, 1, 1).await;
    let runner = fold(&s.js, 10, &folded, "p1").await;
    mno_harness::wait_for("a retry", WAIT, || async {
        (folded.attempts.load(Ordering::SeqCst) >= 2).then_some(())
    })
    .await;
    stop_promptly(runner).await;

    let other = leases(&s.js, "p2").await;
    assert!(
        other.try_acquire(LEASE).await.unwrap().is_some(),
        "a stopped runner releases its lease for another process at once"
    );
    assert!(folded.committed_seqs().is_empty());
    assert_eq!(folded.checkpoint().await.unwrap(), 0);
}

#[tokio::test]
async fn a_projection_of_part_of_the_stream_is_current_up_to_its_end_once_idle() {
    let s = setup().await;
    let folded = Folded::new(s.pool.clone()).await;
    // Ours, then one the filter leaves out: the last sequence is not ours.
    publish(&s.js, 1, 2).await;
    s.js.publish("pt.other", "not ours".into())
        .await
        .unwrap()
        .await
        .unwrap();
    let part = Spec {
        consumer: DurableSpec::new(CONSUMER, vec!["pt.1".into(), "pt.2".into()]),
        coverage: Coverage::Part,
        ..spec(10)
    };
    let runner = Runner::start(&s.js, part, folded.clone(), Some(leases(&s.js, "p1").await))
        .await
        .unwrap();
    assert!(
        runner.wait_for(3, WAIT).await,
        "applied reaches the stream's end"
    );
    assert_eq!(folded.committed_seqs(), vec![1, 2]);
    assert_eq!(
        folded.checkpoint().await.unwrap(),
        3,
        "the checkpoint says so for the processes that do not fold"
    );
    stop_promptly(runner).await;
}
