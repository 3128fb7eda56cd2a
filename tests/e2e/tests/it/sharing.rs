//! Data sharing per entity: an org narrows what it shares with an app to
//! some of the app's shared entities. The app's record API calls and its
//! webhook follow; bad input and other orgs' admins change nothing.

use std::collections::BTreeSet;

use crate::fanout_support::*;
use futures::StreamExt;
use mno_e2e::hub_client::{basic_auth, bearer, App};
use mno_events::proto::HubEvent;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

impl World {
    /// A writer app, and a reader whose webhook is `receiver`; both share
    /// invoices and people, both installed.
    async fn writer_and_reader(&self, receiver: &Receiver) -> (App, App) {
        let shares = [("invoices", true, true), ("people", true, true)];
        let writer = self
            .hub
            .create_app(&self.token, "Writer", None, &shares)
            .await
            .unwrap();
        let reader = self
            .hub
            .create_app(&self.token, "Reader", Some(&receiver.url()), &shares)
            .await
            .unwrap();
        for app in [&writer, &reader] {
            self.hub
                .install(&self.token, &self.org, &app.id)
                .await
                .unwrap();
        }
        wait_consumer(&self.js(), &reader.id).await;
        (writer, reader)
    }

    /// Publish a change of `entity` made by `writer`; its stream sequence.
    async fn write_as(&self, writer: &App, entity: &str, record: &str) -> u64 {
        let state = match entity {
            "people" => json!({"first_name": record}),
            _ => json!({"title": record, "amount": "10.00"}),
        };
        write(
            &self.js(),
            Change {
                org: &self.org,
                entity,
                record_id: record,
                version: 1,
                source: Some((&writer.id, record)),
                state,
            },
        )
        .await
    }

    /// The app's record API call on `entity` of the org.
    async fn record_call(&self, app: &App, method: Method, entity: &str) -> (StatusCode, Value) {
        let record = match entity {
            "people" => json!({"first_name": "Reader"}),
            _ => json!({"title": "From the reader", "total_amount": "1.00", "currency": "USD"}),
        };
        let body = (method == Method::POST).then(|| json!({ entity: record }));
        self.hub
            .call(
                method,
                &format!("/connec/api/v2/{}/{entity}", self.org),
                Some(&basic_auth(&app.key, &app.secret)),
                body,
            )
            .await
            .unwrap()
    }

    async fn patch_install(&self, token: &str, app: &App, body: Value) -> (StatusCode, Value) {
        self.hub
            .call(
                Method::PATCH,
                &format!("/hub/v1/orgs/{}/installs/{}", self.org, app.id),
                Some(&bearer(token)),
                Some(body),
            )
            .await
            .unwrap()
    }

    async fn install_of(&self, app: &App) -> Value {
        self.hub
            .expect(
                StatusCode::OK,
                Method::GET,
                &format!("/hub/v1/orgs/{}/installs/{}", self.org, app.id),
                Some(&bearer(&self.token)),
                None,
            )
            .await
            .unwrap()
    }
}

/// Wait until the reader got the person `ann` and its consumer is past
/// `last`; not one invoice may have reached it.
async fn people_only_through(world: &World, receiver: &Receiver, reader: &App, last: u64) {
    wait_received(
        receiver,
        &BTreeSet::from([("ann".to_owned(), 1)]),
        "the reader gets the person",
    )
    .await;
    wait_caught_up(&world.js(), &reader.id, last).await;
    assert!(
        receiver.received().iter().all(|r| r.entity != "invoices"),
        "an invoice reached the reader after the org stopped sharing invoices: {:?}",
        receiver.distinct()
    );
}

