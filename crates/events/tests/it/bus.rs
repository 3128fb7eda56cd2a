//! The event contract against a real nats-server: provisioning, dedup,
//! optimistic concurrency, surviving a crash of the server, consumers and replay.

use std::time::Duration;

use async_nats::jetstream::stream::{Config, StorageType};
use bytes::Bytes;
use chrono::Utc;
use futures::StreamExt;
use mno_events::bus;
use mno_events::consume::{self, DurableSpec, ReplayFrom};
use mno_events::publish::{Outgoing, PublishError, Publisher};
use mno_events::streams::{self, ProvisionError, Provisioned};
use mno_harness::NatsServer;

async fn provisioned(server: &NatsServer) -> bus::Bus {
    let bus = bus::connect(&server.url()).await.expect("connect");
    streams::provision_all(&bus.js, 1).await.expect("provision");
    bus
}

fn event(subject: &str, id: &str, body: &str) -> Outgoing {
    Outgoing::new(subject, id, Bytes::from(body.to_owned()))
}

async fn stream_messages(bus: &bus::Bus, name: &str) -> u64 {
    let mut stream = bus.js.get_stream(name).await.unwrap();
    stream.info().await.unwrap().state.messages
}

#[tokio::test]
async fn connect_reports_the_server_version_and_refuses_unreachable_servers() {
    let server = NatsServer::start().await;
    let bus = bus::connect(&server.url()).await.unwrap();
    assert!(
        bus.server_version.starts_with("2."),
        "{}",
        bus.server_version
    );

    let port = mno_harness::free_port();
    let err = bus::connect(&format!("nats://127.0.0.1:{port}"))
        .await
        .unwrap_err();
    assert!(matches!(err, bus::BusError::Unreachable { .. }), "{err}");
    assert!(err.to_string().contains("deploy/nats/install.sh"), "{err}");
}

#[tokio::test]
async fn provisioning_is_idempotent_and_repairs_drift() {
    let server = NatsServer::start().await;
    let bus = bus::connect(&server.url()).await.unwrap();
    let first = streams::provision_all(&bus.js, 1).await.unwrap();
    assert!(
        first.iter().all(|(_, p)| *p == Provisioned::Created),
        "{first:?}"
    );
    let second = streams::provision_all(&bus.js, 1).await.unwrap();
    assert!(
        second.iter().all(|(_, p)| *p == Provisioned::Unchanged),
        "{second:?}"
    );

    // Someone shortened the duplicate window by hand: provisioning puts it back.
    let mut drifted = streams::records(1);
    drifted.duplicate_window = Duration::from_secs(5);
    bus.js.update_stream(drifted).await.unwrap();
    let outcome = streams::provision(&bus.js, &streams::records(1))
        .await
        .unwrap();
    assert_eq!(outcome, Provisioned::Updated);
    let info = bus
        .js
        .get_stream(streams::RECORDS)
        .await
        .unwrap()
        .info()
        .await
        .unwrap()
        .config
        .clone();
    assert_eq!(info.duplicate_window, streams::DUPLICATE_WINDOW);
}

#[tokio::test]
async fn provisioning_refuses_an_incompatible_stream() {
    let server = NatsServer::start().await;
    let bus = bus::connect(&server.url()).await.unwrap();
    // A RECORDS stream kept in memory cannot become a file stream in place.
    bus.js
        .create_stream(Config {
            name: streams::RECORDS.into(),
            subjects: vec!["rec.>".into()],
            storage: StorageType::Memory,
            ..Default::default()
        })
        .await
        .unwrap();
    let err = streams::provision(&bus.js, &streams::records(1))
        .await
        .unwrap_err();
    match &err {
        ProvisionError::Incompatible { stream, field, .. } => {
            assert_eq!(stream, "RECORDS");
            assert_eq!(*field, "storage");
        }
        other => panic!("expected Incompatible, got {other}"),
    }
    let text = err.to_string();
    assert!(text.contains("Memory") && text.contains("File"), "{text}");
    // And it left the stream alone.
    let info = bus
        .js
        .get_stream(streams::RECORDS)
        .await
        .unwrap()
        .info()
        .await
        .unwrap()
        .config
        .clone();
    assert_eq!(info.storage, StorageType::Memory);
}

