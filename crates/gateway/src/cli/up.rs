//! `mno up`: everything in one process until Ctrl-C or SIGTERM.

use anyhow::Result;
use tracing_subscriber::EnvFilter;

use crate::config::PlatformConfig;
use crate::platform::Platform;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub config: PlatformConfig,
    /// Log as JSON lines instead of text.
    #[arg(long, env = "MNO_LOG_JSON", default_value_t = false)]
    pub log_json: bool,
}

pub async fn run(args: Args) -> Result<()> {
    init_tracing(args.log_json);
    let platform = Platform::start(args.config).await?;
    println!(
        "mno is up: http://{}  (bus {})",
        platform.http_addr, platform.nats_url
    );
    wait_for_stop_signal().await?;
    tracing::info!("stop signal received; shutting down");
    platform.shutdown().await
}

fn init_tracing(json: bool) {
    let filter = EnvFilter::try_from_env("MNO_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}

async fn wait_for_stop_signal() -> Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut terminate = signal(SignalKind::terminate())?;
    tokio::select! {
        result = tokio::signal::ctrl_c() => result?,
        _ = terminate.recv() => {}
    }
    Ok(())
}
