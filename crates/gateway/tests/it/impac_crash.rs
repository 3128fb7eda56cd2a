//! Impac!'s projection survives a crash mid-batch: `mno up` is killed with
//! SIGKILL while its runner is folding a backlog, restarted on the same data
//! dir, and the report then equals what the test computes on its own from
//! the events it wrote (nothing lost, nothing counted twice).

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::Duration;

use mno_events::envelope::{canonical_json, new_event_id, to_timestamp};
use mno_events::proto::{Op, RecordEvent};
use mno_events::publish::{Outgoing, Publisher};
use mno_gateway::cli::bench::seed::{self, Owner};
use mno_harness::{free_port, wait_for, NatsServer};
use rust_decimal::Decimal;
use serde_json::{json, Value};

use crate::support;

/// Invoices in the backlog (about 1.5 events each): enough that folding takes a while.
const RECORDS: u64 = 12_000;

/// `mno up` with its edge and its operator's metrics on the given ports.
fn start_mno(data_dir: &Path, nats_url: &str, port: u16, metrics_port: u16) -> Child {
    support::mno_command(data_dir)
        .env("MNO_NATS_URL", nats_url)
        .env("MNO_HTTP_ADDR", format!("127.0.0.1:{port}"))
        .env("MNO_METRICS_ADDR", format!("127.0.0.1:{metrics_port}"))
        .arg("up")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start mno up")
}

async fn wait_ready(base: &str) {
    wait_for("readyz", Duration::from_secs(30), || async {
        let r = reqwest::get(format!("{base}/readyz")).await.ok()?;
        (r.status() == 200).then_some(())
    })
    .await;
}

/// Pending messages of the Impac! runner's consumer, from the operator's `/metrics`.
async fn impac_pending(metrics_port: u16) -> Option<u64> {
    let text = reqwest::get(format!("http://127.0.0.1:{metrics_port}/metrics"))
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    text.lines()
        .find(|l| l.starts_with("mno_consumer_pending") && l.contains("impac-records-v"))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|n| n.parse().ok())
}

/// A user and the org they own, signed in.
async fn user_and_org(base: &str) -> Owner {
    seed::owner(&reqwest::Client::new(), base, "analyst@crash.example")
        .await
        .unwrap()
}

fn invoice_event(org: &str, id: &str, version: u64, op: Op, state: &Value) -> RecordEvent {
    let now = to_timestamp(chrono::Utc::now());
    RecordEvent {
        event_id: new_event_id(),
        org: org.to_owned(),
        entity: "invoices".into(),
        record_id: id.to_owned(),
        op: op as i32,
        version,
        occurred_at: Some(now),
        recorded_at: Some(now),
        state: canonical_json(state),
        ..Default::default()
    }
}

/// Write the backlog straight to the stream (as the write API would have):
/// creates, a third updated, a seventh deleted. Returns the expected revenue by month.
async fn write_backlog(nats_url: &str, org: &str) -> BTreeMap<String, Decimal> {
    let bus = mno_events::bus::connect(nats_url).await.unwrap();
    let publisher = Publisher::new(bus.js.clone(), mno_events::streams::RECORDS);
    let mut live: BTreeMap<String, (String, Decimal)> = BTreeMap::new();
    let mut outgoing = Vec::new();
    for i in 0..RECORDS {
        let id = uuid::Uuid::now_v7().to_string();
        let month = format!("2026-{:02}", i % 12 + 1);
        let cents = Decimal::new((i as i64 * 7919) % 100_000 + 1, 2);
        let mut state = json!({"id": id, "type": "CUSTOMER", "status": "AUTHORISED",
            "transaction_date": format!("{month}-15"), "due_date": format!("{month}-28"),
            "currency": "USD", "total_amount": cents.to_string(), "balance": cents.to_string()});
        let subject = format!("rec.{org}.invoices.{id}");
        let mut push = |event: RecordEvent| {
            outgoing.push(Outgoing::new(
                subject.clone(),
                event.event_id.clone(),
                event.to_bytes().into(),
            ))
        };
        push(invoice_event(org, &id, 1, Op::Created, &state));
        let mut total = cents;
        if i % 3 == 0 {
            total = cents + Decimal::new(1234, 2);
            state["total_amount"] = json!(total.to_string());
            push(invoice_event(org, &id, 2, Op::Updated, &state));
        }
        if i % 7 == 0 {
            push(invoice_event(org, &id, 3, Op::Deleted, &state));
        } else {
            live.insert(id, (month, total));
        }
    }
    for published in publisher.publish_pipelined(outgoing, 1000).await {
        published.expect("the backlog is stored");
    }
    let mut revenue: BTreeMap<String, Decimal> = BTreeMap::new();
    for (month, total) in live.into_values() {
        *revenue.entry(month).or_default() += total;
    }
    revenue
}

