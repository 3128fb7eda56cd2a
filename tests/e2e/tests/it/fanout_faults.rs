//! Fan-out under faults: nats-server killed mid-delivery, a receiver that
//! answers 410 Gone, a webhook URL that points inside the platform's network.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::fanout_support::*;
use mno_e2e::hub_client::{basic_auth, HubClient};
use mno_e2e::TestPlatform;
use reqwest::{Method, StatusCode};
use serde_json::json;

#[tokio::test]
async fn nats_killed_mid_delivery_loses_nothing_and_a_repeat_keeps_its_webhook_id() {
    // One event per POST, so that every repeat of an event is comparable by its webhook-id.
    let mut platform = TestPlatform::spawn_with(|c| {
        c.webhook_retry_schedule = Some("500ms,1s,1s,2s,2s,3s,3s,5s,5s,5s".into());
        c.webhook_batch_max = 1;
    })
    .await;
    let hub = HubClient::new(&platform.base_url);
    let (_, token) = hub.signup_and_login("owner@example.com").await.unwrap();
    let org = hub.create_org(&token, "Acme", "USD").await.unwrap();
    let (ra, rb) = (Receiver::start().await, Receiver::start().await);
    let shared = [("invoices", true, true)];
    let a = hub
        .create_app(&token, "A", Some(&ra.url()), &shared)
        .await
        .unwrap();
    let b = hub
        .create_app(&token, "B", Some(&rb.url()), &shared)
        .await
        .unwrap();
    hub.install(&token, &org, &a.id).await.unwrap();
    hub.install(&token, &org, &b.id).await.unwrap();
    let js = platform.running().bus.js.clone();
    wait_consumer(&js, &b.id).await;

    // The receiver is slow, so that deliveries are in flight when the bus dies;
    // and it refuses the first POST that arrives once the bus is gone.
    let bus_down = Arc::new(AtomicBool::new(false));
    let refused = Arc::new(AtomicUsize::new(0));
    let refused_id = Arc::new(std::sync::Mutex::new(String::new()));
    let (down, count, first_refused) = (bus_down.clone(), refused.clone(), refused_id.clone());
    rb.answer_with(move |post| {
        std::thread::sleep(Duration::from_millis(20));
        if down.load(Ordering::SeqCst) && count.fetch_add(1, Ordering::SeqCst) == 0 {
            *first_refused.lock().unwrap() = post.webhook_id.clone();
            return (503, "{}".into());
        }
        (200, "{}".into())
    });

    let mut expected = BTreeSet::new();
    for version in 1..=40 {
        for record in ["k1", "k2", "k3", "k4", "k5"] {
            write(
                &js,
                Change {
                    org: &org,
                    entity: "invoices",
                    record_id: record,
                    version,
                    source: Some((&a.id, record)),
                    state: json!({"title": format!("{record} v{version}")}),
                },
            )
            .await;
            expected.insert((record.to_owned(), version));
        }
    }
    mno_harness::wait_for("some deliveries", Duration::from_secs(20), || async {
        (rb.distinct().len() >= 5).then_some(())
    })
    .await;
    bus_down.store(true, Ordering::SeqCst);
    platform.nats.kill9();
    mno_harness::wait_for(
        "a POST while the bus is down",
        Duration::from_secs(20),
        || async { (refused.load(Ordering::SeqCst) > 0).then_some(()) },
    )
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    platform.nats.restart().await;

    wait_received(&rb, &expected, "every event after the restart").await;
    for (record, versions) in first_arrival_versions(&rb.received()) {
        assert_eq!(versions, (1..=40).collect::<Vec<_>>(), "order of {record}");
    }
    assert_ids_name_one_content(&rb.posts());
    // The POST refused while the bus was down came again, under the same webhook-id.
    let refused_id = refused_id.lock().unwrap().clone();
    let repeats = rb
        .posts()
        .iter()
        .filter(|p| p.webhook_id == refused_id)
        .count();
    let trail: Vec<(String, Vec<(String, u64)>)> = rb
        .posts()
        .iter()
        .map(|p| {
            let records = p.records().into_iter().map(|r| (r.id, r.version)).collect();
            (p.webhook_id.clone(), records)
        })
        .collect();
    assert!(
        repeats >= 2,
        "webhook-id {refused_id} was sent {repeats} time(s): {trail:?}"
    );
    assert!(ra.posts().is_empty(), "A got its own changes");
    platform.stop().await;
}