#[tokio::test]
async fn the_same_msg_id_twice_is_stored_once_and_reported_duplicate() {
    let server = NatsServer::start().await;
    let bus = provisioned(&server).await;
    let publisher = Publisher::new(bus.js.clone(), streams::RECORDS);

    let first = publisher
        .publish(event("rec.o1.invoices.r1", "evt-1", "a"))
        .await
        .unwrap();
    let again = publisher
        .publish(event("rec.o1.invoices.r1", "evt-1", "a"))
        .await
        .unwrap();
    assert!(!first.duplicate);
    assert!(again.duplicate);
    assert_eq!(again.seq, first.seq);
    assert_eq!(stream_messages(&bus, streams::RECORDS).await, 1);
}

#[tokio::test]
async fn a_stale_expected_sequence_is_a_typed_conflict_and_writes_nothing() {
    let server = NatsServer::start().await;
    let bus = provisioned(&server).await;
    let publisher = Publisher::new(bus.js.clone(), streams::RECORDS);
    let subject = "rec.o1.invoices.r1";

    let created = publisher
        .publish(event(subject, "e1", "v1").expect_last_subject_seq(0))
        .await
        .unwrap();
    // Another record's write moves the stream on, not this subject.
    publisher
        .publish(event("rec.o1.invoices.r2", "e2", "x"))
        .await
        .unwrap();
    let updated = publisher
        .publish(event(subject, "e3", "v2").expect_last_subject_seq(created.seq))
        .await
        .unwrap();

    // A writer that still believes the record is at its first version.
    let err = publisher
        .publish(event(subject, "e4", "stale").expect_last_subject_seq(created.seq))
        .await
        .unwrap_err();
    match err {
        PublishError::Conflict {
            expected, current, ..
        } => {
            assert_eq!(expected, created.seq);
            assert_eq!(current, updated.seq);
        }
        other => panic!("expected a conflict, got {other}"),
    }
    // "Create" of a record that exists is a conflict too.
    let err = publisher
        .publish(event(subject, "e5", "dup-create").expect_last_subject_seq(0))
        .await
        .unwrap_err();
    assert!(matches!(err, PublishError::Conflict { current, .. } if current == updated.seq));
    assert_eq!(stream_messages(&bus, streams::RECORDS).await, 3);
    assert_eq!(
        publisher.last_subject_seq(subject).await.unwrap(),
        updated.seq
    );
}

#[tokio::test]
async fn pipelined_publishes_keep_input_order_and_report_each_outcome() {
    let server = NatsServer::start().await;
    let bus = provisioned(&server).await;
    let publisher = Publisher::new(bus.js.clone(), streams::RECORDS);
    let mut batch: Vec<Outgoing> = (0..500)
        .map(|i| event(&format!("rec.o1.items.i{i}"), &format!("p{i}"), "x"))
        .collect();
    batch.push(event("rec.o1.items.i0", "p0", "x")); // a duplicate
    batch.push(event("rec.o1.items.i1", "p-stale", "x").expect_last_subject_seq(0)); // a conflict
    let results = publisher.publish_pipelined(batch, 64).await;
    assert_eq!(results.len(), 502);
    let seqs: Vec<u64> = results[..500]
        .iter()
        .map(|r| r.as_ref().unwrap().seq)
        .collect();
    assert!(
        seqs.windows(2).all(|w| w[0] < w[1]),
        "sequences follow input order"
    );
    assert!(results[500].as_ref().unwrap().duplicate);
    assert!(matches!(results[501], Err(PublishError::Conflict { .. })));
    assert_eq!(stream_messages(&bus, streams::RECORDS).await, 500);
}

