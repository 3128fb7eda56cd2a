//! The Connec! client: CRUD in the app's own ids, typed errors, retries under
//! one idempotency key, lists, batches and the change feed.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Result;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use futures::TryStreamExt;
use mno_sdk::connec::{Batch, ChangeCursor, Filter, Ids, Order, Query, WriteOptions};
use mno_sdk::Error;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::support::{serve, World};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Person {
    first_name: String,
    last_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    organization_id: Option<Ids>,
}

fn person(first: &str, last: &str) -> Person {
    Person {
        first_name: first.into(),
        last_name: last.into(),
        organization_id: None,
    }
}

#[tokio::test]
async fn records_in_the_apps_own_ids_with_typed_errors() -> Result<()> {
    let world = World::new("crud@example.com").await?;
    let mno = world.sdk(&world.app);
    let connec = mno.connec();
    let orgs = connec.collection::<serde_json::Value>(&world.org, "organizations");
    let people = connec.collection::<Person>(&world.org, "people");

    orgs.create("acme", &json!({"name": "Acme"})).await?;
    let mut ann = person("Ann", "Lee");
    ann.organization_id = Some(Ids::local("acme"));
    let created = people.create("crm-1", &ann).await?;
    assert_eq!(created.version, 1);
    assert_eq!(created.id.local_id(&world.app.id), Some("crm-1"));
    let global = created.id.connec_id().expect("a global id").to_owned();
    // The reference came back in the external-ids form, with the app's id of the organization.
    let org_ref = created.fields.organization_id.clone().expect("a reference");
    assert_eq!(org_ref.local_id(&world.app.id), Some("acme"));

    // Read by the app's id and by the global id alike.
    let read = people.get("crm-1").await?;
    assert_eq!(read.fields.first_name, "Ann");
    assert_eq!(
        people.get(&global).await?.id.local_id(&world.app.id),
        Some("crm-1")
    );

    let updated = people
        .update(
            "crm-1",
            &json!({"last_name": "Lee-Smith"}),
            &WriteOptions::if_match(1),
        )
        .await?;
    assert_eq!(
        (updated.version, updated.fields.last_name.as_str()),
        (2, "Lee-Smith")
    );

    // A write naming a version the record has left is typed, and writes nothing.
    let stale = people
        .update(
            "crm-1",
            &json!({"last_name": "Stale"}),
            &WriteOptions::if_match(1),
        )
        .await
        .unwrap_err();
    match &stale {
        Error::StaleVersion { current, api, .. } => {
            assert_eq!(*current, Some(2));
            assert_eq!((api.status, api.code()), (409, "stale_version"));
        }
        other => panic!("expected a stale version, got {other:?}"),
    }
    assert_eq!(people.get("crm-1").await?.fields.last_name, "Lee-Smith");

    // A 422 carries the platform's code and pointer.
    let invalid = people
        .update("crm-1", &json!({"first_name": 5}), &WriteOptions::default())
        .await
        .unwrap_err();
    let api = invalid.api().expect("an API error");
    assert_eq!((api.status, api.code()), (422, "invalid_field"));
    assert_eq!(api.pointer(), Some("/people/first_name"));
    assert!(!api.detail().is_empty());

    // A second create of the same local id: 409 already_exists, typed.
    let taken = people
        .create("crm-1", &person("Other", "One"))
        .await
        .unwrap_err();
    assert_eq!(
        taken.api().map(|a| (a.status, a.code())),
        Some((409, "already_exists"))
    );

    // Another app's record, mapped to an id of this app's: then reachable by it.
    let other = world.second_app("Other", json!({})).await?;
    let theirs = world
        .sdk(&other)
        .connec()
        .collection::<Person>(&world.org, "people")
        .create("o-1", &person("Cy", "Dee"))
        .await?;
    let their_global = theirs.id.connec_id().expect("a global id");
    people.map_id(their_global, "crm-cy").await?;
    let mapped = people.get("crm-cy").await?;
    assert_eq!(mapped.id.connec_id(), Some(their_global));
    assert_eq!(mapped.version, 1, "a mapping is no change");

    let deleted = people.delete("crm-1", &WriteOptions::if_match(2)).await?;
    assert_eq!(deleted.version, 3);
    let gone = people.get("crm-1").await.unwrap_err();
    assert_eq!(
        gone.api().map(|a| (a.status, a.code())),
        Some((404, "not_found"))
    );
    Ok(())
}

