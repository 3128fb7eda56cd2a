//! The platform's public HTTP API as the portal calls it: JSON in and out,
//! and the platform's error shape (`{"errors":[{status, code, title, detail,
//! source}]}`) kept whole so that pages can show each error beside its field.

use std::fmt;

use axum::http::StatusCode;
use serde_json::Value;

/// Who a call is made as.
#[derive(Debug, Clone, Copy)]
pub enum Auth<'a> {
    Anonymous,
    /// Anonymous, for a visitor whose sign-in or sign-up the Hub limits per
    /// client address: their connection is passed on under the front's key.
    Visitor(&'a VisitorOrigin),
    /// A user's Hub session token (`mst_...`).
    Session(&'a str),
    /// An app's API key and secret.
    App {
        key: &'a str,
        secret: &'a str,
    },
}

/// The visitor's connection as the edge saw it: its peer, and the
/// `X-Forwarded-For` it came with. The portal passes both on with the calls
/// that sign-in limits count ([`Auth::Visitor`]), so that the Hub
/// counts each visitor at their own address, not the portal's loopback one.
#[derive(Debug, Clone, Default)]
pub struct VisitorOrigin {
    pub peer: Option<std::net::IpAddr>,
    pub forwarded_for: Option<String>,
}

#[derive(Clone)]
pub struct Api {
    http: reqwest::Client,
    base: String,
    /// The Hub's key for this front (`HubConfig::frontend_key`).
    frontend_key: Option<String>,
}

/// The Hub's names for what [`Auth::Visitor`] sends (`mno_hub::api::users`).
const FRONTEND_KEY_HEADER: &str = "x-mno-frontend-key";
const VISITOR_PEER_HEADER: &str = "x-mno-visitor-peer";

/// One error of the platform's answer.
#[derive(Debug, Clone, Default)]
pub struct ApiErrorItem {
    pub code: String,
    pub detail: String,
    /// `source.pointer` of a body field (`/password`), or `source.parameter` of a query parameter.
    pub pointer: Option<String>,
}

/// A call that did not succeed: the platform's status and errors, or why it could not be reached.
#[derive(Debug, Clone)]
pub struct ApiFailure {
    pub status: StatusCode,
    pub errors: Vec<ApiErrorItem>,
    /// Seconds to wait before trying again (the answer's `Retry-After`, of a 429).
    pub retry_after: Option<u64>,
}

impl ApiFailure {
    fn unreachable(error: impl fmt::Display) -> ApiFailure {
        ApiFailure {
            status: StatusCode::BAD_GATEWAY,
            errors: vec![ApiErrorItem {
                code: "unavailable".into(),
                detail: format!("the platform did not answer ({error}); try again shortly"),
                pointer: None,
            }],
            retry_after: None,
        }
    }

    /// Every detail, one after the other.
    pub fn summary(&self) -> String {
        let details: Vec<&str> = self.errors.iter().map(|e| e.detail.as_str()).collect();
        if details.is_empty() {
            format!("the platform answered {}", self.status)
        } else {
            details.join("; ")
        }
    }

    /// The errors about the body field `/name`.
    pub fn for_field<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.errors
            .iter()
            .filter(move |e| e.pointer.as_deref().map(|p| p.trim_start_matches('/')) == Some(name))
            .map(|e| e.detail.as_str())
    }

    /// The errors that name none of `fields` (shown above the form).
    pub fn others<'a>(&'a self, fields: &'a [&'a str]) -> impl Iterator<Item = &'a str> + 'a {
        self.errors
            .iter()
            .filter(move |e| {
                !e.pointer
                    .as_deref()
                    .is_some_and(|p| fields.contains(&p.trim_start_matches('/')))
            })
            .map(|e| e.detail.as_str())
    }
}

impl fmt::Display for ApiFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.summary())
    }
}

