//! Leases on the bus, and the fencing tokens that make them safe.
//!
//! Work that must run in one process at a time (a projection's fold, an
//! app's webhook delivery) is guarded by a lease: an entry of the JetStream
//! KV bucket `MNO_LEASES`, whose `max_age` is the lease's time to live. The
//! holder renews it well within that time; a holder that dies stops renewing,
//! the entry expires, and another process creates it anew.
//!
//! A lease alone cannot stop a holder that was paused (a long GC-like stall, a
//! network partition) and still believes it holds it. So each acquisition gets
//! a **fencing token**: the entry's revision when it was created, which only
//! grows. A projection claims its token in SQL when it takes over
//! ([`claim_fence`]) and checks it in every commit's transaction
//! ([`check_fence`]): once a newer holder has claimed, an older one's commit
//! fails and changes nothing.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, kv};
use bytes::Bytes;
use futures::TryStreamExt;
use sha2::Digest;
use sqlx::{Any, AnyPool, Transaction};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::db;

/// The KV bucket that holds every lease.
pub const BUCKET: &str = "MNO_LEASES";
/// How long a lease outlives its holder's last renewal.
pub const TTL: Duration = Duration::from_secs(6);
/// How often a holder renews (three chances within [`TTL`]).
pub const RENEW_EVERY: Duration = Duration::from_secs(2);
/// The leases naming running processes ([`Leases::claim_name`]).
pub const NAME_PREFIX: &str = "name.";
/// How often a process that wants a lease held by another tries again.
pub const RETRY_EVERY: Duration = Duration::from_secs(1);

#[derive(Debug, thiserror::Error)]
pub enum LeaseError {
    #[error("the lease bucket {BUCKET} cannot be opened: {0}")]
    Bucket(String),
    #[error("lease {name}: the bus did not answer ({reason})")]
    Bus { name: String, reason: String },
    #[error(
        "another running process is named {0:?} (MNO_INSTANCE, else host and data dir): two of one \
         name would take each other's work back and forth; give each process its own MNO_INSTANCE"
    )]
    NameInUse(String),
    #[error("lease {0}: a newer holder has taken over; this process stops that work")]
    Fenced(String),
    #[error("lease fences in SQL: {0}")]
    Sql(#[from] sqlx::Error),
}

/// Create or update a KV bucket, retried: processes of a cluster starting at
/// once make the JetStream meta leader answer late. When the update keeps
/// failing, an existing bucket is used as it is.
pub async fn open_bucket(js: &jetstream::Context, config: kv::Config) -> Result<kv::Store, String> {
    let mut last = String::new();
    for attempt in 1..=5u32 {
        match js.create_or_update_key_value(config.clone()).await {
            Ok(kv) => return Ok(kv),
            Err(e) => last = e.to_string(),
        }
        tokio::time::sleep(Duration::from_millis(300 * u64::from(attempt))).await;
    }
    js.get_key_value(&config.bucket)
        .await
        .map_err(|e| format!("{last}; and reading it: {e}"))
}

/// This process's handle on the lease bucket.
#[derive(Clone)]
pub struct Leases {
    kv: kv::Store,
    holder: Arc<str>,
    /// The bucket's creation time: a bucket made anew restarts its revisions,
    /// so tokens of another bucket are never compared.
    epoch: Arc<str>,
}

/// A lease held right now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held {
    pub name: String,
    /// The fencing token: the revision at acquisition (it grows with every acquisition).
    pub token: u64,
    /// The entry's current revision, the one the next renewal must match.
    revision: u64,
}

impl Leases {
    /// Open the bucket, creating it or bringing it to `replicas` when given
    /// (a platform process; an operator command passes `None` and leaves an
    /// existing bucket as it is). `holder` names this process in the entries
    /// it holds; a process restarted under the same name (the same data dir,
    /// which only one process at a time may use) takes its own leases back
    /// at once instead of waiting for them to expire.
    pub async fn open(
        js: &jetstream::Context,
        replicas: Option<usize>,
        holder: impl Into<String>,
    ) -> Result<Leases, LeaseError> {
        let config = kv::Config {
            bucket: BUCKET.into(),
            description: "Which process does each job that runs in one process at a time".into(),
            history: 1,
            max_age: TTL,
            storage: jetstream::stream::StorageType::File,
            num_replicas: replicas.unwrap_or(1).max(1),
            ..Default::default()
        };
        let kv = match replicas {
            Some(_) => open_bucket(js, config).await,
            None => match js.get_key_value(BUCKET).await {
                Ok(kv) => Ok(kv),
                Err(_) => open_bucket(js, config).await,
            },
        }
        .map_err(LeaseError::Bucket)?;
        let mut stream = js
            .get_stream(format!("KV_{BUCKET}"))
            .await
            .map_err(|e| LeaseError::Bucket(e.to_string()))?;
        let created = stream
            .info()
            .await
            .map_err(|e| LeaseError::Bucket(e.to_string()))?
            .created;
        Ok(Leases {
            kv,
            holder: holder.into().into(),
            epoch: created.timestamp_micros().to_string().into(),
        })
    }

