//! Impac!: reports as projections of the record stream.
//!
//! Module plan (one concern each):
//! - `runner`: the projection runner (durable consumer, batched fold, checkpoint in the same transaction).
//! - `projections/`: one fold per report family (accounts, invoices, sales, hr).
//! - `widgets/`: widget computations over projection tables, currency conversion.
//! - `replay`: as-of folds in memory up to a time or sequence.
//! - `kpi`: targets and alerts.
//! - `api/`: axum handlers under `/impac/api/v2`.

use std::sync::Arc;

use mno_events::bus::Bus;
use mno_events::directory::Directory;
use mno_events::idm::Idm;

#[derive(Debug, Clone, Default)]
pub struct ImpacConfig {}

pub struct ImpacDeps {
    pub bus: Bus,
    pub db: sqlx::AnyPool,
    pub idm: Arc<dyn Idm>,
    pub directory: Arc<dyn Directory>,
    pub config: ImpacConfig,
}

pub struct Impac {}

impl Impac {
    pub async fn start(deps: ImpacDeps) -> anyhow::Result<Impac> {
        let _ = deps;
        Ok(Impac {})
    }

    /// Routes under `/impac`.
    pub fn router(&self) -> axum::Router {
        axum::Router::new()
    }

    pub async fn shutdown(self) {}
}
