//! What delivery and reporting need to know about apps, installs and orgs.
//!
//! The Hub owns this data; Connec! and Impac! ask through the [`Directory`]
//! trait (in process in `mno up`, over NATS request-reply at
//! `mno.directory.v1.<call>` when parts run apart) and drop what they cached
//! on the matching Hub event (see [`crate::subject::hub_kind`]).

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

pub const DIRECTORY_SUBJECT_PREFIX: &str = "mno.directory.v1";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SharedEntity {
    pub entity: String,
    pub read: bool,
    pub write: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AppStack {
    Cloud,
    Connector,
}

/// An app as delivery sees it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppProfile {
    pub app_id: String,
    pub name: String,
    pub stack: AppStack,
    /// Where record changes are POSTed; `None`: the app pulls (change feed, SSE).
    pub webhook_url: Option<String>,
    /// Set when a receiver answered 410; delivery stops until the app is updated.
    pub webhook_disabled: bool,
    /// Signing secrets (`whsec_...`), newest first; two during a rotation.
    pub webhook_secrets: Vec<String>,
    pub shared_entities: Vec<SharedEntity>,
    /// The user who owns the app (created it); `None` from a Hub that
    /// predates the field (nothing owner-only is then allowed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner_id: Option<String>,
}

impl std::fmt::Debug for AppProfile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppProfile")
            .field("app_id", &self.app_id)
            .field("name", &self.name)
            .field("stack", &self.stack)
            .field("webhook_url", &self.webhook_url)
            .field("webhook_disabled", &self.webhook_disabled)
            .field("webhook_secrets", &"<redacted>")
            .field("shared_entities", &self.shared_entities)
            .field("owner_id", &self.owner_id)
            .finish()
    }
}

