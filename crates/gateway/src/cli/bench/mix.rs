//! `mno bench mix`: ingest and fan-out together, as apps use them. A whole
//! platform in this process takes HTTP writes of ~900-byte invoices that
//! carry the writing app's own id, from N clients, while M subscriber apps
//! receive every change at webhooks served by another process
//! (`mno bench webhook-sink`).
//!
//! - `mix.writes`: writes/s with M subscribers, for `--seconds`; baseline: the
//!   same clients and bodies with no subscriber, measured last in this run
//!   (the subscribers share nothing any more: a new app's consumer starts 30 s back, so
//!   writes made before it would be delivered too).
//!   Also the CPU one write cost (this process, load generator included, and
//!   nats-server), each phase.
//! - `mix.deliveries`: deliveries/s over the loaded phase and the drain of its
//!   backlog (one delivery = one record received by one app), and the drain
//!   time after the writers stop; baseline: raw durable consume with explicit
//!   ack, median of the passes, same run.
//! - `mix.latency`: write-sent-to-webhook-received p50 (p99 beside it) at a
//!   steady `--rate` of writes; baseline: raw publish-ack p50, same run.
//! - `mix.memory`: peak RSS of this process (platform and clients) over the run.

use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use bytes::Bytes;
use mno_events::streams::RECORDS;
use serde_json::{json, Value};
use tokio::io::AsyncBufReadExt;

use super::report::{
    figure, print_figures, rate, tempfile_dir, with_baseline, Baseline, BenchBus, BusChoice,
    Latencies,
};
use super::sink::{wall_micros, SENT_FIELD};
use crate::config::PlatformConfig;
use crate::platform::Platform;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub bus: BusChoice,
    /// Concurrent HTTP clients writing.
    #[arg(long, default_value_t = 32)]
    pub clients: usize,
    /// Subscriber apps, each with its own webhook at the sink process.
    #[arg(long, default_value_t = 10)]
    pub apps: usize,
    /// Seconds of writing as fast as answered, with no subscriber and then with them.
    #[arg(long, default_value_t = 10)]
    pub seconds: u64,
    /// Writes per second in the latency phase.
    #[arg(long, default_value_t = 200)]
    pub rate: u64,
    /// Seconds of the latency phase.
    #[arg(long, default_value_t = 10)]
    pub steady_seconds: u64,
    /// Lines per invoice (each about 190 bytes): the record size.
    #[arg(long, default_value_t = 3)]
    pub lines: usize,
    /// Milliseconds a change may wait for others to share its POST (`MNO_WEBHOOK_LINGER_MS`).
    #[arg(long, default_value_t = 0)]
    pub linger_ms: u64,
}

/// An invoice as an accounting app sends it: its own id, `lines` lines, and
/// when it was sent (read by the sink).
fn invoice(n: u64, lines: usize) -> Value {
    let lines: Vec<Value> = (0..lines)
        .map(|l| {
            json!({"line_number": l + 1, "description": format!("Consulting, phase {l}: analysis, workshops and the written report"),
                   "quantity": "10", "unit_price": "125.05", "total_price": "1250.50", "tax_amount": "125.05"})
        })
        .collect();
    json!({"invoices": {
        "id": format!("BOOKS-{n:010}"),
        "transaction_number": format!("INV-{n:010}"),
        "type": "CUSTOMER",
        "status": "AUTHORISED",
        "transaction_date": "2026-11-02",
        "due_date": "2026-12-02",
        "currency": "USD",
        "total_amount": "3751.50",
        "balance": "3751.50",
        "public_note": "Thank you for your business. Payment by bank transfer within 30 days.",
        "lines": lines,
        SENT_FIELD: wall_micros().to_string(),
    }})
}

/// What the writers share: where and how to write, and a counter for unique ids.
#[derive(Clone)]
struct Writers {
    http: reqwest::Client,
    url: String,
    auth: String,
    next: Arc<AtomicU64>,
    lines: usize,
}

impl Writers {
    async fn write_one(&self) -> Result<Duration> {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let body = Bytes::from(serde_json::to_vec(&invoice(n, self.lines))?);
        let started = Instant::now();
        let response = self
            .http
            .post(&self.url)
            .header("Authorization", &self.auth)
            .header("Content-Type", "application/json")
            .body(body)
            .send()
            .await?;
        if response.status() != reqwest::StatusCode::CREATED {
            bail!(
                "write {n} answered {}: {}",
                response.status(),
                response.text().await.unwrap_or_default()
            );
        }
        Ok(started.elapsed())
    }

