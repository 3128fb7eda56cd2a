//! The outbox relay: a crash between the SQL commit and the publish, or
//! between the publish and marking the row, loses no event and doubles none.

mno_harness::on_both_databases!(
    World;
    a_crash_after_the_commit_and_before_the_publish_loses_nothing,
    a_crash_after_the_publish_and_before_marking_doubles_nothing,
    no_double_even_after_the_duplicate_window_has_passed,
    events_carry_the_envelope_and_the_msg_id,
);

use std::collections::HashMap;
use std::time::Duration;

use crate::common::{wait_for_empty_outbox, World};
use mno_events::subject::hub_kind;
use mno_hub::store::{orgs, outbox, users};
use mno_hub::{HubConfig, RelayFailpoint};

fn with_failpoint(failpoint: RelayFailpoint) -> HubConfig {
    HubConfig {
        relay_failpoint: Some(failpoint),
        ..HubConfig::default()
    }
}

/// Three state changes: a user (1 event) and an org (org_created + member_added).
async fn make_changes(hub: &mno_hub::Hub) -> usize {
    let user = users::create(hub.store(), "ann@example.com", "Ann", "not-a-real-hash")
        .await
        .unwrap();
    orgs::create(hub.store(), &user.id, "Acme", "USD", "UTC", "US")
        .await
        .unwrap();
    3
}

fn assert_each_outbox_id_once(events: &[mno_events::proto::HubEvent], expected: usize) {
    let mut seen: HashMap<u64, usize> = HashMap::new();
    for event in events {
        *seen.entry(event.outbox_id).or_default() += 1;
    }
    assert_eq!(events.len(), expected, "events: {events:?}");
    assert!(
        seen.values().all(|n| *n == 1),
        "an event was doubled: {seen:?}"
    );
    let ids: Vec<u64> = events.iter().map(|e| e.outbox_id).collect();
    let mut sorted = ids.clone();
    sorted.sort();
    assert_eq!(ids, sorted, "published out of outbox order");
}

async fn a_crash_after_the_commit_and_before_the_publish_loses_nothing(world: &World) {
    let hub = world
        .hub(with_failpoint(RelayFailpoint::NeverPublish))
        .await;
    let expected = make_changes(&hub).await;
    // Committed, not published.
    assert_eq!(
        outbox::backlog(&hub.store().pool).await.unwrap(),
        expected as i64
    );
    assert!(world.hub_events().await.is_empty());
    drop(hub); // the "crash": no shutdown, nothing flushed

    let hub = world.hub(HubConfig::default()).await;
    wait_for_empty_outbox(&hub).await;
    world.wait_for_hub_messages(expected as u64).await;
    let events = world.hub_events().await;
    assert_each_outbox_id_once(&events, expected);
    let kinds: Vec<&str> = events.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(
        kinds,
        [
            hub_kind::USER_CREATED,
            hub_kind::ORG_CREATED,
            hub_kind::MEMBER_ADDED
        ]
    );
    hub.shutdown().await;
}

async fn a_crash_after_the_publish_and_before_marking_doubles_nothing(world: &World) {
    let hub = world
        .hub(with_failpoint(RelayFailpoint::PublishWithoutMarking))
        .await;
    let expected = make_changes(&hub).await;
    world.wait_for_hub_messages(expected as u64).await;
    // Published but not marked: the next run sees them as pending.
    assert!(outbox::backlog(&hub.store().pool).await.unwrap() > 0);
    drop(hub);

    let hub = world.hub(HubConfig::default()).await;
    wait_for_empty_outbox(&hub).await;
    // One more change shows the relay is live, and that the stream holds it after the others.
    users::create(hub.store(), "bob@example.com", "Bob", "not-a-real-hash")
        .await
        .unwrap();
    world.wait_for_hub_messages(expected as u64 + 1).await;
    assert_each_outbox_id_once(&world.hub_events().await, expected + 1);
    hub.shutdown().await;
}

/// Beyond JetStream's duplicate window, the relay still does not double: on
/// start it checks the stream itself for rows published but not marked.
async fn no_double_even_after_the_duplicate_window_has_passed(world: &World) {
    // A HUB stream whose duplicate window is short enough to outwait.
    world.bus.js.delete_stream("HUB").await.unwrap();
    let mut config = mno_events::streams::hub(1);
    config.duplicate_window = Duration::from_millis(500);
    world.bus.js.create_stream(config).await.unwrap();

    let hub = world
        .hub(with_failpoint(RelayFailpoint::PublishWithoutMarking))
        .await;
    let expected = make_changes(&hub).await;
    world.wait_for_hub_messages(expected as u64).await;
    drop(hub);
    tokio::time::sleep(Duration::from_millis(1500)).await;

    let hub = world.hub(HubConfig::default()).await;
    wait_for_empty_outbox(&hub).await;
    users::create(hub.store(), "bob@example.com", "Bob", "not-a-real-hash")
        .await
        .unwrap();
    world.wait_for_hub_messages(expected as u64 + 1).await;
    assert_each_outbox_id_once(&world.hub_events().await, expected + 1);
    hub.shutdown().await;
}

async fn events_carry_the_envelope_and_the_msg_id(world: &World) {
    let hub = world.hub(HubConfig::default()).await;
    let user = users::create(hub.store(), "ann@example.com", "Ann", "x")
        .await
        .unwrap();
    world.wait_for_hub_messages(1).await;
    let stream = world.bus.js.get_stream("HUB").await.unwrap();
    let message = stream
        .direct_get_last_for_subject("hub._platform.user_created")
        .await
        .unwrap();
    let event = mno_events::proto::HubEvent::from_bytes(&message.payload).unwrap();
    assert_eq!(
        message.headers.get("Nats-Msg-Id").map(|v| v.as_str()),
        Some(format!("hub-{}", event.outbox_id).as_str())
    );
    assert_eq!(event.user_id, user.id);
    assert_eq!(event.org, "_platform");
    assert!(!event.event_id.is_empty());
    let payload = event.payload_json().unwrap();
    assert_eq!(payload["name"], "Ann");
    assert!(!String::from_utf8_lossy(&event.payload).contains("password"));
    hub.shutdown().await;
}
