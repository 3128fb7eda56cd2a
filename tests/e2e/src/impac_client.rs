//! What the Impac! tests share: a deterministic generator, and one org's
//! Connec! writes and widget reads over HTTP.

use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::hub_client::{basic_auth, HubClient};
use crate::TestPlatform;

// The benches' deterministic generator (every run is the same) and money format.
pub use mno_gateway::cli::bench::replay::{money, Lcg};

/// One org on a running platform, written and read with an app's credentials.
pub struct ImpacWorld {
    pub platform: TestPlatform,
    pub org: String,
    pub auth: String,
    /// The owner's session and the app, to add orgs.
    owner_token: String,
    app_id: String,
}

impl ImpacWorld {
    /// A platform of its own, and an org (owned by `owner_email`) with an app
    /// installed that may read and write `entities`.
    pub async fn start(owner_email: &str, entities: &[&str]) -> ImpacWorld {
        Self::start_on(TestPlatform::spawn().await, owner_email, entities).await
    }

    /// As [`ImpacWorld::start`], on a platform the test configured (e.g. on PostgreSQL).
    pub async fn start_on(
        platform: TestPlatform,
        owner_email: &str,
        entities: &[&str],
    ) -> ImpacWorld {
        let hub = HubClient::new(&platform.base_url);
        let shared: Vec<(&str, bool, bool)> = entities.iter().map(|e| (*e, true, true)).collect();
        let (owner_token, org, app) = hub
            .org_with_app(owner_email, None, &shared)
            .await
            .expect("an org with an app");
        ImpacWorld {
            auth: basic_auth(&app.key, &app.secret),
            platform,
            org,
            owner_token,
            app_id: app.id,
        }
    }

    /// The org owner's session token (to invite members, install apps).
    pub fn owner_token(&self) -> &str {
        &self.owner_token
    }

    /// Another org of the same owner, with the same app installed.
    pub async fn add_org(&self, name: &str, currency: &str) -> String {
        let hub = HubClient::new(&self.platform.base_url);
        let org = hub
            .create_org(&self.owner_token, name, currency)
            .await
            .expect("an org");
        hub.install(&self.owner_token, &org, &self.app_id)
            .await
            .expect("the app installed");
        org
    }

    /// A write through the Connec! API that must succeed: the answer and its
    /// stream sequence (the `mno-consistency-token`).
    pub async fn write(&self, method: Method, path: &str, body: Option<Value>) -> (Value, u64) {
        self.write_in(&self.org, method, path, body).await
    }

    /// As [`ImpacWorld::write`], in `org`.
    pub async fn write_in(
        &self,
        org: &str,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (Value, u64) {
        let mut request = self
            .platform
            .http
            .request(
                method,
                self.platform.url(&format!("/connec/api/v2/{org}{path}")),
            )
            .header("Authorization", &self.auth);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let seq = response
            .headers()
            .get("mno-consistency-token")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok());
        let body: Value = response.json().await.unwrap_or(Value::Null);
        assert!(status.is_success(), "{path}: {status} {body}");
        (body, seq.expect("a write answers its sequence"))
    }

    /// `GET /impac/api/v2/widgets/{name}?org_ids[]=<org>&{query}` for the world's org.
    pub async fn widget(&self, name: &str, query: &str) -> (StatusCode, Value) {
        self.widget_of(&[&self.org], name, query).await
    }

    /// A widget over several orgs (`org_ids[]` repeated).
    pub async fn widget_of(&self, orgs: &[&str], name: &str, query: &str) -> (StatusCode, Value) {
        let orgs: Vec<String> = orgs.iter().map(|org| format!("org_ids[]={org}")).collect();
        let response = self
            .platform
            .http
            .get(self.platform.url(&format!(
                "/impac/api/v2/widgets/{name}?{}&{query}",
                orgs.join("&")
            )))
            .header("Authorization", &self.auth)
            .send()
            .await
            .unwrap();
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }
}
