//! Fan-out as apps live with it: an SSE stream that resumes without gaps,
//! two apps syncing both ways without a loop, and signatures checked by the
//! reference Standard Webhooks package (Python), across a secret rotation.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::fanout_support::*;
use futures::StreamExt;
use mno_e2e::hub_client::{basic_auth, bearer, App, HubClient};
use mno_e2e::TestPlatform;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

async fn owner_and_org(platform: &TestPlatform) -> (HubClient, String, String) {
    let hub = HubClient::new(&platform.base_url);
    let (_, token) = hub.signup_and_login("owner@example.com").await.unwrap();
    let org = hub.create_org(&token, "Acme", "USD").await.unwrap();
    (hub, token, org)
}

async fn installed_app(
    hub: &HubClient,
    token: &str,
    org: &str,
    name: &str,
    url: Option<&str>,
    entity: &str,
) -> App {
    let app = hub
        .create_app(token, name, url, &[(entity, true, true)])
        .await
        .unwrap();
    hub.install(token, org, &app.id).await.unwrap();
    app
}

/// One server-sent event.
#[derive(Debug, Clone)]
struct SseEvent {
    id: u64,
    data: Value,
}

/// Read `count` events from an open SSE response (heartbeat comments are skipped).
async fn read_events(
    stream: &mut (impl futures::Stream<Item = reqwest::Result<axum::body::Bytes>> + Unpin),
    buffer: &mut String,
    count: usize,
) -> Vec<SseEvent> {
    let mut events = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while events.len() < count {
        while let Some(end) = buffer.find("\n\n") {
            let frame: String = buffer.drain(..end + 2).collect();
            let mut id = None;
            let mut data = String::new();
            for line in frame.lines() {
                if let Some(v) = line.strip_prefix("id:") {
                    id = v.trim().parse().ok();
                } else if let Some(v) = line.strip_prefix("data:") {
                    data.push_str(v.trim());
                }
            }
            if let Some(id) = id {
                events.push(SseEvent {
                    id,
                    data: serde_json::from_str(&data).unwrap(),
                });
            }
        }
        if events.len() >= count {
            break;
        }
        let chunk = tokio::time::timeout_at(deadline, stream.next())
            .await
            .expect("SSE events in time")
            .expect("the stream stays open")
            .expect("SSE chunk");
        buffer.push_str(&String::from_utf8_lossy(&chunk));
    }
    events
}