#[tokio::test]
async fn nothing_acknowledged_is_lost_when_the_server_is_killed() {
    let mut server = NatsServer::start().await;
    let bus = provisioned(&server).await;
    let publisher = Publisher::new(bus.js.clone(), streams::RECORDS);

    let mut acked = Vec::new();
    for i in 0..200 {
        let p = publisher
            .publish(event(
                &format!("rec.o1.people.p{i}"),
                &format!("k{i}"),
                "before",
            ))
            .await
            .unwrap();
        acked.push(p.seq);
    }
    server.kill9();
    // While the server is down a publish fails with a retryable error, never a silent success.
    let down = publisher
        .publish(event("rec.o1.people.down", "k-down", "x"))
        .await;
    assert!(
        down.as_ref()
            .map_err(PublishError::is_retryable)
            .unwrap_err(),
        "{down:?}"
    );
    server.restart().await;

    // The client reconnects by itself; retrying the same msg id is safe.
    let retried = loop {
        match publisher
            .publish(event("rec.o1.people.down", "k-down", "x"))
            .await
        {
            Ok(p) => break p,
            Err(e) if e.is_retryable() => tokio::time::sleep(Duration::from_millis(100)).await,
            Err(e) => panic!("{e}"),
        }
    };
    assert_eq!(retried.seq, 201);
    assert_eq!(stream_messages(&bus, streams::RECORDS).await, 201);
    let stream = bus.js.get_stream(streams::RECORDS).await.unwrap();
    for (i, seq) in acked.iter().enumerate() {
        let message = stream.direct_get(*seq).await.unwrap();
        assert_eq!(message.subject.as_str(), format!("rec.o1.people.p{i}"));
    }
}

