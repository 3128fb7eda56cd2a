//! `mno bench ingest`: records written through the HTTP write API of a whole
//! platform in this process (validation, IDM check, id map, publish, ack),
//! with N concurrent clients; then at half that rate for latency.
//!
//! - `ingest`: records/s at saturation, p50/p99; baseline: raw pipelined
//!   publish of the same envelope bytes (window 1000), same run.
//! - `ingest.half_load`: p50/p99 at a steady half of the measured rate.
//! - `ingest.batch`: records/s when the same records come in `POST /connec/batch`
//!   requests of `--batch` independent creates (`"sequential": false`).
//!
//! `--edges N` serves HTTP from N `mno serve --role edge` processes (the
//! clients spread over them) and runs the other roles in this process: the
//! cost of the platform as several processes (`edge_processes` in the figures).
//!
//! Each phase also prints the CPU one record cost this process and the private
//! nats-server (`cpu_us_per_record`), beside what a raw publish cost: rates
//! move with the machine's other load, costs much less. `reference_publish`
//! is the bus alone, publishing the same bytes as the write path does.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use bytes::Bytes;
use mno_events::envelope::{canonical_json, new_event_id};
use mno_events::proto::{Op, RecordEvent};
use serde_json::{json, Value};
use tokio::sync::Mutex;

use super::bus::{publish_pipelined, publish_pipelined_as_creates};
use super::http_floor::HttpFloor;
use super::report::{
    figure, print_figures, rate, tempfile_dir, with_baseline, Baseline, BenchBus, BusChoice,
    Latencies,
};
use crate::config::PlatformConfig;
use crate::platform::Platform;
use crate::roles::Roles;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub bus: BusChoice,
    /// Concurrent HTTP clients.
    #[arg(long, default_value_t = 32)]
    pub clients: usize,
    /// Records written in the saturation phase.
    #[arg(long, default_value_t = 20_000)]
    pub records: u64,
    /// Seconds of the half-load phase.
    #[arg(long, default_value_t = 5)]
    pub seconds: u64,
    /// Creates per `POST /connec/batch` request (`"sequential": false`) in the batch phase.
    #[arg(long, default_value_t = 100)]
    pub batch: u64,
    /// Serve HTTP from this many `mno serve --role edge` processes (clients
    /// spread over them), the other roles in this process; 0: every role in
    /// this process. CPU per record counts every mno process.
    #[arg(long, default_value_t = 0)]
    pub edges: usize,
}

/// What the bench reads of a batch's answer.
#[derive(serde::Deserialize)]
struct BatchAnswer {
    results: Vec<OpStatus>,
}

#[derive(serde::Deserialize)]
struct OpStatus {
    status: u16,
}

fn json_bytes(value: &Value) -> Bytes {
    Bytes::from(serde_json::to_vec(value).expect("a Value always serialises"))
}

/// An invoice like an accounting app sends.
fn invoice(i: u64) -> Value {
    json!({"invoices": {
        "transaction_number": format!("INV-{i:08}"),
        "type": "CUSTOMER",
        "status": "AUTHORISED",
        "transaction_date": "2026-11-02",
        "due_date": "2026-12-02",
        "currency": "USD",
        "total_amount": "1250.50",
        "balance": "1250.50",
        "lines": [{"description": "Consulting", "quantity": "10", "unit_price": "125.05", "total_price": "1250.50"}]
    }})
}

