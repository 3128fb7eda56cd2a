//! Real-time fan-out: who receives what, in which ids, signed how, and what
//! happens when receivers, apps or the bus misbehave. Every receiver is a
//! real HTTP server; the platform runs against its own nats-server.

use std::collections::BTreeSet;
use std::time::Duration;

use crate::fanout_support::*;
use mno_e2e::hub_client::{basic_auth, App};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

impl World {
    /// An app with a webhook to `receiver`, reading and writing `entities`; installed when `install`.
    async fn app(&self, name: &str, receiver: &Receiver, entities: &[&str], install: bool) -> App {
        let shared: Vec<(&str, bool, bool)> = entities.iter().map(|e| (*e, true, true)).collect();
        let app = self
            .hub
            .create_app(&self.token, name, Some(&receiver.url()), &shared)
            .await
            .expect("create app");
        if install {
            self.hub
                .install(&self.token, &self.org, &app.id)
                .await
                .expect("install");
            wait_consumer(&self.js(), &app.id).await;
        }
        app
    }

    async fn write(&self, record: &str, version: u64, source: Option<(&str, &str)>) -> u64 {
        write(
            &self.js(),
            Change {
                org: &self.org,
                entity: "invoices",
                record_id: record,
                version,
                source,
                state: json!({"title": format!("{record} v{version}"), "amount": "10.00"}),
            },
        )
        .await
    }

    /// Wait until `app`'s consumer has acknowledged everything it was given.
    async fn caught_up(&self, app: &App) {
        mno_harness::wait_for(
            "the app's consumer to catch up",
            Duration::from_secs(10),
            || async {
                let lag = lag(&self.js(), &app.id).await?;
                (lag.pending == 0 && lag.ack_pending == 0).then_some(())
            },
        )
        .await;
    }

    /// Redrive dead letter `seq` of `app`, asked with the app's credentials.
    async fn redrive(&self, app: &App, seq: u64) -> (StatusCode, Value) {
        self.hub
            .call(
                Method::POST,
                &format!("/connec/api/v2/deliveries/{}/dlq/{seq}/redrive", app.id),
                Some(&basic_auth(&app.key, &app.secret)),
                None,
            )
            .await
            .expect("POST redrive")
    }

    async fn get(&self, path: &str, app: &App) -> (StatusCode, Value) {
        self.hub
            .call(
                Method::GET,
                path,
                Some(&basic_auth(&app.key, &app.secret)),
                None,
            )
            .await
            .expect("GET")
    }
}

