//! The IDM check: may this credential do this action on this org's entity?
//!
//! The Hub answers it (in process in `mno up`, or on NATS request-reply at
//! [`IDM_SUBJECT`] when parts run apart). Connec! and Impac! only ever see the
//! [`Idm`] trait, wired by the gateway, so no part depends on another.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

/// NATS request-reply subject of the check; the body is an [`IdmRequest`] as JSON.
pub const IDM_SUBJECT: &str = "mno.idm.v1.check";

/// What the caller presented.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Credential {
    /// A user's session token (HTTP `Authorization: Bearer <token>`).
    Session { token: String },
    /// An app's API key and secret (HTTP Basic `key:secret`).
    App { key: String, secret: String },
}

// Never print a secret, not even in debug logs.
impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credential::Session { .. } => f.write_str("Session { token: <redacted> }"),
            Credential::App { key, .. } => write!(f, "App {{ key: {key:?}, secret: <redacted> }}"),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Read,
    Write,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct IdmRequest {
    pub credential: Credential,
    /// The organisation whose data is asked for.
    pub org: String,
    /// The collection ("invoices"); `None` asks about the org as a whole (membership).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entity: Option<String>,
    pub action: Action,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PrincipalKind {
    User,
    App,
}

/// Who the credential belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Principal {
    pub kind: PrincipalKind,
    /// User id or app id.
    pub id: String,
    pub name: String,
    /// The user's role in the org (member, power_user, admin, super_admin), if a member.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdmDecision {
    pub allow: bool,
    /// `None` when the credential itself is not valid (answer 401); `Some` with
    /// `allow: false` when it is valid but not allowed (answer 403 or 404).
    pub principal: Option<Principal>,
    /// Why, in words an API client can act on.
    pub reason: String,
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum IdmError {
    #[error("the identity service did not answer: {0}; retry shortly")]
    Unavailable(String),
}

#[async_trait]
pub trait Idm: Send + Sync + 'static {
    async fn check(&self, request: &IdmRequest) -> Result<IdmDecision, IdmError>;
}
