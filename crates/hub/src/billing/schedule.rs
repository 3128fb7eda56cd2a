//! The billing run on a schedule, inside the platform: every interval, the
//! last complete month is billed. A run that finds its invoices issued does
//! nothing, so running often costs little and catches late bills' months
//! only through the next period (see [`super::run`]).

use std::time::Duration;

use mno_events::bus::Bus;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::money::Period;
use super::run::{run, RunOptions};
use crate::store::Store;

pub fn spawn(
    store: Store,
    bus: Bus,
    every: Duration,
    mut stop: watch::Receiver<bool>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let period = Period::last_complete(chrono::Utc::now());
            match run(&store, &bus, period, &RunOptions::default()).await {
                Ok(report) if !report.issued.is_empty() => {
                    tracing::info!(period = %report.period, invoices = report.issued.len(), "scheduled billing run issued invoices")
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = %e, %period, "scheduled billing run failed; it runs again at the next tick")
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                _ = stop.changed() => return,
            }
        }
    })
}
