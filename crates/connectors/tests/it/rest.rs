//! Connector 2 (a JSON REST API by a mapping file) against a real
//! json-server 0.17 (tests/json-server), which keeps no change times: the
//! connector finds changes by hash. Then the faults: the API down, 500,
//! garbage, 429 with Retry-After, and a record it refuses.

mod correctness;

use crate::support;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use mno_e2e::hub_client::{basic_auth, bearer};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use support::{eventually, World};

const TOKEN: &str = "json-server-token-0042";

const MAPPING: &str = r#"
[auth]
header = "Authorization"
value = "Bearer {token}"

[[collections]]
entity = "invoices"
path = "/invoices"
pagination = { style = "page", page_param = "_page", size_param = "_limit", size = 2 }

[collections.fields]
transaction_number = "number"
total_amount = { path = "amount", convert = "decimal" }
transaction_date = { path = "date", convert = "date" }
status = { path = "status", convert = "upper" }

[[collections]]
entity = "items"
path = "/items"

[collections.fields]
code = "code"
name = "name"
sale_price = { path = "price", convert = "decimal" }
"#;

/// json-server on a free port over its own db.json, with the fault middleware.
struct JsonServer {
    port: u16,
    dir: tempfile::TempDir,
    child: Option<Child>,
    http: reqwest::Client,
}

impl JsonServer {
    async fn start(db: Value) -> JsonServer {
        let dir = tempfile::Builder::new()
            .prefix("mno-json-server-")
            .tempdir()
            .unwrap();
        std::fs::write(dir.path().join("db.json"), db.to_string()).unwrap();
        let mut server = JsonServer {
            port: mno_harness::free_port(),
            dir,
            child: None,
            http: reqwest::Client::new(),
        };
        server.run().await;
        server
    }

