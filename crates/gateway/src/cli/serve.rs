//! `mno serve --role <role>[,<role>...]`: some of the platform, as one process
//! of many on one NATS (JetStream) cluster and one PostgreSQL.

use anyhow::{bail, Result};

use crate::config::PlatformConfig;
use crate::platform::Platform;
use crate::roles::Roles;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The roles of this process, comma-separated: edge, projections,
    /// delivery, hub-jobs, connectors (with edge); or all; or workers
    /// (projections, delivery, hub-jobs). MNO_NATS_URL and PostgreSQL
    /// (MNO_DATABASE_URL) are required: `mno serve` never starts a bus.
    #[arg(long, env = "MNO_ROLES", default_value = "all")]
    pub role: String,
    #[command(flatten)]
    pub config: PlatformConfig,
    /// Log as JSON lines instead of text.
    #[arg(long, env = "MNO_LOG_JSON", default_value_t = false)]
    pub log_json: bool,
}

pub async fn run(args: Args) -> Result<()> {
    super::up::init_tracing(args.log_json);
    let roles = Roles::parse(&args.role)?;
    check(&args.config)?;
    let mut stop = super::up::StopSignals::listen()?;
    let platform = Platform::start_roles(args.config, roles).await?;
    if let Err(e) = platform.bind_operators().await {
        platform.shutdown().await?;
        return Err(e);
    }
    match platform.http_addr {
        Some(_) => println!(
            "mno is serving {roles}: {}  (bus {}, metrics {})",
            platform.base_url(),
            platform.nats_url,
            platform.metrics_url()
        ),
        None => println!(
            "mno is serving {roles}  (bus {}, metrics {})",
            platform.nats_url,
            platform.metrics_url()
        ),
    }
    stop.received().await;
    tracing::info!("stop signal received; shutting down");
    platform.shutdown().await
}

/// A process of many joins a bus and a database it did not start.
fn check(config: &PlatformConfig) -> Result<()> {
    if config.nats_url.is_none() {
        bail!(
            "mno serve needs the platform's bus: set MNO_NATS_URL (e.g. nats://127.0.0.1:4222,nats://127.0.0.1:4223); \
             `mno up` runs everything in one process with its own nats-server"
        );
    }
    match config.database_url.as_deref() {
        None => bail!(
            "mno serve needs the platform's database: set MNO_DATABASE_URL to a postgres:// URL that every process of the platform shares"
        ),
        Some(url) if url.starts_with("sqlite:") => tracing::warn!(
            "MNO_DATABASE_URL is SQLite: only processes on this machine can share it, and slowly; use PostgreSQL for several processes"
        ),
        Some(_) => {}
    }
    Ok(())
}
