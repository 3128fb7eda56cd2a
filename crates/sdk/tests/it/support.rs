//! A platform with an org and apps installed in it, and a real HTTP server
//! for the pieces a test puts in front of or behind the SDK.

use std::net::SocketAddr;

use anyhow::{Context, Result};
use mno_e2e::hub_client::{bearer, App, HubClient};
use mno_e2e::TestPlatform;
use mno_sdk::{Config, Mno};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

/// The platform, its owner's session, an org and an app installed there.
pub struct World {
    pub platform: TestPlatform,
    pub hub: HubClient,
    pub owner_token: String,
    pub owner_email: String,
    pub org: String,
    pub app: App,
}

/// What the apps of these tests share.
pub const SHARED: &[(&str, bool, bool)] = &[
    ("people", true, true),
    ("organizations", true, true),
    ("items", true, true),
];

impl World {
    pub async fn new(owner_email: &str) -> Result<World> {
        World::on(TestPlatform::spawn().await, owner_email).await
    }

    /// The same world on a platform the test configured.
    pub async fn on(platform: TestPlatform, owner_email: &str) -> Result<World> {
        let hub = HubClient::new(&platform.base_url);
        let (owner_token, org, app) = hub.org_with_app(owner_email, None, SHARED).await?;
        Ok(World {
            platform,
            hub,
            owner_token,
            owner_email: owner_email.to_owned(),
            org,
            app,
        })
    }

    /// The SDK as `app` sees the platform.
    pub fn sdk(&self, app: &App) -> Mno {
        self.sdk_at(app, &self.platform.base_url)
    }

    /// The SDK as `app`, talking to `url` (a proxy in front of the platform).
    pub fn sdk_at(&self, app: &App, url: &str) -> Mno {
        let config = Config::new(url, &app.key, &app.secret)
            .unwrap()
            .with_app_id(&app.id)
            .with_webhook_secret(&app.webhook_secret);
        Mno::new(config).unwrap()
    }

    /// Another app of the owner's, installed in the org; `settings` are
    /// merged into its creation body (`webhook_url`, `account_webhook_url`, ...).
    pub async fn second_app(&self, name: &str, settings: Value) -> Result<App> {
        let shared: Vec<Value> = SHARED
            .iter()
            .map(|(e, r, w)| json!({"entity": e, "read": r, "write": w}))
            .collect();
        let mut body = json!({"name": name, "stack": "cloud", "shared_entities": shared});
        body.as_object_mut()
            .context("an object")?
            .extend(settings.as_object().cloned().unwrap_or_default());
        let created = self
            .hub
            .expect(
                StatusCode::CREATED,
                Method::POST,
                "/hub/v1/apps",
                Some(&bearer(&self.owner_token)),
                Some(body),
            )
            .await?;
        let s = |v: &Value| v.as_str().map(str::to_owned).context("a string");
        let app = App {
            id: s(&created["id"])?,
            key: s(&created["credentials"]["key"])?,
            secret: s(&created["credentials"]["secret"])?,
            webhook_secret: s(&created["webhook_secret"])?,
        };
        self.hub
            .install(&self.owner_token, &self.org, &app.id)
            .await?;
        Ok(app)
    }
}

/// Serves `router` on a free loopback port until the test ends.
pub async fn serve(router: axum::Router) -> Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, router).await });
    Ok(addr)
}