/// A write the proxy forwarded: (method, idempotency key).
type Forwarded = (String, Option<String>);

/// A proxy in front of the platform that forwards every request and, for the
/// first writes, throws the platform's answer away and answers the next of
/// `lost_answers` instead (a 502, a 429 asking to wait): the write happened,
/// the app never heard of it.
#[derive(Clone)]
struct LossyProxy {
    upstream: String,
    http: reqwest::Client,
    lost_answers: Arc<Mutex<Vec<StatusCode>>>,
    writes: Arc<Mutex<Vec<Forwarded>>>,
}

async fn forward(
    State(proxy): State<LossyProxy>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let url = format!("{}{}", proxy.upstream, uri);
    let mut request = proxy.http.request(method.clone(), url).body(body);
    for (name, value) in &headers {
        if name != "host" && name != "content-length" {
            request = request.header(name, value);
        }
    }
    let answer = request.send().await.expect("the platform answers");
    let status = answer.status();
    let content_type = answer.headers().get("content-type").cloned();
    let bytes = answer.bytes().await.unwrap_or_default();
    if method != Method::GET {
        let key = headers
            .get("idempotency-key")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        proxy.writes.lock().unwrap().push((method.to_string(), key));
        let mut lost = proxy.lost_answers.lock().unwrap();
        if !lost.is_empty() {
            let status = lost.remove(0);
            let mut response = (status, "upstream answer lost").into_response();
            if status == StatusCode::TOO_MANY_REQUESTS {
                let wait = axum::http::HeaderValue::from_static("1");
                response.headers_mut().insert("retry-after", wait);
            }
            return response;
        }
    }
    let mut response = (status, bytes).into_response();
    if let Some(content_type) = content_type {
        response.headers_mut().insert("content-type", content_type);
    }
    response
}

#[tokio::test]
async fn a_write_whose_answer_was_lost_is_retried_under_its_key_and_stored_once() -> Result<()> {
    let world = World::new("retry@example.com").await?;
    let proxy = LossyProxy {
        upstream: world.platform.base_url.clone(),
        http: reqwest::Client::new(),
        lost_answers: Arc::new(Mutex::new(vec![
            StatusCode::BAD_GATEWAY,
            StatusCode::TOO_MANY_REQUESTS,
        ])),
        writes: Arc::default(),
    };
    let router = axum::Router::new()
        .fallback(forward)
        .with_state(proxy.clone());
    let addr = serve(router).await?;
    let mno = world.sdk_at(&world.app, &format!("http://{addr}"));
    let people = mno.connec().collection::<Person>(&world.org, "people");

    let created = people.create("crm-7", &person("Bo", "Chen")).await?;
    assert_eq!(created.version, 1);
    let writes = proxy.writes.lock().unwrap().clone();
    assert_eq!(
        writes.len(),
        3,
        "two lost answers (502, 429), then the one that came back: {writes:?}"
    );
    let key = writes[0]
        .1
        .clone()
        .expect("an Idempotency-Key on the write");
    assert!(writes
        .iter()
        .all(|(m, k)| m == "POST" && k.as_deref() == Some(key.as_str())));

    // Stored once: one event in the record's history, one record in the feed.
    let direct = world.sdk(&world.app);
    let history: serde_json::Value = reqwest::Client::new()
        .get(world.platform.url(&format!(
            "/connec/api/v2/{}/people/{}/history",
            world.org,
            created.id.connec_id().unwrap()
        )))
        .basic_auth(&world.app.key, Some(&world.app.secret))
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(
        history["history"].as_array().map(Vec::len),
        Some(1),
        "{history}"
    );
    let (changes, _) = direct
        .connec()
        .changes(&world.org, ChangeCursor::START)
        .entities(&["people"])
        .fetch(ChangeCursor::START)
        .await?;
    assert_eq!(changes.len(), 1);

    // A refused write is not retried: one attempt, the typed error.
    proxy.writes.lock().unwrap().clear();
    let err = people
        .update("crm-7", &json!({"first_name": 1}), &WriteOptions::default())
        .await
        .unwrap_err();
    assert_eq!(err.api().map(|a| a.status), Some(422));
    assert_eq!(proxy.writes.lock().unwrap().len(), 1);
    Ok(())
}

