//! `mno bench <scenario>`: figures measured against the raw bus in the same
//! run (see shared BENCHMARKS.md). Each scenario prints one JSON line
//! `{"scenario","value","baseline","ratio",...}` at the end. [`edges`] starts
//! edge processes for the scenarios measured as several processes.

pub mod bus;
pub mod edges;
pub mod fanout;
pub mod http_floor;
pub mod idm;
pub mod ingest;
pub mod memory;
pub mod mix;
pub mod replay;
pub mod report;
pub mod seed;
pub mod sink;

use anyhow::Result;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    scenario: Scenario,
}

#[derive(Debug, clap::Subcommand)]
enum Scenario {
    /// The raw-bus baselines: pipelined publish, publish awaiting each ack, durable consume, ordered replay.
    Bus(bus::Args),
    /// Webhook fan-out to N apps: publish-to-received latency at a steady rate, deliveries/s at saturation.
    Fanout(fanout::Args),
    /// The IDM check: cached in process, and over NATS request-reply against a raw NATS echo.
    Idm(idm::Args),
    /// Records written through the HTTP API by N clients, against raw pipelined publish of the same bytes.
    Ingest(ingest::Args),
    /// Peak RSS of `mno up` (a child process) holding N records and serving M subscriber apps.
    Memory(memory::Args),
    /// HTTP writes with app ids from N clients while M apps receive them at webhooks in another process.
    Mix(mix::Args),
    /// Impac! rebuild of the records projection plus P&L and aged receivables, against raw ordered replay.
    Replay(replay::Args),
    /// The webhook receivers of `bench mix`, run by it as a separate process.
    #[command(hide = true)]
    WebhookSink(sink::Args),
}

pub async fn run(args: Args) -> Result<()> {
    match args.scenario {
        Scenario::Bus(args) => bus::run(args).await,
        Scenario::Fanout(args) => fanout::run(args).await,
        Scenario::Idm(args) => idm::run(args).await,
        Scenario::Ingest(args) => ingest::run(args).await,
        Scenario::Memory(args) => memory::run(args).await,
        Scenario::Mix(args) => mix::run(args).await,
        Scenario::Replay(args) => replay::run(args).await,
        Scenario::WebhookSink(args) => sink::run(args).await,
    }
}
