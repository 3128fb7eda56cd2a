//! `mno impac`: operate Impac! reports.
//!
//! - `rates load <csv>` / `rates list` / `rates allow-org <org>` / `rates disallow-org <org>`:
//!   exchange rates, written straight into the database `mno up` uses (same
//!   `MNO_DATABASE_URL` / `MNO_DATA_DIR`).
//! - `replay <widget> --org <org> --as-of <time|seq>`: a widget as the stream stood then.
//! - `rebuild records`: build the projection's next version from sequence 1
//!   beside the live one, then switch readers to it.
//! - `prune records`: remove the versions below the one readers use.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use mno_events::directory::Directory;
use mno_impac_projector::replay::{self, AsOf};
use mno_impac_projector::widgets::money::Converter;
use mno_impac_projector::widgets::WIDGETS;
use mno_impac_projector::{api, query, rates, rebuild, records, runner};

use super::BusArgs;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Exchange rates widgets convert amounts with.
    Rates(RatesArgs),
    /// Print a widget as the stream stood at a sequence or a time (folded in memory).
    Replay(ReplayArgs),
    /// Build a projection's next version from sequence 1 beside the live one, then switch readers to it.
    Rebuild(ProjectionArgs),
    /// Remove the versions of a projection below the one readers use (rows, checkpoint, consumer).
    Prune(ProjectionArgs),
}

/// Where the platform keeps its state: the same settings as `mno up`.
#[derive(Debug, Clone, clap::Args)]
pub struct Where {
    #[command(flatten)]
    pub bus: BusArgs,
    /// SQL database; SQLite under the data dir when unset, or a postgres:// URL.
    #[arg(long, env = "MNO_DATABASE_URL")]
    pub database_url: Option<String>,
}

impl Where {
    /// The database `mno up` uses, with Impac!'s tables in place.
    pub async fn database(&self) -> Result<sqlx::AnyPool> {
        let url = self
            .database_url
            .clone()
            .unwrap_or_else(|| mno_events::db::sqlite_url(&self.bus.data_dir));
        let db = mno_events::db::open(&url).await?;
        mno_impac_projector::migrate(&db).await?;
        Ok(db)
    }
}

#[derive(Debug, clap::Args)]
struct RatesArgs {
    #[command(subcommand)]
    command: RatesCommand,
    #[command(flatten)]
    at: Where,
}

#[derive(Debug, clap::Subcommand)]
enum RatesCommand {
    /// Load a CSV with the header base,quote,rate,as_of,source (all or nothing).
    Load { csv: PathBuf },
    /// Print every loaded rate as CSV.
    List,
    /// Let the admins of this org load rates through POST /impac/api/v2/rates.
    AllowOrg { org: String },
    /// Withdraw that.
    DisallowOrg { org: String },
}