    /// `clients` writing as fast as they are answered for `seconds`: writes and their latencies.
    async fn saturate(&self, clients: usize, seconds: u64) -> Result<(u64, Latencies)> {
        let deadline = Instant::now() + Duration::from_secs(seconds);
        let mut tasks = Vec::new();
        for _ in 0..clients {
            let writers = self.clone();
            tasks.push(tokio::spawn(async move {
                let mut mine = Latencies::default();
                let mut count = 0u64;
                while Instant::now() < deadline {
                    mine.record(writers.write_one().await?);
                    count += 1;
                }
                anyhow::Ok((count, mine))
            }));
        }
        let mut total = 0;
        let mut all = Latencies::default();
        for task in tasks {
            let (count, mine) = task.await??;
            total += count;
            all.merge(&mine);
        }
        Ok((total, all))
    }

    /// A steady `rate` of writes for `seconds`, spread over `clients`; the writes made.
    async fn steady(&self, clients: usize, rate: u64, seconds: u64) -> Result<u64> {
        let per_client = Duration::from_secs_f64(clients as f64 / rate.max(1) as f64);
        let deadline = Instant::now() + Duration::from_secs(seconds);
        let sent = Arc::new(AtomicU64::new(0));
        let mut tasks = Vec::new();
        for c in 0..clients {
            let (writers, sent) = (self.clone(), sent.clone());
            tasks.push(tokio::spawn(async move {
                // Clients start spread over one period: a steady rate, not bursts.
                let offset = per_client.mul_f64(c as f64 / clients as f64);
                let mut ticker =
                    tokio::time::interval_at(tokio::time::Instant::now() + offset, per_client);
                ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                while Instant::now() < deadline {
                    ticker.tick().await;
                    writers.write_one().await?;
                    sent.fetch_add(1, Ordering::Relaxed);
                }
                anyhow::Ok(())
            }));
        }
        for task in tasks {
            task.await??;
        }
        Ok(sent.load(Ordering::Relaxed))
    }
}

