//! `mno dlq list|show|redrive`: the dead letters of delivery.
//!
//! `list` and `show` read stream DLQ directly; `redrive` asks the running
//! platform (NATS request to `mno.delivery.v1.redrive`), whose delivery
//! worker sends the event again and removes the letter once delivered.

use std::time::Duration;

use anyhow::{bail, Context, Result};
use mno_connec_sync::delivery::{dlq, REDRIVE_SUBJECT};
use serde_json::{json, Value};

use super::BusArgs;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub action: Action,
}

#[derive(Debug, clap::Subcommand)]
pub enum Action {
    /// List dead letters, oldest first.
    List {
        #[command(flatten)]
        bus: BusArgs,
        /// Only this app's.
        #[arg(long)]
        app: Option<String>,
        /// Only this organisation's.
        #[arg(long)]
        org: Option<String>,
        #[arg(long, default_value_t = 100)]
        limit: usize,
        /// Print JSON lines, one per dead letter (none when there are none), instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Show one dead letter in full.
    Show {
        #[command(flatten)]
        bus: BusArgs,
        seq: u64,
    },
    /// Deliver dead letters again (the platform must be running).
    Redrive {
        #[command(flatten)]
        bus: BusArgs,
        /// DLQ sequences to redrive.
        seqs: Vec<u64>,
        /// Redrive every dead letter of this app.
        #[arg(long)]
        all_of_app: Option<String>,
    },
}

pub async fn run(args: Args) -> Result<()> {
    match args.action {
        Action::List {
            bus,
            app,
            org,
            limit,
            json,
        } => {
            if limit == 0 {
                bail!("--limit must be at least 1 (it is how many dead letters to list)");
            }
            let bus = bus.connect().await?;
            let filter = dlq::filter(app.as_deref(), org.as_deref())?;
            let letters = dlq::list(&bus.js, &filter, 0, limit).await?;
            if json {
                for letter in &letters {
                    crate::reportln!("{}", serde_json::to_string(letter)?);
                }
            } else {
                crate::report!("{}", render(&letters));
            }
        }
        Action::Show { bus, seq } => {
            let bus = bus.connect().await?;
            let letter = dlq::get(&bus.js, seq).await?;
            crate::reportln!("{}", serde_json::to_string_pretty(&letter)?);
        }
        Action::Redrive {
            bus,
            seqs,
            all_of_app,
        } => {
            let bus = bus.connect().await?;
            let mut targets = Vec::new();
            for seq in seqs {
                let letter = dlq::get(&bus.js, seq).await?;
                targets.push((letter.letter.app_id, seq));
            }
            if let Some(app) = all_of_app {
                let filter = dlq::filter(Some(&app), None)?;
                for letter in dlq::list(&bus.js, &filter, 0, usize::MAX).await? {
                    targets.push((app.clone(), letter.seq));
                }
            }
            if targets.is_empty() {
                bail!("nothing to redrive: give DLQ sequences (see `mno dlq list`) or --all-of-app <app id>");
            }
            // A letter named twice (or also by --all-of-app) is redriven once.
            let mut seen = std::collections::HashSet::new();
            targets.retain(|(_, seq)| seen.insert(*seq));
            for (app, seq) in targets {
                let answer = redrive(&bus.client, &app, seq).await?;
                if let Some(error) = answer.get("error").and_then(Value::as_str) {
                    bail!("redrive of {seq} refused: {error}");
                }
                match answer["superseded"][0]["by_version"].as_u64() {
                    Some(version) => crate::reportln!(
                        "superseded {seq} (app {app}): the app has version {version} of the record since; removed, not sent"
                    ),
                    None => crate::reportln!(
                        "redriven {seq} (app {app}); it leaves the DLQ once delivered"
                    ),
                }
            }
        }
    }
    Ok(())
}

async fn redrive(client: &async_nats::Client, app: &str, seq: u64) -> Result<Value> {
    let request = json!({"app": app, "seq": seq}).to_string();
    let reply = tokio::time::timeout(
        Duration::from_secs(10),
        client.request(REDRIVE_SUBJECT, request.into()),
    )
    .await
    .context("the platform did not answer the redrive in 10 s")?
    .context("no running platform answers redrives on this bus; start it with `mno up`")?;
    Ok(serde_json::from_slice(&reply.payload)?)
}

fn render(letters: &[dlq::StoredLetter]) -> String {
    if letters.is_empty() {
        return "(no dead letters)\n".into();
    }
    let mut out = format!(
        "{:<8} {:<38} {:<38} {:<16} {:<38} {:>4} {:>6}  {}\n",
        "SEQ", "APP", "ORG", "ENTITY", "RECORD", "TRY", "STATUS", "REASON"
    );
    for l in letters {
        let s = &l.letter;
        out.push_str(&format!(
            "{:<8} {:<38} {:<38} {:<16} {:<38} {:>4} {:>6}  {}\n",
            l.seq,
            s.app_id,
            s.org,
            s.entity,
            s.record_id,
            s.attempts,
            s.last_status.map_or("-".to_owned(), |c| c.to_string()),
            s.reason
        ));
    }
    out
}