    pub fn holder(&self) -> &str {
        &self.holder
    }

    /// Take `name` if it is free (or was this process's own); `None` if
    /// another process holds it.
    pub async fn try_acquire(&self, name: &str) -> Result<Option<Held>, LeaseError> {
        let bus = |e: &dyn std::fmt::Display| LeaseError::Bus {
            name: name.to_owned(),
            reason: e.to_string(),
        };
        let value = Bytes::from(self.holder.to_string());
        match self.kv.create(name, value.clone()).await {
            Ok(revision) => return Ok(Some(self.held(name, revision))),
            Err(e) if e.kind() == kv::CreateErrorKind::AlreadyExists => {}
            Err(e) => return Err(bus(&e)),
        }
        let Some(entry) = self.kv.entry(name).await.map_err(|e| bus(&e))? else {
            return Ok(None);
        };
        if entry.operation != kv::Operation::Put || entry.value != value {
            return Ok(None);
        }
        // Our own entry, from before a restart: take it over with a new token.
        match self.kv.update(name, value, entry.revision).await {
            Ok(revision) => Ok(Some(self.held(name, revision))),
            Err(_) => Ok(None),
        }
    }

    fn held(&self, name: &str, revision: u64) -> Held {
        Held {
            name: name.to_owned(),
            token: revision,
            revision,
        }
    }

    /// Renew `held`; `false` when it was lost (it expired and was taken, or is gone).
    pub async fn renew(&self, held: &mut Held) -> Result<bool, LeaseError> {
        let value = Bytes::from(self.holder.to_string());
        match self.kv.update(&held.name, value, held.revision).await {
            Ok(revision) => {
                held.revision = revision;
                Ok(true)
            }
            Err(e) if e.kind() == kv::UpdateErrorKind::WrongLastRevision => Ok(false),
            Err(e) => Err(LeaseError::Bus {
                name: held.name.clone(),
                reason: e.to_string(),
            }),
        }
    }

    /// Give `held` up so that another process can take it at once.
    pub async fn release(&self, held: Held) {
        if let Err(e) = self
            .kv
            .delete_expect_revision(&held.name, Some(held.revision))
            .await
        {
            tracing::debug!(lease = %held.name, error = %e, "lease not released (it expires by itself)");
        }
    }

    /// The names of the leases held now that start with `prefix`.
    pub async fn keys_under(&self, prefix: &str) -> Result<Vec<String>, LeaseError> {
        let bus = |e: &dyn std::fmt::Display| LeaseError::Bus {
            name: prefix.to_owned(),
            reason: e.to_string(),
        };
        self.kv
            .keys()
            .await
            .map_err(|e| bus(&e))?
            .try_filter(|k| std::future::ready(k.starts_with(prefix)))
            .try_collect()
            .await
            .map_err(|e| bus(&e))
    }

    /// Keep trying to hold `name`, and renew it while held, in the background.
    pub fn keep(&self, name: impl Into<String>) -> Kept {
        let name = name.into();
        let (token_tx, token) = watch::channel(None);
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(keep_lease(self.clone(), name.clone(), token_tx, stopped));
        Kept {
            name,
            token,
            stop,
            task,
        }
    }

    /// Hold this process's name for as long as it runs, and refuse a second
    /// live process of the same name: leases taken under a name are taken
    /// back by a process of that name (a restart), so two live ones would
    /// flap every lease between them. A name whose process died (killed, no
    /// release) is free once its entry expires, within [`TTL`].
    pub async fn claim_name(&self) -> Result<Kept, LeaseError> {
        let digest = sha2::Sha256::digest(self.holder.as_bytes());
        let key: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
        let this_run = Leases {
            holder: format!("{}#{}", self.holder, uuid::Uuid::new_v4().simple()).into(),
            ..self.clone()
        };
        let mut kept = this_run.keep(format!("{NAME_PREFIX}{key}"));
        match tokio::time::timeout(TTL + RENEW_EVERY, kept.acquired()).await {
            Ok(Some(_)) => Ok(kept),
            _ => {
                kept.release().await;
                Err(LeaseError::NameInUse(self.holder.to_string()))
            }
        }
    }

    /// A SQL key for `name`'s fence: the epoch keeps buckets apart.
    fn fence_epoch(&self) -> &str {
        &self.epoch
    }
}

