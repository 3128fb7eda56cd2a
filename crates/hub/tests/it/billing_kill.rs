//! The billing run crashes mid-run (a real process aborts after its first
//! invoice, as `MNO_BILLING_CRASH_AFTER=1` makes `mno billing run` do); a
//! second run issues the rest, nothing twice, and every invoice rebuilds from
//! stream HUB byte for byte.
//!
//! The crashed process is this test binary run again as a child: its
//! `billing_child_process` entry (ignored in normal runs) runs the billing.

use std::collections::BTreeSet;
use std::process::{Command, Stdio};

use crate::common::{bus_of, wait_for_empty_outbox, World};
use mno_events::directory::AppStack;
use mno_events::subject::hub_kind;
use mno_harness::NatsAccount;
use mno_hub::billing::ledger::Invoice;
use mno_hub::billing::money::Period;
use mno_hub::billing::store::{self as bills, NewBill};
use mno_hub::billing::{self, RunOptions};
use mno_hub::store::{apps, installs, orgs, users, Store};
use mno_hub::HubConfig;

const ENV_NATS: &str = "MNO_TEST_CHILD_NATS_URL";
const ENV_NATS_USER: &str = "MNO_TEST_CHILD_NATS_USER";
const ENV_DB: &str = "MNO_TEST_CHILD_DATABASE_URL";

/// The child: run only when the parent test starts this binary with the env set.
#[test]
#[ignore = "run as a child process by the billing crash test"]
fn billing_child_process() {
    let (Ok(nats), Ok(user), Ok(db)) = (
        std::env::var(ENV_NATS),
        std::env::var(ENV_NATS_USER),
        std::env::var(ENV_DB),
    ) else {
        panic!("billing_child_process runs only as the child of the crash test");
    };
    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(async move {
            let bus = bus_of(&NatsAccount::new(nats, user)).await;
            let store = Store::open(mno_events::db::open(&db).await.unwrap())
                .await
                .unwrap();
            let period = Period::parse("2026-11").unwrap();
            billing::run(&store, &bus, period, &RunOptions::from_env())
                .await
                .unwrap();
        });
}

fn bill(org: &str, cents: i64) -> NewBill {
    NewBill {
        org: org.to_owned(),
        price_cents: cents,
        currency: "USD".into(),
        description: "Seats".into(),
        units: 1,
        period_started_at: None,
        period_ended_at: Some(1_795_000_000_000), // 2026-11-18
        third_party: false,
    }
}

mno_harness::on_both_databases!(World; a_run_that_crashes_mid_run_then_runs_again_issues_each_invoice_once);

async fn a_run_that_crashes_mid_run_then_runs_again_issues_each_invoice_once(world: &World) {
    let hub = world
        .hub(HubConfig {
            account_webhooks: false,
            ..HubConfig::default()
        })
        .await;
    let store = hub.store().clone();
    let owner = users::create(&store, "ann@example.com", "Ann", "x")
        .await
        .unwrap();
    let (app, _) = apps::create(
        &store,
        &owner.id,
        "Books".into(),
        AppStack::Cloud,
        None,
        None,
        vec![],
        Default::default(),
    )
    .await
    .unwrap();
    let mut all_bills = BTreeSet::new();
    for (i, name) in ["A", "B", "C"].iter().enumerate() {
        let org = orgs::create(&store, &owner.id, name, "USD", "UTC", "")
            .await
            .unwrap();
        installs::install(&store, &owner.id, &org.id, &app.id, true)
            .await
            .unwrap();
        for cents in [100, 20 + i as i64] {
            let (row, _) = bills::submit(&store, &app.id, bill(&org.id, cents), None)
                .await
                .unwrap();
            all_bills.insert(row.id);
        }
    }
    assert_eq!(
        Period::of_ms(1_795_000_000_000),
        Period::parse("2026-11").unwrap()
    );
    wait_for_empty_outbox(&hub).await;

    let status = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "billing_kill::billing_child_process",
            "--include-ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(ENV_NATS, world.nats.url())
        .env(ENV_NATS_USER, world.nats.user())
        .env(ENV_DB, &world.database_url)
        .env(billing::run::CRASH_AFTER_ENV, "1")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("run this test binary as a child");
    assert!(!status.success(), "the child crashed: {status}");
    let issued: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM hub_invoices")
        .fetch_one(&store.pool)
        .await
        .unwrap();
    assert_eq!(issued, 1, "the crash came after the first invoice");

    let period = Period::parse("2026-11").unwrap();
    let report = billing::run(&store, &world.bus, period, &RunOptions::default())
        .await
        .unwrap();
    assert_eq!(report.issued.len(), 2, "{report:?}");
    let again = billing::run(&store, &world.bus, period, &RunOptions::default())
        .await
        .unwrap();
    assert!(again.issued.is_empty(), "{again:?}");

    // On the stream: three invoices, each once, every bill on exactly one.
    wait_for_empty_outbox(&hub).await;
    let invoices: Vec<Invoice> = world
        .hub_events()
        .await
        .into_iter()
        .filter(|e| e.kind == hub_kind::INVOICE_ISSUED)
        .map(|e| serde_json::from_slice(&e.payload).unwrap())
        .collect();
    let ids: BTreeSet<&str> = invoices.iter().map(|i| i.id.as_str()).collect();
    assert_eq!((invoices.len(), ids.len()), (3, 3));
    let mut billed: Vec<String> = invoices.iter().flat_map(|i| i.bill_ids()).collect();
    billed.sort();
    assert_eq!(billed, all_bills.into_iter().collect::<Vec<_>>());
    let totals: BTreeSet<i64> = invoices.iter().map(|i| i.total_cents).collect();
    assert_eq!(totals, BTreeSet::from([120, 121, 122]));

    // Each rebuilds from the stream byte for byte.
    let first = invoices[0].id.clone();
    for id in ids {
        let (stored, rebuilt) = billing::rebuild(&store, &world.bus, id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            String::from_utf8(stored).unwrap(),
            String::from_utf8(rebuilt).unwrap()
        );
    }
    // The comparison can fail: an invoice altered in SQL no longer matches.
    sqlx::query("UPDATE hub_invoices SET body = replace(body, '\"total_cents\":1', '\"total_cents\":9') WHERE id = $1")
        .bind(&first)
        .execute(&store.pool)
        .await
        .unwrap();
    let (stored, rebuilt) = billing::rebuild(&store, &world.bus, &first)
        .await
        .unwrap()
        .unwrap();
    assert_ne!(stored, rebuilt);
    hub.shutdown().await;
}
