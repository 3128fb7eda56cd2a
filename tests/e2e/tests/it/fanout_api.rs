//! Fan-out of changes made through the record API: each app receives them
//! in its own ids (record and references), the author never, and a change
//! made by the receiving side comes back to the author only.

use std::time::Duration;

use crate::fanout_support::*;
use mno_e2e::hub_client::{basic_auth, App, HubClient};
use mno_e2e::TestPlatform;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

async fn api(hub: &HubClient, method: Method, path: &str, app: &App, body: Value) -> Value {
    let (status, answer) = hub
        .call(
            method.clone(),
            path,
            Some(&basic_auth(&app.key, &app.secret)),
            Some(body),
        )
        .await
        .unwrap();
    assert!(status.is_success(), "{method} {path}: {status} {answer}");
    answer
}

async fn wait_posts(receiver: &Receiver, entity: &str, count: usize) -> Vec<Received> {
    mno_harness::wait_for(
        &format!("{count} {entity} deliveries"),
        Duration::from_secs(20),
        || async {
            let got: Vec<Received> = receiver
                .received()
                .into_iter()
                .filter(|r| r.entity == entity)
                .collect();
            (got.len() >= count).then_some(got)
        },
    )
    .await
}

#[tokio::test]
async fn changes_written_through_the_api_reach_each_subscriber_in_its_own_ids() {
    let platform = TestPlatform::spawn().await;
    let hub = HubClient::new(&platform.base_url);
    let (_, token) = hub.signup_and_login("owner@example.com").await.unwrap();
    let org = hub.create_org(&token, "Acme", "USD").await.unwrap();
    let js = platform.running().bus.js.clone();
    let (ra, rb, rc, rd) = (
        Receiver::start().await,
        Receiver::start().await,
        Receiver::start().await,
        Receiver::start().await,
    );
    let both = [("invoices", true, true), ("people", true, true)];
    let a = hub
        .create_app(&token, "A", Some(&ra.url()), &both)
        .await
        .unwrap();
    let b = hub
        .create_app(&token, "B", Some(&rb.url()), &both)
        .await
        .unwrap();
    let c = hub
        .create_app(&token, "C", Some(&rc.url()), &[("invoices", true, false)])
        .await
        .unwrap();
    let d = hub
        .create_app(&token, "D", Some(&rd.url()), &both)
        .await
        .unwrap();
    for app in [&a, &b, &c] {
        hub.install(&token, &org, &app.id).await.unwrap();
    }
    for app in [&a, &b, &c] {
        wait_consumer(&js, &app.id).await;
    }
    // D is installed nowhere: no consumer, so nothing of any org costs it.
    wait_no_consumer(&js, &d.id).await;
    // B answers every delivery with its own ids: "B-" + the platform id.
    rb.answer_with(|post| {
        let ids: Vec<Value> = post
            .records()
            .iter()
            .map(|r| json!({"entity": r.entity, "id": r.id, "local_id": format!("B-{}", r.id)}))
            .collect();
        (200, json!({ "id_map": ids }).to_string())
    });

    // A creates a person, then an invoice that references it, in A's own ids.
    let person = api(
        &hub,
        Method::POST,
        &format!("/connec/api/v2/{org}/people"),
        &a,
        json!({"people": {"id": "P-7", "first_name": "Ada", "last_name": "Lovelace"}}),
    )
    .await;
    let person_id = person["people"]["id"].as_str().unwrap().to_owned();
    let at_b = wait_posts(&rb, "people", 1).await;
    assert_eq!(at_b[0].id, person_id);
    assert_eq!(at_b[0].record["first_name"], "Ada");
    // B's id for the person is recorded (an id_mapped event) before A goes on.
    let person_url = platform.url(&format!("/connec/api/v2/{org}/people/{person_id}"));
    mno_harness::wait_for("B's id of the person", Duration::from_secs(10), || async {
        let got: Value = platform
            .http
            .get(&person_url)
            .header("Authorization", basic_auth(&b.key, &b.secret))
            .header("CONNEC-EXTERNAL-IDS", "true")
            .send()
            .await
            .ok()?
            .json()
            .await
            .ok()?;
        (provider_id(&got["people"]["id"], &b.id)? == format!("B-{person_id}")).then_some(())
    })
    .await;

    let invoice = api(
        &hub,
        Method::POST,
        &format!("/connec/api/v2/{org}/invoices"),
        &a,
        json!({"invoices": {"id": "INV-1", "title": "Consulting", "person_id": "P-7",
                            "total_amount": "120.00", "currency": "USD"}}),
    )
    .await;
    let invoice_id = invoice["invoices"]["id"].as_str().unwrap().to_owned();

    let at_b = wait_posts(&rb, "invoices", 1).await;
    let record = &at_b[0].record;
    assert_eq!(at_b[0].id, invoice_id);
    assert_eq!(record["op"], "created");
    assert_eq!(record["version"], 1);
    assert_eq!(record["group_id"], org.as_str());
    assert_eq!(
        provider_id(&record["person_id"], &b.id).as_deref(),
        Some(format!("B-{person_id}").as_str()),
        "the reference in B's id: {record}"
    );
    assert_eq!(
        connec_id(&record["person_id"]).as_deref(),
        Some(person_id.as_str())
    );
    let at_c = wait_posts(&rc, "invoices", 1).await;
    assert_eq!(at_c[0].id, invoice_id);
    assert!(
        provider_id(&at_c[0].record["person_id"], &b.id).is_none(),
        "C must not see B's ids: {}",
        at_c[0].record
    );
    assert!(
        rc.received().iter().all(|r| r.entity == "invoices"),
        "C only subscribes to invoices"
    );

    // B changes the invoice; A gets it in A's ids, B does not get its own change back.
    // (B's id_map answer was an id_mapped event on the invoice's subject: no change of the record, delivered to no one.)
    let updated = api(
        &hub,
        Method::PUT,
        &format!("/connec/api/v2/{org}/invoices/{invoice_id}"),
        &b,
        json!({"invoices": {"title": "Consulting, November"}}),
    )
    .await;
    let version = updated["invoices"]["version"].as_u64().unwrap();
    assert!(version >= 2, "{updated}");
    let at_a = wait_posts(&ra, "invoices", 1).await;
    assert_eq!(at_a[0].version, version);
    assert_eq!(at_a[0].record["title"], "Consulting, November");
    assert_eq!(
        provider_id(&at_a[0].record["id"], &a.id).as_deref(),
        Some("INV-1"),
        "A's own id: {}",
        at_a[0].record
    );
    assert_eq!(
        provider_id(&at_a[0].record["person_id"], &a.id).as_deref(),
        Some("P-7"),
        "{}",
        at_a[0].record
    );
    let at_c = wait_posts(&rc, "invoices", 2).await;
    assert_eq!(at_c[1].version, version);

    // Quiet: everyone caught up; nobody got their own change; D (not installed) got nothing.
    let last = {
        let mut stream = js.get_stream("RECORDS").await.unwrap();
        stream.info().await.unwrap().state.last_sequence
    };
    for app in [&a, &b, &c] {
        wait_caught_up(&js, &app.id, last).await;
    }
    assert!(
        lag(&js, &d.id).await.is_none(),
        "D, installed nowhere, has a consumer"
    );
    assert!(rd.posts().is_empty(), "D is not installed");
    assert!(
        ra.received()
            .iter()
            .all(|r| r.version == version && r.entity == "invoices"),
        "A received its own changes: {:?}",
        ra.received()
    );
    assert_eq!(
        rb.received()
            .iter()
            .filter(|r| r.entity == "invoices")
            .count(),
        1,
        "B received its own change back"
    );
    let (status, _) = hub
        .call(
            Method::GET,
            &format!("/connec/api/v2/deliveries?app={}", a.id),
            Some(&basic_auth(&a.key, &a.secret)),
            None,
        )
        .await
        .unwrap();
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn the_delivery_log_is_kept_across_a_restart() {
    log_survives_a_restart(TestPlatform::spawn().await).await;
}

#[tokio::test]
async fn the_delivery_log_is_kept_across_a_restart_on_postgresql() {
    let url = mno_harness::Postgres::shared_database();
    log_survives_a_restart(TestPlatform::spawn_with(|c| c.database_url = Some(url)).await).await;
}

async fn log_survives_a_restart(mut platform: TestPlatform) {
    let hub = HubClient::new(&platform.base_url);
    let (_, token) = hub.signup_and_login("owner@example.com").await.unwrap();
    let org = hub.create_org(&token, "Acme", "USD").await.unwrap();
    let js = platform.running().bus.js.clone();
    let receiver = Receiver::start().await;
    let both = [("invoices", true, true)];
    let writer = hub.create_app(&token, "W", None, &both).await.unwrap();
    let reader = hub
        .create_app(&token, "R", Some(&receiver.url()), &both)
        .await
        .unwrap();
    for app in [&writer, &reader] {
        hub.install(&token, &org, &app.id).await.unwrap();
    }
    wait_consumer(&js, &reader.id).await;
    api(
        &hub,
        Method::POST,
        &format!("/connec/api/v2/{org}/invoices"),
        &writer,
        json!({"invoices": {"transaction_number": "INV-9"}}),
    )
    .await;
    wait_posts(&receiver, "invoices", 1).await;
    let log_path = format!("/connec/api/v2/deliveries?app={}", reader.id);
    let auth = basic_auth(&reader.key, &reader.secret);
    let (status, before) = hub
        .call(Method::GET, &log_path, Some(&auth), None)
        .await
        .unwrap();
    assert_eq!(status, StatusCode::OK, "{before}");
    let entries = before["deliveries"].as_array().unwrap().clone();
    assert_eq!(entries.len(), 1, "{before}");
    assert_eq!(entries[0]["status"], "delivered");

    platform.restart().await;
    let hub = HubClient::new(&platform.base_url);
    let (status, after) = hub
        .call(Method::GET, &log_path, Some(&auth), None)
        .await
        .unwrap();
    assert_eq!(status, StatusCode::OK, "{after}");
    assert_eq!(
        after["deliveries"],
        json!(entries),
        "the same entries after a restart"
    );
}