fn detail(body: &Value) -> String {
    body["errors"][0]["detail"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_org_narrows_sharing_to_some_entities_and_widens_it_again() {
    let world = World::new().await;
    let receiver = Receiver::start().await;
    let (writer, reader) = world.writer_and_reader(&receiver).await;
    assert_eq!(world.install_of(&reader).await["entities"], Value::Null);
    // Allowed before, so the edge's IDM cache holds an allow to be dropped.
    let (status, body) = world.record_call(&reader, Method::GET, "invoices").await;
    assert_eq!(status, StatusCode::OK, "GET invoices: {body}");

    // Narrowed to people: invoices are refused to the app, with the reason,
    // as soon as the PATCH answers; the Hub event carries the list.
    let mut hub_events = world
        .platform
        .running()
        .bus
        .client
        .subscribe(format!("hub.{}.install_updated", world.org))
        .await
        .unwrap();
    let (status, narrowed) = world
        .patch_install(&world.token, &reader, json!({"entities": ["people"]}))
        .await;
    assert_eq!(status, StatusCode::OK, "{narrowed}");
    assert_eq!(narrowed["entities"], json!(["people"]));
    assert_eq!(narrowed["data_sharing"], true);
    let event = tokio::time::timeout(std::time::Duration::from_secs(10), hub_events.next())
        .await
        .expect("an install_updated event")
        .unwrap();
    let payload = HubEvent::from_bytes(&event.payload)
        .unwrap()
        .payload_json()
        .unwrap();
    assert_eq!(payload["entities"], json!(["people"]), "{payload}");
    assert_eq!(payload["app_id"], reader.id.as_str(), "{payload}");
    assert_eq!(
        world.install_of(&reader).await["entities"],
        json!(["people"])
    );
    // The app sees what its customer shares with it.
    let customer = world
        .hub
        .expect(
            StatusCode::OK,
            Method::GET,
            &format!("/hub/v1/app/orgs/{}", world.org),
            Some(&basic_auth(&reader.key, &reader.secret)),
            None,
        )
        .await
        .unwrap();
    assert_eq!(customer["entities"], json!(["people"]), "{customer}");
    for method in [Method::GET, Method::POST] {
        let (status, body) = world.record_call(&reader, method.clone(), "invoices").await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{method} invoices: {body}");
        let why = detail(&body);
        assert!(
            why.contains(&format!(
                "organisation {} does not share invoices with this app",
                world.org
            )) && why.contains("an admin of the org can share it"),
            "{method} invoices: {body}"
        );
    }
    let (status, body) = world.record_call(&reader, Method::GET, "people").await;
    assert_eq!(status, StatusCode::OK, "GET people: {body}");

    // Delivery re-reads an app's installs at most this old: past it, the
    // narrowing is what every delivery decision reads.
    tokio::time::sleep(mno_connec_sync::delivery::DeliveryConfig::default().installs_ttl).await;
    world.write_as(&writer, "invoices", "inv-hidden").await;
    let last = world.write_as(&writer, "people", "ann").await;
    people_only_through(&world, &receiver, &reader, last).await;

    // An entity the app does not share: 422 naming it and the valid ones; nothing changes.
    let before = world.install_of(&reader).await;
    let (status, body) = world
        .patch_install(
            &world.token,
            &reader,
            json!({"entities": ["people", "payments"], "data_sharing": false}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(
        body["errors"][0]["source"]["pointer"], "/entities/1",
        "{body}"
    );
    let why = detail(&body);
    assert!(
        why.contains("\"payments\"") && why.contains("invoices, people"),
        "{body}"
    );
    assert_eq!(world.install_of(&reader).await, before);

    // Another org's admin cannot change it.
    let (_, other) = world
        .hub
        .signup_and_login("mallory@example.com")
        .await
        .unwrap();
    world
        .hub
        .create_org(&other, "Mallory Ltd", "USD")
        .await
        .unwrap();
    let (status, body) = world
        .patch_install(&other, &reader, json!({"entities": null}))
        .await;
    assert!(
        status == StatusCode::FORBIDDEN || status == StatusCode::NOT_FOUND,
        "another org's admin: {status} {body}"
    );
    assert_eq!(world.install_of(&reader).await, before);

    // Widened again (null: all the app's entities): both work.
    let (status, widened) = world
        .patch_install(&world.token, &reader, json!({"entities": null}))
        .await;
    assert_eq!(status, StatusCode::OK, "{widened}");
    assert_eq!(widened["entities"], Value::Null);
    let (status, body) = world.record_call(&reader, Method::GET, "invoices").await;
    assert_eq!(status, StatusCode::OK, "GET invoices: {body}");
    let (status, body) = world.record_call(&reader, Method::POST, "invoices").await;
    assert!(status.is_success(), "POST invoices: {status} {body}");
    world.write_as(&writer, "invoices", "inv-shared").await;
    world.write_as(&writer, "people", "bob").await;
    wait_received(
        &receiver,
        &BTreeSet::from([("inv-shared".to_owned(), 1), ("bob".to_owned(), 1)]),
        "the reader gets invoices and people again",
    )
    .await;
}

/// Changes already waiting for a receiver that is down when the org narrows
/// sharing: those of the entity no longer shared are dropped, the others go
/// out when it is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiting_changes_of_an_entity_no_longer_shared_are_dropped() {
    let world = World::with(|c| {
        c.webhook_retry_schedule =
            Some("200ms,400ms,400ms,400ms,400ms,400ms,400ms,400ms,400ms,400ms".into())
    })
    .await;
    let mut receiver = Receiver::start().await;
    let (writer, reader) = world.writer_and_reader(&receiver).await;
    receiver.stop().await;
    world.write_as(&writer, "invoices", "inv-waiting").await;
    let last = world.write_as(&writer, "people", "ann").await;
    // Both were read and tried: they wait in the reader's lanes for a retry.
    mno_harness::wait_for(
        "the reader's consumer to hold both changes",
        std::time::Duration::from_secs(15),
        || async {
            let lag = lag(&world.js(), &reader.id).await?;
            (lag.delivered_seq >= last && lag.ack_pending == 2).then_some(())
        },
    )
    .await;

    let (status, body) = world
        .patch_install(&world.token, &reader, json!({"entities": ["people"]}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // Past the installs cache age, every retry reads the narrowing.
    tokio::time::sleep(mno_connec_sync::delivery::DeliveryConfig::default().installs_ttl).await;
    receiver.restart().await;
    people_only_through(&world, &receiver, &reader, last).await;
}
