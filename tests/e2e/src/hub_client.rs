//! A small client of the Hub's HTTP API for tests: sign up, sign in, create
//! orgs and apps, install them. Every call checks the status it expects and
//! fails with the response body otherwise, so a test reads as a story.
//!
//! ```ignore
//! let hub = HubClient::new(&platform.base_url);
//! let (user, token) = hub.signup_and_login("ann@example.com").await?;
//! let org = hub.create_org(&token, "Acme", "USD").await?;
//! let app = hub.create_app(&token, "Books", Some("http://127.0.0.1:9/hook"),
//!     &[("invoices", true, true)]).await?;
//! hub.install(&token, &org, &app.id).await?;
//! let response = platform.http.get(url)
//!     .header("Authorization", basic_auth(&app.key, &app.secret)).send().await?;
//! ```

use anyhow::{bail, Context, Result};
use base64::Engine;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

/// A password that passes the Hub's rules, for tests.
pub const TEST_PASSWORD: &str = "correct horse battery staple";

/// `Authorization` header value for an app: HTTP Basic `key:secret`.
pub fn basic_auth(key: &str, secret: &str) -> String {
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{key}:{secret}"));
    format!("Basic {encoded}")
}

/// `Authorization` header value for a user's session token.
pub fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

#[derive(Debug, Clone)]
pub struct User {
    pub id: String,
    pub email: String,
    pub name: String,
}

/// An app as created: its id, API credentials and webhook signing secret.
#[derive(Debug, Clone)]
pub struct App {
    pub id: String,
    /// API key id (HTTP Basic user).
    pub key: String,
    /// API secret (HTTP Basic password); shown only at creation.
    pub secret: String,
    /// `whsec_...`, to verify webhooks the platform signs for this app.
    pub webhook_secret: String,
}

#[derive(Debug, Clone)]
pub struct HubClient {
    pub base_url: String,
    pub http: reqwest::Client,
}

impl HubClient {
    /// `base_url` is the platform's, e.g. `TestPlatform::base_url`.
    pub fn new(base_url: &str) -> Self {
        Self {
            base_url: base_url.trim_end_matches('/').to_owned(),
            http: reqwest::Client::new(),
        }
    }