impl AppProfile {
    /// The entities this app receives changes of.
    pub fn subscribed_entities(&self) -> impl Iterator<Item = &str> {
        self.shared_entities
            .iter()
            .filter(|s| s.read)
            .map(|s| s.entity.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstallInfo {
    pub org: String,
    pub app_id: String,
    pub data_sharing: bool,
    /// When the install was made or its data sharing (or the entities it
    /// shares) last changed (Unix milliseconds, the Hub's clock): changes
    /// published before it were made under the previous setting.
    #[serde(default)]
    pub sharing_since_ms: i64,
    /// The entities the org shares with the app; `None`: all the app's shared
    /// entities (absent on the wire from a Hub that predates the field).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entities: Option<Vec<String>>,
}

impl InstallInfo {
    /// Whether the org shares `entity` with the app (data sharing on, and
    /// the entity not narrowed out).
    pub fn shares(&self, entity: &str) -> bool {
        self.data_sharing
            && self
                .entities
                .as_ref()
                .is_none_or(|list| list.iter().any(|e| e == entity))
    }

    /// [`InstallInfo::sharing_since_ms`] in Unix nanoseconds.
    pub fn sharing_since_nanos(&self) -> i128 {
        i128::from(self.sharing_since_ms) * 1_000_000
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrgProfile {
    pub org: String,
    pub name: String,
    pub currency: String,
    pub timezone: String,
    pub country: String,
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum DirectoryError {
    #[error("the directory did not answer: {0}; retry shortly")]
    Unavailable(String),
}

#[async_trait]
pub trait Directory: Send + Sync + 'static {
    async fn apps(&self) -> Result<Vec<AppProfile>, DirectoryError>;
    async fn app(&self, app_id: &str) -> Result<Option<AppProfile>, DirectoryError>;
    /// Every org that installed the app, with its data-sharing flag and the entities it shares.
    async fn installs_of_app(&self, app_id: &str) -> Result<Vec<InstallInfo>, DirectoryError>;
    async fn org(&self, org: &str) -> Result<Option<OrgProfile>, DirectoryError>;
    /// The role of `user_id` in `org` (`member`, `admin`...), `None` if not a member.
    async fn member_role(&self, org: &str, user_id: &str)
        -> Result<Option<String>, DirectoryError>;
    /// Record that the app's receiver answered 410 Gone; emits a `webhook_disabled` Hub event.
    async fn disable_webhook(&self, app_id: &str, reason: &str) -> Result<(), DirectoryError>;
}

// ---------------------------------------------------------------------------
// Over NATS: `mno.directory.v1.<call>` request-reply, and a client.
// ---------------------------------------------------------------------------

/// The calls, as the last token of the subject.
pub mod call {
    pub const APPS: &str = "apps";
    pub const APP: &str = "app";
    pub const INSTALLS_OF_APP: &str = "installs_of_app";
    pub const ORG: &str = "org";
    pub const MEMBER_ROLE: &str = "member_role";
    pub const DISABLE_WEBHOOK: &str = "disable_webhook";
}

/// The subject of one call: `mno.directory.v1.<call>`.
pub fn directory_subject(call: &str) -> String {
    format!("{DIRECTORY_SUBJECT_PREFIX}.{call}")
}

/// The body of a directory request; each call reads the fields it needs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DirectoryRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
}

/// The body of a reply: `{"ok": <value>}` or `{"error": "..."}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DirectoryReply<T> {
    Ok(T),
    Error(String),
}

/// The [`Directory`] asked over NATS request-reply (the Hub answers it).
#[derive(Clone)]
pub struct NatsDirectory {
    client: async_nats::Client,
    timeout: std::time::Duration,
}

impl NatsDirectory {
    pub fn new(client: async_nats::Client) -> Self {
        Self {
            client,
            timeout: std::time::Duration::from_secs(3),
        }
    }

    async fn ask<T: serde::de::DeserializeOwned>(
        &self,
        call: &str,
        request: DirectoryRequest,
    ) -> Result<T, DirectoryError> {
        let subject = directory_subject(call);
        let body = serde_json::to_vec(&request).expect("a DirectoryRequest always serialises");
        let reply = tokio::time::timeout(
            self.timeout,
            self.client.request(subject.clone(), body.into()),
        )
        .await
        .map_err(|_| {
            DirectoryError::Unavailable(format!("no answer on {subject} within {:?}", self.timeout))
        })?
        .map_err(|e| DirectoryError::Unavailable(format!("request on {subject} failed: {e}")))?;
        match serde_json::from_slice::<DirectoryReply<T>>(&reply.payload) {
            Ok(DirectoryReply::Ok(value)) => Ok(value),
            Ok(DirectoryReply::Error(reason)) => Err(DirectoryError::Unavailable(reason)),
            Err(e) => Err(DirectoryError::Unavailable(format!(
                "the answer on {subject} is not a directory reply: {e}"
            ))),
        }
    }
}

#[async_trait]
impl Directory for NatsDirectory {
    async fn apps(&self) -> Result<Vec<AppProfile>, DirectoryError> {
        self.ask(call::APPS, DirectoryRequest::default()).await
    }

    async fn app(&self, app_id: &str) -> Result<Option<AppProfile>, DirectoryError> {
        let request = DirectoryRequest {
            app_id: Some(app_id.to_owned()),
            ..Default::default()
        };
        self.ask(call::APP, request).await
    }

    async fn installs_of_app(&self, app_id: &str) -> Result<Vec<InstallInfo>, DirectoryError> {
        let request = DirectoryRequest {
            app_id: Some(app_id.to_owned()),
            ..Default::default()
        };
        self.ask(call::INSTALLS_OF_APP, request).await
    }

    async fn org(&self, org: &str) -> Result<Option<OrgProfile>, DirectoryError> {
        let request = DirectoryRequest {
            org: Some(org.to_owned()),
            ..Default::default()
        };
        self.ask(call::ORG, request).await
    }

    async fn member_role(
        &self,
        org: &str,
        user_id: &str,
    ) -> Result<Option<String>, DirectoryError> {
        let request = DirectoryRequest {
            org: Some(org.to_owned()),
            user_id: Some(user_id.to_owned()),
            ..Default::default()
        };
        self.ask(call::MEMBER_ROLE, request).await
    }

    async fn disable_webhook(&self, app_id: &str, reason: &str) -> Result<(), DirectoryError> {
        let request = DirectoryRequest {
            app_id: Some(app_id.to_owned()),
            reason: Some(reason.to_owned()),
            ..Default::default()
        };
        self.ask(call::DISABLE_WEBHOOK, request).await
    }
}
