//! The operator's view of delivery: `mno consumers` and `mno dlq list|show|redrive`,
//! run through the CLI's own argument parsing against a running platform.

use std::collections::BTreeSet;
use std::time::Duration;

use crate::fanout_support::*;
use clap::Parser;
use mno_connec_sync::delivery::dlq;
use mno_e2e::hub_client::HubClient;
use mno_e2e::TestPlatform;
use mno_gateway::cli::Cli;
use serde_json::json;

async fn mno(args: &[&str]) -> anyhow::Result<()> {
    let mut argv = vec!["mno"];
    argv.extend_from_slice(args);
    Cli::try_parse_from(argv)?.run().await
}

#[tokio::test]
async fn operators_see_lag_and_redrive_dead_letters_from_the_cli() {
    let platform = TestPlatform::spawn().await;
    let url = platform.nats.url();
    let hub = HubClient::new(&platform.base_url);
    let (_, token) = hub.signup_and_login("owner@example.com").await.unwrap();
    let org = hub.create_org(&token, "Acme", "USD").await.unwrap();
    let rb = Receiver::start().await;
    let b = hub
        .create_app(&token, "B", Some(&rb.url()), &[("invoices", true, false)])
        .await
        .unwrap();
    hub.install(&token, &org, &b.id).await.unwrap();
    let js = platform.running().bus.js.clone();
    wait_consumer(&js, &b.id).await;

    let lags = mno_gateway::cli::consumers::collect(&js).await.unwrap();
    let row = lags
        .iter()
        .find(|l| l.app_id == b.id)
        .expect("B's consumer is listed");
    assert_eq!(row.filters, vec!["rec.*.invoices.*".to_owned()]);
    // The projections' consumers are listed too, with their lag.
    let projections = mno_gateway::cli::consumers::collect_projections(&js)
        .await
        .unwrap();
    let names: Vec<&str> = projections.iter().map(|p| p.consumer.as_str()).collect();
    assert!(
        names.contains(&"connec-record-store") && names.contains(&"impac-records-v1"),
        "{names:?}"
    );
    mno(&["consumers", "--nats-url", &url]).await.unwrap();

    rb.answer_with(|_| (500, "{}".into()));
    write(
        &js,
        Change {
            org: &org,
            entity: "invoices",
            record_id: "cli-1",
            version: 1,
            source: None,
            state: json!({"title": "x"}),
        },
    )
    .await;
    let filter = dlq::filter(Some(&b.id), None).unwrap();
    let letter = mno_harness::wait_for("a dead letter", Duration::from_secs(20), || async {
        dlq::list(&js, &filter, 0, 10)
            .await
            .ok()?
            .into_iter()
            .next()
    })
    .await;
    assert_eq!(letter.letter.record_id, "cli-1");
    let seq = letter.seq.to_string();
    mno(&["dlq", "list", "--app", &b.id, "--nats-url", &url])
        .await
        .unwrap();
    mno(&["dlq", "show", &seq, "--nats-url", &url])
        .await
        .unwrap();
    let missing = mno(&["dlq", "show", "999999", "--nats-url", &url])
        .await
        .unwrap_err()
        .to_string();
    assert!(
        missing.contains("no dead letter at DLQ sequence 999999"),
        "{missing}"
    );

    rb.answer_with(|_| (200, "{}".into()));
    mno(&["dlq", "redrive", &seq, "--nats-url", &url])
        .await
        .unwrap();
    wait_received(
        &rb,
        &BTreeSet::from([("cli-1".to_owned(), 1)]),
        "the redriven event",
    )
    .await;
    mno_harness::wait_for("the DLQ to empty", Duration::from_secs(10), || async {
        dlq::list(&js, &filter, 0, 10)
            .await
            .ok()?
            .is_empty()
            .then_some(())
    })
    .await;
    let nothing = mno(&["dlq", "redrive", "--nats-url", &url])
        .await
        .unwrap_err()
        .to_string();
    assert!(nothing.contains("nothing to redrive"), "{nothing}");
}
