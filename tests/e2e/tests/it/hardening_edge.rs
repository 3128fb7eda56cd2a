//! What an attacker or a careless client sends to the edge and the record
//! API: deep filters, huge numbers, ids longer than a subject can hold,
//! idle and slow connections, too many change streams, bodies of the wrong
//! kind. Each gets a JSON error (or a closed connection) and nothing else:
//! the process stays up, the bus connection stays up, other callers are served.

use std::sync::atomic::Ordering;
use std::time::Duration;

use base64::Engine;
use futures::StreamExt;
use mno_e2e::hub_client::{basic_auth, bearer, App, HubClient};
use mno_e2e::TestPlatform;
use reqwest::StatusCode;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// How long a test waits for something that must happen before it calls
/// the test failed (a guard against hanging, not a measure of speed).
const GUARD: Duration = Duration::from_secs(60);

const SHARED: &[(&str, bool, bool)] = &[("invoices", true, true), ("people", true, true)];

struct World {
    platform: TestPlatform,
    hub: HubClient,
    token: String,
    org: String,
    app: App,
}

async fn world_with(adjust: impl FnOnce(&mut mno_gateway::PlatformConfig)) -> World {
    let platform = TestPlatform::spawn_with(adjust).await;
    let hub = HubClient::new(&platform.base_url);
    let (token, org, app) = hub
        .org_with_app("owner@example.com", None, SHARED)
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
    fn url(&self, path: &str) -> String {
        self.platform
            .url(&format!("/connec/api/v2/{}{path}", self.org))
    }

    async fn call(
        &self,
        app: &App,
        method: reqwest::Method,
        url: &str,
        body: Option<Value>,
        if_match: Option<u64>,
    ) -> (StatusCode, Value) {
        let mut request = self
            .platform
            .http
            .request(method, url)
            .header("Authorization", basic_auth(&app.key, &app.secret));
        if let Some(body) = body {
            request = request.json(&body);
        }
        if let Some(version) = if_match {
            request = request.header("If-Match", version.to_string());
        }
        let response = request.send().await.unwrap();
        json_answer(response).await
    }

    /// A call by the installed app to a path under its org, without If-Match.
    async fn app_call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        self.call(&self.app, method, &self.url(path), body, None)
            .await
    }

    async fn list(&self, query: &[(&str, &str)]) -> (StatusCode, Value) {
        let response = self
            .platform
            .http
            .get(self.url("/invoices"))
            .query(query)
            .header("Authorization", basic_auth(&self.app.key, &self.app.secret))
            .send()
            .await
            .unwrap();
        json_answer(response).await
    }

    fn bus_connects(&self) -> u64 {
        self.platform
            .running()
            .bus
            .client
            .statistics()
            .connects
            .load(Ordering::Relaxed)
    }
}

/// The status and JSON body of an answer; fails the test if the body is not JSON.
async fn json_answer(response: reqwest::Response) -> (StatusCode, Value) {
    let status = response.status();
    let text = response.text().await.unwrap();
    let body = serde_json::from_str(&text)
        .unwrap_or_else(|_| panic!("a {status} answer that is not JSON: {text:?}"));
    (status, body)
}