pub async fn run(args: Args) -> Result<()> {
    if args.clients == 0 || args.apps == 0 || args.seconds == 0 {
        bail!("--clients, --apps and --seconds must be at least 1");
    }
    let bench = BenchBus::open(&args.bus).await?;
    let dir = tempfile_dir::TempDir::new("mno-bench-mix")?;
    let mut config = PlatformConfig::for_tests(dir.path().to_owned(), Some(bench.url.clone()));
    config.webhook_linger_ms = args.linger_ms;
    let platform = Platform::start(config).await?;
    let base = platform.base_url();
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(args.clients)
        .build()?;
    let owner = super::seed::owner(&http, &base, "mix@bench.example").await?;
    let auth = owner
        .install_app(
            &http,
            &base,
            "Bench Books",
            None,
            &[("invoices", true, true)],
        )
        .await?;
    let writers = Writers {
        http: http.clone(),
        url: format!("{base}/connec/api/v2/{}/invoices", owner.org),
        auth,
        next: Arc::new(AtomicU64::new(0)),
        lines: args.lines,
    };
    let sink = Sink::start().await?;
    let record_bytes = serde_json::to_vec(&invoice(0, args.lines))?.len();
    eprintln!(
        "mix: {} clients writing {record_bytes}-byte invoices to {base}, {} subscriber apps at {}",
        args.clients, args.apps, sink.url
    );

    // The subscribers. Their consumers start a little before now, so they come
    // first: the writes with no subscriber come last, once they are gone.
    let consumers_before = consumer_count(&bench.bus.js).await?;
    let mut subscribers = Vec::new();
    for i in 0..args.apps {
        let app = owner
            .install_app_with_id(
                &http,
                &base,
                &format!("Bench Subscriber {i}"),
                Some(&format!("{}/hook/{i}", sink.url)),
                &[("invoices", true, false)],
            )
            .await?;
        subscribers.push(app.id);
    }
    super::fanout::wait_for_consumers(&bench.bus.js, consumers_before + args.apps).await?;

    // Writes and deliveries together, then the drain of what is left.
    let before = sink.stats(&http).await?;
    let delivered_before = before.records;
    let cpu = bench.cpu();
    let started = Instant::now();
    let (mixed, mixed_latency) = writers.saturate(args.clients, args.seconds).await?;
    let writing = started.elapsed();
    let mixed_rate = rate(mixed, writing);
    let during = sink
        .stats(&http)
        .await?
        .records
        .saturating_sub(delivered_before);
    let expected = mixed * args.apps as u64;
    eprintln!(
        "mix: {mixed_rate:.0} writes/s with {} subscribers; {during} of {expected} deliveries made while writing; draining",
        args.apps
    );
    let drained_at = sink
        .wait_for(&http, delivered_before + expected, Duration::from_secs(600))
        .await?;
    let drain = drained_at.saturating_duration_since(started + writing);
    let all_delivered = drained_at.saturating_duration_since(started);
    let mixed_cpu = bench.cpu().per_item_since(&cpu, mixed);
    let posts = sink.stats(&http).await?.posts - before.posts;
    let records_per_post = round1(expected as f64 / posts.max(1) as f64);
    let deliveries_rate = rate(expected, all_delivered);

    // Latency at a steady rate.
    sink.reset(&http).await?;
    let before = sink.stats(&http).await?.records;
    let cpu = bench.cpu();
    let steady = writers
        .steady(
            args.clients.min(args.rate.max(1) as usize),
            args.rate,
            args.steady_seconds,
        )
        .await?;
    sink.wait_for(
        &http,
        before + steady * args.apps as u64,
        Duration::from_secs(120),
    )
    .await?;
    let steady_cpu = bench.cpu().per_item_since(&cpu, steady);
    let latency = sink.stats(&http).await?;
    let peak_rss_mb = peak_rss_mb()?;

    // Baseline: the same writes with no subscriber.
    for app in &subscribers {
        owner.unsubscribe(&http, &base, app).await?;
    }
    wait_for_consumers_gone(&bench.bus.js, consumers_before).await?;
    let cpu = bench.cpu();
    let alone_started = Instant::now();
    let (alone, alone_latency) = writers.saturate(args.clients, args.seconds).await?;
    // Timed as the mixed phase is: the writes in flight at the deadline finish first.
    let alone_rate = rate(alone, alone_started.elapsed());
    let alone_cpu = bench.cpu().per_item_since(&cpu, alone);
    eprintln!("mix: {alone_rate:.0} writes/s with no subscriber");

    platform.shutdown().await?;
    sink.stop().await;

    // Baselines on the same server.
    let sample = Bytes::from(super::ingest::stored_invoice(&owner.org, 0).to_bytes());
    let consume = Baseline::measure("raw durable consume", || {
        super::bus::durable_consume(
            &bench.bus.js,
            "BENCH_MIX_CONSUME",
            expected.clamp(10_000, 100_000),
            sample.clone(),
            1000,
        )
    })
    .await?;
    let (_, ack) = super::bus::publish_sync(&bench.bus.js, "BENCH_MIX_SYNC", 2000, sample).await?;

    print_figures(&[
        figure(
            "mix.writes",
            "writes/s",
            mixed_rate,
            alone_rate,
            json!({"baseline_is": "writes/s of the same clients with no subscriber, this run", "target_ratio": 0.6,
                   "apps": args.apps, "clients": args.clients, "seconds": args.seconds, "record_bytes": record_bytes,
                   "writes": mixed, "baseline_writes": alone,
                   "p50_ms": mixed_latency.p50_ms(), "p99_ms": mixed_latency.p99_ms(),
                   "baseline_p50_ms": alone_latency.p50_ms(), "baseline_p99_ms": alone_latency.p99_ms(),
                   "cpu_us_per_write": mixed_cpu, "baseline_cpu_us_per_write": alone_cpu}),
        ),
        figure(
            "mix.deliveries",
            "deliveries/s",
            deliveries_rate,
            consume.median(),
            with_baseline(
                json!({"baseline_is": "raw durable consume (msg/s), median of the passes",
                       "deliveries": expected, "delivered_while_writing": during,
                       "backlog_when_writes_stopped": expected.saturating_sub(during),
                       "drain_s": round1(drain.as_secs_f64()), "writing_s": round1(writing.as_secs_f64()),
                       "cpu_us_per_delivery": per_delivery(&mixed_cpu, &alone_cpu, args.apps),
                       "records_per_post": records_per_post}),
                &consume,
            ),
        ),
        figure(
            "mix.latency",
            "ms p50",
            latency.p50_ms,
            ack.p50_ms(),
            json!({"p99_ms": latency.p99_ms, "target_p99_ms": 25, "rate": args.rate, "writes": steady,
                   "deliveries": latency.latencies, "measured": "write request sent to webhook received",
                   "baseline_is": "raw publish-ack p50 (ms)", "cpu_us_per_write": steady_cpu}),
        ),
        figure(
            "mix.memory",
            "MB peak RSS",
            peak_rss_mb,
            300.0,
            json!({"baseline_is": "the target (MB)", "of": "this process: the platform and the writing clients",
                   "deliveries": expected, "backlog_when_writes_stopped": expected.saturating_sub(during)}),
        ),
    ]);
    bench.close().await
}

fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

/// What one delivery adds to a write's CPU: the write's cost with `apps`
/// subscribers less its cost with none, shared by its `apps` deliveries.
fn per_delivery(with: &Value, without: &Value, apps: usize) -> Value {
    let share = |key: &str| {
        let added = with[key].as_f64()? - without[key].as_f64()?;
        Some(round1(added / apps.max(1) as f64))
    };
    json!({"mno": share("mno"), "nats_server": share("nats_server")})
}

/// This process's peak resident memory, from /proc (Linux).
fn peak_rss_mb() -> Result<f64> {
    let status = std::fs::read_to_string("/proc/self/status").context("read /proc/self/status")?;
    let kb = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse::<f64>().ok())
        .context("no VmHWM in /proc/self/status")?;
    Ok(kb / 1024.0)
}

async fn consumer_count(js: &async_nats::jetstream::Context) -> Result<usize> {
    Ok(js
        .get_stream(RECORDS)
        .await?
        .info()
        .await?
        .state
        .consumer_count)
}

/// Wait until RECORDS is back to `count` consumers (the subscribers' are deleted).
async fn wait_for_consumers_gone(js: &async_nats::jetstream::Context, count: usize) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let now = consumer_count(js).await?;
        if now <= count {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("{now} consumers of RECORDS are left 30 s after the subscribers stopped sharing, not {count}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The webhook receivers: `mno bench webhook-sink`, a child process.
struct Sink {
    child: tokio::process::Child,
    url: String,
}

#[derive(serde::Deserialize)]
struct SinkStats {
    records: u64,
    posts: u64,
    latencies: u64,
    p50_ms: f64,
    p99_ms: f64,
}

impl Sink {
    async fn start() -> Result<Sink> {
        let mut child = tokio::process::Command::new(std::env::current_exe()?)
            .args(["bench", "webhook-sink"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .context("start the webhook sink")?;
        let stdout = child.stdout.take().context("the sink's stdout")?;
        let mut first = String::new();
        tokio::time::timeout(
            Duration::from_secs(30),
            tokio::io::BufReader::new(stdout).read_line(&mut first),
        )
        .await
        .context("the sink did not say where it listens within 30 s")??;
        let url = serde_json::from_str::<Value>(&first)?["url"]
            .as_str()
            .with_context(|| format!("no url in the sink's first line {first:?}"))?
            .to_owned();
        Ok(Sink { child, url })
    }

    async fn stats(&self, http: &reqwest::Client) -> Result<SinkStats> {
        Ok(http
            .get(format!("{}/stats", self.url))
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?)
    }

    async fn reset(&self, http: &reqwest::Client) -> Result<()> {
        http.post(format!("{}/stats/reset", self.url))
            .send()
            .await?
            .error_for_status()?;
        Ok(())
    }

    /// Wait until the sink has seen `records`; when it had.
    async fn wait_for(
        &self,
        http: &reqwest::Client,
        records: u64,
        limit: Duration,
    ) -> Result<Instant> {
        let deadline = Instant::now() + limit;
        let mut last_report = Instant::now();
        loop {
            let seen = self.stats(http).await?.records;
            if seen >= records {
                return Ok(Instant::now());
            }
            if Instant::now() > deadline {
                bail!("only {seen} of {records} deliveries arrived in {limit:?}");
            }
            if last_report.elapsed() > Duration::from_secs(5) {
                eprintln!("mix: {seen} of {records} deliveries");
                last_report = Instant::now();
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_invoice_carries_the_apps_own_id_and_its_send_time() {
        let body = invoice(7, 3);
        assert_eq!(body["invoices"]["id"], "BOOKS-0000000007");
        assert_eq!(body["invoices"]["lines"].as_array().unwrap().len(), 3);
        let bytes = serde_json::to_vec(&body).unwrap();
        assert!((800..1100).contains(&bytes.len()), "{} bytes", bytes.len());
        assert_eq!(super::super::sink::sent_times(&bytes).len(), 1);
    }

    #[test]
    fn a_delivery_costs_what_subscribers_add_to_a_write() {
        let shared = per_delivery(
            &json!({"mno": 500.0, "nats_server": null}),
            &json!({"mno": 300.0, "nats_server": 40.0}),
            10,
        );
        assert_eq!(shared, json!({"mno": 20.0, "nats_server": null}));
    }
}
