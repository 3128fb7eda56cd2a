//! What the fan-out tests share: a real webhook receiver (axum on a port of
//! its own), writing record changes onto the bus as the write path does, and
//! waiting for an app's consumer to be caught up.

#![allow(dead_code)]

use std::collections::{BTreeSet, HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::post;
use axum::Router;
use mno_events::envelope::{canonical_json, new_event_id};
use mno_events::proto::{Actor, Op, RecordEvent, Source, Timestamp};
use mno_events::publish::{Outgoing, Publisher};
use mno_events::streams::RECORDS;
use serde_json::{json, Value};
use tokio::sync::oneshot;

/// A platform, a signed-in owner and one org; each test file adds the
/// helpers it needs in its own `impl World`.
pub struct World {
    pub platform: mno_e2e::TestPlatform,
    pub hub: mno_e2e::hub_client::HubClient,
    pub token: String,
    pub org: String,
}

impl World {
    pub async fn new() -> World {
        Self::with(|_| {}).await
    }

    pub async fn with(adjust: impl FnOnce(&mut mno_gateway::PlatformConfig)) -> World {
        let platform = mno_e2e::TestPlatform::spawn_with(adjust).await;
        let hub = mno_e2e::hub_client::HubClient::new(&platform.base_url);
        let (_, token) = hub
            .signup_and_login("owner@example.com")
            .await
            .expect("owner");
        let org = hub.create_org(&token, "Acme", "USD").await.expect("org");
        World {
            platform,
            hub,
            token,
            org,
        }
    }

    pub fn js(&self) -> async_nats::jetstream::Context {
        self.platform.running().bus.js.clone()
    }
}

/// One POST a receiver got.
#[derive(Debug, Clone)]
pub struct Post {
    pub webhook_id: String,
    pub timestamp: String,
    pub signature: String,
    pub raw: String,
    pub body: Value,
    /// The status the receiver answered.
    pub status: u16,
}

impl Post {
    /// Every record in the POST, in order.
    pub fn records(&self) -> Vec<Received> {
        let mut out = Vec::new();
        if let Value::Object(map) = &self.body {
            for (entity, records) in map {
                for record in records.as_array().into_iter().flatten() {
                    out.push(Received {
                        entity: entity.clone(),
                        id: connec_id(&record["id"]).unwrap_or_default(),
                        version: record["version"].as_u64().unwrap_or(0),
                        op: record["op"].as_str().unwrap_or("").to_owned(),
                        record: record.clone(),
                        webhook_id: self.webhook_id.clone(),
                    });
                }
            }
        }
        out
    }
}

#[derive(Debug, Clone)]
pub struct Received {
    pub entity: String,
    pub id: String,
    pub version: u64,
    pub op: String,
    pub record: Value,
    pub webhook_id: String,
}

/// The platform's id in the external-ids array form.
pub fn connec_id(ids: &Value) -> Option<String> {
    provider_id(ids, "connec")
}

/// The id of `provider` (an app id, or "connec") in the external-ids array form.
pub fn provider_id(ids: &Value, provider: &str) -> Option<String> {
    ids.as_array()?
        .iter()
        .find(|i| i["provider"] == provider)
        .and_then(|i| i["id"].as_str())
        .map(str::to_owned)
}

type Answer = Arc<dyn Fn(&Post) -> (u16, String) + Send + Sync>;

#[derive(Clone)]
struct Shared {
    posts: Arc<Mutex<Vec<Post>>>,
    answer: Arc<Mutex<Answer>>,
}

/// A webhook receiver: a real HTTP server that records every POST.
pub struct Receiver {
    pub addr: SocketAddr,
    shared: Shared,
    stop: Option<oneshot::Sender<()>>,
}

impl Receiver {
    /// Listen on a free port, answering 200 `{}`.
    pub async fn start() -> Receiver {
        let shared = Shared {
            posts: Arc::default(),
            answer: Arc::new(Mutex::new(Arc::new(|_: &Post| (200, "{}".to_owned())))),
        };
        Self::listen(shared, "127.0.0.1:0".parse().unwrap()).await
    }

    async fn listen(shared: Shared, addr: SocketAddr) -> Receiver {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .expect("bind receiver");
        let addr = listener.local_addr().unwrap();
        let app = Router::new()
            .route("/hook", post(receive))
            .with_state(shared.clone());
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await;
        });
        Receiver {
            addr,
            shared,
            stop: Some(stop),
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }

    /// Decide each answer: `(status, body)`.
    pub fn answer_with(&self, answer: impl Fn(&Post) -> (u16, String) + Send + Sync + 'static) {
        *self.shared.answer.lock().unwrap() = Arc::new(answer);
    }

    /// Stop listening (connections are refused) until [`Receiver::restart`].
    pub async fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(self.addr).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("the receiver at {} did not stop", self.addr);
    }

    /// Listen again on the same port, keeping what was received.
    pub async fn restart(&mut self) {
        let again = Self::listen(self.shared.clone(), self.addr).await;
        self.stop = again.stop;
    }

    pub fn posts(&self) -> Vec<Post> {
        self.shared.posts.lock().unwrap().clone()
    }

    /// Every record received and accepted (2xx), in arrival order (repeats included).
    pub fn received(&self) -> Vec<Received> {
        self.posts()
            .iter()
            .filter(|p| (200..300).contains(&p.status))
            .flat_map(Post::records)
            .collect()
    }

    /// Distinct (record id, version) pairs received.
    pub fn distinct(&self) -> BTreeSet<(String, u64)> {
        self.received()
            .into_iter()
            .map(|r| (r.id, r.version))
            .collect()
    }
}

