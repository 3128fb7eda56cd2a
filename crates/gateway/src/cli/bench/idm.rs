//! `mno bench idm`: the IDM check, cached in process and over NATS
//! request-reply, against a raw NATS request-reply echo measured in the same run.
//!
//! A Hub runs on a private bus with SQLite in a temp dir, holding one org and
//! one installed app; the check asked is the app's "may I write invoices".
//! - `idm.cached_in_process`: the `CachingIdm` Connec! and Impac! use in `mno up`.
//! - `idm.nats_request_reply`: `NatsIdm` from a second connection, `concurrency`
//!   requesters at once, answered by the Hub's responder (its own cache).
//! - baseline `nats.echo`: the same requesters, same payload, against a bare
//!   responder that echoes the request: the floor of any request-reply.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use futures::StreamExt;
use mno_events::directory::{AppStack, SharedEntity};
use mno_events::idm::{Action, CachingIdm, Credential, Idm, IdmRequest, NatsIdm};
use mno_hub::{Hub, HubConfig, HubDeps};
use serde_json::json;

use super::report::{figure, print_figures, rate, tempfile_dir, BenchBus, BusChoice, Latencies};

const ECHO_SUBJECT: &str = "mno.bench.echo";

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub bus: BusChoice,
    /// Checks for the cached in-process figure.
    #[arg(long, default_value_t = 1_000_000)]
    pub cached_checks: u64,
    /// Requests for each request-reply figure (IDM over NATS, and the raw echo).
    #[arg(long, default_value_t = 100_000)]
    pub requests: u64,
    /// Requesters in flight at once for the request-reply figures.
    #[arg(long, default_value_t = 32)]
    pub concurrency: u64,
}

pub async fn run(args: Args) -> Result<()> {
    let bench = BenchBus::open(&args.bus).await?;
    mno_events::streams::provision_all(&bench.bus.js, 1).await?;
    let dir = tempfile_dir::TempDir::new("mno-bench-idm")?;
    let db = mno_events::db::open(&mno_events::db::sqlite_url(dir.path())).await?;
    let hub = Hub::start(HubDeps {
        bus: bench.bus.clone(),
        db,
        config: HubConfig::default(),
    })
    .await?;
    let request = seed(&hub).await?;
    eprintln!(
        "measuring the IDM check at {} ({} cached checks; {} requests x{} over NATS)",
        bench.url, args.cached_checks, args.requests, args.concurrency
    );

    // Cached, in process.
    let cached = CachingIdm::start(
        hub.idm(),
        bench.bus.client.clone(),
        CachingIdm::DEFAULT_MAX_AGE,
    )
    .await?;
    anyhow::ensure!(
        cached.check(&request).await?.allow,
        "the seeded check must allow"
    );
    let (cached_rate, cached_lat) =
        cached_in_process(&cached, &request, args.cached_checks).await?;

    // Over NATS, and the raw echo, from a second connection.
    let requester = async_nats::connect(&bench.url).await?;
    let echo = spawn_echo(bench.bus.client.clone()).await?;
    let payload = bytes::Bytes::from(serde_json::to_vec(&request)?);
    // Warm both paths (connections, caches).
    NatsIdm::new(requester.clone()).check(&request).await?;
    requester.request(ECHO_SUBJECT, payload.clone()).await?;

    let (echo_rate, echo_lat) = request_reply(args.requests, args.concurrency, {
        let client = requester.clone();
        let payload = payload.clone();
        move || {
            let client = client.clone();
            let payload = payload.clone();
            async move {
                client.request(ECHO_SUBJECT, payload).await?;
                Ok(())
            }
        }
    })
    .await?;
    let (idm_rate, idm_lat) = request_reply(args.requests, args.concurrency, {
        let idm = Arc::new(NatsIdm::new(requester.clone()));
        let request = request.clone();
        move || {
            let idm = idm.clone();
            let request = request.clone();
            async move {
                let decision = idm.check(&request).await?;
                anyhow::ensure!(decision.allow, "the check denied: {}", decision.reason);
                Ok(())
            }
        }
    })
    .await?;

    echo.abort();
    hub.shutdown().await;
    bench.close().await?;

    let extra = |lat: &Latencies, n: u64| json!({"p50_ms": lat.p50_ms(), "p99_ms": lat.p99_ms(), "checks": n, "concurrency": args.concurrency});
    print_figures(&[
        figure(
            "idm.cached_in_process",
            "checks/s",
            cached_rate,
            echo_rate,
            json!({"p50_ms": cached_lat.p50_ms(), "p99_ms": cached_lat.p99_ms(), "checks": args.cached_checks, "baseline_is": "nats.echo"}),
        ),
        figure(
            "idm.nats_request_reply",
            "checks/s",
            idm_rate,
            echo_rate,
            extra(&idm_lat, args.requests),
        ),
        figure(
            "nats.echo",
            "requests/s",
            echo_rate,
            echo_rate,
            extra(&echo_lat, args.requests),
        ),
    ]);
    Ok(())
}

