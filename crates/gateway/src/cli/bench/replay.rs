//! `mno bench replay`: how fast Impac! rebuilds its records projection from
//! sequence 1 (fold, SQL, checkpoint) and computes P&L and aged receivables,
//! against a raw ordered replay of the same stream in the same run.

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use async_nats::jetstream::{self, consumer::pull};
use bytes::Bytes;
use futures::stream::{FuturesOrdered, StreamExt};
use mno_events::proto::{Op, RecordEvent};
use mno_impac_projector::widgets;
use mno_impac_projector::widgets::money::{Converter, Rate};
use mno_impac_projector::{rebuild, records};
use serde_json::{json, Value};

use super::report::{figure, print_figures, rate, BenchBus, BusChoice};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub bus: BusChoice,
    /// Invoice events in the stream (a million fills and rebuilds in well under a minute here).
    #[arg(long, default_value_t = 1_000_000)]
    pub events: u64,
    /// Organisations the invoices belong to.
    #[arg(long, default_value_t = 50)]
    pub orgs: u64,
    /// Invoices per organisation (each created, then changed at random).
    #[arg(long, default_value_t = 400)]
    pub records_per_org: u64,
    /// Publish acks in flight while filling the stream.
    #[arg(long, default_value_t = 1000)]
    pub window: usize,
}

pub async fn run(args: Args) -> Result<()> {
    let bench = BenchBus::open(&args.bus).await?;
    let js = &bench.bus.js;
    mno_events::streams::provision_all(js, 1).await?;
    eprintln!(
        "filling RECORDS at {} with {} invoice events ({} orgs x {} invoices)",
        bench.url, args.events, args.orgs, args.records_per_org
    );
    let traffic = InvoiceTraffic::new(1, args.orgs, args.records_per_org);
    let last_seq = fill(js, traffic.take(args.events as usize), args.window).await?;

    // The raw bus: an ordered replay of the same stream from sequence 1.
    let raw = ordered_read(js, args.events).await?;
    eprintln!("raw ordered replay: {:.0} events/s", rate(args.events, raw));

    // Impac!: a fresh database, the records projection rebuilt from sequence 1
    // until caught up, then P&L and aged receivables over every org.
    let dir = super::report::tempfile_dir::TempDir::new("mno-bench-replay")?;
    let db = mno_events::db::open(&mno_events::db::sqlite_url(dir.path())).await?;
    mno_impac_projector::migrate(&db).await?;
    let started = Instant::now();
    let caught_up =
        rebuild::catch_up(js, &db, records::VERSION, last_seq, |p| eprintln!("{p}")).await?;
    let folded = started.elapsed();
    let orgs: Vec<String> = (0..args.orgs).map(InvoiceTraffic::org_name).collect();
    let snapshot = records::load(&db, records::VERSION, &orgs).await?;
    // The parameters as the widget route parses them.
    let params = mno_impac_projector::query::widget_params(
        &mno_impac_projector::query::parse_query(Some("to=2026-12-31&period=MONTHLY")),
    )
    .map_err(|e| anyhow::anyhow!("{:?}", e.errors))?;
    let converter = Converter::new("USD", bench_rates());
    let pnl = widgets::compute("accounts/profit_and_loss", &snapshot, &params, &converter)?;
    let aged = widgets::compute(
        "invoices/aged_payables_receivables",
        &snapshot,
        &params,
        &converter,
    )?;
    let total = started.elapsed();
    db.close().await;
    eprintln!(
        "rebuilt {} events in {:.2}s, widgets in {:.2}s: revenue {}, receivables {}",
        caught_up.events,
        folded.as_secs_f64(),
        (total - folded).as_secs_f64(),
        pnl["totals"]["revenue"],
        aged["receivables"]["total"]
    );
    print_figures(&[figure(
        "impac.replay",
        "events/s",
        rate(caught_up.events, total),
        rate(args.events, raw),
        json!({
            "events": caught_up.events,
            "orgs": args.orgs,
            "records": args.orgs * args.records_per_org,
            "rebuild_s": folded.as_secs_f64(),
            "widgets_s": (total - folded).as_secs_f64(),
            "raw_replay_s": raw.as_secs_f64(),
        }),
    )]);
    bench.close().await
}

fn bench_rates() -> std::collections::HashMap<(String, String), Rate> {
    std::collections::HashMap::from([(
        ("EUR".to_owned(), "USD".to_owned()),
        Rate {
            rate: "1.085".parse().expect("a decimal"),
            as_of: "2026-11-01".into(),
            source: "bench".into(),
        },
    )])
}

/// Publish the events pipelined (`window` acks in flight); the last sequence.
async fn fill(
    js: &jetstream::Context,
    events: impl Iterator<Item = Generated>,
    window: usize,
) -> Result<u64> {
    let mut in_flight = FuturesOrdered::new();
    let mut last = 0;
    for event in events {
        if in_flight.len() >= window {
            let ack: jetstream::publish::PublishAck =
                in_flight.next().await.expect("window is not empty")?;
            last = ack.sequence;
        }
        let ack = js.publish(event.subject, event.payload).await?;
        in_flight.push_back(std::future::IntoFuture::into_future(ack));
    }
    while let Some(ack) = in_flight.next().await {
        last = ack?.sequence;
    }
    Ok(last)
}

