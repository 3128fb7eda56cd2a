//! Impac!: reports as projections of the record stream.
//!
//! Modules, one concern each:
//! - [`runner`]: the projection runner (durable consumer, batched fold, checkpoint in the same transaction).
//! - [`records`]: the projection reports read (current state of the records they use), and its in-memory fold.
//! - [`widgets`]: the widget computations, decimal arithmetic, currency conversion.
//! - [`api`]: `GET /impac/api/v2/widgets/{category}/{name}`, live or `as_of` a sequence or time.
//! - [`kpis`]: KPIs watched against targets, and their alerts. [`dashboards`], [`rates`]: their routes.
//! - [`router`]: every route, each to its module. [`openapi`]: the schemas the handlers name;
//!   [`document`]: the OpenAPI document of the routes.
//!
//! Rebuild: bumping [`records::VERSION`] builds the new version beside the
//! old from sequence 1; readers switch (one row, `impac_active`) once it has
//! caught up with the stream.

pub mod access;
pub mod api;
pub mod batch;
pub mod dashboards;
pub mod document;
pub mod kpis;
pub mod openapi;
pub mod prune;
pub mod query;
pub mod rates;
pub mod rebuild;
pub mod records;
pub mod replay;
pub mod router;
pub mod runner;
pub mod widgets;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use mno_events::bus::Bus;
use mno_events::directory::Directory;
use mno_events::idm::Idm;
use mno_events::lease::Leases;
use tokio::sync::{watch, Mutex};
use tokio::task::JoinHandle;

#[derive(Debug, Clone, Default)]
pub struct ImpacConfig {
    /// Let KPI alert webhooks target loopback and private ranges (tests, demos).
    pub allow_private_webhooks: bool,
}

pub struct ImpacDeps {
    pub bus: Bus,
    /// Fold the projections in this process (one process at a time, under
    /// leases); `None`: only read them (another process folds).
    pub fold: Option<Leases>,
    pub db: sqlx::AnyPool,
    pub idm: Arc<dyn Idm>,
    pub directory: Arc<dyn Directory>,
    pub config: ImpacConfig,
}

/// What the widget handlers share.
#[derive(Clone)]
pub struct ImpacState {
    pub db: sqlx::AnyPool,
    pub js: async_nats::jetstream::Context,
    pub idm: Arc<dyn Idm>,
    pub directory: Arc<dyn Directory>,
    /// The highest sequence the version readers use has folded.
    applied: watch::Receiver<u64>,
    /// Whether this process folds the version readers use (so evaluates KPIs).
    folds_here: Arc<AtomicBool>,
    pub kpis: Arc<kpis::KpiRuntime>,
}

impl ImpacState {
    /// The projection version readers use.
    pub async fn active_version(&self) -> Result<i64, sqlx::Error> {
        Ok(active_version(&self.db).await?.unwrap_or(records::VERSION))
    }

    /// Whether this process folds the version readers use now: KPI alerts
    /// are raised there, once, not by every process.
    pub fn folds_here(&self) -> bool {
        self.folds_here.load(Ordering::Relaxed)
    }

    async fn runner_applied_at_least(&self, seq: u64, timeout: Duration) -> bool {
        mno_events::projection::wait_until_applied(&self.applied, seq, timeout).await
    }
}

/// The version of the records projection readers use, if one was chosen yet.
pub async fn active_version(db: &sqlx::AnyPool) -> Result<Option<i64>, sqlx::Error> {
    sqlx::query_scalar("SELECT version FROM impac_active WHERE projection = $1")
        .bind(records::PROJECTION)
        .fetch_optional(db)
        .await
}

/// Point readers at `version` (one row, so the switch is atomic).
pub async fn switch_readers(db: &sqlx::AnyPool, version: i64) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO impac_active (projection, version) VALUES ($1, $2)
         ON CONFLICT (projection) DO UPDATE SET version = excluded.version",
    )
    .bind(records::PROJECTION)
    .bind(version)
    .execute(db)
    .await
    .map(|_| ())
}

/// The version a rebuild should build: above every version the code or the database knows.
pub async fn next_version(db: &sqlx::AnyPool) -> Result<i64, sqlx::Error> {
    let checkpointed: Option<i64> =
        sqlx::query_scalar("SELECT MAX(version) FROM impac_checkpoints WHERE projection = $1")
            .bind(records::PROJECTION)
            .fetch_one(db)
            .await?;
    let active = active_version(db).await?;
    Ok([checkpointed, active, Some(records::VERSION)]
        .into_iter()
        .flatten()
        .max()
        .unwrap_or(0)
        + 1)
}

type Runners = Arc<Mutex<BTreeMap<i64, runner::Runner>>>;

pub struct Impac {
    state: ImpacState,
    runners: Runners,
    stop: watch::Sender<bool>,
    supervisor: JoinHandle<()>,
    kpi_evaluator: JoinHandle<()>,
}

