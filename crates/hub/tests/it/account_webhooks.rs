//! Account webhooks are durable: events that happen while no process sends
//! them (the sender stopped, the receiver down) are delivered, each once,
//! when a Hub starts again; the durable consumer on HUB kept its place.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::common::{wait_for_empty_outbox, World};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::post;
use mno_events::directory::AppStack;
use mno_hub::access::Role;
use mno_hub::store::{apps, installs, invitations, orgs, users};
use mno_hub::HubConfig;

type Received = Arc<Mutex<Vec<(String, serde_json::Value)>>>;

/// A real HTTP receiver on a free port: records (webhook-id, body) of each POST.
async fn receiver() -> (String, Received) {
    let received: Received = Arc::default();
    let app = axum::Router::new()
        .route(
            "/account",
            post(
                |State(seen): State<Received>, headers: HeaderMap, body: Bytes| async move {
                    let id = headers["webhook-id"].to_str().unwrap().to_owned();
                    assert!(headers.contains_key("webhook-signature"));
                    seen.lock()
                        .unwrap()
                        .push((id, serde_json::from_slice(&body).unwrap()));
                    "ok"
                },
            ),
        )
        .with_state(received.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/account", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, received)
}

fn config(account_webhooks: bool) -> HubConfig {
    HubConfig {
        account_webhooks,
        allow_private_webhooks: true,
        account_webhook_retry_schedule: vec![Duration::from_millis(100); 3],
        ..HubConfig::default()
    }
}

mno_harness::on_both_databases!(World; events_while_no_sender_runs_are_delivered_once_when_one_starts);

async fn events_while_no_sender_runs_are_delivered_once_when_one_starts(world: &World) {
    let (url, received) = receiver().await;
    // A first Hub creates the durable consumer, then stops.
    let first = world.hub(config(true)).await;
    first.shutdown().await;

    // Changes made by a Hub that sends no account webhooks: they wait on HUB.
    let hub = world.hub(config(false)).await;
    let store = hub.store().clone();
    let owner = users::create(&store, "ann@example.com", "Ann", "x")
        .await
        .unwrap();
    let bob = users::create(&store, "bob@example.com", "Bob", "x")
        .await
        .unwrap();
    let (app, _) = apps::create(
        &store,
        &owner.id,
        "Books".into(),
        AppStack::Cloud,
        None,
        Some(url),
        vec![],
        Default::default(),
    )
    .await
    .unwrap();
    let org = orgs::create(&store, &owner.id, "Acme", "USD", "UTC", "")
        .await
        .unwrap();
    installs::install(&store, &owner.id, &org.id, &app.id, true)
        .await
        .unwrap();
    let invitation = invitations::invite(
        &store,
        &owner.id,
        Role::SuperAdmin,
        &org.id,
        "bob@example.com",
        Role::Member,
    )
    .await
    .unwrap();
    invitations::accept(&store, &invitation.id, &bob.id, "bob@example.com")
        .await
        .unwrap();
    wait_for_empty_outbox(&hub).await;
    hub.shutdown().await;
    assert!(received.lock().unwrap().is_empty(), "no sender ran");

    // A Hub that sends them starts: both arrive, once each.
    let sender = world.hub(config(true)).await;
    let got = mno_harness::wait_for("two account webhooks", Duration::from_secs(20), || {
        let received = received.clone();
        async move {
            let got = received.lock().unwrap().clone();
            (got.len() >= 2).then_some(got)
        }
    })
    .await;
    let types: Vec<&str> = got
        .iter()
        .map(|(_, b)| b["type"].as_str().unwrap())
        .collect();
    assert_eq!(types, vec!["app.installed", "member.added"]);
    assert_eq!(got[1].1["data"]["member"]["user_id"], bob.id);
    // A later change comes after them and nothing is repeated.
    installs::uninstall(&store, &owner.id, &org.id, &app.id)
        .await
        .unwrap();
    let got = mno_harness::wait_for("the uninstall", Duration::from_secs(20), || {
        let received = received.clone();
        async move {
            let got = received.lock().unwrap().clone();
            (got.len() >= 3).then_some(got)
        }
    })
    .await;
    assert_eq!(got.len(), 3, "{got:?}");
    assert_eq!(got[2].1["type"], "app.uninstalled");
    sender.shutdown().await;
}
