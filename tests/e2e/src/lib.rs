//! Helpers for the end-to-end tests in `tests/`: the whole platform in this
//! process on a free port, against a real nats-server of its own.
//!
//! ```ignore
//! let platform = TestPlatform::spawn().await;
//! let response = platform.http.get(platform.url("/readyz")).send().await?;
//! ```

pub mod browser;
pub mod hub_client;
pub mod impac_client;
pub mod org_fixture;

use mno_gateway::{Platform, PlatformConfig, RunningPlatform};
use mno_harness::{DatabaseFixture, NatsServer, Postgres};

/// A running platform with its own nats-server and data dir.
pub struct TestPlatform {
    pub platform: Option<RunningPlatform>,
    /// The configuration it was started with (kept for restarts).
    pub config: PlatformConfig,
    pub nats: NatsServer,
    pub data_dir: tempfile::TempDir,
    pub http: reqwest::Client,
    pub base_url: String,
}

impl TestPlatform {
    /// Start nats-server and the platform (SQLite under a temp data dir).
    pub async fn spawn() -> TestPlatform {
        Self::spawn_with(|_| {}).await
    }

    /// As [`TestPlatform::spawn`], letting the test adjust the configuration first.
    pub async fn spawn_with(adjust: impl FnOnce(&mut PlatformConfig)) -> TestPlatform {
        let nats = NatsServer::start().await;
        let data_dir = tempfile::Builder::new()
            .prefix("mno-e2e-")
            .tempdir()
            .expect("temp data dir");
        let mut config = PlatformConfig::for_tests(data_dir.path().to_owned(), Some(nats.url()));
        adjust(&mut config);
        let platform = Platform::start(config.clone())
            .await
            .expect("start the platform");
        let base_url = platform.base_url();
        TestPlatform {
            platform: Some(platform),
            config,
            nats,
            data_dir,
            http: reqwest::Client::new(),
            base_url,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    /// `POST /hub/v1/users` with [`hub_client::TEST_PASSWORD`] from a client
    /// at `address` (named in X-Forwarded-For; tests act as the trusted
    /// proxy): the sign-up limits count per address.
    pub async fn signup_from(&self, email: &str, address: &str) -> reqwest::Response {
        self.http
            .post(self.url("/hub/v1/users"))
            .header("x-forwarded-for", address)
            .json(&serde_json::json!({
                "email": email, "password": hub_client::TEST_PASSWORD, "name": "Made"
            }))
            .send()
            .await
            .expect("the platform answers")
    }

    pub fn running(&self) -> &RunningPlatform {
        self.platform.as_ref().expect("the platform is running")
    }

    /// Publish `state` as an event of `entity`'s record `record_id` straight
    /// onto RECORDS, past the write API's checks: what an earlier version of
    /// the platform may have stored. Answers its stream sequence.
    pub async fn publish_record_event(
        &self,
        org: &str,
        entity: &str,
        record_id: &str,
        op: mno_events::proto::Op,
        version: u64,
        state: &serde_json::Value,
    ) -> u64 {
        let event = mno_events::proto::RecordEvent {
            event_id: mno_events::envelope::new_event_id(),
            org: org.to_owned(),
            entity: entity.to_owned(),
            record_id: record_id.to_owned(),
            op: op as i32,
            version,
            state: mno_events::envelope::canonical_json(state),
            ..Default::default()
        };
        mno_events::publish::Publisher::new(self.running().bus.js.clone(), "RECORDS")
            .publish(mno_events::publish::Outgoing::new(
                format!("rec.{org}.{entity}.{record_id}"),
                event.event_id.clone(),
                event.to_bytes().into(),
            ))
            .await
            .expect("RECORDS takes the event")
            .seq
    }

    /// Stop the platform cleanly (the nats-server keeps running).
    pub async fn stop(&mut self) {
        if let Some(platform) = self.platform.take() {
            platform.shutdown().await.expect("clean shutdown");
        }
    }

    /// Start the platform again with the same configuration: data dir,
    /// database and bus (a new HTTP port).
    pub async fn restart(&mut self) {
        self.stop().await;
        let platform = Platform::start(self.config.clone())
            .await
            .expect("restart the platform");
        self.base_url = platform.base_url();
        self.platform = Some(platform);
    }
}

impl DatabaseFixture for TestPlatform {
    async fn sqlite() -> TestPlatform {
        TestPlatform::spawn().await
    }

    /// The platform over a fresh database of the binary's shared PostgreSQL.
    async fn postgres() -> TestPlatform {
        let url = tokio::task::spawn_blocking(Postgres::shared_database)
            .await
            .expect("a database of the shared PostgreSQL");
        TestPlatform::spawn_with(|c| c.database_url = Some(url)).await
    }
}