    async fn run(&mut self) {
        let tools: PathBuf = mno_harness::workspace_root().join("tests/json-server");
        let bin = tools.join("node_modules/json-server/lib/cli/bin.js");
        assert!(
            bin.exists(),
            "json-server is missing: npm ci --prefix tests/json-server"
        );
        // The source comes first: --middlewares takes every argument after it.
        let child = Command::new("node")
            .arg(bin)
            .arg(self.dir.path().join("db.json"))
            .args([
                "--host",
                "127.0.0.1",
                "--port",
                &self.port.to_string(),
                "--quiet",
            ])
            .arg("--middlewares")
            .arg(tools.join("faults.js"))
            .env("MNO_FAULT_FILE", self.dir.path().join("fault.json"))
            .env("MNO_REQUIRED_AUTH", format!("Bearer {TOKEN}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start json-server (node)");
        self.child = Some(child);
        let url = self.url("/items");
        let http = self.http.clone();
        mno_harness::wait_for("json-server to listen", Duration::from_secs(30), || {
            let (http, url) = (http.clone(), url.clone());
            async move { http.get(&url).send().await.ok().map(|_| ()) }
        })
        .await;
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// What the API answers next: `{}` for normal answers.
    fn fault(&self, fault: Value) {
        std::fs::write(self.dir.path().join("fault.json"), fault.to_string()).unwrap();
    }

    /// Call the API as an outside app would.
    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let mut request = self.http.request(method, self.url(path)).bearer_auth(TOKEN);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// The records of a collection whose `field` equals `value`.
    async fn find(&self, collection: &str, field: &str, value: &str) -> Vec<Value> {
        let (_, found) = self
            .call(Method::GET, &format!("/{collection}?{field}={value}"), None)
            .await;
        found.as_array().cloned().unwrap_or_default()
    }
}

impl Drop for JsonServer {
    fn drop(&mut self) {
        self.stop();
    }
}

async fn configured(server: &JsonServer) -> World {
    configured_on(server, World::start(&["invoices", "items"]).await).await
}

async fn configured_on(server: &JsonServer, world: World) -> World {
    let (status, body) = world
        .configure(json!({
            "connector": "rest",
            "settings": {"url": server.url(""), "mapping": MAPPING},
            "credentials": {"token": TOKEN},
            "app_credentials": world.app_credentials(),
            "interval_secs": 3600
        }))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    world
}

fn seed() -> Value {
    json!({
        "invoices": [
            {"id": 1, "number": "INV-1", "amount": 100.5, "date": "2026-11-02T09:00:00Z", "status": "draft"},
            {"id": 2, "number": "INV-2", "amount": 20, "date": "2026-11-03", "status": "paid"},
            {"id": 3, "number": "INV-3", "amount": 7.25, "date": "2026-11-04", "status": "draft"}
        ],
        "items": [{"id": 1, "code": "W-1", "name": "Widget", "price": 12.5},
                  {"id": 2, "code": "W-2", "name": "Gadget", "price": 3}]
    })
}

#[tokio::test]
async fn invoices_and_items_flow_both_ways() {
    let server = JsonServer::start(seed()).await;
    let world = configured(&server).await;
    both_ways(&server, &world).await;
}

/// The same on PostgreSQL: the runtime's tables and queries work on both databases.
#[tokio::test]
async fn invoices_and_items_flow_both_ways_on_postgresql() {
    let url = tokio::task::spawn_blocking(mno_harness::Postgres::shared_database)
        .await
        .unwrap();
    let platform = mno_e2e::TestPlatform::spawn_with(|c| c.database_url = Some(url)).await;
    let server = JsonServer::start(seed()).await;
    let world = configured_on(
        &server,
        World::start_on(platform, &["invoices", "items"]).await,
    )
    .await;
    both_ways(&server, &world).await;
}

async fn both_ways(server: &JsonServer, world: &World) {
    // The first sync reads every page (three invoices, two a page).
    let (code, body) = world.sync().await;
    assert_eq!(code, StatusCode::OK, "{body}");
    let inv1 = world
        .connec_by_outside_id("invoices", "1")
        .await
        .expect("INV-1 synced");
    assert_eq!(inv1["transaction_number"], "INV-1");
    assert_eq!(inv1["total_amount"], "100.5");
    assert_eq!(inv1["transaction_date"], "2026-11-02");
    assert_eq!(inv1["status"], "DRAFT");
    assert!(world.connec_by_outside_id("invoices", "3").await.is_some());
    let item = world
        .connec_by_outside_id("items", "1")
        .await
        .expect("the item synced");
    assert_eq!(
        (item["name"].as_str(), item["sale_price"].as_str()),
        (Some("Widget"), Some("12.5"))
    );

    // An edit outside: json-server keeps no change time, the hash tells.
    server
        .call(Method::PATCH, "/invoices/2", Some(json!({"amount": 25})))
        .await;
    let (code, _) = world.sync().await;
    assert_eq!(code, StatusCode::OK);
    let inv2 = world.connec_by_outside_id("invoices", "2").await.unwrap();
    assert_eq!(inv2["total_amount"], "25");
    // Unchanged records are not written again.
    let again = world.connec_by_outside_id("invoices", "1").await.unwrap();
    assert_eq!(again["version"], inv1["version"]);

    // Created in Connec! by another app: POSTed to the API, mapped to its new id.
    let (code, created) = world
        .crm(
            Method::POST,
            "invoices",
            Some(
                json!({"invoices": {"id": "crm-9", "transaction_number": "INV-9",
            "total_amount": "99.90", "status": "AUTHORISED", "transaction_date": "2026-11-20"}}),
            ),
        )
        .await;
    assert_eq!(code, StatusCode::CREATED, "{created}");
    let global = created["invoices"]["id"].as_str().unwrap().to_owned();
    let outside_id = eventually("INV-9 to reach the API", || async {
        world.outside_id_of("invoices", &global).await
    })
    .await;
    let (_, inv9) = server
        .call(Method::GET, &format!("/invoices/{outside_id}"), None)
        .await;
    assert_eq!(inv9["number"], "INV-9");
    assert_eq!(inv9["amount"], 99.9);
    assert_eq!(inv9["status"], "authorised");

    // Edited, then deleted, in Connec!.
    world
        .crm(
            Method::PUT,
            &format!("invoices/{global}"),
            Some(json!({"invoices": {"total_amount": "120"}})),
        )
        .await;
    eventually("the edit to reach the API", || async {
        let (_, inv) = server
            .call(Method::GET, &format!("/invoices/{outside_id}"), None)
            .await;
        (inv["amount"] == 120.0).then_some(())
    })
    .await;
    world
        .crm(Method::DELETE, &format!("invoices/{global}"), None)
        .await;
    eventually("the delete to reach the API", || async {
        let (status, _) = server
            .call(Method::GET, &format!("/invoices/{outside_id}"), None)
            .await;
        (status == StatusCode::NOT_FOUND).then_some(())
    })
    .await;

    // Deleted outside: its absence from the listing deletes it in Connec!.
    let (status, _) = server.call(Method::DELETE, "/items/1", None).await;
    assert!(status.is_success());
    let (code, _) = world.sync().await;
    assert_eq!(code, StatusCode::OK);
    assert!(world.connec_by_outside_id("items", "1").await.is_none());
    // And the delete made from Connec! is not mistaken for one made outside.
    assert!(world.connec_by_outside_id("invoices", "1").await.is_some());
}

/// An org that narrows what it shares with the connector app (PATCH install
/// `entities`) narrows the sync: the entity left out is neither pulled nor
/// pushed, and the others go on as before; shared again, it syncs.
#[tokio::test]
async fn an_entity_the_org_stops_sharing_is_left_out_and_the_rest_syncs() {
    let mut without_items = seed();
    without_items["items"] = json!([]);
    let server = JsonServer::start(without_items).await;
    let world = configured(&server).await;
    let (code, body) = world.sync().await;
    assert_eq!(code, StatusCode::OK, "{body}");
    let install = format!("/hub/v1/orgs/{}/installs/{}", world.org, world.connector.id);
    let share = |entities: Value| {
        let (hub, token, install) = (&world.hub, &world.token, &install);
        async move {
            hub.expect(
                StatusCode::OK,
                Method::PATCH,
                install,
                Some(&mno_e2e::hub_client::bearer(token)),
                Some(json!({ "entities": entities })),
            )
            .await
            .unwrap();
        }
    };
    // Narrowed to invoices; then an item is made outside.
    share(json!(["invoices"])).await;
    let (status, _) = server
        .call(
            Method::POST,
            "/items",
            Some(json!({"id": 1, "code": "W-1", "name": "Widget", "price": 12.5})),
        )
        .await;
    assert!(status.is_success(), "{status}");

    // The sync succeeds: invoices come in, the item is left outside.
    let (code, body) = world.sync().await;
    assert_eq!(code, StatusCode::OK, "{body}");
    assert!(world.connec_by_outside_id("invoices", "1").await.is_some());
    let (code, items) = world.crm(Method::GET, "items", None).await;
    assert_eq!(code, StatusCode::OK, "{items}");
    assert_eq!(items["items"], json!([]), "nothing of items was written");
    // Left out, not tried and refused record by record.
    let status = world.status().await;
    let items_row = status["entities"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["entity"] == "items")
        .unwrap()
        .clone();
    assert_eq!(
        (items_row["pulled"].as_i64(), items_row["rejected"].as_i64()),
        (Some(0), Some(0)),
        "{status}"
    );
    assert!(
        status["recent"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["kind"] != "rejected"),
        "{status}"
    );

    // Pushing goes on for the entity still shared.
    let (code, created) = world
        .crm(
            Method::POST,
            "invoices",
            Some(
                json!({"invoices": {"transaction_number": "INV-70", "total_amount": "70",
                                     "status": "AUTHORISED", "transaction_date": "2026-11-21"}}),
            ),
        )
        .await;
    assert_eq!(code, StatusCode::CREATED, "{created}");
    let global = created["invoices"]["id"].as_str().unwrap().to_owned();
    eventually("INV-70 to reach the API", || async {
        world.outside_id_of("invoices", &global).await
    })
    .await;

    // Shared again: the item comes in with the next sync.
    share(Value::Null).await;
    let (code, body) = world.sync().await;
    assert_eq!(code, StatusCode::OK, "{body}");
    let item = world
        .connec_by_outside_id("items", "1")
        .await
        .expect("the item synced once shared again");
    assert_eq!(item["name"], "Widget");
}

#[tokio::test]
async fn faults_back_off_record_the_error_and_lose_nothing() {
    let mut server = JsonServer::start(seed()).await;
    let world = configured(&server).await;
    let (code, body) = world.sync().await;
    assert_eq!(code, StatusCode::OK, "{body}");

    // While the API is down, an outside change waits; nothing in Connec! changes.
    server
        .call(Method::PATCH, "/invoices/1", Some(json!({"amount": 150})))
        .await;
    // json-server writes its file after answering: stop it once the change is on disk.
    eventually("json-server to save the change", || async {
        let saved = std::fs::read_to_string(server.dir.path().join("db.json")).ok()?;
        let db: Value = serde_json::from_str(&saved).ok()?;
        (db["invoices"][0]["amount"] == 150).then_some(())
    })
    .await;
    server.stop();
    let status = failing_sync(&world, "unavailable").await;
    assert_eq!(status["failures"], 1);
    assert!(
        status["next_attempt_at"].is_string(),
        "a failure schedules a later attempt: {status}"
    );

    // Up again but answering 500, then garbage: each failure is recorded.
    server.fault(json!({"status": 500}));
    server.run().await;
    failing_sync(&world, "HTTP 500").await;
    server.fault(json!({"garbage": true}));
    let status = failing_sync(&world, "unreadable").await;
    assert_eq!(status["failures"], 3);

    // 429 with Retry-After: the runtime waits that long before calling again.
    server.fault(json!({"status": 429, "retry_after": 2}));
    failing_sync(&world, "429").await;
    server.fault(json!({}));
    let (code, body) = world.sync().await;
    assert_eq!(
        code,
        StatusCode::TOO_MANY_REQUESTS,
        "the Retry-After is honoured: {body}"
    );
    assert_eq!(body["errors"][0]["code"], "rate_limited");

    // Once the wait is over, the sync resumes and the change made meanwhile arrives.
    eventually("a sync after the Retry-After", || async {
        (world.sync().await.0 == StatusCode::OK).then_some(())
    })
    .await;
    let inv1 = world.connec_by_outside_id("invoices", "1").await.unwrap();
    assert_eq!(inv1["total_amount"], "150");
    let status = world.status().await;
    assert_eq!(status["failures"], 0, "{status}");
    assert!(status["last_success_at"].is_string());

    // A record the API refuses is reported with its error; the others go on.
    server.fault(json!({"reject": {"field": "number", "equals": "BAD-1"}}));
    for (id, number) in [("crm-bad", "BAD-1"), ("crm-good", "GOOD-2")] {
        let (code, body) = world
            .crm(
                Method::POST,
                "invoices",
                Some(json!({"invoices": {"id": id, "transaction_number": number}})),
            )
            .await;
        assert_eq!(code, StatusCode::CREATED, "{body}");
    }
    eventually("GOOD-2 to reach the API", || async {
        (!server.find("invoices", "number", "GOOD-2").await.is_empty()).then_some(())
    })
    .await;
    assert!(server.find("invoices", "number", "BAD-1").await.is_empty());
    let status = world.status().await;
    let rejected: Vec<&Value> = status["recent"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "rejected")
        .collect();
    assert_eq!(rejected.len(), 1, "{status}");
    assert!(
        rejected[0]["detail"]
            .as_str()
            .unwrap()
            .contains("BAD-1 is refused by this API"),
        "{status}"
    );

    // An outside record Connec! refuses (a status it does not know) is reported the same way.
    server.fault(json!({}));
    server
        .call(
            Method::POST,
            "/invoices",
            Some(json!({"id": 40, "number": "ODD-40", "status": "haunted"})),
        )
        .await;
    server
        .call(
            Method::POST,
            "/invoices",
            Some(json!({"id": 41, "number": "OK-41", "status": "draft"})),
        )
        .await;
    let (code, body) = world.sync().await;
    assert_eq!(code, StatusCode::OK, "{body}");
    assert!(world.connec_by_outside_id("invoices", "41").await.is_some());
    assert!(world.connec_by_outside_id("invoices", "40").await.is_none());
    let status = world.status().await;
    let refused = status["recent"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["record"] == "40")
        .unwrap_or_else(|| panic!("invoice 40 is reported: {status}"));
    assert_eq!(refused["kind"], "rejected");
    assert!(
        refused["detail"].as_str().unwrap().contains("HAUNTED"),
        "{refused}"
    );
}

/// A sync that fails: 502, and the status names the failure.
async fn failing_sync(world: &World, names: &str) -> Value {
    let (code, body) = world.sync().await;
    assert_eq!(code, StatusCode::BAD_GATEWAY, "{body}");
    let status = world.status().await;
    let error = status["last_error"].as_str().unwrap_or_default();
    assert!(error.contains(names), "{status}");
    status
}

#[tokio::test]
async fn a_mapping_with_errors_is_refused_naming_line_and_field() {
    let server = JsonServer::start(seed()).await;
    let world = World::start(&["invoices", "items"]).await;
    // A page size of 0 would page forever (or read nothing): refused at its line.
    let zero = MAPPING.replace("size = 2", "size = 0");
    let (status, body) = world
        .configure(json!({
            "connector": "rest",
            "settings": {"url": server.url(""), "mapping": zero},
            "credentials": {"token": TOKEN},
            "app_credentials": world.app_credentials()
        }))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let detail = body["errors"][0]["detail"].as_str().unwrap();
    assert!(
        detail.starts_with("mapping line 9 ") && detail.contains("size must be at least 1"),
        "{detail}"
    );
    let broken = MAPPING.replace("convert = \"date\"", "convert = \"dat\"");
    let (status, body) = world
        .configure(json!({
            "connector": "rest",
            "settings": {"url": server.url(""), "mapping": broken},
            "credentials": {"token": TOKEN},
            "app_credentials": world.app_credentials()
        }))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let error = &body["errors"][0];
    assert_eq!(error["source"]["pointer"], "/settings/mapping");
    let detail = error["detail"].as_str().unwrap();
    assert!(
        detail.starts_with("mapping line 14:") && detail.contains("unknown variant `dat`"),
        "{detail}"
    );
    // An unknown conversion, and a number for a path: the line, the field, what is allowed.
    let lower = MAPPING.replace("convert = \"upper\"", "convert = \"lower\"");
    let number = MAPPING.replace("transaction_number = \"number\"", "transaction_number = 42");
    // A misspelt entity, or Connec! field (which would store the typo and clear the field).
    let entity = MAPPING.replace("entity = \"items\"", "entity = \"item\"");
    let field = MAPPING.replace("sale_price =", "sale_prise =");
    for (mapping, expected) in [
        (lower, "mapping line 15: field status: unknown variant `lower`, expected one of `none`, `decimal`, `date`, `upper`, `reference`"),
        (number, "mapping line 12: field transaction_number: invalid type: integer `42`, expected an outside path as text"),
        (entity, "mapping line 18 (collections[1], entity \"item\"): there is no Connec! entity \"item\"; the entities are"),
        (field, "mapping line 24 (collections[1], entity \"items\"): field \"sale_prise\" is not a field of items; its fields are"),
    ] {
        let (status, body) = world
            .configure(json!({
                "connector": "rest",
                "settings": {"url": server.url(""), "mapping": mapping},
                "credentials": {"token": TOKEN},
                "app_credentials": world.app_credentials()
            }))
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        let error = &body["errors"][0];
        assert_eq!(error["source"]["pointer"], "/settings/mapping");
        let detail = error["detail"].as_str().unwrap();
        assert!(detail.starts_with(expected), "{detail}");
    }
    // The auth header's placeholder needs its credential.
    let (status, body) = world
        .configure(json!({
            "connector": "rest",
            "settings": {"url": server.url(""), "mapping": MAPPING},
            "credentials": {},
            "app_credentials": world.app_credentials()
        }))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["errors"][0]["source"]["pointer"], "/credentials");
}

/// Invoices paged by page number, items by offset, both two a page.
const PAGED: &str = r#"
[auth]
header = "Authorization"
value = "Bearer {token}"

[[collections]]
entity = "invoices"
path = "/invoices"
pagination = { style = "page", page_param = "_page", size_param = "_limit", size = 2 }

[collections.fields]
transaction_number = "number"

[[collections]]
entity = "items"
path = "/items"
pagination = { style = "offset", offset_param = "_start", limit_param = "_limit", size = 2 }

[collections.fields]
code = "code"
name = "name"
"#;

async fn configure_mapping(server: &JsonServer, world: &World, mapping: &str, entities: Value) {
    let (status, body) = world
        .configure(json!({
            "connector": "rest",
            "settings": {"url": server.url(""), "mapping": mapping},
            "credentials": {"token": TOKEN},
            "app_credentials": world.app_credentials(),
            "entities": entities,
            "interval_secs": 3600
        }))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

/// The outside ids of `entity` the connector app has in Connec!.
async fn in_connec(world: &World, entity: &str, ids: &[&str]) -> Vec<String> {
    let mut found = Vec::new();
    for id in ids {
        if world.connec_by_outside_id(entity, id).await.is_some() {
            found.push(id.to_string());
        }
    }
    found
}

fn entity_row(status: &Value, entity: &str) -> Value {
    status["entities"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["entity"] == entity)
        .cloned()
        .unwrap_or_else(|| panic!("no {entity} in {status}"))
}

fn recent_of(status: &Value, kind: &str) -> Vec<Value> {
    status["recent"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == kind)
        .cloned()
        .collect()
}

/// A listing that comes back short (an API capping its pages below the size
/// asked, an empty answer, records without their id) deletes nothing in
/// Connec!; a real deletion outside still does, and is counted and logged.
#[tokio::test]
async fn a_short_or_broken_listing_deletes_nothing() {
    let server = JsonServer::start(json!({
        "invoices": [{"id": 1, "number": "INV-1"}, {"id": 2, "number": "INV-2"}, {"id": 3, "number": "INV-3"}],
        "items": [{"id": 1, "code": "W-1", "name": "Widget"}, {"id": 2, "code": "W-2", "name": "Gadget"},
                  {"id": 3, "code": "W-3", "name": "Sprocket"}]
    }))
    .await;
    let world = World::start(&["invoices", "items"]).await;
    configure_mapping(&server, &world, PAGED, Value::Null).await;
    let all = ["1", "2", "3"];

    // The API answers one record a page where two were asked: every page is read.
    server.fault(json!({"max_page_size": 1}));
    let (code, body) = world.sync().await;
    assert_eq!(code, StatusCode::OK, "{body}");
    assert_eq!(in_connec(&world, "invoices", &all).await, all);
    assert_eq!(in_connec(&world, "items", &all).await, all);
    // Again with records known: the short pages delete nothing.
    let (code, body) = world.sync().await;
    assert_eq!(code, StatusCode::OK, "{body}");
    assert_eq!(in_connec(&world, "invoices", &all).await, all);
    assert_eq!(in_connec(&world, "items", &all).await, all);

    // A glitch: the listing answers empty. Nothing is deleted; the status says why.
    server.fault(json!({"empty_list": true}));
    let (code, body) = world.sync().await;
    assert_eq!(code, StatusCode::OK, "{body}");
    assert_eq!(in_connec(&world, "invoices", &all).await, all);
    assert_eq!(in_connec(&world, "items", &all).await, all);
    let status = world.status().await;
    let error = status["last_error"].as_str().unwrap_or_default();
    assert!(
        error.contains("lacks 3 of the 3") && error.contains("none was applied"),
        "{status}"
    );
    assert_eq!(recent_of(&status, "withheld").len(), 2, "{status}");

    // Records listed without their id: skipped, reported, and nothing inferred deleted.
    server.fault(json!({"strip_id": true}));
    let (code, body) = world.sync().await;
    assert_eq!(code, StatusCode::OK, "{body}");
    assert_eq!(in_connec(&world, "items", &all).await, all);
    let status = world.status().await;
    let error = status["last_error"].as_str().unwrap_or_default();
    assert!(error.contains("no usable \"id\""), "{status}");
    assert!(
        recent_of(&status, "skipped").iter().any(
            |e| e["entity"] == "items" && e["detail"].as_str().unwrap().contains("3 record(s)")
        ),
        "{status}"
    );
    assert_eq!(entity_row(&status, "items")["deleted"], 0, "{status}");

    // One page answered empty once, mid-listing (from an integrator's trial:
    // the records after it were deleted, then made again under new ids). The
    // listing taken again to confirm has them: nothing is deleted.
    server.fault(json!({"empty_page_once": 2}));
    let (code, body) = world.sync().await;
    assert_eq!(code, StatusCode::OK, "{body}");
    assert_eq!(in_connec(&world, "items", &all).await, all);
    assert_eq!(entity_row(&world.status().await, "items")["deleted"], 0);

    // Numbered pages capped below the size asked, then more pages: the
    // listing may have skipped records, so no deletion is inferred from it.
    server.fault(json!({"max_page_size": 1}));
    let (code, body) = world.sync().await;
    assert_eq!(code, StatusCode::OK, "{body}");
    let status = world.status().await;
    assert!(
        recent_of(&status, "skipped")
            .iter()
            .any(|e| e["entity"] == "invoices"
                && e["detail"].as_str().unwrap().contains("may skip records")),
        "{status}"
    );

    // A real deletion outside: applied, counted and logged.
    server.fault(json!({}));
    let (code, _) = server.call(Method::DELETE, "/items/3", None).await;
    assert!(code.is_success());
    let (code, body) = world.sync().await;
    assert_eq!(code, StatusCode::OK, "{body}");
    assert_eq!(in_connec(&world, "items", &all).await, ["1", "2"]);
    assert_eq!(in_connec(&world, "invoices", &all).await, all);
    let status = world.status().await;
    assert_eq!(entity_row(&status, "items")["deleted"], 1, "{status}");
    assert!(
        recent_of(&status, "deleted")
            .iter()
            .any(|e| e["entity"] == "items" && e["record"] == "3"),
        "{status}"
    );
}

/// People and the invoices naming them (by the outside id of the person).
const WITH_REFERENCES: &str = r#"
[auth]
header = "Authorization"
value = "Bearer {token}"

[[collections]]
entity = "invoices"
path = "/invoices"
updated_at_field = "updatedAt"

[collections.fields]
transaction_number = "number"
person_id = { path = "customerId", convert = "reference" }

[[collections]]
entity = "people"
path = "/people"

[collections.fields]
first_name = "first"
last_name = "last"
"#;

/// The first sync pulls people before the invoices naming them (not
/// alphabetically), and an invoice naming a person not there yet is kept
/// for the next sync instead of being passed by the cursor for good.
#[tokio::test]
async fn invoices_are_pulled_after_the_people_they_name() {
    let server = JsonServer::start(json!({
        "people": [{"id": "p1", "first": "Ann", "last": "Lee"}],
        "invoices": [
            {"id": "i1", "number": "INV-1", "customerId": "p1", "updatedAt": "2026-11-01T10:00:00Z"},
            {"id": "i2", "number": "INV-2", "customerId": "p9", "updatedAt": "2026-11-01T09:00:00Z"},
            {"id": "i3", "number": "INV-3", "updatedAt": "2026-11-02T10:00:00Z"}
        ]
    }))
    .await;
    let world = World::start(&["invoices", "people"]).await;
    configure_mapping(&server, &world, WITH_REFERENCES, Value::Null).await;

    let (code, body) = world.sync().await;
    assert_eq!(code, StatusCode::OK, "{body}");
    let ann = world
        .connec_by_outside_id("people", "p1")
        .await
        .expect("Ann synced");
    let inv1 = world
        .connec_by_outside_id("invoices", "i1")
        .await
        .expect("INV-1 synced on the first sync");
    assert_eq!(inv1["person_id"], ann["id"], "{inv1}");
    assert!(world.connec_by_outside_id("invoices", "i3").await.is_some());
    // INV-2 names a person the API does not have (yet): refused, reported, kept for later.
    assert!(world.connec_by_outside_id("invoices", "i2").await.is_none());
    let status = world.status().await;
    let refused = recent_of(&status, "rejected");
    assert!(
        refused.iter().any(|e| e["record"] == "i2"
            && e["detail"]
                .as_str()
                .unwrap()
                .contains("does not name a people record")),
        "{status}"
    );
    assert!(
        status["last_error"]
            .as_str()
            .unwrap_or_default()
            .contains("tried again at the next sync"),
        "{status}"
    );

    // The person appears outside: the next sync brings INV-2 in, although it
    // is older than the invoices synced before.
    server
        .call(
            Method::POST,
            "/people",
            Some(json!({"id": "p9", "first": "Bo", "last": "Ng"})),
        )
        .await;
    let (code, body) = world.sync().await;
    assert_eq!(code, StatusCode::OK, "{body}");
    let bo = world
        .connec_by_outside_id("people", "p9")
        .await
        .expect("Bo synced");
    let inv2 = world
        .connec_by_outside_id("invoices", "i2")
        .await
        .expect("INV-2 synced once its person is");
    assert_eq!(inv2["person_id"], bo["id"], "{inv2}");
}

/// An invoice created in Connec! for a person whose push is not done is held
/// back, not sent without its customer, and goes out with it once the person
/// is out; pulls do not clear the reference in Connec!.
#[tokio::test]
async fn an_invoice_waits_for_its_person_to_be_pushed() {
    let server = JsonServer::start(json!({"people": [], "invoices": []})).await;
    let world = World::start(&["invoices", "people"]).await;
    configure_mapping(&server, &world, WITH_REFERENCES, Value::Null).await;
    let (code, body) = world.sync().await;
    assert_eq!(code, StatusCode::OK, "{body}");

    // A person then at once an invoice for her: the invoice goes out naming her.
    let (code, ann) = world
        .crm(
            Method::POST,
            "people",
            Some(json!({"people": {"first_name": "Ann", "last_name": "Lee"}})),
        )
        .await;
    assert_eq!(code, StatusCode::CREATED, "{ann}");
    let ann_global = ann["people"]["id"].as_str().unwrap().to_owned();
    let (code, inv) = world
        .crm(
            Method::POST,
            "invoices",
            Some(json!({"invoices": {"transaction_number": "INV-1", "person_id": ann_global}})),
        )
        .await;
    assert_eq!(code, StatusCode::CREATED, "{inv}");
    let inv_global = inv["invoices"]["id"].as_str().unwrap().to_owned();
    let inv_outside = eventually("INV-1 to reach the API", || async {
        world.outside_id_of("invoices", &inv_global).await
    })
    .await;
    let ann_outside = world.outside_id_of("people", &ann_global).await.unwrap();
    let (_, out) = server
        .call(Method::GET, &format!("/invoices/{inv_outside}"), None)
        .await;
    assert_eq!(out["customerId"], json!(ann_outside), "{out}");

    // A person the API refuses at first: her invoice is held, not sent without her.
    server.fault(json!({"reject": {"field": "last", "equals": "Refused"}}));
    let (code, bo) = world
        .crm(
            Method::POST,
            "people",
            Some(json!({"people": {"first_name": "Bo", "last_name": "Refused"}})),
        )
        .await;
    assert_eq!(code, StatusCode::CREATED, "{bo}");
    let bo_global = bo["people"]["id"].as_str().unwrap().to_owned();
    let (code, inv) = world
        .crm(
            Method::POST,
            "invoices",
            Some(json!({"invoices": {"transaction_number": "INV-2", "person_id": bo_global}})),
        )
        .await;
    assert_eq!(code, StatusCode::CREATED, "{inv}");
    let inv2_global = inv["invoices"]["id"].as_str().unwrap().to_owned();
    let held = eventually("INV-2 to be held", || async {
        let status = world.status().await;
        recent_of(&status, "held")
            .into_iter()
            .find(|e| e["record"] == inv2_global.as_str())
    })
    .await;
    assert!(
        held["detail"]
            .as_str()
            .unwrap()
            .contains("person_id (people)"),
        "{held}"
    );
    assert!(server.find("invoices", "number", "INV-2").await.is_empty());

    // Accepted once corrected: the person goes out, then her invoice, naming her.
    server.fault(json!({}));
    let (code, body) = world
        .crm(
            Method::PUT,
            &format!("people/{bo_global}"),
            Some(json!({"people": {"last_name": "Ng"}})),
        )
        .await;
    assert_eq!(code, StatusCode::OK, "{body}");
    let inv2_outside = eventually("INV-2 to reach the API", || async {
        world.outside_id_of("invoices", &inv2_global).await
    })
    .await;
    let bo_outside = world.outside_id_of("people", &bo_global).await.unwrap();
    let (_, out) = server
        .call(Method::GET, &format!("/invoices/{inv2_outside}"), None)
        .await;
    assert_eq!(out["customerId"], json!(bo_outside), "{out}");

    // Pulled back, the invoices keep their person in Connec!.
    let (code, body) = world.sync().await;
    assert_eq!(code, StatusCode::OK, "{body}");
    for (global, person) in [(&inv_global, &ann_global), (&inv2_global, &bo_global)] {
        let (_, now) = world
            .crm(Method::GET, &format!("invoices/{global}"), None)
            .await;
        assert_eq!(now["invoices"]["person_id"], json!(person), "{now}");
    }
}

/// People pulled only: an invoice naming a person created in Connec! goes out
/// without her (the API cannot name her), and a pull of that invoice does not
/// clear her in Connec!.
#[tokio::test]
async fn a_pull_keeps_a_reference_the_outside_api_never_had() {
    let server = JsonServer::start(json!({"people": [], "invoices": []})).await;
    let world = World::start(&["invoices", "people"]).await;
    configure_mapping(
        &server,
        &world,
        WITH_REFERENCES,
        json!({"people": {"direction": "to_connec"}, "invoices": {"direction": "both"}}),
    )
    .await;
    let (_, ann) = world
        .crm(
            Method::POST,
            "people",
            Some(json!({"people": {"first_name": "Ann", "last_name": "Lee"}})),
        )
        .await;
    let ann_global = ann["people"]["id"].as_str().unwrap().to_owned();
    let (_, inv) = world
        .crm(
            Method::POST,
            "invoices",
            Some(json!({"invoices": {"transaction_number": "INV-1", "person_id": ann_global}})),
        )
        .await;
    let inv_global = inv["invoices"]["id"].as_str().unwrap().to_owned();
    let outside = eventually("INV-1 to reach the API", || async {
        world.outside_id_of("invoices", &inv_global).await
    })
    .await;
    // Edited outside (a timestamp moves on), then pulled.
    server
        .call(
            Method::PATCH,
            &format!("/invoices/{outside}"),
            Some(json!({"number": "INV-1b", "updatedAt": "2030-01-01T00:00:00Z"})),
        )
        .await;
    let (code, body) = world.sync().await;
    assert_eq!(code, StatusCode::OK, "{body}");
    let (_, now) = world
        .crm(Method::GET, &format!("invoices/{inv_global}"), None)
        .await;
    assert_eq!(now["invoices"]["transaction_number"], "INV-1b", "{now}");
    assert_eq!(now["invoices"]["person_id"], json!(ann_global), "{now}");
}

/// The connector app's key and secret read and write every org that
/// installed it, so only its owner holds them: the owner registers them once
/// for the app, an org admin configures an install without them, and a
/// rotation is followed by registering the new ones, never by reconfiguring
/// each install.
#[tokio::test]
async fn installs_use_the_credentials_the_apps_owner_registered() {
    let server = JsonServer::start(seed()).await;
    let world = World::start(&["invoices", "items"]).await;
    let hub = &world.hub;
    let app = world.connector.id.clone();
    let owner = bearer(&world.token);
    // An admin of the org who does not own the app.
    let (_, admin_token) = hub.signup_and_login("admin@example.com").await.unwrap();
    hub.add_member(
        &world.token,
        &world.org,
        "admin@example.com",
        "admin",
        &admin_token,
    )
    .await
    .unwrap();
    let admin = bearer(&admin_token);
    let registered = format!("/hub/v1/apps/{app}/connector_credentials");
    let body = json!({
        "connector": "rest",
        "settings": {"url": server.url(""), "mapping": MAPPING},
        "credentials": {"token": TOKEN},
        "interval_secs": 3600
    });
    let configure = |auth: String, body: Value| {
        let path = world.install_path("connector");
        async move {
            hub.call(Method::PUT, &path, Some(&auth), Some(body))
                .await
                .unwrap()
        }
    };

    // Nothing registered: the admin is told who must register what; nothing is stored.
    let (status, answer) = configure(admin.clone(), body.clone()).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
    let error = &answer["errors"][0];
    assert_eq!(error["source"]["pointer"], "/app_credentials", "{answer}");
    let detail = error["detail"].as_str().unwrap();
    assert!(
        detail.contains("owner") && detail.contains(&registered),
        "{detail}"
    );
    assert_eq!(world.connector_code().await, StatusCode::NOT_FOUND);

    // Only the app's owner registers, sees or removes them.
    let credentials = world.app_credentials();
    for (method, body) in [
        (Method::PUT, Some(credentials.clone())),
        (Method::GET, None),
        (Method::DELETE, None),
    ] {
        let (status, answer) = hub
            .call(method.clone(), &registered, Some(&admin), body)
            .await
            .unwrap();
        assert_eq!(status, StatusCode::FORBIDDEN, "{method}: {answer}");
    }
    // Nor does the app register itself.
    let app_auth = basic_auth(&world.connector.key, &world.connector.secret);
    let (status, _) = hub
        .call(
            Method::PUT,
            &registered,
            Some(&app_auth),
            Some(credentials.clone()),
        )
        .await
        .unwrap();
    assert_eq!(status, StatusCode::FORBIDDEN);
    // Another app's key, or a wrong secret, is refused.
    let wrong = json!({"key": world.connector.key, "secret": "ms_wrong"});
    let (status, answer) = hub
        .call(Method::PUT, &registered, Some(&owner), Some(wrong))
        .await
        .unwrap();
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
    let crm = json!({"key": world.crm.key, "secret": world.crm.secret});
    let (status, answer) = hub
        .call(Method::PUT, &registered, Some(&owner), Some(crm))
        .await
        .unwrap();
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
    assert_eq!(answer["errors"][0]["source"]["pointer"], "/key");
    let (status, answer) = hub
        .call(Method::PUT, &registered, Some(&owner), Some(credentials))
        .await
        .unwrap();
    assert_eq!(status, StatusCode::NO_CONTENT, "{answer}");
    let (status, shown) = hub
        .call(Method::GET, &registered, Some(&owner), None)
        .await
        .unwrap();
    assert_eq!(status, StatusCode::OK, "{shown}");
    assert_eq!(shown["connector_credentials"]["key"], world.connector.key);
    assert!(!shown.to_string().contains(&world.connector.secret));

    // An admin who is not the app's owner may not give its key and secret
    // (they were taken): 403 at the field, nothing stored.
    let mut with_secret = body.clone();
    with_secret["app_credentials"] = world.app_credentials();
    let (status, answer) = configure(admin.clone(), with_secret).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{answer}");
    let error = &answer["errors"][0];
    assert_eq!(error["source"]["pointer"], "/app_credentials", "{answer}");
    assert!(
        error["detail"].as_str().unwrap().contains(&registered),
        "{answer}"
    );
    assert_eq!(world.connector_code().await, StatusCode::NOT_FOUND);

    // (1) The admin configures without the app's secret; the install syncs with the owner's.
    let (status, answer) = configure(admin.clone(), body.clone()).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["connector"]["app_credentials"], "app");
    let (code, answer) = world.sync().await;
    assert_eq!(code, StatusCode::OK, "{answer}");
    assert!(world.connec_by_outside_id("invoices", "3").await.is_some());

    // The owner rotates the app's secret, the previous one revoked at once.
    let rotated = hub
        .expect(
            StatusCode::CREATED,
            Method::POST,
            &format!("/hub/v1/apps/{app}/credentials/rotate?previous_valid_secs=0"),
            Some(&owner),
            None,
        )
        .await
        .unwrap();
    let new = rotated["credentials"].clone();
    let new_auth = basic_auth(
        new["key"].as_str().unwrap(),
        new["secret"].as_str().unwrap(),
    );
    server
        .call(
            Method::POST,
            "/invoices",
            Some(json!({"id": 4, "number": "INV-4", "amount": 4, "date": "2026-11-05", "status": "draft"})),
        )
        .await;
    // The sync fails, saying the owner must register the new secret.
    let status = failing_sync(&world, "401").await;
    let error = status["last_error"].as_str().unwrap();
    assert!(
        error.contains(&registered) && error.contains("owner"),
        "{error}"
    );

    // (3) The owner registers the new ones: the install syncs on, not configured again.
    let (status, answer) = hub
        .call(Method::PUT, &registered, Some(&owner), Some(new))
        .await
        .unwrap();
    assert_eq!(status, StatusCode::NO_CONTENT, "{answer}");
    let (code, answer) = world.sync().await;
    assert_eq!(code, StatusCode::OK, "{answer}");
    let read = |path: String| {
        let auth = new_auth.clone();
        async move {
            hub.call(Method::GET, &path, Some(&auth), None)
                .await
                .unwrap()
        }
    };
    let (status, inv4) = read(format!("/connec/api/v2/{}/invoices/4", world.org)).await;
    assert_eq!(status, StatusCode::OK, "{inv4}");
    assert_eq!(inv4["invoices"]["transaction_number"], "INV-4");
    // And pushes too: an invoice made in Connec! reaches the API.
    let (code, created) = world
        .crm(
            Method::POST,
            "invoices",
            Some(
                json!({"invoices": {"id": "crm-5", "transaction_number": "INV-5",
                "total_amount": "5", "status": "DRAFT", "transaction_date": "2026-11-06"}}),
            ),
        )
        .await;
    assert_eq!(code, StatusCode::CREATED, "{created}");
    eventually("INV-5 to reach the API", || async {
        (!server.find("invoices", "number", "INV-5").await.is_empty()).then_some(())
    })
    .await;
    let status = world.status().await;
    assert_eq!(status["app_credentials"], "app");

    // Removed by the owner: the install stops, saying why.
    let (status, _) = hub
        .call(Method::DELETE, &registered, Some(&owner), None)
        .await
        .unwrap();
    assert_eq!(status, StatusCode::NO_CONTENT);
    failing_sync(&world, "no API credentials registered").await;
}
