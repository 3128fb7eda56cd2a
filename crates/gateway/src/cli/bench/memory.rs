//! `mno bench memory`: the peak resident memory of `mno up`, run as its own
//! process, once it holds `--records` records and serves `--apps` subscriber
//! apps.
//!
//! 1. A private nats-server, and `mno up` started on it as a child process.
//! 2. Through the HTTP API: a user, an org, a writer app, and `--apps` apps
//!    reading people with webhooks to receivers in this process.
//! 3. `--records` invoices loaded straight onto RECORDS as the record events
//!    the write path stores (the HTTP write path itself is `bench ingest`'s
//!    business); the bench waits until every projection (record store,
//!    Impac!'s reports) has folded all of them, and checks the record store's
//!    count.
//! 4. `--changes` people written through `POST /connec/batch`, each delivered
//!    to every subscriber app.
//!
//! Figure: the child's peak RSS (VmHWM); baseline: its RSS once started and
//! set up, before any record. Target: under 300 MB for 1M records and 10 apps.

use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use axum::body::Bytes;
use axum::extract::State;
use axum::routing::post;
use futures::StreamExt;
use mno_events::publish::{Outgoing, Publisher};
use mno_events::streams::RECORDS;
use mno_events::subject::RecordSubject;
use serde_json::{json, Value};

use super::report::{figure, print_figures, tempfile_dir, BenchBus, BusChoice};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub bus: BusChoice,
    /// Records the platform holds (invoices, loaded onto the stream).
    #[arg(long, default_value_t = 1_000_000)]
    pub records: u64,
    /// Subscriber apps, each with its own webhook receiver.
    #[arg(long, default_value_t = 10)]
    pub apps: usize,
    /// Changes written through the API and delivered to every subscriber.
    #[arg(long, default_value_t = 2_000)]
    pub changes: u64,
}

/// Events published per round of the load (bounds this process's memory).
const LOAD_CHUNK: u64 = 20_000;