/// Read `count` messages of RECORDS with an ordered consumer from sequence 1.
async fn ordered_read(js: &jetstream::Context, count: u64) -> Result<Duration> {
    let stream = js.get_stream_no_info(mno_events::streams::RECORDS).await?;
    let consumer = stream
        .create_consumer(pull::OrderedConfig::default())
        .await?;
    let started = Instant::now();
    let mut messages = consumer.messages().await?;
    for _ in 0..count {
        messages.next().await.context("replay ended early")??;
    }
    Ok(started.elapsed())
}

/// A small deterministic generator: every run writes the same stream.
pub struct Lcg(pub u64);

impl Lcg {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    /// One of `items`.
    pub fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len() as u64) as usize]
    }
}

/// One generated record event, ready to publish.
pub struct Generated {
    pub subject: String,
    pub msg_id: String,
    pub payload: Bytes,
    pub org: String,
    pub record_id: String,
    pub op: Op,
    /// The invoice after the change.
    pub state: Value,
}

/// Realistic invoice traffic over `orgs` orgs of `records_per_org` invoices
/// each: creates first, then updates (status, balance) and a few deletes and
/// re-creates; customer and supplier invoices in USD and EUR, back-dated
/// transaction dates over 2026, due dates up to 60 days later.
pub struct InvoiceTraffic {
    rng: Lcg,
    orgs: u64,
    records_per_org: u64,
    /// Per record: its version (0: none yet or deleted) and its last state.
    records: Vec<(u64, Value)>,
    count: u64,
}

const STATUSES: [&str; 6] = [
    "DRAFT",
    "AUTHORISED",
    "AUTHORISED",
    "SUBMITTED",
    "PAID",
    "VOIDED",
];

/// `cents` as a decimal string with two places.
pub fn money(cents: u64) -> String {
    format!("{}.{:02}", cents / 100, cents % 100)
}

impl InvoiceTraffic {
    pub fn new(seed: u64, orgs: u64, records_per_org: u64) -> Self {
        let total = (orgs * records_per_org) as usize;
        Self {
            rng: Lcg(seed),
            orgs: orgs.max(1),
            records_per_org: records_per_org.max(1),
            records: vec![(0, Value::Null); total.max(1)],
            count: 0,
        }
    }

    pub fn org_name(index: u64) -> String {
        format!("bench-org-{index}")
    }

    fn new_invoice(&mut self) -> Value {
        let total = 100 + self.rng.below(500_000);
        let day = self.rng.below(365);
        let issued = chrono::NaiveDate::from_ymd_opt(2026, 1, 1).expect("a date")
            + chrono::Duration::days(day as i64);
        let due = issued + chrono::Duration::days(self.rng.below(60) as i64);
        json!({
            "type": if self.rng.below(3) == 0 { "SUPPLIER" } else { "CUSTOMER" },
            "status": STATUSES[self.rng.below(STATUSES.len() as u64) as usize],
            "transaction_date": issued.to_string(),
            "due_date": due.to_string(),
            "currency": if self.rng.below(4) == 0 { "EUR" } else { "USD" },
            "total_amount": money(total),
            "balance": money(total - self.rng.below(total)),
        })
    }
}

impl Iterator for InvoiceTraffic {
    type Item = Generated;

    fn next(&mut self) -> Option<Generated> {
        let slots = self.orgs * self.records_per_org;
        // The first pass creates every record; then random changes.
        let slot = if self.count < slots {
            self.count
        } else {
            self.rng.below(slots)
        };
        self.count += 1;
        let org = Self::org_name(slot / self.records_per_org);
        let record_id = format!("inv-{slot}");
        let (version, previous) = self.records[slot as usize].clone();
        let (op, state) = if version == 0 || previous.is_null() {
            (Op::Created, self.new_invoice())
        } else {
            match self.rng.below(20) {
                0 => (Op::Deleted, previous.clone()),
                _ => {
                    let mut state = previous.clone();
                    state["status"] =
                        json!(STATUSES[self.rng.below(STATUSES.len() as u64) as usize]);
                    let total: u64 = state["total_amount"]
                        .as_str()
                        .and_then(|t| t.replace('.', "").parse().ok())
                        .unwrap_or(100);
                    state["balance"] = json!(money(self.rng.below(total + 1)));
                    (Op::Updated, state)
                }
            }
        };
        let mut state = state;
        state["id"] = json!(record_id);
        let next_version = version + 1;
        self.records[slot as usize] = if op == Op::Deleted {
            (next_version, Value::Null)
        } else {
            (next_version, state.clone())
        };
        let event = RecordEvent {
            event_id: mno_events::envelope::new_event_id(),
            org: org.clone(),
            entity: "invoices".into(),
            record_id: record_id.clone(),
            op: op as i32,
            version: next_version,
            state: mno_events::envelope::canonical_json(&state),
            ..Default::default()
        };
        Some(Generated {
            subject: format!("rec.{org}.invoices.{record_id}"),
            msg_id: event.event_id.clone(),
            payload: Bytes::from(event.to_bytes()),
            org,
            record_id,
            op,
            state,
        })
    }
}