    /// Any call: returns status and JSON body (`Value::Null` when empty).
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        auth: Option<&str>,
        body: Option<Value>,
    ) -> Result<(StatusCode, Value)> {
        let mut request = self
            .http
            .request(method.clone(), format!("{}{path}", self.base_url));
        if let Some(auth) = auth {
            request = request.header("Authorization", auth);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request
            .send()
            .await
            .with_context(|| format!("{method} {path}"))?;
        let status = response.status();
        let text = response.text().await?;
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text)
                .with_context(|| format!("{method} {path} answered non-JSON: {text}"))?
        };
        Ok((status, body))
    }

    /// A call that must answer `expected`.
    pub async fn expect(
        &self,
        expected: StatusCode,
        method: Method,
        path: &str,
        auth: Option<&str>,
        body: Option<Value>,
    ) -> Result<Value> {
        let (status, body) = self.call(method.clone(), path, auth, body).await?;
        if status != expected {
            bail!("{method} {path}: expected {expected}, got {status}: {body}");
        }
        Ok(body)
    }

    /// `POST /hub/v1/users`.
    pub async fn signup(&self, email: &str, password: &str, name: &str) -> Result<User> {
        let body = self
            .expect(
                StatusCode::CREATED,
                Method::POST,
                "/hub/v1/users",
                None,
                Some(json!({"email": email, "password": password, "name": name})),
            )
            .await?;
        Ok(User {
            id: str_field(&body, "id")?,
            email: str_field(&body, "email")?,
            name: str_field(&body, "name")?,
        })
    }

    /// `POST /hub/v1/sessions` → the session token.
    pub async fn login(&self, email: &str, password: &str) -> Result<String> {
        let body = self
            .expect(
                StatusCode::CREATED,
                Method::POST,
                "/hub/v1/sessions",
                None,
                Some(json!({"email": email, "password": password})),
            )
            .await?;
        str_field(&body, "token")
    }

    /// Sign up with [`TEST_PASSWORD`] and sign in: the user and a session token.
    pub async fn signup_and_login(&self, email: &str) -> Result<(User, String)> {
        let name = email.split('@').next().unwrap_or(email);
        let user = self.signup(email, TEST_PASSWORD, name).await?;
        let token = self.login(email, TEST_PASSWORD).await?;
        Ok((user, token))
    }

    /// `DELETE /hub/v1/sessions/current`.
    pub async fn logout(&self, token: &str) -> Result<()> {
        self.expect(
            StatusCode::NO_CONTENT,
            Method::DELETE,
            "/hub/v1/sessions/current",
            Some(&bearer(token)),
            None,
        )
        .await?;
        Ok(())
    }

    /// `POST /hub/v1/orgs` → the org id; the caller becomes its super_admin.
    pub async fn create_org(&self, token: &str, name: &str, currency: &str) -> Result<String> {
        let body = self
            .expect(
                StatusCode::CREATED,
                Method::POST,
                "/hub/v1/orgs",
                Some(&bearer(token)),
                Some(
                    json!({"name": name, "currency": currency, "timezone": "UTC", "country": "US"}),
                ),
            )
            .await?;
        str_field(&body, "id")
    }

    /// `POST /hub/v1/orgs/{org}/invitations` {email, role} → the invitation id.
    pub async fn invite(&self, token: &str, org: &str, email: &str, role: &str) -> Result<String> {
        let body = self
            .expect(
                StatusCode::CREATED,
                Method::POST,
                &format!("/hub/v1/orgs/{org}/invitations"),
                Some(&bearer(token)),
                Some(json!({"email": email, "role": role})),
            )
            .await?;
        str_field(&body, "id")
    }

    /// `POST /hub/v1/invitations/{id}/accept` as the invited user.
    pub async fn accept(&self, token: &str, invitation: &str) -> Result<()> {
        self.expect(
            StatusCode::CREATED,
            Method::POST,
            &format!("/hub/v1/invitations/{invitation}/accept"),
            Some(&bearer(token)),
            None,
        )
        .await?;
        Ok(())
    }

    /// A member by consent: an admin (`token`) invites `email` to `org` as
    /// `role`, and its user (`invitee_token`) accepts.
    pub async fn add_member(
        &self,
        token: &str,
        org: &str,
        email: &str,
        role: &str,
        invitee_token: &str,
    ) -> Result<()> {
        let invitation = self.invite(token, org, email, role).await?;
        self.accept(invitee_token, &invitation).await
    }

    /// `DELETE /hub/v1/orgs/{org}/members/{user_id}`.
    pub async fn remove_member(&self, token: &str, org: &str, user_id: &str) -> Result<()> {
        self.expect(
            StatusCode::NO_CONTENT,
            Method::DELETE,
            &format!("/hub/v1/orgs/{org}/members/{user_id}"),
            Some(&bearer(token)),
            None,
        )
        .await?;
        Ok(())
    }

    /// `POST /hub/v1/apps`: a cloud app sharing `(entity, read, write)` for each
    /// entry; `webhook_url` `None` for an app that pulls.
    pub async fn create_app(
        &self,
        token: &str,
        name: &str,
        webhook_url: Option<&str>,
        shared_entities: &[(&str, bool, bool)],
    ) -> Result<App> {
        let shared: Vec<Value> = shared_entities
            .iter()
            .map(|(entity, read, write)| json!({"entity": entity, "read": read, "write": write}))
            .collect();
        let body = self
            .expect(
                StatusCode::CREATED,
                Method::POST,
                "/hub/v1/apps",
                Some(&bearer(token)),
                Some(json!({
                    "name": name,
                    "stack": "cloud",
                    "webhook_url": webhook_url,
                    "shared_entities": shared,
                })),
            )
            .await?;
        Ok(App {
            id: str_field(&body, "id")?,
            key: str_field(&body["credentials"], "key")?,
            secret: str_field(&body["credentials"], "secret")?,
            webhook_secret: str_field(&body, "webhook_secret")?,
        })
    }

    /// `POST /hub/v1/orgs/{org}/installs` with data sharing on.
    pub async fn install(&self, token: &str, org: &str, app_id: &str) -> Result<()> {
        self.expect(
            StatusCode::CREATED,
            Method::POST,
            &format!("/hub/v1/orgs/{org}/installs"),
            Some(&bearer(token)),
            Some(json!({"app_id": app_id})),
        )
        .await?;
        Ok(())
    }

    /// `PATCH /hub/v1/orgs/{org}/installs/{app}` {data_sharing}.
    pub async fn set_data_sharing(
        &self,
        token: &str,
        org: &str,
        app_id: &str,
        on: bool,
    ) -> Result<()> {
        self.expect(
            StatusCode::OK,
            Method::PATCH,
            &format!("/hub/v1/orgs/{org}/installs/{app_id}"),
            Some(&bearer(token)),
            Some(json!({"data_sharing": on})),
        )
        .await?;
        Ok(())
    }

    /// `DELETE /hub/v1/orgs/{org}/installs/{app}`.
    pub async fn uninstall(&self, token: &str, org: &str, app_id: &str) -> Result<()> {
        self.expect(
            StatusCode::NO_CONTENT,
            Method::DELETE,
            &format!("/hub/v1/orgs/{org}/installs/{app_id}"),
            Some(&bearer(token)),
            None,
        )
        .await?;
        Ok(())
    }

    /// `POST /idm/v1/check` → the decision body `{allow, principal, reason}`.
    /// `credential` is `json!({"type":"session","token":..})` or
    /// `json!({"type":"app","key":..,"secret":..})`.
    pub async fn check(
        &self,
        credential: Value,
        org: &str,
        entity: Option<&str>,
        action: &str,
    ) -> Result<Value> {
        let mut body = json!({"credential": credential, "org": org, "action": action});
        if let Some(entity) = entity {
            body["entity"] = json!(entity);
        }
        self.expect(
            StatusCode::OK,
            Method::POST,
            "/idm/v1/check",
            None,
            Some(body),
        )
        .await
    }

    /// One ready world: an owner with an org, an app sharing `shared_entities`
    /// installed there with data sharing on. Returns (owner token, org id, app).
    pub async fn org_with_app(
        &self,
        owner_email: &str,
        webhook_url: Option<&str>,
        shared_entities: &[(&str, bool, bool)],
    ) -> Result<(String, String, App)> {
        let (_, token) = self.signup_and_login(owner_email).await?;
        let org = self.create_org(&token, "Test Org", "USD").await?;
        let app = self
            .create_app(&token, "Test App", webhook_url, shared_entities)
            .await?;
        self.install(&token, &org, &app.id).await?;
        Ok((token, org, app))
    }
}