fn detail(body: &Value) -> String {
    body["errors"][0]["detail"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test]
async fn deep_filters_many_terms_and_huge_skips_answer_400_naming_the_limit() {
    let w = world_with(|_| {}).await;
    let deep = format!("{}title eq 'x'{}", "(".repeat(2500), ")".repeat(2500));
    let nots = format!("{}title eq 'x'", "not ".repeat(5000));
    // Deep enough for SQLite's "Expression tree is too large" (a 500) before.
    let medium = format!("{}title eq 'x'{}", "(".repeat(600), ")".repeat(600));
    for filter in [&deep, &nots, &medium] {
        let (status, body) = w.list(&[("$filter", filter)]).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(body["errors"][0]["code"], "invalid_query");
        assert!(detail(&body).contains("32"), "names the limit: {body}");
    }
    let many = vec!["title eq 'x'"; 101].join(" or ");
    let (status, body) = w.list(&[("$filter", &many)]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(detail(&body).contains("100 comparisons"), "{body}");
    let orders = vec!["title"; 17].join(",");
    let (status, body) = w.list(&[("$orderby", &orders)]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(detail(&body).contains("16 fields"), "{body}");

    // The same filter, smuggled in a forged cursor, is refused the same way.
    let forged = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(serde_json::to_vec(&json!({"f": deep, "t": 10, "s": 0})).unwrap());
    let (status, body) = w.list(&[("cursor", &forged)]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(detail(&body).contains("32"), "{body}");
    let forged_skip = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(serde_json::to_vec(&json!({"t": 10, "s": u64::MAX})).unwrap());
    let (status, body) = w.list(&[("cursor", &forged_skip)]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");

    for skip in ["9223372036854775808", "18446744073709551615"] {
        let (status, body) = w.list(&[("$skip", skip)]).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{skip}: {body}");
        assert_eq!(body["errors"][0]["source"]["parameter"], "$skip");
    }
    let (status, body) = w.list(&[("$skip", "99999999999999999999999")]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");

    // Still up, still answering lists.
    let (status, _) = w.list(&[("$filter", "title eq 'x'")]).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn ids_too_long_for_a_subject_are_refused_before_the_bus() {
    let w = world_with(|_| {}).await;
    let connects = w.bus_connects();
    let long = "a".repeat(5000);
    let (status, body) = w
        .app_call(reqwest::Method::GET, &format!("/invoices/{long}"), None)
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["errors"][0]["code"], "invalid_id");
    assert!(detail(&body).contains("255"), "{body}");

    let longer = "b".repeat(10_000);
    for method in [reqwest::Method::PUT, reqwest::Method::DELETE] {
        let (status, body) = w
            .app_call(
                method.clone(),
                &format!("/invoices/{longer}"),
                Some(json!({"invoices": {"title": "x"}})),
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{method}: {body}");
    }
    let (status, body) = w
        .app_call(
            reqwest::Method::GET,
            &format!("/invoices/{long}/history"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    // In a body: the app's own id, and a reference.
    let (status, body) = w
        .app_call(
            reqwest::Method::POST,
            "/invoices",
            Some(json!({"invoices": {"id": longer, "title": "x"}})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let (status, body) = w
        .app_call(
            reqwest::Method::POST,
            "/invoices",
            Some(json!({"invoices": {"title": "x", "person_id": longer}})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    // Delivery routes name an app in the path.
    let response = w
        .platform
        .http
        .get(
            w.platform
                .url(&format!("/connec/api/v2/deliveries/{long}/dlq")),
        )
        .header("Authorization", bearer(&w.token))
        .send()
        .await
        .unwrap();
    let (status, body) = json_answer(response).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");

    // The bus connection never dropped, and writes go on.
    let (status, body) = w
        .app_call(
            reqwest::Method::POST,
            "/invoices",
            Some(json!({"invoices": {"title": "after"}})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(
        w.bus_connects(),
        connects,
        "the platform reconnected to the bus"
    );
}

#[tokio::test]
async fn bad_path_and_query_values_answer_the_json_error_shape() {
    let w = world_with(|_| {}).await;
    let app = &w.app.id;
    let auth = bearer(&w.token);
    for path in [
        format!("/connec/api/v2/deliveries?app={app}&limit=many"),
        format!("/connec/api/v2/deliveries/{app}/dlq?after=-1"),
        format!("/connec/api/v2/deliveries/{app}/dlq?limit=1e3"),
        format!("/connec/api/v2/deliveries/{app}/dlq/first"),
        format!("/connec/api/v2/deliveries/{app}/dlq/99999999999999999999999"),
    ] {
        let response = w
            .platform
            .http
            .get(w.platform.url(&path))
            .header("Authorization", &auth)
            .send()
            .await
            .unwrap();
        let (status, body) = json_answer(response).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}: {body}");
        assert_eq!(body["errors"][0]["status"], "400", "{path}: {body}");
        assert_eq!(body["errors"][0]["code"], "invalid_parameter", "{path}");
        if path.contains("/dlq/") {
            assert_eq!(body["errors"][0]["source"]["parameter"], "seq", "{body}");
        }
    }
    let response = w
        .platform
        .http
        .post(
            w.platform
                .url(&format!("/connec/api/v2/deliveries/{app}/dlq/x/redrive")),
        )
        .header("Authorization", &auth)
        .send()
        .await
        .unwrap();
    assert_eq!(json_answer(response).await.0, StatusCode::BAD_REQUEST);

    // A body that is not an object changes nothing and says so.
    for path in [
        format!("/hub/v1/orgs/{}", w.org),
        format!("/hub/v1/apps/{app}"),
    ] {
        let before = w
            .hub
            .call(reqwest::Method::GET, &path, Some(&auth), None)
            .await
            .unwrap();
        let response = w
            .platform
            .http
            .patch(w.platform.url(&path))
            .header("Authorization", &auth)
            .json(&json!([]))
            .send()
            .await
            .unwrap();
        let (status, body) = json_answer(response).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{path}: {body}");
        assert!(detail(&body).contains("must be a JSON object"), "{body}");
        // A name given twice: refused, not the last one kept.
        let response = w
            .platform
            .http
            .patch(w.platform.url(&path))
            .header("Authorization", &auth)
            .header("Content-Type", "application/json")
            .body(r#"{"name": "First", "name": "Second"}"#)
            .send()
            .await
            .unwrap();
        let (status, body) = json_answer(response).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}: {body}");
        assert_eq!(body["errors"][0]["code"], "duplicate_name", "{body}");
        assert!(detail(&body).contains("\"name\" appears twice"), "{body}");
        let after = w
            .hub
            .call(reqwest::Method::GET, &path, Some(&auth), None)
            .await
            .unwrap();
        assert_eq!(before.1, after.1, "{path} changed");
    }
}

#[tokio::test]
async fn another_apps_mapping_does_not_make_an_if_match_stale() {
    let w = world_with(|_| {}).await;
    let other = w
        .hub
        .create_app(&w.token, "Other", None, SHARED)
        .await
        .unwrap();
    w.hub.install(&w.token, &w.org, &other.id).await.unwrap();

    let (status, created) = w
        .app_call(
            reqwest::Method::POST,
            "/invoices",
            Some(json!({"invoices": {"title": "first"}})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["invoices"]["id"].as_str().unwrap().to_owned();
    let version = created["invoices"]["version"].as_u64().unwrap();
    let record = w.url(&format!("/invoices/{id}"));

    // The other app maps its own id to the record.
    let (status, mapped) = w
        .call(
            &other,
            reqwest::Method::PUT,
            &format!("{record}/id_map"),
            Some(json!({"local_id": "OTHER-1"})),
            None,
        )
        .await;
    assert!(status.is_success(), "{status}: {mapped}");
    let (_, read) = w
        .call(&w.app, reqwest::Method::GET, &record, None, None)
        .await;
    assert_eq!(
        read["invoices"]["version"], version,
        "a mapping is no change"
    );

    // The first app's write with the version it read goes through.
    let (status, updated) = w
        .call(
            &w.app,
            reqwest::Method::PUT,
            &record,
            Some(json!({"invoices": {"title": "second"}})),
            Some(version),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{updated}");
    assert_eq!(updated["invoices"]["version"], version + 1);

    // A real change in between still makes it stale.
    let (status, stale) = w
        .call(
            &other,
            reqwest::Method::PUT,
            &record,
            Some(json!({"invoices": {"title": "third"}})),
            Some(version),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{stale}");
    assert_eq!(stale["errors"][0]["code"], "stale_version");
    let (_, read) = w
        .call(&w.app, reqwest::Method::GET, &record, None, None)
        .await;
    assert_eq!(read["invoices"]["title"], "second");
    // And a delete with the version in force, after another mapping, too.
    let (status, mapped) = w
        .call(
            &other,
            reqwest::Method::PUT,
            &format!("{record}/id_map"),
            Some(json!({"local_id": "OTHER-2"})),
            None,
        )
        .await;
    assert!(
        status.is_success() || status == StatusCode::CONFLICT,
        "{status}: {mapped}"
    );
    let (status, body) = w
        .call(
            &w.app,
            reqwest::Method::DELETE,
            &record,
            None,
            Some(version + 1),
        )
        .await;
    assert!(status.is_success(), "{status}: {body}");
}

#[tokio::test]
async fn idle_and_slow_connections_are_closed_and_healthz_still_answers() {
    let w = world_with(|config| {
        config.http_max_connections = Some(8);
        config.http_header_timeout_secs = 1;
        config.http_idle_timeout_secs = 1;
    })
    .await;
    let addr = w.platform.running().http_addr.expect("an edge");
    // Twice the cap in connections that send nothing, and one that sends its
    // headers a byte at a time, never finishing them.
    let mut idle = Vec::new();
    for _ in 0..16 {
        idle.push(TcpStream::connect(addr).await.unwrap());
    }
    let slow = tokio::spawn(async move {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
            .await
            .unwrap();
        let mut byte = [0u8; 1];
        loop {
            // Keep the connection busy (so only the header timeout can end it).
            if stream.write_all(b"X").await.is_err() {
                return;
            }
            tokio::select! {
                read = stream.read(&mut byte) => {
                    if matches!(read, Ok(0) | Err(_)) { return; }
                }
                _ = tokio::time::sleep(Duration::from_millis(100)) => {}
            }
        }
    });

    let health = tokio::time::timeout(
        GUARD,
        w.platform.http.get(w.platform.url("/healthz")).send(),
    )
    .await
    .expect("/healthz answers while idle connections fill the cap")
    .unwrap();
    assert_eq!(health.status(), StatusCode::OK);

    for mut stream in idle {
        let mut buffer = [0u8; 64];
        let read = tokio::time::timeout(GUARD, stream.read(&mut buffer))
            .await
            .expect("an idle connection is closed by the server");
        assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
    }
    tokio::time::timeout(GUARD, slow)
        .await
        .expect("a client that never finishes its headers is closed")
        .unwrap();
}

/// Everything a raw connection gets until the server closes it.
async fn read_to_close(stream: &mut TcpStream) -> String {
    let mut answer = Vec::new();
    tokio::time::timeout(GUARD, stream.read_to_end(&mut answer))
        .await
        .expect("the server answers and closes")
        .ok();
    String::from_utf8_lossy(&answer).into_owned()
}

#[tokio::test]
async fn a_body_sent_a_byte_at_a_time_is_cut_off_at_its_deadline() {
    let w = world_with(|config| {
        config.http_body_timeout_secs = 1;
    })
    .await;
    let addr = w.platform.running().http_addr.expect("an edge");
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let path = format!("/connec/api/v2/{}/invoices", w.org);
    let auth = basic_auth(&w.app.key, &w.app.secret);
    stream
        .write_all(
            format!(
                "POST {path} HTTP/1.1\r\nHost: x\r\nAuthorization: {auth}\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{{"
            )
            .as_bytes(),
        )
        .await
        .unwrap();
    // A byte every 100 ms keeps the connection from ever being idle.
    let (mut reader, mut writer) = stream.into_split();
    let trickle = async {
        loop {
            tokio::time::sleep(Duration::from_millis(100)).await;
            if writer.write_all(b" ").await.is_err() {
                break;
            }
        }
    };
    let mut answer = [0u8; 512];
    let read = tokio::select! {
        read = tokio::time::timeout(GUARD, reader.read(&mut answer)) => read,
        _ = trickle => panic!("the server stopped reading before answering"),
    };
    let n = read.expect("an answer within the guard").unwrap();
    let head = String::from_utf8_lossy(&answer[..n]);
    assert!(head.starts_with("HTTP/1.1 400"), "{head}");
    assert!(head.contains("did not arrive within"), "{head}");
    // Nothing was written.
    let (status, body) = w
        .call(
            &w.app,
            reqwest::Method::GET,
            &w.url("/invoices"),
            None,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["pagination"]["total"], 0, "{body}");
}

#[tokio::test]
async fn one_client_address_holds_at_most_its_share_of_connections() {
    let w = world_with(|config| {
        config.http_max_connections_per_client = 3;
        // The tests' own address is capped like any client's.
        config.trusted_proxies.clear();
    })
    .await;
    let addr = w.platform.running().http_addr.expect("an edge");
    // The test's HTTP client may hold a pooled connection: the refusal comes
    // at the fourth connection at the latest.
    let mut held = Vec::new();
    let refused = loop {
        assert!(held.len() <= 3, "no refusal past the share");
        let mut stream = TcpStream::connect(addr).await.unwrap();
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let mut first = [0u8; 12];
        tokio::time::timeout(GUARD, stream.read_exact(&mut first))
            .await
            .expect("an answer")
            .unwrap();
        if first.starts_with(b"HTTP/1.1 429") {
            let rest = read_to_close(&mut stream).await;
            break rest;
        }
        assert!(first.starts_with(b"HTTP/1.1 200"), "{first:?}");
        held.push(stream);
    };
    assert!(refused.contains("too_many_connections"), "{refused}");
    assert!(refused.contains("3 open connections"), "{refused}");
    // Closing the held ones frees the share.
    drop(held);
    mno_harness::wait_for("a connection once the others closed", GUARD, || async {
        let mut stream = TcpStream::connect(addr).await.ok()?;
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .ok()?;
        read_to_close(&mut stream)
            .await
            .starts_with("HTTP/1.1 200")
            .then_some(())
    })
    .await;
}

#[tokio::test]
async fn change_streams_are_capped_per_caller() {
    let w = world_with(|config| config.sse_max_streams = 2).await;
    let url = w.url("/stream?entities=invoices");
    let auth = basic_auth(&w.app.key, &w.app.secret);
    let open = || async {
        w.platform
            .http
            .get(&url)
            .header("Authorization", &auth)
            .send()
            .await
            .unwrap()
    };
    let mut streams = Vec::new();
    for _ in 0..2 {
        let response = open().await;
        assert_eq!(response.status(), StatusCode::OK);
        let mut body = Box::pin(response.bytes_stream());
        body.next().await.unwrap().unwrap();
        streams.push(body);
    }
    let refused = open().await;
    // Checked before the body is read: an open stream's body never ends.
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    let (_, body) = json_answer(refused).await;
    assert_eq!(body["errors"][0]["code"], "too_many_streams");
    assert!(detail(&body).contains('2'), "{body}");

    // Another caller is not counted against this one.
    let response = w
        .platform
        .http
        .get(&url)
        .header("Authorization", bearer(&w.token))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    drop(response);

    // Closing one frees its place (once the server has seen it go).
    drop(streams.pop());
    let reopened = tokio::time::timeout(GUARD, async {
        loop {
            let response = open().await;
            if response.status() == StatusCode::OK {
                return response;
            }
            assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("a closed stream frees its place");
    assert_eq!(reopened.status(), StatusCode::OK);
}
