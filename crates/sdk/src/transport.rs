//! Sending requests: authentication, the error shape, and safe retries.
//!
//! Every write carries an `Idempotency-Key`; a failed attempt (5xx, 429, a
//! timeout, a refused connection) is sent again with the same key, so the
//! platform stores it once whatever happened to the first attempt.

use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;

use crate::config::Config;
use crate::error::{ApiError, Error, Result};

/// The header naming a write's idempotency key.
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";

/// One request, before it is sent (and perhaps sent again).
#[derive(Debug, Clone)]
pub(crate) struct Call {
    pub method: Method,
    pub path: String,
    pub query: Vec<(String, String)>,
    pub headers: Vec<(HeaderName, String)>,
    pub body: Option<Vec<u8>>,
    /// A form body (`application/x-www-form-urlencoded`) instead of JSON.
    pub form: Option<Vec<(String, String)>>,
    pub idempotency_key: Option<String>,
}

impl Call {
    pub fn new(method: Method, path: impl Into<String>) -> Call {
        Call {
            method,
            path: path.into(),
            query: Vec::new(),
            headers: Vec::new(),
            body: None,
            form: None,
            idempotency_key: None,
        }
    }

    pub fn json(mut self, body: &impl serde::Serialize) -> Result<Call> {
        self.body = Some(serde_json::to_vec(body).map_err(|e| Error::Decode(e.to_string()))?);
        Ok(self)
    }

    pub fn query(mut self, name: &str, value: impl Into<String>) -> Call {
        self.query.push((name.to_owned(), value.into()));
        self
    }

    pub fn header(mut self, name: &'static str, value: impl Into<String>) -> Call {
        self.headers
            .push((HeaderName::from_static(name), value.into()));
        self
    }

    /// A write: it gets `key`, or a fresh random one, kept across retries.
    pub fn idempotent(mut self, key: Option<String>) -> Call {
        self.idempotency_key = Some(key.unwrap_or_else(|| uuid::Uuid::new_v4().to_string()));
        self
    }
}

/// A successful answer.
#[derive(Debug)]
pub(crate) struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn json<T: DeserializeOwned>(&self) -> Result<T> {
        serde_json::from_slice(&self.body).map_err(|e| {
            Error::Decode(format!(
                "{e} in {}",
                String::from_utf8_lossy(&self.body[..self.body.len().min(300)])
            ))
        })
    }
}

/// The HTTP side of every client: one connection pool, the app's credentials.
#[derive(Debug, Clone)]
pub(crate) struct Transport {
    pub config: Config,
    pub http: reqwest::Client,
}

impl Transport {
    pub fn new(config: Config) -> Result<Transport> {
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(Transport { config, http })
    }

    /// Sends `call` as the app (HTTP Basic), retrying what is safe to retry:
    /// reads always, writes under their idempotency key.
    pub async fn send(&self, call: &Call) -> Result<Answer> {
        let retryable = call.method == Method::GET || call.idempotency_key.is_some();
        let mut attempt = 0;
        loop {
            let outcome = self.attempt(call).await;
            let wait = match &outcome {
                Ok(answer) if answer.status.is_success() => None,
                Ok(answer) => retry_delay(answer.status, &answer.headers, attempt),
                Err(e) if e.is_timeout() || e.is_connect() || e.is_request() => {
                    Some(backoff(attempt))
                }
                Err(_) => None,
            };
            match wait {
                Some(delay) if retryable && attempt < self.config.max_retries => {
                    attempt += 1;
                    tokio::time::sleep(delay).await;
                }
                _ => {
                    let answer = outcome?;
                    if answer.status.is_success() {
                        return Ok(answer);
                    }
                    return Err(Error::from_api(ApiError::from_body(
                        answer.status.as_u16(),
                        &answer.body,
                    )));
                }
            }
        }
    }

    async fn attempt(&self, call: &Call) -> std::result::Result<Answer, reqwest::Error> {
        let url = self
            .config
            .url(&call.path)
            .expect("paths are built by the SDK and join onto a valid base");
        let mut request = self
            .http
            .request(call.method.clone(), url)
            .basic_auth(&self.config.app_key, Some(&self.config.app_secret))
            .query(&call.query);
        for (name, value) in &call.headers {
            request = request.header(name, value);
        }
        if let Some(key) = &call.idempotency_key {
            request = request.header(IDEMPOTENCY_KEY, key);
        }
        if let Some(body) = &call.body {
            request = request
                .header(
                    reqwest::header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                )
                .body(body.clone());
        }
        if let Some(form) = &call.form {
            request = request.form(form);
        }
        let response = request.send().await?;
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.bytes().await?.to_vec();
        Ok(Answer {
            status,
            headers,
            body,
        })
    }
}

/// How long to wait before retrying an answer, or `None` when it must not be retried.
fn retry_delay(status: StatusCode, headers: &HeaderMap, attempt: u32) -> Option<Duration> {
    let retry = status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS;
    if !retry {
        return None;
    }
    let asked = headers
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(|secs| Duration::from_secs(secs.min(MAX_RETRY_AFTER_SECS)));
    Some(asked.unwrap_or_else(|| backoff(attempt)))
}

/// The longest `Retry-After` waited for inline; a server asking for more gets this.
const MAX_RETRY_AFTER_SECS: u64 = 60;

/// Exponential backoff with jitter: about 0.2 s, 0.4 s, 0.8 s, ... at most 10 s.
fn backoff(attempt: u32) -> Duration {
    use rand::Rng;
    let base = 200u64.saturating_mul(1 << attempt.min(6)).min(10_000);
    let jitter = rand::thread_rng().gen_range(0..=base / 4);
    Duration::from_millis(base + jitter)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_server_errors_and_429_are_retried_honouring_retry_after() {
        let mut headers = HeaderMap::new();
        assert_eq!(
            retry_delay(StatusCode::UNPROCESSABLE_ENTITY, &headers, 0),
            None
        );
        assert_eq!(retry_delay(StatusCode::CONFLICT, &headers, 0), None);
        assert!(retry_delay(StatusCode::SERVICE_UNAVAILABLE, &headers, 0).is_some());
        headers.insert(reqwest::header::RETRY_AFTER, HeaderValue::from_static("3"));
        assert_eq!(
            retry_delay(StatusCode::TOO_MANY_REQUESTS, &headers, 0),
            Some(Duration::from_secs(3))
        );
    }

    #[test]
    fn backoff_grows_and_is_bounded() {
        assert!(backoff(0) < Duration::from_millis(300));
        assert!(backoff(3) >= Duration::from_millis(1600));
        assert!(backoff(30) <= Duration::from_millis(12_500));
    }
}