async fn profit_and_loss(base: &str, owner: &Owner) -> Value {
    owner
        .authorised(reqwest::Client::new().get(format!(
            "{base}/impac/api/v2/widgets/accounts/profit_and_loss?org_ids[]={}&currency=USD&from=2026-01-01&to=2026-12-31&period=MONTHLY",
            owner.org
        )))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_projection_killed_mid_batch_gives_the_same_numbers_after_restart() {
    let _heavy = support::HEAVY.lock().await;
    let server = NatsServer::start().await;
    let data = tempfile::tempdir().unwrap();
    let port = free_port();
    let metrics_port = free_port();
    let base = format!("http://127.0.0.1:{port}");

    let mut up = start_mno(data.path(), &server.url(), port, metrics_port);
    wait_ready(&base).await;
    let owner = user_and_org(&base).await;
    // Stop it so that the whole backlog waits for the next start.
    up.kill().unwrap();
    up.wait().unwrap();
    let expected = write_backlog(&server.url(), &owner.org).await;

    // Start, and kill -9 as soon as the runner has committed its first batch.
    let db = mno_events::db::open(&mno_events::db::sqlite_url(data.path()))
        .await
        .unwrap();
    let checkpoint = || async {
        sqlx::query_scalar::<_, i64>(
            "SELECT seq FROM impac_checkpoints WHERE projection = 'records'",
        )
        .fetch_optional(&db)
        .await
        .ok()
        .flatten()
        .unwrap_or(0)
    };
    let mut up = start_mno(data.path(), &server.url(), port, metrics_port);
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while checkpoint().await == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the runner never committed a batch"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    up.kill().unwrap();
    up.wait().unwrap();

    // The crash hit mid-fold: some batches committed, not all.
    let checkpoint = checkpoint().await;
    db.close().await;
    let stream_last = {
        let client = server.client().await;
        let js = async_nats::jetstream::new(client);
        let mut stream = js.get_stream("RECORDS").await.unwrap();
        stream.info().await.unwrap().state.last_sequence
    };
    assert!(
        checkpoint > 0 && checkpoint < stream_last as i64,
        "killed before the fold finished (checkpoint {checkpoint} of {stream_last}); \
         the backlog was folded too fast to test a crash"
    );

    // Restart: the fold resumes and the report equals the independent computation.
    let mut up = start_mno(data.path(), &server.url(), port, metrics_port);
    wait_ready(&base).await;
    wait_for(
        "the runner to catch up",
        Duration::from_secs(120),
        || async { impac_pending(metrics_port).await.filter(|&p| p == 0) },
    )
    .await;
    let report = wait_for(
        "the report to include the backlog",
        Duration::from_secs(30),
        || {
            let (base, owner) = (base.clone(), owner.clone());
            let want = expected.values().copied().sum::<Decimal>().to_string();
            async move {
                let report = profit_and_loss(&base, &owner).await;
                (report["content"]["totals"]["revenue"] == json!(want)).then_some(report)
            }
        },
    )
    .await;
    let periods: BTreeMap<String, String> = report["content"]["periods"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["period_start"].as_str().unwrap()[..7].to_owned(),
                p["revenue"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let want: BTreeMap<String, String> = expected
        .iter()
        .map(|(month, revenue)| (month.clone(), revenue.to_string()))
        .collect();
    assert_eq!(periods, want);
    up.kill().unwrap();
    up.wait().unwrap();
}