pub async fn run(args: Args) -> Result<()> {
    if args.clients == 0 || args.records == 0 {
        bail!("--clients and --records must be at least 1");
    }
    let bench = BenchBus::open(&args.bus).await?;
    let dir = tempfile_dir::TempDir::new("mno-bench-ingest")?;
    let roles = match args.edges {
        0 => Roles::all(),
        _ => Roles::parse("workers")?,
    };
    let platform = Platform::start_roles(
        PlatformConfig::for_tests(dir.path().to_owned(), Some(bench.url.clone())),
        roles,
    )
    .await?;
    let edges = match args.edges {
        0 => None,
        n => Some(super::edges::start(n, &bench, &platform, dir.path())?),
    };
    let bases = match &edges {
        Some(edges) => edges.bases.clone(),
        None => vec![platform.base_url()],
    };
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(args.clients)
        .build()?;
    let (org, auth) = seed(&http, &bases[0]).await?;
    let urls: Vec<String> = bases
        .iter()
        .map(|base| format!("{base}/connec/api/v2/{org}/invoices"))
        .collect();
    eprintln!(
        "ingest: {} records through {} with {} clients",
        args.records,
        urls.join(" and "),
        args.clients
    );

    // Saturation: every client writes as fast as it is answered. The bodies are
    // serialised before the clock starts: the load generator shares the CPU.
    let bodies: Arc<Vec<Bytes>> =
        Arc::new((0..args.records).map(|i| json_bytes(&invoice(i))).collect());
    let cpu_before = bench.cpu();
    let (elapsed, saturation) = saturate(&http, &urls, Some(&auth), &bodies, args.clients).await?;
    let saturated = rate(args.records, elapsed);
    let saturation_cpu = bench.cpu().per_item_since(&cpu_before, args.records);

    // The same envelope bytes, published raw and pipelined, as the baseline.
    let sample = envelope_bytes(&org);
    // Measured several times: one slow pass must not make the ratio.
    let cpu_before = bench.cpu();
    let raw = Baseline::measure("raw pipelined publish", || {
        publish_pipelined(
            &bench.bus.js,
            "BENCH_INGEST_RAW",
            args.records,
            sample.clone(),
            1000,
        )
    })
    .await?;
    let raw_cpu = bench
        .cpu()
        .per_item_since(&cpu_before, args.records * raw.samples.len() as u64);
    // The HTTP floor: the same clients and bodies against a handler that only
    // parses the JSON and does one acknowledged publish.
    let floor = HttpFloor::start(&bench.bus.js).await?;
    let floor_url = floor.url(&org, "invoices");
    let cpu_before = bench.cpu();
    let floor_latencies = Arc::new(Mutex::new(Latencies::default()));
    let floor_rate = Baseline::measure("HTTP floor", || {
        let (http, url, bodies, latencies) = (&http, &floor_url, &bodies, floor_latencies.clone());
        async move {
            let (elapsed, pass) =
                saturate(http, std::slice::from_ref(url), None, bodies, args.clients).await?;
            latencies.lock().await.merge(&pass);
            Ok(rate(args.records, elapsed))
        }
    })
    .await?;
    let floor_cpu = bench
        .cpu()
        .per_item_since(&cpu_before, args.records * floor_rate.samples.len() as u64);
    floor.stop().await?;
    let floor_latencies = floor_latencies.lock().await;

    // For reference: the same bytes published as the write path publishes them.
    let cpu_before = bench.cpu();
    let as_creates = publish_pipelined_as_creates(
        &bench.bus.js,
        "BENCH_INGEST_AS_CREATES",
        args.records,
        sample.clone(),
        1000,
    )
    .await?;
    let as_creates_cpu = bench.cpu().per_item_since(&cpu_before, args.records);
    let as_creates = json!({
        "of": "pipelined publish of the same bytes, one subject each, with Nats-Msg-Id and expected last subject sequence 0",
        "rate": as_creates.round(),
        "cpu_us_per_record": as_creates_cpu,
    });

    // Half load: a steady rate, each client on its own schedule.
    let target = (saturated / 2.0).max(1.0);
    eprintln!(
        "ingest: {saturated:.0} records/s at saturation; now {target:.0}/s for {} s",
        args.seconds
    );
    let per_client = Duration::from_secs_f64(args.clients as f64 / target);
    let deadline = Instant::now() + Duration::from_secs(args.seconds);
    let half = Arc::new(Mutex::new(Latencies::default()));
    let sent = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let half_started = Instant::now();
    let mut tasks = Vec::new();
    let clients = args.clients;
    for c in 0..args.clients {
        let (http, url, auth, half, sent) = (
            http.clone(),
            urls[c % urls.len()].clone(),
            auth.clone(),
            half.clone(),
            sent.clone(),
        );
        tasks.push(tokio::spawn(async move {
            // Clients start spread over one period: a steady rate, not bursts of every client at once.
            let offset = per_client.mul_f64(c as f64 / clients as f64);
            let mut ticker =
                tokio::time::interval_at(tokio::time::Instant::now() + offset, per_client);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut mine = Latencies::default();
            let mut i = 0u64;
            while Instant::now() < deadline {
                ticker.tick().await;
                let t = Instant::now();
                let n = 1_000_000_000 + (c as u64) * 10_000_000 + i;
                let response = http
                    .post(&url)
                    .header("Authorization", &auth)
                    .json(&invoice(n))
                    .send()
                    .await?;
                if !response.status().is_success() {
                    bail!("write answered {}", response.status());
                }
                mine.record(t.elapsed());
                sent.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                i += 1;
            }
            half.lock().await.merge(&mine);
            Ok(())
        }));
    }
    for task in tasks {
        task.await??;
    }
    let half_rate = rate(
        sent.load(std::sync::atomic::Ordering::Relaxed),
        half_started.elapsed(),
    );
    let half = half.lock().await;

    // Bulk: the same records through `POST /connec/batch`, independent ops run concurrently.
    let batch_urls: Vec<String> = bases
        .iter()
        .map(|base| format!("{base}/connec/batch"))
        .collect();
    let batch = args.batch.clamp(1, 100);
    let requests = args.records.div_ceil(batch);
    let batch_bodies: Arc<Vec<Bytes>> = Arc::new(
        (0..requests)
            .map(|r| {
                let ops: Vec<Value> = (0..batch)
                    .map(|k| {
                        let n = 2_000_000_000 + r * batch + k;
                        json!({"method": "post", "url": format!("/api/v2/{org}/invoices"), "params": invoice(n)})
                    })
                    .collect();
                json_bytes(&json!({"sequential": false, "ops": ops}))
            })
            .collect(),
    );
    let next = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let batches = Arc::new(Mutex::new(Latencies::default()));
    eprintln!("ingest: {} records in batches of {batch}", requests * batch);
    let cpu_before = bench.cpu();
    let batch_started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..args.clients {
        let (http, url, auth, next, batches, bodies) = (
            http.clone(),
            batch_urls[c % batch_urls.len()].clone(),
            auth.clone(),
            next.clone(),
            batches.clone(),
            batch_bodies.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut mine = Latencies::default();
            loop {
                let r = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if r >= requests {
                    break;
                }
                let t = Instant::now();
                let response = http
                    .post(&url)
                    .header("Authorization", &auth)
                    .header("Content-Type", "application/json")
                    .body(bodies[r as usize].clone())
                    .send()
                    .await?;
                let body = response.bytes().await?;
                // Only the statuses are read; the records in the answer are skipped unparsed.
                let created = serde_json::from_slice::<BatchAnswer>(&body)
                    .map_or(0, |a| a.results.iter().filter(|r| r.status == 201).count());
                if created as u64 != batch {
                    bail!(
                        "batch {r}: {created} of {batch} created: {}",
                        String::from_utf8_lossy(&body)
                    );
                }
                mine.record(t.elapsed());
            }
            batches.lock().await.merge(&mine);
            Ok(())
        }));
    }
    for task in tasks {
        task.await??;
    }
    let batch_rate = rate(requests * batch, batch_started.elapsed());
    let batch_cpu = bench.cpu().per_item_since(&cpu_before, requests * batch);
    let batches = batches.lock().await;

    print_figures(&[
        figure(
            "ingest",
            "records/s",
            saturated,
            raw.median(),
            with_baseline(
                json!({"baseline_of": "raw pipelined publish of the same envelope bytes (median of the passes)",
                       "envelope_bytes": sample.len(), "clients": args.clients, "records": args.records,
                       "edge_processes": args.edges,
                       "p50_ms": saturation.p50_ms(), "p99_ms": saturation.p99_ms(),
                       "cpu_us_per_record": saturation_cpu, "baseline_cpu_us_per_record": raw_cpu,
                       "reference_publish": as_creates}),
                &raw,
            ),
        ),
        figure(
            "ingest.vs_http_floor",
            "records/s",
            saturated,
            floor_rate.median(),
            with_baseline(
                json!({"baseline_of": "the HTTP floor: the same clients and bodies against a handler that parses the JSON and does one acknowledged publish to a per-record subject (median of the passes)",
                       "target_ratio": 0.5,
                       "cpu_us_per_record": saturation_cpu, "baseline_cpu_us_per_record": floor_cpu,
                       "baseline_p50_ms": floor_latencies.p50_ms(), "baseline_p99_ms": floor_latencies.p99_ms()}),
                &floor_rate,
            ),
        ),
        figure(
            "ingest.half_load",
            "records/s",
            half_rate,
            raw.median(),
            json!({"target_rate": target.round(), "p50_ms": half.p50_ms(), "p99_ms": half.p99_ms(), "seconds": args.seconds,
                   "edge_processes": args.edges}),
        ),
        figure(
            "ingest.batch",
            "records/s",
            batch_rate,
            raw.median(),
            json!({"baseline_of": "raw pipelined publish of the same envelope bytes", "clients": args.clients,
                   "records": requests * batch, "ops_per_request": batch,
                   "request_p50_ms": batches.p50_ms(), "request_p99_ms": batches.p99_ms(),
                   "cpu_us_per_record": batch_cpu, "edge_processes": args.edges}),
        ),
    ]);
    drop(floor_latencies);
    drop(half);
    drop(batches);
    drop(edges);
    platform.shutdown().await?;
    bench.close().await
}

