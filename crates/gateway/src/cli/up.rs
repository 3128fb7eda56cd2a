//! `mno up`: everything in one process until Ctrl-C or SIGTERM.

use anyhow::Result;
use tokio::signal::unix::{signal, Signal, SignalKind};
use tracing_subscriber::EnvFilter;

use crate::config::PlatformConfig;
use crate::platform::Platform;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub config: PlatformConfig,
    /// Also create a demo organisation with three apps and a year of records,
    /// and keep a demo app writing a change every few seconds.
    #[arg(long, env = "MNO_DEMO", default_value_t = false)]
    pub demo: bool,
    /// Seconds between the demo app's changes.
    #[arg(long, env = "MNO_DEMO_EVERY", default_value_t = 4)]
    pub demo_every: u64,
    /// Log as JSON lines instead of text.
    #[arg(long, env = "MNO_LOG_JSON", default_value_t = false)]
    pub log_json: bool,
}

pub async fn run(args: Args) -> Result<()> {
    init_tracing(args.log_json);
    // Listen before starting: a stop signal that comes while the platform starts
    // (or just as /readyz first answers) then stops it cleanly once it is up,
    // instead of killing the process and leaving its nats-server child behind.
    let mut stop = StopSignals::listen()?;
    let mut config = args.config;
    // The demo's user is signed up once the platform is up: it may be listed.
    config.bind_operators_once_up = args.demo;
    let platform = Platform::start(config).await?;
    let demo_writer = if args.demo {
        Some(start_demo(&platform.base_url(), args.demo_every).await?)
    } else {
        None
    };
    // After the demo signed its user up: the demo user may be listed.
    if let Err(e) = platform.bind_operators().await {
        if let Some(writer) = demo_writer {
            writer.abort();
        }
        platform.shutdown().await?;
        return Err(e);
    }
    println!(
        "mno is up: {}  (bus {}, metrics {})",
        platform.base_url(),
        platform.nats_url,
        platform.metrics_url()
    );
    if args.demo {
        println!(
            "demo: open {}/ and sign in as {} with the password \"{}\"",
            platform.base_url(),
            mno_portal::demo::DEMO_EMAIL,
            mno_portal::demo::DEMO_PASSWORD
        );
    }
    stop.received().await;
    if let Some(writer) = demo_writer {
        writer.abort();
    }
    tracing::info!("stop signal received; shutting down");
    platform.shutdown().await
}

/// Seed the demo through the public API, then keep its app writing.
async fn start_demo(base_url: &str, every_seconds: u64) -> Result<tokio::task::JoinHandle<()>> {
    let api = mno_portal::api::Api::new(base_url, None);
    let demo = mno_portal::demo::seed(&api).await?;
    tracing::info!(org = %demo.org, seeded = demo.seeded, "demo ready");
    let every = std::time::Duration::from_secs(every_seconds.max(1));
    Ok(tokio::spawn(mno_portal::demo::keep_writing(
        api, demo, every,
    )))
}

pub(crate) fn init_tracing(json: bool) {
    let filter = EnvFilter::try_from_env("MNO_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    use std::io::IsTerminal;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        // Colours for a person at a terminal, plain text for a log file.
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}

/// Ctrl-C (SIGINT) and SIGTERM, caught from the moment of `listen`.
pub(crate) struct StopSignals {
    interrupt: Signal,
    terminate: Signal,
}

impl StopSignals {
    pub(crate) fn listen() -> Result<StopSignals> {
        Ok(StopSignals {
            interrupt: signal(SignalKind::interrupt())?,
            terminate: signal(SignalKind::terminate())?,
        })
    }

    /// Returns once either signal has come (at once if one came already).
    pub(crate) async fn received(&mut self) {
        tokio::select! {
            _ = self.interrupt.recv() => {}
            _ = self.terminate.recv() => {}
        }
    }
}