/// A lease kept in the background; see [`Leases::keep`].
pub struct Kept {
    pub name: String,
    /// `Some(token)` while this process holds the lease.
    pub token: watch::Receiver<Option<u64>>,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl Kept {
    /// Wait until the lease is held; its token.
    pub async fn acquired(&mut self) -> Option<u64> {
        let held = self.token.wait_for(Option::is_some).await.ok()?;
        *held
    }

    /// Wait until the lease held with `token` is lost (or the keeper stopped).
    pub async fn lost(&mut self, token: u64) {
        let _ = self.token.wait_for(|held| *held != Some(token)).await;
    }

    /// Whether the lease is held now.
    pub fn is_held(&self) -> bool {
        self.token.borrow().is_some()
    }

    /// Stop renewing and give the lease up, so that another process takes over at once.
    pub async fn release(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

async fn keep_lease(
    leases: Leases,
    name: String,
    token: watch::Sender<Option<u64>>,
    mut stopped: watch::Receiver<bool>,
) {
    let mut held: Option<(Held, tokio::time::Instant)> = None;
    loop {
        let wait = if held.is_some() {
            RENEW_EVERY
        } else {
            RETRY_EVERY
        };
        match held.take() {
            None => match leases.try_acquire(&name).await {
                Ok(Some(now_held)) => {
                    tracing::info!(lease = %name, token = now_held.token, "lease acquired");
                    token.send_replace(Some(now_held.token));
                    held = Some((now_held, tokio::time::Instant::now()));
                }
                Ok(None) => {}
                Err(e) => tracing::debug!(error = %e, "lease not acquired; retrying"),
            },
            Some((mut current, renewed_at)) => match leases.renew(&mut current).await {
                Ok(true) => held = Some((current, tokio::time::Instant::now())),
                Ok(false) => {
                    tracing::warn!(lease = %name, "lease lost to another process; stopping that work");
                    token.send_replace(None);
                }
                Err(e) => {
                    // Unsure whether it was renewed: it is ours only until it may have expired.
                    if renewed_at.elapsed() + RENEW_EVERY >= TTL {
                        tracing::warn!(lease = %name, error = %e, "lease not renewed in time; stopping that work");
                        token.send_replace(None);
                    } else {
                        held = Some((current, renewed_at));
                    }
                }
            },
        }
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = stopped.changed() => break,
        }
    }
    token.send_replace(None);
    if let Some((current, _)) = held {
        leases.release(current).await;
    }
}

/// How a turn of work under a lease ended.
pub enum Turn {
    /// The process is stopping.
    Stopped,
    /// A newer holder took over: wait until this process's keeper knows it too.
    LeaseLost,
    /// The work failed under it (its consumer was deleted, the bus restarted):
    /// take over again, with the same token if the lease is still held.
    Retake,
}

/// Whether `e` is a commit or claim refused because a newer holder's fence is in place.
pub fn is_fenced(e: &anyhow::Error) -> bool {
    matches!(e.downcast_ref::<LeaseError>(), Some(LeaseError::Fenced(_)))
}

/// Work done in turns, each while this process holds a lease.
pub trait TurnWork: Send + Sync {
    /// Work under `fence` until the lease is lost (`kept` says when), the
    /// process stops (`stopped`), or the work must take over again.
    fn turn<'a>(
        &'a self,
        fence: &'a Fence,
        kept: &'a mut Kept,
        stopped: &'a mut watch::Receiver<bool>,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Turn> + Send + 'a>>;
}

/// Run `work` each time this process holds lease `name`, until `stopped`;
/// `folding` says whether a turn is running (so that readers know whether to
/// follow the work's checkpoint from SQL instead). The lease is released at the end.
pub async fn run_under_lease(
    leases: Leases,
    name: String,
    folding: Arc<AtomicBool>,
    mut stopped: watch::Receiver<bool>,
    work: &dyn TurnWork,
) {
    let mut kept = leases.keep(name.clone());
    loop {
        let token = tokio::select! {
            token = kept.acquired() => token,
            _ = stopped.changed() => break,
        };
        let Some(token) = token else { break };
        let fence = Fence::new(&leases, &name, token);
        folding.store(true, Ordering::Relaxed);
        let ended = work.turn(&fence, &mut kept, &mut stopped).await;
        folding.store(false, Ordering::Relaxed);
        match ended {
            Turn::Stopped => break,
            Turn::Retake => {}
            Turn::LeaseLost => {
                tracing::warn!(
                    lease = name,
                    "lease lost (taken by another process, or not renewed in time while the bus did not answer); this work stops here until the lease is held again"
                );
                // Until the keeper knows it too; stopping does not wait for that.
                tokio::select! {
                    _ = kept.lost(token) => {}
                    _ = stopped.changed() => break,
                }
            }
        }
    }
    kept.release().await;
}

/// Create the fences table if it is not there (every part that folds calls this).
pub async fn ensure_fence_table(pool: &AnyPool) -> Result<(), LeaseError> {
    let create = "CREATE TABLE IF NOT EXISTS lease_fences (
        name TEXT PRIMARY KEY,
        token BIGINT NOT NULL,
        epoch TEXT NOT NULL
    )";
    if let Err(e) = sqlx::query(create).execute(pool).await {
        // Two processes creating it at once on PostgreSQL: one of them fails; is it there now?
        if sqlx::query("SELECT 1 FROM lease_fences LIMIT 1")
            .fetch_optional(pool)
            .await
            .is_err()
        {
            return Err(e.into());
        }
    }
    Ok(())
}

/// The fence one holder of a lease commits under.
#[derive(Clone)]
pub struct Fence {
    pub name: String,
    pub token: u64,
    epoch: Arc<str>,
}

impl Fence {
    /// The fence of lease `name` held with `token`.
    pub fn new(leases: &Leases, name: &str, token: u64) -> Fence {
        Fence {
            name: name.to_owned(),
            token,
            epoch: leases.fence_epoch().into(),
        }
    }
}

/// Record in SQL that `fence`'s holder took over: from now on a commit of
/// an older holder fails. [`LeaseError::Fenced`] if a newer holder claimed already.
pub async fn claim_fence(pool: &AnyPool, fence: &Fence) -> Result<(), LeaseError> {
    let sql = db::positional(
        "INSERT INTO lease_fences (name, token, epoch) VALUES ($1, $2, $3)
         ON CONFLICT (name) DO UPDATE SET token = excluded.token, epoch = excluded.epoch
         WHERE lease_fences.token <= excluded.token OR lease_fences.epoch <> excluded.epoch",
        db::is_sqlite(pool),
    );
    let done = sqlx::query(&sql)
        .bind(&fence.name)
        .bind(fence.token as i64)
        .bind(fence.epoch.as_ref())
        .execute(pool)
        .await?;
    if done.rows_affected() == 0 {
        return Err(LeaseError::Fenced(fence.name.clone()));
    }
    Ok(())
}

/// In a commit's transaction: fail unless `fence` is still the newest claim.
pub async fn check_fence(
    tx: &mut Transaction<'_, Any>,
    fence: &Fence,
    sqlite: bool,
) -> Result<(), LeaseError> {
    // An UPDATE, not a SELECT: it locks the row until commit, so a claim
    // made meanwhile waits for this commit and comes after it.
    let sql = db::positional(
        "UPDATE lease_fences SET token = $1 WHERE name = $2 AND epoch = $3 AND token <= $4",
        sqlite,
    );
    let done = sqlx::query(&sql)
        .bind(fence.token as i64)
        .bind(&fence.name)
        .bind(fence.epoch.as_ref())
        .bind(fence.token as i64)
        .execute(&mut **tx)
        .await?;
    if done.rows_affected() == 0 {
        return Err(LeaseError::Fenced(fence.name.clone()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn sqlite() -> (tempfile::TempDir, AnyPool) {
        let dir = tempfile::tempdir().unwrap();
        let pool = db::open(&db::sqlite_url(dir.path())).await.unwrap();
        ensure_fence_table(&pool).await.unwrap();
        (dir, pool)
    }

    fn fence(token: u64, epoch: &str) -> Fence {
        Fence {
            name: "projection.test".into(),
            token,
            epoch: epoch.into(),
        }
    }

    async fn commit(pool: &AnyPool, fence: &Fence) -> Result<(), LeaseError> {
        let mut tx = pool.begin().await?;
        check_fence(&mut tx, fence, true).await?;
        tx.commit().await?;
        Ok(())
    }

    #[tokio::test]
    async fn an_older_holder_cannot_commit_once_a_newer_one_claimed() {
        let (_dir, pool) = sqlite().await;
        let old = fence(5, "a");
        claim_fence(&pool, &old).await.unwrap();
        commit(&pool, &old).await.unwrap();
        let new = fence(9, "a");
        claim_fence(&pool, &new).await.unwrap();
        assert!(matches!(
            commit(&pool, &old).await,
            Err(LeaseError::Fenced(_))
        ));
        assert!(matches!(
            claim_fence(&pool, &old).await,
            Err(LeaseError::Fenced(_))
        ));
        commit(&pool, &new).await.unwrap();
    }

    #[tokio::test]
    async fn a_bucket_made_anew_starts_a_new_epoch() {
        let (_dir, pool) = sqlite().await;
        claim_fence(&pool, &fence(500, "old")).await.unwrap();
        // Revisions restart in a new bucket: a small token of the new epoch wins.
        let new = fence(3, "new");
        claim_fence(&pool, &new).await.unwrap();
        commit(&pool, &new).await.unwrap();
        assert!(commit(&pool, &fence(500, "old")).await.is_err());
    }
}