/// Every client posts the next of `bodies` as soon as its last one was
/// answered 201, until all are written: how long it took, and each write's
/// latency. Client `c` writes to `urls[c % urls.len()]` (one URL an edge).
async fn saturate(
    http: &reqwest::Client,
    urls: &[String],
    auth: Option<&str>,
    bodies: &Arc<Vec<Bytes>>,
    clients: usize,
) -> Result<(Duration, Latencies)> {
    let next = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let latencies = Arc::new(Mutex::new(Latencies::default()));
    let total = bodies.len() as u64;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..clients {
        let (http, url, auth, next, latencies, bodies) = (
            http.clone(),
            urls[c % urls.len()].clone(),
            auth.map(str::to_owned),
            next.clone(),
            latencies.clone(),
            bodies.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut mine = Latencies::default();
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= total {
                    break;
                }
                let t = Instant::now();
                let mut request = http
                    .post(&url)
                    .header("Content-Type", "application/json")
                    .body(bodies[i as usize].clone());
                if let Some(auth) = &auth {
                    request = request.header("Authorization", auth);
                }
                let response = request.send().await?;
                if response.status() != reqwest::StatusCode::CREATED {
                    bail!(
                        "write {i} to {url} answered {}: {}",
                        response.status(),
                        response.text().await.unwrap_or_default()
                    );
                }
                mine.record(t.elapsed());
            }
            latencies.lock().await.merge(&mine);
            Ok(())
        }));
    }
    for task in tasks {
        task.await??;
    }
    let elapsed = started.elapsed();
    let latencies = std::mem::take(&mut *latencies.lock().await);
    Ok((elapsed, latencies))
}