#[tokio::test]
async fn sse_resumes_after_a_disconnect_without_missing_anything() {
    let platform = TestPlatform::spawn().await;
    let (hub, token, org) = owner_and_org(&platform).await;
    let js = platform.running().bus.js.clone();
    let a = installed_app(&hub, &token, &org, "A", None, "invoices").await;
    let b = installed_app(&hub, &token, &org, "B", None, "invoices").await;
    let url = platform.url(&format!("/connec/api/v2/{org}/stream?entities=invoices"));
    let auth = basic_auth(&b.key, &b.secret);

    // No credentials, or an app of no install: JSON errors, no stream.
    let response = platform.http.get(&url).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["errors"][0]["code"], "unauthorized");
    let stranger = hub
        .create_app(&token, "D", None, &[("invoices", true, true)])
        .await
        .unwrap();
    let response = platform
        .http
        .get(&url)
        .header("Authorization", basic_auth(&stranger.key, &stranger.secret))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);

    let response = platform
        .http
        .get(&url)
        .header("Authorization", &auth)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let mut stream = Box::pin(response.bytes_stream());
    // The stream opens with a comment at once, before any change or heartbeat:
    // a client sees the answer's headers without waiting for either.
    let opened = stream.next().await.unwrap().unwrap();
    assert_eq!(String::from_utf8_lossy(&opened), ": stream open\n\n");
    let mut buffer = String::new();
    let change =
        |record: &'static str, version: u64, source: &'static str| (record, version, source);
    let mut written = BTreeSet::new();
    for (record, version, source) in [
        change("s1", 1, "a"),
        change("own", 1, "b"),
        change("s1", 2, "a"),
        change("s2", 1, "a"),
    ] {
        let app = if source == "a" { &a.id } else { &b.id };
        write(
            &js,
            Change {
                org: &org,
                entity: "invoices",
                record_id: record,
                version,
                source: Some((app, record)),
                state: json!({"title": record}),
            },
        )
        .await;
        if source == "a" {
            written.insert((record.to_owned(), version));
        }
    }
    let first = read_events(&mut stream, &mut buffer, 3).await;
    drop(stream);

    for (record, version) in [("s2", 2), ("s3", 1), ("s1", 3)] {
        write(
            &js,
            Change {
                org: &org,
                entity: "invoices",
                record_id: record,
                version,
                source: Some((&a.id, record)),
                state: json!({"title": record}),
            },
        )
        .await;
        written.insert((record.to_owned(), version));
    }
    let last_id = first.last().unwrap().id;
    let response = platform
        .http
        .get(&url)
        .header("Authorization", &auth)
        .header("Last-Event-ID", last_id.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let mut stream = Box::pin(response.bytes_stream());
    let mut buffer = String::new();
    let second = read_events(&mut stream, &mut buffer, 3).await;

    let all: Vec<SseEvent> = first.into_iter().chain(second).collect();
    let ids: Vec<u64> = all.iter().map(|e| e.id).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "ids increase: {ids:?}");
    let seen: BTreeSet<(String, u64)> = all
        .iter()
        .map(|e| {
            let record = &e.data["invoices"][0];
            (
                connec_id(&record["id"]).unwrap(),
                record["version"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(seen, written, "every change of A once, none of B's own");

    // An id past the stream's end (the largest of all wrapped round to the
    // beginning once), or no number at all, names no event: refused at once.
    for id in [
        u64::MAX.to_string(),
        (last_id + 1_000_000).to_string(),
        "abc".into(),
    ] {
        let response = platform
            .http
            .get(&url)
            .header("Authorization", &auth)
            .header("Last-Event-ID", &id)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{id}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(
            body["errors"][0]["source"]["parameter"], "last_event_id",
            "{body}"
        );
    }
}

#[tokio::test]
async fn an_sse_stream_ends_when_its_session_is_revoked() {
    let platform = TestPlatform::spawn().await;
    let (hub, _owner_token, org) = owner_and_org(&platform).await;
    // A second session of the owner: the one the stream uses, then signed out.
    let token = hub
        .login("owner@example.com", mno_e2e::hub_client::TEST_PASSWORD)
        .await
        .unwrap();
    let js = platform.running().bus.js.clone();
    let url = platform.url(&format!("/connec/api/v2/{org}/stream?entities=invoices"));
    let response = platform
        .http
        .get(&url)
        .header("Authorization", bearer(&token))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let mut stream = Box::pin(response.bytes_stream());
    // The stream opens with a comment at once, before any change or heartbeat:
    // a client sees the answer's headers without waiting for either.
    let opened = stream.next().await.unwrap().unwrap();
    assert_eq!(String::from_utf8_lossy(&opened), ": stream open\n\n");
    let mut buffer = String::new();
    let change = |record_id| Change {
        org: &org,
        entity: "invoices",
        record_id,
        version: 1,
        source: None,
        state: json!({"title": record_id}),
    };
    write(&js, change("before")).await;
    let seen = read_events(&mut stream, &mut buffer, 1).await;
    assert_eq!(seen[0].data["invoices"][0]["title"], "before");

    // Sign out; once the platform refuses the token, a new change ends the stream unsent.
    hub.logout(&token).await.unwrap();
    let list = platform.url(&format!("/connec/api/v2/{org}/invoices"));
    mno_harness::wait_for(
        "the token to be refused",
        Duration::from_secs(10),
        || async {
            let r = platform
                .http
                .get(&list)
                .header("Authorization", bearer(&token))
                .send()
                .await
                .ok()?;
            (r.status() == StatusCode::UNAUTHORIZED).then_some(())
        },
    )
    .await;
    write(&js, change("after")).await;
    let mut rest = String::new();
    let ended = tokio::time::timeout(Duration::from_secs(20), async {
        while let Some(chunk) = stream.next().await {
            match chunk {
                Ok(bytes) => rest.push_str(&String::from_utf8_lossy(&bytes)),
                Err(_) => break,
            }
        }
    })
    .await;
    assert!(ended.is_ok(), "the stream ended");
    assert!(
        !rest.contains("after"),
        "nothing after the sign-out: {rest}"
    );
}

/// An app's local copy: record id -> (version, title), kept from what it receives and what it writes.
type Store = Arc<Mutex<HashMap<String, (u64, String)>>>;

fn keep(store: &Store, id: &str, version: u64, title: &str) {
    let mut store = store.lock().unwrap();
    let entry = store.entry(id.to_owned()).or_insert((0, String::new()));
    if version > entry.0 {
        *entry = (version, title.to_owned());
    }
}

#[tokio::test]
async fn two_apps_syncing_both_ways_agree_and_never_loop() {
    let platform = TestPlatform::spawn().await;
    let (hub, token, org) = owner_and_org(&platform).await;
    let js = platform.running().bus.js.clone();
    let (ra, rb) = (Receiver::start().await, Receiver::start().await);
    let a = installed_app(&hub, &token, &org, "A", Some(&ra.url()), "people").await;
    let b = installed_app(&hub, &token, &org, "B", Some(&rb.url()), "people").await;
    wait_consumer(&js, &a.id).await;
    wait_consumer(&js, &b.id).await;

    // Each app keeps what it receives and answers with its own id for it.
    let stores: HashMap<String, Store> = [
        (a.id.clone(), Store::default()),
        (b.id.clone(), Store::default()),
    ]
    .into();
    for (receiver, app) in [(&ra, &a), (&rb, &b)] {
        let store = stores[&app.id].clone();
        let me = app.id.clone();
        receiver.answer_with(move |post| {
            let mut id_map = Vec::new();
            for r in post.records() {
                keep(
                    &store,
                    &r.id,
                    r.version,
                    r.record["title"].as_str().unwrap_or(""),
                );
                id_map.push(
                    json!({"entity": r.entity, "id": r.id, "local_id": format!("{me}-{}", r.id)}),
                );
            }
            (200, json!({ "id_map": id_map }).to_string())
        });
    }

    // Both sides create and edit, including each other's records.
    let plan: [(&App, &str, u64); 8] = [
        (&a, "p1", 1),
        (&a, "p2", 1),
        (&b, "p3", 1),
        (&b, "p1", 2),
        (&a, "p3", 2),
        (&b, "p2", 2),
        (&a, "p1", 3),
        (&b, "p3", 3),
    ];
    let mut last = 0;
    let mut made_by: HashMap<String, BTreeSet<(String, u64)>> = HashMap::new();
    for (app, record, version) in plan {
        let title = format!("{record} v{version} by {}", app.id);
        // Each app knows records by its own ids, the ones it answers with.
        let local = format!("{}-{record}", app.id);
        last = write(
            &js,
            Change {
                org: &org,
                entity: "people",
                record_id: record,
                version,
                source: Some((&app.id, &local)),
                state: json!({"title": title}),
            },
        )
        .await;
        keep(&stores[&app.id], record, version, &title);
        made_by
            .entry(app.id.clone())
            .or_default()
            .insert((record.to_owned(), version));
    }
    wait_caught_up(&js, &a.id, last).await;
    wait_caught_up(&js, &b.id, last).await;

    let final_a = stores[&a.id].lock().unwrap().clone();
    let final_b = stores[&b.id].lock().unwrap().clone();
    assert_eq!(final_a, final_b, "both apps hold the same state");
    assert_eq!(final_a["p1"].0, 3);
    assert_eq!(final_a["p3"].0, 3);
    // No loop: each app received exactly the other's changes, never its own.
    assert_eq!(ra.distinct(), made_by[&b.id]);
    assert_eq!(rb.distinct(), made_by[&a.id]);
    // Once A answered with its ids, later deliveries to A carry A's id.
    let late = ra
        .received()
        .into_iter()
        .find(|r| r.id == "p3" && r.version == 3)
        .unwrap();
    assert_eq!(
        provider_id(&late.record["id"], &a.id).as_deref(),
        Some(format!("{}-p3", a.id).as_str()),
        "{}",
        late.record
    );
}

#[tokio::test]
async fn the_reference_standard_webhooks_package_verifies_deliveries_across_a_rotation() {
    let platform = TestPlatform::spawn().await;
    let (hub, token, org) = owner_and_org(&platform).await;
    let js = platform.running().bus.js.clone();
    let rb = Receiver::start().await;
    let b = installed_app(&hub, &token, &org, "B", Some(&rb.url()), "invoices").await;
    wait_consumer(&js, &b.id).await;
    let change = |record: &'static str| Change {
        org: &org,
        entity: "invoices",
        record_id: record,
        version: 1,
        source: None,
        state: json!({"title": record, "amount": "12.50"}),
    };
    write(&js, change("before-1")).await;
    write(&js, change("before-2")).await;
    let before = BTreeSet::from([("before-1".to_owned(), 1), ("before-2".to_owned(), 1)]);
    wait_received(&rb, &before, "deliveries before the rotation").await;
    let old_posts = rb.posts();
    assert_eq!(
        verify_with_python(std::slice::from_ref(&b.webhook_secret), &old_posts),
        old_posts.len() as u64
    );

    let rotated = hub
        .expect(
            StatusCode::CREATED,
            Method::POST,
            &format!("/hub/v1/apps/{}/credentials/rotate", b.id),
            Some(&bearer(&token)),
            None,
        )
        .await
        .unwrap();
    let new_secret = rotated["webhook_secret"].as_str().unwrap().to_owned();
    assert_ne!(new_secret, b.webhook_secret);
    // Once delivery has the new secret, POSTs carry both signatures.
    let mut n = 0;
    let rotated_posts =
        mno_harness::wait_for("a POST signed twice", Duration::from_secs(15), || {
            n += 1;
            let record = format!("after-{n}");
            let js = js.clone();
            let org = org.clone();
            let rb = &rb;
            async move {
                write(
                    &js,
                    Change {
                        org: &org,
                        entity: "invoices",
                        record_id: &record,
                        version: 1,
                        source: None,
                        state: json!({"title": record}),
                    },
                )
                .await;
                tokio::time::sleep(Duration::from_millis(200)).await;
                let twice: Vec<Post> = rb
                    .posts()
                    .into_iter()
                    .filter(|p| p.signature.split(' ').count() == 2)
                    .collect();
                (!twice.is_empty()).then_some(twice)
            }
        })
        .await;
    let both = [new_secret, b.webhook_secret.clone()];
    assert_eq!(
        verify_with_python(&both, &rotated_posts),
        2 * rotated_posts.len() as u64,
        "each POST verifies under the new and under the old secret"
    );
}