async fn receive(
    State(shared): State<Shared>,
    headers: HeaderMap,
    body: Bytes,
) -> impl IntoResponse {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned()
    };
    let raw = String::from_utf8_lossy(&body).into_owned();
    let mut post = Post {
        webhook_id: header("webhook-id"),
        timestamp: header("webhook-timestamp"),
        signature: header("webhook-signature"),
        body: serde_json::from_str(&raw).unwrap_or(Value::Null),
        raw,
        status: 0,
    };
    let answer = shared.answer.lock().unwrap().clone();
    let (status, text) = answer(&post);
    post.status = status;
    shared.posts.lock().unwrap().push(post);
    (
        StatusCode::from_u16(status).unwrap(),
        [("content-type", "application/json")],
        text,
    )
}

/// A change to one record, as the write path publishes it on RECORDS.
pub struct Change<'a> {
    pub org: &'a str,
    pub entity: &'a str,
    pub record_id: &'a str,
    pub version: u64,
    /// The app that made it, and its local id of the record.
    pub source: Option<(&'a str, &'a str)>,
    pub state: Value,
}

/// Publish a change; returns its stream sequence.
pub async fn write(js: &async_nats::jetstream::Context, change: Change<'_>) -> u64 {
    let op = if change.version == 1 {
        Op::Created
    } else {
        Op::Updated
    };
    let now = now();
    let event = RecordEvent {
        event_id: new_event_id(),
        org: change.org.to_owned(),
        entity: change.entity.to_owned(),
        record_id: change.record_id.to_owned(),
        op: op as i32,
        version: change.version,
        source: change.source.map(|(app, local)| Source {
            app_id: app.to_owned(),
            local_id: local.to_owned(),
        }),
        actor: Some(Actor {
            kind: "app".into(),
            id: change.source.map(|(a, _)| a.to_owned()).unwrap_or_default(),
        }),
        occurred_at: Some(now),
        recorded_at: Some(now),
        changed_fields: vec![],
        correlation_id: String::new(),
        state: canonical_json(&change.state),
        merged_record_ids: vec![],
    };
    let subject = format!("rec.{}.{}.{}", change.org, change.entity, change.record_id);
    Publisher::new(js.clone(), RECORDS)
        .publish(Outgoing::new(
            subject,
            event.event_id.clone(),
            event.to_bytes().into(),
        ))
        .await
        .expect("publish a record change")
        .seq
}

fn now() -> Timestamp {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    Timestamp {
        seconds: now.as_secs() as i64,
        nanos: now.subsec_nanos() as i32,
    }
}

/// The state of an app's delivery consumer.
#[derive(Debug, Clone, Copy)]
pub struct Lag {
    pub pending: u64,
    pub ack_pending: usize,
    pub delivered_seq: u64,
}

pub async fn lag(js: &async_nats::jetstream::Context, app: &str) -> Option<Lag> {
    let stream = js.get_stream_no_info(RECORDS).await.ok()?;
    let mut consumer = stream
        .get_consumer::<async_nats::jetstream::consumer::pull::Config>(&format!("delivery-{app}"))
        .await
        .ok()?;
    let info = consumer.info().await.ok()?;
    Some(Lag {
        pending: info.num_pending,
        ack_pending: info.num_ack_pending,
        delivered_seq: info.delivered.stream_sequence,
    })
}