fn str_field(body: &Value, field: &str) -> Result<String> {
    body[field]
        .as_str()
        .map(str::to_owned)
        .with_context(|| format!("no string field {field:?} in {body}"))
}

/// A fingerprint of everything the Hub stores: row counts of its tables, the
/// outbox length and the latest update times. Equal before and after a
/// rejected request shows that the request changed nothing.
pub async fn hub_fingerprint(db: &sqlx::AnyPool) -> Result<Vec<(String, i64)>> {
    let mut out = Vec::new();
    for table in [
        "hub_users",
        "hub_sessions",
        "hub_orgs",
        "hub_members",
        "hub_apps",
        "hub_app_credentials",
        "hub_webhook_secrets",
        "hub_installs",
        "hub_invitations",
        "hub_password_resets",
        "hub_outbox",
    ] {
        let count: i64 = sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {table}"))
            .fetch_one(db)
            .await?;
        out.push((format!("{table} rows"), count));
    }
    for table in [
        "hub_users",
        "hub_orgs",
        "hub_members",
        "hub_apps",
        "hub_installs",
    ] {
        let latest: i64 =
            sqlx::query_scalar(&format!("SELECT COALESCE(MAX(updated_at), 0) FROM {table}"))
                .fetch_one(db)
                .await?;
        out.push((format!("{table} latest update"), latest));
    }
    for (what, sql) in [
        (
            "revoked sessions",
            "SELECT COUNT(*) FROM hub_sessions WHERE revoked_at IS NOT NULL",
        ),
        (
            "used password reset links",
            "SELECT COUNT(*) FROM hub_password_resets WHERE used_at IS NOT NULL",
        ),
        (
            "expiring credentials",
            "SELECT COUNT(*) FROM hub_app_credentials WHERE expires_at IS NOT NULL",
        ),
    ] {
        let count: i64 = sqlx::query_scalar(sql).fetch_one(db).await?;
        out.push((what.to_owned(), count));
    }
    Ok(out)
}
