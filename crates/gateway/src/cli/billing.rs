//! `mno billing`: single billing's operator commands.
//!
//! - `run --period YYYY-MM`: issue the period's invoices (one per org and
//!   currency); safe to run again, after a crash, or beside `mno up`.
//! - `rebuild <invoice>`: compute an issued invoice again from stream HUB up
//!   to the sequence it was cut at and compare the bytes.

use anyhow::{bail, Result};
use mno_hub::billing::money::Period;
use mno_hub::billing::{self, RunOptions};
use mno_hub::store::Store;

use super::impac::Where;
use crate::reportln;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Issue the invoices of a month: one per (org, period, currency).
    Run(RunArgs),
    /// Compute an invoice again from stream HUB and compare it byte for byte with the one issued.
    Rebuild(RebuildArgs),
}

#[derive(Debug, clap::Args)]
struct RunArgs {
    /// The month to bill, YYYY-MM (e.g. 2026-11); default: last month (UTC).
    #[arg(long)]
    period: Option<String>,
    #[command(flatten)]
    place: Where,
}

#[derive(Debug, clap::Args)]
struct RebuildArgs {
    /// The invoice id (GET /hub/v1/orgs/{org}/invoices lists them).
    invoice: String,
    #[command(flatten)]
    place: Where,
}

/// The Hub's store on the database `mno up` uses, and the bus.
async fn open(place: &Where) -> Result<(Store, mno_events::bus::Bus)> {
    let url = place
        .database_url
        .clone()
        .unwrap_or_else(|| mno_events::db::sqlite_url(&place.bus.data_dir));
    let store = Store::open(mno_events::db::open(&url).await?).await?;
    Ok((store, place.bus.connect().await?))
}

pub async fn run(args: Args) -> Result<()> {
    match args.command {
        Command::Run(args) => {
            let period = match &args.period {
                Some(text) => Period::parse(text).map_err(|e| anyhow::anyhow!("--period: {e}"))?,
                None => Period::last_complete(chrono::Utc::now()),
            };
            let (store, bus) = open(&args.place).await?;
            let report = billing::run(&store, &bus, period, &RunOptions::from_env()).await?;
            reportln!(
                "billing run {}: {} invoice(s) issued, {} bill(s) from recurring cycles, cut at HUB sequence {}",
                report.period,
                report.issued.len(),
                report.cycle_bills,
                report.cut_seq
            );
            for id in &report.issued {
                reportln!("  {id}");
            }
            for held in &report.held {
                reportln!(
                    "  held out of {}: the bills of app(s) {} (with them the total would not fit 64-bit minor units; they stay open until the app cancels some)",
                    held.invoice,
                    held.apps.join(", ")
                );
            }
            Ok(())
        }
        Command::Rebuild(args) => {
            let (store, bus) = open(&args.place).await?;
            let Some((stored, rebuilt)) = billing::rebuild(&store, &bus, &args.invoice).await?
            else {
                bail!(
                    "there is no invoice {}; list an org's with GET /hub/v1/orgs/{{org}}/invoices",
                    args.invoice
                );
            };
            if stored != rebuilt {
                bail!(
                    "invoice {} rebuilt from the stream differs from the one issued:\nissued:  {}\nrebuilt: {}",
                    args.invoice,
                    String::from_utf8_lossy(&stored),
                    String::from_utf8_lossy(&rebuilt)
                );
            }
            reportln!(
                "invoice {}: rebuilt from stream HUB, identical ({} bytes)",
                args.invoice,
                stored.len()
            );
            Ok(())
        }
    }
}