#[tokio::test]
async fn ordered_replay_starts_at_a_sequence_or_a_time() {
    let server = NatsServer::start().await;
    let bus = provisioned(&server).await;
    let publisher = Publisher::new(bus.js.clone(), streams::RECORDS);
    for i in 1..=10 {
        publisher
            .publish(event(
                &format!("rec.o1.items.i{i}"),
                &format!("a{i}"),
                &i.to_string(),
            ))
            .await
            .unwrap();
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    let cut = Utc::now();
    tokio::time::sleep(Duration::from_millis(50)).await;
    for i in 11..=15 {
        publisher
            .publish(event(
                &format!("rec.o2.items.i{i}"),
                &format!("a{i}"),
                &i.to_string(),
            ))
            .await
            .unwrap();
    }
    let all = vec!["rec.>".to_owned()];

    let mut seen = Vec::new();
    let n = consume::replay_until_caught_up(
        &bus.js,
        streams::RECORDS,
        &all,
        ReplayFrom::Sequence(7),
        None,
        |m| {
            seen.push(m.seq);
            true
        },
    )
    .await
    .unwrap();
    assert_eq!(n, 9);
    assert_eq!(seen, (7..=15).collect::<Vec<_>>());

    let mut seen = Vec::new();
    consume::replay_until_caught_up(
        &bus.js,
        streams::RECORDS,
        &all,
        ReplayFrom::Time(cut),
        None,
        |m| {
            seen.push(std::str::from_utf8(&m.payload).unwrap().to_owned());
            true
        },
    )
    .await
    .unwrap();
    assert_eq!(seen, ["11", "12", "13", "14", "15"]);

    // Up to a sequence, with a filter on one org.
    let mut seen = Vec::new();
    consume::replay_until_caught_up(
        &bus.js,
        streams::RECORDS,
        &["rec.o1.>".to_owned()],
        ReplayFrom::Beginning,
        Some(4),
        |m| {
            seen.push(m.seq);
            true
        },
    )
    .await
    .unwrap();
    assert_eq!(seen, [1, 2, 3, 4]);

    // The raw ordered consumer reads the same from a sequence.
    let mut ordered =
        consume::replay_ordered(&bus.js, streams::RECORDS, &all, ReplayFrom::Sequence(14))
            .await
            .unwrap();
    let first = ordered.next().await.unwrap().unwrap();
    assert_eq!(first.info().unwrap().stream_sequence, 14);
}

#[tokio::test]
async fn a_durable_consumer_with_several_filters_gets_only_those_and_keeps_its_place() {
    let server = NatsServer::start().await;
    let bus = provisioned(&server).await;
    let publisher = Publisher::new(bus.js.clone(), streams::RECORDS);
    for (i, entity) in [
        "invoices", "people", "items", "invoices", "payments", "people",
    ]
    .iter()
    .enumerate()
    {
        publisher
            .publish(event(
                &format!("rec.o1.{entity}.r{i}"),
                &format!("d{i}"),
                entity,
            ))
            .await
            .unwrap();
    }
    let spec = DurableSpec::new(
        "app-b",
        vec!["rec.*.invoices.*".into(), "rec.*.people.*".into()],
    );
    let consumer = consume::durable_pull(&bus.js, streams::RECORDS, &spec)
        .await
        .unwrap();
    let batch = consume::fetch_batch(&consumer, 2, Duration::from_secs(1))
        .await
        .unwrap();
    let subjects: Vec<String> = batch.iter().map(|m| m.subject.to_string()).collect();
    assert_eq!(subjects, ["rec.o1.invoices.r0", "rec.o1.people.r1"]);
    for m in &batch {
        m.ack().await.unwrap();
    }
    // Reopening the durable (as after a restart) continues where it left off.
    let consumer = consume::durable_pull(&bus.js, streams::RECORDS, &spec)
        .await
        .unwrap();
    let batch = consume::fetch_batch(&consumer, 10, Duration::from_millis(500))
        .await
        .unwrap();
    let subjects: Vec<String> = batch.iter().map(|m| m.subject.to_string()).collect();
    assert_eq!(subjects, ["rec.o1.invoices.r3", "rec.o1.people.r5"]);
    for m in &batch {
        m.ack().await.unwrap();
    }
    // Changing its filters keeps its position.
    let wider = DurableSpec::new(
        "app-b",
        vec![
            "rec.*.invoices.*".into(),
            "rec.*.people.*".into(),
            "rec.*.payments.*".into(),
        ],
    );
    consume::durable_pull(&bus.js, streams::RECORDS, &wider)
        .await
        .unwrap();
}

#[tokio::test]
async fn an_atomic_batch_stores_all_or_nothing() {
    let server = NatsServer::start().await;
    let bus = provisioned(&server).await;
    let publisher = Publisher::new(bus.js.clone(), streams::RECORDS);
    let existing = publisher
        .publish(event("rec.o1.items.x", "x1", "v1").expect_last_subject_seq(0))
        .await
        .unwrap();

    let seqs = publisher
        .publish_atomic(vec![
            event("rec.o1.items.a", "b1", "a").expect_last_subject_seq(0),
            event("rec.o1.items.b", "b2", "b").expect_last_subject_seq(0),
            event("rec.o1.items.x", "b3", "x2").expect_last_subject_seq(existing.seq),
        ])
        .await
        .unwrap();
    assert_eq!(seqs, [2, 3, 4]);

    // One stale expectation rejects the whole batch.
    let err = publisher
        .publish_atomic(vec![
            event("rec.o1.items.c", "c1", "c").expect_last_subject_seq(0),
            event("rec.o1.items.x", "c2", "stale").expect_last_subject_seq(existing.seq),
        ])
        .await
        .unwrap_err();
    assert!(matches!(err, PublishError::BatchRejected { .. }), "{err}");
    assert_eq!(stream_messages(&bus, streams::RECORDS).await, 4);
    assert_eq!(
        publisher.last_subject_seq("rec.o1.items.c").await.unwrap(),
        0
    );
}
