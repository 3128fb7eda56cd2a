//! `mno bench idm` keeps working: a small run against a harness nats-server
//! finishes and every check it makes is allowed (the bench fails otherwise).

use anyhow::Result;
use mno_gateway::cli::bench::idm::{run, Args};
use mno_gateway::cli::bench::report::BusChoice;
use mno_gateway::nats_child::NatsSync;
use mno_harness::NatsServer;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_idm_bench_runs_end_to_end_at_a_small_size() -> Result<()> {
    let nats = NatsServer::start().await;
    run(Args {
        bus: BusChoice {
            nats_url: Some(nats.url()),
            nats_server_bin: None,
            nats_sync: NatsSync::Always,
        },
        cached_checks: 2_000,
        requests: 500,
        concurrency: 4,
    })
    .await
}
