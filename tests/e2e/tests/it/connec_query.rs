//! Connec!'s read side: lists from the record store with `$filter`,
//! `$orderby`, paging and read-your-writes; history and the change feed from
//! the stream.

use mno_e2e::hub_client::{basic_auth, HubClient};
use mno_e2e::TestPlatform;
use reqwest::StatusCode;
use serde_json::{json, Value};

struct World {
    platform: TestPlatform,
    org: String,
    auth: String,
    hub: HubClient,
}

async fn world() -> World {
    let platform = TestPlatform::spawn().await;
    let hub = HubClient::new(&platform.base_url);
    let (_, org, app) = hub
        .org_with_app(
            "owner@example.com",
            None,
            &[
                ("invoices", true, true),
                ("items", true, true),
                ("people", true, true),
            ],
        )
        .await
        .unwrap();
    World {
        auth: basic_auth(&app.key, &app.secret),
        platform,
        org,
        hub,
    }
}

impl World {
    async fn post(&self, entity: &str, record: Value) -> (Value, u64) {
        let response = self
            .platform
            .http
            .post(
                self.platform
                    .url(&format!("/connec/api/v2/{}/{entity}", self.org)),
            )
            .header("Authorization", &self.auth)
            .json(&json!({ entity: record }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::CREATED);
        let seq = response.headers()["mno-consistency-token"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        let body: Value = response.json().await.unwrap();
        (body[entity].clone(), seq)
    }

    async fn get(&self, path_and_query: &str) -> (StatusCode, Value) {
        let response = self
            .platform
            .http
            .get(
                self.platform
                    .url(&format!("/connec/api/v2/{}{path_and_query}", self.org)),
            )
            .header("Authorization", &self.auth)
            .send()
            .await
            .unwrap();
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    async fn records_in_stream(&self) -> u64 {
        let mut stream = self
            .platform
            .running()
            .bus
            .js
            .get_stream("RECORDS")
            .await
            .unwrap();
        stream.info().await.unwrap().state.messages
    }
}

fn names(body: &Value, entity: &str) -> Vec<String> {
    body[entity]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn lists_filter_order_and_page_with_read_your_writes() {
    let w = world().await;
    let mut last = 0;
    for (name, price, active) in [
        ("Apple", "10.5", true),
        ("Banana", "2", true),
        ("Cherry", "100", false),
        ("Date", "20", true),
    ] {
        let (_, seq) = w
            .post("items", json!({"name": name, "sale_price": price, "is_inventoried": active, "code": name.to_lowercase()}))
            .await;
        last = seq;
    }
    // min_seq: the list reflects every write up to the caller's last one.
    let (status, body) = w
        .get(&format!("/items?min_seq={last}&$orderby=name asc"))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(names(&body, "items"), ["Apple", "Banana", "Cherry", "Date"]);
    assert_eq!(body["pagination"]["total"], 4);

    // Decimal fields compare and sort as numbers, not as text.
    let (_, body) = w
        .get("/items?$filter=sale_price gt 5&$orderby=sale_price desc")
        .await;
    assert_eq!(names(&body, "items"), ["Cherry", "Date", "Apple"]);
    let (_, body) = w
        .get("/items?$filter=is_inventoried eq true and (code eq 'apple' or code eq 'date')")
        .await;
    assert_eq!(names(&body, "items"), ["Apple", "Date"]);
    let (_, body) = w
        .get("/items?$filter=not (sale_price le 10) and name ne 'Date'&$orderby=name")
        .await;
    assert_eq!(names(&body, "items"), ["Apple", "Cherry"]);
    let (_, body) = w.get("/items?$filter=description eq null and updated_at gt '2000-01-01T00:00:00Z'&$orderby=name").await;
    assert_eq!(body["pagination"]["total"], 4);

    // Paging with $top/$skip and the opaque cursor of links.next.
    let (_, page1) = w.get("/items?$orderby=name&$top=3").await;
    assert_eq!(names(&page1, "items"), ["Apple", "Banana", "Cherry"]);
    let next = page1["links"]["next"].as_str().unwrap().to_owned();
    let response = w
        .platform
        .http
        .get(w.platform.url(&next))
        .header("Authorization", &w.auth)
        .send()
        .await
        .unwrap();
    let page2: Value = response.json().await.unwrap();
    assert_eq!(names(&page2, "items"), ["Date"]);
    assert!(page2["links"]["next"].is_null());

    // Deleted records leave the list unless asked for.
    let (apple, _) = {
        let (_, body) = w.get("/items?$filter=name eq 'Apple'").await;
        (body["items"][0]["id"].as_str().unwrap().to_owned(), ())
    };
    let response = w
        .platform
        .http
        .delete(
            w.platform
                .url(&format!("/connec/api/v2/{}/items/{apple}", w.org)),
        )
        .header("Authorization", &w.auth)
        .send()
        .await
        .unwrap();
    let seq: u64 = response.headers()["mno-consistency-token"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let (_, body) = w.get(&format!("/items?min_seq={seq}")).await;
    assert_eq!(body["pagination"]["total"], 3);
    let (_, body) = w
        .get(&format!(
            "/items?min_seq={seq}&include_deleted=true&$filter=name eq 'Apple'"
        ))
        .await;
    assert_eq!(body["items"][0]["deleted"], true);
    // The tombstone's mark filters like a field.
    let (_, body) = w
        .get(&format!(
            "/items?min_seq={seq}&include_deleted=true&$filter=deleted eq true"
        ))
        .await;
    assert_eq!(body["pagination"]["total"], 1, "{body}");
    assert_eq!(body["items"][0]["id"], apple.as_str(), "{body}");
    let (_, body) = w
        .get(&format!(
            "/items?min_seq={seq}&include_deleted=true&$filter=deleted ne true"
        ))
        .await;
    assert_eq!(body["pagination"]["total"], 3, "{body}");
    let (status, body) = w.get("/items?$filter=deleted gt 0").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(
        body["errors"][0]["source"]["parameter"], "$filter",
        "{body}"
    );
}

#[tokio::test]
async fn query_syntax_errors_name_the_position_and_injection_does_nothing() {
    let w = world().await;
    w.post("items", json!({"name": "Only"})).await;
    let before = w.records_in_stream().await;

    let (status, body) = w.get("/items?$filter=name eq").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["errors"][0]["detail"]
            .as_str()
            .unwrap()
            .contains("position 7"),
        "{body}"
    );
    let (status, body) = w.get("/items?$orderby=name sideways").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["errors"][0]["source"]["parameter"], "$orderby");
    let (status, _) = w.get("/items?$top=5000").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = w.get("/items?cursor=not-a-cursor").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    for attack in [
        "name eq 'x' or 1 eq 1",
        "name eq 'x'' OR ''1''=''1'",
        "name eq 'x'); DROP TABLE connec_records; --'",
        "name') or ('1' eq '1",
        "state eq 'x' or name ne 'y'",
    ] {
        let (status, body) = w
            .get(&format!("/items?$filter={}", urlencode(attack)))
            .await;
        if status == StatusCode::OK {
            // A well-formed filter compares values; it never widens the query to other rows.
            for item in body["items"].as_array().unwrap() {
                assert_eq!(item["name"], "Only", "{attack}");
            }
        } else {
            assert_eq!(status, StatusCode::BAD_REQUEST, "{attack}: {body}");
        }
    }
    let (status, body) = w
        .get("/items?$orderby=name%3B%20DROP%20TABLE%20connec_records")
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, body) = w.get("/items").await;
    assert_eq!(status, StatusCode::OK, "the table is still there: {body}");
    assert_eq!(body["pagination"]["total"], 1);
    assert_eq!(w.records_in_stream().await, before);
}

fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[tokio::test]
async fn lists_never_show_another_orgs_records() {
    let w = world().await;
    w.post("people", json!({"first_name": "Mine"})).await;
    let (_, other_org, other_app) = w
        .hub
        .org_with_app("other@example.com", None, &[("people", true, true)])
        .await
        .unwrap();
    let other_auth = basic_auth(&other_app.key, &other_app.secret);
    let response = w
        .platform
        .http
        .post(
            w.platform
                .url(&format!("/connec/api/v2/{other_org}/people")),
        )
        .header("Authorization", &other_auth)
        .json(&json!({"people": {"first_name": "Theirs"}}))
        .send()
        .await
        .unwrap();
    let seq: u64 = response.headers()["mno-consistency-token"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let (_, body) = w.get(&format!("/people?min_seq={seq}")).await;
    let firsts: Vec<&str> = body["people"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["first_name"].as_str().unwrap())
        .collect();
    assert_eq!(firsts, ["Mine"]);
    // The other org's app cannot list this org.
    let response = w
        .platform
        .http
        .get(w.platform.url(&format!("/connec/api/v2/{}/people", w.org)))
        .header("Authorization", &other_auth)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn history_and_the_change_feed_show_every_event_including_deletes() {
    let w = world().await;
    let (person, _) = w.post("people", json!({"first_name": "Ann"})).await;
    let id = person["id"].as_str().unwrap().to_owned();
    let http = &w.platform.http;
    let url = w
        .platform
        .url(&format!("/connec/api/v2/{}/people/{id}", w.org));
    http.put(&url)
        .header("Authorization", &w.auth)
        .json(&json!({"people": {"last_name": "Lee"}}))
        .send()
        .await
        .unwrap();
    http.delete(&url)
        .header("Authorization", &w.auth)
        .send()
        .await
        .unwrap();
    w.post("items", json!({"name": "Thing"})).await;

    let (status, body) = w.get(&format!("/people/{id}/history")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let ops: Vec<&str> = body["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["op"].as_str().unwrap())
        .collect();
    assert_eq!(ops, ["created", "updated", "deleted"]);
    assert_eq!(body["history"][1]["changed_fields"], json!(["last_name"]));
    assert_eq!(body["history"][2]["version"], 3);

    let (_, feed) = w.get("/changes?entities=people").await;
    let ops: Vec<&str> = feed["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["op"].as_str().unwrap())
        .collect();
    assert_eq!(ops, ["created", "updated", "deleted"]);
    // Resuming from a cursor gives what came after it, and nothing when there is nothing new.
    let first = feed["changes"][0]["seq"].as_u64().unwrap();
    let (_, rest) = w
        .get(&format!(
            "/changes?since={first}&entities=people,items&limit=10"
        ))
        .await;
    let ops: Vec<&str> = rest["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["op"].as_str().unwrap())
        .collect();
    assert_eq!(ops, ["updated", "deleted", "created"]);
    let next = rest["next"].as_str().unwrap();
    let (_, empty) = w.get(&format!("/changes?since={next}")).await;
    assert_eq!(empty["changes"], json!([]));
    assert_eq!(empty["next"], next);
    // The limit cuts the page; the next cursor continues it.
    let (_, limited) = w.get("/changes?limit=2").await;
    assert_eq!(limited["changes"].as_array().unwrap().len(), 2);
    let (status, _) = w.get("/changes?entities=unicorns").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

/// The status of each op in a batch's answer, in op order.
fn result_statuses(body: &Value) -> Vec<u64> {
    body["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["status"].as_u64().unwrap())
        .collect()
}

#[tokio::test]
async fn batches_run_each_op_and_atomic_batches_store_all_or_nothing() {
    let w = world().await;
    let (item, _) = w.post("items", json!({"name": "Existing"})).await;
    let item_id = item["id"].as_str().unwrap().to_owned();
    let org = w.org.clone();
    let send = |body: Value| {
        w.platform
            .http
            .post(w.platform.url("/connec/batch"))
            .header("Authorization", &w.auth)
            .json(&body)
            .send()
    };

    // Each op on its own: one bad op does not stop the others.
    let response = send(json!({"sequential": true, "ops": [
        {"method": "post", "url": format!("/api/v2/{org}/items"), "params": {"items": {"name": "New"}}},
        {"method": "post", "url": format!("/api/v2/{org}/invoices"), "params": {"invoices": {"due_date": "soon"}}},
        {"method": "put", "url": format!("/api/v2/{org}/items/{item_id}"), "params": {"items": {"code": "E-1"}}},
        {"method": "get", "url": format!("/api/v2/{org}/items/{item_id}")}
    ]}))
    .await
    .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    // A batch answers the consistency token of its latest write: a list
    // read with it as `min_seq` sees every write of the batch.
    let token: u64 = response.headers()["mno-consistency-token"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let body: Value = response.json().await.unwrap();
    let statuses = result_statuses(&body);
    assert_eq!(statuses, [201, 422, 200, 200], "{body}");
    let (status, listed) = w
        .get(&format!("/items?min_seq={token}&$filter=code eq 'E-1'"))
        .await;
    assert_eq!(status, StatusCode::OK, "{listed}");
    assert_eq!(names(&listed, "items"), ["Existing"], "{listed}");
    assert_eq!(
        body["results"][1]["body"]["errors"][0]["source"]["pointer"],
        "/ops/1/params/invoices/due_date"
    );
    assert_eq!(body["results"][3]["body"]["items"]["code"], "E-1");

    // Not sequential: ops run together; results keep op order, a bad op fails alone.
    let before = w.records_in_stream().await;
    let ops: Vec<Value> = (0..40)
        .map(|i| {
            let price = if i == 17 {
                json!("lots")
            } else {
                json!(format!("{i}.50"))
            };
            json!({"method": "post", "url": format!("/api/v2/{org}/items"),
                   "params": {"items": {"name": format!("bulk-{i}"), "sale_price": price}}})
        })
        .collect();
    let body: Value = send(json!({"sequential": false, "ops": ops}))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let results = body["results"].as_array().unwrap();
    assert_eq!(results.len(), 40);
    for (i, result) in results.iter().enumerate() {
        if i == 17 {
            assert_eq!(result["status"], 422, "{result}");
            assert_eq!(
                result["body"]["errors"][0]["source"]["pointer"],
                "/ops/17/params/items/sale_price"
            );
        } else {
            assert_eq!(result["status"], 201, "{result}");
            assert_eq!(result["body"]["items"]["name"], format!("bulk-{i}"));
            assert_eq!(result["body"]["items"]["sale_price"], format!("{i}.50"));
        }
    }
    assert_eq!(w.records_in_stream().await, before + 39);
    // One request, one correlation id: the batch's events share it.
    let mut correlations = Vec::new();
    for i in [0, 39] {
        let id = results[i]["body"]["items"]["id"].as_str().unwrap();
        let (_, history) = w.get(&format!("/items/{id}/history")).await;
        correlations.push(history["history"][0]["correlation_id"].clone());
    }
    assert!(correlations[0].as_str().is_some_and(|c| !c.is_empty()));
    assert_eq!(correlations[0], correlations[1]);

    // Independent ops that are not independent (two updates of one record): the bus
    // refuses them as one atomic publish, so each runs on its own and both apply.
    let before = w.records_in_stream().await;
    let body: Value = send(json!({"sequential": false, "ops": [
        {"method": "put", "url": format!("/api/v2/{org}/items/{item_id}"), "params": {"items": {"code": "TWICE-1"}}},
        {"method": "put", "url": format!("/api/v2/{org}/items/{item_id}"), "params": {"items": {"name": "Twice"}}}
    ]}))
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let statuses = result_statuses(&body);
    assert_eq!(statuses, [200, 200], "{body}");
    assert_eq!(w.records_in_stream().await, before + 2);
    let (_, read) = w.get(&format!("/items/{item_id}")).await;
    assert_eq!(read["items"]["code"], "TWICE-1", "{read}");
    assert_eq!(read["items"]["name"], "Twice", "{read}");

    // Atomic and valid: every op stored, in consecutive stream sequences.
    let before = w.records_in_stream().await;
    let response = send(json!({"atomic": true, "ops": [
        {"method": "post", "url": format!("/api/v2/{org}/items"), "params": {"items": {"name": "A1"}}},
        {"method": "post", "url": format!("/api/v2/{org}/people"), "params": {"people": {"first_name": "A2"}}},
        {"method": "put", "url": format!("/api/v2/{org}/items/{item_id}"), "params": {"items": {"code": "E-2"}}}
    ]}))
    .await
    .unwrap();
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    assert_eq!(status, StatusCode::OK, "{body}");
    let statuses = result_statuses(&body);
    assert_eq!(statuses, [201, 201, 200]);
    assert_eq!(w.records_in_stream().await, before + 3);
    let (_, read) = w.get(&format!("/items/{item_id}")).await;
    assert_eq!(read["items"]["code"], "E-2");

    // Atomic with one bad op: nothing stored; the bad op is named, the others answer 424.
    let before = w.records_in_stream().await;
    let response = send(json!({"atomic": true, "ops": [
        {"method": "post", "url": format!("/api/v2/{org}/items"), "params": {"items": {"name": "Never"}}},
        {"method": "post", "url": format!("/api/v2/{org}/items"), "params": {"items": {"sale_price": "lots"}}}
    ]}))
    .await
    .unwrap();
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body: Value = response.json().await.unwrap();
    let statuses = result_statuses(&body);
    assert_eq!(statuses, [424, 422]);
    assert_eq!(w.records_in_stream().await, before);

    // Too many ops.
    let ops: Vec<Value> = (0..101)
        .map(|i| json!({"method": "post", "url": format!("/api/v2/{org}/items"), "params": {"items": {"name": format!("n{i}")}}}))
        .collect();
    let response = send(json!({"ops": ops})).await.unwrap();
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(w.records_in_stream().await, before);
}

#[tokio::test]
async fn the_record_store_answers_the_same_on_postgresql() {
    let url = mno_harness::Postgres::shared_database();
    let platform = TestPlatform::spawn_with(|c| c.database_url = Some(url)).await;
    let hub = HubClient::new(&platform.base_url);
    let (_, org, app) = hub
        .org_with_app("pg@example.com", None, &[("items", true, true)])
        .await
        .unwrap();
    let w = World {
        auth: basic_auth(&app.key, &app.secret),
        platform,
        org,
        hub,
    };
    let mut last = 0;
    for (name, price, active) in [
        ("Apple", "10.5", true),
        ("Banana", "2", false),
        ("Cherry", "100", true),
    ] {
        let (_, seq) = w
            .post(
                "items",
                json!({"name": name, "sale_price": price, "is_inventoried": active}),
            )
            .await;
        last = seq;
    }
    let (status, body) = w
        .get(&format!("/items?min_seq={last}&$filter=sale_price ge 2.5 and is_inventoried eq true&$orderby=sale_price desc"))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(names(&body, "items"), ["Cherry", "Apple"]);
    let (_, body) = w
        .get("/items?$filter=name ne 'Apple' and description eq null&$orderby=name desc&$top=1")
        .await;
    assert_eq!(names(&body, "items"), ["Cherry"]);
    assert_eq!(body["pagination"]["total"], 2);

    // PostgreSQL cannot hold U+0000 in text: a record holding one is refused,
    // naming where, and nothing is written.
    let before = w.records_in_stream().await;
    let response = w
        .platform
        .http
        .post(w.platform.url(&format!("/connec/api/v2/{}/items", w.org)))
        .header("Authorization", &w.auth)
        .json(&json!({"items": {"name": "Nul\u{0}l", "code": "N-1"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body["errors"][0]["source"]["pointer"], "/items/name",
        "{body}"
    );
    assert!(
        body["errors"][0]["detail"]
            .as_str()
            .unwrap()
            .contains("U+0000"),
        "{body}"
    );
    assert_eq!(w.records_in_stream().await, before, "nothing written");
    for (record, pointer) in [
        (json!({"id": "own\u{0}id", "name": "Own"}), "/items/id"),
        (
            json!({"name": "Ref", "parent_item_id": "p\u{0}"}),
            "/items/parent_item_id",
        ),
    ] {
        let response = w
            .platform
            .http
            .post(w.platform.url(&format!("/connec/api/v2/{}/items", w.org)))
            .header("Authorization", &w.auth)
            .json(&json!({ "items": record }))
            .send()
            .await
            .unwrap();
        let status = response.status();
        let body: Value = response.json().await.unwrap();
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert_eq!(body["errors"][0]["source"]["pointer"], pointer, "{body}");
    }
    assert_eq!(w.records_in_stream().await, before, "nothing written");

    // An event that holds one anyway (from before writes refused it) does not
    // make filtered lists of its collection fail.
    let seq = w
        .platform
        .publish_record_event(
            &w.org,
            "items",
            "old-nul",
            mno_events::proto::Op::Created,
            1,
            &json!({"name": "Damson", "description": "a\u{0}b", "sale_price": "3"}),
        )
        .await;
    let (status, body) = w
        .get(&format!(
            "/items?min_seq={seq}&$filter=sale_price ge 2.5 and name ne 'Apple'&$orderby=name"
        ))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(names(&body, "items"), ["Cherry", "Damson"]);
}

#[tokio::test]
async fn a_batch_needs_valid_credentials_as_a_whole_and_honours_an_idempotency_key() {
    let w = world().await;
    let org = w.org.clone();
    let ops = json!({"sequential": false, "ops": [
        {"method": "post", "url": format!("/api/v2/{org}/items"), "params": {"items": {"name": "A"}}},
        {"method": "post", "url": format!("/api/v2/{org}/items"), "params": {"items": {"name": "B"}}}
    ]});
    let before = w.records_in_stream().await;
    for auth in [None, Some(basic_auth("no-such-key", "wrong"))] {
        let mut request = w
            .platform
            .http
            .post(w.platform.url("/connec/batch"))
            .json(&ops);
        if let Some(auth) = &auth {
            request = request.header("Authorization", auth);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{auth:?}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["errors"][0]["code"], "unauthorized", "{body}");
    }
    assert_eq!(w.records_in_stream().await, before, "nothing written");

    let send = |body: &Value| {
        w.platform
            .http
            .post(w.platform.url("/connec/batch"))
            .header("Authorization", &w.auth)
            .header("Idempotency-Key", "batch-1")
            .json(body)
            .send()
    };
    let first = send(&ops).await.unwrap();
    assert_eq!(first.status(), StatusCode::OK);
    assert!(!first.headers().contains_key("idempotent-replayed"));
    let first: Value = first.json().await.unwrap();
    assert_eq!(result_statuses(&first), [201, 201], "{first}");
    let again = send(&ops).await.unwrap();
    assert_eq!(again.status(), StatusCode::OK);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    let again: Value = again.json().await.unwrap();
    assert_eq!(first, again, "the first answer, ids included");
    assert_eq!(w.records_in_stream().await, before + 2, "written once");

    let other = json!({"ops": [
        {"method": "post", "url": format!("/api/v2/{org}/items"), "params": {"items": {"name": "C"}}}
    ]});
    let response = send(&other).await.unwrap();
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["errors"][0]["code"], "idempotency_key_reused");
    assert_eq!(w.records_in_stream().await, before + 2);
}

#[tokio::test]
async fn a_stream_position_past_the_end_is_refused_at_once_rather_than_missing_writes() {
    let w = world().await;
    let (_, seq) = w.post("items", json!({"name": "Only"})).await;
    let past = seq + 1000;
    for (path, parameter) in [
        (format!("/changes?since={past}"), "since"),
        (format!("/items?min_seq={past}"), "min_seq"),
    ] {
        let (status, body) = w.get(&path).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}: {body}");
        assert_eq!(body["errors"][0]["source"]["parameter"], parameter);
        let detail = body["errors"][0]["detail"].as_str().unwrap();
        assert!(
            detail.contains("past the end of the stream")
                && detail.contains(&format!("its last sequence is {seq}")),
            "{detail}"
        );
    }
    // At the end exactly is a valid position: nothing new yet.
    let (status, body) = w.get(&format!("/changes?since={seq}")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["changes"].as_array().unwrap().len(), 0);
    assert_eq!(body["next"], seq.to_string());
    let (status, body) = w.get("/changes?entities=widgets").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["errors"][0]["source"]["parameter"], "entities");
}

#[tokio::test]
async fn a_list_at_a_sequence_the_store_holds_answers_while_the_bus_is_down() {
    let mut w = world().await;
    let (_, seq) = w.post("items", json!({"name": "Kept"})).await;
    let (status, _) = w.get(&format!("/items?min_seq={seq}")).await;
    assert_eq!(status, StatusCode::OK);
    // The store has applied it; the bus is not needed to answer.
    w.platform.nats.kill9();
    let (status, body) = w.get(&format!("/items?min_seq={seq}")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(names(&body, "items"), ["Kept"]);
    w.platform.nats.restart().await;
}
