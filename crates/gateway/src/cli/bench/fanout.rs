//! `mno bench fanout`: record changes fanned out to N subscribing apps by
//! signed webhook POSTs to real HTTP receivers in this process.
//!
//! - `fanout.latency`: publish-to-received p50 (and p99) at a steady rate;
//!   baseline: the raw bus's publish-ack p50 measured in the same run.
//! - `fanout.deliveries`: deliveries/s at saturation (a backlog of events
//!   drained to every app: one delivery = one event received by one app);
//!   baseline: raw durable consume with explicit ack of as many messages,
//!   same run. The drain is timed from the start of delivery (the apps'
//!   consumers being set up included) to the last delivery received.
//!
//! Both print the CPU one delivery cost (`cpu_us_per_delivery`: this process,
//! its receivers and publisher included, and the private nats-server): a
//! steady trickle and a backlog cost differently, and `bench mix` is a trickle.
//!
//! A real Hub (SQLite in a temp dir) holds the org, the apps and the installs;
//! delivery reads them through the Hub's directory, as in `mno up`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use axum::body::Bytes;
use axum::extract::State;
use axum::routing::post;
use bytes::Bytes as Payload;
use mno_connec_sync::delivery::{Delivery, DeliveryConfig, DeliveryDeps};
use mno_events::directory::{AppStack, SharedEntity};
use mno_events::envelope::{canonical_json, new_event_id};
use mno_events::proto::{Op, RecordEvent};
use mno_events::publish::{Outgoing, Publisher};
use mno_events::streams::RECORDS;
use mno_hub::{Hub, HubConfig, HubDeps};
use serde_json::json;

use super::report::{
    figure, print_figures, rate, tempfile_dir, with_baseline, Baseline, BenchBus, BusChoice,
    Latencies,
};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub bus: BusChoice,
    /// Subscribing apps, each with its own receiver.
    #[arg(long, default_value_t = 10)]
    pub apps: usize,
    /// Events per second in the latency phase.
    #[arg(long, default_value_t = 1000)]
    pub rate: u64,
    /// Seconds of the latency phase.
    #[arg(long, default_value_t = 5)]
    pub seconds: u64,
    /// Events in the saturation backlog (each goes to every app).
    #[arg(long, default_value_t = 30_000)]
    pub backlog: u64,
    /// Most events in one POST.
    #[arg(long, default_value_t = 100)]
    pub batch: usize,
    /// Unacknowledged events each app may hold.
    #[arg(long, default_value_t = DeliveryConfig::default().max_ack_pending)]
    pub max_ack_pending: i64,
    /// POSTs in flight to one app at once.
    #[arg(long, default_value_t = DeliveryConfig::default().max_in_flight)]
    pub in_flight: usize,
    /// Distinct records the events change (each record is one subject on the bus).
    #[arg(long, default_value_t = 100_000)]
    pub records: u64,
}

/// What the receivers saw, shared by all of them.
struct Seen {
    base: Instant,
    deliveries: AtomicU64,
    latencies: Mutex<Latencies>,
}

