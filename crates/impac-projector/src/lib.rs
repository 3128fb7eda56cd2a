//! Impac!: reports as projections of the record stream.
//!
//! Modules, one concern each:
//! - [`runner`]: the projection runner (durable consumer, batched fold, checkpoint in the same transaction).
//! - [`records`]: the projection reports read (current state of the records they use), and its in-memory fold.
//! - [`widgets`]: the widget computations, decimal arithmetic, currency conversion.
//! - [`api`]: `GET /impac/api/v2/widgets/{category}/{name}`, live or `as_of` a sequence or time.
//! - [`kpis`]: KPIs watched after each fold, alerts raised once per crossing.
//!
//! Rebuild: bumping [`records::VERSION`] builds the new version beside the
//! old from sequence 1; readers switch (one row, `impac_active`) once it has
//! caught up with the stream.

pub mod api;
pub mod kpis;
pub mod rates;
pub mod records;
pub mod replay;
pub mod runner;
pub mod widgets;

use std::sync::Arc;
use std::time::Duration;

use mno_events::bus::Bus;
use mno_events::directory::Directory;
use mno_events::idm::Idm;
use tokio::sync::Mutex;

#[derive(Debug, Clone, Default)]
pub struct ImpacConfig {
    /// Let KPI alert webhooks target loopback and private ranges (tests, demos).
    pub allow_private_webhooks: bool,
}

pub struct ImpacDeps {
    pub bus: Bus,
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
    applied: tokio::sync::watch::Receiver<u64>,
    pub kpis: Arc<kpis::KpiRuntime>,
}

impl ImpacState {
    /// The projection version readers use.
    pub async fn active_version(&self) -> Result<i64, sqlx::Error> {
        let version: Option<i64> =
            sqlx::query_scalar("SELECT version FROM impac_active WHERE projection = $1")
                .bind(records::PROJECTION)
                .fetch_optional(&self.db)
                .await?;
        Ok(version.unwrap_or(records::VERSION))
    }

    async fn runner_applied_at_least(&self, seq: u64, timeout: Duration) -> bool {
        let mut applied = self.applied.clone();
        tokio::time::timeout(timeout, applied.wait_for(|&s| s >= seq))
            .await
            .is_ok_and(|r| r.is_ok())
    }
}

pub struct Impac {
    state: ImpacState,
    runners: Mutex<Vec<runner::Runner>>,
    stop: tokio::sync::watch::Sender<bool>,
    kpi_evaluator: tokio::task::JoinHandle<()>,
}

impl Impac {
    pub async fn start(deps: ImpacDeps) -> anyhow::Result<Impac> {
        migrate(&deps.db).await?;
        let active: Option<i64> =
            sqlx::query_scalar("SELECT version FROM impac_active WHERE projection = $1")
                .bind(records::PROJECTION)
                .fetch_optional(&deps.db)
                .await?;
        let mut runners = Vec::new();
        let current = runner::Runner::start(
            &deps.bus.js,
            deps.db.clone(),
            records::PROJECTION,
            records::VERSION,
        )
        .await?;
        let applied = current.applied.clone();
        match active {
            None => {
                sqlx::query("INSERT INTO impac_active (projection, version) VALUES ($1, $2)")
                    .bind(records::PROJECTION)
                    .bind(records::VERSION)
                    .execute(&deps.db)
                    .await?;
            }
            Some(old) if old != records::VERSION => {
                // Blue/green: keep the old version current for readers until the new one catches up.
                runners.push(
                    runner::Runner::start(&deps.bus.js, deps.db.clone(), records::PROJECTION, old)
                        .await?,
                );
                tokio::spawn(switch_when_caught_up(
                    deps.bus.js.clone(),
                    deps.db.clone(),
                    current.applied.clone(),
                ));
            }
            Some(_) => {}
        }
        runners.push(current);
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
        };
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let kpi_evaluator = tokio::spawn(kpis::follow(state.clone(), stopped));
        Ok(Impac {
            state,
            runners: Mutex::new(runners),
            stop,
            kpi_evaluator,
        })
    }

    /// Routes under `/impac/api/v2`.
    pub fn router(&self) -> axum::Router {
        api::router(self.state.clone())
    }

    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let _ = self.kpi_evaluator.await;
        for runner in self.runners.into_inner() {
            runner.stop().await;
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

/// Point readers at the new version once it has folded everything written before it started.
async fn switch_when_caught_up(
    js: async_nats::jetstream::Context,
    db: sqlx::AnyPool,
    mut applied: tokio::sync::watch::Receiver<u64>,
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
    let switched = sqlx::query("UPDATE impac_active SET version = $1 WHERE projection = $2")
        .bind(records::VERSION)
        .bind(records::PROJECTION)
        .execute(&db)
        .await;
    match switched {
        Ok(_) => tracing::info!(
            version = records::VERSION,
            "Impac! readers switched to the rebuilt projection"
        ),
        Err(e) => {
            tracing::error!(error = %e, "could not switch Impac! readers to the rebuilt projection")
        }
    }
}