#[tokio::test]
async fn a_410_disables_the_webhook_until_the_app_is_updated() {
    let platform = TestPlatform::spawn().await;
    let hub = HubClient::new(&platform.base_url);
    let (_, token) = hub.signup_and_login("owner@example.com").await.unwrap();
    let org = hub.create_org(&token, "Acme", "USD").await.unwrap();
    let (ra, rb) = (Receiver::start().await, Receiver::start().await);
    let shared = [("invoices", true, true)];
    let a = hub
        .create_app(&token, "A", Some(&ra.url()), &shared)
        .await
        .unwrap();
    let b = hub
        .create_app(&token, "B", Some(&rb.url()), &shared)
        .await
        .unwrap();
    hub.install(&token, &org, &a.id).await.unwrap();
    hub.install(&token, &org, &b.id).await.unwrap();
    let js = platform.running().bus.js.clone();
    wait_consumer(&js, &b.id).await;
    rb.answer_with(|_| (410, "{}".into()));
    let change = |record: &'static str| Change {
        org: &org,
        entity: "invoices",
        record_id: record,
        version: 1,
        source: Some((&a.id, record)),
        state: json!({"title": record}),
    };
    write(&js, change("g1")).await;
    mno_harness::wait_for(
        "the app to be disabled",
        Duration::from_secs(15),
        || async {
            let (_, app) = hub
                .call(
                    Method::GET,
                    &format!("/hub/v1/apps/{}", b.id),
                    Some(&format!("Bearer {token}")),
                    None,
                )
                .await
                .ok()?;
            (app["webhook_disabled"] == true).then_some(())
        },
    )
    .await;
    let posts_when_disabled = rb.posts().len();
    assert_eq!(posts_when_disabled, 1, "one POST, answered 410");
    let (_, log) = hub
        .call(
            Method::GET,
            &format!("/connec/api/v2/deliveries?app={}&status=disabled", b.id),
            Some(&basic_auth(&b.key, &b.secret)),
            None,
        )
        .await
        .unwrap();
    assert_eq!(log["deliveries"].as_array().unwrap().len(), 1, "{log}");

    // Nothing goes out while disabled; updating the app enables it and the held events follow.
    write(&js, change("g2")).await;
    rb.answer_with(|_| (200, "{}".into()));
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(rb.posts().len(), posts_when_disabled, "sent while disabled");
    let (status, body) = hub
        .call(
            Method::PATCH,
            &format!("/hub/v1/apps/{}", b.id),
            Some(&format!("Bearer {token}")),
            Some(json!({"webhook_url": rb.url()})),
        )
        .await
        .unwrap();
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["webhook_disabled"], false, "{body}");
    let expected = BTreeSet::from([("g1".to_owned(), 1), ("g2".to_owned(), 1)]);
    wait_received(&rb, &expected, "held events after re-enabling").await;
    // g1 was sent before (answered 410): it goes again alone, under its own
    // event id, as every retry does; it is not folded into a batch with g2.
    let posts = rb.posts();
    let accepted: Vec<&Post> = posts.iter().filter(|p| p.status == 200).collect();
    let first_again = accepted
        .iter()
        .find(|p| p.raw.contains("\"g1\""))
        .expect("g1 delivered");
    assert_eq!(
        first_again.webhook_id, posts[0].webhook_id,
        "{}",
        first_again.raw
    );
    assert!(!first_again.raw.contains("\"g2\""), "{}", first_again.raw);
}

#[tokio::test]
async fn webhooks_to_private_addresses_are_refused_and_dead_lettered() {
    // The app is registered while private webhooks are allowed (the Hub refuses
    // such a URL otherwise), then the platform restarts without: delivery's own
    // guard must refuse to send, as for a name that resolves to a private address.
    let mut platform = TestPlatform::spawn().await;
    let hub = HubClient::new(&platform.base_url);
    let (_, token) = hub.signup_and_login("owner@example.com").await.unwrap();
    let org = hub.create_org(&token, "Acme", "USD").await.unwrap();
    let rb = Receiver::start().await;
    let (status, created) = hub
        .call(
            Method::POST,
            "/hub/v1/apps",
            Some(&format!("Bearer {token}")),
            Some(
                json!({"name": "B", "stack": "cloud", "webhook_url": rb.url(),
                "shared_entities": [{"entity": "invoices", "read": true, "write": true}]}),
            ),
        )
        .await
        .unwrap();
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let b_id = created["id"].as_str().unwrap().to_owned();
    let key = created["credentials"]["key"].as_str().unwrap().to_owned();
    let secret = created["credentials"]["secret"]
        .as_str()
        .unwrap()
        .to_owned();
    hub.install(&token, &org, &b_id).await.unwrap();
    platform.config.allow_private_webhooks = false;
    platform.restart().await;
    let hub = HubClient::new(&platform.base_url);
    let js = platform.running().bus.js.clone();
    wait_consumer(&js, &b_id).await;
    write(
        &js,
        Change {
            org: &org,
            entity: "invoices",
            record_id: "ssrf",
            version: 1,
            source: None,
            state: json!({"title": "x"}),
        },
    )
    .await;
    let letter = mno_harness::wait_for(
        "the refused event in the DLQ",
        Duration::from_secs(15),
        || async {
            let (_, body) = hub
                .call(
                    Method::GET,
                    &format!("/connec/api/v2/deliveries/{b_id}/dlq"),
                    Some(&basic_auth(&key, &secret)),
                    None,
                )
                .await
                .ok()?;
            body["dead_letters"].as_array()?.first().cloned()
        },
    )
    .await;
    assert!(
        letter["reason"]
            .as_str()
            .unwrap()
            .contains("loopback, private"),
        "{letter}"
    );
    assert_eq!(
        letter["record"],
        json!({"title": "x"}),
        "the record readable beside the protobuf: {letter}"
    );
    assert!(rb.posts().is_empty(), "a private receiver was called");
}