#[derive(Debug, clap::Args)]
struct ReplayArgs {
    /// category/name, e.g. accounts/profit_and_loss.
    widget: String,
    /// An organisation (repeat for several: they aggregate).
    #[arg(long = "org", required = true)]
    orgs: Vec<String>,
    /// A stream sequence, an RFC 3339 time or a date (its end, UTC).
    #[arg(long)]
    as_of: String,
    /// ISO 4217 code; default the first org's currency (asked of the Hub), else USD.
    #[arg(long)]
    currency: Option<String>,
    #[arg(long)]
    from: Option<String>,
    /// Default today; also the aging date.
    #[arg(long)]
    to: Option<String>,
    /// DAILY, WEEKLY, MONTHLY (default), QUARTERLY or YEARLY, as the widget route takes.
    #[arg(long)]
    period: Option<String>,
    /// Rows of a top-N widget, or of one page of invoices/list.
    #[arg(long)]
    limit: Option<String>,
    /// Rows of invoices/list skipped before the page.
    #[arg(long)]
    offset: Option<String>,
    #[arg(long, value_enum, default_value_t = Format::Json)]
    format: Format,
    #[command(flatten)]
    at: Where,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Format {
    Json,
    Csv,
}

#[derive(Debug, clap::Args)]
struct ProjectionArgs {
    /// The projection (records).
    projection: String,
    #[command(flatten)]
    at: Where,
}

pub async fn run(args: Args) -> Result<()> {
    match args.command {
        Command::Rates(args) => run_rates(args).await,
        Command::Replay(args) => run_replay(args).await,
        Command::Rebuild(args) => run_rebuild(args).await,
        Command::Prune(args) => run_prune(args).await,
    }
}

async fn run_rates(args: RatesArgs) -> Result<()> {
    let db = args.at.database().await?;
    match args.command {
        RatesCommand::Load { csv } => {
            let text = std::fs::read_to_string(&csv)
                .with_context(|| format!("cannot read {}", csv.display()))?;
            let rows = rates::parse_csv(&text).map_err(|problem| {
                anyhow::anyhow!("{}: {problem}; nothing was loaded", csv.display())
            })?;
            rates::store(&db, &rows).await?;
            crate::reportln!("loaded {} rates from {}", rows.len(), csv.display());
        }
        RatesCommand::List => {
            crate::reportln!("{}", rates::CSV_HEADER);
            for row in rates::list(&db).await? {
                crate::reportln!(
                    "{},{},{},{},\"{}\"",
                    row.base,
                    row.quote,
                    row.rate,
                    row.as_of,
                    row.source.replace('"', "\"\"")
                );
            }
        }
        RatesCommand::AllowOrg { org } => {
            mno_events::subject::Token::parse("org", &org)?;
            // The Hub's organisations live in the same database `mno up` uses.
            if mno_hub::store::orgs::get(&db, &org).await?.is_none() {
                bail!("there is no organisation {org} in this platform's database; check the id (GET /hub/v1/orgs lists a user's), and MNO_DATA_DIR / MNO_DATABASE_URL");
            }
            rates::allow_org(&db, &org).await?;
            crate::reportln!("admins of {org} may now load rates through POST /impac/api/v2/rates");
        }
        RatesCommand::DisallowOrg { org } => {
            if !rates::disallow_org(&db, &org).await? {
                bail!("{org} was not allowed to load rates, so there is nothing to withdraw");
            }
            crate::reportln!("admins of {org} may no longer load rates");
        }
    }
    db.close().await;
    Ok(())
}

/// The widget route's query string, so the parameters are checked by the same code.
fn query_of(args: &ReplayArgs) -> HashMap<String, Vec<String>> {
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    for (name, value) in [
        ("currency", &args.currency),
        ("from", &args.from),
        ("to", &args.to),
        ("period", &args.period),
        ("limit", &args.limit),
        ("offset", &args.offset),
    ] {
        if let Some(value) = value {
            query.append_pair(name, value);
        }
    }
    query::parse_query(Some(&query.finish()))
}

fn first_detail(error: mno_events::ApiError) -> anyhow::Error {
    let detail = error
        .errors
        .iter()
        .map(|e| e.detail.clone())
        .collect::<Vec<_>>()
        .join("; ");
    anyhow::anyhow!(detail)
}

async fn run_replay(mut args: ReplayArgs) -> Result<()> {
    // An org named twice counts once, as in the widget API.
    let mut seen = std::collections::HashSet::new();
    args.orgs.retain(|org| seen.insert(org.clone()));
    if !WIDGETS.contains(&args.widget.as_str()) {
        bail!(
            "no widget {}; the widgets are: {}",
            args.widget,
            WIDGETS.join(", ")
        );
    }
    for org in &args.orgs {
        mno_events::subject::Token::parse("org", org)?;
    }
    let point = AsOf::parse(&args.as_of).map_err(|why| anyhow::anyhow!("--{why}"))?;
    let query = query_of(&args);
    let params = query::widget_params(&query).map_err(first_detail)?;
    let asked_currency = query::currency_param(&query).map_err(first_detail)?;
    let bus = args.at.bus.connect().await?;
    let db = args.at.database().await?;
    let currency = match asked_currency {
        Some(c) => c,
        None => default_currency(&bus, &args.orgs[0]).await,
    };
    let snapshot = replay::snapshot_as_of(&bus.js, &args.orgs, point).await?;
    let converter = Converter::new(&currency, rates::latest(&db).await?);
    let answer = replay::answer(
        &args.widget,
        &args.orgs,
        Some(point),
        &snapshot,
        &params,
        &converter,
    )?;
    match args.format {
        Format::Json => crate::reportln!("{}", serde_json::to_string_pretty(&answer)?),
        Format::Csv => {
            let mut rows = vec!["path,value".to_owned()];
            api::flatten("", &answer["content"], &mut rows);
            crate::reportln!("{}", rows.join("\n"));
        }
    }
    db.close().await;
    Ok(())
}

/// The org's currency as the Hub knows it, else USD.
async fn default_currency(bus: &mno_events::bus::Bus, org: &str) -> String {
    let directory = mno_events::directory::NatsDirectory::new(bus.client.clone());
    match tokio::time::timeout(Duration::from_secs(3), directory.org(org)).await {
        Ok(Ok(Some(profile))) if !profile.currency.is_empty() => profile.currency,
        _ => {
            eprintln!("the Hub did not say {org}'s currency; reporting in USD (set --currency)");
            "USD".to_owned()
        }
    }
}

fn known_projection(projection: &str) -> Result<()> {
    if projection != records::PROJECTION {
        bail!(
            "no projection {projection:?}; the projections are: {}",
            records::PROJECTION
        );
    }
    Ok(())
}

async fn run_rebuild(args: ProjectionArgs) -> Result<()> {
    known_projection(&args.projection)?;
    let bus = args.at.bus.connect().await?;
    let db = args.at.database().await?;
    let outcome = rebuild(&bus.js, &db, |progress| eprintln!("{progress}")).await?;
    crate::reportln!("{}", serde_json::to_string(&outcome)?);
    if let Some(previous) = outcome.previous_version {
        eprintln!(
            "v{previous} is kept beside v{}; `mno impac prune {}` removes it",
            outcome.version,
            records::PROJECTION
        );
    }
    db.close().await;
    Ok(())
}

async fn run_prune(args: ProjectionArgs) -> Result<()> {
    known_projection(&args.projection)?;
    let bus = args.at.bus.connect().await?;
    let db = args.at.database().await?;
    let pruned = mno_impac_projector::prune::prune_old_versions(&bus.js, &db).await?;
    eprintln!(
        "removed {} version(s) of {} below v{} ({} rows)",
        pruned.versions.len(),
        pruned.projection,
        pruned.active_version,
        pruned.rows
    );
    crate::reportln!("{}", serde_json::to_string(&pruned)?);
    db.close().await;
    Ok(())
}

/// How a rebuild went.
#[derive(Debug, serde::Serialize)]
pub struct Rebuilt {
    pub projection: &'static str,
    pub version: i64,
    pub previous_version: Option<i64>,
    /// Events folded while catching up (those of the collections the projection reads).
    pub events: u64,
    /// The stream sequence the new version had caught up with when readers switched.
    pub caught_up_to: u64,
    pub seconds: f64,
    pub events_per_second: f64,
}

/// Build the next version of the records projection from sequence 1, reporting
/// progress about every second, and switch readers once it has folded
/// everything in the stream when it started. A running `mno up` follows the
/// switch (it keeps the new version current from its checkpoint).
pub async fn rebuild(
    js: &async_nats::jetstream::Context,
    db: &sqlx::AnyPool,
    mut report: impl FnMut(String),
) -> Result<Rebuilt> {
    let previous_version = mno_impac_projector::active_version(db).await?;
    let version = mno_impac_projector::next_version(db).await?;
    let mut stream = js.get_stream(mno_events::streams::RECORDS).await?;
    let target = stream.info().await?.state.last_sequence;
    report(format!(
        "building {} v{version} from sequence 1 up to {target} (readers stay on v{})",
        records::PROJECTION,
        previous_version.unwrap_or(records::VERSION)
    ));
    let started = Instant::now();
    // Far behind: fold big batches from an ordered replay.
    let caught_up = rebuild::catch_up(js, db, version, target, |p| report(p.to_string())).await?;
    // Then the version's own durable consumer (starting after the checkpoint)
    // folds what was written meanwhile; readers switch once it is current.
    // Under the version's lease, as any process that folds it: once readers
    // switch, the platform's process that folds takes it over from here.
    let leases = mno_events::lease::Leases::open(
        js,
        None,
        format!("mno-impac-rebuild-{}", std::process::id()),
    )
    .await?;
    let runner = runner::start(js, db.clone(), records::PROJECTION, version, Some(leases)).await?;
    let now = stream.info().await?.state.last_sequence;
    let mut applied = runner.applied.clone();
    while tokio::time::timeout(Duration::from_secs(1), applied.wait_for(|&seq| seq >= now))
        .await
        .is_err()
    {
        report(format!(
            "following the stream: sequence {} / {now}",
            *applied.borrow()
        ));
    }
    mno_impac_projector::switch_readers(db, version).await?;
    let seconds = started.elapsed().as_secs_f64();
    report(format!(
        "readers switched to {} v{version}",
        records::PROJECTION
    ));
    runner.stop().await;
    let events = caught_up.events;
    Ok(Rebuilt {
        projection: records::PROJECTION,
        version,
        previous_version,
        events,
        caught_up_to: target,
        seconds,
        events_per_second: events as f64 / seconds.max(1e-9),
    })
}