impl Impac {
    pub async fn start(deps: ImpacDeps) -> anyhow::Result<Impac> {
        migrate(&deps.db).await?;
        let active = match active_version(&deps.db).await? {
            Some(version) => version,
            None => {
                switch_readers(&deps.db, records::VERSION).await?;
                records::VERSION
            }
        };
        let mut runners = BTreeMap::new();
        runners.insert(
            active,
            runner::start(
                &deps.bus.js,
                deps.db.clone(),
                records::PROJECTION,
                active,
                deps.fold.clone(),
            )
            .await?,
        );
        if records::VERSION > active {
            // Blue/green: the old version stays current for readers until the new one catches up.
            let current = runner::start(
                &deps.bus.js,
                deps.db.clone(),
                records::PROJECTION,
                records::VERSION,
                deps.fold.clone(),
            )
            .await?;
            tokio::spawn(switch_when_caught_up(
                deps.bus.js.clone(),
                deps.db.clone(),
                records::VERSION,
                current.applied.clone(),
            ));
            runners.insert(records::VERSION, current);
        }
        let (applied_tx, applied) = watch::channel(*runners[&active].applied.borrow());
        let runners: Runners = Arc::new(Mutex::new(runners));
        let (stop, stopped) = watch::channel(false);
        let folds_here = Arc::new(AtomicBool::new(false));
        let supervisor = tokio::spawn(follow_active_version(
            Following {
                js: deps.bus.js.clone(),
                db: deps.db.clone(),
                fold: deps.fold.clone(),
                runners: runners.clone(),
                applied_tx,
                folds_here: folds_here.clone(),
            },
            stopped.clone(),
        ));
        let state = ImpacState {
            kpis: Arc::new(kpis::KpiRuntime::new(
                deps.bus.js.clone(),
                deps.config.allow_private_webhooks,
            )),
            db: deps.db,
            js: deps.bus.js,
            idm: deps.idm,
            directory: deps.directory,
            applied,
            folds_here,
        };
        let kpi_evaluator = tokio::spawn(kpis::follow(state.clone(), stopped));
        Ok(Impac {
            state,
            runners,
            stop,
            supervisor,
            kpi_evaluator,
        })
    }

    /// Routes under `/impac/api/v2`.
    pub fn router(&self) -> axum::Router {
        router::router(self.state.clone())
    }

    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let _ = self.supervisor.await;
        let _ = self.kpi_evaluator.await;
        let runners = std::mem::take(&mut *self.runners.lock().await);
        for (_, runner) in runners {
            runner.stop().await;
        }
    }
}

/// What [`follow_active_version`] works with.
struct Following {
    js: async_nats::jetstream::Context,
    db: sqlx::AnyPool,
    fold: Option<Leases>,
    runners: Runners,
    applied_tx: watch::Sender<u64>,
    folds_here: Arc<AtomicBool>,
}

/// Keep a runner on the version readers use (a `mno impac rebuild` may switch
/// them at any time), stop the runners of versions below it, and publish how
/// far the active version has folded (for `min_seq`).
async fn follow_active_version(following: Following, mut stopped: watch::Receiver<bool>) {
    let Following {
        js,
        db,
        fold,
        runners,
        applied_tx,
        folds_here,
    } = following;
    let mut active = None;
    let mut watched: Option<watch::Receiver<u64>> = None;
    // An interval, not a sleep: busy runners must not delay the version check.
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    loop {
        let changed = async {
            match watched.as_mut() {
                Some(applied) => match applied.changed().await {
                    Ok(()) => {
                        applied_tx.send_replace(*applied.borrow_and_update());
                    }
                    Err(_) => std::future::pending::<()>().await,
                },
                None => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            _ = changed => continue,
            _ = tick.tick() => {}
            _ = stopped.changed() => return,
        }
        let Ok(Some(version)) = active_version(&db).await else {
            continue;
        };
        let mut running = runners.lock().await;
        if let std::collections::btree_map::Entry::Vacant(slot) = running.entry(version) {
            match runner::start(&js, db.clone(), records::PROJECTION, version, fold.clone()).await {
                Ok(runner) => {
                    tracing::info!(
                        version,
                        "Impac! readers use a rebuilt version; following it"
                    );
                    slot.insert(runner);
                }
                Err(e) => {
                    tracing::warn!(error = %e, version, "cannot follow the active Impac! version yet");
                    continue;
                }
            }
        }
        folds_here.store(running[&version].folds_here(), Ordering::Relaxed);
        if active != Some(version) {
            let mut applied = running[&version].applied.clone();
            applied_tx.send_replace(*applied.borrow_and_update());
            watched = Some(applied);
            active = Some(version);
        }
        let older: Vec<i64> = running.range(..version).map(|(v, _)| *v).collect();
        for old in older {
            if let Some(runner) = running.remove(&old) {
                runner.stop().await;
            }
        }
    }
}

/// Create or update Impac!'s tables (also run by the `mno impac` commands that write SQL).
pub async fn migrate(db: &sqlx::AnyPool) -> anyhow::Result<()> {
    let mut migrator = sqlx::migrate!("./migrations");
    // Other parts' migrations share the table; they are not ours to check.
    migrator.set_ignore_missing(true);
    migrator
        .run(db)
        .await
        .map_err(|e| anyhow::anyhow!("Impac! migrations failed: {e}"))
}

/// Point readers at `version` once it has folded everything written before it started.
pub async fn switch_when_caught_up(
    js: async_nats::jetstream::Context,
    db: sqlx::AnyPool,
    version: i64,
    mut applied: watch::Receiver<u64>,
) {
    let Ok(mut stream) = js.get_stream(mno_events::streams::RECORDS).await else {
        return;
    };
    let Ok(info) = stream.info().await else {
        return;
    };
    let target = info.state.last_sequence;
    if applied.wait_for(|&s| s >= target).await.is_err() {
        return;
    }
    match switch_readers(&db, version).await {
        Ok(()) => tracing::info!(version, "Impac! readers switched to the rebuilt projection"),
        Err(e) => {
            tracing::error!(error = %e, "could not switch Impac! readers to the rebuilt projection")
        }
    }
}
