//! The billing run: one invoice per (org, period, currency).
//!
//! 1. Every live recurring bill bills its cycles that start by the end of the
//!    period (deterministic ids: nothing twice).
//! 2. The outbox is published, so stream HUB holds every bill committed so far.
//! 3. The stream's last sequence is the cut; the ledger folds HUB up to it.
//! 4. Each invoice due is issued in its own transaction (invoice row, bills
//!    marked invoiced, `invoice_issued` event). Its id comes from (org,
//!    period, currency): an invoice an earlier or crashed run issued is skipped.
//!
//! A bill whose event reached the stream after the cut stays open and goes on
//! the next period's invoice.

use mno_events::bus::Bus;
use mno_events::consume::{replay_until_caught_up, ReplayFrom};
use mno_events::proto::HubEvent;
use mno_events::streams::{last_sequence, HUB};

use super::ledger::{self, Invoice, Ledger, LedgerError};
use super::money::Period;
use super::store::{self, BillingError, Issued};
use crate::relay::Relay;
use crate::store::Store;

/// Test hook of the crash tests: the process aborts after this many invoices.
pub const CRASH_AFTER_ENV: &str = "MNO_BILLING_CRASH_AFTER";

/// How often a run cuts again when a bill changed under it.
const MAX_CUTS: usize = 5;

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("the database failed: {0}")]
    Db(#[from] sqlx::Error),
    #[error("the bus failed: {0}")]
    Bus(String),
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    #[error("bills kept changing under the run; run it again")]
    Unsettled,
}

impl From<BillingError> for RunError {
    fn from(e: BillingError) -> Self {
        match e {
            BillingError::Db(e) => RunError::Db(e),
            other => RunError::Bus(other.to_string()),
        }
    }
}

/// What a run did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RunReport {
    pub period: String,
    /// Bills made from recurring bills' cycles.
    pub cycle_bills: usize,
    /// Invoices issued by this run, by id.
    pub issued: Vec<String>,
    /// The stream sequence of the last cut.
    pub cut_seq: u64,
    /// Invoices some apps' bills were held out of (see `Ledger::invoice`).
    pub held: Vec<HeldBills>,
}

/// The apps whose bills an invoice could not take.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct HeldBills {
    pub invoice: String,
    pub apps: Vec<String>,
}

#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Abort the process after this many invoices (crash tests only).
    pub crash_after: Option<usize>,
}

impl RunOptions {
    /// From the environment: [`CRASH_AFTER_ENV`].
    pub fn from_env() -> Self {
        Self {
            crash_after: std::env::var(CRASH_AFTER_ENV)
                .ok()
                .and_then(|v| v.parse().ok()),
        }
    }
}

/// Fold stream HUB up to `cut_seq` (one org's subjects, or all).
pub async fn fold(bus: &Bus, org: Option<&str>, cut_seq: u64) -> Result<Ledger, RunError> {
    let mut ledger = Ledger::default();
    let mut failure = None;
    if cut_seq > 0 {
        replay_until_caught_up(
            &bus.js,
            HUB,
            &ledger::filters(org),
            ReplayFrom::Beginning,
            Some(cut_seq),
            |message| {
                let applied = HubEvent::from_bytes(&message.payload)
                    .map_err(|e| LedgerError::BadPayload {
                        kind: message.subject.clone(),
                        seq: message.seq,
                        reason: e.to_string(),
                    })
                    .and_then(|event| ledger.apply(message.seq, &event));
                match applied {
                    Ok(()) => true,
                    Err(e) => {
                        failure = Some(e);
                        false
                    }
                }
            },
        )
        .await
        .map_err(|e| RunError::Bus(e.to_string()))?;
    }
    match failure {
        Some(e) => Err(e.into()),
        None => Ok(ledger),
    }
}

/// Bill `period`. Safe to run again, at once or after a crash, and beside a
/// running platform.
pub async fn run(
    store: &Store,
    bus: &Bus,
    period: Period,
    options: &RunOptions,
) -> Result<RunReport, RunError> {
    let mut report = RunReport {
        period: period.to_string(),
        ..Default::default()
    };
    for id in store::live_recurring(&store.pool).await? {
        report.cycle_bills += store::bill_cycles(store, &id, period).await?;
    }
    for _ in 0..MAX_CUTS {
        let relay = Relay::new(store.clone(), bus.clone(), None);
        relay
            .publish_backlog()
            .await
            .map_err(|e| RunError::Bus(e.to_string()))?;
        let cut_seq = last_sequence(&bus.js, HUB)
            .await
            .map_err(|e| RunError::Bus(format!("{e:?}")))?;
        report.cut_seq = cut_seq;
        let ledger = fold(bus, None, cut_seq).await?;
        let mut stale = false;
        for (org, currency) in ledger.invoices_due(period) {
            let invoice = ledger.invoice(&org, period, &currency, cut_seq)?;
            if !invoice.held_apps.is_empty() {
                tracing::warn!(
                    invoice = %invoice.id,
                    apps = ?invoice.held_apps,
                    "these apps' bills are held out of the invoice: with them its total would not fit 64-bit minor units; they stay open until the apps cancel some"
                );
                report.held.push(HeldBills {
                    invoice: invoice.id.clone(),
                    apps: invoice.held_apps.clone(),
                });
            }
            if invoice.lines.is_empty() {
                continue;
            }
            match store::issue(store, &invoice).await? {
                Issued::New => {
                    tracing::info!(invoice = %invoice.id, total_cents = invoice.total_cents, cut_seq, "invoice issued");
                    report.issued.push(invoice.id);
                    if options.crash_after == Some(report.issued.len()) {
                        tracing::warn!(
                            "{CRASH_AFTER_ENV} reached: aborting the process as a crash would"
                        );
                        std::process::abort();
                    }
                }
                Issued::Already => {}
                Issued::Stale => stale = true,
            }
        }
        if !stale {
            // Publish what this run wrote, so the stream tells it at once.
            Relay::new(store.clone(), bus.clone(), None)
                .publish_backlog()
                .await
                .map_err(|e| RunError::Bus(e.to_string()))?;
            return Ok(report);
        }
        tracing::info!("a bill changed since the cut; cutting again");
    }
    Err(RunError::Unsettled)
}

/// Compute an issued invoice again from stream HUB up to the sequence it was
/// cut at. Its bytes equal the stored ones unless history was altered.
pub async fn rebuild(
    store: &Store,
    bus: &Bus,
    invoice_id: &str,
) -> Result<Option<(Vec<u8>, Vec<u8>)>, RunError> {
    let Some(row) = store::invoice(&store.pool, invoice_id).await? else {
        return Ok(None);
    };
    let period = Period::parse(&row.period).map_err(RunError::Bus)?;
    let ledger = fold(bus, Some(&row.org_id), row.cut_seq as u64).await?;
    let rebuilt: Invoice =
        ledger.invoice(&row.org_id, period, &row.currency, row.cut_seq as u64)?;
    Ok(Some((row.body.into_bytes(), rebuilt.to_bytes())))
}