/// The bytes of one stored invoice event, as the write path publishes it.
fn envelope_bytes(org: &str) -> Bytes {
    Bytes::from(stored_invoice(org, 0).to_bytes())
}

/// Invoice `i` of [`invoice`] as the record event the write path stores for it.
pub fn stored_invoice(org: &str, i: u64) -> RecordEvent {
    let record_id = uuid::Uuid::now_v7().to_string();
    let mut state = invoice(i)["invoices"].clone();
    state["id"] = json!(record_id);
    state["group_id"] = json!(org);
    state["created_at"] = json!(chrono::Utc::now().to_rfc3339());
    state["updated_at"] = state["created_at"].clone();
    let now = mno_events::envelope::to_timestamp(chrono::Utc::now());
    RecordEvent {
        event_id: new_event_id(),
        org: org.to_owned(),
        entity: "invoices".into(),
        record_id,
        op: Op::Created as i32,
        version: 1,
        source: Some(mno_events::proto::Source {
            app_id: uuid::Uuid::now_v7().to_string(),
            local_id: String::new(),
        }),
        actor: Some(mno_events::proto::Actor {
            kind: "app".into(),
            id: uuid::Uuid::now_v7().to_string(),
        }),
        occurred_at: Some(now),
        recorded_at: Some(now),
        changed_fields: state
            .as_object()
            .map(|o| o.keys().cloned().collect())
            .unwrap_or_default(),
        correlation_id: uuid::Uuid::now_v7().to_string(),
        state: canonical_json(&state),
        merged_record_ids: vec![],
    }
}

/// A user, an org and an installed app with write on invoices; the app's Basic auth header.
async fn seed(http: &reqwest::Client, base: &str) -> Result<(String, String)> {
    let owner = super::seed::owner(http, base, "ingest@bench.example").await?;
    let auth = owner
        .install_app(http, base, "Bench Books", None, &[("invoices", true, true)])
        .await?;
    Ok((owner.org, auth))
}
