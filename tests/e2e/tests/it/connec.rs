//! Connec!'s record API end to end: writes become events on RECORDS, reads
//! come from the stream, ids map per app, and every bad request is refused
//! with a JSON error while the stream stays as it was.

use mno_e2e::hub_client::{basic_auth, bearer, App, HubClient};
use mno_e2e::TestPlatform;
use reqwest::StatusCode;
use serde_json::{json, Value};

struct World {
    platform: TestPlatform,
    hub: HubClient,
    token: String,
    org: String,
    app: App,
}

const ALL: &[(&str, bool, bool)] = &[
    ("invoices", true, true),
    ("organizations", true, true),
    ("people", true, true),
    ("items", true, true),
    ("company", true, true),
];

async fn world() -> World {
    let platform = TestPlatform::spawn().await;
    let hub = HubClient::new(&platform.base_url);
    let (token, org, app) = hub
        .org_with_app("owner@example.com", None, ALL)
        .await
        .unwrap();
    World {
        platform,
        hub,
        token,
        org,
        app,
    }
}

impl World {
    fn auth(&self) -> String {
        basic_auth(&self.app.key, &self.app.secret)
    }

    fn url(&self, path: &str) -> String {
        self.platform
            .url(&format!("/connec/api/v2/{}{path}", self.org))
    }

    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value, Option<u64>) {
        let mut request = self
            .platform
            .http
            .request(method, self.url(path))
            .header("Authorization", self.auth());
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        finish(response).await
    }

    /// GET `path` with `CONNEC-EXTERNAL-IDS: true`: ids as arrays of every app's ids.
    async fn get_with_external_ids(&self, path: &str) -> Value {
        let response = self
            .platform
            .http
            .get(self.url(path))
            .header("Authorization", self.auth())
            .header("CONNEC-EXTERNAL-IDS", "true")
            .send()
            .await
            .unwrap();
        finish(response).await.1
    }

    async fn records_in_stream(&self) -> u64 {
        let js = &self.platform.running().bus.js;
        let mut stream = js.get_stream("RECORDS").await.unwrap();
        stream.info().await.unwrap().state.messages
    }
}

async fn finish(response: reqwest::Response) -> (StatusCode, Value, Option<u64>) {
    let status = response.status();
    let seq = response
        .headers()
        .get("mno-consistency-token")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    let body = response.json().await.unwrap_or(Value::Null);
    (status, body, seq)
}

/// The answer's first error has `code`, and its detail mentions `hint` (what to do).
fn assert_first_error(body: &Value, code: &str, hint: &str) {
    assert_eq!(body["errors"][0]["code"], code, "{body}");
    let detail = body["errors"][0]["detail"].as_str().unwrap_or_default();
    assert!(detail.contains(hint), "{hint:?} in {body}");
}

