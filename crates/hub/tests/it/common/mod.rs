//! A Hub against a real nats-server and a real database, without the gateway.
//! Each world has a JetStream account of its own on the binary's shared
//! nats-server (its streams are its own) and a database of its own.

#![allow(dead_code)]

use std::time::Duration;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use mno_events::bus::Bus;
use mno_events::consume::{replay_until_caught_up, ReplayFrom};
use mno_events::proto::HubEvent;
use mno_harness::{DatabaseFixture, NatsAccount};
use mno_hub::{Hub, HubConfig, HubDeps};
use serde_json::Value;
use tower::ServiceExt;

pub struct World {
    pub nats: NatsAccount,
    pub bus: Bus,
    pub database_url: String,
    pub _dir: tempfile::TempDir,
}

impl World {
    pub async fn with_database(database_url: String, dir: tempfile::TempDir) -> World {
        let nats = tokio::task::spawn_blocking(NatsAccount::take)
            .await
            .unwrap();
        let bus = bus_of(&nats).await;
        mno_events::streams::provision_all(&bus.js, 1)
            .await
            .unwrap();
        World {
            nats,
            bus,
            database_url,
            _dir: dir,
        }
    }

    pub async fn hub(&self, config: HubConfig) -> Hub {
        let db = mno_events::db::open(&self.database_url).await.unwrap();
        Hub::start(HubDeps {
            bus: self.bus.clone(),
            db,
            config,
        })
        .await
        .unwrap()
    }

    /// Every Hub event in stream HUB, in stream order.
    pub async fn hub_events(&self) -> Vec<HubEvent> {
        let mut out = Vec::new();
        let info = self
            .bus
            .js
            .get_stream("HUB")
            .await
            .unwrap()
            .info()
            .await
            .unwrap()
            .clone();
        if info.state.messages == 0 {
            return out;
        }
        replay_until_caught_up(
            &self.bus.js,
            "HUB",
            &["hub.>".to_owned()],
            ReplayFrom::Beginning,
            None,
            |m| {
                out.push(HubEvent::from_bytes(&m.payload).unwrap());
                true
            },
        )
        .await
        .unwrap();
        out
    }

    /// Wait until stream HUB holds `count` messages.
    pub async fn wait_for_hub_messages(&self, count: u64) {
        let js = self.bus.js.clone();
        mno_harness::wait_for(
            &format!("{count} messages in HUB"),
            Duration::from_secs(20),
            || {
                let js = js.clone();
                async move {
                    let mut stream = js.get_stream("HUB").await.ok()?;
                    let n = stream.info().await.ok()?.state.messages;
                    (n == count).then_some(())
                }
            },
        )
        .await
    }
}

/// Wait until the outbox has nothing left to publish.
pub async fn wait_for_empty_outbox(hub: &Hub) {
    let pool = hub.store().pool.clone();
    mno_harness::wait_for("an empty outbox", Duration::from_secs(20), || {
        let pool = pool.clone();
        async move {
            let n = mno_hub::store::outbox::backlog(&pool).await.ok()?;
            (n == 0).then_some(())
        }
    })
    .await
}

impl DatabaseFixture for World {
    /// nats-server with the platform's streams, and an SQLite database in a temp dir.
    async fn sqlite() -> World {
        let dir = tempfile::tempdir().unwrap();
        let url = mno_events::db::sqlite_url(dir.path());
        Self::with_database(url, dir).await
    }

    /// The same, with a fresh database of the binary's shared PostgreSQL instead of SQLite.
    async fn postgres() -> World {
        let url = tokio::task::spawn_blocking(mno_harness::Postgres::shared_database)
            .await
            .unwrap();
        Self::with_database(url, tempfile::tempdir().unwrap()).await
    }
}

/// The platform's bus over an account's connection (the product's own
/// `bus::connect` takes a URL without credentials).
pub async fn bus_of(account: &NatsAccount) -> Bus {
    let client = account.client().await;
    Bus {
        js: async_nats::jetstream::new(client.clone()),
        server_version: client.server_info().version,
        client,
    }
}

/// One request to a Hub router, as a client would send it (a bearer token and
/// a JSON body when given): the status and the JSON answer (null when empty).
pub async fn call(
    router: &axum::Router,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut request = Request::builder().method(method).uri(path);
    if let Some(token) = token {
        request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
    }
    let request = match body {
        Some(body) => request
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body.to_string())),
        None => request.body(Body::empty()),
    }
    .unwrap();
    let response = router.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    let value = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).unwrap()
    };
    (status, value)
}
