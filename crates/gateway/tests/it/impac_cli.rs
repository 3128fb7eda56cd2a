//! `mno impac` through the real binary against a running platform (in this
//! process, on its own nats-server and SQLite): rates loaded from CSV all or
//! nothing, a widget replayed as of a sequence equal to an independent
//! computation of the stream then, and a rebuild that equals the live
//! projection, switches readers, and is followed by the running platform.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Output;
use std::str::FromStr;
use std::time::Duration;

use mno_events::proto::Op;
use mno_gateway::cli::bench::replay::InvoiceTraffic;
use mno_gateway::{Platform, PlatformConfig};
use mno_harness::{wait_for, NatsServer};
use rust_decimal::Decimal;
use serde_json::Value;

use crate::support;

fn mno(data_dir: &Path, nats_url: Option<&str>, args: &[&str]) -> Output {
    let mut command = support::mno_command(data_dir);
    command.args(args);
    if let Some(url) = nats_url {
        command.env("MNO_NATS_URL", url);
    }
    command.output().expect("run mno")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[tokio::test]
async fn rates_load_from_csv_is_all_or_nothing_and_names_the_bad_line() {
    let data = tempfile::tempdir().unwrap();
    let good = data.path().join("rates.csv");
    std::fs::write(
        &good,
        "base,quote,rate,as_of,source\nEUR,USD,1.0850,2026-11-01,ECB\nGBP,USD,1.27,2026-11-01,\"Bank of England, noon\"\n",
    )
    .unwrap();
    let loaded = mno(
        data.path(),
        None,
        &["impac", "rates", "load", good.to_str().unwrap()],
    );
    assert!(loaded.status.success(), "{loaded:?}");
    assert!(text(&loaded.stdout).contains("loaded 2 rates"));

    let bad = data.path().join("bad.csv");
    std::fs::write(
        &bad,
        "base,quote,rate,as_of,source\nCHF,USD,1.13,2026-11-02,SNB\nJPY,USD,zero,2026-11-02,BoJ\n",
    )
    .unwrap();
    let refused = mno(
        data.path(),
        None,
        &["impac", "rates", "load", bad.to_str().unwrap()],
    );
    assert!(!refused.status.success());
    let error = text(&refused.stderr);
    assert!(
        error.contains("line 3") && error.contains("rate") && error.contains("nothing was loaded"),
        "{error}"
    );

    let listed = mno(data.path(), None, &["impac", "rates", "list"]);
    assert!(listed.status.success(), "{listed:?}");
    let listing = text(&listed.stdout);
    assert_eq!(
        listing.lines().count(),
        3,
        "header and two rates: {listing}"
    );
    assert!(
        listing.contains("EUR,USD,1.085,2026-11-01,\"ECB\""),
        "{listing}"
    );
    assert!(
        !listing.contains("CHF"),
        "the good line of a bad file is not stored: {listing}"
    );
}

/// The invoices alive per (org, id), folded by the test itself.
type Model = BTreeMap<(String, String), Value>;

fn pnl(model: &Model, orgs: &[&str], eur_to_usd: Decimal) -> (Decimal, Decimal) {
    let (mut revenue, mut expenses) = (Decimal::ZERO, Decimal::ZERO);
    for ((org, _), invoice) in model {
        if !orgs.contains(&org.as_str()) {
            continue;
        }
        let status = invoice["status"].as_str().unwrap();
        if status == "DRAFT" || status == "VOIDED" {
            continue;
        }
        let rate = if invoice["currency"] == "EUR" {
            eur_to_usd
        } else {
            Decimal::ONE
        };
        let total = Decimal::from_str(invoice["total_amount"].as_str().unwrap()).unwrap() * rate;
        if invoice["type"] == "SUPPLIER" {
            expenses += total;
        } else {
            revenue += total;
        }
    }
    (revenue, expenses)
}

fn totals(answer: &Value) -> (Decimal, Decimal) {
    let t = &answer["content"]["totals"];
    (
        Decimal::from_str(t["revenue"].as_str().unwrap()).unwrap(),
        Decimal::from_str(t["expenses"].as_str().unwrap()).unwrap(),
    )
}

async fn checkpoint(db: &sqlx::AnyPool, version: i64) -> i64 {
    sqlx::query_scalar::<_, i64>(
        "SELECT seq FROM impac_checkpoints WHERE projection = 'records' AND version = $1",
    )
    .bind(version)
    .fetch_optional(db)
    .await
    .unwrap()
    .unwrap_or(0)
}

async fn rows(db: &sqlx::AnyPool, version: i64) -> Vec<(String, String, String, String, i64)> {
    sqlx::query_as(
        "SELECT org, entity, id, state, deleted FROM impac_records WHERE version = $1 ORDER BY org, entity, id",
    )
    .bind(version)
    .fetch_all(db)
    .await
    .unwrap()
}

#[tokio::test]
async fn replay_equals_the_stream_then_and_a_rebuild_equals_the_live_projection() {
    let nats = NatsServer::start().await;
    let data = tempfile::tempdir().unwrap();
    let platform = Platform::start(PlatformConfig::for_tests(
        data.path().to_owned(),
        Some(nats.url()),
    ))
    .await
    .unwrap();
    let url = nats.url();
    let run = |args: &[&str]| mno(data.path(), Some(&url), args);

    let rates = data.path().join("rates.csv");
    std::fs::write(
        &rates,
        "base,quote,rate,as_of,source\nEUR,USD,1.0850,2026-11-01,ECB\n",
    )
    .unwrap();
    assert!(run(&["impac", "rates", "load", rates.to_str().unwrap()])
        .status
        .success());
    let eur_to_usd = Decimal::from_str("1.0850").unwrap();

    // 300 invoice events over two orgs, written straight to the stream.
    let publisher = mno_events::publish::Publisher::new(platform.bus.js.clone(), "RECORDS");
    let mut model = Model::new();
    let mut middle = None;
    let mut last = 0;
    for (i, event) in InvoiceTraffic::new(7, 2, 40).take(300).enumerate() {
        let published = publisher
            .publish(mno_events::publish::Outgoing::new(
                event.subject.clone(),
                event.msg_id.clone(),
                event.payload.clone(),
            ))
            .await
            .unwrap();
        last = published.seq;
        let key = (event.org.clone(), event.record_id.clone());
        if event.op == Op::Deleted {
            model.remove(&key);
        } else {
            model.insert(key, event.state.clone());
        }
        if i == 149 {
            middle = Some((last, model.clone()));
        }
    }
    let (middle_seq, model_then) = middle.unwrap();

    // `mno impac replay <widget> --org .. --as-of <seq> [more]`.
    let replay = |widget: &str, orgs: &[&str], as_of: &str, more: &[&str]| {
        let mut args = vec!["impac", "replay", widget];
        for org in orgs {
            args.extend(["--org", org]);
        }
        args.extend(["--as-of", as_of]);
        args.extend(more);
        run(&args)
    };
    let pnl_widget = "accounts/profit_and_loss";
    let in_usd = ["--currency", "USD", "--to", "2026-12-31"];

    // Replay as of the middle sequence, one org: the stream then, computed independently.
    let replayed = replay(
        pnl_widget,
        &["bench-org-0"],
        &middle_seq.to_string(),
        &in_usd,
    );
    assert!(replayed.status.success(), "{replayed:?}");
    let answer: Value = serde_json::from_slice(&replayed.stdout).unwrap();
    assert_eq!(
        totals(&answer),
        pnl(&model_then, &["bench-org-0"], eur_to_usd),
        "{answer}"
    );
    assert_eq!(answer["as_of"], middle_seq);
    assert_eq!(answer["rates"][0]["source"], "ECB", "{answer}");

    // Two orgs aggregate; as of the last sequence; CSV.
    let both_orgs = ["bench-org-0", "bench-org-1"];
    let both = replay(pnl_widget, &both_orgs, &last.to_string(), &in_usd);
    let answer: Value = serde_json::from_slice(&both.stdout).unwrap();
    let expected = pnl(&model, &both_orgs, eur_to_usd);
    assert_eq!(totals(&answer), expected, "{answer}");
    let in_csv = [&in_usd[..], &["--format", "csv"]].concat();
    let csv = text(&replay(pnl_widget, &both_orgs, &last.to_string(), &in_csv).stdout);
    assert!(csv.starts_with("path,value"), "{csv}");
    let revenue_row = csv
        .lines()
        .find_map(|l| l.strip_prefix("totals.revenue,"))
        .expect("a totals.revenue row");
    assert_eq!(
        Decimal::from_str(revenue_row.trim_matches('"')).unwrap(),
        expected.0,
        "{csv}"
    );

    // A page of the invoice list: the rows from --offset, --limit long, of the whole list.
    let list = |more: &[&str]| -> Value {
        let args = [&in_usd[..], more].concat();
        let output = replay("invoices/list", &both_orgs, &last.to_string(), &args);
        assert!(output.status.success(), "{output:?}");
        let answer: Value = serde_json::from_slice(&output.stdout).unwrap();
        answer["content"].clone()
    };
    let whole = list(&[]);
    let page = list(&["--offset", "3", "--limit", "4"]);
    assert!(whole["count"].as_u64().unwrap() >= 7, "{whole}");
    assert_eq!(page["count"], whole["count"]);
    assert_eq!(
        page["invoices"].as_array().unwrap()[..],
        whole["invoices"].as_array().unwrap()[3..7]
    );

    // Bad input: one clear line, non-zero exit.
    let bad = replay(pnl_widget, &["bench-org-0"], "yesterday", &[]);
    assert!(!bad.status.success());
    assert!(text(&bad.stderr).contains("as_of"), "{bad:?}");
    let bad_offset = replay("invoices/list", &["bench-org-0"], "1", &["--offset", "two"]);
    assert!(
        !bad_offset.status.success() && text(&bad_offset.stderr).contains("offset"),
        "{bad_offset:?}"
    );
    let unknown = replay("accounts/nothing", &["bench-org-0"], "1", &[]);
    assert!(
        !unknown.status.success() && text(&unknown.stderr).contains(pnl_widget),
        "{unknown:?}"
    );
    let no_rate = replay(
        pnl_widget,
        &["bench-org-0"],
        &last.to_string(),
        &["--currency", "JPY"],
    );
    assert!(
        !no_rate.status.success() && text(&no_rate.stderr).contains("->JPY"),
        "{no_rate:?}"
    );

    // Rebuild beside the live version once it has folded everything.
    wait_for("v1 folds the stream", Duration::from_secs(30), || async {
        (checkpoint(&platform.db, 1).await >= last as i64).then_some(())
    })
    .await;
    let rebuilt = run(&["impac", "rebuild", "records"]);
    assert!(rebuilt.status.success(), "{rebuilt:?}");
    let outcome: Value = serde_json::from_slice(&rebuilt.stdout).unwrap();
    assert_eq!(outcome["version"], 2, "{outcome}");
    assert_eq!(outcome["previous_version"], 1);
    assert_eq!(outcome["events"], 300, "{outcome}");
    assert!(text(&rebuilt.stderr).contains("events/s"), "{rebuilt:?}");
    let active: i64 =
        sqlx::query_scalar("SELECT version FROM impac_active WHERE projection = 'records'")
            .fetch_one(&platform.db)
            .await
            .unwrap();
    assert_eq!(active, 2);
    assert_eq!(
        rows(&platform.db, 2).await,
        rows(&platform.db, 1).await,
        "the rebuild equals the live projection"
    );

    // The running platform follows the rebuilt version: a new event lands in v2.
    let more = InvoiceTraffic::new(99, 1, 1).next().unwrap();
    let published = publisher
        .publish(mno_events::publish::Outgoing::new(
            more.subject,
            more.msg_id,
            more.payload,
        ))
        .await
        .unwrap();
    wait_for("v2 follows the stream", Duration::from_secs(30), || async {
        (checkpoint(&platform.db, 2).await >= published.seq as i64).then_some(())
    })
    .await;
    assert!(
        text(&rebuilt.stderr).contains("mno impac prune records"),
        "{rebuilt:?}"
    );

    // Pruning removes v1 (rows, checkpoint, consumer) and leaves v2 as it is.
    let v1_before = rows(&platform.db, 1).await.len() as u64;
    let v2_before = rows(&platform.db, 2).await;
    assert!(v1_before > 0);
    let pruned = run(&["impac", "prune", "records"]);
    assert!(pruned.status.success(), "{pruned:?}");
    let outcome: Value = serde_json::from_slice(&pruned.stdout).unwrap();
    assert_eq!(outcome["versions"], serde_json::json!([1]), "{outcome}");
    assert_eq!(outcome["active_version"], 2);
    assert_eq!(outcome["rows"].as_u64(), Some(v1_before), "{outcome}");
    assert!(rows(&platform.db, 1).await.is_empty());
    assert_eq!(checkpoint(&platform.db, 1).await, 0);
    assert_eq!(rows(&platform.db, 2).await, v2_before);
    use futures::StreamExt;
    let stream = platform.bus.js.get_stream("RECORDS").await.unwrap();
    let mut names = Vec::new();
    let mut listed = stream.consumer_names();
    while let Some(name) = listed.next().await {
        names.push(name.unwrap());
    }
    assert!(!names.iter().any(|n| n == "impac-records-v1"), "{names:?}");
    assert!(names.iter().any(|n| n == "impac-records-v2"), "{names:?}");
    // Nothing older is left: a second prune removes nothing.
    let again: Value = serde_json::from_slice(&run(&["impac", "prune", "records"]).stdout).unwrap();
    assert_eq!(again["versions"], serde_json::json!([]), "{again}");
    assert_eq!(again["rows"], 0);
    let unknown = run(&["impac", "prune", "everything"]);
    assert!(
        !unknown.status.success() && text(&unknown.stderr).contains("the projections are: records"),
        "{unknown:?}"
    );
    platform.shutdown().await.unwrap();
}

#[tokio::test]
async fn allowing_an_org_that_does_not_exist_to_load_rates_is_refused() {
    let nats = NatsServer::start().await;
    let data = tempfile::tempdir().unwrap();
    // A platform has run on this data dir: the Hub's tables are there, with no org.
    let platform = Platform::start(PlatformConfig::for_tests(
        data.path().to_owned(),
        Some(nats.url()),
    ))
    .await
    .unwrap();
    let unknown = uuid::Uuid::now_v7().to_string();
    let refused = mno(
        data.path(),
        None,
        &["impac", "rates", "allow-org", &unknown],
    );
    assert!(!refused.status.success());
    let message = text(&refused.stderr);
    assert!(
        message.contains("there is no organisation") && message.contains(&unknown),
        "{message}"
    );
    let allowed: Vec<String> = sqlx::query_scalar("SELECT org FROM impac_rate_loaders")
        .fetch_all(&platform.db)
        .await
        .unwrap();
    assert!(allowed.is_empty(), "nothing allowed: {allowed:?}");
    platform.shutdown().await.unwrap();
}
