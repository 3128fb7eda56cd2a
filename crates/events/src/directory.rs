//! What delivery and reporting need to know about apps, installs and orgs.
//!
//! The Hub owns this data; Connec! and Impac! ask through the [`Directory`]
//! trait (in process in `mno up`, over NATS request-reply at
//! `mno.directory.v1.<call>` when parts run apart) and drop what they cached
//! on the matching Hub event (see [`crate::subject::hub_kind`]).

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

pub const DIRECTORY_SUBJECT_PREFIX: &str = "mno.directory.v1";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
    /// Every org that installed the app, with its data-sharing flag.
    async fn installs_of_app(&self, app_id: &str) -> Result<Vec<InstallInfo>, DirectoryError>;
    async fn org(&self, org: &str) -> Result<Option<OrgProfile>, DirectoryError>;
    /// Record that the app's receiver answered 410 Gone; emits a `webhook_disabled` Hub event.
    async fn disable_webhook(&self, app_id: &str, reason: &str) -> Result<(), DirectoryError>;
}
