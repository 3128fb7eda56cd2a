//! Webhooks through the axum extractor: deliveries of the platform verified,
//! typed and answered with the app's ids; account webhooks typed; tampered,
//! old and replayed messages refused before the handler.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Result;
use axum::extract::FromRef;
use axum::routing::post;
use mno_sdk::connec::WriteOptions;
use mno_sdk::webhooks::{
    AccountEventKind, DeliveredRecord, IdMapAnswer, Payload, Receiver, Verifier, Webhook,
};
use serde_json::json;

use crate::support::World;

/// The app's webhook endpoint: every payload its handler saw.
#[derive(Clone)]
struct AppServer {
    receiver: Receiver,
    seen: Arc<Mutex<Vec<(String, Payload)>>>,
}

impl AppServer {
    /// The records of every delivery handled, with their collection.
    fn records(&self) -> Vec<(String, DeliveredRecord)> {
        let seen = self.seen.lock().unwrap();
        let deliveries = seen.iter().filter_map(|(_, p)| match p {
            Payload::Records(d) => Some(d),
            Payload::Account(_) => None,
        });
        deliveries
            .flat_map(|d| d.records().map(|(e, r)| (e.to_owned(), r.clone())))
            .collect()
    }

    /// The account webhooks handled.
    fn account_events(&self) -> Vec<AccountEventKind> {
        let seen = self.seen.lock().unwrap();
        seen.iter()
            .filter_map(|(_, p)| match p {
                Payload::Account(event) => Some(event.kind.clone()),
                Payload::Records(_) => None,
            })
            .collect()
    }
}

impl FromRef<AppServer> for Receiver {
    fn from_ref(state: &AppServer) -> Receiver {
        state.receiver.clone()
    }
}

