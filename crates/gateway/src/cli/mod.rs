//! The `mno` subcommands, one module each.

pub mod bench;
pub mod billing;
pub mod connectors;
pub mod consumers;
pub mod dlq;
mod hub_database;
pub mod impac;
pub mod serve;
pub mod sso;
pub mod streams;
pub mod up;
pub mod users;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "mno",
    version,
    about = "Mno: run the data-sharing platform and operate it"
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the whole platform in one process (starts nats-server if none is given).
    Up(up::Args),
    /// Run some roles of the platform, one process of many on one NATS cluster and one PostgreSQL.
    Serve(serve::Args),
    /// Show every stream and consumer: messages, bytes, sequences, pending, redelivered.
    Streams(streams::Args),
    /// Measure the platform against the raw bus; prints one JSON line per figure.
    Bench(bench::Args),
    /// Dead letters of delivery: list, show, redrive.
    Dlq(dlq::Args),
    /// Each app's delivery consumer and each projection's consumer, with their lag.
    Consumers(consumers::Args),
    /// Impac! reports: exchange rates, replay as of a time or sequence, rebuild.
    Impac(impac::Args),
    /// Single sign-on: rotate the ID token signing keys, list them.
    Sso(sso::Args),
    /// Single billing: the billing run, and rebuilding an invoice from the stream.
    Billing(billing::Args),
    /// Connector installs: status, and a sync now.
    Connectors(connectors::Args),
    /// Users' accounts: a one-time password reset link.
    Users(users::Args),
}

impl Cli {
    pub async fn run(self) -> anyhow::Result<()> {
        match self.command {
            Command::Up(args) => up::run(args).await,
            Command::Serve(args) => serve::run(args).await,
            Command::Streams(args) => streams::run(args).await,
            Command::Bench(args) => bench::run(args).await,
            Command::Dlq(args) => dlq::run(args).await,
            Command::Consumers(args) => consumers::run(args).await,
            Command::Impac(args) => impac::run(args).await,
            Command::Sso(args) => sso::run(args).await,
            Command::Billing(args) => billing::run(args).await,
            Command::Connectors(args) => connectors::run(args).await,
            Command::Users(args) => users::run(args).await,
        }
    }
}

/// `print!` for reports, which are often piped into `head` or `less`: a
/// reader that closed the pipe has seen enough, so the command ends quietly
/// (exit 0) instead of panicking as `print!` does on a broken pipe.
#[macro_export]
macro_rules! report {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let mut out = std::io::stdout().lock();
        if let Err(e) = write!(out, $($arg)*).and_then(|()| out.flush()) {
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                std::process::exit(0);
            }
            panic!("cannot write the report to standard output: {e}");
        }
    }};
}

/// As [`report!`], ending the line.
#[macro_export]
macro_rules! reportln {
    ($($arg:tt)*) => {{
        $crate::report!("{}\n", format_args!($($arg)*))
    }};
}

/// Where operator commands find the bus.
#[derive(Debug, Clone, clap::Args)]
pub struct BusArgs {
    /// The nats-server; default: the one `mno up` started (recorded under the data dir), else nats://127.0.0.1:4222.
    #[arg(long, env = "MNO_NATS_URL")]
    pub nats_url: Option<String>,
    #[arg(long, env = "MNO_DATA_DIR", default_value = "./data")]
    pub data_dir: std::path::PathBuf,
}

impl BusArgs {
    pub async fn connect(&self) -> anyhow::Result<mno_events::bus::Bus> {
        let url = crate::nats_child::operator_url(self.nats_url.as_deref(), &self.data_dir);
        // Said on stderr (the report stays clean on stdout): a command that fell
        // back to the default port may be reading another platform's bus.
        let from = if self.nats_url.is_some() {
            "MNO_NATS_URL".to_owned()
        } else if url != crate::nats_child::DEFAULT_NATS_URL {
            format!(
                "{}",
                self.data_dir.join(crate::nats_child::URL_FILE).display()
            )
        } else {
            format!(
                "the default: no MNO_NATS_URL, and no {} from an mno up",
                self.data_dir.join(crate::nats_child::URL_FILE).display()
            )
        };
        eprintln!("bus: {url} ({from})");
        Ok(mno_events::bus::connect_named(&url, "mno-cli").await?)
    }
}
