//! Scale-out, end to end with real processes: a three-node JetStream cluster,
//! one PostgreSQL, two edge and two worker `mno serve` processes act as one
//! platform. Writes go through both edges and read back the same from both;
//! a worker holding the projections and an app's deliveries is killed -9 and
//! the other takes over; a nats-server node is killed -9; in the end every
//! projection equals an independent recomputation from the stream and every
//! subscriber received every change, first in order per record.

use crate::support;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_nats::jetstream::kv;
use axum::routing::post;
use futures::StreamExt;
use mno_harness::{NatsCluster, Postgres};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

/// One `mno serve` process.
struct Serve {
    name: String,
    child: Child,
    /// The edge's URL (edges only).
    base: Option<String>,
    log: std::path::PathBuf,
}

impl Serve {
    fn start(name: &str, roles: &str, dir: &Path, nats: &str, database: &str) -> Serve {
        let data = dir.join(name);
        std::fs::create_dir_all(&data).unwrap();
        let log = dir.join(format!("{name}.log"));
        let mut child = support::mno_command(&data)
            .args(["serve", "--role", roles])
            .env("MNO_NATS_URL", nats)
            .env("MNO_DATABASE_URL", database)
            .env("MNO_STREAM_REPLICAS", "3")
            .env("MNO_INSTANCE", name)
            .env("MNO_HTTP_ADDR", "127.0.0.1:0")
            .env("MNO_ALLOW_PRIVATE_WEBHOOKS", "true")
            .env("MNO_WEBHOOK_RETRY_SCHEDULE", "200ms,400ms,800ms,1s,2s,5s")
            .env("MNO_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("start mno serve");
        // The first line says it is up (and where its edge is).
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert!(
            line.starts_with("mno is serving"),
            "{name} did not start: {line}\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        let base = line
            .split_whitespace()
            .find(|w| w.starts_with("http://"))
            .map(str::to_owned);
        Serve {
            name: name.to_owned(),
            child,
            base,
            log,
        }
    }

    fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    fn base(&self) -> &str {
        self.base.as_deref().expect("an edge")
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        self.kill9();
        if std::thread::panicking() {
            eprintln!(
                "--- log of {} ---\n{}",
                self.name,
                std::fs::read_to_string(&self.log).unwrap_or_default()
            );
        }
    }
}

/// A real webhook receiver: every record of every POST, in arrival order.
#[derive(Clone, Default)]
struct Receiver {
    got: Arc<Mutex<Vec<(String, u64)>>>,
}

impl Receiver {
    async fn start(&self) -> String {
        let got = self.got.clone();
        let app = axum::Router::new().route(
            "/hook",
            post(move |body: axum::Json<Value>| {
                let got = got.clone();
                async move {
                    let mut got = got.lock().unwrap();
                    for records in body.0.as_object().into_iter().flat_map(|m| m.values()) {
                        for record in records.as_array().into_iter().flatten() {
                            got.push((
                                connec_id(&record["id"]),
                                record["version"].as_u64().unwrap_or(0),
                            ));
                        }
                    }
                    StatusCode::OK
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        format!("http://{addr}/hook")
    }

    /// Per record, the versions in the order each was first received.
    fn first_seen(&self) -> BTreeMap<String, Vec<u64>> {
        let mut seen: BTreeMap<String, Vec<u64>> = BTreeMap::new();
        for (id, version) in self.got.lock().unwrap().iter() {
            let versions = seen.entry(id.clone()).or_default();
            if !versions.contains(version) {
                versions.push(*version);
            }
        }
        seen
    }
}

/// The platform's id of a record: a plain id (as users see it) or, in an
/// app's view, the `connec` entry of its external ids.
fn connec_id(ids: &Value) -> String {
    if let Some(id) = ids.as_str() {
        return id.to_owned();
    }
    ids.as_array()
        .into_iter()
        .flatten()
        .find(|i| i["provider"] == "connec")
        .and_then(|i| i["id"].as_str())
        .unwrap_or_default()
        .to_owned()
}

struct Client {
    http: reqwest::Client,
}

impl Client {
    async fn call(
        &self,
        method: Method,
        url: &str,
        auth: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value, Option<u64>) {
        self.call_keyed(method, url, auth, body, None).await
    }

    async fn call_keyed(
        &self,
        method: Method,
        url: &str,
        auth: &str,
        body: Option<Value>,
        key: Option<&str>,
    ) -> (StatusCode, Value, Option<u64>) {
        let mut request = self.http.request(method, url).header("Authorization", auth);
        if let Some(key) = key {
            request = request.header("Idempotency-Key", key);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        match request.send().await {
            Ok(response) => {
                let status = response.status();
                let seq = response
                    .headers()
                    .get("mno-consistency-token")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse().ok());
                (status, response.json().await.unwrap_or(Value::Null), seq)
            }
            Err(_) => (StatusCode::BAD_GATEWAY, Value::Null, None),
        }
    }

    /// A call retried while the cluster elects leaders (5xx): what a client does.
    async fn must(
        &self,
        expected: StatusCode,
        method: Method,
        url: &str,
        auth: &str,
        body: Option<Value>,
    ) -> (Value, Option<u64>) {
        self.must_keyed(expected, method, url, auth, body, None)
            .await
    }

    /// As [`Client::must`], a write under an `Idempotency-Key`, so that a
    /// retry of a write whose answer was lost is not a second write.
    async fn must_keyed(
        &self,
        expected: StatusCode,
        method: Method,
        url: &str,
        auth: &str,
        body: Option<Value>,
        key: Option<&str>,
    ) -> (Value, Option<u64>) {
        for _ in 0..150 {
            let (status, answer, seq) = self
                .call_keyed(method.clone(), url, auth, body.clone(), key)
                .await;
            if status == expected {
                return (answer, seq);
            }
            // The key still held by the attempt an outage cut short: retried too.
            let in_use = answer["errors"][0]["code"] == "idempotency_key_in_use";
            assert!(
                status.is_server_error() || in_use,
                "{method} {url}: {status} {answer}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        panic!("{method} {url} kept failing");
    }
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

/// What the test wrote: per invoice id, its last acknowledged total and version.
#[derive(Default)]
struct Written {
    invoices: BTreeMap<String, (u64, u64)>,
    last_seq: u64,
}

async fn write_round(
    client: &Client,
    edges: &[&str],
    org: &str,
    auth: &str,
    written: &mut Written,
    creates: u64,
    round: u64,
) {
    for i in 0..creates {
        let edge = edges[(i as usize) % edges.len()];
        let total = 100 * (round * 1000 + i + 1);
        let key = format!("create-{round}-{i}");
        let (body, seq) = client
            .must_keyed(
                StatusCode::CREATED,
                Method::POST,
                &format!("{edge}/connec/api/v2/{org}/invoices"),
                auth,
                Some(json!({"invoices": {"type": "CUSTOMER", "status": "AUTHORISED", "currency": "USD",
                    "total_amount": total.to_string(), "balance": "0", "transaction_date": "2026-03-01"}})),
                Some(&key),
            )
            .await;
        let id = body["invoices"]["id"].as_str().expect("an id").to_owned();
        written.invoices.insert(id, (total, 1));
        written.last_seq = written.last_seq.max(seq.unwrap_or(0));
    }
    // Updates of earlier invoices, through the other edge: order per record matters.
    let ids: Vec<String> = written
        .invoices
        .keys()
        .take(creates as usize / 2)
        .cloned()
        .collect();
    for (i, id) in ids.iter().enumerate() {
        let edge = edges[(i + 1) % edges.len()];
        let (total, version) = written.invoices[id];
        let total = total + 1;
        let key = format!("update-{id}-{version}");
        let (_, seq) = client
            .must_keyed(
                StatusCode::OK,
                Method::PUT,
                &format!("{edge}/connec/api/v2/{org}/invoices/{id}"),
                auth,
                Some(json!({"invoices": {"total_amount": total.to_string()}})),
                Some(&key),
            )
            .await;
        written.invoices.insert(id.clone(), (total, version + 1));
        written.last_seq = written.last_seq.max(seq.unwrap_or(0));
    }
}

/// Every invoice from an edge's list, once it has folded `min_seq`: (id, version, total).
async fn list(
    client: &Client,
    edge: &str,
    org: &str,
    auth: &str,
    min_seq: u64,
) -> Vec<(String, u64, String)> {
    let (body, _) = client
        .must(
            StatusCode::OK,
            Method::GET,
            &format!("{edge}/connec/api/v2/{org}/invoices?$top=1000&min_seq={min_seq}"),
            auth,
            None,
        )
        .await;
    let mut out: Vec<(String, u64, String)> = body["invoices"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| {
            (
                connec_id(&r["id"]),
                r["version"].as_u64().unwrap_or(0),
                r["total_amount"].to_string(),
            )
        })
        .collect();
    out.sort();
    out
}

/// Both edges list exactly what was acknowledged, and the same P&L.
async fn edges_agree(client: &Client, edges: &[&str], org: &str, auth: &str, written: &Written) {
    let expected: Vec<(String, u64)> = written
        .invoices
        .iter()
        .map(|(id, (_, v))| (id.clone(), *v))
        .collect();
    let mut reports = Vec::new();
    for edge in edges {
        let listed = mno_harness::wait_for(
            "the edge lists every acknowledged write",
            Duration::from_secs(60),
            || async {
                let listed = list(client, edge, org, auth, written.last_seq).await;
                let versions: Vec<(String, u64)> =
                    listed.iter().map(|(id, v, _)| (id.clone(), *v)).collect();
                (versions == expected).then_some(listed)
            },
        )
        .await;
        assert_eq!(listed.len(), written.invoices.len());
        let (report, _) = client
            .must(
                StatusCode::OK,
                Method::GET,
                &format!("{edge}/impac/api/v2/widgets/accounts/profit_and_loss?org_ids[]={org}&currency=USD&to=2026-12-31&min_seq={}", written.last_seq),
                auth,
                None,
            )
            .await;
        reports.push(report);
    }
    assert_eq!(reports[0], reports[1], "the edges' reports differ");
}

/// The holder of each lease whose name starts with `prefix`.
async fn holders(leases: &kv::Store, prefix: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut keys = leases.keys().await.unwrap();
    while let Some(Ok(key)) = keys.next().await {
        if key.starts_with(prefix) {
            if let Ok(Some(value)) = leases.get(&key).await {
                out.insert(key, String::from_utf8_lossy(&value).into_owned());
            }
        }
    }
    out
}

/// Per record subject, the last event's (sequence, version), replayed from RECORDS.
async fn recompute(
    js: &async_nats::jetstream::Context,
) -> BTreeMap<(String, String, String), (u64, u64)> {
    let mut last = BTreeMap::new();
    mno_events::consume::replay_until_caught_up(
        js,
        mno_events::streams::RECORDS,
        &["rec.>".to_owned()],
        mno_events::consume::ReplayFrom::Beginning,
        None,
        |m| {
            let event = mno_events::proto::RecordEvent::from_bytes(&m.payload).unwrap();
            last.insert(
                (event.org, event.entity, event.record_id),
                (m.seq, event.version),
            );
            true
        },
    )
    .await
    .unwrap();
    last
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edges_and_workers_act_as_one_platform_through_a_worker_and_a_node_lost() {
    let _heavy = support::HEAVY.lock().await;
    let mut cluster = NatsCluster::start().await;
    let pg = Postgres::start();
    let dir = tempfile::tempdir().unwrap();
    let nats = cluster.urls();
    let database = pg.url();
    let mut workers = [
        Serve::start("worker-1", "workers", dir.path(), &nats, &database),
        Serve::start("worker-2", "workers", dir.path(), &nats, &database),
    ];
    let edge_a = Serve::start("edge-a", "edge", dir.path(), &nats, &database);
    let edge_b = Serve::start("edge-b", "edge", dir.path(), &nats, &database);
    let edges = [edge_a.base(), edge_b.base()];
    let client = Client {
        http: reqwest::Client::new(),
    };

    // An owner, an org, a writing app and two subscribing apps, set up through edge A.
    let a = edges[0];
    client.must(StatusCode::CREATED, Method::POST, &format!("{a}/hub/v1/users"), "",
        Some(json!({"email": "owner@example.com", "password": "correct horse battery staple", "name": "Owner"}))).await;
    let (session, _) = client
        .must(
            StatusCode::CREATED,
            Method::POST,
            &format!("{a}/hub/v1/sessions"),
            "",
            Some(json!({"email": "owner@example.com", "password": "correct horse battery staple"})),
        )
        .await;
    let owner = bearer(session["token"].as_str().unwrap());
    let (org, _) = client
        .must(
            StatusCode::CREATED,
            Method::POST,
            &format!("{a}/hub/v1/orgs"),
            &owner,
            Some(json!({"name": "Scale", "currency": "USD", "timezone": "UTC", "country": "US"})),
        )
        .await;
    let org = org["id"].as_str().unwrap().to_owned();
    let mut apps = Vec::new();
    let receivers = [Receiver::default(), Receiver::default()];
    for (name, hook) in [
        ("Writer", None),
        ("Reader 1", Some(receivers[0].start().await)),
        ("Reader 2", Some(receivers[1].start().await)),
    ] {
        let (app, _) = client
            .must(
                StatusCode::CREATED,
                Method::POST,
                &format!("{a}/hub/v1/apps"),
                &owner,
                Some(json!({"name": name, "stack": "cloud", "webhook_url": hook,
                "shared_entities": [{"entity": "invoices", "read": true, "write": true}]})),
            )
            .await;
        let app_id = app["id"].as_str().unwrap().to_owned();
        client
            .must(
                StatusCode::CREATED,
                Method::POST,
                &format!("{a}/hub/v1/orgs/{org}/installs"),
                &owner,
                Some(json!({"app_id": app_id})),
            )
            .await;
        apps.push(app);
    }
    let writer = {
        use base64::Engine;
        let creds = &apps[0]["credentials"];
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!(
                "{}:{}",
                creds["key"].as_str().unwrap(),
                creds["secret"].as_str().unwrap()
            ))
        )
    };
    let readers: Vec<String> = apps[1..]
        .iter()
        .map(|a| a["id"].as_str().unwrap().to_owned())
        .collect();

    // The two workers share the two apps, one each, and one of them folds.
    let bus = mno_events::bus::connect(&nats).await.unwrap();
    let leases = bus
        .js
        .get_key_value(mno_events::lease::BUCKET)
        .await
        .unwrap();
    let spread = mno_harness::wait_for(
        "the apps spread over both workers",
        Duration::from_secs(60),
        || async {
            let held = holders(&leases, "delivery.").await;
            let owners: Vec<&String> = readers
                .iter()
                .filter_map(|r| held.get(&format!("delivery.{r}")))
                .collect();
            (owners.len() == 2 && owners[0] != owners[1]).then_some(held)
        },
    )
    .await;
    eprintln!("deliveries: {spread:?}");

    let mut written = Written::default();
    write_round(&client, &edges, &org, &writer, &mut written, 20, 1).await;
    edges_agree(&client, &edges, &org, &owner, &written).await;

    // The revocation bound across processes: a session ended on edge A, tried on edge B.
    let (second, _) = client
        .must(
            StatusCode::CREATED,
            Method::POST,
            &format!("{a}/hub/v1/sessions"),
            "",
            Some(json!({"email": "owner@example.com", "password": "correct horse battery staple"})),
        )
        .await;
    let second = bearer(second["token"].as_str().unwrap());
    let on_b = format!("{}/connec/api/v2/{org}/invoices?$top=1", edges[1]);
    assert_eq!(
        client.call(Method::GET, &on_b, &second, None).await.0,
        StatusCode::OK
    );
    client
        .must(
            StatusCode::NO_CONTENT,
            Method::DELETE,
            &format!("{a}/hub/v1/sessions/current"),
            &second,
            None,
        )
        .await;
    let ended = Instant::now();
    mno_harness::wait_for(
        "edge B refuses the ended session",
        Duration::from_secs(90),
        || async {
            (client.call(Method::GET, &on_b, &second, None).await.0 == StatusCode::UNAUTHORIZED)
                .then_some(())
        },
    )
    .await;
    eprintln!(
        "revocation across edges took {} ms",
        ended.elapsed().as_millis()
    );

    // Kill -9 the worker that folds (it delivers to one of the apps too).
    let folder = holders(&leases, "fold.connec-record-store")
        .await
        .into_values()
        .next()
        .expect("a folder");
    let victim = workers
        .iter()
        .position(|w| w.name == folder)
        .expect("the folder is a worker");
    assert!(
        spread.values().any(|h| *h == folder),
        "the folder delivers to an app too"
    );
    workers[victim].kill9();
    let killed = Instant::now();
    write_round(&client, &edges, &org, &writer, &mut written, 20, 2).await;
    let survivor = workers[1 - victim].name.clone();
    mno_harness::wait_for(
        "the other worker takes everything over",
        Duration::from_secs(60),
        || async {
            let held = holders(&leases, "").await;
            let all: Vec<String> = [
                "fold.connec-record-store".to_owned(),
                "fold.impac-records-v1".to_owned(),
            ]
            .into_iter()
            .chain(readers.iter().map(|r| format!("delivery.{r}")))
            .collect();
            all.iter()
                .all(|k| held.get(k) == Some(&survivor))
                .then_some(())
        },
    )
    .await;
    eprintln!(
        "take-over after kill -9 took {} ms",
        killed.elapsed().as_millis()
    );
    edges_agree(&client, &edges, &org, &owner, &written).await;

    // Kill -9 one nats-server node: writes, folds and deliveries go on.
    cluster.nodes[2].kill9();
    write_round(&client, &edges, &org, &writer, &mut written, 10, 3).await;
    edges_agree(&client, &edges, &org, &owner, &written).await;

    // Every subscriber got every change, each record's versions first seen in order.
    for receiver in &receivers {
        let expected: BTreeMap<String, Vec<u64>> = written
            .invoices
            .iter()
            .map(|(id, (_, v))| (id.clone(), (1..=*v).collect()))
            .collect();
        mno_harness::wait_for(
            "every change delivered, in order per record",
            Duration::from_secs(90),
            || async { (receiver.first_seen() == expected).then_some(()) },
        )
        .await;
    }

    // Every projection equals an independent recomputation from the stream.
    let truth = recompute(&bus.js).await;
    let db = mno_events::db::open(&database).await.unwrap();
    let store: Vec<(String, String, String, i64, i64)> =
        sqlx::query_as("SELECT org, entity, id, seq, version FROM connec_records")
            .fetch_all(&db)
            .await
            .unwrap();
    let store: BTreeMap<(String, String, String), (u64, u64)> = store
        .into_iter()
        .map(|(o, e, i, s, v)| ((o, e, i), (s as u64, v as u64)))
        .collect();
    assert_eq!(store, truth, "the record store differs from the stream");
    let reports: Vec<(String, String, String, i64)> =
        sqlx::query_as("SELECT org, entity, id, seq FROM impac_records WHERE version = 1")
            .fetch_all(&db)
            .await
            .unwrap();
    let reports: BTreeMap<(String, String, String), u64> = reports
        .into_iter()
        .map(|(o, e, i, s)| ((o, e, i), s as u64))
        .collect();
    let expected: BTreeMap<(String, String, String), u64> = truth
        .iter()
        .filter(|((_, entity, _), _)| mno_impac_projector::records::is_read(entity))
        .map(|(k, (seq, _))| (k.clone(), *seq))
        .collect();
    assert_eq!(reports, expected, "Impac!'s records differ from the stream");
}