#[tokio::test]
async fn lists_page_through_a_quoted_filter_and_batches_type_their_errors() -> Result<()> {
    let world = World::new("lists@example.com").await?;
    let mno = world.sdk(&world.app);
    let connec = mno.connec();
    let people = connec.collection::<Person>(&world.org, "people");

    let mut batch = Batch::new(&world.org).concurrent();
    for i in 0..5 {
        batch = batch.create(
            "people",
            &format!("ob-{i}"),
            json!({"first_name": format!("P{i}"), "last_name": "O'Brien"}),
        );
    }
    batch = batch.create(
        "people",
        "other",
        json!({"first_name": "Q", "last_name": "OBrien"}),
    );
    let results = connec.batch(&batch).await?.into_result()?;
    assert_eq!(results.len(), 6);
    assert!(results.iter().all(|r| r.status == 201), "{results:?}");

    let query = || {
        Query::new()
            .filter(Filter::field("last_name").eq("O'Brien"))
            .order_by("first_name", Order::Desc)
            .top(2)
    };
    // The list is a projection of the stream: wait until it has caught up.
    mno_harness::wait_for(
        "the record store to list the batch",
        Duration::from_secs(20),
        || async {
            let page = people.page(&query()).await.ok()?;
            (page.total == 5).then_some(())
        },
    )
    .await;
    let all: Vec<_> = people.list(query()).try_collect().await?;
    let names: Vec<&str> = all.iter().map(|r| r.fields.first_name.as_str()).collect();
    assert_eq!(
        names,
        ["P4", "P3", "P2", "P1", "P0"],
        "three pages of two, in order"
    );
    assert!(all.iter().all(|r| r.fields.last_name == "O'Brien"));

    // A value that tries to break out of its quotes matches nothing.
    let injected = Query::new().filter(Filter::field("last_name").eq("x' or last_name ne 'y"));
    assert_eq!(people.page(&injected).await?.total, 0);

    // One bad op of a batch: its error is typed and points into the batch.
    let batch = Batch::new(&world.org)
        .create("people", "fine", json!({"first_name": "Fine"}))
        .create("people", "bad", json!({"first_name": 7}));
    let result = connec.batch(&batch).await?;
    assert_eq!(result.results[0].status, 201);
    let error = result.results[1].error().expect("the second op failed");
    let api = error.api().expect("typed");
    assert_eq!((api.status, api.code()), (422, "invalid_field"));
    assert_eq!(api.pointer(), Some("/ops/1/params/people/first_name"));
    assert!(result.into_result().is_err());
    Ok(())
}

#[tokio::test]
async fn the_change_feed_streams_from_a_persisted_cursor() -> Result<()> {
    let world = World::new("feed@example.com").await?;
    let writer = world.second_app("Writer", json!({})).await?;
    let reader = world.sdk(&world.app);
    let people = world
        .sdk(&writer)
        .connec()
        .collection::<Person>(&world.org, "people");
    people.create("w-1", &person("Ann", "A")).await?;
    people
        .update("w-1", &json!({"last_name": "B"}), &WriteOptions::default())
        .await?;
    people.delete("w-1", &WriteOptions::default()).await?;
    // The reader's own write, left out by skip_own_changes.
    reader
        .connec()
        .collection::<Person>(&world.org, "people")
        .create("r-1", &person("Own", "Write"))
        .await?;

    let feed = reader
        .connec()
        .changes(&world.org, ChangeCursor::START)
        .entities(&["people"])
        .page_size(2)
        .skip_own_changes();
    let changes: Vec<_> = feed.clone().stream().try_collect().await?;
    let ops: Vec<&str> = changes.iter().map(|c| c.op.as_str()).collect();
    assert_eq!(ops, ["created", "updated", "deleted"]);
    assert!(changes[2].is_delete());
    assert_eq!(changes[1].record_as::<Person>()?.last_name, "B");
    assert_eq!(changes[0].source.local_id, "w-1");

    // The app persisted the cursor after the first change: it resumes after it.
    let saved = changes[0].cursor().to_string();
    let resumed: Vec<_> = reader
        .connec()
        .changes(&world.org, saved.parse()?)
        .entities(&["people"])
        .skip_own_changes()
        .stream()
        .try_collect()
        .await?;
    let ops: Vec<&str> = resumed.iter().map(|c| c.op.as_str()).collect();
    assert_eq!(ops, ["updated", "deleted"]);

    // Naming a collection the app may not read is a typed 403.
    let err = reader
        .connec()
        .changes(&world.org, ChangeCursor::START)
        .entities(&["invoices"])
        .fetch(ChangeCursor::START)
        .await
        .unwrap_err();
    assert_eq!(err.api().map(|a| a.status), Some(403));
    Ok(())
}