impl Api {
    pub fn new(base: &str, frontend_key: Option<String>) -> Api {
        Api {
            frontend_key,
            http: reqwest::Client::builder()
                .connect_timeout(std::time::Duration::from_secs(5))
                .build()
                .expect("a reqwest client with default TLS builds"),
            base: base.trim_end_matches('/').to_owned(),
        }
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    fn request(
        &self,
        method: reqwest::Method,
        auth: Auth<'_>,
        path: &str,
    ) -> reqwest::RequestBuilder {
        let request = self.http.request(method, format!("{}{path}", self.base));
        match auth {
            Auth::Anonymous => request,
            Auth::Visitor(origin) => {
                let (Some(key), Some(peer)) = (&self.frontend_key, origin.peer) else {
                    return request;
                };
                let request = request
                    .header(FRONTEND_KEY_HEADER, key)
                    .header(VISITOR_PEER_HEADER, peer.to_string());
                match &origin.forwarded_for {
                    Some(hops) => request.header("x-forwarded-for", hops),
                    None => request,
                }
            }
            Auth::Session(token) => request.bearer_auth(token),
            Auth::App { key, secret } => request.basic_auth(key, Some(secret)),
        }
    }

    async fn send(request: reqwest::RequestBuilder) -> Result<reqwest::Response, ApiFailure> {
        let response = request.send().await.map_err(ApiFailure::unreachable)?;
        if response.status().is_success() {
            return Ok(response);
        }
        let status = response.status();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse().ok());
        let body: Value = response.json().await.unwrap_or(Value::Null);
        let errors = body
            .get("errors")
            .and_then(Value::as_array)
            .map(|errors| {
                errors
                    .iter()
                    .map(|e| ApiErrorItem {
                        code: e["code"].as_str().unwrap_or_default().to_owned(),
                        detail: e["detail"].as_str().unwrap_or_default().to_owned(),
                        pointer: e["source"]["pointer"]
                            .as_str()
                            .or(e["source"]["parameter"].as_str())
                            .map(str::to_owned),
                    })
                    .collect()
            })
            .unwrap_or_default();
        Err(ApiFailure {
            status,
            errors,
            retry_after,
        })
    }

    async fn json(response: reqwest::Response) -> Result<Value, ApiFailure> {
        if response.status() == StatusCode::NO_CONTENT {
            return Ok(Value::Null);
        }
        response.json().await.map_err(ApiFailure::unreachable)
    }

    pub async fn get(&self, auth: Auth<'_>, path: &str) -> Result<Value, ApiFailure> {
        Self::json(Self::send(self.request(reqwest::Method::GET, auth, path)).await?).await
    }

    pub async fn post(
        &self,
        auth: Auth<'_>,
        path: &str,
        body: &Value,
    ) -> Result<Value, ApiFailure> {
        Self::json(Self::send(self.request(reqwest::Method::POST, auth, path).json(body)).await?)
            .await
    }

    pub async fn patch(
        &self,
        auth: Auth<'_>,
        path: &str,
        body: &Value,
    ) -> Result<Value, ApiFailure> {
        Self::json(Self::send(self.request(reqwest::Method::PATCH, auth, path).json(body)).await?)
            .await
    }

    pub async fn delete(&self, auth: Auth<'_>, path: &str) -> Result<Value, ApiFailure> {
        Self::json(Self::send(self.request(reqwest::Method::DELETE, auth, path)).await?).await
    }

    /// A non-JSON answer (CSV) as it came: its content type and body.
    pub async fn get_text(
        &self,
        auth: Auth<'_>,
        path: &str,
    ) -> Result<(String, String), ApiFailure> {
        let response = Self::send(self.request(reqwest::Method::GET, auth, path)).await?;
        let content_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("text/plain")
            .to_owned();
        let body = response.text().await.map_err(ApiFailure::unreachable)?;
        Ok((content_type, body))
    }

    /// A long-lived answer (server-sent events), for the caller to read as it comes.
    pub async fn open_stream(
        &self,
        auth: Auth<'_>,
        path: &str,
    ) -> Result<reqwest::Response, ApiFailure> {
        Self::send(self.request(reqwest::Method::GET, auth, path)).await
    }
}

/// A path segment or query value, percent-encoded.
pub fn enc(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}