pub async fn run(args: Args) -> Result<()> {
    if args.apps == 0 {
        bail!("--apps must be at least 1");
    }
    let bench = BenchBus::open(&args.bus).await?;
    let dir = tempfile_dir::TempDir::new("mno-bench-memory")?;
    let platform = ChildPlatform::start(&bench.url, dir.path()).await?;
    let base = platform.base_url.clone();
    let http = reqwest::Client::new();

    let owner = super::seed::owner(&http, &base, "memory@bench.example").await?;
    let writer = owner
        .install_app(
            &http,
            &base,
            "Bench Writer",
            None,
            &[("people", true, true)],
        )
        .await?;
    let delivered = Arc::new(AtomicU64::new(0));
    for i in 0..args.apps {
        let url = receiver(delivered.clone()).await?;
        owner
            .install_app(
                &http,
                &base,
                &format!("Bench Subscriber {i}"),
                Some(&url),
                &[("people", true, false)],
            )
            .await?;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let idle = platform.memory()?;
    eprintln!(
        "memory: mno up (pid {}) set up with {} subscriber apps: {:.1} MB resident",
        platform.pid(),
        args.apps,
        idle.rss_mb
    );

    // The records, as record events on the stream.
    let load_started = Instant::now();
    let publisher = Publisher::new(bench.bus.js.clone(), RECORDS);
    let mut loaded = 0;
    while loaded < args.records {
        let round = LOAD_CHUNK.min(args.records - loaded);
        let events: Vec<Outgoing> = (loaded..loaded + round)
            .map(|i| {
                let event = super::ingest::stored_invoice(&owner.org, i);
                let subject = RecordSubject::new(&event.org, &event.entity, &event.record_id)
                    .expect("bench ids are valid subject tokens");
                Outgoing::new(
                    subject.to_string(),
                    event.event_id.clone(),
                    event.to_bytes().into(),
                )
            })
            .collect();
        for result in publisher.publish_pipelined(events, 1000).await {
            result.context("load a record")?;
        }
        loaded += round;
        if loaded % 200_000 == 0 {
            eprintln!("memory: {loaded} records on the stream");
        }
    }
    let load_s = load_started.elapsed().as_secs_f64();
    wait_caught_up(&bench.bus.js, Duration::from_secs(600)).await?;
    let caught_up_s = load_started.elapsed().as_secs_f64();
    let held = count(&http, &base, &owner, "invoices").await?;
    if held != args.records {
        bail!(
            "the record store holds {held} invoices, not the {} loaded",
            args.records
        );
    }
    eprintln!(
        "memory: {held} records held ({load_s:.1} s to load, {caught_up_s:.1} s until every projection caught up)"
    );

    // Live changes, delivered to every subscriber.
    let batch_url = format!("{base}/connec/batch");
    let mut written = 0;
    while written < args.changes {
        let round = 100.min(args.changes - written);
        let ops: Vec<Value> = (written..written + round)
            .map(|i| json!({"method": "post", "url": format!("/api/v2/{}/people", owner.org),
                             "params": {"people": {"first_name": "Bench", "last_name": format!("Person {i}")}}}))
            .collect();
        let response = http
            .post(&batch_url)
            .header("Authorization", &writer)
            .json(&json!({"sequential": false, "ops": ops}))
            .send()
            .await?;
        if !response.status().is_success() {
            bail!("a batch of people answered {}", response.status());
        }
        written += round;
    }
    let expected = args.changes * args.apps as u64;
    let deadline = Instant::now() + Duration::from_secs(120);
    while delivered.load(Ordering::Relaxed) < expected {
        if Instant::now() > deadline {
            bail!(
                "only {} of {expected} deliveries arrived in 120 s",
                delivered.load(Ordering::Relaxed)
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let end = platform.memory()?;
    print_figures(&[figure(
        "memory",
        "MB peak RSS",
        end.peak_mb,
        idle.rss_mb,
        json!({"baseline_is": "RSS of the same mno up once set up, before any record (MB)",
               "target_mb": 300, "records": args.records, "apps": args.apps,
               "changes_delivered": expected, "rss_at_end_mb": (end.rss_mb * 10.0).round() / 10.0,
               "load_s": (load_s * 10.0).round() / 10.0, "caught_up_s": (caught_up_s * 10.0).round() / 10.0}),
    )]);
    platform.stop().await;
    bench.close().await
}

/// Wait until every consumer of RECORDS has nothing pending or unacknowledged.
async fn wait_caught_up(js: &async_nats::jetstream::Context, limit: Duration) -> Result<()> {
    let deadline = Instant::now() + limit;
    let stream = js.get_stream(RECORDS).await?;
    let mut last_report = Instant::now();
    loop {
        let mut behind = 0;
        let mut consumers = stream.consumers();
        while let Some(info) = consumers.next().await {
            let info = info?;
            behind += info.num_pending + info.num_ack_pending as u64;
        }
        if behind == 0 {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("the projections are still {behind} events behind after {limit:?}");
        }
        if last_report.elapsed() > Duration::from_secs(5) {
            eprintln!("memory: projections {behind} events behind");
            last_report = Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// How many records of `entity` the record store holds (the list's total).
async fn count(
    http: &reqwest::Client,
    base: &str,
    owner: &super::seed::Owner,
    entity: &str,
) -> Result<u64> {
    let answer: Value = owner
        .authorised(http.get(format!(
            "{base}/connec/api/v2/{}/{entity}?$top=1",
            owner.org
        )))
        .send()
        .await?
        .json()
        .await?;
    answer["pagination"]["total"]
        .as_u64()
        .with_context(|| format!("no pagination.total in {answer}"))
}

/// A webhook receiver counting the records it is sent; returns its URL.
async fn receiver(delivered: Arc<AtomicU64>) -> Result<String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/hook", listener.local_addr()?);
    let app = axum::Router::new()
        .route("/hook", post(receive))
        .with_state(delivered);
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(url)
}

async fn receive(State(delivered): State<Arc<AtomicU64>>, body: Bytes) -> &'static str {
    // Every record in the app's view carries "resource_type".
    let records = body
        .windows(16)
        .filter(|w| w == b"\"resource_type\":")
        .count();
    delivered.fetch_add(records as u64, Ordering::Relaxed);
    "{}"
}

/// `mno up` (this very binary) as a child process on the bench's bus.
struct ChildPlatform {
    child: tokio::process::Child,
    base_url: String,
}

/// Resident memory of a process, from /proc.
struct Memory {
    rss_mb: f64,
    peak_mb: f64,
}

impl ChildPlatform {
    async fn start(nats_url: &str, data_dir: &std::path::Path) -> Result<ChildPlatform> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let mut command = tokio::process::Command::new(std::env::current_exe()?);
        for (key, _) in std::env::vars() {
            if key.starts_with("MNO_") {
                command.env_remove(key);
            }
        }
        let child = command
            .arg("up")
            .env("MNO_NATS_URL", nats_url)
            .env("MNO_DATA_DIR", data_dir)
            .env("MNO_HTTP_ADDR", format!("127.0.0.1:{port}"))
            .env("MNO_METRICS_ADDR", "127.0.0.1:0")
            .env("MNO_ALLOW_PRIVATE_WEBHOOKS", "true")
            .env("MNO_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .context("start mno up")?;
        let platform = ChildPlatform {
            child,
            base_url: format!("http://127.0.0.1:{port}"),
        };
        let http = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let ready = http
                .get(format!("{}/readyz", platform.base_url))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            if ready {
                return Ok(platform);
            }
            if Instant::now() > deadline {
                bail!("mno up did not answer /readyz within 60 s");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn pid(&self) -> u32 {
        self.child.id().unwrap_or(0)
    }

    fn memory(&self) -> Result<Memory> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()))
            .context("read the child's /proc status (Linux only)")?;
        let field = |name: &str| -> Result<f64> {
            let line = status
                .lines()
                .find(|l| l.starts_with(name))
                .with_context(|| format!("no {name} in /proc status"))?;
            let kb: f64 = line
                .split_whitespace()
                .nth(1)
                .and_then(|v| v.parse().ok())
                .with_context(|| format!("unreadable {line:?}"))?;
            Ok(kb / 1024.0)
        };
        Ok(Memory {
            rss_mb: field("VmRSS:")?,
            peak_mb: field("VmHWM:")?,
        })
    }

    async fn stop(mut self) {
        if let Some(pid) = self.child.id() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid as i32),
                nix::sys::signal::Signal::SIGTERM,
            );
        }
        if tokio::time::timeout(Duration::from_secs(20), self.child.wait())
            .await
            .is_err()
        {
            let _ = self.child.kill().await;
        }
    }
}
