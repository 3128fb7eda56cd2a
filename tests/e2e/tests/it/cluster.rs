//! The platform on a three-node JetStream cluster with `MNO_STREAM_REPLICAS=3`:
//! every stream and bucket it owns is replicated (buckets made earlier with one
//! replica are brought to three at start), and losing a node leaves writes
//! that carry an app's local id and an `Idempotency-Key` going on.

use std::time::Duration;

use async_nats::jetstream::kv;
use futures::StreamExt;
use mno_e2e::hub_client::{basic_auth, HubClient};
use mno_gateway::{Platform, PlatformConfig};
use mno_harness::NatsCluster;
use reqwest::StatusCode;
use serde_json::{json, Value};

/// A create in the app's own id, sent with an idempotency key, retried as a
/// client would while the cluster elects new leaders (a 5xx, or the key still
/// held by the attempt the outage cut short). The answer that ended it.
async fn create_person(
    http: &reqwest::Client,
    base: &str,
    org: &str,
    auth: &str,
    local_id: &str,
) -> (StatusCode, Value, u32) {
    let body = json!({"people": {"id": local_id, "first_name": "Bo", "last_name": local_id}});
    let mut retries = 0;
    loop {
        let response = http
            .post(format!("{base}/connec/api/v2/{org}/people"))
            .header("Authorization", auth)
            .header("Idempotency-Key", format!("key-{local_id}"))
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = response.status();
        let answer: Value = response.json().await.unwrap_or(Value::Null);
        let in_use = answer["errors"][0]["code"] == "idempotency_key_in_use";
        if (status.is_server_error() || in_use) && retries < 150 {
            retries += 1;
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        }
        return (status, answer, retries);
    }
}

#[tokio::test]
async fn writes_with_local_ids_and_idempotency_keys_go_on_when_a_node_is_lost() {
    let mut cluster = NatsCluster::start().await;
    let bus = mno_events::bus::connect(&cluster.urls()).await.unwrap();
    // Buckets as an earlier version made them: one replica.
    for bucket in ["IDMAP", "IDEMPOTENCY"] {
        bus.js
            .create_key_value(kv::Config {
                bucket: bucket.into(),
                history: 1,
                num_replicas: 1,
                ..Default::default()
            })
            .await
            .unwrap();
    }

    let data = tempfile::tempdir().unwrap();
    let mut config = PlatformConfig::for_tests(data.path().to_owned(), Some(cluster.urls()));
    config.stream_replicas = 3;
    let platform = Platform::start(config).await.unwrap();
    let base = platform.base_url();

    // Every stream the platform owns (the buckets' included) has three replicas.
    let mut names = bus.js.stream_names();
    let mut seen = Vec::new();
    while let Some(name) = names.next().await {
        let name = name.unwrap();
        let info = bus
            .js
            .get_stream(&name)
            .await
            .unwrap()
            .info()
            .await
            .unwrap()
            .clone();
        assert_eq!(info.config.num_replicas, 3, "{name}");
        seen.push(name);
    }
    seen.sort();
    assert_eq!(
        seen,
        [
            "DLQ",
            "HUB",
            "KV_IDEMPOTENCY",
            "KV_IDMAP",
            "KV_MNO_LEASES",
            "KV_MNO_PLATFORM",
            "KV_MNO_SIGNIN_LIMITS",
            "RECORDS"
        ],
        "the platform's streams"
    );

    let hub = HubClient::new(&base);
    let (_, org, app) = hub
        .org_with_app("ops@example.com", None, &[("people", true, true)])
        .await
        .unwrap();
    let auth = basic_auth(&app.key, &app.secret);
    let http = reqwest::Client::new();
    let (status, before, _) = create_person(&http, &base, &org, &auth, "P-0").await;
    assert_eq!(status, StatusCode::CREATED, "{before}");

    // Lose the node that leads the id map: the worst one to lose.
    let leader = bus
        .js
        .get_stream("KV_IDMAP")
        .await
        .unwrap()
        .info()
        .await
        .unwrap()
        .cluster
        .clone()
        .and_then(|c| c.leader)
        .expect("the id map has a leader");
    let down = cluster.nodes.iter().position(|n| n.name == leader).unwrap();
    // An upgraded bucket's new replicas first copy what it holds; a node is
    // lost only once every replica of every stream is current.
    mno_harness::wait_for("every replica current", Duration::from_secs(30), || async {
        let mut names = bus.js.stream_names();
        while let Some(name) = names.next().await {
            let info = bus
                .js
                .get_stream(name.ok()?)
                .await
                .ok()?
                .info()
                .await
                .ok()?
                .clone();
            let cluster = info.cluster?;
            if cluster.leader.is_none()
                || cluster.replicas.len() != 2
                || !cluster.replicas.iter().all(|r| r.current)
            {
                return None;
            }
        }
        Some(())
    })
    .await;
    cluster.nodes[down].kill9();

    // Writes go on during the outage: each new local id gets its record.
    for i in 1..=5 {
        let local = format!("P-{i}");
        let (status, answer, retries) = create_person(&http, &base, &org, &auth, &local).await;
        assert_eq!(
            status,
            StatusCode::CREATED,
            "{local} after {retries} retries: {answer}"
        );
        assert_eq!(answer["people"]["last_name"], local.as_str(), "{answer}");
    }
    // What was mapped and answered before the loss is still there: the same
    // key answers the same, and each local id still finds its record.
    let (status, again, _) = create_person(&http, &base, &org, &auth, "P-0").await;
    assert_eq!(status, StatusCode::CREATED, "{again}");
    assert_eq!(again, before, "the idempotent answer survived the node");
    for local in ["P-0", "P-3"] {
        let response = http
            .get(format!("{base}/connec/api/v2/{org}/people/{local}"))
            .header("Authorization", &auth)
            .send()
            .await
            .unwrap();
        let status = response.status();
        let read: Value = response.json().await.unwrap_or(Value::Null);
        assert_eq!(status, StatusCode::OK, "{local}: {read}");
        assert_eq!(read["people"]["last_name"], local, "{read}");
    }

    platform.shutdown().await.unwrap();
    cluster.restart(down).await;
}