pub async fn run(args: Args) -> Result<()> {
    let bench = BenchBus::open(&args.bus).await?;
    let js = bench.bus.js.clone();
    mno_events::streams::provision_all(&js, 1).await?;
    let dir = tempfile_dir::TempDir::new("mno-bench-fanout")?;
    let db = mno_events::db::open(&mno_events::db::sqlite_url(dir.path())).await?;
    let hub = Hub::start(HubDeps {
        bus: bench.bus.clone(),
        db,
        config: HubConfig::default(),
    })
    .await?;
    let seen = Arc::new(Seen {
        base: Instant::now(),
        deliveries: AtomicU64::new(0),
        latencies: Mutex::new(Latencies::default()),
    });
    let mut urls = Vec::new();
    for _ in 0..args.apps {
        urls.push(receiver(seen.clone()).await?);
    }
    let org = seed(&hub, &urls).await?;
    let config = DeliveryConfig {
        allow_private_webhooks: true,
        batch_max: args.batch.max(1),
        max_in_flight: args.in_flight.max(1),
        max_ack_pending: args.max_ack_pending.max(1),
        ..Default::default()
    };
    // One delivering process: this one, holding every app's lease.
    let leases = mno_events::lease::Leases::open(
        &js,
        Some(1),
        format!("mno-bench-fanout-{}", std::process::id()),
    )
    .await?;
    let start_delivery = || {
        Delivery::start(DeliveryDeps {
            bus: bench.bus.clone(),
            idm: hub.idm(),
            directory: hub.directory(),
            config: config.clone(),
            ids: None,
            refs: None,
            db: None,
            ownership: Some(leases.clone()),
        })
    };
    let delivery = start_delivery().await?;
    wait_for_consumers(&js, args.apps).await?;
    eprintln!(
        "fan-out to {} apps at {}: {} events/s for {} s, then a backlog of {}",
        args.apps, bench.url, args.rate, args.seconds, args.backlog
    );

    // Phase 1: a steady rate; latency from publish to receipt.
    let publisher = Publisher::new(js.clone(), RECORDS);
    let cpu = bench.cpu();
    let steady = args.rate * args.seconds;
    let tick = Duration::from_millis(10);
    let per_tick = (args.rate as f64 * tick.as_secs_f64()).max(1.0) as u64;
    let mut ticker = tokio::time::interval(tick);
    let mut sent = 0;
    while sent < steady {
        ticker.tick().await;
        let n = per_tick.min(steady - sent);
        let batch: Vec<Outgoing> = (sent..sent + n)
            .map(|i| event(&org, "invoices", i, args.records, &seen))
            .collect();
        for result in publisher.publish_pipelined(batch, 1000).await {
            result.context("publish a bench event")?;
        }
        sent += n;
    }
    wait_deliveries(&seen, steady * args.apps as u64, Duration::from_secs(60)).await?;
    // Publishing the events and receiving them are in this process too: a
    // delivery's cost here includes its share of both.
    let steady_cpu = bench.cpu().per_item_since(&cpu, steady * args.apps as u64);
    let latency = std::mem::take(&mut *seen.latencies.lock().expect("latencies"));

    // Phase 2: a backlog written while delivery is stopped, then drained.
    delivery.shutdown().await;
    let events: Vec<Outgoing> = (0..args.backlog)
        .map(|i| event(&org, "invoices", steady + i, args.records, &seen))
        .collect();
    for result in publisher.publish_pipelined(events, 1000).await {
        result.context("publish the backlog")?;
    }
    let before = seen.deliveries.load(Ordering::Relaxed);
    let cpu = bench.cpu();
    let started = Instant::now();
    let delivery = start_delivery().await?;
    let expected = args.backlog * args.apps as u64;
    wait_deliveries(&seen, before + expected, Duration::from_secs(120)).await?;
    let drained = started.elapsed();
    let drain_cpu = bench.cpu().per_item_since(&cpu, expected);
    delivery.shutdown().await;
    hub.shutdown().await;

    // Baselines on the same server, same envelope size.
    let sample = event(&org, "invoices", 0, args.records, &seen).payload;
    // Measured several times: one slow pass must not make the ratio.
    let baseline_count = expected.clamp(10_000, 200_000);
    let consume = Baseline::measure("raw durable consume", || {
        super::bus::durable_consume(&js, "BENCH_CONSUME", baseline_count, sample.clone(), 1000)
    })
    .await?;
    let (_, ack) = super::bus::publish_sync(&js, "BENCH_SYNC", 2000, sample).await?;

    let deliveries_per_s = rate(expected, drained);
    print_figures(&[
        figure(
            "fanout.latency",
            "ms p50",
            latency.p50_ms(),
            ack.p50_ms(),
            json!({"p99_ms": latency.p99_ms(), "baseline_is": "raw publish-ack p50 (ms)",
                   "apps": args.apps, "rate": args.rate, "events": steady,
                   "deliveries": latency.count(), "cpu_us_per_delivery": steady_cpu}),
        ),
        figure(
            "fanout.deliveries",
            "deliveries/s",
            deliveries_per_s,
            consume.median(),
            with_baseline(
                json!({"baseline_is": "raw durable consume (msg/s), median of the passes", "baseline_messages": baseline_count,
                       "apps": args.apps, "backlog": args.backlog, "batch": args.batch, "records": args.records,
                       "cpu_us_per_delivery": drain_cpu}),
                &consume,
            ),
        ),
    ]);
    bench.close().await
}