#[tokio::test]
async fn create_read_update_delete_through_the_stream() {
    let w = world().await;
    let (status, body, seq) = w
        .send(
            reqwest::Method::POST,
            "/organizations",
            Some(json!({"organizations": {"name": "Acme", "is_customer": true}})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let org_record = &body["organizations"];
    let id = org_record["id"].as_str().unwrap().to_owned();
    assert_eq!(org_record["version"], 1);
    assert_eq!(org_record["group_id"], w.org.as_str());
    assert_eq!(org_record["name"], "Acme");
    assert!(org_record["created_at"].is_string() && org_record["updated_at"].is_string());
    assert!(seq.unwrap() >= 1);

    // Sent as text: a JSON number with more digits than an f64 holds.
    let raw = format!(
        r#"{{"invoices": {{"type": "CUSTOMER", "transaction_date": "2026-01-15", "due_date": "2026-02-14",
            "currency": "USD", "total_amount": 12345678901234567.89, "balance": "100.10",
            "organization_id": "{id}",
            "lines": [{{"quantity": 2, "unit_price": 0.10, "total_price": "0.20"}}]}}}}"#
    );
    let response = w
        .platform
        .http
        .post(w.url("/invoices"))
        .header("Authorization", w.auth())
        .header("Content-Type", "application/json")
        .body(raw)
        .send()
        .await
        .unwrap();
    let (status, body, _) = finish(response).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let invoice = body["invoices"].clone();
    let invoice_id = invoice["id"].as_str().unwrap().to_owned();
    assert_eq!(
        invoice["total_amount"], "12345678901234567.89",
        "decimals are kept exactly"
    );
    assert_eq!(invoice["lines"][0]["unit_price"], "0.10");

    let (status, body, _) = w
        .send(
            reqwest::Method::GET,
            &format!("/invoices/{invoice_id}"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["invoices"], invoice);

    // A partial update: the fields present replace the stored ones, others stay.
    let (status, body, _) = w
        .send(
            reqwest::Method::PUT,
            &format!("/invoices/{invoice_id}"),
            Some(json!({"invoices": {"status": "PAID", "balance": "0"}})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["invoices"]["version"], 2);
    assert_eq!(body["invoices"]["status"], "PAID");
    assert_eq!(body["invoices"]["total_amount"], "12345678901234567.89");

    // A stale If-Match is refused with the current version, and writes nothing.
    let before = w.records_in_stream().await;
    let response = w
        .platform
        .http
        .put(w.url(&format!("/invoices/{invoice_id}")))
        .header("Authorization", w.auth())
        .header("If-Match", "1")
        .json(&json!({"invoices": {"status": "VOIDED"}}))
        .send()
        .await
        .unwrap();
    let (status, body, _) = finish(response).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(body["errors"][0]["code"], "stale_version");
    assert!(
        body["errors"][0]["detail"]
            .as_str()
            .unwrap()
            .contains("version 2"),
        "{body}"
    );
    assert_eq!(w.records_in_stream().await, before);

    let (status, _, _) = w
        .send(
            reqwest::Method::DELETE,
            &format!("/invoices/{invoice_id}"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, body, _) = w
        .send(
            reqwest::Method::GET,
            &format!("/invoices/{invoice_id}"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");

    // The history is on the record's subject: created, updated, deleted.
    let stream = w
        .platform
        .running()
        .bus
        .js
        .get_stream("RECORDS")
        .await
        .unwrap();
    let last = stream
        .direct_get_last_for_subject(format!("rec.{}.invoices.{invoice_id}", w.org))
        .await
        .unwrap();
    let event = mno_events::proto::RecordEvent::from_bytes(&last.payload).unwrap();
    assert_eq!(event.op_kind(), mno_events::proto::Op::Deleted);
    assert_eq!(event.version, 3);
    assert_eq!(event.source.unwrap().app_id, w.app.id);
}

#[tokio::test]
async fn an_apps_own_ids_map_to_one_record_and_show_in_the_array_form() {
    let w = world().await;
    let (status, body, _) = w
        .send(
            reqwest::Method::POST,
            "/people",
            Some(json!({"people": {"id": "47", "first_name": "Ann"}})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let global = body["people"]["id"].as_str().unwrap().to_owned();
    assert_ne!(global, "47");

    // The app may address it by its own id.
    let (status, body, _) = w.send(reqwest::Method::GET, "/people/47", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["people"]["id"], global.as_str());

    // Creating the same local id again is a conflict, not a second record.
    let (status, body, _) = w
        .send(
            reqwest::Method::POST,
            "/people",
            Some(json!({"people": {"id": "47", "first_name": "Bob"}})),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");

    let body = w.get_with_external_ids(&format!("/people/{global}")).await;
    let ids = body["people"]["id"].as_array().unwrap();
    assert!(
        ids.contains(&json!({"realm": w.org, "provider": "connec", "id": global})),
        "{body}"
    );
    assert!(
        ids.contains(&json!({"realm": w.org, "provider": w.app.id, "id": "47"})),
        "{body}"
    );

    // A reference may use the app's own id; it is stored as the global id.
    let (status, body, _) = w
        .send(
            reqwest::Method::POST,
            "/invoices",
            Some(json!({"invoices": {"person_id": "47", "total_amount": "10"}})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["invoices"]["person_id"], global.as_str());
}

/// An app's own id may be up to 255 bytes, as a record's id and as a
/// reference to it alike (references were once held to 128).
#[tokio::test]
async fn the_longest_own_id_names_a_record_and_references_it() {
    let w = world().await;
    let longest = "L".repeat(255);
    let (status, body, _) = w
        .send(
            reqwest::Method::POST,
            "/people",
            Some(json!({"people": {"id": longest, "first_name": "Long"}})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let global = body["people"]["id"].as_str().unwrap().to_owned();
    let (status, body, _) = w
        .send(
            reqwest::Method::POST,
            "/invoices",
            Some(json!({"invoices": {"id": "INV-L", "person_id": longest, "type": "CUSTOMER"}})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["invoices"]["person_id"], global.as_str(), "{body}");

    // One byte more is refused as a reference, naming the field, and writes nothing.
    let before = w.records_in_stream().await;
    let (status, body, _) = w
        .send(
            reqwest::Method::POST,
            "/invoices",
            Some(json!({"invoices": {"id": "INV-M", "person_id": "L".repeat(256)}})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(
        body["errors"][0]["source"]["pointer"], "/invoices/person_id",
        "{body}"
    );
    assert_eq!(w.records_in_stream().await, before);
}

#[tokio::test]
async fn fifty_concurrent_creates_of_one_local_id_make_one_record() {
    let w = world().await;
    let before = w.records_in_stream().await;
    let mut tasks = Vec::new();
    for i in 0..50 {
        let http = w.platform.http.clone();
        let url = w.url("/items");
        let auth = w.auth();
        tasks.push(tokio::spawn(async move {
            let response = http
                .post(url)
                .header("Authorization", auth)
                .json(&json!({"items": {"id": "SKU-1", "name": format!("attempt {i}")}}))
                .send()
                .await
                .unwrap();
            let status = response.status();
            let body: Value = response.json().await.unwrap();
            (status, body)
        }));
    }
    let mut created = Vec::new();
    for task in tasks {
        let (status, body) = task.await.unwrap();
        match status {
            StatusCode::CREATED => created.push(body["items"]["id"].as_str().unwrap().to_owned()),
            StatusCode::CONFLICT => {
                assert_eq!(body["errors"][0]["code"], "already_exists", "{body}")
            }
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert_eq!(created.len(), 1, "exactly one create wins");
    assert_eq!(w.records_in_stream().await, before + 1);
}

#[tokio::test]
async fn an_idempotency_key_gives_the_same_answer_and_one_event() {
    let w = world().await;
    let send = |key: &'static str, name: &'static str| {
        w.platform
            .http
            .post(w.url("/organizations"))
            .header("Authorization", w.auth())
            .header("Idempotency-Key", key)
            .json(&json!({"organizations": {"name": name}}))
            .send()
    };
    let before = w.records_in_stream().await;
    let (first_status, first, _) = finish(send("k-1", "Once").await.unwrap()).await;
    let (again_status, again, _) = finish(send("k-1", "Once").await.unwrap()).await;
    assert_eq!(first_status, StatusCode::CREATED);
    assert_eq!(again_status, StatusCode::CREATED);
    assert_eq!(first, again);
    assert_eq!(w.records_in_stream().await, before + 1);

    let (status, body, _) = finish(send("k-1", "Something else").await.unwrap()).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["errors"][0]["code"], "idempotency_key_reused");
    assert_eq!(w.records_in_stream().await, before + 1);
}

#[tokio::test]
async fn bad_requests_get_json_errors_and_change_nothing() {
    let w = world().await;
    let (_, body, _) = w
        .send(
            reqwest::Method::POST,
            "/organizations",
            Some(json!({"organizations": {"name": "Real"}})),
        )
        .await;
    let real = body["organizations"]["id"].as_str().unwrap().to_owned();
    let before = w.records_in_stream().await;
    let http = &w.platform.http;

    let raw = |path: &str, content_type: &str, body: Vec<u8>| {
        http.post(w.url(path))
            .header("Authorization", w.auth())
            .header("Content-Type", content_type.to_owned())
            .body(body)
            .send()
    };
    // A name given twice: which one counts is not guessed.
    let (status, body, _) = finish(
        raw(
            "/organizations",
            "application/json",
            br#"{"organizations": {"name": "First", "name": "Second"}}"#.to_vec(),
        )
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["errors"][0]["code"], "duplicate_name", "{body}");
    assert_eq!(
        body["errors"][0]["source"]["pointer"], "/organizations",
        "{body}"
    );
    let (status, body, _) = finish(
        raw(
            "/organizations",
            "application/json",
            b"{\"organizations\": {".to_vec(),
        )
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["errors"][0]["code"], "malformed_json");
    let detail = body["errors"][0]["detail"].as_str().unwrap();
    assert_eq!(
        detail.matches("line 1").count(),
        1,
        "the position, named once: {detail}"
    );

    let (status, _, _) = finish(
        raw("/organizations", "text/plain", b"{}".to_vec())
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);

    let huge = format!(
        "{{\"organizations\": {{\"name\": \"{}\"}}}}",
        "x".repeat(1_200_000)
    );
    let (status, body, _) = finish(
        raw("/organizations", "application/json", huge.into_bytes())
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");

    let (status, body, _) = w
        .send(
            reqwest::Method::POST,
            "/unicorns",
            Some(json!({"unicorns": {}})),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(
        body["errors"][0]["detail"]
            .as_str()
            .unwrap()
            .contains("invoices"),
        "lists the collections: {body}"
    );

    let (status, body, _) = w
        .send(
            reqwest::Method::POST,
            "/invoices",
            Some(json!({"invoices": {"type": "GIFT", "due_date": "someday", "lines": [{"quantity": "many"}]}})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let pointers: Vec<&str> = body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["source"]["pointer"].as_str().unwrap())
        .collect();
    for expected in [
        "/invoices/type",
        "/invoices/due_date",
        "/invoices/lines/0/quantity",
    ] {
        assert!(pointers.contains(&expected), "{expected} in {pointers:?}");
    }

    let (status, body, _) = w
        .send(
            reqwest::Method::POST,
            "/organizations",
            Some(json!({"name": "unwrapped"})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["errors"][0]["source"]["pointer"], "/organizations");

    let (status, body, _) = w
        .send(
            reqwest::Method::POST,
            "/invoices",
            Some(json!({"invoices": {"organization_id": "0193aaaa-0000-7000-8000-000000000000"}})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        body["errors"][0]["source"]["pointer"],
        "/invoices/organization_id"
    );

    // Injection attempts in ids and entity names do nothing.
    for path in [
        "/organizations/a.b",
        "/organizations/*",
        "/organizations/%3E",
        "/organizations/x%20y",
    ] {
        let (status, _, _) = w.send(reqwest::Method::GET, path, None).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
    }
    let (status, _, _) = w
        .send(reqwest::Method::POST, "/invoices.%3E", Some(json!({})))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Credentials.
    let response = http
        .get(w.url(&format!("/organizations/{real}")))
        .send()
        .await
        .unwrap();
    let challenge = response.headers().get("www-authenticate").cloned();
    let (status, body, _) = finish(response).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    let challenge = challenge.expect("a 401 names the accepted schemes");
    let challenge = challenge.to_str().unwrap();
    assert!(
        challenge.contains("Basic") && challenge.contains("Bearer"),
        "{challenge}"
    );
    let (status, _, _) = finish(
        http.get(w.url(&format!("/organizations/{real}")))
            .header("Authorization", basic_auth(&w.app.key, "wrong-secret"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    assert_eq!(
        w.records_in_stream().await,
        before,
        "nothing was written by any rejected request"
    );
}

#[tokio::test]
async fn one_org_never_reads_or_writes_anothers_records() {
    let w = world().await;
    let (_, body, _) = w
        .send(
            reqwest::Method::POST,
            "/organizations",
            Some(json!({"organizations": {"name": "Secret"}})),
        )
        .await;
    let secret = body["organizations"]["id"].as_str().unwrap().to_owned();

    // Another owner, org and app.
    let (other_token, other_org, other_app) = w
        .hub
        .org_with_app("other@example.com", None, ALL)
        .await
        .unwrap();
    let other_auth = basic_auth(&other_app.key, &other_app.secret);
    let http = &w.platform.http;

    // The other app asks for org A's record through org A's URL: refused.
    let (status, body, _) = finish(
        http.get(w.url(&format!("/organizations/{secret}")))
            .header("Authorization", &other_auth)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert!(
        status == StatusCode::FORBIDDEN || status == StatusCode::NOT_FOUND,
        "{status} {body}"
    );
    // Through its own org's URL: not there.
    let (status, _, _) = finish(
        http.get(w.platform.url(&format!(
            "/connec/api/v2/{other_org}/organizations/{secret}"
        )))
        .header("Authorization", &other_auth)
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // A user of the other org fares no better, and cannot reference A's record.
    let (status, _, _) = finish(
        http.get(w.url(&format!("/organizations/{secret}")))
            .header("Authorization", bearer(&other_token))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, body, _) = finish(
        http.post(
            w.platform
                .url(&format!("/connec/api/v2/{other_org}/invoices")),
        )
        .header("Authorization", &other_auth)
        .json(&json!({"invoices": {"organization_id": secret}}))
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    // And cannot write into org A.
    let (status, _, _) = finish(
        http.post(w.url("/organizations"))
            .header("Authorization", &other_auth)
            .json(&json!({"organizations": {"name": "Intruder"}}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let _ = w.token;
}

#[tokio::test]
async fn company_is_singular_and_id_map_records_an_apps_id() {
    let w = world().await;
    let (status, body, _) = w.send(reqwest::Method::GET, "/company", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let (status, body, _) = w
        .send(
            reqwest::Method::PUT,
            "/company",
            Some(json!({"company": {"name": "Acme Ltd", "currency": "EUR"}})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body, _) = w
        .send(
            reqwest::Method::PUT,
            "/company",
            Some(json!({"company": {"currency": "GBP"}})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["company"]["name"], "Acme Ltd");
    assert_eq!(body["company"]["version"], 2);

    let (_, body, _) = w
        .send(
            reqwest::Method::POST,
            "/items",
            Some(json!({"items": {"name": "Widget"}})),
        )
        .await;
    let item = body["items"]["id"].as_str().unwrap().to_owned();
    let (status, body, _) = w
        .send(
            reqwest::Method::PUT,
            &format!("/items/{item}/id_map"),
            Some(json!({"local_id": "W-9"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // A mapping is not a change of the record: its version stays.
    assert_eq!(body["items"]["version"], 1);
    let (status, body, _) = w.send(reqwest::Method::GET, "/items/W-9", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["items"]["id"], item.as_str());

    // Mapped again under another id: that one is the app's id from now on,
    // and the first stays an alias of the same record (docs/api/connec.md).
    let (status, body, _) = w
        .send(
            reqwest::Method::PUT,
            &format!("/items/{item}/id_map"),
            Some(json!({"local_id": "W-10"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    for local in ["W-9", "W-10"] {
        let (status, body, _) = w
            .send(reqwest::Method::GET, &format!("/items/{local}"), None)
            .await;
        assert_eq!(status, StatusCode::OK, "{local}: {body}");
        assert_eq!(body["items"]["id"], item.as_str());
    }
    let body = w.get_with_external_ids(&format!("/items/{item}")).await;
    let ids = body["items"]["id"].to_string();
    assert!(ids.contains("W-10") && !ids.contains("W-9"), "{body}");
    let (status, body, _) = w
        .send(
            reqwest::Method::POST,
            "/items",
            Some(json!({"items": {"id": "W-9", "name": "Another"}})),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["errors"][0]["code"], "already_exists", "{body}");

    // An app that only reads items maps its own id too (as it may by answering
    // a webhook), and may then address the record by it; it still cannot write.
    let reader = w
        .hub
        .create_app(&w.token, "Reader", None, &[("items", true, false)])
        .await
        .unwrap();
    w.hub.install(&w.token, &w.org, &reader.id).await.unwrap();
    let reader_auth = basic_auth(&reader.key, &reader.secret);
    let (status, body, _) = finish(
        w.platform
            .http
            .put(w.url(&format!("/items/{item}/id_map")))
            .header("Authorization", &reader_auth)
            .json(&json!({"local_id": "R-1"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["items"]["version"], 1, "{body}");
    let (status, body, _) = finish(
        w.platform
            .http
            .get(w.url("/items/R-1"))
            .header("Authorization", &reader_auth)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["items"]["id"], item.as_str());
    let (status, _, _) = finish(
        w.platform
            .http
            .put(w.url("/items/R-1"))
            .header("Authorization", &reader_auth)
            .json(&json!({"items": {"name": "Renamed"}}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn acknowledged_writes_survive_a_crash_of_the_bus() {
    let mut w = world().await;
    let mut ids = Vec::new();
    for i in 0..20 {
        let (status, body, _) = w
            .send(
                reqwest::Method::POST,
                "/items",
                Some(json!({"items": {"name": format!("item {i}")}})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED);
        ids.push(body["items"]["id"].as_str().unwrap().to_owned());
    }
    w.platform.nats.kill9();
    w.platform.nats.restart().await;
    for (i, id) in ids.iter().enumerate() {
        let body = mno_harness::wait_for(
            "the record after the restart",
            std::time::Duration::from_secs(20),
            || async {
                let (status, body, _) = w
                    .send(reqwest::Method::GET, &format!("/items/{id}"), None)
                    .await;
                (status == StatusCode::OK).then_some(body)
            },
        )
        .await;
        assert_eq!(body["items"]["name"], format!("item {i}"));
    }
}

#[tokio::test]
async fn matching_fields_merge_into_the_record_that_matches() {
    let w = world().await;
    let (status, body, _) = w
        .send(
            reqwest::Method::POST,
            "/items",
            Some(json!({"items": {"code": "SKU-9", "name": "Widget", "sale_price": "5"}})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let id = body["items"]["id"].as_str().unwrap().to_owned();

    let before = w.records_in_stream().await;
    let (status, body, _) = w
        .send(
            reqwest::Method::POST,
            "/items?matching_fields=code",
            Some(json!({"items": {"code": "SKU-9", "name": "Widget v2", "sale_price": "6"}})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "merged, not created: {body}");
    assert_eq!(body["items"]["id"], id.as_str());
    assert_eq!(body["items"]["name"], "Widget v2");
    assert_eq!(body["items"]["version"], 2);
    assert_eq!(w.records_in_stream().await, before + 1);

    // Merged under the app's own id: the stream says so, with an id_mapped
    // event, and the update that follows carries it as its source.
    let (status, body, _) = w
        .send(
            reqwest::Method::POST,
            "/items?matching_fields=code",
            Some(json!({"items": {"id": "L-9", "code": "SKU-9", "name": "Widget v3"}})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["items"]["id"], id.as_str());
    let (_, history, _) = w
        .send(reqwest::Method::GET, &format!("/items/{id}/history"), None)
        .await;
    let last: Vec<(String, String)> = history["history"].as_array().unwrap()[2..]
        .iter()
        .map(|e| {
            (
                e["op"].as_str().unwrap().to_owned(),
                e["source"]["local_id"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        last,
        [
            ("id_mapped".to_owned(), "L-9".to_owned()),
            ("updated".to_owned(), "L-9".to_owned())
        ],
        "{history}"
    );

    // No match: an ordinary create.
    let (status, _, _) = w
        .send(
            reqwest::Method::POST,
            "/items",
            Some(
                json!({"items": {"code": "SKU-10", "name": "Gadget"}, "matching_fields": ["code"]}),
            ),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    // A matching field the record does not carry is refused.
    let (status, body, _) = w
        .send(
            reqwest::Method::POST,
            "/items?matching_fields=code",
            Some(json!({"items": {"name": "No code"}})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["errors"][0]["source"]["pointer"], "/items/code");
}

/// A path value that is not UTF-8 once decoded is the caller's error (400), not the platform's.
#[tokio::test]
async fn a_path_value_that_is_not_utf8_is_a_bad_request() {
    let w = world().await;
    for path in ["/people/%ff%fe", "/people/%ff%fe/history"] {
        let (status, body, _) = w.send(reqwest::Method::GET, path, None).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}: {body}");
        assert_eq!(body["errors"][0]["code"], "invalid_parameter", "{body}");
    }
    let response = w
        .platform
        .http
        .get(w.platform.url("/connec/api/v2/%ff/people"))
        .header("Authorization", w.auth())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
}

/// One answer names every bad field: a value of the wrong shape and a
/// reference to no record alike, on a create and on an update.
#[tokio::test]
async fn a_bad_value_and_an_unknown_reference_are_named_in_one_answer() {
    let w = world().await;
    let before = w.records_in_stream().await;
    let (status, body, _) = w
        .send(
            reqwest::Method::POST,
            "/invoices",
            Some(json!({"invoices": {"id": "INV-2", "person_id": "NOPE", "total_amount": "abc"}})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let pointers = |body: &Value| -> Vec<String> {
        let mut all: Vec<String> = body["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                e["source"]["pointer"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned()
            })
            .collect();
        all.sort();
        all
    };
    assert_eq!(
        pointers(&body),
        ["/invoices/person_id", "/invoices/total_amount"],
        "{body}"
    );
    let (status, body, _) = w
        .send(
            reqwest::Method::POST,
            "/invoices",
            Some(json!({"invoices": {"id": "INV-3", "type": "CUSTOMER"}})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body, _) = w
        .send(
            reqwest::Method::PUT,
            "/invoices/INV-3",
            Some(json!({"invoices": {"person_id": "NOPE", "due_date": "soon"}})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(
        pointers(&body),
        ["/invoices/due_date", "/invoices/person_id"],
        "{body}"
    );
    assert_eq!(
        w.records_in_stream().await,
        before + 1,
        "only INV-3 written"
    );
}

#[tokio::test]
async fn the_company_record_cannot_be_deleted_and_a_tombstone_of_old_does_not_block_it() {
    let w = world().await;
    let (status, body, _) = w
        .send(
            reqwest::Method::PUT,
            "/company",
            Some(json!({"company": {"name": "Acme Ltd"}})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let before = w.records_in_stream().await;
    let (status, body, _) = w
        .send(reqwest::Method::DELETE, "/company/current", None)
        .await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "{body}");
    assert_first_error(&body, "not_deletable", "PUT");
    assert_eq!(w.records_in_stream().await, before, "nothing written");

    // An earlier version let the company record be deleted: its tombstone
    // must not make every later PUT fail.
    w.platform
        .publish_record_event(
            &w.org,
            "company",
            "current",
            mno_events::proto::Op::Deleted,
            2,
            &json!({"name": "Acme Ltd"}),
        )
        .await;
    let (status, body, _) = w.send(reqwest::Method::GET, "/company", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let (status, body, _) = w
        .send(
            reqwest::Method::PUT,
            "/company",
            Some(json!({"company": {"name": "Acme again"}})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(
        body["company"]["version"], 3,
        "it continues the record's versions"
    );
    let (status, body, _) = w.send(reqwest::Method::GET, "/company", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["company"]["name"], "Acme again");
}

#[tokio::test]
async fn a_refused_request_leaves_its_idempotency_key_free_for_the_corrected_one() {
    let w = world().await;
    let send = |record: Value| {
        w.platform
            .http
            .post(w.url("/items"))
            .header("Authorization", w.auth())
            .header("Idempotency-Key", "k-fix")
            .json(&json!({ "items": record }))
            .send()
    };
    let before = w.records_in_stream().await;
    let (status, body, _) = finish(send(json!({"code": "no name"})).await.unwrap()).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["errors"][0]["source"]["pointer"], "/items/name");
    assert_eq!(w.records_in_stream().await, before);

    let (status, first, _) = finish(send(json!({"name": "Bolt"})).await.unwrap()).await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    let replay = send(json!({"name": "Bolt"})).await.unwrap();
    assert_eq!(replay.headers()["idempotent-replayed"], "true");
    let (status, again, _) = finish(replay).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(first, again);
    assert_eq!(w.records_in_stream().await, before + 1, "one event");
}

#[tokio::test]
async fn a_record_grown_past_the_bus_message_limit_is_refused_as_too_large() {
    let w = world().await;
    let half = "x".repeat(600 * 1024);
    let (status, body, _) = w
        .send(
            reqwest::Method::POST,
            "/items",
            Some(json!({"items": {"name": "Big", "notes": half}})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let id = body["items"]["id"].as_str().unwrap().to_owned();
    let before = w.records_in_stream().await;
    // Each body is under the 1 MiB request limit; the record they make is not.
    let (status, body, _) = w
        .send(
            reqwest::Method::PUT,
            &format!("/items/{id}"),
            Some(json!({"items": {"more_notes": half}})),
        )
        .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    assert_first_error(&body, "record_too_large", "fewer or shorter fields");
    assert_eq!(w.records_in_stream().await, before, "nothing written");
}

#[tokio::test]
async fn a_method_a_route_does_not_serve_is_a_json_405_naming_the_allowed_ones() {
    let w = world().await;
    for (method, path) in [
        (reqwest::Method::PATCH, w.url("/items/some-id")),
        (reqwest::Method::DELETE, w.url("/company")),
        (reqwest::Method::GET, w.platform.url("/connec/batch")),
    ] {
        let response = w
            .platform
            .http
            .request(method.clone(), &path)
            .header("Authorization", w.auth())
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.status(),
            StatusCode::METHOD_NOT_ALLOWED,
            "{method} {path}"
        );
        assert!(response.headers().contains_key("allow"), "{method} {path}");
        let body: Value = response.json().await.unwrap();
        assert_first_error(&body, "method_not_allowed", method.as_str());
    }
}

#[tokio::test]
async fn an_apps_local_id_of_a_deleted_record_may_name_a_new_one() {
    let w = world().await;
    let create = |name: &'static str| {
        w.send(
            reqwest::Method::POST,
            "/items",
            Some(json!({"items": {"id": "DEL-1", "name": name}})),
        )
    };
    let (status, body, _) = create("First").await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let first = body["items"]["id"].as_str().unwrap().to_owned();
    let (status, body, _) = create("Again").await;
    assert_eq!(
        status,
        StatusCode::CONFLICT,
        "a live record keeps its local id: {body}"
    );
    let (status, _, _) = w.send(reqwest::Method::DELETE, "/items/DEL-1", None).await;
    assert_eq!(status, StatusCode::OK);

    let (status, body, _) = create("Second").await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let second = body["items"]["id"].as_str().unwrap().to_owned();
    assert_ne!(second, first, "a new record, not the deleted one revived");
    let (status, body, _) = w.send(reqwest::Method::GET, "/items/DEL-1", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["items"]["id"], second.as_str());
    assert_eq!(body["items"]["name"], "Second");
    let (status, _, _) = w
        .send(reqwest::Method::GET, &format!("/items/{first}"), None)
        .await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "the deleted one stays deleted"
    );
}
