//! Setting up a bench through the Hub's HTTP API, as a user would: a user
//! with a session, an org, and apps installed in it.

use anyhow::{bail, Context, Result};
use base64::Engine;
use serde_json::{json, Value};

/// A signed-in user who owns one org.
#[derive(Clone)]
pub struct Owner {
    pub org: String,
    token: String,
}

/// An app installed by [`Owner::install_app_with_id`].
pub struct InstalledApp {
    pub id: String,
    /// The app's Basic auth header.
    pub auth: String,
}

/// What an app reads and writes: `(entity, read, write)`.
pub type Shares<'a> = &'a [(&'a str, bool, bool)];

async fn call(
    http: &reqwest::Client,
    base: &str,
    method: reqwest::Method,
    path: &str,
    token: Option<&str>,
    body: Value,
) -> Result<Value> {
    let mut request = http.request(method, format!("{base}{path}")).json(&body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await?;
    let status = response.status();
    let answer: Value = response.json().await.unwrap_or(Value::Null);
    if !status.is_success() {
        bail!("{path} answered {status}: {answer}");
    }
    Ok(answer)
}

/// A new user (`email`), signed in, owning a new org.
pub async fn owner(http: &reqwest::Client, base: &str, email: &str) -> Result<Owner> {
    let password = "bench password, long enough";
    let post = reqwest::Method::POST;
    call(
        http,
        base,
        post.clone(),
        "/hub/v1/users",
        None,
        json!({"email": email, "password": password, "name": "Bench"}),
    )
    .await?;
    let session = call(
        http,
        base,
        post.clone(),
        "/hub/v1/sessions",
        None,
        json!({"email": email, "password": password}),
    )
    .await?;
    let token = session["token"]
        .as_str()
        .context("no session token")?
        .to_owned();
    let org = call(
        http,
        base,
        post,
        "/hub/v1/orgs",
        Some(&token),
        json!({"name": "Bench Org", "currency": "USD", "timezone": "UTC", "country": "US"}),
    )
    .await?;
    let org = org["id"]
        .as_str()
        .with_context(|| format!("no org id in {org}"))?
        .to_owned();
    Ok(Owner { org, token })
}

impl Owner {
    /// `request` with the owner's session.
    pub fn authorised(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        request.bearer_auth(&self.token)
    }

    /// An app installed in the org (data sharing on); its Basic auth header.
    pub async fn install_app(
        &self,
        http: &reqwest::Client,
        base: &str,
        name: &str,
        webhook_url: Option<&str>,
        shares: Shares<'_>,
    ) -> Result<String> {
        Ok(self
            .install_app_with_id(http, base, name, webhook_url, shares)
            .await?
            .auth)
    }

    /// The app shares no entity any more: its delivery stops and its consumer goes.
    pub async fn unsubscribe(
        &self,
        http: &reqwest::Client,
        base: &str,
        app_id: &str,
    ) -> Result<()> {
        call(
            http,
            base,
            reqwest::Method::PATCH,
            &format!("/hub/v1/apps/{app_id}"),
            Some(&self.token),
            json!({"shared_entities": []}),
        )
        .await?;
        Ok(())
    }

    /// An app installed in the org (data sharing on): its id and Basic auth header.
    pub async fn install_app_with_id(
        &self,
        http: &reqwest::Client,
        base: &str,
        name: &str,
        webhook_url: Option<&str>,
        shares: Shares<'_>,
    ) -> Result<InstalledApp> {
        let shared: Vec<Value> = shares
            .iter()
            .map(|(entity, read, write)| json!({"entity": entity, "read": read, "write": write}))
            .collect();
        let post = reqwest::Method::POST;
        let app = call(
            http,
            base,
            post.clone(),
            "/hub/v1/apps",
            Some(&self.token),
            json!({"name": name, "stack": "cloud", "webhook_url": webhook_url, "shared_entities": shared}),
        )
        .await?;
        let app_id = app["id"]
            .as_str()
            .with_context(|| format!("no app id in {app}"))?;
        let key = app["credentials"]["key"].as_str().context("no key")?;
        let secret = app["credentials"]["secret"].as_str().context("no secret")?;
        call(
            http,
            base,
            post,
            &format!("/hub/v1/orgs/{}/installs", self.org),
            Some(&self.token),
            json!({"app_id": app_id}),
        )
        .await?;
        Ok(InstalledApp {
            id: app_id.to_owned(),
            auth: format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("{key}:{secret}"))
            ),
        })
    }
}