/// One org with one app installed, sharing invoices read and write; the
/// app's check of writing invoices there.
async fn seed(hub: &Hub) -> Result<IdmRequest> {
    use mno_hub::store::{apps, installs, orgs, users};
    let store = hub.store();
    let owner = users::create(store, "bench@example.com", "Bench", "not-a-login")
        .await
        .context("seed a user")?;
    let org = orgs::create(store, &owner.id, "Bench Org", "USD", "UTC", "US").await?;
    let (app, creds) = apps::create(
        store,
        &owner.id,
        "Bench App".into(),
        AppStack::Cloud,
        None,
        None,
        vec![SharedEntity {
            entity: "invoices".into(),
            read: true,
            write: true,
        }],
        Default::default(),
    )
    .await?;
    installs::install(store, &owner.id, &org.id, &app.id, true).await?;
    Ok(IdmRequest {
        credential: Credential::App {
            key: creds.key,
            secret: creds.secret,
        },
        org: org.id,
        entity: Some("invoices".into()),
        action: Action::Write,
    })
}

async fn cached_in_process(
    idm: &CachingIdm,
    request: &IdmRequest,
    checks: u64,
) -> Result<(f64, Latencies)> {
    let mut latencies = Latencies::default();
    let started = Instant::now();
    for _ in 0..checks {
        let t = Instant::now();
        let decision = idm.check(request).await?;
        latencies.record(t.elapsed());
        anyhow::ensure!(decision.allow, "the cached check denied");
    }
    Ok((rate(checks, started.elapsed()), latencies))
}

/// A bare responder answering every request with its own payload.
async fn spawn_echo(client: async_nats::Client) -> Result<tokio::task::JoinHandle<()>> {
    let mut requests = client.subscribe(ECHO_SUBJECT).await?;
    client.flush().await?;
    Ok(tokio::spawn(async move {
        while let Some(message) = requests.next().await {
            if let Some(reply) = message.reply {
                let _ = client.publish(reply, message.payload).await;
            }
        }
    }))
}

/// `total` calls of `one`, `concurrency` at a time; the rate and latencies.
async fn request_reply<F, Fut>(total: u64, concurrency: u64, one: F) -> Result<(f64, Latencies)>
where
    F: Fn() -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = Result<()>> + Send,
{
    let concurrency = concurrency.clamp(1, total.max(1));
    let started = Instant::now();
    let mut workers = Vec::new();
    for worker in 0..concurrency {
        let n = total / concurrency + u64::from(worker < total % concurrency);
        let one = one.clone();
        workers.push(tokio::spawn(async move {
            let mut latencies = Latencies::default();
            for _ in 0..n {
                let t = Instant::now();
                tokio::time::timeout(Duration::from_secs(10), one())
                    .await
                    .context("a request took over 10 s")??;
                latencies.record(t.elapsed());
            }
            anyhow::Ok(latencies)
        }));
    }
    let mut all = Latencies::default();
    for worker in workers {
        all.merge(&worker.await??);
    }
    Ok((rate(total, started.elapsed()), all))
}