/// Wait until the app's consumer has read up to `seq` and holds nothing unacknowledged.
pub async fn wait_caught_up(js: &async_nats::jetstream::Context, app: &str, seq: u64) {
    mno_harness::wait_for(
        &format!("app {app}'s delivery consumer to be caught up to {seq}"),
        Duration::from_secs(30),
        || async {
            let lag = lag(js, app).await?;
            (lag.pending == 0 && lag.ack_pending == 0 && lag.delivered_seq >= seq).then_some(())
        },
    )
    .await
}

/// Wait until the app has no delivery consumer: no org installed it with
/// data sharing, so it costs the bus nothing and receives nothing.
pub async fn wait_no_consumer(js: &async_nats::jetstream::Context, app: &str) {
    mno_harness::wait_for(
        &format!("app {app} to have no delivery consumer"),
        Duration::from_secs(15),
        || async { lag(js, app).await.is_none().then_some(()) },
    )
    .await
}

/// Wait until the app has a delivery consumer (its Hub setup reached delivery).
pub async fn wait_consumer(js: &async_nats::jetstream::Context, app: &str) {
    mno_harness::wait_for(
        &format!("app {app}'s delivery consumer"),
        Duration::from_secs(15),
        || async { lag(js, app).await.map(|_| ()) },
    )
    .await
}

/// Wait until `receiver` holds every (record, version) of `expected`.
pub async fn wait_received(receiver: &Receiver, expected: &BTreeSet<(String, u64)>, what: &str) {
    mno_harness::wait_for(what, Duration::from_secs(30), || async {
        expected.is_subset(&receiver.distinct()).then_some(())
    })
    .await
}

/// Versions of each record in order of first arrival.
pub fn first_arrival_versions(received: &[Received]) -> HashMap<String, Vec<u64>> {
    let mut seen = HashSet::new();
    let mut out: HashMap<String, Vec<u64>> = HashMap::new();
    for r in received {
        if seen.insert((r.id.clone(), r.version)) {
            out.entry(r.id.clone()).or_default().push(r.version);
        }
    }
    out
}

/// Every webhook-id names one content: the same id never carries different records.
pub fn assert_ids_name_one_content(posts: &[Post]) {
    let mut by_id: HashMap<&str, Vec<(String, u64)>> = HashMap::new();
    for post in posts {
        let content: Vec<(String, u64)> = post
            .records()
            .into_iter()
            .map(|r| (r.id, r.version))
            .collect();
        if let Some(before) = by_id.insert(&post.webhook_id, content.clone()) {
            assert_eq!(
                before, content,
                "webhook-id {} carried different records",
                post.webhook_id
            );
        }
    }
}

/// Run the reference verifier; returns how many (secret, message) pairs verified.
pub fn verify_with_python(secrets: &[String], posts: &[Post]) -> u64 {
    let messages: Vec<Value> = posts
        .iter()
        .map(|p| {
            json!({"headers": {"webhook-id": p.webhook_id, "webhook-timestamp": p.timestamp,
                               "webhook-signature": p.signature}, "body": p.raw})
        })
        .collect();
    let input = json!({"secrets": secrets, "messages": messages}).to_string();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/python/verify_webhooks.py");
    let mut child = std::process::Command::new("python3")
        .arg(script)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("python3 runs (tests/python-requirements.txt installs standardwebhooks)");
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "verifier failed: {stdout} {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: Value = serde_json::from_str(stdout.trim()).unwrap();
    report["verified"].as_u64().unwrap()
}

/// `body` must match the schema `/openapi.json` gives webhook `name`
/// (`records`, `account`, `kpi_alert`): what the document tells a receiver
/// is what it gets.
pub async fn assert_matches_webhook_schema(
    platform: &mno_e2e::TestPlatform,
    name: &str,
    body: &Value,
) {
    let doc = crate::openapi::document(platform).await;
    let schema =
        &doc["webhooks"][name]["post"]["requestBody"]["content"]["application/json"]["schema"];
    assert!(schema.is_object(), "no webhook {name:?} in the document");
    let validator = jsonschema::validator_for(schema).expect("the document's schema compiles");
    let problems: Vec<String> = validator
        .iter_errors(body)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(
        problems.is_empty(),
        "the {name} webhook {body} does not match the document: {problems:?}"
    );
}