#[tokio::test]
async fn subscribers_receive_in_their_view_the_author_and_uninstalled_apps_do_not() {
    let world = World::new().await;
    let (ra, rb, rc, rd) = (
        Receiver::start().await,
        Receiver::start().await,
        Receiver::start().await,
        Receiver::start().await,
    );
    let a = world.app("A", &ra, &["invoices"], true).await;
    let b = world.app("B", &rb, &["invoices"], true).await;
    let _c = world.app("C", &rc, &["invoices"], true).await;
    let d = world.app("D", &rd, &["invoices"], false).await;

    let mut expected = BTreeSet::new();
    let mut last = 0;
    for i in 0..5 {
        let record = format!("inv-{i}");
        last = world
            .write(&record, 1, Some((&a.id, &format!("A-{i}"))))
            .await;
        expected.insert((record, 1));
    }
    wait_received(&rb, &expected, "B to receive A's invoices").await;
    wait_received(&rc, &expected, "C to receive A's invoices").await;
    wait_caught_up(&world.js(), &a.id, last).await;
    // Installed nowhere, D has no consumer: nothing reaches it, at no cost.
    assert!(lag(&world.js(), &d.id).await.is_none(), "D has a consumer");
    assert!(ra.posts().is_empty(), "A got its own changes back");
    assert!(rd.posts().is_empty(), "D is not installed but received");

    // Connec! shape, in B's view: array ids, op, version, group_id.
    let post = &rb.posts()[0];
    let record = &post.body["invoices"][0];
    assert_eq!(record["op"], "created");
    assert_eq!(record["version"], 1);
    assert_eq!(record["group_id"], world.org.as_str());
    assert!(connec_id(&record["id"]).is_some_and(|id| id.starts_with("inv-")));
    assert!(post.signature.starts_with("v1,"), "{}", post.signature);
    assert!(!post.webhook_id.is_empty() && !post.timestamp.is_empty());

    // B tells its own id back in its answer; from then on B sees its id.
    rb.answer_with(|post| {
        let ids: Vec<Value> = post
            .records()
            .iter()
            .map(|r| json!({"entity": r.entity, "id": r.id, "local_id": format!("B-{}", r.id)}))
            .collect();
        (200, json!({ "id_map": ids }).to_string())
    });
    world.write("inv-0", 2, Some((&a.id, "A-0"))).await;
    wait_received(&rb, &BTreeSet::from([("inv-0".to_owned(), 2)]), "v2 at B").await;
    world.write("inv-0", 3, Some((&a.id, "A-0"))).await;
    wait_received(&rb, &BTreeSet::from([("inv-0".to_owned(), 3)]), "v3 at B").await;
    let v3 = rb
        .received()
        .into_iter()
        .find(|r| r.id == "inv-0" && r.version == 3)
        .unwrap();
    assert_eq!(
        provider_id(&v3.record["id"], &b.id).as_deref(),
        Some("B-inv-0"),
        "B's local id, recorded from its id_map answer: {}",
        v3.record
    );
    assert_ids_name_one_content(&rb.posts());

    // The delivery log shows B's attempts to B, and nothing to a stranger.
    let (status, log) = world
        .get(
            &format!("/connec/api/v2/deliveries?app={}&status=delivered", b.id),
            &b,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{log}");
    let entries = log["deliveries"].as_array().unwrap();
    assert!(!entries.is_empty());
    assert!(entries
        .iter()
        .all(|e| e["status"] == "delivered" && e["http_status"] == 200));
    let (status, body) = world
        .get(&format!("/connec/api/v2/deliveries?app={}", b.id), &d)
        .await;
    assert!(
        status == StatusCode::FORBIDDEN || status == StatusCode::NOT_FOUND,
        "{status} {body}"
    );
    let (status, body) = world
        .get(
            &format!("/connec/api/v2/deliveries?app={}&status=bogus", b.id),
            &b,
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["errors"][0]["source"]["parameter"], "status");
}

/// An app that gives its own id through the API (`PUT .../id_map`) sees it in
/// every later delivery: of a record delivery saw created (known from the
/// stream) and of one created before the app subscribed (read in the id map).
#[tokio::test]
async fn an_id_given_through_the_api_is_in_the_next_deliveries() {
    let world = World::new().await;
    let (ra, rb) = (Receiver::start().await, Receiver::start().await);
    let a = world.app("A", &ra, &["invoices"], true).await;
    world.write("inv-pre", 1, Some((&a.id, "A-pre"))).await;
    let b = world.app("B", &rb, &["invoices"], true).await;
    world.write("inv-new", 1, Some((&a.id, "A-new"))).await;
    wait_received(&rb, &BTreeSet::from([("inv-new".to_owned(), 1)]), "v1 at B").await;
    let first = rb
        .received()
        .into_iter()
        .find(|r| r.id == "inv-new")
        .unwrap();
    assert_eq!(
        provider_id(&first.record["id"], &b.id),
        None,
        "{}",
        first.record
    );

    for record in ["inv-new", "inv-pre"] {
        let (status, body) = world
            .hub
            .call(
                Method::PUT,
                &format!("/connec/api/v2/{}/invoices/{record}/id_map", world.org),
                Some(&basic_auth(&b.key, &b.secret)),
                Some(json!({"local_id": format!("B-{record}")})),
            )
            .await
            .expect("PUT id_map");
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    world.write("inv-new", 2, Some((&a.id, "A-new"))).await;
    world.write("inv-pre", 2, Some((&a.id, "A-pre"))).await;
    let expected = BTreeSet::from([("inv-new".to_owned(), 2), ("inv-pre".to_owned(), 2)]);
    wait_received(&rb, &expected, "v2 of both at B").await;
    for record in ["inv-new", "inv-pre"] {
        let v2 = rb
            .received()
            .into_iter()
            .find(|r| r.id == record && r.version == 2)
            .unwrap();
        assert_eq!(
            provider_id(&v2.record["id"], &b.id),
            Some(format!("B-{record}")),
            "{}",
            v2.record
        );
    }
    assert!(ra.posts().is_empty(), "A got its own changes back");
    // Each POST is what the document's `records` webhook says.
    for post in rb.posts() {
        assert_matches_webhook_schema(&world.platform, "records", &post.body).await;
    }
}

#[tokio::test]
async fn uninstalled_or_sharing_off_apps_stop_receiving_within_a_second() {
    let world = World::new().await;
    let (ra, rb, rc, rd) = (
        Receiver::start().await,
        Receiver::start().await,
        Receiver::start().await,
        Receiver::start().await,
    );
    let a = world.app("A", &ra, &["invoices"], true).await;
    let b = world.app("B", &rb, &["invoices"], true).await;
    let c = world.app("C", &rc, &["invoices"], true).await;
    let _witness = world.app("W", &rd, &["invoices"], true).await;

    world.write("r1", 1, Some((&a.id, "1"))).await;
    let r1 = BTreeSet::from([("r1".to_owned(), 1)]);
    wait_received(&rb, &r1, "B gets r1").await;
    wait_received(&rc, &r1, "C gets r1").await;

    world
        .hub
        .uninstall(&world.token, &world.org, &b.id)
        .await
        .unwrap();
    world
        .hub
        .set_data_sharing(&world.token, &world.org, &c.id, false)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;

    let last = world.write("r2", 1, Some((&a.id, "2"))).await;
    wait_received(
        &rd,
        &BTreeSet::from([("r2".to_owned(), 1)]),
        "the witness gets r2",
    )
    .await;
    // Installed nowhere with data sharing, B and C no longer have a consumer
    // at all (none costs the bus on every write).
    wait_no_consumer(&world.js(), &b.id).await;
    wait_no_consumer(&world.js(), &c.id).await;
    assert!(last > 0);
    assert!(
        !rb.distinct().contains(&("r2".to_owned(), 1)),
        "uninstalled B received"
    );
    assert!(
        !rc.distinct().contains(&("r2".to_owned(), 1)),
        "C with sharing off received"
    );
}

#[tokio::test]
async fn a_receiver_down_for_a_while_gets_every_event_in_order_per_record() {
    let world = World::with(|c| {
        c.webhook_retry_schedule = Some("200ms,400ms,800ms,1s,1s,1s,1s,1s,1s,1s".into())
    })
    .await;
    let (ra, mut rb) = (Receiver::start().await, Receiver::start().await);
    let a = world.app("A", &ra, &["invoices"], true).await;
    let b = world.app("B", &rb, &["invoices"], true).await;
    rb.stop().await;

    let mut expected = BTreeSet::new();
    for version in 1..=5 {
        for record in ["p", "q", "r", "s"] {
            world.write(record, version, Some((&a.id, record))).await;
            expected.insert((record.to_owned(), version));
        }
    }
    // Wait until delivery has failed against the closed port, then bring the receiver back.
    mno_harness::wait_for(
        "failed attempts in the log",
        Duration::from_secs(15),
        || async {
            let (_, log) = world
                .get(
                    &format!("/connec/api/v2/deliveries?app={}&status=failed", b.id),
                    &b,
                )
                .await;
            (log["deliveries"].as_array().map_or(0, Vec::len) >= 2).then_some(())
        },
    )
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    rb.restart().await;

    wait_received(&rb, &expected, "every event after the receiver came back").await;
    for (record, versions) in first_arrival_versions(&rb.received()) {
        assert_eq!(versions, vec![1, 2, 3, 4, 5], "order of {record}");
    }
    assert_ids_name_one_content(&rb.posts());
}

#[tokio::test]
async fn a_failing_record_holds_back_only_its_own_later_events() {
    let world = World::with(|c| {
        c.webhook_retry_schedule = Some("300ms,300ms,300ms,300ms,300ms,300ms".into())
    })
    .await;
    let (ra, rb) = (Receiver::start().await, Receiver::start().await);
    let a = world.app("A", &ra, &["invoices"], true).await;
    let _b = world.app("B", &rb, &["invoices"], true).await;
    let failures = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let count = failures.clone();
    // The receiver refuses record "stuck" three times.
    rb.answer_with(move |post| {
        let stuck = post.records().iter().any(|r| r.id == "stuck");
        if stuck && count.fetch_add(1, std::sync::atomic::Ordering::SeqCst) < 3 {
            (500, "{}".into())
        } else {
            (200, "{}".into())
        }
    });
    world.write("stuck", 1, Some((&a.id, "s"))).await;
    world.write("stuck", 2, Some((&a.id, "s"))).await;
    world.write("free", 1, Some((&a.id, "f"))).await;
    let all = BTreeSet::from([
        ("stuck".to_owned(), 1),
        ("stuck".to_owned(), 2),
        ("free".to_owned(), 1),
    ]);
    wait_received(&rb, &all, "all three events").await;
    let firsts: Vec<(String, u64)> = {
        let mut seen = BTreeSet::new();
        rb.received()
            .into_iter()
            .map(|r| (r.id, r.version))
            .filter(|k| seen.insert(k.clone()))
            .collect()
    };
    let pos = |k: (&str, u64)| {
        firsts
            .iter()
            .position(|f| f.0 == k.0 && f.1 == k.1)
            .unwrap()
    };
    assert!(
        pos(("free", 1)) < pos(("stuck", 2)),
        "free flowed past: {firsts:?}"
    );
    assert!(
        pos(("stuck", 1)) < pos(("stuck", 2)),
        "stuck kept its order: {firsts:?}"
    );
    // Every retry of the failing event carried one and the same webhook-id.
    let ids: BTreeSet<String> = rb
        .posts()
        .iter()
        .filter(|p| {
            p.records()
                .iter()
                .any(|r| r.id == "stuck" && r.version == 1)
        })
        .filter(|p| p.records().len() == 1)
        .map(|p| p.webhook_id.clone())
        .collect();
    assert_eq!(ids.len(), 1, "retries changed the webhook-id: {ids:?}");
}

#[tokio::test]
async fn dead_letters_keep_the_reason_and_a_redrive_delivers_them() {
    let world = World::new().await;
    let (ra, rb) = (Receiver::start().await, Receiver::start().await);
    let a = world.app("A", &ra, &["invoices"], true).await;
    let b = world.app("B", &rb, &["invoices"], true).await;
    rb.answer_with(|_| (500, r#"{"oops":"database down"}"#.into()));
    world.write("doomed", 1, Some((&a.id, "d"))).await;

    let dlq_path = format!("/connec/api/v2/deliveries/{}/dlq", b.id);
    let letters = mno_harness::wait_for("a dead letter", Duration::from_secs(20), || async {
        let (_, body) = world.get(&dlq_path, &b).await;
        let letters = body["dead_letters"].as_array()?.clone();
        (!letters.is_empty()).then_some(letters)
    })
    .await;
    let letter = &letters[0];
    assert_eq!(letter["record_id"], "doomed");
    assert_eq!(letter["last_status"], 500);
    assert!(letter["last_response"]
        .as_str()
        .unwrap()
        .contains("database down"));
    assert!(
        letter["reason"].as_str().unwrap().contains("500"),
        "{letter}"
    );
    assert_eq!(letter["attempts"], 4, "one attempt and three retries");
    let seq = letter["seq"].as_u64().unwrap();
    let (status, shown) = world.get(&format!("{dlq_path}/{seq}"), &b).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(shown["dead_letter"]["event_id"], letter["event_id"]);
    let (status, missing) = world.get(&format!("{dlq_path}/999999"), &b).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{missing}");
    let (_, log) = world
        .get(
            &format!(
                "/connec/api/v2/deliveries?app={}&status=dead_lettered",
                b.id
            ),
            &b,
        )
        .await;
    assert_eq!(log["deliveries"].as_array().unwrap().len(), 1, "{log}");

    rb.answer_with(|_| (200, "{}".into()));
    let before = rb.posts().len();
    // Asked twice at once (an impatient operator): delivered once, not dead-lettered twice.
    let ((status, body), (again, _)) = tokio::join!(world.redrive(&b, seq), world.redrive(&b, seq));
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert!(
        again == StatusCode::ACCEPTED || again == StatusCode::NOT_FOUND,
        "{again}"
    );
    mno_harness::wait_for("the redriven event", Duration::from_secs(10), || async {
        (rb.posts().len() > before && rb.posts().last().unwrap().records()[0].id == "doomed")
            .then_some(())
    })
    .await;
    assert_eq!(
        rb.posts().last().unwrap().webhook_id,
        letter["event_id"].as_str().unwrap()
    );
    mno_harness::wait_for("the DLQ to empty", Duration::from_secs(10), || async {
        let (_, body) = world.get(&dlq_path, &b).await;
        body["dead_letters"].as_array()?.is_empty().then_some(())
    })
    .await;
    let redelivered = rb
        .posts()
        .iter()
        .skip(before)
        .filter(|p| p.records().iter().any(|r| r.id == "doomed"))
        .count();
    assert_eq!(redelivered, 1, "one redrive delivery for two asks");
}

#[tokio::test]
async fn a_redrive_never_takes_an_app_back_to_an_older_version_of_a_record() {
    let world = World::with(|c| c.webhook_retry_schedule = Some("100ms,100ms".into())).await;
    let (ra, rb) = (Receiver::start().await, Receiver::start().await);
    let a = world.app("A", &ra, &["invoices"], true).await;
    let b = world.app("B", &rb, &["invoices"], true).await;
    rb.answer_with(|_| (500, "{}".into()));
    world.write("r5", 1, Some((&a.id, "r"))).await;
    let dlq_path = format!("/connec/api/v2/deliveries/{}/dlq", b.id);
    let seq = mno_harness::wait_for(
        "version 1 dead-lettered",
        Duration::from_secs(20),
        || async {
            let (_, body) = world.get(&dlq_path, &b).await;
            body["dead_letters"].as_array()?.first()?["seq"].as_u64()
        },
    )
    .await;

    // The receiver recovers and gets version 2; the app's consumer passes it.
    rb.answer_with(|_| (200, "{}".into()));
    world.write("r5", 2, Some((&a.id, "r"))).await;
    wait_received(&rb, &BTreeSet::from([("r5".to_owned(), 2)]), "version 2").await;
    world.caught_up(&b).await;

    let (status, body) = world.redrive(&b, seq).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(body["redriven"], json!([]), "{body}");
    assert_eq!(body["superseded"], json!([{"seq": seq, "by_version": 2}]));
    let (_, listed) = world.get(&dlq_path, &b).await;
    assert_eq!(listed["dead_letters"], json!([]), "removed: {listed}");
    let delivered: Vec<u64> = rb
        .received()
        .into_iter()
        .filter(|r| r.id == "r5")
        .map(|r| r.version)
        .collect();
    assert_eq!(delivered, [2], "version 1 was never sent after version 2");
}

#[tokio::test]
async fn changes_a_killed_run_took_but_never_delivered_come_first_after_a_restart() {
    let mut world = World::new().await;
    let (ra, rb) = (Receiver::start().await, Receiver::start().await);
    let a = world.app("A", &ra, &["invoices"], true).await;
    let b = world.app("B", &rb, &["invoices"], true).await;
    world.write("r", 1, Some((&a.id, "r"))).await;
    wait_received(&rb, &BTreeSet::from([("r".to_owned(), 1)]), "version 1").await;
    world.caught_up(&b).await;

    // The platform goes; two more changes come; a run of it takes version 2
    // from B's consumer and dies before delivering or acknowledging it.
    world.platform.stop().await;
    let js = async_nats::jetstream::new(world.platform.nats.client().await);
    for version in [2, 3] {
        write(
            &js,
            Change {
                org: &world.org,
                entity: "invoices",
                record_id: "r",
                version,
                source: Some((&a.id, "r")),
                state: json!({"title": format!("r v{version}")}),
            },
        )
        .await;
    }
    let stream = js.get_stream("RECORDS").await.unwrap();
    let consumer: async_nats::jetstream::consumer::PullConsumer = stream
        .get_consumer(&format!("delivery-{}", b.id))
        .await
        .unwrap();
    let mut taken = consumer.fetch().max_messages(1).messages().await.unwrap();
    let held = futures::StreamExt::next(&mut taken).await.unwrap().unwrap();
    assert!(
        held.info().unwrap().stream_sequence > 0,
        "version 2 taken, never acked"
    );
    drop(taken);

    // The next run sends version 2 first, at once, then version 3.
    world.platform.restart().await;
    let both = BTreeSet::from([("r".to_owned(), 2), ("r".to_owned(), 3)]);
    wait_received(&rb, &both, "versions 2 and 3").await;
    let order: Vec<u64> = rb
        .received()
        .into_iter()
        .filter(|r| r.id == "r")
        .map(|r| r.version)
        .collect();
    assert_eq!(&order[..3], [1, 2, 3], "in version order: {order:?}");
}

#[tokio::test]
async fn recover_resends_everything_since_a_sequence() {
    let world = World::new().await;
    let (ra, rb) = (Receiver::start().await, Receiver::start().await);
    let a = world.app("A", &ra, &["invoices"], true).await;
    let b = world.app("B", &rb, &["invoices"], true).await;
    let first = world.write("x", 1, Some((&a.id, "x"))).await;
    world.write("y", 1, Some((&a.id, "y"))).await;
    let expected = BTreeSet::from([("x".to_owned(), 1), ("y".to_owned(), 1)]);
    wait_received(&rb, &expected, "x and y").await;
    let before = rb.received().len();
    let (status, body) = world
        .hub
        .call(
            Method::POST,
            &format!("/connec/api/v2/deliveries/{}/recover", b.id),
            Some(&basic_auth(&b.key, &b.secret)),
            Some(json!({"since": first})),
        )
        .await
        .unwrap();
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    mno_harness::wait_for("x and y again", Duration::from_secs(15), || async {
        (rb.received().len() >= before + 2).then_some(())
    })
    .await;
    let (status, body) = world
        .hub
        .call(
            Method::POST,
            &format!("/connec/api/v2/deliveries/{}/recover", b.id),
            Some(&basic_auth(&b.key, &b.secret)),
            Some(json!({"since": "yesterday"})),
        )
        .await
        .unwrap();
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["errors"][0]["source"]["pointer"], "/since");
}