/// Takes a webhook and maps every new record to `b-<n>` (the app's own id).
async fn handle(
    axum::extract::State(app): axum::extract::State<AppServer>,
    webhook: Webhook,
) -> IdMapAnswer {
    let mut answer = IdMapAnswer::new();
    if let Payload::Records(delivery) = webhook.payload() {
        for (entity, record) in delivery.records() {
            if let (Some(global), "created") = (record.id.connec_id(), record.op.as_str()) {
                answer = answer.map(
                    entity,
                    global,
                    &format!("b-{}", record.fields["first_name"].as_str().unwrap_or("?")),
                );
            }
        }
    }
    app.seen
        .lock()
        .unwrap()
        .push((webhook.id().to_owned(), webhook.payload().clone()));
    webhook.done().await;
    answer
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

#[tokio::test]
async fn deliveries_are_verified_typed_and_answered_with_the_apps_ids() -> Result<()> {
    let world = World::new("hooks@example.com").await?;
    // The receiving app needs its secret before its URL exists: start the
    // server on a port first, with the receiver filled in once the app is made.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let books = world
        .second_app(
            "Books",
            json!({"webhook_url": format!("http://{addr}/mno"),
                   "account_webhook_url": format!("http://{addr}/mno/account")}),
        )
        .await?;
    let server = AppServer {
        receiver: world.sdk(&books).webhook_receiver()?,
        seen: Arc::default(),
    };
    let router = axum::Router::new()
        .route("/mno", post(handle))
        .route("/mno/account", post(handle))
        .with_state(server.clone());
    tokio::spawn(async move { axum::serve(listener, router).await });

    // The CRM app writes a person; Books is sent it and answers with its id.
    let crm = world.sdk(&world.app);
    crm.connec()
        .collection::<serde_json::Value>(&world.org, "people")
        .create("crm-1", &json!({"first_name": "Ann"}))
        .await?;
    let delivered =
        mno_harness::wait_for("the delivery to Books", Duration::from_secs(30), || async {
            server.records().into_iter().next()
        })
        .await;
    assert_eq!(delivered.0, "people");
    assert_eq!(delivered.1.op, "created");
    assert_eq!(delivered.1.version, 1);
    assert!(delivered.1.id.connec_id().is_some());
    assert_eq!(
        delivered.1.id.local_id(&books.id),
        None,
        "Books has not told its id yet"
    );

    // The id map answer took: Books reads the record by its own id.
    let books_people = world
        .sdk(&books)
        .connec()
        .collection::<serde_json::Value>(&world.org, "people");
    let mapped = mno_harness::wait_for(
        "Books' id to be mapped",
        Duration::from_secs(20),
        || async { books_people.get("b-Ann").await.ok() },
    )
    .await;
    assert_eq!(mapped.id.local_id(&books.id), Some("b-Ann"));
    // And its next delivery names the record by Books' id.
    crm.connec()
        .collection::<serde_json::Value>(&world.org, "people")
        .update(
            "crm-1",
            &json!({"last_name": "Lee"}),
            &WriteOptions::default(),
        )
        .await?;
    mno_harness::wait_for(
        "the update in Books' ids",
        Duration::from_secs(30),
        || async {
            server
                .records()
                .into_iter()
                .find(|(_, r)| r.op == "updated" && r.id.local_id(&books.id) == Some("b-Ann"))
        },
    )
    .await;

    // Account webhooks: a member joins the org; Books is told, typed.
    let (member, member_token) = world.hub.signup_and_login("bob@example.com").await?;
    world
        .hub
        .add_member(
            &world.owner_token,
            &world.org,
            "bob@example.com",
            "member",
            &member_token,
        )
        .await?;
    let joined = mno_harness::wait_for("member.added", Duration::from_secs(30), || async {
        server
            .account_events()
            .into_iter()
            .find_map(|kind| match kind {
                AccountEventKind::MemberAdded { org, member } => Some((org, member)),
                _ => None,
            })
    })
    .await;
    assert_eq!(joined.0.id, world.org);
    assert_eq!(
        (joined.1.user_id.as_str(), joined.1.role.as_str()),
        (member.id.as_str(), "member")
    );

    // Forged, old and replayed messages never reach the handler.
    let handled = || server.seen.lock().unwrap().len();
    let before = handled();
    let signer = Verifier::new(&[&books.webhook_secret])?;
    let http = reqwest::Client::new();
    let url = format!("http://{addr}/mno");
    // Sends `sent`, signed as if it were `signed`, under `id` at time `ts`.
    let send = |id: &'static str, ts: i64, signed: &'static str, sent: &'static str| {
        http.post(&url)
            .header("content-type", "application/json")
            .header("webhook-id", id)
            .header("webhook-timestamp", ts.to_string())
            .header("webhook-signature", signer.sign(id, ts, signed.as_bytes()))
            .body(sent)
            .send()
    };
    let body = r#"{"people":[{"id":[{"realm":"o","provider":"connec","id":"g-9"}],"op":"created","version":1,"first_name":"Eve"}]}"#;
    let tampered = r#"{"people":[{"id":[{"realm":"o","provider":"connec","id":"g-9"}],"op":"deleted","version":1,"first_name":"Eve"}]}"#;

    let response = send("msg-t", now(), body, tampered).await?;
    assert_eq!(response.status(), 401);
    let error: serde_json::Value = response.json().await?;
    assert_eq!(error["errors"][0]["code"], "invalid_signature");

    let response = send("msg-o", now() - 600, body, body).await?;
    assert_eq!(response.status(), 401);
    let error: serde_json::Value = response.json().await?;
    let detail = error["errors"][0]["detail"].as_str().unwrap_or_default();
    assert!(detail.contains("tolerance"), "{error}");

    let response = send("msg-r", now(), body, body).await?;
    assert_eq!(response.status(), 200);
    assert_eq!(handled(), before + 1, "the first copy is handled");
    let response = send("msg-r", now(), body, body).await?;
    assert_eq!(response.status(), 200, "a replay is acknowledged");
    assert_eq!(
        response.json::<serde_json::Value>().await?["replayed"],
        true
    );
    assert_eq!(handled(), before + 1, "and not handled again");

    let response = http.post(&url).body(body).send().await?;
    assert_eq!(response.status(), 400, "unsigned");
    assert_eq!(handled(), before + 1);
    Ok(())
}

#[tokio::test]
async fn a_failed_handler_releases_the_id_for_the_retry() -> Result<()> {
    let verifier = Verifier::new(&["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"])?;
    let receiver = Receiver::new(&["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"])?;
    let body = br#"{"type":"app.installed","event_id":"e1","timestamp":"t","data":{"org":{"id":"o"},"app_id":"a"}}"#;
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert("webhook-id", "e1".parse()?);
    headers.insert("webhook-timestamp", now().to_string().parse()?);
    headers.insert(
        "webhook-signature",
        verifier.sign("e1", now(), body).parse()?,
    );

    let first = receiver.receive(&headers, body).await?;
    // While it is being handled, a copy is refused as in flight.
    let copy = receiver.receive(&headers, body).await.unwrap_err();
    assert!(matches!(copy, mno_sdk::webhooks::WebhookError::InFlight(_)));
    // The handler fails (drops the webhook): the retry gets through.
    drop(first);
    let retry = mno_harness::wait_for(
        "the claim to be released",
        Duration::from_secs(5),
        || async { receiver.receive(&headers, body).await.ok() },
    )
    .await;
    let Payload::Account(event) = retry.payload() else {
        panic!("an account event")
    };
    assert!(matches!(&event.kind, AccountEventKind::AppInstalled { app_id, .. } if app_id == "a"));
    retry.done().await;
    let again = receiver.receive(&headers, body).await.unwrap_err();
    assert!(matches!(
        again,
        mno_sdk::webhooks::WebhookError::Replayed(_)
    ));
    Ok(())
}