/// One change to record `i % records`; its state carries the publish time for the receivers.
fn event(org: &str, entity: &str, i: u64, records: u64, seen: &Seen) -> Outgoing {
    let record = format!("r{}", i % records.max(1));
    let micros = seen.base.elapsed().as_micros() as u64;
    let state =
        json!({"title": format!("bench {i}"), "amount": "125.00", "currency": "USD", "t": micros});
    let event = RecordEvent {
        event_id: new_event_id(),
        org: org.to_owned(),
        entity: entity.to_owned(),
        record_id: record.clone(),
        op: Op::Updated as i32,
        version: i / records.max(1) + 1,
        state: canonical_json(&state),
        ..Default::default()
    };
    Outgoing::new(
        format!("rec.{org}.{entity}.{record}"),
        event.event_id.clone(),
        Payload::from(event.to_bytes()),
    )
}

/// A receiver on a free port counting deliveries and their latency; returns its URL.
async fn receiver(seen: Arc<Seen>) -> Result<String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/hook", listener.local_addr()?);
    let app = axum::Router::new()
        .route("/hook", post(receive))
        .with_state(seen);
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(url)
}

async fn receive(State(seen): State<Arc<Seen>>, body: Bytes) -> &'static str {
    let now = seen.base.elapsed().as_micros() as u64;
    // Each record carries "t":<publish micros>; scanning for it is all a receiver needs here.
    let mut sent_at = Vec::new();
    let mut rest: &[u8] = &body;
    while let Some(at) = rest.windows(4).position(|w| w == b"\"t\":") {
        rest = &rest[at + 4..];
        let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
        if let Some(t) = std::str::from_utf8(&rest[..digits])
            .ok()
            .and_then(|d| d.parse::<u64>().ok())
        {
            sent_at.push(t);
        }
    }
    let mut latencies = seen.latencies.lock().expect("latencies");
    for t in &sent_at {
        latencies.record(Duration::from_micros(now.saturating_sub(*t)));
    }
    drop(latencies);
    seen.deliveries
        .fetch_add(sent_at.len() as u64, Ordering::Relaxed);
    "{}"
}

/// One org with `urls.len()` apps installed, each subscribed to invoices.
async fn seed(hub: &Hub, urls: &[String]) -> Result<String> {
    use mno_hub::store::{apps, installs, orgs, users};
    let store = hub.store();
    let owner = users::create(store, "bench@example.com", "Bench", "not-a-login").await?;
    let org = orgs::create(store, &owner.id, "Bench Org", "USD", "UTC", "US").await?;
    for (i, url) in urls.iter().enumerate() {
        let (app, _) = apps::create(
            store,
            &owner.id,
            format!("Bench App {i}"),
            AppStack::Cloud,
            Some(url.clone()),
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
    }
    Ok(org.id)
}

/// Wait until RECORDS has at least `apps` consumers.
pub async fn wait_for_consumers(js: &async_nats::jetstream::Context, apps: usize) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let mut stream = js.get_stream(RECORDS).await?;
        let count = stream.info().await?.state.consumer_count;
        if count >= apps {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("only {count} of {apps} delivery consumers appeared in 30 s");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn wait_deliveries(seen: &Seen, target: u64, limit: Duration) -> Result<()> {
    let deadline = Instant::now() + limit;
    while seen.deliveries.load(Ordering::Relaxed) < target {
        if Instant::now() > deadline {
            bail!(
                "only {} of {target} deliveries arrived in {limit:?}",
                seen.deliveries.load(Ordering::Relaxed)
            );
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    Ok(())
}
