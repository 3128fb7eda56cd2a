//! One signed POST to an app's webhook and what its answer means.

use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::StreamExt;

use super::sign::{self, WEBHOOK_ID, WEBHOOK_SIGNATURE, WEBHOOK_TIMESTAMP};
use super::ssrf::{self, SafeResolver};

/// The HTTP client webhooks go through: no redirects, a timeout, and (unless
/// private webhooks are allowed) a resolver that refuses private addresses.
#[derive(Clone)]
pub struct Sender {
    client: reqwest::Client,
    allow_private: bool,
    max_response_bytes: usize,
}

/// What came of one POST.
#[derive(Debug, Clone)]
pub struct Attempt {
    pub outcome: Outcome,
    /// The HTTP status, when the receiver answered.
    pub status: Option<u16>,
    pub latency: Duration,
    /// The start of the receiver's answer (up to the read limit), or why there was none.
    pub response: String,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// 2xx: delivered.
    Delivered,
    /// Worth retrying; `retry_after` when the receiver asked for a delay (429/503).
    Retry { retry_after: Option<Duration> },
    /// 410 Gone: the receiver asks us to stop; the endpoint is disabled.
    Gone,
    /// Retrying cannot help (refused URL, no secret); the event goes to the DLQ at once.
    Fatal,
}

impl Sender {
    pub fn new(timeout: Duration, allow_private: bool, max_response_bytes: usize) -> Self {
        let mut builder = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(5)))
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("Mno-Webhooks/", env!("CARGO_PKG_VERSION")))
            .pool_max_idle_per_host(16);
        if !allow_private {
            builder = builder.dns_resolver(std::sync::Arc::new(SafeResolver));
        }
        let client = builder.build().expect("a static HTTP client configuration");
        Self {
            client,
            allow_private,
            max_response_bytes,
        }
    }

    /// POST `body` to `url`, signed with `secrets` under `webhook_id`.
    pub async fn post(
        &self,
        url: &str,
        secrets: &[String],
        webhook_id: &str,
        body: Bytes,
    ) -> Attempt {
        let started = Instant::now();
        let fatal = |response: String| Attempt {
            outcome: Outcome::Fatal,
            status: None,
            latency: started.elapsed(),
            response,
        };
        let url = match ssrf::check_url(url, self.allow_private) {
            Ok(url) => url,
            Err(e) => return fatal(e.to_string()),
        };
        let timestamp = chrono::Utc::now().timestamp();
        let signature = match sign::signature_header(secrets, webhook_id, timestamp, &body) {
            Ok(signature) => signature,
            Err(e) => return fatal(e.to_string()),
        };
        let request = self
            .client
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(WEBHOOK_ID, webhook_id)
            .header(WEBHOOK_TIMESTAMP, timestamp.to_string())
            .header(WEBHOOK_SIGNATURE, signature)
            .body(body);
        self.send(request, started).await
    }

    /// POST `fields` as an HTML form (`application/x-www-form-urlencoded`) to
    /// `url`, unsigned: for payloads that carry their own signature, such as
    /// OpenID back-channel logout tokens. Same SSRF guard and outcomes as [`Sender::post`].
    pub async fn post_form(&self, url: &str, fields: &[(&str, &str)]) -> Attempt {
        let started = Instant::now();
        let url = match ssrf::check_url(url, self.allow_private) {
            Ok(url) => url,
            Err(e) => {
                return Attempt {
                    outcome: Outcome::Fatal,
                    status: None,
                    latency: started.elapsed(),
                    response: e.to_string(),
                }
            }
        };
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(fields)
            .finish();
        let request = self
            .client
            .post(url)
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .body(body);
        self.send(request, started).await
    }

    /// Send and classify the answer.
    async fn send(&self, request: reqwest::RequestBuilder, started: Instant) -> Attempt {
        let response = match request.send().await {
            Ok(response) => response,
            Err(e) => {
                return Attempt {
                    outcome: Outcome::Retry { retry_after: None },
                    status: None,
                    latency: started.elapsed(),
                    response: describe_transport_error(&e),
                }
            }
        };
        let status = response.status();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_retry_after);
        let text = read_limited(response, self.max_response_bytes).await;
        let outcome = match status.as_u16() {
            200..=299 => Outcome::Delivered,
            410 => Outcome::Gone,
            429 | 503 => Outcome::Retry { retry_after },
            _ => Outcome::Retry { retry_after: None },
        };
        Attempt {
            outcome,
            status: Some(status.as_u16()),
            latency: started.elapsed(),
            response: text,
        }
    }
}

/// Read at most `limit` bytes of the body; a receiver cannot make us read more.
async fn read_limited(response: reqwest::Response, limit: usize) -> String {
    let mut out = Vec::new();
    let mut chunks = response.bytes_stream();
    while let Some(chunk) = chunks.next().await {
        let Ok(chunk) = chunk else { break };
        let room = limit.saturating_sub(out.len());
        out.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if out.len() >= limit {
            break;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Retry-After as delta-seconds (the HTTP-date form is read as "no hint").
fn parse_retry_after(value: &str) -> Option<Duration> {
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}

fn describe_transport_error(e: &reqwest::Error) -> String {
    use std::error::Error;
    let mut text = if e.is_timeout() {
        "the receiver did not answer in time".to_owned()
    } else if e.is_connect() {
        "could not connect to the receiver".to_owned()
    } else {
        "the request failed".to_owned()
    };
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_retry_after_seconds() {
        assert_eq!(parse_retry_after(" 7 "), Some(Duration::from_secs(7)));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), None);
    }
}
